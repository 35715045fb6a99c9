//! The built-in software key store: AES-256 keys in a JSON file, each wrapped by Keyhold's
//! root key and bound to its key id, so a wrapped key copied under another id does not unwrap.
//! A key's usage (`usage` in the file: `ENCRYPT`, `DECRYPT`, both, or neither) is stored with
//! it and bound into the wrapping as well when it is not the default of both, so a restriction
//! cannot be lifted by editing the file. Usage is enforced on every encryption and decryption.
//!
//! The file is replaced atomically on every change (write to a temporary file, then rename),
//! and the running proxy reloads it when its modification time or size changes, so
//! `keyhold xks-proxy keys disable` takes effect without a restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use keyhold_crypto::{Aes256Gcm, RootKey, RootKeySource, SecretBytes};
use serde::{Deserialize, Serialize};

use super::{BackendError, KeyBackend, KeyMeta, KeyStatus, KeyUsage, Sealed};

const FORMAT: &str = "keyhold-xks-proxy-software-keys/1";
const TAG_LEN: usize = 16;

/// Configuration of a software backend.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoftwareConfig {
    /// The key file (created on first use).
    pub key_file: PathBuf,
    /// The root key file (base64 of 32 bytes).
    pub root_key_file: PathBuf,
    /// Create the root key file when it is missing (development).
    #[serde(default)]
    pub create_root_key: bool,
}

/// One key as stored in the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredKey {
    /// `RootKey::wrap` output, Base64.
    wrapped: String,
    enabled: bool,
    created_at: String,
    /// `keyUsage` values; absent (files of earlier releases) means both.
    #[serde(default = "default_usage")]
    usage: Vec<String>,
}

fn default_usage() -> Vec<String> {
    KeyUsage::ENCRYPT_DECRYPT.wire_values()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyFile {
    format: String,
    /// Key reserved for health checks; never reachable through the API.
    health_key: String,
    keys: BTreeMap<String, StoredKey>,
}

/// A key as listed by [`SoftwareBackend::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyListing {
    /// External key id.
    pub id: String,
    /// Enabled or not.
    pub enabled: bool,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// What the key may be used for.
    pub usage: KeyUsage,
}

struct Entry {
    cipher: Aes256Gcm,
    enabled: bool,
    usage: KeyUsage,
}

struct Loaded {
    keys: BTreeMap<String, Arc<Entry>>,
    health: Arc<Aes256Gcm>,
    stamp: Option<(SystemTime, u64)>,
}

/// The software backend.
pub struct SoftwareBackend {
    name: String,
    path: PathBuf,
    root: RootKey,
    loaded: RwLock<Loaded>,
}

impl std::fmt::Debug for SoftwareBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SoftwareBackend({}, {})", self.name, self.path.display())
    }
}

/// What a wrapped key is bound to: its id, and its usage unless that is the default (so keys
/// of earlier releases, all able to do both, unwrap as before).
fn wrap_aad(id: &str, usage: KeyUsage) -> Vec<u8> {
    if usage == KeyUsage::ENCRYPT_DECRYPT {
        format!("keyhold-xks-proxy/software/v1/key/{id}").into_bytes()
    } else {
        format!("keyhold-xks-proxy/software/v1/key/{id}/usage/{usage}").into_bytes()
    }
}

fn stored_usage(id: &str, values: &[String]) -> Result<KeyUsage, BackendError> {
    KeyUsage::from_values(values.iter().map(String::as_str))
        .ok_or_else(|| BackendError::Unavailable(format!("key {id}: unknown usage {values:?}")))
}

const HEALTH_AAD: &[u8] = b"keyhold-xks-proxy/software/v1/health-key";

fn io_err(path: &Path, e: impl std::fmt::Display) -> BackendError {
    BackendError::Unavailable(format!("{}: {e}", path.display()))
}

