-- Keyhold metadata schema, version 2 (PostgreSQL): generic documents.
-- Claims of a document are owned by "doc:<kind>/<account>/<region>/<id>".

CREATE TABLE documents (
    kind          TEXT COLLATE "C" NOT NULL,
    account_id    TEXT COLLATE "C" NOT NULL,
    region        TEXT COLLATE "C" NOT NULL,
    id            TEXT COLLATE "C" NOT NULL,
    created_at_ms BIGINT NOT NULL,
    version       BIGINT NOT NULL,
    doc           TEXT   NOT NULL,
    PRIMARY KEY (kind, account_id, region, id)
);
