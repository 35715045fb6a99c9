//! The four operations, independent of HTTP: parse the body, authorize, call the backend,
//! build the answer. Every failure is an [`XksError`] with the spec's name.

use std::future::Future;
use std::time::Duration;

use keyhold_xks_wire::{
    DecryptRequest, DecryptResponse, EkmFleetDetail, EncryptRequest, EncryptResponse,
    GetKeyMetadataRequest, GetKeyMetadataResponse, HealthRequest, HealthResponse, RequestMetadata,
    B64,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use std::sync::Arc;

use crate::backend::{BackendError, KeyBackend, KeyStatus};
use crate::envelope::{cdiv, key_manager_aad, MAX_METADATA_LEN, METADATA_V1};
use crate::error::{ErrorName, XksError};
use crate::state::{Health, Runtime, Store};

/// What a request contributes to its log line.
#[derive(Debug, Default)]
pub struct RequestLog {
    /// `kmsRequestId`, once parsed.
    pub kms_request_id: Option<String>,
    /// `kmsOperation`, once parsed.
    pub kms_operation: Option<String>,
}

impl RequestLog {
    fn record(&mut self, md: &RequestMetadata) {
        self.kms_request_id = Some(md.kms_request_id.clone());
        self.kms_operation = Some(md.kms_operation.clone());
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, XksError> {
    serde_json::from_slice(body)
        .map_err(|e| XksError::new(ErrorName::Validation, format!("invalid request body: {e}")))
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, XksError> {
    serde_json::to_vec(value).map_err(|e| XksError::new(ErrorName::Internal, e.to_string()))
}

fn backend_error(e: BackendError) -> XksError {
    let name = match e {
        BackendError::NotFound => ErrorName::KeyNotFound,
        BackendError::Disabled => ErrorName::InvalidState,
        BackendError::KeyUsage => ErrorName::InvalidKeyUsage,
        BackendError::InvalidCiphertext => ErrorName::InvalidCiphertext,
        BackendError::Timeout => ErrorName::DependencyTimeout,
        BackendError::Unavailable(_) | BackendError::Internal(_) => ErrorName::Internal,
    };
    XksError::new(name, e.to_string())
}

/// How one attempt on one backend instance failed.
enum Attempt {
    Backend(BackendError),
    OverBudget,
}

impl Attempt {
    /// Whether another instance should be tried.
    fn fails_over(&self) -> bool {
        matches!(
            self,
            Attempt::OverBudget
                | Attempt::Backend(BackendError::Unavailable(_) | BackendError::Timeout)
        )
    }

    fn into_error(self, rt: &Runtime) -> XksError {
        match self {
            Attempt::Backend(e) => backend_error(e),
            Attempt::OverBudget => XksError::new(
                ErrorName::DependencyTimeout,
                format!(
                    "key manager did not answer within {} ms",
                    rt.settings.backend_timeout_ms
                ),
            ),
        }
    }
}

/// Runs `f` on the store's backend instances in order, each within the configured budget. An
/// instance whose last health check said UNAVAILABLE is skipped (unless it is the last one),
/// and one that fails as unavailable or over budget hands over to the next; any other answer
/// (a missing key, a bad ciphertext) is final.
async fn call<T, F, Fut>(rt: &Runtime, store: &Store, f: F) -> Result<T, XksError>
where
    F: Fn(Arc<dyn KeyBackend>) -> Fut,
    Fut: Future<Output = Result<T, BackendError>>,
{
    let budget = Duration::from_millis(rt.settings.backend_timeout_ms);
    let count = store.backends.len();
    let mut failure = None;
    for (i, slot) in store.backends.iter().enumerate() {
        if i + 1 < count && slot.health.last() == Some(Health::Unavailable) {
            continue;
        }
        let attempt = match tokio::time::timeout(budget, f(Arc::clone(&slot.backend))).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => Attempt::Backend(e),
            Err(_) => Attempt::OverBudget,
        };
        if !attempt.fails_over() {
            return Err(attempt.into_error(rt));
        }
        tracing::warn!(backend = %slot.backend.instance_id(), "key manager instance failed; trying the next");
        failure = Some(attempt);
    }
    Err(failure
        .map(|a| a.into_error(rt))
        .unwrap_or_else(|| XksError::new(ErrorName::Internal, "no key manager instance")))
}

/// Checks shared by the three key operations: principal present, secondary authorization,
/// key allow-list.
fn admit(rt: &Runtime, store: &Store, key_id: &str, md: &RequestMetadata) -> Result<(), XksError> {
    let principal = md.aws_principal_arn.as_deref().ok_or_else(|| {
        XksError::new(
            ErrorName::Validation,
            "requestMetadata.awsPrincipalArn is required",
        )
    })?;
    if let Some(rules) = &rt.rules {
        let d = rules.decide(&store.prefix, principal, &md.kms_operation, key_id);
        if !d.allowed {
            tracing::warn!(
                kms_request_id = %md.kms_request_id,
                store = %store.prefix,
                principal,
                kms_operation = %md.kms_operation,
                key_id,
                rule = %d.rule,
                "secondary authorization denied the request"
            );
            return Err(XksError::new(
                ErrorName::AccessDenied,
                format!("denied by authorization rule {}", d.rule),
            ));
        }
    }
    if let Some(allowed) = &store.allowed_keys {
        if !allowed.contains(key_id) {
            return Err(XksError::new(
                ErrorName::KeyNotFound,
                format!("key {key_id} is not in this key store"),
            ));
        }
    }
    Ok(())
}

/// Keys disabled in the configuration: still `KeyNotFoundException` if the backend does not
/// have them, else `InvalidStateException`.
async fn refuse_if_disabled(rt: &Runtime, store: &Store, key_id: &str) -> Result<(), XksError> {
    if store.disabled_keys.contains(key_id) {
        call(rt, store, |b| async move { b.metadata(key_id).await }).await?;
        return Err(XksError::new(
            ErrorName::InvalidState,
            "key is disabled in the proxy configuration",
        ));
    }
    Ok(())
}

fn check_algorithm(alg: &str) -> Result<(), XksError> {
    if alg == "AES_GCM" {
        Ok(())
    } else {
        Err(XksError::new(
            ErrorName::Validation,
            format!("unsupported encryptionAlgorithm {alg:?}; only AES_GCM"),
        ))
    }
}

fn check_sizes(rt: &Runtime, data: usize, aad: usize) -> Result<(), XksError> {
    let s = &rt.settings;
    if data > s.max_plaintext_bytes {
        return Err(XksError::new(
            ErrorName::UnsupportedOperation,
            format!(
                "data of {data} bytes exceeds this proxy's limit of {}",
                s.max_plaintext_bytes
            ),
        ));
    }
    if aad > s.max_aad_bytes {
        return Err(XksError::new(
            ErrorName::UnsupportedOperation,
            format!(
                "AAD of {aad} bytes exceeds this proxy's limit of {}",
                s.max_aad_bytes
            ),
        ));
    }
    Ok(())
}

fn km_aad(aad: &[u8], md: &[u8]) -> Result<Vec<u8>, XksError> {
    key_manager_aad(aad, md)
        .ok_or_else(|| XksError::new(ErrorName::UnsupportedOperation, "AAD too long"))
}

/// GetHealthStatus: the store's backend health from a deep check, cached.
pub async fn health(
    rt: &Runtime,
    store: &Store,
    body: &[u8],
    log: &mut RequestLog,
) -> Result<Vec<u8>, XksError> {
    let req: HealthRequest = parse(body)?;
    log.record(&req.request_metadata);
    let s = &rt.settings;
    let (ttl, budget, slow) = (
        Duration::from_secs(s.health_cache_seconds.min(60)),
        Duration::from_millis(s.backend_timeout_ms),
        Duration::from_millis(s.degraded_latency_ms),
    );
    // Every instance is checked at once, so the answer takes as long as the slowest check.
    let checks: Vec<_> = store
        .backends
        .iter()
        .map(|slot| {
            let slot = slot.clone();
            tokio::spawn(async move {
                let status = slot
                    .health
                    .get(slot.backend.as_ref(), ttl, budget, slow)
                    .await;
                EkmFleetDetail {
                    id: slot.backend.instance_id(),
                    model: slot.backend.model(),
                    health_status: status.as_str().to_string(),
                }
            })
        })
        .collect();
    let mut details = Vec::with_capacity(checks.len());
    for check in checks {
        details.push(
            check
                .await
                .map_err(|e| XksError::new(ErrorName::Internal, e.to_string()))?,
        );
    }
    let vendor = store
        .backends
        .first()
        .map(|slot| slot.backend.vendor())
        .unwrap_or_default();
    to_json(&HealthResponse {
        xks_proxy_fleet_size: 1,
        xks_proxy_vendor: "Keyhold".to_string(),
        xks_proxy_model: format!("keyhold-xks-proxy {}", env!("CARGO_PKG_VERSION")),
        ekm_vendor: vendor,
        ekm_fleet_details: details,
    })
}

/// GetKeyMetadata.
pub async fn metadata(
    rt: &Runtime,
    store: &Store,
    key_id: &str,
    body: &[u8],
    log: &mut RequestLog,
) -> Result<Vec<u8>, XksError> {
    let req: GetKeyMetadataRequest = parse(body)?;
    log.record(&req.request_metadata);
    admit(rt, store, key_id, &req.request_metadata)?;
    let meta = call(rt, store, |b| async move { b.metadata(key_id).await }).await?;
    let disabled = meta.status == KeyStatus::Disabled || store.disabled_keys.contains(key_id);
    to_json(&GetKeyMetadataResponse {
        key_spec: "AES_256".to_string(),
        key_usage: meta.usage.wire_values(),
        key_status: if disabled { "DISABLED" } else { "ENABLED" }.to_string(),
    })
}

/// Encrypt, with CDIV and a test decrypt when asked.
pub async fn encrypt(
    rt: &Runtime,
    store: &Store,
    key_id: &str,
    body: &[u8],
    log: &mut RequestLog,
) -> Result<Vec<u8>, XksError> {
    let req: EncryptRequest = parse(body)?;
    log.record(&req.request_metadata);
    admit(rt, store, key_id, &req.request_metadata)?;
    refuse_if_disabled(rt, store, key_id).await?;
    check_algorithm(&req.encryption_algorithm)?;
    let want_cdiv = match req.ciphertext_data_integrity_value_algorithm.as_deref() {
        None => false,
        Some("SHA_256") => true,
        Some(other) => {
            return Err(XksError::new(
                ErrorName::Validation,
                format!("unsupported ciphertextDataIntegrityValueAlgorithm {other:?}"),
            ))
        }
    };
    let aad = req
        .additional_authenticated_data
        .as_ref()
        .map(|a| a.0.as_slice())
        .unwrap_or_default();
    check_sizes(rt, req.plaintext.0.len(), aad.len())?;
    let km = km_aad(aad, &METADATA_V1)?;
    let (km_ref, pt) = (&km, &req.plaintext.0);
    let (sealed, test_decryption) = if want_cdiv {
        // Spec Appendix C: the ciphertext must be proven to decrypt. Encryption and test
        // decryption go to the key manager together (one blocking hand-off, one session).
        let (sealed, back) = call(rt, store, |b| async move {
            b.encrypt_and_decrypt(key_id, km_ref, pt).await
        })
        .await?;
        (sealed, Some(back))
    } else {
        let sealed = call(
            rt,
            store,
            |b| async move { b.encrypt(key_id, km_ref, pt).await },
        )
        .await?;
        (sealed, None)
    };
    if sealed.iv.len() != 12
        || sealed.tag.len() != 16
        || sealed.ciphertext.len() != req.plaintext.0.len()
    {
        return Err(XksError::new(
            ErrorName::Internal,
            "key manager returned a malformed ciphertext",
        ));
    }
    let integrity = match test_decryption {
        Some(back) => {
            let back = match back {
                Ok(back) => back,
                // The instance could not finish the test decryption: another one may (the
                // ciphertext is the same key's, and every instance holds the key).
                Err(e @ (BackendError::Unavailable(_) | BackendError::Timeout)) => {
                    tracing::warn!(error = %e, "test decryption failed; trying the store's instances");
                    let sealed_ref = &sealed;
                    call(rt, store, |b| async move {
                        let s = sealed_ref;
                        b.decrypt(key_id, &s.iv, km_ref, &s.ciphertext, &s.tag)
                            .await
                    })
                    .await
                    .map_err(test_decryption_error)?
                }
                Err(e) => return Err(test_decryption_error(backend_error(e))),
            };
            if back.expose() != req.plaintext.0.as_slice() {
                return Err(XksError::new(
                    ErrorName::Internal,
                    "test decryption did not return the plaintext",
                ));
            }
            // Spec Appendix C: the CDIV covers AAD, metadata, IV, ciphertext and tag.
            let value = cdiv(
                aad,
                &METADATA_V1,
                &sealed.iv,
                &sealed.ciphertext,
                &sealed.tag,
            );
            Some(B64(value.to_vec()))
        }
        None => None,
    };
    to_json(&EncryptResponse {
        ciphertext: B64(sealed.ciphertext),
        initialization_vector: B64(sealed.iv),
        authentication_tag: B64(sealed.tag),
        ciphertext_metadata: Some(B64(METADATA_V1.to_vec())),
        ciphertext_data_integrity_value: integrity,
    })
}

/// The error of a failed test decryption: a key that may only encrypt cannot vouch for its
/// ciphertext, so the Encrypt is refused as the backend refuses the decryption
/// (InvalidKeyUsageException), with a message saying why.
fn test_decryption_error(e: XksError) -> XksError {
    if e.name == ErrorName::InvalidKeyUsage {
        XksError::new(
            ErrorName::InvalidKeyUsage,
            "the key does not allow decryption, which the test decryption behind \
             ciphertextDataIntegrityValueAlgorithm needs",
        )
    } else {
        e
    }
}

/// Decrypt.
pub async fn decrypt(
    rt: &Runtime,
    store: &Store,
    key_id: &str,
    body: &[u8],
    log: &mut RequestLog,
) -> Result<Vec<u8>, XksError> {
    let req: DecryptRequest = parse(body)?;
    log.record(&req.request_metadata);
    admit(rt, store, key_id, &req.request_metadata)?;
    refuse_if_disabled(rt, store, key_id).await?;
    check_algorithm(&req.encryption_algorithm)?;
    let aad = req
        .additional_authenticated_data
        .as_ref()
        .map(|a| a.0.as_slice())
        .unwrap_or_default();
    check_sizes(rt, req.ciphertext.0.len(), aad.len())?;
    let md = req
        .ciphertext_metadata
        .as_ref()
        .map(|m| m.0.as_slice())
        .unwrap_or_default();
    if md.len() > MAX_METADATA_LEN {
        return Err(XksError::new(
            ErrorName::Validation,
            "ciphertextMetadata longer than 20 bytes",
        ));
    }
    let iv_len = req.initialization_vector.0.len();
    if iv_len != 12 && iv_len != 16 {
        return Err(XksError::new(
            ErrorName::Validation,
            "initializationVector must be 12 or 16 bytes",
        ));
    }
    if req.authentication_tag.0.len() != 16 {
        return Err(XksError::new(
            ErrorName::Validation,
            "authenticationTag must be 16 bytes",
        ));
    }
    if iv_len != 12 || md != METADATA_V1 {
        // Not produced by this proxy, or the metadata was tampered with. A missing or
        // disabled key is still reported as such.
        let meta = call(rt, store, |b| async move { b.metadata(key_id).await }).await?;
        if meta.status == KeyStatus::Disabled {
            return Err(backend_error(BackendError::Disabled));
        }
        return Err(XksError::new(
            ErrorName::InvalidCiphertext,
            "ciphertext was not produced by this proxy (unknown ciphertextMetadata or IV length)",
        ));
    }
    let km = km_aad(aad, md)?;
    let (km_ref, r) = (&km, &req);
    let plaintext = call(rt, store, |b| async move {
        b.decrypt(
            key_id,
            &r.initialization_vector.0,
            km_ref,
            &r.ciphertext.0,
            &r.authentication_tag.0,
        )
        .await
    })
    .await?;
    to_json(&DecryptResponse {
        plaintext: B64(plaintext.expose().to_vec()),
    })
}

#[cfg(test)]
#[path = "ops_tests.rs"]
mod tests;
