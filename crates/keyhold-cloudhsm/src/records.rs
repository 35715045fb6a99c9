//! Persistence of the CloudHSM records as documents of the [`MetadataStore`], so several
//! Keyhold nodes sharing one PostgreSQL database see the same clusters, and
//! `/moto-api/reset` clears them.
//!
//! * A cluster is one document of kind [`CLUSTER_KIND`] (id = cluster id) holding everything
//!   about it: HSMs, `kmsuser` and its lock-out counter, certificates, tags and its backup
//!   lineage. Cluster ids are unique across accounts through the claim [`CLUSTER_ID_SCOPE`].
//! * A subnet Keyhold has touched is one document of kind [`SUBNET_KIND`] (id = subnet id).
//! * Every change is a compare-and-set on the document's version, retried on concurrent
//!   modification ([`Records::update`]).
//!
//! [`State`](crate::state::State) is only this node's cache of what it last read or wrote,
//! for synchronous readers; [`crate::ClusterService::refresh_cluster`] brings one cluster
//! (and its subnets) up to date.

use std::sync::Arc;

use keyhold_core::ports::cloudhsm::CloudHsmFailure;
use keyhold_core::ports::{MetadataStore, StoreError, StoredDocument, UniqueClaim};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::state::{cluster_state, subnet_key, ClusterRec, SubnetRec};
use crate::ApiError;

/// Document kind of clusters.
pub const CLUSTER_KIND: &str = "cloudhsm-cluster";
/// Document kind of subnets.
pub const SUBNET_KIND: &str = "cloudhsm-subnet";
/// Claim scope making cluster ids unique across accounts and Regions.
pub const CLUSTER_ID_SCOPE: &str = "cloudhsm-cluster-id";
/// Compare-and-set attempts before a write gives up.
const MAX_ATTEMPTS: u32 = 64;
/// Page size when listing documents.
const PAGE: u32 = 500;

/// A backend failure, logged, as `CloudHsmInternalFailureException`.
fn store_failure(e: StoreError) -> ApiError {
    tracing::error!(error = ?e, "the CloudHSM records in the metadata store failed");
    ApiError::internal("Reading or writing the cluster records failed.")
}

/// A record that does not decode, as `CloudHsmInternalFailureException`.
fn decode_failure(e: serde_json::Error) -> ApiError {
    tracing::error!(error = %e, "a CloudHSM record in the metadata store does not decode");
    ApiError::internal("A cluster record is corrupt.")
}

/// Encodes a record.
fn encode<T: Serialize>(rec: &T) -> Result<String, ApiError> {
    serde_json::to_string(rec).map_err(decode_failure)
}

/// The CloudHSM records in the metadata store.
#[derive(Clone)]
pub struct Records {
    store: Arc<dyn MetadataStore>,
}

impl Records {
    /// Records kept in `store`.
    pub fn new(store: Arc<dyn MetadataStore>) -> Self {
        Self { store }
    }

    /// Reads and decodes one document, with its stored row.
    pub async fn get<T: DeserializeOwned>(
        &self,
        kind: &str,
        account: &str,
        region: &str,
        id: &str,
    ) -> Result<Option<(T, StoredDocument)>, ApiError> {
        let Some(row) = self
            .store
            .get_document(kind, account, region, id)
            .await
            .map_err(store_failure)?
        else {
            return Ok(None);
        };
        let rec = serde_json::from_str(&row.doc).map_err(decode_failure)?;
        Ok(Some((rec, row)))
    }

