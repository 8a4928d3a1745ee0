-- Schema version 3. Never edit this file once it has shipped: add a new one.
-- The last event `--notify` told a person about, per account: one notification per account and event until it
-- changes. Plain metadata (no secret); a row is removed once the account no longer needs anyone.
CREATE TABLE notification (
    account  TEXT PRIMARY KEY,
    event    TEXT NOT NULL,
    at       REAL NOT NULL
);
