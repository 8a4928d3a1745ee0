-- PostgreSQL schema version 4: the meaning of ../v004_key_slots.sql. Never edit this file once it has shipped:
-- add a new one. Key slots: the same master key wrapped under more than one passphrase, each with its own Argon2id
-- salt and cost. The vault_meta row's kdf_* and master_key_sealed columns are the single slot of versions 1-3;
-- they are copied here as the slot 'main'.
CREATE TABLE key_slot (
    name              TEXT             PRIMARY KEY,
    kdf_algorithm     TEXT             NOT NULL,
    kdf_salt          BYTEA            NOT NULL,
    kdf_opslimit      BIGINT           NOT NULL,
    kdf_memlimit      BIGINT           NOT NULL,
    -- NULL: master_key_sealed is the master key sealed (secretbox) under the passphrase's key. Otherwise the
    -- slot's X25519 public key: master_key_sealed is a sealed box to it and secret_key_sealed the slot's secret
    -- key sealed under the passphrase's key.
    public_key        BYTEA,
    secret_key_sealed BYTEA,
    master_key_sealed BYTEA            NOT NULL,
    created_at        DOUBLE PRECISION NOT NULL,
    changed_at        DOUBLE PRECISION NOT NULL
);

INSERT INTO key_slot (name, kdf_algorithm, kdf_salt, kdf_opslimit, kdf_memlimit, master_key_sealed, created_at, changed_at)
SELECT 'main', kdf_algorithm, kdf_salt, kdf_opslimit, kdf_memlimit, master_key_sealed, created_at, passphrase_changed_at
FROM vault_meta;