    /// All clusters of an account and Region (deleted ones included), in id order.
    pub async fn clusters(&self, account: &str, region: &str) -> Result<Vec<ClusterRec>, ApiError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let rows = self
                .store
                .list_documents(CLUSTER_KIND, account, region, after.as_deref(), PAGE)
                .await
                .map_err(store_failure)?;
            let full = rows.len() == PAGE as usize;
            after = rows.last().map(|r| r.id.clone());
            for row in rows {
                out.push(serde_json::from_str(&row.doc).map_err(decode_failure)?);
            }
            if !full {
                return Ok(out);
            }
        }
    }

    /// Creates a cluster; `Ok(false)` when its id is already taken (in any account).
    pub async fn insert_cluster(&self, rec: &ClusterRec) -> Result<bool, ApiError> {
        let row = StoredDocument {
            kind: CLUSTER_KIND.into(),
            account_id: rec.account.clone(),
            region: rec.region.clone(),
            id: rec.cluster_id.clone(),
            created_at_ms: (rec.create_timestamp * 1000.0) as i64,
            version: 1,
            doc: encode(rec)?,
        };
        let claim = UniqueClaim::exclusive(CLUSTER_ID_SCOPE, rec.cluster_id.clone());
        match self.store.insert_document(&row, &[claim], &[]).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(store_failure(e)),
        }
    }

    /// Creates a subnet's record; `Ok(false)` when it already exists (it is left as it is).
    pub async fn insert_subnet(
        &self,
        account: &str,
        region: &str,
        id: &str,
        rec: &SubnetRec,
    ) -> Result<bool, ApiError> {
        let row = StoredDocument {
            kind: SUBNET_KIND.into(),
            account_id: account.into(),
            region: region.into(),
            id: id.into(),
            created_at_ms: now_ms(),
            version: 1,
            doc: encode(rec)?,
        };
        match self.store.insert_document(&row, &[], &[]).await {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(store_failure(e)),
        }
    }

    /// Applies `f` to the document `(kind, account, region, id)` and writes the result by
    /// compare-and-set, re-reading and re-applying `f` when another writer (on this or
    /// another node) got there first. A missing document is `missing()` when that is `Some`
    /// (and is then created), else `f` is not called and the answer is `Ok(None)`. When `f`
    /// fails nothing is written. Returns `f`'s value and the record as written.
    pub async fn update<T, R>(
        &self,
        kind: &str,
        account: &str,
        region: &str,
        id: &str,
        missing: Option<fn() -> T>,
        mut f: impl FnMut(&mut T) -> Result<R, ApiError>,
    ) -> Result<Option<(R, T)>, ApiError>
    where
        T: Serialize + DeserializeOwned,
    {
        for _ in 0..MAX_ATTEMPTS {
            let current = self.get::<T>(kind, account, region, id).await?;
            let (mut rec, version) = match (current, missing) {
                (Some((rec, row)), _) => (rec, Some(row.version)),
                (None, Some(new)) => (new(), None),
                (None, None) => return Ok(None),
            };
            let out = f(&mut rec)?;
            let mut row = StoredDocument {
                kind: kind.into(),
                account_id: account.into(),
                region: region.into(),
                id: id.into(),
                created_at_ms: now_ms(),
                version: 1,
                doc: encode(&rec)?,
            };
            let written = match version {
                Some(v) => {
                    row.version = v + 1;
                    self.store.update_document(&row, None, None).await
                }
                None => self.store.insert_document(&row, &[], &[]).await,
            };
            match written {
                Ok(()) => return Ok(Some((out, rec))),
                // Changed, deleted or created meanwhile: read again and re-apply.
                Err(StoreError::VersionMismatch)
                | Err(StoreError::NotFound)
                | Err(StoreError::Conflict { .. }) => tokio::task::yield_now().await,
                Err(e) => return Err(store_failure(e)),
            }
        }
        tracing::error!(
            kind,
            id,
            "giving up on a CloudHSM record under heavy contention"
        );
        Err(ApiError::internal(
            "The cluster record is being modified concurrently; retry.",
        ))
    }

    /// A subnet's record (defaults when Keyhold never touched it).
    pub async fn subnet(
        &self,
        account: &str,
        region: &str,
        id: &str,
    ) -> Result<SubnetRec, ApiError> {
        Ok(self
            .get::<SubnetRec>(SUBNET_KIND, account, region, id)
            .await?
            .map(|(s, _)| s)
            .unwrap_or_default())
    }

    /// Applies `f` to a subnet's record (created with defaults on first use).
    pub async fn update_subnet<R>(
        &self,
        account: &str,
        region: &str,
        id: &str,
        f: impl FnMut(&mut SubnetRec) -> Result<R, ApiError>,
    ) -> Result<(R, SubnetRec), ApiError> {
        self.update(
            SUBNET_KIND,
            account,
            region,
            id,
            Some(SubnetRec::default),
            f,
        )
        .await?
        .ok_or_else(|| ApiError::internal("The subnet record vanished."))
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(i64::MAX)
}

impl crate::ClusterService {
    /// Remembers `rec` in this node's cache (for synchronous readers).
    fn cache(&self, rec: &ClusterRec) {
        self.lock()
            .clusters
            .insert(rec.cluster_id.clone(), rec.clone());
    }

