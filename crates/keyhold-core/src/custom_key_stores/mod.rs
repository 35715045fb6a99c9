//! Custom key stores: the control plane (Create/Describe/Connect/Disconnect/Update/Delete) and
//! the connection worker that drives each store's `ConnectionState` machine.
//!
//! * [`model`]: the stored document and its wire view.
//! * [`validation`]: cross-field rules, uniqueness claims, exception mapping.
//! * `operations`: Create, Describe, Connect, Disconnect and Delete; `update`: Update.
//! * [`worker`]: the connection state machine's asynchronous half — one owner per store
//!   (a lease in the metadata store), recovery of stores left `CONNECTING`/`DISCONNECTING`, and
//!   the periodic health check of connected stores.

mod cloudhsm;
pub mod diagnostics;
pub mod model;
mod observed;
mod operations;
mod store_cache;
pub mod validation;
pub mod worker;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_connection;
mod update;

use keyhold_kms_model::Exception;
use std::sync::Arc;

use async_trait::async_trait;
use keyhold_crypto::RootKey;

use crate::error::{KmsError, KmsResult};
use crate::ports::clock::{Clock, SystemClock};
use crate::ports::cloudhsm::HsmClusters;
use crate::ports::xks::{
    HealthCheckReason, XksCallObserver, XksConnector, XksFailure, XksHealth, XksRequestMetadata,
    XksTarget,
};
use crate::ports::MetadataStore;

pub use model::LoadedStore;

/// The default quota of custom key stores per account and Region (AWS's).
pub const DEFAULT_MAX_CUSTOM_KEY_STORES: u32 = 10;

/// Settings of the custom key store service.
#[derive(Debug, Clone)]
pub struct CustomKeyStoreSettings {
    /// Custom key stores allowed per account and Region (`LimitExceededException` beyond).
    pub max_custom_key_stores: u32,
    /// This node's identity as a lease holder. A node restarted with the same id resumes the
    /// stores it owned at once; another node waits for the lease to expire.
    pub node_id: String,
    /// How long a connection lease lasts; must exceed the longest proxy call.
    pub lease_ttl_ms: i64,
    /// Cryptographic requests per second allowed on the keys of one custom key store
    /// (`ThrottlingException` beyond; AWS's quota is 1,800).
    pub crypto_requests_per_second: u32,
}

/// AWS's custom key store request quota: cryptographic operations per second per store.
pub const DEFAULT_CRYPTO_REQUESTS_PER_SECOND: u32 = 1_800;

impl Default for CustomKeyStoreSettings {
    fn default() -> Self {
        Self {
            max_custom_key_stores: DEFAULT_MAX_CUSTOM_KEY_STORES,
            node_id: uuid::Uuid::new_v4().to_string(),
            lease_ttl_ms: 30_000,
            crypto_requests_per_second: DEFAULT_CRYPTO_REQUESTS_PER_SECOND,
        }
    }
}

/// A connector for a Keyhold without an XKS client: every call fails as an internal error.
pub struct UnconfiguredXks;

#[async_trait]
impl XksConnector for UnconfiguredXks {
    async fn get_health_status(
        &self,
        _target: &XksTarget,
        _reason: HealthCheckReason,
        _metadata: &XksRequestMetadata,
    ) -> Result<XksHealth, XksFailure> {
        Err(XksFailure::Internal {
            detail: "no XKS client is configured".into(),
        })
    }
}

/// The custom key store operations of one Keyhold instance. Cheap to clone (shared state).
#[derive(Clone)]
pub struct CustomKeyStores {
    inner: Arc<Inner>,
}

