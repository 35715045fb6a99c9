//! The [`metadata_store!`] macro: the one `MetadataStore` implementation both engines use.

/// Implements `MetadataStore` for `$Store`, an [`Engine`].
///
/// Invoke it once in the engine's module: `metadata_store!(SqliteStore);`. It defines two
/// child modules there: `statements` (see [`statements!`]), the building blocks, and
/// `shared_store`, the impl.
///
/// Every write runs in one [`Engine::begin_write`] transaction, given the names of the locks
/// the write needs; PostgreSQL takes them as advisory locks, SQLite's `BEGIN IMMEDIATE`
/// already excludes every other writer. An early `return` (or `?`) drops the transaction,
/// which rolls it back.
///
/// [`Engine`]: crate::shared::Engine
/// [`Engine::begin_write`]: crate::shared::Engine::begin_write
/// [`statements!`]: macro@crate::shared::statements
macro_rules! metadata_store {
    ($Store:ident) => {
        crate::shared::statements!($Store);

        /// `MetadataStore` for this engine, written once in `crate::shared`.
        mod shared_store {
            use async_trait::async_trait;
            use keyhold_core::ports::{
                IndexEntry, IndexHit, MetadataStore, StoreError, StoredCustomKeyStore,
                StoredDocument, StoredKey, StoredKeyMaterial, UniqueClaim,
                CUSTOM_KEY_STORE_ID_SCOPE, DOCUMENT_ID_SCOPE, KEY_ID_SCOPE,
            };

            use super::statements::{
                cas_outcome, check_claims, delete_claims, delete_indexes, get_one, get_page,
                insert_material, keyed, replace_claims, replace_indexes, update_claims,
                update_indexes, SQL,
            };
            use super::$Store;
            use crate::common::{
                backend, cks_from_row, cks_owner, count_u64, decode_all, doc_from_row,
                doc_index_owner, doc_owner, index_hit_from_row, insert_error, key_from_row,
                key_index_owner, key_owner, material_from_row, normalize_claims, normalize_indexes,
                sql_limit, validate_material_owner, validate_new_key,
            };
            use crate::shared::{cks_lock, claim_locks, quota_lock, Engine, TABLES};

            #[async_trait]
            impl MetadataStore for $Store {
                async fn insert_key(
                    &self,
                    key: &StoredKey,
                    material: Option<&StoredKeyMaterial>,
                    claims: &[UniqueClaim],
                    indexes: &[IndexEntry],
                ) -> Result<(), StoreError> {
                    validate_new_key(key, material)?;
                    let claims = normalize_claims(claims);
                    let indexes = normalize_indexes(indexes);
                    let owner = key_owner(&key.account_id, &key.region, &key.key_id);
                    let mut locks = claim_locks(&claims);
                    if let Some(cks) = &key.custom_key_store_id {
                        locks.push(cks_lock(&key.account_id, &key.region, cks));
                    }
                    let mut tx = self.begin_write(&locks).await?;
                    check_claims(&mut tx, &owner, &claims).await?;
                    sqlx::query(SQL.insert_key)
                        .bind(&key.account_id)
                        .bind(&key.region)
                        .bind(&key.key_id)
                        .bind(&key.custom_key_store_id)
                        .bind(key.created_at_ms)
                        .bind(key.version)
                        .bind(&key.doc)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| insert_error(e, KEY_ID_SCOPE))?;
                    if let Some(m) = material {
                        insert_material(&mut tx, m).await?;
                    }
                    replace_claims(&mut tx, &owner, &claims).await?;
                    let index_owner = key_index_owner(&key.account_id, &key.region, &key.key_id);
                    replace_indexes(&mut tx, &index_owner, &indexes).await?;
                    tx.commit().await.map_err(backend)
                }

                async fn get_key(
                    &self,
                    account_id: &str,
                    region: &str,
                    key_id: &str,
                ) -> Result<Option<StoredKey>, StoreError> {
                    let key = [account_id, region, key_id];
                    get_one(self, SQL.get_key, &key, key_from_row).await
                }

                async fn update_key(
                    &self,
                    key: &StoredKey,
                    indexes: Option<&[IndexEntry]>,
                ) -> Result<(), StoreError> {
                    // The same transaction with no material to add or remove.
                    self.update_key_and_materials(key, indexes, None, &[]).await
                }

                async fn update_key_and_materials(
                    &self,
                    key: &StoredKey,
                    indexes: Option<&[IndexEntry]>,
                    add: Option<&StoredKeyMaterial>,
                    remove: &[String],
                ) -> Result<(), StoreError> {
                    if let Some(m) = add {
                        validate_material_owner(key, m)?;
                    }
                    let indexes = indexes.map(normalize_indexes);
                    // Placing the key in a custom key store must not race with deleting the store.
                    let locks: Vec<String> = key
                        .custom_key_store_id
                        .iter()
                        .map(|cks| cks_lock(&key.account_id, &key.region, cks))
                        .collect();
                    let mut tx = self.begin_write(&locks).await?;
                    let done = sqlx::query(SQL.update_key)
                        .bind(&key.custom_key_store_id)
                        .bind(&key.doc)
                        .bind(key.version)
                        .bind(&key.account_id)
                        .bind(&key.region)
                        .bind(&key.key_id)
                        .bind(key.version.wrapping_sub(1))
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                    let id = [&*key.account_id, &key.region, &key.key_id];
                    cas_outcome(&mut tx, done.rows_affected(), SQL.key_exists, &id).await?;
                    for material_id in remove {
                        let target = [&*key.account_id, &key.region, &key.key_id, material_id];
                        keyed(SQL.delete_key_material, &target)
                            .execute(&mut *tx)
                            .await
                            .map_err(backend)?;
                    }
                    if let Some(m) = add {
                        insert_material(&mut tx, m).await?;
                    }
                    let index_owner = key_index_owner(&key.account_id, &key.region, &key.key_id);
                    update_indexes(&mut tx, &index_owner, indexes.as_deref()).await?;
                    tx.commit().await.map_err(backend)
                }

                async fn delete_key(
                    &self,
                    account_id: &str,
                    region: &str,
                    key_id: &str,
                ) -> Result<(), StoreError> {
                    let key = [account_id, region, key_id];
                    let mut tx = self.begin_write(&[]).await?;
                    if let Some(sql) = SQL.delete_key_materials {
                        keyed(sql, &key).execute(&mut *tx).await.map_err(backend)?;
                    }
                    let done = keyed(SQL.delete_key, &key)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound);
                    }
                    let owner = key_owner(account_id, region, key_id);
                    delete_claims(&mut tx, &owner).await?;
                    delete_indexes(&mut tx, &owner).await?;
                    tx.commit().await.map_err(backend)
                }

                async fn list_keys(
                    &self,
                    account_id: &str,
                    region: &str,
                    after_key_id: Option<&str>,
                    limit: u32,
                ) -> Result<Vec<StoredKey>, StoreError> {
                    let scope = [account_id, region];
                    get_page(
                        self,
                        SQL.list_keys,
                        &scope,
                        after_key_id,
                        limit,
                        key_from_row,
                    )
                    .await
                }

                async fn insert_key_material(
                    &self,
                    material: &StoredKeyMaterial,
                ) -> Result<(), StoreError> {
                    self.insert_lone_key_material(material).await
                }

                async fn get_key_material(
                    &self,
                    account_id: &str,
                    region: &str,
                    key_id: &str,
                    material_id: &str,
                ) -> Result<Option<StoredKeyMaterial>, StoreError> {
                    let key = [account_id, region, key_id, material_id];
                    get_one(self, SQL.get_key_material, &key, material_from_row).await
                }

                async fn insert_custom_key_store(
                    &self,
                    store: &StoredCustomKeyStore,
                    claims: &[UniqueClaim],
                    quota: u32,
                ) -> Result<(), StoreError> {
                    let claims = normalize_claims(claims);
                    let owner = cks_owner(&store.account_id, &store.region, &store.id);
                    let mut locks = claim_locks(&claims);
                    locks.push(quota_lock(&store.account_id, &store.region));
                    let mut tx = self.begin_write(&locks).await?;
                    check_claims(&mut tx, &owner, &claims).await?;
                    let count: i64 = sqlx::query_scalar(SQL.count_custom_key_stores)
                        .bind(&store.account_id)
                        .bind(&store.region)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(backend)?;
                    if count_u64(count) >= u64::from(quota) {
                        return Err(StoreError::QuotaExceeded { limit: quota });
                    }
                    sqlx::query(SQL.insert_custom_key_store)
                        .bind(&store.account_id)
                        .bind(&store.region)
                        .bind(&store.id)
                        .bind(&store.name)
                        .bind(&store.store_type)
                        .bind(&store.connection_state)
                        .bind(store.created_at_ms)
                        .bind(store.version)
                        .bind(&store.doc)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| insert_error(e, CUSTOM_KEY_STORE_ID_SCOPE))?;
                    replace_claims(&mut tx, &owner, &claims).await?;
                    tx.commit().await.map_err(backend)
                }

                async fn get_custom_key_store(
                    &self,
                    account_id: &str,
                    region: &str,
                    id: &str,
                ) -> Result<Option<StoredCustomKeyStore>, StoreError> {
                    let key = [account_id, region, id];
                    get_one(self, SQL.get_custom_key_store, &key, cks_from_row).await
                }

                async fn update_custom_key_store(
                    &self,
                    store: &StoredCustomKeyStore,
                    claims: Option<&[UniqueClaim]>,
                ) -> Result<(), StoreError> {
                    let claims = claims.map(normalize_claims);
                    let locks = claims.as_deref().map(claim_locks).unwrap_or_default();
                    let mut tx = self.begin_write(&locks).await?;
                    let done = sqlx::query(SQL.update_custom_key_store)
                        .bind(&store.name)
                        .bind(&store.store_type)
                        .bind(&store.connection_state)
                        .bind(&store.doc)
                        .bind(store.version)
                        .bind(&store.account_id)
                        .bind(&store.region)
                        .bind(&store.id)
                        .bind(store.version.wrapping_sub(1))
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                    let id = [&*store.account_id, &store.region, &store.id];
                    let exists = SQL.custom_key_store_exists;
                    cas_outcome(&mut tx, done.rows_affected(), exists, &id).await?;
                    let owner = cks_owner(&store.account_id, &store.region, &store.id);
                    update_claims(&mut tx, &owner, claims.as_deref()).await?;
                    tx.commit().await.map_err(backend)
                }

                async fn delete_custom_key_store(
                    &self,
                    account_id: &str,
                    region: &str,
                    id: &str,
                    expected_version: i64,
                ) -> Result<(), StoreError> {
                    let key = [account_id, region, id];
                    // Keeps keys from being placed in this store while we look for them.
                    let locks = [cks_lock(account_id, region, id)];
                    let mut tx = self.begin_write(&locks).await?;
                    let done = keyed(SQL.delete_custom_key_store, &key)
                        .bind(expected_version)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                    let exists = SQL.custom_key_store_exists;
                    cas_outcome(&mut tx, done.rows_affected(), exists, &key).await?;
                    let has_keys = keyed(SQL.custom_key_store_has_keys, &key)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(backend)?;
                    if has_keys.is_some() {
                        return Err(StoreError::HasKeys);
                    }
                    delete_claims(&mut tx, &cks_owner(account_id, region, id)).await?;
                    tx.commit().await.map_err(backend)
                }

                async fn list_custom_key_stores(
                    &self,
                    account_id: &str,
                    region: &str,
                    after_id: Option<&str>,
                    limit: u32,
                ) -> Result<Vec<StoredCustomKeyStore>, StoreError> {
                    let scope = [account_id, region];
                    let sql = SQL.list_custom_key_stores;
                    get_page(self, sql, &scope, after_id, limit, cks_from_row).await
                }

                async fn list_custom_key_stores_in_states(
                    &self,
                    states: &[&str],
                ) -> Result<Vec<StoredCustomKeyStore>, StoreError> {
                    if states.is_empty() {
                        return Ok(Vec::new());
                    }
                    self.select_custom_key_stores_in_states(states).await
                }

                async fn count_keys_in_custom_key_store(
                    &self,
                    account_id: &str,
                    region: &str,
                    id: &str,
                ) -> Result<u64, StoreError> {
                    let n: i64 = sqlx::query_scalar(SQL.count_keys_in_custom_key_store)
                        .bind(account_id)
                        .bind(region)
                        .bind(id)
                        .fetch_one(self.reader())
                        .await
                        .map_err(backend)?;
                    Ok(count_u64(n))
                }

                async fn try_acquire_lease(
                    &self,
                    name: &str,
                    holder: &str,
                    ttl_ms: i64,
                ) -> Result<bool, StoreError> {
                    self.upsert_lease(name, holder, ttl_ms).await
                }

                async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
                    self.delete_lease(name, holder).await
                }

                async fn reset(&self) -> Result<(), StoreError> {
                    let mut tx = self.begin_write(&[]).await?;
                    for table in TABLES {
                        sqlx::query(&format!("DELETE FROM {table}"))
                            .execute(&mut *tx)
                            .await
                            .map_err(backend)?;
                    }
                    tx.commit().await.map_err(backend)
                }

                async fn insert_document(
                    &self,
                    doc: &StoredDocument,
                    claims: &[UniqueClaim],
                    indexes: &[IndexEntry],
                ) -> Result<(), StoreError> {
                    if doc.version != 1 {
                        return Err(StoreError::VersionMismatch);
                    }
                    let claims = normalize_claims(claims);
                    let indexes = normalize_indexes(indexes);
                    let owner = doc_owner(&doc.kind, &doc.account_id, &doc.region, &doc.id);
                    let mut tx = self.begin_write(&claim_locks(&claims)).await?;
                    check_claims(&mut tx, &owner, &claims).await?;
                    sqlx::query(SQL.insert_document)
                        .bind(&doc.kind)
                        .bind(&doc.account_id)
                        .bind(&doc.region)
                        .bind(&doc.id)
                        .bind(doc.created_at_ms)
                        .bind(doc.version)
                        .bind(&doc.doc)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| insert_error(e, DOCUMENT_ID_SCOPE))?;
                    replace_claims(&mut tx, &owner, &claims).await?;
                    let index_owner =
                        doc_index_owner(&doc.kind, &doc.account_id, &doc.region, &doc.id);
                    replace_indexes(&mut tx, &index_owner, &indexes).await?;
                    tx.commit().await.map_err(backend)
                }

                async fn get_document(
                    &self,
                    kind: &str,
                    account_id: &str,
                    region: &str,
                    id: &str,
                ) -> Result<Option<StoredDocument>, StoreError> {
                    let key = [kind, account_id, region, id];
                    get_one(self, SQL.get_document, &key, doc_from_row).await
                }

                async fn list_documents(
                    &self,
                    kind: &str,
                    account_id: &str,
                    region: &str,
                    after_id: Option<&str>,
                    limit: u32,
                ) -> Result<Vec<StoredDocument>, StoreError> {
                    let scope = [kind, account_id, region];
                    get_page(
                        self,
                        SQL.list_documents,
                        &scope,
                        after_id,
                        limit,
                        doc_from_row,
                    )
                    .await
                }

                async fn update_document(
                    &self,
                    doc: &StoredDocument,
                    claims: Option<&[UniqueClaim]>,
                    indexes: Option<&[IndexEntry]>,
                ) -> Result<(), StoreError> {
                    let claims = claims.map(normalize_claims);
                    let indexes = indexes.map(normalize_indexes);
                    let locks = claims.as_deref().map(claim_locks).unwrap_or_default();
                    let mut tx = self.begin_write(&locks).await?;
                    let done = sqlx::query(SQL.update_document)
                        .bind(&doc.doc)
                        .bind(doc.version)
                        .bind(&doc.kind)
                        .bind(&doc.account_id)
                        .bind(&doc.region)
                        .bind(&doc.id)
                        .bind(doc.version.wrapping_sub(1))
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                    let id = [&*doc.kind, &doc.account_id, &doc.region, &doc.id];
                    cas_outcome(&mut tx, done.rows_affected(), SQL.document_exists, &id).await?;
                    let owner = doc_owner(&doc.kind, &doc.account_id, &doc.region, &doc.id);
                    update_claims(&mut tx, &owner, claims.as_deref()).await?;
                    let index_owner =
                        doc_index_owner(&doc.kind, &doc.account_id, &doc.region, &doc.id);
                    update_indexes(&mut tx, &index_owner, indexes.as_deref()).await?;
                    tx.commit().await.map_err(backend)
                }

                async fn delete_document(
                    &self,
                    kind: &str,
                    account_id: &str,
                    region: &str,
                    id: &str,
                    expected_version: i64,
                ) -> Result<(), StoreError> {
                    let key = [kind, account_id, region, id];
                    let mut tx = self.begin_write(&[]).await?;
                    let done = keyed(SQL.delete_document, &key)
                        .bind(expected_version)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                    cas_outcome(&mut tx, done.rows_affected(), SQL.document_exists, &key).await?;
                    let owner = doc_owner(kind, account_id, region, id);
                    delete_claims(&mut tx, &owner).await?;
                    delete_indexes(&mut tx, &owner).await?;
                    tx.commit().await.map_err(backend)
                }

                async fn list_index(
                    &self,
                    index: &str,
                    min_value: &str,
                    max_value: Option<&str>,
                    after: Option<&IndexHit>,
                    limit: u32,
                ) -> Result<Vec<IndexHit>, StoreError> {
                    let rows = sqlx::query(SQL.list_index)
                        .bind(index)
                        .bind(min_value)
                        .bind(max_value)
                        .bind(after.map(|h| h.value.as_str()))
                        .bind(after.map(|h| h.owner.identity()))
                        .bind(sql_limit(limit))
                        .fetch_all(self.reader())
                        .await
                        .map_err(backend)?;
                    decode_all(&rows, index_hit_from_row)
                }
            }
        }
    };
}

pub(crate) use metadata_store;