impl SoftwareBackend {
    /// Opens (creating an empty key file if needed) the store named `name`.
    pub fn open(name: &str, config: &SoftwareConfig) -> Result<Self, BackendError> {
        let root = RootKeySource::File {
            path: config.root_key_file.clone(),
            create_if_missing: config.create_root_key,
        }
        .load()
        .map_err(|e| BackendError::Unavailable(e.to_string()))?;
        if !config.key_file.exists() {
            let health = keyhold_crypto::random_bytes(32);
            let file = KeyFile {
                format: FORMAT.to_string(),
                health_key: STANDARD.encode(
                    root.wrap(HEALTH_AAD, health.expose())
                        .map_err(|e| BackendError::Internal(e.to_string()))?,
                ),
                keys: BTreeMap::new(),
            };
            write_file(&config.key_file, &file)?;
        }
        let loaded = load(&config.key_file, &root)?;
        Ok(Self {
            name: name.to_string(),
            path: config.key_file.clone(),
            root,
            loaded: RwLock::new(loaded),
        })
    }

    /// Creates a new random key `id` (enabled, able to encrypt and decrypt) in the file and in
    /// memory.
    pub fn create_key(&self, id: &str) -> Result<(), BackendError> {
        self.create_key_with_usage(id, KeyUsage::ENCRYPT_DECRYPT)
    }

    /// Creates a new random key `id` (enabled) limited to `usage`.
    pub fn create_key_with_usage(&self, id: &str, usage: KeyUsage) -> Result<(), BackendError> {
        if !valid_key_id(id) {
            return Err(BackendError::Internal(format!(
                "invalid key id {id:?}: 1-128 of A-Z a-z 0-9 - . _"
            )));
        }
        self.modify(|file| {
            if file.keys.contains_key(id) {
                return Err(BackendError::Internal(format!("key {id} already exists")));
            }
            let material = keyhold_crypto::random_bytes(32);
            let wrapped = self
                .root
                .wrap(&wrap_aad(id, usage), material.expose())
                .map_err(|e| BackendError::Internal(e.to_string()))?;
            let created_at = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            file.keys.insert(
                id.to_string(),
                StoredKey {
                    wrapped: STANDARD.encode(wrapped),
                    enabled: true,
                    created_at,
                    usage: usage.wire_values(),
                },
            );
            Ok(())
        })
    }

    /// Enables or disables `id`.
    pub fn set_enabled(&self, id: &str, enabled: bool) -> Result<(), BackendError> {
        self.modify(|file| {
            let key = file.keys.get_mut(id).ok_or(BackendError::NotFound)?;
            key.enabled = enabled;
            Ok(())
        })
    }

    /// All keys in the file.
    pub fn list(&self) -> Result<Vec<KeyListing>, BackendError> {
        let file = read_file(&self.path)?;
        file.keys
            .into_iter()
            .map(|(id, k)| {
                Ok(KeyListing {
                    usage: stored_usage(&id, &k.usage)?,
                    id,
                    enabled: k.enabled,
                    created_at: k.created_at,
                })
            })
            .collect()
    }

    fn modify(
        &self,
        change: impl FnOnce(&mut KeyFile) -> Result<(), BackendError>,
    ) -> Result<(), BackendError> {
        let mut file = read_file(&self.path)?;
        change(&mut file)?;
        write_file(&self.path, &file)?;
        self.reload()
    }

    fn reload(&self) -> Result<(), BackendError> {
        let loaded = load(&self.path, &self.root)?;
        let mut guard = self
            .loaded
            .write()
            .map_err(|_| BackendError::Internal("lock poisoned".to_string()))?;
        *guard = loaded;
        Ok(())
    }

    fn entry(&self, key_id: &str) -> Result<Arc<Entry>, BackendError> {
        let guard = self
            .loaded
            .read()
            .map_err(|_| BackendError::Internal("lock poisoned".to_string()))?;
        guard
            .keys
            .get(key_id)
            .cloned()
            .ok_or(BackendError::NotFound)
    }

    /// The key if it is enabled and `allowed` accepts its usage.
    fn usable_entry(
        &self,
        key_id: &str,
        allowed: impl FnOnce(KeyUsage) -> bool,
    ) -> Result<Arc<Entry>, BackendError> {
        let entry = self.entry(key_id)?;
        if !entry.enabled {
            Err(BackendError::Disabled)
        } else if !allowed(entry.usage) {
            Err(BackendError::KeyUsage)
        } else {
            Ok(entry)
        }
    }
}

/// External key ids: 1–128 of `A-Z a-z 0-9 - . _` (KMS's `XksKeyIdType`).
pub fn valid_key_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn read_file(path: &Path) -> Result<KeyFile, BackendError> {
    let text = std::fs::read(path).map_err(|e| io_err(path, e))?;
    let file: KeyFile = serde_json::from_slice(&text).map_err(|e| io_err(path, e))?;
    if file.format != FORMAT {
        return Err(io_err(path, format!("unknown format {:?}", file.format)));
    }
    Ok(file)
}