struct Inner {
    /// The metadata store, with the writes of store records intercepted for the cache of
    /// the cryptographic path (`store_cache`).
    store: store_cache::StoreRecords,
    root_key: Arc<RootKey>,
    xks: Arc<dyn XksConnector>,
    settings: CustomKeyStoreSettings,
    /// The domain clock (creation dates), shared with the key operations.
    clock: Arc<dyn Clock>,
    /// CloudHSM clusters, when configured ([`CustomKeyStores::set_hsm_clusters`]).
    hsm: std::sync::OnceLock<Arc<dyn HsmClusters>>,
    /// Stores a worker of this process is driving right now. The lease only separates nodes
    /// (all workers of one node share its holder id), so without this a Connect's worker and
    /// the recovery sweep could drive one store at once (and rotate a kmsuser password twice).
    driving: std::sync::Mutex<std::collections::HashSet<String>>,
    /// `xks` wrapped to report every call, once an observer is set
    /// ([`CustomKeyStores::set_xks_observer`]).
    observed: std::sync::OnceLock<Arc<observed::ObservedXks>>,
}

impl CustomKeyStores {
    /// Custom key stores in `store`, secrets wrapped by `root_key`, proxies reached via `xks`,
    /// on the system clock.
    pub fn new(
        store: Arc<dyn MetadataStore>,
        root_key: Arc<RootKey>,
        xks: Arc<dyn XksConnector>,
        settings: CustomKeyStoreSettings,
    ) -> Self {
        Self::with_clock(store, root_key, xks, settings, Arc::new(SystemClock))
    }

