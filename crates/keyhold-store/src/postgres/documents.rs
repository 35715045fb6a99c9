//! The generic documents of the PostgreSQL store (called from its `MetadataStore` impl).

use keyhold_core::ports::{StoreError, StoredDocument, UniqueClaim};
use sqlx::PgConnection;

use super::helpers::{check_claims, claim_lock, delete_claims, replace_claims};
use super::PostgresStore;
use crate::common::{
    backend, decode_all, doc_from_row, doc_owner, insert_error, normalize_claims, sql_limit,
    DOC_COLUMNS,
};
use crate::DOCUMENT_ID_SCOPE;

impl PostgresStore {
    pub(super) async fn doc_insert(
        &self,
        doc: &StoredDocument,
        claims: &[UniqueClaim],
    ) -> Result<(), StoreError> {
        if doc.version != 1 {
            return Err(StoreError::VersionMismatch);
        }
        let claims = normalize_claims(claims);
        let owner = doc_owner(&doc.kind, &doc.account_id, &doc.region, &doc.id);
        let locks: Vec<String> = claims.iter().map(claim_lock).collect();
        let mut tx = self.begin().await?;
        self.lock(&mut tx, &locks).await?;
        check_claims(&mut tx, &owner, &claims).await?;
        sqlx::query(
            "INSERT INTO documents (kind, account_id, region, id, created_at_ms, version, doc) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
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
        tx.commit().await.map_err(backend)
    }

    pub(super) async fn doc_get(
        &self,
        kind: &str,
        account_id: &str,
        region: &str,
        id: &str,
    ) -> Result<Option<StoredDocument>, StoreError> {
        let sql = format!(
            "SELECT {DOC_COLUMNS} FROM documents \
             WHERE kind = $1 AND account_id = $2 AND region = $3 AND id = $4"
        );
        let row = sqlx::query(&sql)
            .bind(kind)
            .bind(account_id)
            .bind(region)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(doc_from_row).transpose().map_err(backend)
    }

    pub(super) async fn doc_list(
        &self,
        kind: &str,
        account_id: &str,
        region: &str,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredDocument>, StoreError> {
        let sql = format!(
            "SELECT {DOC_COLUMNS} FROM documents \
             WHERE kind = $1 AND account_id = $2 AND region = $3 \
             AND ($4::text IS NULL OR id > $4) ORDER BY id LIMIT $5"
        );
        let rows = sqlx::query(&sql)
            .bind(kind)
            .bind(account_id)
            .bind(region)
            .bind(after_id)
            .bind(sql_limit(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        decode_all(&rows, doc_from_row)
    }

    pub(super) async fn doc_update(
        &self,
        doc: &StoredDocument,
        claims: Option<&[UniqueClaim]>,
    ) -> Result<(), StoreError> {
        let claims = claims.map(normalize_claims);
        let mut tx = self.begin().await?;
        if let Some(claims) = &claims {
            let locks: Vec<String> = claims.iter().map(claim_lock).collect();
            self.lock(&mut tx, &locks).await?;
        }
        let done = sqlx::query(
            "UPDATE documents SET doc = $1, version = $2 \
             WHERE kind = $3 AND account_id = $4 AND region = $5 AND id = $6 AND version = $7",
        )
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
        if done.rows_affected() == 0 {
            return Err(
                doc_cas_failure(&mut tx, &doc.kind, &doc.account_id, &doc.region, &doc.id).await,
            );
        }
        if let Some(claims) = &claims {
            let owner = doc_owner(&doc.kind, &doc.account_id, &doc.region, &doc.id);
            check_claims(&mut tx, &owner, claims).await?;
            replace_claims(&mut tx, &owner, claims).await?;
        }
        tx.commit().await.map_err(backend)
    }

    pub(super) async fn doc_delete(
        &self,
        kind: &str,
        account_id: &str,
        region: &str,
        id: &str,
        expected_version: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "DELETE FROM documents \
             WHERE kind = $1 AND account_id = $2 AND region = $3 AND id = $4 AND version = $5",
        )
        .bind(kind)
        .bind(account_id)
        .bind(region)
        .bind(id)
        .bind(expected_version)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if done.rows_affected() == 0 {
            return Err(doc_cas_failure(&mut tx, kind, account_id, region, id).await);
        }
        delete_claims(&mut tx, &doc_owner(kind, account_id, region, id)).await?;
        tx.commit().await.map_err(backend)
    }
}

/// After a compare-and-set touched no document: `VersionMismatch` if it exists, else `NotFound`.
async fn doc_cas_failure(
    conn: &mut PgConnection,
    kind: &str,
    account_id: &str,
    region: &str,
    id: &str,
) -> StoreError {
    let found = sqlx::query(
        "SELECT 1 FROM documents WHERE kind = $1 AND account_id = $2 AND region = $3 AND id = $4",
    )
    .bind(kind)
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
