//! Per-store observation of XKS proxy calls: a connector wrapper that times every call and
//! hands it, with the custom key store it was made for, to an [`XksCallObserver`] (the
//! server's metrics).
//!
//! The connector port knows targets, not stores, so the wrapper keeps a map from a target's
//! identity (Region, endpoint, path, access key id) to the store it belongs to, filled where
//! the domain builds a store's target. Health checks name their store in their metadata.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use async_trait::async_trait;
use keyhold_crypto::SecretBytes;

use crate::ports::xks::{
    HealthCheckReason, XksCallObserver, XksConnector, XksDecryptInput, XksEncryptInput,
    XksEncryptOutput, XksFailure, XksHealth, XksKeyMetadata, XksKeyRequestMetadata, XksOperation,
    XksRequestMetadata, XksTarget,
};

/// A connector that reports every call to an observer.
pub(crate) struct ObservedXks {
    inner: Arc<dyn XksConnector>,
    observer: Arc<dyn XksCallObserver>,
    /// Target identity → custom key store id.
    stores: RwLock<HashMap<String, Arc<str>>>,
}

fn identity(t: &XksTarget) -> String {
    format!(
        "{}\n{}\n{}\n{}",
        t.region, t.uri_endpoint, t.uri_path, t.access_key_id
    )
}

impl ObservedXks {
    pub(crate) fn new(inner: Arc<dyn XksConnector>, observer: Arc<dyn XksCallObserver>) -> Self {
        Self {
            inner,
            observer,
            stores: RwLock::new(HashMap::new()),
        }
    }

    /// Notes that `target` is the store `id`'s (a read lock when already known).
    pub(crate) fn register(&self, target: &XksTarget, id: &str) {
        let key = identity(target);
        let known = self
            .stores
            .read()
            .map(|m| m.get(&key).is_some_and(|v| &**v == id))
            .unwrap_or(false);
        if !known {
            if let Ok(mut m) = self.stores.write() {
                m.insert(key, Arc::from(id));
            }
        }
    }

    fn store_of(&self, target: &XksTarget) -> Option<Arc<str>> {
        self.stores.read().ok()?.get(&identity(target)).cloned()
    }

    fn report<T>(
        &self,
        store: Option<Arc<str>>,
        operation: XksOperation,
        started: Instant,
        result: &Result<T, XksFailure>,
    ) {
        if let Some(id) = store {
            self.observer
                .observe(&id, operation, result.as_ref().err(), started.elapsed());
        }
    }
}

#[async_trait]
impl XksConnector for ObservedXks {
    async fn get_health_status(
        &self,
        target: &XksTarget,
        reason: HealthCheckReason,
        metadata: &XksRequestMetadata,
    ) -> Result<XksHealth, XksFailure> {
        let started = Instant::now();
        let r = self.inner.get_health_status(target, reason, metadata).await;
        let store = match &metadata.custom_key_store_id {
            Some(id) => Some(Arc::from(id.as_str())),
            None => self.store_of(target),
        };
        self.report(store, XksOperation::GetHealthStatus, started, &r);
        r
    }

    async fn get_key_metadata(
        &self,
        target: &XksTarget,
        external_key_id: &str,
        metadata: &XksKeyRequestMetadata,
    ) -> Result<XksKeyMetadata, XksFailure> {
        let started = Instant::now();
        let r = self
            .inner
            .get_key_metadata(target, external_key_id, metadata)
            .await;
        self.report(
            self.store_of(target),
            XksOperation::GetKeyMetadata,
            started,
            &r,
        );
        r
    }

    async fn encrypt(
        &self,
        target: &XksTarget,
        external_key_id: &str,
        metadata: &XksKeyRequestMetadata,
        input: &XksEncryptInput,
    ) -> Result<XksEncryptOutput, XksFailure> {
        let started = Instant::now();
        let r = self
            .inner
            .encrypt(target, external_key_id, metadata, input)
            .await;
        self.report(self.store_of(target), XksOperation::Encrypt, started, &r);
        r
    }

    async fn decrypt(
        &self,
        target: &XksTarget,
        external_key_id: &str,
        metadata: &XksKeyRequestMetadata,
        input: &XksDecryptInput,
    ) -> Result<SecretBytes, XksFailure> {
        let started = Instant::now();
        let r = self
            .inner
            .decrypt(target, external_key_id, metadata, input)
            .await;
        self.report(self.store_of(target), XksOperation::Decrypt, started, &r);
        r
    }
}