    /// As [`CustomKeyStores::new`], reading the time from `clock` (tests and test-mode hooks
    /// pass a [`crate::ports::clock::ManualClock`]).
    pub fn with_clock(
        store: Arc<dyn MetadataStore>,
        root_key: Arc<RootKey>,
        xks: Arc<dyn XksConnector>,
        settings: CustomKeyStoreSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store: store_cache::StoreRecords::new(store, crate::keys::DEFAULT_RECORD_CACHE_TTL),
                root_key,
                xks,
                settings,
                clock,
                hsm: std::sync::OnceLock::new(),
                driving: Default::default(),
                observed: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Makes AWS_CLOUDHSM stores real: Create checks the cluster and Connect logs in to it.
    /// Without this, Create accepts any cluster id and Connect reports `CLUSTER_NOT_FOUND`.
    /// Only the first call has an effect.
    pub fn set_hsm_clusters(&self, clusters: Arc<dyn HsmClusters>) {
        let _ = self.inner.hsm.set(clusters);
    }

    /// Reports every XKS proxy call, with the custom key store it was made for, to
    /// `observer` (per-store metrics). Only the first call has an effect.
    pub fn set_xks_observer(&self, observer: Arc<dyn XksCallObserver>) {
        let _ = self.inner.observed.set(Arc::new(observed::ObservedXks::new(
            Arc::clone(&self.inner.xks),
            observer,
        )));
    }

    /// The CloudHSM clusters, if configured.
    pub(crate) fn hsm_clusters(&self) -> Option<Arc<dyn HsmClusters>> {
        self.inner.hsm.get().cloned()
    }

    /// The domain clock.
    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.inner.clock)
    }

    /// The settings in force.
    pub fn settings(&self) -> &CustomKeyStoreSettings {
        &self.inner.settings
    }

    /// Calls GetHealthStatus for Create or Update. With `strict`, every failure rejects the
    /// request with the XKS specification's exception; without, only a missing or invalid VPC
    /// endpoint service does (the proxy itself is reached when the store connects).
    pub(crate) async fn probe(
        &self,
        target: &XksTarget,
        reason: HealthCheckReason,
        metadata: &XksRequestMetadata,
        strict: bool,
    ) -> KmsResult<()> {
        let Err(f) = self
            .connector()
            .get_health_status(target, reason, metadata)
            .await
        else {
            return Ok(());
        };
        let vpc_problem = matches!(
            f,
            XksFailure::VpcEndpointServiceNotFound | XksFailure::VpcEndpointServiceInvalid { .. }
        );
        tracing::info!(failure = %f, ?reason, "XKS proxy probe failed");
        if strict || vpc_problem {
            Err(validation::probe_error(&f))
        } else {
            Ok(())
        }
    }

    /// The connector that reaches XKS proxies (for the keys of external key stores), observed
    /// when an observer is set.
    pub(crate) fn connector(&self) -> Arc<dyn XksConnector> {
        match self.inner.observed.get() {
            Some(o) => Arc::clone(o) as Arc<dyn XksConnector>,
            None => Arc::clone(&self.inner.xks),
        }
    }

    /// The proxy target of an external key store, its secret unwrapped (for key operations).
    /// Built once per version of the store's proxy properties and shared (see `store_cache`):
    /// unwrapping the secret with the root key on every call would cost more than the rest of
    /// the call's local work.
    pub(crate) fn xks_target(&self, s: &LoadedStore) -> KmsResult<Arc<XksTarget>> {
        let x = s.doc.xks().ok_or_else(|| {
            KmsError::internal(std::io::Error::other(format!(
                "custom key store {} has no external key store properties",
                s.row.id
            )))
        })?;
        let target = match self.inner.store.target(&s.row, x) {
            Some(target) => target,
            None => {
                let secret = model::unwrap_secret(
                    &self.inner.root_key,
                    &s.row,
                    model::SecretKind::XksSecret,
                    &x.wrapped_secret,
                )?;
                let target = Arc::new(x.target(&s.row.region, secret));
                self.inner.store.keep_target(&s.row, x, Arc::clone(&target));
                target
            }
        };
        if let Some(o) = self.inner.observed.get() {
            o.register(&target, &s.row.id);
        }
        Ok(target)
    }

    /// [`CustomKeyStores::find`] for a cryptographic operation on one of the store's keys:
    /// the record may come from the cache (changes made through this node are seen at once,
    /// through another node within the TTL; see `store_cache`).
    pub(crate) async fn find_for_use(
        &self,
        account: &str,
        region: &str,
        id: &str,
    ) -> KmsResult<Option<LoadedStore>> {
        Ok(self
            .inner
            .store
            .get_for_use(account, region, id)
            .await?
            .map(|s| (*s).clone()))
    }

    /// How long a store change made through another node may go unseen by the
    /// cryptographic operations (zero: read on every call).
    pub(crate) fn set_cache_ttl(&self, ttl: std::time::Duration) {
        self.inner.store.set_ttl(ttl);
    }

    /// Drops every cached store record (after the whole metadata store was reset).
    pub(crate) fn clear_cache(&self) {
        self.inner.store.clear();
    }

    /// Reads a store row without turning its absence into an error.
    pub(crate) async fn find(
        &self,
        account: &str,
        region: &str,
        id: &str,
    ) -> KmsResult<Option<LoadedStore>> {
        match self
            .inner
            .store
            .get_custom_key_store(account, region, id)
            .await?
        {
            Some(row) => Ok(Some(LoadedStore::from_row(row)?)),
            None => Ok(None),
        }
    }

    /// Loads a store of the caller's account and Region, or `CustomKeyStoreNotFoundException`.
    pub async fn load(&self, account: &str, region: &str, id: &str) -> KmsResult<LoadedStore> {
        let row = self
            .inner
            .store
            .get_custom_key_store(account, region, id)
            .await?
            .ok_or_else(|| not_found_id(id))?;
        LoadedStore::from_row(row)
    }
}

/// `CustomKeyStoreNotFoundException` for an id.
pub(crate) fn not_found_id(id: &str) -> KmsError {
    KmsError::new(
        Exception::CustomKeyStoreNotFound,
        format!("Custom key store {id} does not exist in this account and Region."),
    )
}

/// `CustomKeyStoreNotFoundException` for a name.
pub(crate) fn not_found_name(name: &str) -> KmsError {
    KmsError::new(
        Exception::CustomKeyStoreNotFound,
        format!("Custom key store with name {name} does not exist in this account and Region."),
    )
}

/// `CustomKeyStoreInvalidStateException`.
pub(crate) fn invalid_state(message: String) -> KmsError {
    KmsError::new(Exception::CustomKeyStoreInvalidState, message)
}
