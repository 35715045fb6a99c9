-- Keyhold metadata schema, version 2 (SQLite): generic documents.
-- Claims of a document are owned by "doc:<kind>/<account>/<region>/<id>".

CREATE TABLE documents (
    kind          TEXT    NOT NULL,
    account_id    TEXT    NOT NULL,
    region        TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    doc           TEXT    NOT NULL,
    PRIMARY KEY (kind, account_id, region, id)
) STRICT;
