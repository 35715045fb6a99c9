//! The [`statements!`] macro: the statements the shared `MetadataStore` methods are built of.

/// Defines, in a child module `statements` of the invoking engine module, the building blocks
/// of the `MetadataStore` methods of `$Store` (an [`Engine`]): binding a row's key, reading one
/// row or one page, telling why a compare-and-set failed, and the claim and index-entry
/// statements.
///
/// Invoked by [`metadata_store!`]; `statements::insert_material` is also the engine's own
/// [`Engine::insert_lone_key_material`]'s building block.
///
/// [`Engine`]: crate::shared::Engine
/// [`Engine::insert_lone_key_material`]: crate::shared::Engine::insert_lone_key_material
/// [`metadata_store!`]: crate::shared::metadata_store
macro_rules! statements {
    ($Store:ident) => {
        /// The statements shared by this engine's `MetadataStore` methods.
        mod statements {
            use keyhold_core::ports::{
                IndexEntry, IndexOwner, StoreError, StoredKeyMaterial, UniqueClaim,
            };
            use sqlx::query::Query;
            use sqlx::Database;

            use super::$Store;
            use crate::common::{backend, decode_all, insert_error, sql_limit};
            use crate::shared::{Engine, Sql};
            use crate::KEY_MATERIAL_ID_SCOPE;

            /// This engine's `sqlx` driver.
            type Db = <$Store as Engine>::Db;
            /// A connection of this engine (a transaction dereferences to one).
            type Conn = <Db as Database>::Connection;
            /// A row this engine returns.
            type Row = <Db as Database>::Row;
            /// A row decoder from `crate::common`.
            type Decode<T> = fn(&Row) -> Result<T, sqlx::Error>;

            /// This engine's statements.
            pub(super) const SQL: &Sql = &<$Store as Engine>::SQL;

            /// `sql` with the parts of a row's key (or of a page's scope) bound in order.
            pub(super) fn keyed<'q>(
                sql: &'q str,
                key: &[&'q str],
            ) -> Query<'q, Db, <Db as Database>::Arguments<'q>> {
                key.iter()
                    .fold(sqlx::query(sql), |query, part| query.bind(*part))
            }

            /// Reads the row `sql` selects by `key`.
            pub(super) async fn get_one<T>(
                store: &$Store,
                sql: &'static str,
                key: &[&str],
                decode: Decode<T>,
            ) -> Result<Option<T>, StoreError> {
                let row = keyed(sql, key)
                    .fetch_optional(store.reader())
                    .await
                    .map_err(backend)?;
                row.as_ref().map(decode).transpose().map_err(backend)
            }

            /// Reads one page: `sql` binds `scope`, then the id to start after (`NULL` on the
            /// first page), then the page size.
            pub(super) async fn get_page<T>(
                store: &$Store,
                sql: &'static str,
                scope: &[&str],
                after: Option<&str>,
                limit: u32,
                decode: Decode<T>,
            ) -> Result<Vec<T>, StoreError> {
                let rows = keyed(sql, scope)
                    .bind(after)
                    .bind(sql_limit(limit))
                    .fetch_all(store.reader())
                    .await
                    .map_err(backend)?;
                decode_all(&rows, decode)
            }

            /// After a compare-and-set that touched `affected` rows: `Ok` if it touched one,
            /// else `VersionMismatch` if the row `exists` finds by `key` is there, else
            /// `NotFound`.
            pub(super) async fn cas_outcome(
                conn: &mut Conn,
                affected: u64,
                exists: &'static str,
                key: &[&str],
            ) -> Result<(), StoreError> {
                if affected > 0 {
                    return Ok(());
                }
                Err(match keyed(exists, key).fetch_optional(&mut *conn).await {
                    Ok(Some(_)) => StoreError::VersionMismatch,
                    Ok(None) => StoreError::NotFound,
                    Err(e) => backend(e),
                })
            }

            /// Fails with the scope of the first claim that conflicts with another owner's
            /// claim.
            pub(super) async fn check_claims(
                conn: &mut Conn,
                owner: &str,
                claims: &[UniqueClaim],
            ) -> Result<(), StoreError> {
                for c in claims {
                    let hit = sqlx::query(SQL.check_claim)
                        .bind(&c.scope)
                        .bind(&c.value)
                        .bind(owner)
                        .bind(c.exclusive)
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(backend)?;
                    if hit.is_some() {
                        return Err(StoreError::Conflict {
                            scope: c.scope.clone(),
                        });
                    }
                }
                Ok(())
            }

            /// Replaces every claim of `owner` by `claims` (already checked and normalized).
            pub(super) async fn replace_claims(
                conn: &mut Conn,
                owner: &str,
                claims: &[UniqueClaim],
            ) -> Result<(), StoreError> {
                delete_claims(conn, owner).await?;
                for c in claims {
                    sqlx::query(SQL.insert_claim)
                        .bind(&c.scope)
                        .bind(&c.value)
                        .bind(owner)
                        .bind(c.exclusive)
                        .execute(&mut *conn)
                        .await
                        .map_err(backend)?;
                }
                Ok(())
            }

            /// Checks `claims` (normalized), if given, and makes them all of `owner`'s claims.
            pub(super) async fn update_claims(
                conn: &mut Conn,
                owner: &str,
                claims: Option<&[UniqueClaim]>,
            ) -> Result<(), StoreError> {
                if let Some(claims) = claims {
                    check_claims(conn, owner, claims).await?;
                    replace_claims(conn, owner, claims).await?;
                }
                Ok(())
            }

            /// Deletes every claim of `owner`.
            pub(super) async fn delete_claims(
                conn: &mut Conn,
                owner: &str,
            ) -> Result<(), StoreError> {
                keyed(SQL.delete_claims, &[owner])
                    .execute(&mut *conn)
                    .await
                    .map_err(backend)?;
                Ok(())
            }

            /// Replaces every index entry of `owner` by `entries` (already normalized).
            pub(super) async fn replace_indexes(
                conn: &mut Conn,
                owner: &IndexOwner,
                entries: &[IndexEntry],
            ) -> Result<(), StoreError> {
                let identity = owner.identity();
                delete_indexes(conn, &identity).await?;
                let (kind, account_id, region, id) = match owner {
                    IndexOwner::Key {
                        account_id,
                        region,
                        key_id,
                    } => (None, account_id, region, key_id),
                    IndexOwner::Document {
                        kind,
                        account_id,
                        region,
                        id,
                    } => (Some(kind), account_id, region, id),
                };
                for e in entries {
                    sqlx::query(SQL.insert_index_entry)
                        .bind(&e.index)
                        .bind(&e.value)
                        .bind(&identity)
                        .bind(kind)
                        .bind(account_id)
                        .bind(region)
                        .bind(id)
                        .execute(&mut *conn)
                        .await
                        .map_err(backend)?;
                }
                Ok(())
            }

            /// Replaces `owner`'s index entries when `entries` is given (normalized).
            pub(super) async fn update_indexes(
                conn: &mut Conn,
                owner: &IndexOwner,
                entries: Option<&[IndexEntry]>,
            ) -> Result<(), StoreError> {
                match entries {
                    Some(entries) => replace_indexes(conn, owner, entries).await,
                    None => Ok(()),
                }
            }

            /// Deletes every index entry of the owner with identity `owner`.
            pub(super) async fn delete_indexes(
                conn: &mut Conn,
                owner: &str,
            ) -> Result<(), StoreError> {
                keyed(SQL.delete_index_entries, &[owner])
                    .execute(&mut *conn)
                    .await
                    .map_err(backend)?;
                Ok(())
            }

            /// Inserts one key material.
            pub(super) async fn insert_material(
                conn: &mut Conn,
                m: &StoredKeyMaterial,
            ) -> Result<(), StoreError> {
                sqlx::query(SQL.insert_key_material)
                    .bind(&m.account_id)
                    .bind(&m.region)
                    .bind(&m.key_id)
                    .bind(&m.material_id)
                    .bind(m.created_at_ms)
                    .bind(&m.wrapped)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| insert_error(e, KEY_MATERIAL_ID_SCOPE))?;
                Ok(())
            }
        }
    };
}

pub(crate) use statements;
