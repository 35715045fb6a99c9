-- Keyhold metadata schema, version 3 (PostgreSQL): secondary-index entries of keys and
-- documents.
--
-- One row per (index, value, owner). The owner is the owning row's identity, as on its claims
-- ("key:<account>/<region>/<key id>" or "doc:<kind>/<account>/<region>/<id>"); the owner's
-- parts are kept beside it so a query can return them without parsing. The store writes,
-- replaces and deletes a row's entries in the transaction that writes the row.

CREATE TABLE index_entries (
    index_name TEXT COLLATE "C" NOT NULL,
    value      TEXT COLLATE "C" NOT NULL,
    owner      TEXT COLLATE "C" NOT NULL,
    doc_kind   TEXT COLLATE "C",           -- NULL when the owner is a key
    account_id TEXT COLLATE "C" NOT NULL,
    region     TEXT COLLATE "C" NOT NULL,
    id         TEXT COLLATE "C" NOT NULL,  -- key id or document id
    PRIMARY KEY (index_name, value, owner)
);

CREATE INDEX index_entries_by_owner ON index_entries (owner);

-- Earlier releases indexed scheduled key deletions with documents of kind
-- 'keyhold-pending-key-deletion', written beside the key and removed best-effort. Rebuild the
-- index from the keys themselves (each PendingDeletion key gets its 'deletion-due' entry: the
-- key's deletion_date in milliseconds, zero-padded to 15 digits, as keyhold-core's
-- DELETION_DUE_INDEX), then drop those documents, stale ones included. Key documents are
-- always JSON written by Keyhold.
INSERT INTO index_entries (index_name, value, owner, doc_kind, account_id, region, id)
SELECT 'deletion-due',
       lpad(floor((k.j ->> 'deletion_date')::float8 * 1000)::bigint::text, 15, '0'),
       'key:' || k.account_id || '/' || k.region || '/' || k.key_id,
       NULL, k.account_id, k.region, k.key_id
FROM (SELECT account_id, region, key_id, doc::jsonb AS j FROM keys
      WHERE doc LIKE '%PendingDeletion%') AS k
WHERE k.j ->> 'key_state' = 'PendingDeletion'
  AND jsonb_typeof(k.j -> 'deletion_date') = 'number'
ON CONFLICT DO NOTHING;

DELETE FROM documents WHERE kind = 'keyhold-pending-key-deletion';
