-- Schema version 4. Never edit this file once it has shipped: add a new one.
-- Key slots: the same master key wrapped under more than one passphrase (one per member or host), each with its
-- own Argon2id salt and cost. The vault_meta row's kdf_* and master_key_sealed columns are the v1-v3 single slot;
-- they are copied here as the slot 'main' and are not read by tokenvault once this version is applied.
CREATE TABLE key_slot (
    name              TEXT    PRIMARY KEY,
    kdf_algorithm     TEXT    NOT NULL,
    kdf_salt          BLOB    NOT NULL,
    kdf_opslimit      INTEGER NOT NULL,
    kdf_memlimit      INTEGER NOT NULL,
    -- NULL: master_key_sealed is the master key sealed (secretbox) under the passphrase's key, as in v1-v3.
    -- Otherwise the slot's X25519 public key: master_key_sealed is a sealed box to it and secret_key_sealed the
    -- slot's secret key sealed under the passphrase's key, so that `keys rotate` can wrap a new master key for
    -- every slot without knowing the other passphrases.
    public_key        BLOB,
    secret_key_sealed BLOB,
    master_key_sealed BLOB    NOT NULL,
    created_at        REAL    NOT NULL,
    changed_at        REAL    NOT NULL
);

INSERT INTO key_slot (name, kdf_algorithm, kdf_salt, kdf_opslimit, kdf_memlimit, master_key_sealed, created_at, changed_at)
SELECT 'main', kdf_algorithm, kdf_salt, kdf_opslimit, kdf_memlimit, master_key_sealed, created_at, passphrase_changed_at
FROM vault_meta;
