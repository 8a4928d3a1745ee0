-- PostgreSQL schema version 1: the meaning of ../v001_initial.sql. Never edit this file once it has shipped: add a
-- new one. Secrets are stored only as sealed bytes (*_sealed); everything else is plain metadata. Dates are Unix
-- seconds (DOUBLE PRECISION), as the SQLite vault's REAL columns, so that both stores hold the same values.

CREATE TABLE vault_meta (
    id                    INTEGER PRIMARY KEY CHECK (id = 1),
    kdf_algorithm         TEXT             NOT NULL,
    kdf_salt              BYTEA            NOT NULL,
    kdf_opslimit          BIGINT           NOT NULL,
    kdf_memlimit          BIGINT           NOT NULL,
    master_key_sealed     BYTEA            NOT NULL,
    created_at            DOUBLE PRECISION NOT NULL,
    passphrase_changed_at DOUBLE PRECISION NOT NULL,
    -- The newest audit entry and a MAC over it: deleting the newest entries with SQL is detected. Appending locks
    -- this row (SELECT ... FOR UPDATE), which serializes the audit chain across hosts.
    audit_head_seq        BIGINT           NOT NULL DEFAULT 0,
    audit_head_mac        BYTEA
);

CREATE TABLE integration (
    id                   TEXT             PRIMARY KEY,
    name                 TEXT             NOT NULL UNIQUE,
    provider             TEXT             NOT NULL,
    client_id            TEXT             NOT NULL,
    client_secret_sealed BYTEA            NOT NULL,
    redirect_uri         TEXT             NOT NULL,
    scopes               TEXT             NOT NULL,
    api_base             TEXT             NOT NULL,
    env_var              TEXT             NOT NULL,
    created_at           DOUBLE PRECISION NOT NULL
);

CREATE TABLE account (
    id                   TEXT             PRIMARY KEY,
    name                 TEXT             NOT NULL UNIQUE,
    integration_id       TEXT             NOT NULL REFERENCES integration(id) ON DELETE CASCADE,
    access_token_sealed  BYTEA,
    refresh_token_sealed BYTEA,
    access_expires_at    DOUBLE PRECISION,
    refresh_expires_at   DOUBLE PRECISION,
    granted_scopes       TEXT,
    email                TEXT,
    display_name         TEXT,
    org_id               TEXT,
    person_id            TEXT,
    state                TEXT             NOT NULL DEFAULT 'ok',
    created_at           DOUBLE PRECISION NOT NULL,
    updated_at           DOUBLE PRECISION NOT NULL
);
CREATE INDEX account_integration ON account(integration_id);
CREATE INDEX account_access_expiry ON account(access_expires_at);

-- Append-only audit log of every event that changes a token's lifetime or existence.
-- `mac` chains each entry to the one before it under a key derived from the master key. tokenvault numbers the
-- entries itself (under the vault_meta row lock), so `seq` is a plain key, not a sequence.
CREATE TABLE audit_entry (
    seq                    BIGINT           PRIMARY KEY,
    at                     DOUBLE PRECISION NOT NULL,
    account                TEXT             NOT NULL,
    integration            TEXT,
    event                  TEXT             NOT NULL,
    trigger                TEXT             NOT NULL,
    outcome                TEXT             NOT NULL,
    access_expires_before  DOUBLE PRECISION,
    access_expires_after   DOUBLE PRECISION,
    refresh_expires_before DOUBLE PRECISION,
    refresh_expires_after  DOUBLE PRECISION,
    refresh_token_changed  BOOLEAN,
    detail                 TEXT,
    mac                    BYTEA            NOT NULL
);
CREATE INDEX audit_entry_account ON audit_entry(account);

-- The log is append-only: UPDATE, DELETE and TRUNCATE are refused. The one exception is re-keying (`keys rotate`),
-- which sets `tokenvault.rewrite_audit_macs` for its own transaction (SET LOCAL) and may then change `mac` and
-- nothing else. This guards against careless edits; what proves the log intact is the MAC chain, which no one
-- without the vault's key can recompute.
CREATE FUNCTION audit_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('tokenvault.rewrite_audit_macs', true) = 'on'
       AND (NEW.seq, NEW.at, NEW.account, NEW.integration, NEW.event, NEW.trigger, NEW.outcome,
            NEW.access_expires_before, NEW.access_expires_after, NEW.refresh_expires_before,
            NEW.refresh_expires_after, NEW.refresh_token_changed, NEW.detail)
           IS NOT DISTINCT FROM
           (OLD.seq, OLD.at, OLD.account, OLD.integration, OLD.event, OLD.trigger, OLD.outcome,
            OLD.access_expires_before, OLD.access_expires_after, OLD.refresh_expires_before,
            OLD.refresh_expires_after, OLD.refresh_token_changed, OLD.detail)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'restrict_violation';
END
$$;
CREATE TRIGGER audit_entry_no_update BEFORE UPDATE OR DELETE ON audit_entry
    FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only();
CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON audit_entry
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_append_only();
