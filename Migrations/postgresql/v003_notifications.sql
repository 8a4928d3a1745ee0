-- PostgreSQL schema version 3: the meaning of ../v003_notifications.sql. Never edit this file once it has shipped:
-- add a new one. The last event `--notify` told a person about, per account; plain metadata.
CREATE TABLE notification (
    account  TEXT             PRIMARY KEY,
    event    TEXT             NOT NULL,
    at       DOUBLE PRECISION NOT NULL
);
