//! The Keyhold domain: KMS keys, key states, custom key stores, and the ports to backends.
//!
//! [`Kms`] implements the generated `KmsService` trait (`service.rs`, one method per operation);
//! operations take and return the wire shapes of `keyhold-kms-model` (plain data), and fail
//! with [`KmsError`]: a typed AWS exception with its message, or an internal error. Nothing here knows HTTP, JSON on the
//! wire, SQL or PKCS#11.
#![warn(missing_docs)]

pub mod arn;
pub mod authz;
pub mod context;
pub mod custom_key_stores;
pub mod error;
pub mod keys;
pub mod paging;
pub mod ports;
mod service;

use std::sync::Arc;

pub use context::RequestContext;
pub use error::{KmsError, KmsResult};

use keyhold_crypto::RootKey;
use ports::clock::{Clock, SystemClock};
use ports::MetadataStore;

/// One Keyhold instance's domain services.
pub struct Kms {
    /// KMS keys.
    pub keys: keys::Keys,
    /// Custom key stores.
    pub custom_key_stores: custom_key_stores::CustomKeyStores,
    store: Arc<dyn MetadataStore>,
}

impl Kms {
    /// The domain over `store`, with secrets wrapped by `root_key`, without an XKS client
    /// (external key stores fail to connect) and with default custom key store settings.
    pub fn new(store: Arc<dyn MetadataStore>, root_key: Arc<RootKey>) -> Self {
        Self::with_custom_key_stores(
            store,
            root_key,
            Arc::new(custom_key_stores::UnconfiguredXks),
            custom_key_stores::CustomKeyStoreSettings::default(),
        )
    }

    /// The domain over `store`, reaching XKS proxies through `xks`, on the system clock.
    pub fn with_custom_key_stores(
        store: Arc<dyn MetadataStore>,
        root_key: Arc<RootKey>,
        xks: Arc<dyn ports::xks::XksConnector>,
        settings: custom_key_stores::CustomKeyStoreSettings,
    ) -> Self {
        Self::with_clock(store, root_key, xks, settings, Arc::new(SystemClock))
    }

    /// As [`Kms::with_custom_key_stores`], reading every domain date (creation, deletion,
    /// "is a scheduled deletion due") from `clock`; tests pass a [`ports::clock::ManualClock`]
    /// to move time instead of waiting for it.
    pub fn with_clock(
        store: Arc<dyn MetadataStore>,
        root_key: Arc<RootKey>,
        xks: Arc<dyn ports::xks::XksConnector>,
        settings: custom_key_stores::CustomKeyStoreSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let custom_key_stores = custom_key_stores::CustomKeyStores::with_clock(
            store.clone(),
            root_key.clone(),
            xks,
            settings,
            clock,
        );
        Self {
            keys: keys::Keys::new(store.clone(), root_key, custom_key_stores.clone()),
            custom_key_stores,
            store,
        }
    }

    /// Wipes all state (test harnesses).
    pub async fn reset(&self) -> KmsResult<()> {
        self.keys.reset().await
    }

    /// How long a key change made through another node sharing the metadata store may go
    /// unseen by this node's cryptographic operations (zero: read the key on every call); see
    /// `keys::key_cache`. Changes made through this node are always seen at once.
    pub fn set_key_cache_ttl(&mut self, ttl: std::time::Duration) {
        self.keys.set_key_cache_ttl(ttl);
    }

    /// Whether the metadata store answers: one cheap read (an index lookup that matches
    /// nothing), for readiness probes.
    pub async fn ping(&self) -> KmsResult<()> {
        self.store
            .list_index("keyhold-readiness-probe", "", Some(""), None, 1)
            .await?;
        Ok(())
    }

    /// How many custom key stores there are across all accounts and Regions, by type and
    /// connection state: `(CustomKeyStoreType, ConnectionState, count)`, sorted.
    pub async fn custom_key_store_states(&self) -> KmsResult<Vec<(String, String, usize)>> {
        use keyhold_kms_model::enums::ConnectionStateType;
        let states: Vec<&str> = ConnectionStateType::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
        let stores = self.store.list_custom_key_stores_in_states(&states).await?;
        let mut counts = std::collections::BTreeMap::<(String, String), usize>::new();
        for s in stores {
            *counts
                .entry((s.store_type, s.connection_state))
                .or_insert(0) += 1;
        }
        Ok(counts.into_iter().map(|((t, c), n)| (t, c, n)).collect())
    }
}
