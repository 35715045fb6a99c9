//! Test doubles for the custom key store unit tests: a scripted [`XksConnector`]. (The
//! metadata store of these tests is [`crate::ports::memory::MemoryStore`].)

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::ports::xks::{
    EkmFleetMember, HealthCheckReason, XksConnector, XksFailure, XksHealth, XksRequestMetadata,
    XksTarget,
};

/// A connector whose answer the test sets, recording every call's reason and access key id.
pub struct StubXks {
    /// The next answers: `None` means healthy.
    pub failure: Mutex<Option<XksFailure>>,
    /// Calls made: (reason, access key id, uri path).
    pub calls: Mutex<Vec<(HealthCheckReason, String, String)>>,
    /// Delay before answering.
    pub delay: Mutex<Duration>,
}

impl Default for StubXks {
    fn default() -> Self {
        Self {
            failure: Mutex::new(None),
            calls: Mutex::new(Vec::new()),
            delay: Mutex::new(Duration::ZERO),
        }
    }
}

impl StubXks {
    /// Sets the answer of later calls.
    pub fn set(&self, failure: Option<XksFailure>) {
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = failure;
    }
    /// The calls made so far.
    pub fn calls(&self) -> Vec<(HealthCheckReason, String, String)> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl XksConnector for StubXks {
    async fn get_health_status(
        &self,
        target: &XksTarget,
        reason: HealthCheckReason,
        _metadata: &XksRequestMetadata,
    ) -> Result<XksHealth, XksFailure> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).push((
            reason,
            target.access_key_id.clone(),
            target.uri_path.clone(),
        ));
        let delay = *self.delay.lock().unwrap_or_else(|p| p.into_inner());
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(f) = self
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Err(f);
        }
        Ok(XksHealth {
            xks_proxy_fleet_size: 1,
            xks_proxy_vendor: "stub".into(),
            xks_proxy_model: "stub".into(),
            ekm_vendor: "stub".into(),
            ekm_fleet_details: vec![EkmFleetMember {
                id: "ekm-1".into(),
                model: "stub".into(),
                health_status: "ACTIVE".into(),
            }],
        })
    }
}
