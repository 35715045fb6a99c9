-- Keyhold metadata schema, version 1 (SQLite).
-- Identifier columns compare with SQLite's default BINARY collation (byte order), which is
-- the order list_* pages in; the PostgreSQL schema uses COLLATE "C" for the same order.

CREATE TABLE keys (
    account_id          TEXT    NOT NULL,
    region              TEXT    NOT NULL,
    key_id              TEXT    NOT NULL,
    custom_key_store_id TEXT,
    created_at_ms       INTEGER NOT NULL,
    version             INTEGER NOT NULL,
    doc                 TEXT    NOT NULL,
    PRIMARY KEY (account_id, region, key_id)
) STRICT;

CREATE INDEX keys_by_custom_key_store
    ON keys (account_id, region, custom_key_store_id)
    WHERE custom_key_store_id IS NOT NULL;

CREATE TABLE key_materials (
    account_id    TEXT    NOT NULL,
    region        TEXT    NOT NULL,
    key_id        TEXT    NOT NULL,
    material_id   TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    wrapped       BLOB    NOT NULL,
    PRIMARY KEY (account_id, region, key_id, material_id),
    FOREIGN KEY (account_id, region, key_id)
        REFERENCES keys (account_id, region, key_id) ON DELETE CASCADE
) STRICT;

CREATE TABLE custom_key_stores (
    account_id       TEXT    NOT NULL,
    region           TEXT    NOT NULL,
    id               TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    store_type       TEXT    NOT NULL,
    connection_state TEXT    NOT NULL,
    created_at_ms    INTEGER NOT NULL,
    version          INTEGER NOT NULL,
    doc              TEXT    NOT NULL,
    PRIMARY KEY (account_id, region, id)
) STRICT;

CREATE INDEX custom_key_stores_by_state ON custom_key_stores (connection_state);

-- One row per (claim, owner). The owner is the owning row's identity,
-- "key:<account>/<region>/<key id>" or "cks:<account>/<region>/<id>".
CREATE TABLE unique_claims (
    scope     TEXT    NOT NULL,
    value     TEXT    NOT NULL,
    owner     TEXT    NOT NULL,
    exclusive INTEGER NOT NULL CHECK (exclusive IN (0, 1)),
    PRIMARY KEY (scope, value, owner)
) STRICT;

CREATE INDEX unique_claims_by_owner ON unique_claims (owner);

CREATE TABLE leases (
    name          TEXT    NOT NULL PRIMARY KEY,
    holder        TEXT    NOT NULL,
    expires_at_ms INTEGER NOT NULL
) STRICT;
