-- Keyhold metadata schema, version 3 (SQLite): secondary-index entries of keys and documents.
--
-- One row per (index, value, owner). The owner is the owning row's identity, as on its claims
-- ("key:<account>/<region>/<key id>" or "doc:<kind>/<account>/<region>/<id>"); the owner's
-- parts are kept beside it so a query can return them without parsing. The store writes,
-- replaces and deletes a row's entries in the transaction that writes the row.

CREATE TABLE index_entries (
    index_name TEXT NOT NULL,
    value      TEXT NOT NULL,
    owner      TEXT NOT NULL,
    doc_kind   TEXT,           -- NULL when the owner is a key
    account_id TEXT NOT NULL,
    region     TEXT NOT NULL,
    id         TEXT NOT NULL,  -- key id or document id
    PRIMARY KEY (index_name, value, owner)
) STRICT;

CREATE INDEX index_entries_by_owner ON index_entries (owner);

-- Earlier releases indexed scheduled key deletions with documents of kind
-- 'keyhold-pending-key-deletion', written beside the key and removed best-effort. Rebuild the
-- index from the keys themselves (each PendingDeletion key gets its 'deletion-due' entry: the
-- key's deletion_date in milliseconds, zero-padded to 15 digits, as keyhold-core's
-- DELETION_DUE_INDEX), then drop those documents, stale ones included.
INSERT OR IGNORE INTO index_entries (index_name, value, owner, doc_kind, account_id, region, id)
SELECT 'deletion-due',
       printf('%015d', CAST(json_extract(doc, '$.deletion_date') * 1000 AS INTEGER)),
       'key:' || account_id || '/' || region || '/' || key_id,
       NULL, account_id, region, key_id
FROM keys
WHERE json_valid(doc)
  AND json_extract(doc, '$.key_state') = 'PendingDeletion'
  AND json_type(doc, '$.deletion_date') IN ('integer', 'real');

DELETE FROM documents WHERE kind = 'keyhold-pending-key-deletion';
