-- Keyhold metadata schema, version 1 (PostgreSQL).
-- Identifier columns use COLLATE "C" so ordering and `>` comparisons are byte order,
-- independent of the database locale and identical to SQLite's BINARY collation.

CREATE TABLE keys (
    account_id          TEXT COLLATE "C" NOT NULL,
    region              TEXT COLLATE "C" NOT NULL,
    key_id              TEXT COLLATE "C" NOT NULL,
    custom_key_store_id TEXT COLLATE "C",
    created_at_ms       BIGINT NOT NULL,
    version             BIGINT NOT NULL,
    doc                 TEXT   NOT NULL,
    PRIMARY KEY (account_id, region, key_id)
);

CREATE INDEX keys_by_custom_key_store
    ON keys (account_id, region, custom_key_store_id)
    WHERE custom_key_store_id IS NOT NULL;

CREATE TABLE key_materials (
    account_id    TEXT COLLATE "C" NOT NULL,
    region        TEXT COLLATE "C" NOT NULL,
    key_id        TEXT COLLATE "C" NOT NULL,
    material_id   TEXT COLLATE "C" NOT NULL,
    created_at_ms BIGINT NOT NULL,
    wrapped       BYTEA  NOT NULL,
    PRIMARY KEY (account_id, region, key_id, material_id),
    FOREIGN KEY (account_id, region, key_id)
        REFERENCES keys (account_id, region, key_id) ON DELETE CASCADE
);

CREATE TABLE custom_key_stores (
    account_id       TEXT COLLATE "C" NOT NULL,
    region           TEXT COLLATE "C" NOT NULL,
    id               TEXT COLLATE "C" NOT NULL,
    name             TEXT   NOT NULL,
    store_type       TEXT   NOT NULL,
    connection_state TEXT   NOT NULL,
    created_at_ms    BIGINT NOT NULL,
    version          BIGINT NOT NULL,
    doc              TEXT   NOT NULL,
    PRIMARY KEY (account_id, region, id)
);

CREATE INDEX custom_key_stores_by_state ON custom_key_stores (connection_state);

-- One row per (claim, owner). The owner is the owning row's identity,
-- "key:<account>/<region>/<key id>" or "cks:<account>/<region>/<id>".
CREATE TABLE unique_claims (
    scope     TEXT COLLATE "C" NOT NULL,
    value     TEXT COLLATE "C" NOT NULL,
    owner     TEXT COLLATE "C" NOT NULL,
    exclusive BOOLEAN NOT NULL,
    PRIMARY KEY (scope, value, owner)
);

CREATE INDEX unique_claims_by_owner ON unique_claims (owner);

CREATE TABLE leases (
    name          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    holder        TEXT   NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
