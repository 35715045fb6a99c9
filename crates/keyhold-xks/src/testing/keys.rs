//! The fake proxy's external keys: an in-memory table of AES-256-GCM keys answering
//! GetKeyMetadata, Encrypt and Decrypt as the XKS specification describes, including the
//! AAD construction (`be16(len(aad)) || aad || u8(len(md)) || md`) and the ciphertext data
//! integrity value (Appendix C).

use std::collections::BTreeMap;
use std::sync::Mutex;

use keyhold_crypto::{Aes256Gcm, SecretBytes};
use sha2::{Digest, Sha256};

use super::lock;
use crate::wire::{self, ErrorName};

/// The `ciphertextMetadata` the fake proxy returns: it names its AAD scheme, as the
/// specification suggests, and is authenticated by the HSM AAD.
pub const CIPHERTEXT_METADATA: &[u8] = b"keyhold-fake-v1";

/// One external key.
#[derive(Clone)]
struct FakeKey {
    material: SecretBytes,
    key_spec: String,
    key_usage: Vec<String>,
    enabled: bool,
}

/// The last key operation the proxy accepted: its name and `requestMetadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCall {
    /// `metadata`, `encrypt` or `decrypt`.
    pub operation: String,
    /// The external key id from the path.
    pub external_key_id: String,
    /// The request's `requestMetadata`.
    pub request_metadata: wire::RequestMetadata,
}

/// The key table.
#[derive(Default)]
pub(super) struct KeyTable {
    keys: Mutex<BTreeMap<String, FakeKey>>,
    calls: Mutex<Vec<KeyCall>>,
}

/// How a key operation misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Twist {
    /// Answer correctly.
    None,
    /// Return a ciphertext data integrity value that does not match.
    WrongCdiv,
    /// Leave the ciphertext data integrity value out although it was asked for.
    NoCdiv,
    /// Return a plaintext other than the one that was encrypted.
    WrongPlaintext,
}

/// A JSON answer: status and body.
pub(super) type Answer = (u16, String);

/// An error answer: `name` with the status the spec gives it.
fn error(name: ErrorName, message: &str) -> Answer {
    (
        name.status(),
        super::error_json(name.as_str(), message.to_string()),
    )
}

fn ok<T: serde::Serialize>(body: &T) -> Answer {
    match serde_json::to_string(body) {
        Ok(json) => (200, json),
        Err(_) => error(ErrorName::Internal, "serializing the answer"),
    }
}

/// The AAD the fake HSM authenticates.
fn hsm_aad(aad: &[u8], metadata: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(aad.len() + metadata.len() + 3);
    out.extend_from_slice(&(aad.len() as u16).to_be_bytes());
    out.extend_from_slice(aad);
    out.push(metadata.len() as u8);
    out.extend_from_slice(metadata);
    out
}

/// `SHA-256(aad || ciphertextMetadata || iv || ciphertext || tag)` (XKS Appendix C).
pub fn cdiv(aad: &[u8], metadata: &[u8], iv: &[u8], ciphertext: &[u8], tag: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    for part in [aad, metadata, iv, ciphertext, tag] {
        h.update(part);
    }
    h.finalize().to_vec()
}

impl KeyTable {
    pub(super) fn add(&self, id: &str) {
        lock(&self.keys).insert(
            id.to_string(),
            FakeKey {
                material: keyhold_crypto::random_bytes(32),
                key_spec: "AES_256".to_string(),
                key_usage: vec!["ENCRYPT".to_string(), "DECRYPT".to_string()],
                enabled: true,
            },
        );
    }

    pub(super) fn remove(&self, id: &str) -> bool {
        lock(&self.keys).remove(id).is_some()
    }

    pub(super) fn set_enabled(&self, id: &str, enabled: bool) -> bool {
        lock(&self.keys)
            .get_mut(id)
            .map(|k| k.enabled = enabled)
            .is_some()
    }

    pub(super) fn set_metadata(&self, id: &str, key_spec: &str, key_usage: &[&str]) -> bool {
        lock(&self.keys)
            .get_mut(id)
            .map(|k| {
                k.key_spec = key_spec.to_string();
                k.key_usage = key_usage.iter().map(|u| u.to_string()).collect();
            })
            .is_some()
    }

    pub(super) fn calls(&self) -> Vec<KeyCall> {
        lock(&self.calls).clone()
    }

    fn record(&self, operation: &str, id: &str, metadata: &wire::RequestMetadata) {
        let mut calls = lock(&self.calls);
        if calls.len() >= 1000 {
            calls.clear();
        }
        calls.push(KeyCall {
            operation: operation.to_string(),
            external_key_id: id.to_string(),
            request_metadata: metadata.clone(),
        });
    }

    fn key(&self, id: &str) -> Option<FakeKey> {
        lock(&self.keys).get(id).cloned()
    }

    /// Answers one key operation whose path and signature were already checked.
    pub(super) fn handle(&self, operation: &str, id: &str, body: &[u8], twist: Twist) -> Answer {
        match operation {
            "metadata" => self.metadata(id, body),
            "encrypt" => self.encrypt(id, body, twist),
            "decrypt" => self.decrypt(id, body, twist),
            _ => error(ErrorName::InvalidUriPath, "no such operation"),
        }
    }