fn write_file(path: &Path, file: &KeyFile) -> Result<(), BackendError> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io_err(path, e))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let json = serde_json::to_vec_pretty(file).map_err(|e| io_err(path, e))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(|e| io_err(&tmp, e))?;
    f.write_all(&json).map_err(|e| io_err(&tmp, e))?;
    f.sync_all().map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

fn unwrap_key(root: &RootKey, aad: &[u8], wrapped_b64: &str) -> Result<Aes256Gcm, BackendError> {
    let wrapped = STANDARD
        .decode(wrapped_b64)
        .map_err(|_| BackendError::Unavailable("wrapped key is not base64".to_string()))?;
    let material = root
        .unwrap(aad, &wrapped)
        .map_err(|e| BackendError::Unavailable(e.to_string()))?;
    Aes256Gcm::new(material.expose()).map_err(|e| BackendError::Unavailable(e.to_string()))
}

fn load(path: &Path, root: &RootKey) -> Result<Loaded, BackendError> {
    let before = stamp(path);
    let file = read_file(path)?;
    let health = Arc::new(unwrap_key(root, HEALTH_AAD, &file.health_key)?);
    let mut keys = BTreeMap::new();
    for (id, k) in &file.keys {
        let usage = stored_usage(id, &k.usage)?;
        let cipher = unwrap_key(root, &wrap_aad(id, usage), &k.wrapped)?;
        keys.insert(
            id.clone(),
            Arc::new(Entry {
                cipher,
                enabled: k.enabled,
                usage,
            }),
        );
    }
    Ok(Loaded {
        keys,
        health,
        stamp: before,
    })
}

fn seal(cipher: &Aes256Gcm, aad: &[u8], plaintext: &[u8]) -> Result<Sealed, BackendError> {
    let (iv, mut ct) = cipher
        .seal(aad, plaintext)
        .map_err(|e| BackendError::Internal(e.to_string()))?;
    if ct.len() != plaintext.len() + TAG_LEN {
        return Err(BackendError::Internal("AES-GCM failed".to_string()));
    }
    let tag = ct.split_off(plaintext.len());
    Ok(Sealed {
        iv: iv.to_vec(),
        ciphertext: ct,
        tag,
    })
}

