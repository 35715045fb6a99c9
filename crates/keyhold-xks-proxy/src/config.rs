//! The proxy's TOML configuration: listener and TLS, backends, and the logical key stores
//! (one per URI path prefix, each with its own keys, credentials and rate limit).
//!
//! ```toml
//! [server]
//! listen = "0.0.0.0:443"
//! tls_cert = "/etc/keyhold/xks.pem"
//! tls_key = "/etc/keyhold/xks.key"
//! # client_ca = "/etc/keyhold/amazon-roots.pem"       # mTLS
//! # client_subject_cn = ["cks.kms.eu-west-1.amazonaws.com"]
//! # authorization_rules = "/etc/keyhold/xks-rules.toml"
//!
//! [backends.soft]
//! type = "software"
//! key_file = "/var/lib/keyhold/xks-keys.json"
//! root_key_file = "/etc/keyhold/root.key"
//!
//! [[stores]]
//! prefix = "/tenant-a"          # XksProxyUriPath = /tenant-a/kms/xks/v1
//! backend = "soft"
//! # replicas = ["soft-2"]      # more instances with the same keys: failover + ekmFleetDetails
//! allowed_keys = ["app-key-1"]  # omit to allow every key of the backend
//! rate_limit_rps = 1800
//! disabled_keys = []            # reported DISABLED whatever the backend says
//!
//! # [backends.hsm]
//! # type = "pkcs11"
//! # module = "/usr/lib/softhsm/libsofthsm2.so"
//! # # The proxy uses only CKM_AES_KEY_GEN and CKM_AES_GCM. On SoftHSMv2, enabling only those
//! # # (`slots.mechanisms = CKM_AES_KEY_GEN,CKM_AES_GCM` in its softhsm2.conf) makes each
//! # # Encrypt and Decrypt cheaper: SoftHSMv2 copies the list of enabled mechanisms on every
//! # # C_EncryptInit and C_DecryptInit (proxy Encrypt on SoftHSMv2 +7% to +16% with oha).
//! # token_label = "keyhold"
//! # user_pin_env = "KEYHOLD_HSM_PIN"
//! # key_label_prefix = "xks/"
//! # # Health checks never write to the token: without this, a read-only probe (token
//! # # info, login state, an object search); with it, a GCM round trip on this existing key,
//! # # made once with `keyhold xks-proxy keys create-health-check-key`.
//! # health_check_key_label = "xks-health-check"
//! [[stores.credentials]]
//! access_key_id = "ABCDEFGHIJKLMNOPQRST"
//! secret = "..."                # or secret_env = "VAR"
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::backend::pkcs11::Pkcs11Config;
use crate::backend::software::{valid_key_id, SoftwareConfig};

/// The whole file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listener, TLS and global settings.
    pub server: ServerConfig,
    /// Key managers by name.
    #[serde(default)]
    pub backends: BTreeMap<String, BackendConfig>,
    /// Logical key stores.
    #[serde(default)]
    pub stores: Vec<StoreConfig>,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// `ip:port` to listen on (not reloaded).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// PEM certificate chain.
    pub tls_cert: PathBuf,
    /// PEM private key.
    pub tls_key: PathBuf,
    /// PEM CA certificates client certificates must chain to; enables mTLS.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// Accepted client certificate subject common names (empty: any, when mTLS is on).
    #[serde(default)]
    pub client_subject_cn: Vec<String>,
    /// SigV4 region the credential scope must name; absent accepts any region.
    #[serde(default)]
    pub region: Option<String>,
    /// Secondary authorization rules file.
    #[serde(default)]
    pub authorization_rules: Option<PathBuf>,
    /// SigV4 clock-skew window in seconds (spec: 5 minutes).
    #[serde(default = "default_skew")]
    pub max_skew_seconds: u64,
    /// How long a deep health check result is reused (capped at 60 s).
    #[serde(default = "default_health_cache")]
    pub health_cache_seconds: u64,
    /// Budget of one key manager call; beyond it the answer is `DependencyTimeoutException`.
    #[serde(default = "default_backend_timeout")]
    pub backend_timeout_ms: u64,
    /// A health round trip slower than this reports `DEGRADED`.
    #[serde(default = "default_degraded")]
    pub degraded_latency_ms: u64,
    /// Largest plaintext/ciphertext accepted (the spec's minimum is 4300).
    #[serde(default = "default_max_data")]
    pub max_plaintext_bytes: usize,
    /// Largest AAD accepted (the spec's minimum is 8192; at most 65535).
    #[serde(default = "default_max_aad")]
    pub max_aad_bytes: usize,
    /// Poll the configuration, rules, certificate and key files for changes every this many
    /// seconds (0: only SIGHUP reloads). Like `listen`, fixed at start.
    #[serde(default = "default_poll")]
    pub reload_poll_seconds: u64,
}

