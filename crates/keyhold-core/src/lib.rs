//! The Keyhold domain: KMS keys, key states, custom key stores, and the ports to backends.
//!
//! Operations take and return the wire shapes of `keyhold-kms-model` (plain data), and fail
//! with [`KmsError`], whose variants are AWS exceptions. Nothing here knows HTTP, JSON on the
//! wire, SQL or PKCS#11.
#![warn(missing_docs)]

pub mod context;
pub mod error;
pub mod keys;
pub mod ports;

use std::sync::Arc;

pub use context::RequestContext;
pub use error::{KmsError, KmsResult};

use keyhold_crypto::RootKey;
use ports::MetadataStore;

/// One Keyhold instance's domain services.
pub struct Kms {
    /// KMS keys.
    pub keys: keys::Keys,
    store: Arc<dyn MetadataStore>,
}

impl Kms {
    /// The domain over `store`, with secrets wrapped by `root_key`.
    pub fn new(store: Arc<dyn MetadataStore>, root_key: Arc<RootKey>) -> Self {
        Self {
            keys: keys::Keys::new(store.clone(), root_key),
            store,
        }
    }

    /// Wipes all state (test harnesses).
    pub async fn reset(&self) -> KmsResult<()> {
        self.store.reset().await.map_err(KmsError::from)
    }
}
