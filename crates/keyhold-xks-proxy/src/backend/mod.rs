//! Key managers behind the proxy: a small [`KeyBackend`] trait and its implementations.
//!
//! A backend knows keys by id and their [`KeyUsage`], does AES-256-GCM with keys that never
//! leave it (refusing what a key's usage does not allow), and can prove it is alive without
//! changing anything: a read-only probe or a round trip on a key reserved for health checks.

pub mod pkcs11;
pub mod software;

use async_trait::async_trait;
use keyhold_crypto::SecretBytes;

/// Status of an external key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Usable.
    Enabled,
    /// Known but disabled: metadata answers `DISABLED`, crypto `InvalidStateException`.
    Disabled,
}

/// What a key may be used for. Reported in GetKeyMetadata's `keyUsage` (`ENCRYPT`,
/// `DECRYPT`) and enforced by the backend on every encryption and decryption, the proxy's own
/// test decryption included: a use the key does not allow is [`BackendError::KeyUsage`]
/// (`InvalidKeyUsageException`).
///
/// Written `encrypt,decrypt`, `encrypt`, `decrypt` or `none` (case-insensitive) on the
/// command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUsage {
    /// The key may encrypt.
    pub encrypt: bool,
    /// The key may decrypt.
    pub decrypt: bool,
}

impl KeyUsage {
    /// Encrypt and decrypt: the default, and what KMS requires of an external key.
    pub const ENCRYPT_DECRYPT: KeyUsage = KeyUsage {
        encrypt: true,
        decrypt: true,
    };

    /// The `keyUsage` values of GetKeyMetadata, in the spec's spelling and order.
    pub fn wire_values(self) -> Vec<String> {
        [(WIRE_ENCRYPT, self.encrypt), (WIRE_DECRYPT, self.decrypt)]
            .iter()
            .filter(|(_, allowed)| *allowed)
            .map(|(usage, _)| (*usage).to_string())
            .collect()
    }

    /// The usage named by `keyUsage`-style values (`ENCRYPT`, `DECRYPT`, any case); `None`
    /// for a value that is neither.
    pub fn from_values<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<KeyUsage> {
        let mut usage = KeyUsage {
            encrypt: false,
            decrypt: false,
        };
        for v in values {
            if v.eq_ignore_ascii_case(WIRE_ENCRYPT) {
                usage.encrypt = true;
            } else if v.eq_ignore_ascii_case(WIRE_DECRYPT) {
                usage.decrypt = true;
            } else {
                return None;
            }
        }
        Some(usage)
    }
}

const WIRE_ENCRYPT: &str = "ENCRYPT";
const WIRE_DECRYPT: &str = "DECRYPT";

impl Default for KeyUsage {
    fn default() -> Self {
        KeyUsage::ENCRYPT_DECRYPT
    }
}

impl std::str::FromStr for KeyUsage {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("none") {
            return Ok(KeyUsage {
                encrypt: false,
                decrypt: false,
            });
        }
        KeyUsage::from_values(s.split(',').map(str::trim)).ok_or_else(|| {
            format!("invalid key usage {s:?}: encrypt,decrypt | encrypt | decrypt | none")
        })
    }
}

impl std::fmt::Display for KeyUsage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.encrypt, self.decrypt) {
            (true, true) => f.write_str("encrypt,decrypt"),
            (true, false) => f.write_str("encrypt"),
            (false, true) => f.write_str("decrypt"),
            (false, false) => f.write_str("none"),
        }
    }
}

/// What the proxy needs to know about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMeta {
    /// Enabled or disabled.
    pub status: KeyStatus,
    /// What the key may be used for.
    pub usage: KeyUsage,
}

/// AES-GCM output, split the way the XKS API carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// 12-byte IV.
    pub iv: Vec<u8>,
    /// Ciphertext, as long as the plaintext.
    pub ciphertext: Vec<u8>,
    /// 16-byte tag.
    pub tag: Vec<u8>,
}

/// Why a backend call failed. Messages never hold key material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// No such key.
    #[error("key not found")]
    NotFound,
    /// The key is disabled.
    #[error("key is disabled")]
    Disabled,
    /// The key exists but may not be used for this operation.
    #[error("key does not allow this operation")]
    KeyUsage,
    /// Authentication of ciphertext, IV, AAD or tag failed.
    #[error("ciphertext authentication failed")]
    InvalidCiphertext,
    /// The key manager did not answer in time.
    #[error("key manager timed out")]
    Timeout,
    /// The key manager cannot serve at all (device gone, file unreadable).
    #[error("key manager unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error("key manager error: {0}")]
    Internal(String),
}

/// A key manager instance.
#[async_trait]
pub trait KeyBackend: Send + Sync + 'static {
    /// Instance id reported in `ekmFleetDetails`.
    fn instance_id(&self) -> String;
    /// Model reported in `ekmFleetDetails`.
    fn model(&self) -> String;
    /// Vendor reported as `ekmVendor`.
    fn vendor(&self) -> String {
        "Keyhold".to_string()
    }
    /// Metadata of `key_id`.
    async fn metadata(&self, key_id: &str) -> Result<KeyMeta, BackendError>;
    /// AES-256-GCM encryption with a fresh 12-byte IV; fails on disabled keys and with
    /// [`BackendError::KeyUsage`] on keys that may not encrypt.
    async fn encrypt(
        &self,
        key_id: &str,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Sealed, BackendError>;
    /// AES-256-GCM decryption; fails on disabled keys and with [`BackendError::KeyUsage`] on
    /// keys that may not decrypt.
    async fn decrypt(
        &self,
        key_id: &str,
        iv: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8],
    ) -> Result<SecretBytes, BackendError>;
    /// [`KeyBackend::encrypt`], then the decryption of its output with the same key (the test
    /// decryption behind XKS's `ciphertextDataIntegrityValue`), in one call to the key manager
    /// where it can (one hand-off to a blocking thread, one session). The outer error is the
    /// encryption's; the test decryption's result comes back beside the ciphertext.
    async fn encrypt_and_decrypt(
        &self,
        key_id: &str,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<(Sealed, Result<SecretBytes, BackendError>), BackendError> {
        let sealed = self.encrypt(key_id, aad, plaintext).await?;
        let back = self
            .decrypt(key_id, &sealed.iv, aad, &sealed.ciphertext, &sealed.tag)
            .await;
        Ok((sealed, back))
    }
    /// Whether the key manager can serve. Must not change the key manager (no keys created,
    /// no state written): a read-only probe, or a round trip on a key reserved for it.
    async fn health(&self) -> Result<(), BackendError>;
    /// Drops what the backend caches about its keys (a PKCS#11 token's object handles), so
    /// the next use of each key looks it up again. Called on every configuration reload, when
    /// an operator may have changed keys behind the proxy's back (a key the key manager no
    /// longer knows by its cached handle is looked up again anyway).
    fn forget_cached_keys(&self) {}
    /// Picks up changes made behind the proxy's back (e.g. the key file edited by the CLI).
    async fn refresh(&self) -> Result<(), BackendError> {
        Ok(())
    }
}