    fn metadata(&self, id: &str, body: &[u8]) -> Answer {
        let Ok(req) = serde_json::from_slice::<wire::GetKeyMetadataRequest>(body) else {
            return error(ErrorName::Validation, "bad GetKeyMetadata request");
        };
        self.record("metadata", id, &req.request_metadata);
        let Some(key) = self.key(id) else {
            return error(ErrorName::KeyNotFound, "no such external key");
        };
        ok(&wire::GetKeyMetadataResponse {
            key_spec: key.key_spec,
            key_usage: key.key_usage,
            key_status: if key.enabled { "ENABLED" } else { "DISABLED" }.to_string(),
        })
    }

    /// The key if it exists, is enabled and allows `usage`.
    fn usable(&self, id: &str, usage: &str) -> Result<FakeKey, Answer> {
        let key = self
            .key(id)
            .ok_or_else(|| error(ErrorName::KeyNotFound, "no such external key"))?;
        if !key.enabled {
            return Err(error(ErrorName::InvalidState, "the key is disabled"));
        }
        if !key.key_usage.iter().any(|u| u == usage) {
            return Err(error(
                ErrorName::InvalidKeyUsage,
                "the key does not allow this operation",
            ));
        }
        Ok(key)
    }

    fn encrypt(&self, id: &str, body: &[u8], twist: Twist) -> Answer {
        let Ok(req) = serde_json::from_slice::<wire::EncryptRequest>(body) else {
            return error(ErrorName::Validation, "bad Encrypt request");
        };
        self.record("encrypt", id, &req.request_metadata);
        if req.encryption_algorithm != crate::AES_GCM {
            return error(ErrorName::Validation, "unsupported encryptionAlgorithm");
        }
        let key = match self.usable(id, "ENCRYPT") {
            Ok(k) => k,
            Err(answer) => return answer,
        };
        let Ok(aead) = Aes256Gcm::new(key.material.expose()) else {
            return error(ErrorName::Internal, "bad key material");
        };
        let aad = req
            .additional_authenticated_data
            .map(|a| a.0)
            .unwrap_or_default();
        let Ok((iv, mut sealed)) = aead.seal(&hsm_aad(&aad, CIPHERTEXT_METADATA), &req.plaintext.0)
        else {
            return error(ErrorName::Internal, "encryption failed");
        };
        let tag = sealed.split_off(sealed.len().saturating_sub(keyhold_crypto::aead::TAG_LEN));
        let wants_cdiv =
            req.ciphertext_data_integrity_value_algorithm.as_deref() == Some(crate::SHA_256);
        let mut value = cdiv(&aad, CIPHERTEXT_METADATA, &iv, &sealed, &tag);
        if twist == Twist::WrongCdiv {
            value[0] ^= 0x01;
        }
        ok(&wire::EncryptResponse {
            ciphertext: wire::B64(sealed),
            initialization_vector: wire::B64(iv.to_vec()),
            authentication_tag: wire::B64(tag),
            ciphertext_metadata: Some(wire::B64(CIPHERTEXT_METADATA.to_vec())),
            ciphertext_data_integrity_value: (wants_cdiv && twist != Twist::NoCdiv)
                .then_some(wire::B64(value)),
        })
    }

    fn decrypt(&self, id: &str, body: &[u8], twist: Twist) -> Answer {
        let Ok(req) = serde_json::from_slice::<wire::DecryptRequest>(body) else {
            return error(ErrorName::Validation, "bad Decrypt request");
        };
        self.record("decrypt", id, &req.request_metadata);
        if req.encryption_algorithm != crate::AES_GCM {
            return error(ErrorName::Validation, "unsupported encryptionAlgorithm");
        }
        let key = match self.usable(id, "DECRYPT") {
            Ok(k) => k,
            Err(answer) => return answer,
        };
        let Ok(aead) = Aes256Gcm::new(key.material.expose()) else {
            return error(ErrorName::Internal, "bad key material");
        };
        let invalid = || {
            error(
                ErrorName::InvalidCiphertext,
                "the ciphertext, IV, AAD or tag is invalid",
            )
        };
        if req.authentication_tag.0.len() != keyhold_crypto::aead::TAG_LEN {
            return invalid();
        }
        let aad = req
            .additional_authenticated_data
            .map(|a| a.0)
            .unwrap_or_default();
        let metadata = req.ciphertext_metadata.map(|m| m.0).unwrap_or_default();
        let mut sealed = req.ciphertext.0;
        sealed.extend_from_slice(&req.authentication_tag.0);
        let Ok(plaintext) = aead.open(
            &req.initialization_vector.0,
            &hsm_aad(&aad, &metadata),
            &sealed,
        ) else {
            return invalid();
        };
        let mut plaintext = plaintext.expose().to_vec();
        if twist == Twist::WrongPlaintext {
            if let Some(b) = plaintext.first_mut() {
                *b ^= 0x01;
            }
        }
        ok(&wire::DecryptResponse {
            plaintext: wire::B64(plaintext),
        })
    }
}
