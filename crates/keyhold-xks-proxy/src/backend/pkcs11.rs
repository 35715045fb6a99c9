//! PKCS#11 backend over `keyhold-pkcs11` (cryptoki): keys are persistent AES-256 token keys found
//! by label (`key_label_prefix` + external key id), AES-256-GCM runs inside the token, and a key's
//! usage is its `CKA_ENCRYPT`/`CKA_DECRYPT` attributes, set at creation, read back for
//! GetKeyMetadata and enforced by the token itself (`CKR_KEY_FUNCTION_NOT_PERMITTED`).
//!
//! The health check never changes the token: by default it is [`Token::probe`] (token present
//! and healthy, user logged in, object search answers); with `health_check_key_label` it is a
//! GCM round trip on that existing key, which the operator creates once (e.g. with
//! `keyhold xks-proxy keys create`) and which is then no longer reachable as an external key.
//!
//! Key handles are cached by label inside [`Token`] (one token look-up per key, not per
//! request); the cache is dropped on configuration reload ([`KeyBackend::forget_cached_keys`]),
//! and a handle the token refuses is looked up again.
//!
//! The token is opened lazily and reopened after a failed open, so the proxy starts (and
//! reports `UNAVAILABLE`) while the HSM is down, and recovers when it comes back. Calls block on
//! the device and run on tokio's blocking pool.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use keyhold_crypto::SecretBytes;
use keyhold_pkcs11::{
    AesKeyUsage, Ckr, Pin, Pkcs11Error, Token, TokenConfig, GCM_IV_LEN, GCM_TAG_LEN,
};
use serde::Deserialize;

use super::{BackendError, KeyBackend, KeyMeta, KeyStatus, KeyUsage, Sealed};

/// Label of the token key earlier releases created for their health check; never reachable
/// as an external key (and no longer created).
pub const HEALTH_KEY_LABEL: &str = "keyhold-xks-proxy-health-check";

/// Configuration of a PKCS#11 backend.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// The vendor module (e.g. `/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// Token label.
    pub token_label: String,
    /// User PIN inline (prefer `user_pin_env`).
    #[serde(default)]
    pub user_pin: Option<String>,
    /// User PIN from this environment variable.
    #[serde(default)]
    pub user_pin_env: Option<String>,
    /// Sessions kept open.
    #[serde(default = "default_pool")]
    pub pool_size: usize,
    /// Prefix added to external key ids to form the token key label.
    #[serde(default)]
    pub key_label_prefix: String,
    /// Full token label of an existing AES key (able to encrypt and decrypt) the health
    /// check round-trips through; absent: a read-only probe without cryptography. The key is
    /// never created by the proxy and is not reachable as an external key.
    #[serde(default)]
    pub health_check_key_label: Option<String>,
}

fn default_pool() -> usize {
    4
}

/// The PKCS#11 backend.
pub struct Pkcs11Backend {
    name: String,
    inner: Arc<Inner>,
}

/// What the blocking pool needs: the configuration and the token once open.
struct Inner {
    config: Pkcs11Config,
    token: Mutex<Option<Arc<Token>>>,
}

impl std::fmt::Debug for Pkcs11Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Pkcs11Backend({}, token {})",
            self.name, self.inner.config.token_label
        )
    }
}

fn map_err(e: Pkcs11Error) -> BackendError {
    if matches!(e, Pkcs11Error::KeyNotFound { .. }) {
        BackendError::NotFound
    } else if e.ckr() == Some(Ckr::KeyFunctionNotPermitted) {
        BackendError::KeyUsage
    } else if e.is_authentication_failure() {
        BackendError::InvalidCiphertext
    } else if matches!(e, Pkcs11Error::PoolExhausted) {
        BackendError::Timeout
    } else if e.is_device_failure() {
        BackendError::Unavailable(e.to_string())
    } else {
        BackendError::Internal(e.to_string())
    }
}

impl Pkcs11Backend {
    /// A backend; the token is opened on first use.
    pub fn new(name: &str, config: &Pkcs11Config) -> Result<Self, BackendError> {
        if config.user_pin.is_some() == config.user_pin_env.is_some() {
            return Err(BackendError::Internal(format!(
                "backend {name}: give exactly one of user_pin, user_pin_env"
            )));
        }
        Ok(Self {
            name: name.to_string(),
            inner: Arc::new(Inner {
                config: config.clone(),
                token: Mutex::new(None),
            }),
        })
    }

    fn label(&self, key_id: &str) -> Result<String, BackendError> {
        let label = format!("{}{key_id}", self.inner.config.key_label_prefix);
        if label == HEALTH_KEY_LABEL
            || self.inner.config.health_check_key_label.as_deref() == Some(label.as_str())
        {
            return Err(BackendError::NotFound);
        }
        Ok(label)
    }

    /// Creates a token key for external key id `key_id`, able to encrypt and decrypt
    /// (blocking; for the CLI and tests).
    pub fn create_key(&self, key_id: &str) -> Result<(), BackendError> {
        self.create_key_with_usage(key_id, KeyUsage::ENCRYPT_DECRYPT)
    }

    /// Creates a token key for external key id `key_id` whose `CKA_ENCRYPT`/`CKA_DECRYPT`
    /// are `usage` (blocking; for the CLI and tests).
    pub fn create_key_with_usage(&self, key_id: &str, usage: KeyUsage) -> Result<(), BackendError> {
        let label = self.label(key_id)?;
        let usage = AesKeyUsage {
            encrypt: usage.encrypt,
            decrypt: usage.decrypt,
        };
        self.inner
            .token()?
            .generate_aes_key_with_usage(&label, usage)
            .map_err(map_err)
    }

