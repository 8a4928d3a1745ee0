-- Schema version 1. Never edit this file once it has shipped: add a new one.
-- Secrets are stored only as sealed bytes (*_sealed); everything else is plain metadata.

CREATE TABLE vault_meta (
    id                INTEGER PRIMARY KEY CHECK (id = 1),
    kdf_algorithm     TEXT    NOT NULL,
    kdf_salt          BLOB    NOT NULL,
    kdf_opslimit      INTEGER NOT NULL,
    kdf_memlimit      INTEGER NOT NULL,
    master_key_sealed BLOB    NOT NULL,
    created_at        REAL    NOT NULL,
    passphrase_changed_at REAL NOT NULL,
    -- The newest audit entry and a MAC over it: deleting the newest entries with SQL is detected.
    audit_head_seq    INTEGER NOT NULL DEFAULT 0,
    audit_head_mac    BLOB
);

CREATE TABLE integration (
    id                   TEXT    PRIMARY KEY,
    name                 TEXT    NOT NULL UNIQUE,
    provider             TEXT    NOT NULL,
    client_id            TEXT    NOT NULL,
    client_secret_sealed BLOB    NOT NULL,
    redirect_uri         TEXT    NOT NULL,
    scopes               TEXT    NOT NULL,
    api_base             TEXT    NOT NULL,
    env_var              TEXT    NOT NULL,
    created_at           REAL    NOT NULL
);

CREATE TABLE account (
    id                   TEXT    PRIMARY KEY,
    name                 TEXT    NOT NULL UNIQUE,
    integration_id       TEXT    NOT NULL REFERENCES integration(id) ON DELETE CASCADE,
    access_token_sealed  BLOB,
    refresh_token_sealed BLOB,
    access_expires_at    REAL,
    refresh_expires_at   REAL,
    granted_scopes       TEXT,
    email                TEXT,
    display_name         TEXT,
    org_id               TEXT,
    person_id            TEXT,
    state                TEXT    NOT NULL DEFAULT 'ok',
    created_at           REAL    NOT NULL,
    updated_at           REAL    NOT NULL
);
CREATE INDEX account_integration ON account(integration_id);
CREATE INDEX account_access_expiry ON account(access_expires_at);

-- Append-only audit log of every event that changes a token's lifetime or existence.
-- `mac` chains each entry to the one before it under a key derived from the master key.
CREATE TABLE audit_entry (
    seq                    INTEGER PRIMARY KEY AUTOINCREMENT,
    at                     REAL    NOT NULL,
    account                TEXT    NOT NULL,
    integration            TEXT,
    event                  TEXT    NOT NULL,
    trigger                TEXT    NOT NULL,
    outcome                TEXT    NOT NULL,
    access_expires_before  REAL,
    access_expires_after   REAL,
    refresh_expires_before REAL,
    refresh_expires_after  REAL,
    refresh_token_changed  INTEGER,
    detail                 TEXT,
    mac                    BLOB    NOT NULL
);
CREATE INDEX audit_entry_account ON audit_entry(account);

CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON audit_entry
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_entry_no_delete BEFORE DELETE ON audit_entry
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
