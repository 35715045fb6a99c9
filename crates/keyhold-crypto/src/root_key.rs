//! The root key: the one key that wraps every secret Keyhold keeps at rest (KMS key
//! material, XKS proxy credentials, kmsuser passwords).
//!
//! Wrapped secrets are bound to the row that owns them through associated data, so a wrapped
//! value copied into another row fails to unwrap instead of silently moving a key.
//! Sources: a file holding the base64 of 32 random bytes (created with mode 0600 on first start
//! when allowed), or an environment variable holding the same. A PKCS#11 source comes later.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::aead::{AeadError, Aes256Gcm, IV_LEN, KEY_LEN, TAG_LEN};
use crate::SecretBytes;

/// Format version of a wrapped secret.
const WRAP_VERSION: u8 = 1;

/// Errors loading or using the root key.
#[derive(Debug, thiserror::Error)]
pub enum RootKeyError {
    /// The root key file could not be read or created.
    #[error("root key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file or variable does not hold base64 of exactly 32 bytes.
    #[error("root key from {origin} is not base64 of 32 bytes")]
    Malformed {
        /// Where it came from (a path or a variable name; never the value).
        origin: String,
    },
    /// The environment variable is not set.
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    /// The root key file can be read or written by its group or by others; Keyhold refuses
    /// it, as ssh refuses such private keys.
    #[error(
        "root key file {path} is accessible by group or others (mode {mode:03o}); \
         restrict it with `chmod 600 {path}`"
    )]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Wrapping failed (the secret or associated data is over AES-GCM's length limit).
    #[error("cannot wrap the secret: {0}")]
    Wrap(AeadError),
    /// The root key file is missing and creating it was not allowed.
    #[error("root key file {0} does not exist (start once in dev mode, or provide one)")]
    MissingFile(PathBuf),
    /// A wrapped secret is truncated, of an unknown version, or fails authentication
    /// (wrong root key, or data moved between rows).
    #[error("wrapped secret cannot be unwrapped: {0}")]
    Unwrap(&'static str),
}

/// Where the root key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootKeySource {
    /// A file with the base64 of 32 bytes. When `create_if_missing`, a fresh key is written
    /// with mode 0600 (dev default).
    File {
        /// The file.
        path: PathBuf,
        /// Create it when absent.
        create_if_missing: bool,
    },
    /// An environment variable with the base64 of 32 bytes.
    Env(String),
}

impl RootKeySource {
    /// Loads (or creates) the root key.
    pub fn load(&self) -> Result<RootKey, RootKeyError> {
        match self {
            RootKeySource::Env(var) => {
                let value =
                    std::env::var(var).map_err(|_| RootKeyError::MissingEnv(var.clone()))?;
                RootKey::from_base64(value.trim(), &format!("${var}"))
            }
            RootKeySource::File {
                path,
                create_if_missing,
            } => load_file(path, *create_if_missing),
        }
    }
}

