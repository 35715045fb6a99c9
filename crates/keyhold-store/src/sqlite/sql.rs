//! The SQLite text of the shared statements (see [`Sql`] for what each binds).
//!
//! Placeholders are `?`; a paging statement numbers its parameters (`?1`..`?4`) so that it
//! can use the `after` parameter twice while binding it once. `exclusive` is an `INTEGER`
//! holding 0 or 1. A key's materials are deleted explicitly before the key (the foreign key
//! also cascades).

use crate::shared::Sql;

/// The statements of [`SqliteStore`](super::SqliteStore).
pub(super) const SQL: Sql = Sql {
    check_claim: "SELECT 1 FROM unique_claims \
                  WHERE scope = ? AND value = ? AND owner <> ? AND (? OR exclusive <> 0) LIMIT 1",
    insert_claim: "INSERT INTO unique_claims (scope, value, owner, exclusive) VALUES (?, ?, ?, ?)",
    delete_claims: "DELETE FROM unique_claims WHERE owner = ?",

    insert_key: "INSERT INTO keys \
                 (account_id, region, key_id, custom_key_store_id, created_at_ms, version, doc) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
    get_key: "SELECT account_id, region, key_id, custom_key_store_id, created_at_ms, version, doc \
              FROM keys WHERE account_id = ? AND region = ? AND key_id = ?",
    key_exists: "SELECT 1 FROM keys WHERE account_id = ? AND region = ? AND key_id = ?",
    update_key: "UPDATE keys SET custom_key_store_id = ?, doc = ?, version = ? \
                 WHERE account_id = ? AND region = ? AND key_id = ? AND version = ?",
    delete_key_materials: Some(
        "DELETE FROM key_materials WHERE account_id = ? AND region = ? AND key_id = ?",
    ),
    delete_key: "DELETE FROM keys WHERE account_id = ? AND region = ? AND key_id = ?",
    list_keys: "SELECT account_id, region, key_id, custom_key_store_id, created_at_ms, version, \
                doc FROM keys WHERE account_id = ?1 AND region = ?2 \
                AND (?3 IS NULL OR key_id > ?3) ORDER BY key_id LIMIT ?4",

    insert_key_material: "INSERT INTO key_materials \
                          (account_id, region, key_id, material_id, created_at_ms, wrapped) \
                          VALUES (?, ?, ?, ?, ?, ?)",
    get_key_material: "SELECT account_id, region, key_id, material_id, created_at_ms, wrapped \
                       FROM key_materials \
                       WHERE account_id = ? AND region = ? AND key_id = ? AND material_id = ?",
    delete_key_material: "DELETE FROM key_materials \
                          WHERE account_id = ? AND region = ? AND key_id = ? AND material_id = ?",

    count_custom_key_stores: "SELECT COUNT(*) FROM custom_key_stores \
                              WHERE account_id = ? AND region = ?",
    insert_custom_key_store: "INSERT INTO custom_key_stores (account_id, region, id, name, \
                              store_type, connection_state, created_at_ms, version, doc) \
                              VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    get_custom_key_store: "SELECT account_id, region, id, name, store_type, connection_state, \
                           created_at_ms, version, doc FROM custom_key_stores \
                           WHERE account_id = ? AND region = ? AND id = ?",
    custom_key_store_exists: "SELECT 1 FROM custom_key_stores \
                              WHERE account_id = ? AND region = ? AND id = ?",
    update_custom_key_store: "UPDATE custom_key_stores SET name = ?, store_type = ?, \
                              connection_state = ?, doc = ?, version = ? \
                              WHERE account_id = ? AND region = ? AND id = ? AND version = ?",
    delete_custom_key_store: "DELETE FROM custom_key_stores \
                              WHERE account_id = ? AND region = ? AND id = ? AND version = ?",
    custom_key_store_has_keys: "SELECT 1 FROM keys \
                                WHERE account_id = ? AND region = ? AND custom_key_store_id = ? \
                                LIMIT 1",
    count_keys_in_custom_key_store: "SELECT COUNT(*) FROM keys \
                                     WHERE account_id = ? AND region = ? \
                                     AND custom_key_store_id = ?",
    list_custom_key_stores: "SELECT account_id, region, id, name, store_type, connection_state, \
                             created_at_ms, version, doc FROM custom_key_stores \
                             WHERE account_id = ?1 AND region = ?2 \
                             AND (?3 IS NULL OR id > ?3) ORDER BY id LIMIT ?4",

    insert_document: "INSERT INTO documents \
                      (kind, account_id, region, id, created_at_ms, version, doc) \
                      VALUES (?, ?, ?, ?, ?, ?, ?)",
    get_document: "SELECT kind, account_id, region, id, created_at_ms, version, doc \
                   FROM documents WHERE kind = ? AND account_id = ? AND region = ? AND id = ?",
    document_exists: "SELECT 1 FROM documents \
                      WHERE kind = ? AND account_id = ? AND region = ? AND id = ?",
    update_document: "UPDATE documents SET doc = ?, version = ? \
                      WHERE kind = ? AND account_id = ? AND region = ? AND id = ? AND version = ?",
    delete_document: "DELETE FROM documents \
                      WHERE kind = ? AND account_id = ? AND region = ? AND id = ? AND version = ?",
    list_documents: "SELECT kind, account_id, region, id, created_at_ms, version, doc \
                     FROM documents WHERE kind = ?1 AND account_id = ?2 AND region = ?3 \
                     AND (?4 IS NULL OR id > ?4) ORDER BY id LIMIT ?5",

    insert_index_entry: "INSERT INTO index_entries \
                         (index_name, value, owner, doc_kind, account_id, region, id) \
                         VALUES (?, ?, ?, ?, ?, ?, ?)",
    delete_index_entries: "DELETE FROM index_entries WHERE owner = ?",
    list_index: "SELECT value, doc_kind, account_id, region, id FROM index_entries \
                 WHERE index_name = ?1 AND value >= ?2 AND (?3 IS NULL OR value <= ?3) \
                 AND (?4 IS NULL OR (value, owner) > (?4, ?5)) \
                 ORDER BY value, owner LIMIT ?6",
};