    /// Creates the key `health_check_key_label` names, if configured and missing (blocking;
    /// for the CLI). Returns whether a key was created.
    pub fn create_health_check_key(&self) -> Result<bool, BackendError> {
        let Some(label) = self.inner.config.health_check_key_label.clone() else {
            return Ok(false);
        };
        let token = self.inner.token()?;
        if token.has_key(&label).map_err(map_err)? {
            return Ok(false);
        }
        token.generate_aes_key(&label).map_err(map_err)?;
        Ok(true)
    }

    /// Runs `f` on the blocking pool, opening the token there first if needed.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Token) -> Result<T, Pkcs11Error> + Send + 'static,
    ) -> Result<T, BackendError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&*inner.token()?).map_err(map_err))
            .await
            .map_err(|e| BackendError::Internal(e.to_string()))?
    }
}

impl Inner {
    fn pin(&self) -> Result<Pin, BackendError> {
        match (&self.config.user_pin, &self.config.user_pin_env) {
            (Some(p), _) => Ok(Pin::new(p.as_str())),
            (None, Some(var)) => std::env::var(var).map(Pin::new).map_err(|_| {
                BackendError::Unavailable(format!("environment variable {var} is not set"))
            }),
            (None, None) => Err(BackendError::Internal("no user PIN configured".to_string())),
        }
    }

    /// The open token, opening it if needed (blocking).
    fn token(&self) -> Result<Arc<Token>, BackendError> {
        let mut slot = self
            .token
            .lock()
            .map_err(|_| BackendError::Internal("lock poisoned".to_string()))?;
        if let Some(t) = slot.as_ref() {
            return Ok(Arc::clone(t));
        }
        let mut cfg = TokenConfig::new(&self.config.module, &self.config.token_label, self.pin()?);
        cfg.pool_size = self.config.pool_size.max(1);
        // What the read-only probe searches for (it never creates it).
        cfg.health_key_label = self
            .config
            .health_check_key_label
            .clone()
            .unwrap_or_else(|| HEALTH_KEY_LABEL.to_string());
        let token =
            Arc::new(Token::open(cfg).map_err(|e| BackendError::Unavailable(e.to_string()))?);
        *slot = Some(Arc::clone(&token));
        Ok(token)
    }
}

#[async_trait]
impl KeyBackend for Pkcs11Backend {
    fn instance_id(&self) -> String {
        format!("{}:{}", self.name, self.inner.config.token_label)
    }

    fn model(&self) -> String {
        "PKCS#11 token".to_string()
    }

    fn vendor(&self) -> String {
        "PKCS#11".to_string()
    }

    async fn metadata(&self, key_id: &str) -> Result<KeyMeta, BackendError> {
        let label = self.label(key_id)?;
        let info = self.blocking(move |t| t.key_info(&label)).await?;
        Ok(KeyMeta {
            status: if info.value_len == 32 {
                KeyStatus::Enabled
            } else {
                // Not an AES-256 key: KMS refuses it at CreateKey either way.
                KeyStatus::Disabled
            },
            usage: KeyUsage {
                encrypt: info.can_encrypt,
                decrypt: info.can_decrypt,
            },
        })
    }

    async fn encrypt(
        &self,
        key_id: &str,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Sealed, BackendError> {
        let label = self.label(key_id)?;
        let (aad, plaintext) = (aad.to_vec(), SecretBytes::from_slice(plaintext));
        let out = self
            .blocking(move |t| t.aes_gcm_encrypt(&label, &aad, plaintext.expose()))
            .await?;
        Ok(Sealed {
            iv: out.iv.to_vec(),
            ciphertext: out.ciphertext,
            tag: out.tag.to_vec(),
        })
    }

    async fn encrypt_and_decrypt(
        &self,
        key_id: &str,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<(Sealed, Result<SecretBytes, BackendError>), BackendError> {
        let label = self.label(key_id)?;
        let (aad, plaintext) = (aad.to_vec(), SecretBytes::from_slice(plaintext));
        let (out, back) = self
            .blocking(move |t| t.aes_gcm_encrypt_and_decrypt(&label, &aad, plaintext.expose()))
            .await?;
        let sealed = Sealed {
            iv: out.iv.to_vec(),
            ciphertext: out.ciphertext,
            tag: out.tag.to_vec(),
        };
        let back = back.map(|pt| SecretBytes::from_slice(&pt)).map_err(map_err);
        Ok((sealed, back))
    }

    async fn decrypt(
        &self,
        key_id: &str,
        iv: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8],
    ) -> Result<SecretBytes, BackendError> {
        let label = self.label(key_id)?;
        let iv: [u8; GCM_IV_LEN] = iv.try_into().map_err(|_| BackendError::InvalidCiphertext)?;
        let tag: [u8; GCM_TAG_LEN] = tag
            .try_into()
            .map_err(|_| BackendError::InvalidCiphertext)?;
        let (aad, ciphertext) = (aad.to_vec(), ciphertext.to_vec());
        let pt = self
            .blocking(move |t| t.aes_gcm_decrypt(&label, &iv, &aad, &ciphertext, &tag))
            .await?;
        Ok(SecretBytes::from_slice(&pt))
    }

    fn forget_cached_keys(&self) {
        let open = self.inner.token.lock().ok().and_then(|t| t.clone());
        if let Some(token) = open {
            token.forget_key_handles();
        }
    }

    async fn health(&self) -> Result<(), BackendError> {
        match self.inner.config.health_check_key_label.clone() {
            Some(label) => self.blocking(move |t| t.round_trip_check(&label)).await,
            None => self.blocking(|t| t.probe()).await,
        }
    }
}