    /// Re-reads the cluster `id` from the store into this node's cache (dropping it from the
    /// cache when the store no longer has it, e.g. after `/moto-api/reset`). Call before
    /// synchronous readers of [`crate::ClusterService::lock`] that must see other nodes' writes.
    pub(crate) async fn refresh_cluster(
        &self,
        account: &str,
        region: &str,
        id: &str,
    ) -> Result<Option<ClusterRec>, ApiError> {
        let rec = self
            .inner
            .records
            .get::<ClusterRec>(CLUSTER_KIND, account, region, id)
            .await?
            .map(|(c, _)| c);
        match &rec {
            Some(c) => {
                // The subnets Connect checks, too.
                let mut subnets = Vec::new();
                for subnet in c.subnet_mapping.values() {
                    let s = self.inner.records.subnet(account, region, subnet).await?;
                    subnets.push((subnet_key(account, region, subnet), s));
                }
                self.cache(c);
                self.lock().subnets.extend(subnets);
            }
            None => {
                let mut st = self.lock();
                if st.cluster(account, region, id).is_some() {
                    st.clusters.remove(id);
                }
            }
        }
        Ok(rec)
    }

    /// The cluster `id` (fresh from the store) unless absent or deleted
    /// (`CloudHsmResourceNotFoundException`).
    pub(crate) async fn live_cluster(
        &self,
        account: &str,
        region: &str,
        id: &str,
    ) -> Result<ClusterRec, ApiError> {
        check_cluster_id(id)?;
        self.refresh_cluster(account, region, id)
            .await?
            .filter(|c| c.state != cluster_state::DELETED)
            .ok_or_else(|| crate::api::cluster_not_found(id))
    }

    /// Applies `f` to the live cluster `id` by compare-and-set with retries (`f` may run more
    /// than once, so it must only change the record); returns `f`'s value and the record as
    /// written.
    pub(crate) async fn with_cluster<R>(
        &self,
        account: &str,
        region: &str,
        id: &str,
        mut f: impl FnMut(&mut ClusterRec) -> Result<R, ApiError>,
    ) -> Result<(R, ClusterRec), ApiError> {
        check_cluster_id(id)?;
        let done = self
            .inner
            .records
            .update::<ClusterRec, R>(CLUSTER_KIND, account, region, id, None, |c| {
                if c.state == cluster_state::DELETED {
                    return Err(crate::api::cluster_not_found(id));
                }
                f(c)
            })
            .await?;
        let (out, rec) = done.ok_or_else(|| crate::api::cluster_not_found(id))?;
        self.cache(&rec);
        Ok((out, rec))
    }

    /// [`Self::refresh_cluster`] for callers that go on with the cache when the store fails
    /// (the failure is logged).
    pub(crate) async fn refresh_quietly(&self, account: &str, region: &str, id: &str) {
        if let Err(e) = self.refresh_cluster(account, region, id).await {
            tracing::warn!(cluster_id = id, error = %e, "refreshing a CloudHSM cluster failed");
        }
    }

    /// Records the outcome of a `kmsuser` login: a success clears the failure counter (and,
    /// unless `as_store`, marks the user logged in); wrong credentials count one failure.
    /// Compare-and-set with retries, so logins on several nodes all count; a store failure is
    /// logged.
    pub(crate) async fn record_login(
        &self,
        account: &str,
        region: &str,
        id: &str,
        failure: Option<&CloudHsmFailure>,
        as_store: bool,
    ) {
        let done = self
            .with_cluster(account, region, id, |c| {
                if let Some(user) = c.kmsuser.as_mut() {
                    match failure {
                        None => {
                            user.failed_logins = 0;
                            if !as_store {
                                user.logged_in = true;
                            }
                        }
                        Some(CloudHsmFailure::InvalidCredentials { .. }) => user.failed_logins += 1,
                        Some(_) => {}
                    }
                }
                Ok(())
            })
            .await;
        if let Err(e) = done {
            tracing::error!(cluster_id = id, error = %e, "recording a kmsuser login failed");
        }
    }

    /// The CloudHSM records in the metadata store.
    pub(crate) fn records(&self) -> &Records {
        &self.inner.records
    }
}

/// `CloudHsmInvalidRequestException` unless `id` has the shape of a cluster id.
fn check_cluster_id(id: &str) -> Result<(), ApiError> {
    if crate::api::valid_cluster_id(id) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "Invalid cluster id {:?}.",
            id.chars().take(40).collect::<String>()
        )))
    }
}
