//! The operations against a scripted backend: timeouts, device failures, key usage and the
//! health states that a real backend cannot be made to produce on demand.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use keyhold_crypto::SecretBytes;
use serde_json::{json, Value};

use super::*;
use crate::backend::{KeyBackend, KeyMeta, Sealed};
use crate::config::{BackendConfig, Config};
use crate::state::{BackendSlot, HealthCache, Runtime, Store};

/// Behaves as told: sleeps `delay` in every call, then fails with `fail` if set.
struct Scripted {
    delay: Duration,
    fail: Option<BackendError>,
    can_encrypt: bool,
}

#[async_trait]
impl KeyBackend for Scripted {
    fn instance_id(&self) -> String {
        "scripted".to_string()
    }
    fn model(&self) -> String {
        "test".to_string()
    }
    async fn metadata(&self, _: &str) -> Result<KeyMeta, BackendError> {
        tokio::time::sleep(self.delay).await;
        Ok(KeyMeta {
            status: KeyStatus::Enabled,
            usage: crate::backend::KeyUsage {
                encrypt: self.can_encrypt,
                decrypt: true,
            },
        })
    }
    async fn encrypt(&self, _: &str, _: &[u8], p: &[u8]) -> Result<Sealed, BackendError> {
        tokio::time::sleep(self.delay).await;
        if let Some(e) = &self.fail {
            return Err(e.clone());
        }
        Ok(Sealed {
            iv: vec![0; 12],
            ciphertext: p.to_vec(),
            tag: vec![0; 16],
        })
    }
    async fn decrypt(
        &self,
        _: &str,
        _: &[u8],
        _: &[u8],
        c: &[u8],
        _: &[u8],
    ) -> Result<SecretBytes, BackendError> {
        tokio::time::sleep(self.delay).await;
        // Returns something else than was encrypted: the CDIV test decrypt must catch it.
        let mut c = c.to_vec();
        if let Some(b) = c.first_mut() {
            *b ^= 1;
        }
        Ok(SecretBytes::new(c))
    }
    async fn health(&self) -> Result<(), BackendError> {
        tokio::time::sleep(self.delay).await;
        self.fail.clone().map_or(Ok(()), Err)
    }
}

