//! Per-store observation of XKS proxy calls: a connector wrapper that times every call and
//! hands it, with the custom key store it was made for, to an [`XksCallObserver`] (the
//! server's metrics).
//!
//! The connector port knows targets, not stores, so the wrapper keeps a map from a target's
//! identity (Region, endpoint, path, access key id) to the store it belongs to, filled where
//! the domain builds a store's target. Health checks name their store in their metadata. Two
//! stores of different accounts with the same endpoint, path, Region and access key id (the
//! same proxy credential) are counted under the store that last built its target.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use async_trait::async_trait;
use keyhold_crypto::SecretBytes;

use crate::ports::xks::{
    HealthCheckReason, XksCallObserver, XksConnector, XksDecryptInput, XksEncryptInput,
    XksEncryptOutput, XksFailure, XksHealth, XksKeyCall, XksKeyMetadata, XksOperation,
    XksRequestMetadata, XksTarget,
};

/// A connector that reports every call to an observer.
pub(crate) struct ObservedXks {
    inner: Arc<dyn XksConnector>,
    observer: Arc<dyn XksCallObserver>,
    /// By URI endpoint: the stores using it (found without allocating per call).
    stores: RwLock<HashMap<String, Vec<Known>>>,
}

/// A store's target, identified by what the connector sees.
struct Known {
    region: String,
    uri_path: String,
    access_key_id: String,
    id: Arc<str>,
}

impl Known {
    fn is(&self, t: &XksTarget) -> bool {
        self.region == t.region
            && self.uri_path == t.uri_path
            && self.access_key_id == t.access_key_id
    }
}

impl ObservedXks {
    pub(crate) fn new(inner: Arc<dyn XksConnector>, observer: Arc<dyn XksCallObserver>) -> Self {
        Self {
            inner,
            observer,
            stores: RwLock::new(HashMap::new()),
        }
    }

    /// Notes that `target` is the store `id`'s (only a read lock when already known).
    pub(crate) fn register(&self, target: &XksTarget, id: &str) {
        if self.store_of(target).is_some_and(|known| &*known == id) {
            return;
        }
        let Ok(mut map) = self.stores.write() else {
            return;
        };
        let entries = map.entry(target.uri_endpoint.clone()).or_default();
        match entries.iter_mut().find(|k| k.is(target)) {
            Some(k) => k.id = Arc::from(id),
            None => entries.push(Known {
                region: target.region.clone(),
                uri_path: target.uri_path.clone(),
                access_key_id: target.access_key_id.clone(),
                id: Arc::from(id),
            }),
        }
    }

    fn store_of(&self, target: &XksTarget) -> Option<Arc<str>> {
        let map = self.stores.read().ok()?;
        map.get(&target.uri_endpoint)?
            .iter()
            .find(|k| k.is(target))
            .map(|k| Arc::clone(&k.id))
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

    async fn get_key_metadata(&self, call: XksKeyCall<'_>) -> Result<XksKeyMetadata, XksFailure> {
        let started = Instant::now();
        let r = self.inner.get_key_metadata(call).await;
        self.report(
            self.store_of(call.target),
            XksOperation::GetKeyMetadata,
            started,
            &r,
        );
        r
    }

    async fn encrypt(
        &self,
        call: XksKeyCall<'_>,
        input: &XksEncryptInput,
    ) -> Result<XksEncryptOutput, XksFailure> {
        let started = Instant::now();
        let r = self.inner.encrypt(call, input).await;
        self.report(
            self.store_of(call.target),
            XksOperation::Encrypt,
            started,
            &r,
        );
        r
    }

    async fn decrypt(
        &self,
        call: XksKeyCall<'_>,
        input: &XksDecryptInput,
    ) -> Result<SecretBytes, XksFailure> {
        let started = Instant::now();
        let r = self.inner.decrypt(call, input).await;
        self.report(
            self.store_of(call.target),
            XksOperation::Decrypt,
            started,
            &r,
        );
        r
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::ports::xks::{XksConnectivity, XksFailure, XksKeyRequestMetadata};

    /// Fails every call: the observer must see the failure's class under the right store.
    struct Refusing;

    #[async_trait]
    impl XksConnector for Refusing {
        async fn get_health_status(
            &self,
            _: &XksTarget,
            _: HealthCheckReason,
            _: &XksRequestMetadata,
        ) -> Result<XksHealth, XksFailure> {
            Err(XksFailure::TimedOut { budget_ms: 250 })
        }
    }

    #[derive(Default)]
    struct Seen(Mutex<Vec<(String, &'static str, Option<&'static str>)>>);

    impl XksCallObserver for Seen {
        fn observe(&self, id: &str, op: XksOperation, failure: Option<&XksFailure>, _: Duration) {
            if let Ok(mut v) = self.0.lock() {
                v.push((
                    id.to_string(),
                    op.as_str(),
                    failure.map(|f| f.cause_class()),
                ));
            }
        }
    }

    fn target(akid: &str) -> XksTarget {
        XksTarget {
            uri_endpoint: "https://xks.example.test".into(),
            uri_path: "/kms/xks/v1".into(),
            connectivity: XksConnectivity::PublicEndpoint,
            access_key_id: akid.into(),
            secret_access_key: SecretBytes::from_slice(b"s"),
            region: "us-east-1".into(),
        }
    }

    #[tokio::test]
    async fn calls_are_reported_under_the_store_whose_target_they_use() {
        let seen = Arc::new(Seen::default());
        let o = ObservedXks::new(Arc::new(Refusing), seen.clone());
        o.register(&target("AKIDONE"), "cks-1");
        o.register(&target("AKIDTWO"), "cks-2");
        let input = XksEncryptInput {
            plaintext: vec![1],
            aad: Vec::new(),
            request_cdiv: false,
        };
        let md = XksKeyRequestMetadata {
            aws_principal_arn: "arn:aws:iam::123456789012:root".into(),
            kms_key_arn: None,
            kms_operation: "Encrypt".into(),
            kms_request_id: "r".into(),
        };
        let _ = o
            .encrypt(XksKeyCall::new(&target("AKIDTWO"), "k", &md), &input)
            .await;
        let health = XksRequestMetadata {
            aws_principal_arn: md.aws_principal_arn.clone(),
            kms_request_id: "r".into(),
            custom_key_store_id: Some("cks-3".into()),
        };
        let _ = o
            .get_health_status(&target("AKIDONE"), HealthCheckReason::Connect, &health)
            .await;
        // An unknown target (CreateCustomKeyStore's probe) is not counted.
        let _ = o
            .encrypt(XksKeyCall::new(&target("AKIDNONE"), "k", &md), &input)
            .await;
        let seen = seen.0.lock().map(|v| v.clone()).unwrap_or_default();
        assert_eq!(
            seen,
            vec![
                ("cks-2".to_string(), "Encrypt", Some("internal")),
                ("cks-3".to_string(), "GetHealthStatus", Some("timed_out")),
            ]
        );
    }
}