fn load_file(path: &Path, create: bool) -> Result<RootKey, RootKeyError> {
    let io = |source| RootKeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::File::open(path) {
        Ok(mut file) => {
            check_permissions(path, &file)?;
            let mut text = zeroize::Zeroizing::new(String::new());
            file.read_to_string(&mut text).map_err(io)?;
            RootKey::from_base64(text.trim(), &path.display().to_string())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !create {
                return Err(RootKeyError::MissingFile(path.to_path_buf()));
            }
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let key = crate::random_bytes(KEY_LEN);
            let mut encoded = zeroize::Zeroizing::new(
                base64::engine::general_purpose::STANDARD.encode(key.expose()),
            );
            encoded.push('\n');
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(path).map_err(io)?;
            f.write_all(encoded.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
            RootKey::new(key.expose()).map_err(|_| RootKeyError::Malformed {
                origin: path.display().to_string(),
            })
        }
        Err(e) => Err(io(e)),
    }
}

/// Refuses a key file that its group or others may read or write (`mode & 0o077 != 0`).
#[cfg(unix)]
fn check_permissions(path: &Path, file: &std::fs::File) -> Result<(), RootKeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file
        .metadata()
        .map_err(|source| RootKeyError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(RootKeyError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Permission bits are a Unix notion; elsewhere the file is accepted as it is.
#[cfg(not(unix))]
fn check_permissions(_path: &Path, _file: &std::fs::File) -> Result<(), RootKeyError> {
    Ok(())
}

/// The root key. `Debug` shows only a short fingerprint.
pub struct RootKey {
    aead: Aes256Gcm,
    fingerprint: String,
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RootKey({})", self.fingerprint)
    }
}

impl RootKey {
    /// A root key from 32 raw bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, AeadError> {
        let aead = Aes256Gcm::new(bytes)?;
        // The fingerprint lets operators tell root keys apart without revealing them: a hash of
        // a fixed label under the key would need the key; a hash of the key itself is one-way.
        let digest = Sha256::digest([b"keyhold-root-key-fingerprint".as_slice(), bytes].concat());
        Ok(Self {
            aead,
            fingerprint: hex_prefix(&digest),
        })
    }

    /// A root key from base64 text; `origin` names the source in errors.
    pub fn from_base64(text: &str, origin: &str) -> Result<Self, RootKeyError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(SecretBytes::new)
            .map_err(|_| RootKeyError::Malformed {
                origin: origin.to_string(),
            })?;
        Self::new(bytes.expose()).map_err(|_| RootKeyError::Malformed {
            origin: origin.to_string(),
        })
    }

    /// A short, non-secret fingerprint of the key (for logs and diagnostics).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Wraps `secret`, binding it to `aad` (the identity of the row that will own it).
    /// Layout: `version(1) || iv(12) || ciphertext || tag(16)`. Fails with
    /// [`RootKeyError::Wrap`] when encryption fails, never returning an empty value.
    pub fn wrap(&self, aad: &[u8], secret: &[u8]) -> Result<Vec<u8>, RootKeyError> {
        let (iv, ct) = self.aead.seal(aad, secret).map_err(RootKeyError::Wrap)?;
        let mut out = Vec::with_capacity(1 + IV_LEN + ct.len());
        out.push(WRAP_VERSION);
        out.extend_from_slice(&iv);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Unwraps a value made by [`RootKey::wrap`] with the same `aad`.
    pub fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<SecretBytes, RootKeyError> {
        if wrapped.len() < 1 + IV_LEN + TAG_LEN {
            return Err(RootKeyError::Unwrap("truncated"));
        }
        if wrapped[0] != WRAP_VERSION {
            return Err(RootKeyError::Unwrap("unknown version"));
        }
        self.aead
            .open(&wrapped[1..1 + IV_LEN], aad, &wrapped[1 + IV_LEN..])
            .map_err(|_| RootKeyError::Unwrap("authentication failed"))
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_binds_to_aad() {
        let rk = RootKey::new(&[3u8; 32]).unwrap();
        let w = rk.wrap(b"key:1", b"material").unwrap();
        assert_eq!(rk.unwrap(b"key:1", &w).unwrap().expose(), b"material");
        assert!(rk.unwrap(b"key:2", &w).is_err());
        assert!(rk.unwrap(b"key:1", &w[..10]).is_err());
        let other = RootKey::new(&[4u8; 32]).unwrap();
        assert!(other.unwrap(b"key:1", &w).is_err());
        assert!(!w.windows(8).any(|win| win == b"material"));
    }

    #[test]
    fn file_source_creates_0600_and_reloads_same_key() {
        let dir = std::env::temp_dir().join(format!("kh-rk-{}", std::process::id()));
        let path = dir.join("sub/root.key");
        let _ = std::fs::remove_dir_all(&dir);
        let src = RootKeySource::File {
            path: path.clone(),
            create_if_missing: true,
        };
        let a = src.load().unwrap();
        let b = src.load().unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        let w = a.wrap(b"x", b"y").unwrap();
        assert_eq!(b.unwrap(b"x", &w).unwrap().expose(), b"y");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let strict = RootKeySource::File {
            path: dir.join("absent.key"),
            create_if_missing: false,
        };
        assert!(matches!(strict.load(), Err(RootKeyError::MissingFile(_))));
        std::fs::write(dir.join("bad.key"), "not base64!").unwrap();
        let bad = RootKeySource::File {
            path: dir.join("bad.key"),
            create_if_missing: false,
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let perms = std::fs::Permissions::from_mode(0o600);
            std::fs::set_permissions(dir.join("bad.key"), perms).unwrap();
        }
        assert!(matches!(bad.load(), Err(RootKeyError::Malformed { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Like ssh with private keys: a key file its group or others can read or write is
    /// refused, with the command that fixes it; 0600 and 0400 are accepted.
    #[cfg(unix)]
    #[test]
    fn key_file_open_to_group_or_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("kh-rk-perm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("root.key");
        std::fs::write(&path, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").unwrap();
        let src = RootKeySource::File {
            path: path.clone(),
            create_if_missing: false,
        };
        for mode in [0o644, 0o640, 0o604, 0o660, 0o620, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = src.load().unwrap_err();
            assert!(
                matches!(err, RootKeyError::InsecurePermissions { mode: m, .. } if m == mode),
                "{mode:o}: {err}"
            );
            let text = err.to_string();
            assert!(
                text.contains(&format!("chmod 600 {}", path.display())),
                "{text}"
            );
        }
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(src.load().is_ok(), "{mode:o}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