fn runtime() -> Runtime {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["x.test".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let provider = Arc::new(crate::tls::provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("tls");
    let config = Config::parse(
        "[server]\ntls_cert = \"c\"\ntls_key = \"k\"\nbackend_timeout_ms = 50\ndegraded_latency_ms = 10\nhealth_cache_seconds = 0\n",
    )
    .expect("config");
    Runtime {
        settings: config.server,
        stores: BTreeMap::new(),
        backends: BTreeMap::new(),
        rules: None,
        tls: Arc::new(tls),
    }
}

fn slot(backend: Scripted) -> BackendSlot {
    BackendSlot {
        config: BackendConfig::Software(crate::backend::software::SoftwareConfig {
            key_file: "unused".into(),
            root_key_file: "unused".into(),
            create_root_key: false,
        }),
        backend: Arc::new(backend),
        health: Arc::new(HealthCache::default()),
    }
}

fn store(backend: Scripted) -> Store {
    Store {
        prefix: "/t".to_string(),
        backends: vec![slot(backend)],
        allowed_keys: None,
        disabled_keys: BTreeSet::new(),
        credentials: BTreeMap::new(),
        limiter: None,
    }
}

fn scripted(delay_ms: u64, fail: Option<BackendError>) -> Scripted {
    Scripted {
        delay: Duration::from_millis(delay_ms),
        fail,
        can_encrypt: true,
    }
}

fn encrypt_body(cdiv: bool) -> Vec<u8> {
    let mut v = json!({
        "requestMetadata": {"awsPrincipalArn": "p", "kmsOperation": "Encrypt", "kmsRequestId": "r"},
        "plaintext": "aGVsbG8=", "encryptionAlgorithm": "AES_GCM"
    });
    if cdiv {
        v["ciphertextDataIntegrityValueAlgorithm"] = json!("SHA_256");
    }
    serde_json::to_vec(&v).expect("json")
}

async fn encrypt_error(s: Scripted, cdiv: bool) -> ErrorName {
    let rt = runtime();
    let st = store(s);
    let mut log = RequestLog::default();
    encrypt(&rt, &st, "k", &encrypt_body(cdiv), &mut log)
        .await
        .expect_err("must fail")
        .name
}

#[tokio::test]
async fn backend_failures_map_to_spec_errors() {
    assert_eq!(
        encrypt_error(scripted(200, None), false).await,
        ErrorName::DependencyTimeout
    );
    assert_eq!(
        encrypt_error(scripted(0, Some(BackendError::Timeout)), false).await,
        ErrorName::DependencyTimeout
    );
    assert_eq!(
        encrypt_error(
            scripted(0, Some(BackendError::Unavailable("gone".into()))),
            false
        )
        .await,
        ErrorName::Internal
    );
    assert_eq!(
        encrypt_error(scripted(0, Some(BackendError::KeyUsage)), false).await,
        ErrorName::InvalidKeyUsage
    );
    // A test decrypt that does not give the plaintext back fails the Encrypt.
    assert_eq!(
        encrypt_error(scripted(0, None), true).await,
        ErrorName::Internal
    );
    // Without CDIV there is no test decrypt.
    let rt = runtime();
    let st = store(scripted(0, None));
    let mut log = RequestLog::default();
    let ok = encrypt(&rt, &st, "k", &encrypt_body(false), &mut log).await;
    assert!(ok.is_ok());
    assert_eq!(log.kms_request_id.as_deref(), Some("r"));
}

#[tokio::test]
async fn key_usage_is_reported_from_the_backend() {
    let rt = runtime();
    let st = store(Scripted {
        can_encrypt: false,
        ..scripted(0, None)
    });
    let body = br#"{"requestMetadata":{"awsPrincipalArn":"p","kmsOperation":"CreateKey","kmsRequestId":"r"}}"#;
    let out = metadata(&rt, &st, "k", body, &mut RequestLog::default())
        .await
        .expect("metadata");
    let v: Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(v["keyUsage"], json!(["DECRYPT"]));
}

async fn health_of(s: Scripted) -> String {
    let rt = runtime();
    let st = store(s);
    let body = br#"{"requestMetadata":{"kmsOperation":"KmsHealthCheck","kmsRequestId":"r"}}"#;
    let out = health(&rt, &st, body, &mut RequestLog::default())
        .await
        .expect("health answers even when the backend is down");
    let v: Value = serde_json::from_slice(&out).expect("json");
    v["ekmFleetDetails"][0]["healthStatus"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn health_is_truthful() {
    assert_eq!(health_of(scripted(0, None)).await, "ACTIVE");
    assert_eq!(health_of(scripted(20, None)).await, "DEGRADED");
    assert_eq!(health_of(scripted(200, None)).await, "UNAVAILABLE");
    assert_eq!(
        health_of(scripted(0, Some(BackendError::Unavailable("x".into())))).await,
        "UNAVAILABLE"
    );
}

#[tokio::test]
async fn health_results_are_cached_for_the_configured_time() {
    let cache = HealthCache::default();
    let failing = scripted(0, Some(BackendError::Unavailable("x".into())));
    let fine = scripted(0, None);
    let long = Duration::from_secs(60);
    let t = Duration::from_millis(50);
    assert_eq!(
        cache.get(&fine, long, t, long).await,
        crate::state::Health::Active
    );
    // Within the cache time the old result stands ...
    assert_eq!(
        cache.get(&failing, long, t, long).await,
        crate::state::Health::Active
    );
    // ... and a zero cache time checks again.
    assert_eq!(
        cache.get(&failing, Duration::ZERO, t, long).await,
        crate::state::Health::Unavailable
    );
}

#[tokio::test]
async fn replicas_take_over_and_are_reported() {
    let rt = runtime();
    let mut st = store(scripted(0, Some(BackendError::Unavailable("down".into()))));
    st.backends.push(slot(scripted(0, None)));
    let mut log = RequestLog::default();
    encrypt(&rt, &st, "k", &encrypt_body(false), &mut log)
        .await
        .expect("the replica serves while the primary is down");
    let body = br#"{"requestMetadata":{"kmsOperation":"KmsHealthCheck","kmsRequestId":"r"}}"#;
    let out = health(&rt, &st, body, &mut log).await.expect("health");
    let v: Value = serde_json::from_slice(&out).expect("json");
    let statuses: Vec<&str> = v["ekmFleetDetails"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|d| d["healthStatus"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(statuses, ["UNAVAILABLE", "ACTIVE"]);
    // After that health check the primary is skipped without being asked.
    encrypt(&rt, &st, "k", &encrypt_body(false), &mut log)
        .await
        .expect("replica again");

    // Answers that are not about availability are final: no second opinion from a replica.
    let mut st = store(scripted(0, Some(BackendError::KeyUsage)));
    st.backends.push(slot(scripted(0, None)));
    let e = encrypt(&rt, &st, "k", &encrypt_body(false), &mut log)
        .await
        .expect_err("final");
    assert_eq!(e.name, ErrorName::InvalidKeyUsage);

    // All instances down: the last failure is the answer.
    let mut st = store(scripted(0, Some(BackendError::Unavailable("a".into()))));
    st.backends.push(slot(scripted(200, None)));
    let e = encrypt(&rt, &st, "k", &encrypt_body(false), &mut log)
        .await
        .expect_err("all down");
    assert_eq!(e.name, ErrorName::DependencyTimeout);
}