fn open(
    cipher: &Aes256Gcm,
    iv: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<SecretBytes, BackendError> {
    let mut joined = Vec::with_capacity(ciphertext.len() + tag.len());
    joined.extend_from_slice(ciphertext);
    joined.extend_from_slice(tag);
    cipher
        .open(iv, aad, &joined)
        .map_err(|_| BackendError::InvalidCiphertext)
}

#[async_trait]
impl KeyBackend for SoftwareBackend {
    fn instance_id(&self) -> String {
        self.name.clone()
    }

    fn model(&self) -> String {
        "Keyhold software key store".to_string()
    }

    async fn metadata(&self, key_id: &str) -> Result<KeyMeta, BackendError> {
        let entry = self.entry(key_id)?;
        Ok(KeyMeta {
            status: if entry.enabled {
                KeyStatus::Enabled
            } else {
                KeyStatus::Disabled
            },
            usage: entry.usage,
        })
    }

    async fn encrypt(
        &self,
        key_id: &str,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Sealed, BackendError> {
        let entry = self.usable_entry(key_id, |u| u.encrypt)?;
        seal(&entry.cipher, aad, plaintext)
    }

    async fn decrypt(
        &self,
        key_id: &str,
        iv: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8],
    ) -> Result<SecretBytes, BackendError> {
        let entry = self.usable_entry(key_id, |u| u.decrypt)?;
        open(&entry.cipher, iv, aad, ciphertext, tag)
    }

    async fn health(&self) -> Result<(), BackendError> {
        // The key file must still be readable: a store whose file is gone cannot serve after
        // the next reload, so it is reported as unavailable now.
        read_file(&self.path)?;
        let health = {
            let guard = self
                .loaded
                .read()
                .map_err(|_| BackendError::Internal("lock poisoned".to_string()))?;
            Arc::clone(&guard.health)
        };
        let probe = keyhold_crypto::random_bytes(32);
        let sealed = seal(&health, b"health", probe.expose())?;
        let back = open(
            &health,
            &sealed.iv,
            b"health",
            &sealed.ciphertext,
            &sealed.tag,
        )?;
        if back.expose() == probe.expose() {
            Ok(())
        } else {
            Err(BackendError::Internal(
                "health round trip mismatch".to_string(),
            ))
        }
    }

    async fn refresh(&self) -> Result<(), BackendError> {
        let current = {
            let guard = self
                .loaded
                .read()
                .map_err(|_| BackendError::Internal("lock poisoned".to_string()))?;
            guard.stamp
        };
        let now = stamp(&self.path);
        if now.is_some() && now != current {
            self.reload()?;
            tracing::info!(backend = %self.name, "software key file reloaded");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> SoftwareConfig {
        SoftwareConfig {
            key_file: dir.join("keys.json"),
            root_key_file: dir.join("root.key"),
            create_root_key: true,
        }
    }

    #[tokio::test]
    async fn keys_round_trip_disable_and_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(dir.path());
        let b = SoftwareBackend::open("soft", &cfg).expect("open");
        b.create_key("k1").expect("create");
        assert!(b.create_key("k1").is_err());
        assert!(b.create_key("bad/id").is_err());
        let s = b.encrypt("k1", b"aad", b"secret").await.expect("enc");
        assert_eq!((s.iv.len(), s.ciphertext.len(), s.tag.len()), (12, 6, 16));
        let p = b
            .decrypt("k1", &s.iv, b"aad", &s.ciphertext, &s.tag)
            .await
            .expect("dec");
        assert_eq!(p.expose(), b"secret");
        assert_eq!(
            b.decrypt("k1", &s.iv, b"other", &s.ciphertext, &s.tag)
                .await,
            Err(BackendError::InvalidCiphertext)
        );
        assert_eq!(
            b.encrypt("nope", b"", b"x").await,
            Err(BackendError::NotFound)
        );
        b.set_enabled("k1", false).expect("disable");
        assert_eq!(
            b.encrypt("k1", b"", b"x").await,
            Err(BackendError::Disabled)
        );
        assert_eq!(
            b.metadata("k1").await.map(|m| m.status),
            Ok(KeyStatus::Disabled)
        );
        b.health().await.expect("healthy");

        // A second handle (the CLI) changes the file; the first picks it up on refresh.
        let other = SoftwareBackend::open("soft", &cfg).expect("reopen");
        other.set_enabled("k1", true).expect("enable");
        b.refresh().await.expect("refresh");
        let p = b
            .decrypt("k1", &s.iv, b"aad", &s.ciphertext, &s.tag)
            .await
            .expect("dec after reopen");
        assert_eq!(p.expose(), b"secret");
        assert_eq!(other.list().expect("list").len(), 1);
        let text = std::fs::read_to_string(&cfg.key_file).expect("read");
        assert!(!text.contains("secret"));

        std::fs::remove_file(&cfg.key_file).expect("remove");
        assert!(matches!(
            b.health().await,
            Err(BackendError::Unavailable(_))
        ));
    }

    #[tokio::test]
    async fn usage_is_enforced_and_cannot_be_widened_in_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(dir.path());
        let b = SoftwareBackend::open("soft", &cfg).expect("open");
        let enc_only = KeyUsage {
            encrypt: true,
            decrypt: false,
        };
        b.create_key_with_usage("kenc", enc_only).expect("create");
        let s = b.encrypt("kenc", b"", b"x").await.expect("encrypts");
        assert_eq!(
            b.decrypt("kenc", &s.iv, b"", &s.ciphertext, &s.tag).await,
            Err(BackendError::KeyUsage)
        );
        assert_eq!(b.metadata("kenc").await.map(|m| m.usage), Ok(enc_only));
        // Widening the usage by editing the file makes the key unusable, not more usable.
        let text = std::fs::read_to_string(&cfg.key_file).expect("read");
        let widened = text.replace("\"ENCRYPT\"\n", "\"ENCRYPT\",\n        \"DECRYPT\"\n");
        assert_ne!(widened, text);
        std::fs::write(&cfg.key_file, widened).expect("write");
        assert!(SoftwareBackend::open("soft", &cfg).is_err());
    }
}
