//! The PostgreSQL text of the shared statements (see [`Sql`] for what each binds).
//!
//! Placeholders are numbered (`$1`, `$2`, ...); a paging statement casts its `after`
//! parameter (`$n::text`) because PostgreSQL cannot infer the type of a bare `$n IS NULL`.
//! `exclusive` is a `BOOLEAN`. Key materials go with their key (`ON DELETE CASCADE`).

use crate::shared::Sql;

/// The statements of [`PostgresStore`](super::PostgresStore).
pub(super) const SQL: Sql = Sql {
    check_claim: "SELECT 1 FROM unique_claims \
                  WHERE scope = $1 AND value = $2 AND owner <> $3 AND ($4 OR exclusive) LIMIT 1",
    insert_claim: "INSERT INTO unique_claims (scope, value, owner, exclusive) \
                   VALUES ($1, $2, $3, $4)",
    delete_claims: "DELETE FROM unique_claims WHERE owner = $1",

    insert_key: "INSERT INTO keys \
                 (account_id, region, key_id, custom_key_store_id, created_at_ms, version, doc) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
    get_key: "SELECT account_id, region, key_id, custom_key_store_id, created_at_ms, version, doc \
              FROM keys WHERE account_id = $1 AND region = $2 AND key_id = $3",
    key_exists: "SELECT 1 FROM keys WHERE account_id = $1 AND region = $2 AND key_id = $3",
    update_key: "UPDATE keys SET custom_key_store_id = $1, doc = $2, version = $3 \
                 WHERE account_id = $4 AND region = $5 AND key_id = $6 AND version = $7",
    delete_key_materials: None,
    delete_key: "DELETE FROM keys WHERE account_id = $1 AND region = $2 AND key_id = $3",
    list_keys: "SELECT account_id, region, key_id, custom_key_store_id, created_at_ms, version, \
                doc FROM keys WHERE account_id = $1 AND region = $2 \
                AND ($3::text IS NULL OR key_id > $3) ORDER BY key_id LIMIT $4",

    insert_key_material: "INSERT INTO key_materials \
                          (account_id, region, key_id, material_id, created_at_ms, wrapped) \
                          VALUES ($1, $2, $3, $4, $5, $6)",
    get_key_material: "SELECT account_id, region, key_id, material_id, created_at_ms, wrapped \
                       FROM key_materials \
                       WHERE account_id = $1 AND region = $2 AND key_id = $3 \
                       AND material_id = $4",
    delete_key_material: "DELETE FROM key_materials \
                          WHERE account_id = $1 AND region = $2 AND key_id = $3 \
                          AND material_id = $4",

    count_custom_key_stores: "SELECT COUNT(*) FROM custom_key_stores \
                              WHERE account_id = $1 AND region = $2",
    insert_custom_key_store: "INSERT INTO custom_key_stores (account_id, region, id, name, \
                              store_type, connection_state, created_at_ms, version, doc) \
                              VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    get_custom_key_store: "SELECT account_id, region, id, name, store_type, connection_state, \
                           created_at_ms, version, doc FROM custom_key_stores \
                           WHERE account_id = $1 AND region = $2 AND id = $3",
    custom_key_store_exists: "SELECT 1 FROM custom_key_stores \
                              WHERE account_id = $1 AND region = $2 AND id = $3",
    update_custom_key_store: "UPDATE custom_key_stores SET name = $1, store_type = $2, \
                              connection_state = $3, doc = $4, version = $5 \
                              WHERE account_id = $6 AND region = $7 AND id = $8 \
                              AND version = $9",
    delete_custom_key_store: "DELETE FROM custom_key_stores \
                              WHERE account_id = $1 AND region = $2 AND id = $3 \
                              AND version = $4",
    custom_key_store_has_keys: "SELECT 1 FROM keys \
                                WHERE account_id = $1 AND region = $2 \
                                AND custom_key_store_id = $3 LIMIT 1",
    count_keys_in_custom_key_store: "SELECT COUNT(*) FROM keys \
                                     WHERE account_id = $1 AND region = $2 \
                                     AND custom_key_store_id = $3",
    list_custom_key_stores: "SELECT account_id, region, id, name, store_type, connection_state, \
                             created_at_ms, version, doc FROM custom_key_stores \
                             WHERE account_id = $1 AND region = $2 \
                             AND ($3::text IS NULL OR id > $3) ORDER BY id LIMIT $4",

    insert_document: "INSERT INTO documents \
                      (kind, account_id, region, id, created_at_ms, version, doc) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7)",
    get_document: "SELECT kind, account_id, region, id, created_at_ms, version, doc \
                   FROM documents \
                   WHERE kind = $1 AND account_id = $2 AND region = $3 AND id = $4",
    document_exists: "SELECT 1 FROM documents \
                      WHERE kind = $1 AND account_id = $2 AND region = $3 AND id = $4",
    update_document: "UPDATE documents SET doc = $1, version = $2 \
                      WHERE kind = $3 AND account_id = $4 AND region = $5 AND id = $6 \
                      AND version = $7",
    delete_document: "DELETE FROM documents \
                      WHERE kind = $1 AND account_id = $2 AND region = $3 AND id = $4 \
                      AND version = $5",
    list_documents: "SELECT kind, account_id, region, id, created_at_ms, version, doc \
                     FROM documents WHERE kind = $1 AND account_id = $2 AND region = $3 \
                     AND ($4::text IS NULL OR id > $4) ORDER BY id LIMIT $5",

    insert_index_entry: "INSERT INTO index_entries \
                         (index_name, value, owner, doc_kind, account_id, region, id) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    delete_index_entries: "DELETE FROM index_entries WHERE owner = $1",
    list_index: "SELECT value, doc_kind, account_id, region, id FROM index_entries \
                 WHERE index_name = $1 AND value >= $2 AND ($3::text IS NULL OR value <= $3) \
                 AND ($4::text IS NULL OR (value, owner) > ($4, $5::text)) \
                 ORDER BY value, owner LIMIT $6",
};