fn default_listen() -> String {
    "0.0.0.0:443".to_string()
}
fn default_skew() -> u64 {
    300
}
fn default_health_cache() -> u64 {
    30
}
fn default_backend_timeout() -> u64 {
    200
}
fn default_degraded() -> u64 {
    100
}
fn default_max_data() -> usize {
    65536
}
fn default_max_aad() -> usize {
    16384
}
fn default_poll() -> u64 {
    2
}

/// A backend.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum BackendConfig {
    /// The built-in software key store.
    Software(SoftwareConfig),
    /// A PKCS#11 token.
    Pkcs11(Pkcs11Config),
}

/// `[[stores]]`: one logical key store.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// URI path prefix before `/kms/xks/v1`, e.g. `/tenant-a`; empty for none.
    #[serde(default)]
    pub prefix: String,
    /// Name of the backend in `[backends]`.
    pub backend: String,
    /// Further backend instances holding the same keys (a replicated HSM cluster): reported
    /// in `ekmFleetDetails`, and used in order when an instance is unavailable.
    #[serde(default)]
    pub replicas: Vec<String>,
    /// External key ids this store may use; absent allows every key of the backend.
    #[serde(default)]
    pub allowed_keys: Option<Vec<String>>,
    /// Keys reported `DISABLED` and refused with `InvalidStateException`, whatever the backend
    /// says (how PKCS#11 keys are disabled without touching the token).
    #[serde(default)]
    pub disabled_keys: Vec<String>,
    /// Sustained requests per second before `ThrottlingException`.
    #[serde(default)]
    pub rate_limit_rps: Option<f64>,
    /// Burst size (defaults to one second's worth).
    #[serde(default)]
    pub rate_limit_burst: Option<f64>,
    /// SigV4 credentials (at least one; several at once for rotation).
    pub credentials: Vec<CredentialConfig>,
}

impl StoreConfig {
    /// The `XksProxyUriPath` KMS must be configured with.
    pub fn uri_path(&self) -> String {
        format!("{}/kms/xks/v1", self.prefix)
    }
}

/// One SigV4 credential. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    /// 20–30 characters of `A-Z2-7`.
    pub access_key_id: String,
    /// The secret, inline.
    #[serde(default)]
    pub secret: Option<String>,
    /// The secret, from this environment variable.
    #[serde(default)]
    pub secret_env: Option<String>,
}

impl std::fmt::Debug for CredentialConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialConfig")
            .field("access_key_id", &self.access_key_id)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("secret_env", &self.secret_env)
            .finish()
    }
}

impl CredentialConfig {
    /// The secret from the file or the environment.
    pub fn resolve_secret(&self) -> Result<String, ConfigError> {
        match (&self.secret, &self.secret_env) {
            (Some(s), None) => Ok(s.clone()),
            (None, Some(var)) => std::env::var(var).map_err(|_| {
                ConfigError::Invalid(format!(
                    "credential {}: environment variable {var} is not set",
                    self.access_key_id
                ))
            }),
            _ => Err(ConfigError::Invalid(format!(
                "credential {}: give exactly one of secret, secret_env",
                self.access_key_id
            ))),
        }
    }
}

/// Configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML of the right shape.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What serde/toml said.
        message: String,
    },
    /// Semantically invalid.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates configuration text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The store with this prefix.
    pub fn store(&self, prefix: &str) -> Option<&StoreConfig> {
        self.stores.iter().find(|s| s.prefix == prefix)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.server.max_aad_bytes < 8192 || self.server.max_aad_bytes > 65535 {
            return bad("max_aad_bytes must be between 8192 and 65535".to_string());
        }
        if self.server.max_plaintext_bytes < 4300 {
            return bad("max_plaintext_bytes must be at least 4300".to_string());
        }
        let mut prefixes = BTreeSet::new();
        for store in &self.stores {
            let p = &store.prefix;
            let prefix_ok = p.is_empty()
                || (p.starts_with('/')
                    && p.len() > 1
                    && !p.ends_with('/')
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_')));
            if !prefix_ok || store.uri_path().len() > 128 {
                return bad(format!(
                    "store prefix {p:?}: must be empty or /[a-zA-Z0-9/_-]+ (URI path at most 128)"
                ));
            }
            if !prefixes.insert(p.clone()) {
                return bad(format!("store prefix {p:?} appears twice"));
            }
            if let Some(b) = std::iter::once(&store.backend)
                .chain(&store.replicas)
                .find(|b| !self.backends.contains_key(*b))
            {
                return bad(format!("store {p:?}: unknown backend {b:?}"));
            }
            let distinct: BTreeSet<_> = std::iter::once(&store.backend)
                .chain(&store.replicas)
                .collect();
            if distinct.len() != store.replicas.len() + 1 || distinct.len() > 10 {
                return bad(format!(
                    "store {p:?}: backend and replicas must be 1-10 distinct backends"
                ));
            }
            if let Some(keys) = &store.allowed_keys {
                if let Some(k) = keys.iter().find(|k| !valid_key_id(k)) {
                    return bad(format!("store {p:?}: invalid key id {k:?}"));
                }
            }
            if let Some(k) = store.disabled_keys.iter().find(|k| !valid_key_id(k)) {
                return bad(format!(
                    "store {p:?}: invalid key id {k:?} in disabled_keys"
                ));
            }
            if let Some(rps) = store.rate_limit_rps {
                if !(rps > 0.0 && rps.is_finite()) {
                    return bad(format!("store {p:?}: rate_limit_rps must be positive"));
                }
            }
            if store.credentials.is_empty() {
                return bad(format!("store {p:?}: at least one credential is required"));
            }
            let mut ids = BTreeSet::new();
            for c in &store.credentials {
                if !valid_access_key_id(&c.access_key_id) {
                    return bad(format!(
                        "store {p:?}: access key id {:?} must be 20-30 characters of A-Z2-7",
                        c.access_key_id
                    ));
                }
                if !ids.insert(&c.access_key_id) {
                    return bad(format!(
                        "store {p:?}: access key id {} appears twice",
                        c.access_key_id
                    ));
                }
                if c.secret.is_some() == c.secret_env.is_some() {
                    return bad(format!(
                        "credential {}: give exactly one of secret, secret_env",
                        c.access_key_id
                    ));
                }
                if let Some(secret) = &c.secret {
                    if !valid_secret(secret) {
                        return bad(format!(
                            "credential {}: secret must be 43-64 characters of a-zA-Z0-9/+=",
                            c.access_key_id
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// KMS's rule for XKS access key ids: 20–30 of `A-Z2-7`.
pub fn valid_access_key_id(id: &str) -> bool {
    (20..=30).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c))
}

/// KMS's rule for XKS secrets: 43–64 of `a-zA-Z0-9/+=`.
pub fn valid_secret(s: &str) -> bool {
    (43..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '+' | '='))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const AKID: &str = "AKIAXKSPROXYTESTAAAA";
    pub(crate) const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==";

    fn sample() -> String {
        format!(
            r#"
            [server]
            tls_cert = "c.pem"
            tls_key = "k.pem"
            [backends.soft]
            type = "software"
            key_file = "keys.json"
            root_key_file = "root.key"
            [[stores]]
            prefix = "/a"
            backend = "soft"
            allowed_keys = ["k1"]
            rate_limit_rps = 10
            [[stores.credentials]]
            access_key_id = "{AKID}"
            secret = "{SECRET}"
            "#
        )
    }

    #[test]
    fn sample_parses_with_defaults() {
        let c = Config::parse(&sample()).expect("valid");
        assert_eq!(c.server.max_skew_seconds, 300);
        assert_eq!(c.server.listen, "0.0.0.0:443");
        assert_eq!(
            c.store("/a").map(|s| s.uri_path()),
            Some("/a/kms/xks/v1".into())
        );
    }

    #[test]
    fn invalid_configurations_are_refused() {
        let cases = [
            ("prefix = \"/a\"", "prefix = \"a\""),
            ("prefix = \"/a\"", "prefix = \"/a/\""),
            ("backend = \"soft\"", "backend = \"hsm\""),
            (AKID, "akid-lowercase-xxxxxxxx"),
            (SECRET, "short"),
            ("rate_limit_rps = 10", "rate_limit_rps = 0"),
            (
                "backend = \"soft\"",
                "backend = \"soft\"\nreplicas = [\"soft\"]",
            ),
            (
                "backend = \"soft\"",
                "backend = \"soft\"\nreplicas = [\"nope\"]",
            ),
            ("allowed_keys = [\"k1\"]", "allowed_keys = [\"k/1\"]"),
            ("tls_key = \"k.pem\"", "tls_key = \"k.pem\"\nunknown = 1"),
        ];
        for (from, to) in cases {
            let text = sample().replace(from, to);
            assert!(Config::parse(&text).is_err(), "accepted: {to}");
        }
        let twice = format!(
            "{}{}",
            sample(),
            &sample()[sample().find("[[stores]]").unwrap_or(0)..]
        );
        assert!(Config::parse(&twice).is_err());
    }

    #[test]
    fn debug_redacts_credential_secrets() {
        let c = Config::parse(&sample()).expect("valid");
        let shown = format!("{c:?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains(AKID));
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn credential_format_rules() {
        assert!(valid_access_key_id("ABCDEFGHIJKLMNOPQRS2"));
        assert!(!valid_access_key_id("ABCDEFGHIJKLMNOPQRS1"));
        assert!(!valid_access_key_id("ABC"));
        assert!(valid_secret(SECRET));
        assert!(!valid_secret(&"a".repeat(65)));
        assert!(!valid_secret(&format!("{}-", "a".repeat(50))));
    }
}
