//! Statements shared by the SQLite store's methods; all run inside its write transaction.

use keyhold_core::ports::{StoreError, StoredKeyMaterial, UniqueClaim};
use sqlx::SqliteConnection;

use crate::common::{backend, insert_error};
use crate::KEY_MATERIAL_ID_SCOPE;

/// Fails with the scope of the first claim that conflicts with another owner's claim.
pub(super) async fn check_claims(
    conn: &mut SqliteConnection,
    owner: &str,
    claims: &[UniqueClaim],
) -> Result<(), StoreError> {
    for c in claims {
        let hit = sqlx::query(
            "SELECT 1 FROM unique_claims \
             WHERE scope = ? AND value = ? AND owner <> ? AND (? OR exclusive <> 0) LIMIT 1",
        )
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
    conn: &mut SqliteConnection,
    owner: &str,
    claims: &[UniqueClaim],
) -> Result<(), StoreError> {
    delete_claims(conn, owner).await?;
    for c in claims {
        sqlx::query(
            "INSERT INTO unique_claims (scope, value, owner, exclusive) VALUES (?, ?, ?, ?)",
        )
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

pub(super) async fn delete_claims(
    conn: &mut SqliteConnection,
    owner: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM unique_claims WHERE owner = ?")
        .bind(owner)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    Ok(())
}

/// After a compare-and-set touched no row: `VersionMismatch` if the row exists, else `NotFound`.
pub(super) async fn cas_failure(
    conn: &mut SqliteConnection,
    sql: &'static str,
    account_id: &str,
    region: &str,
    id: &str,
) -> StoreError {
    let found = sqlx::query(sql)
        .bind(account_id)
        .bind(region)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await;
    match found {
        Ok(Some(_)) => StoreError::VersionMismatch,
        Ok(None) => StoreError::NotFound,
        Err(e) => backend(e),
    }
}

pub(super) const KEY_EXISTS: &str =
    "SELECT 1 FROM keys WHERE account_id = ? AND region = ? AND key_id = ?";
pub(super) const CKS_EXISTS: &str =
    "SELECT 1 FROM custom_key_stores WHERE account_id = ? AND region = ? AND id = ?";

pub(super) async fn insert_material(
    conn: &mut SqliteConnection,
    m: &StoredKeyMaterial,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO key_materials \
         (account_id, region, key_id, material_id, created_at_ms, wrapped) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
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
