//! Configuration: a TOML file, overridden by environment variables, overridden by flags,
//! resolved once into typed [`Settings`]. Secrets (access-key secrets, the root key) come from
//! files or the environment and are never logged.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// The default listen address of `keyhold serve`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4600";
/// The account used in dev mode when the access key id is not a 12-digit account id.
pub const DEFAULT_ACCOUNT: &str = "123456789012";
/// The Region used when a request carries no credential scope (unsigned dev requests).
pub const DEFAULT_REGION: &str = "us-east-1";
/// Default time a client has to send a request's headers (and, on a new connection, to
/// start its first request) before the connection is closed.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;
/// Default time a client has to complete the TLS handshake.
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT_SECS: u64 = 10;
/// Default cap on connections open at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// The format of log lines (on standard error).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines; coloured only when standard error is a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Any access key is accepted without verifying the signature; a 12-digit access key id is
    /// taken as the account id. For laptops and CI.
    Dev,
    /// Only configured access keys; every signature is verified.
    Strict,
}

/// One configured access key (strict mode).
#[derive(Clone, Deserialize)]
pub struct AccessKey {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The 12-digit account the key belongs to.
    pub account_id: String,
    /// The IAM principal this access key belongs to (`arn:aws:iam::<account>:user/<name>` or
    /// `...:role/<name>`); defaults to the account root. Key policies and grants are
    /// evaluated for this principal, and it is the `awsPrincipalArn` sent to XKS proxies.
    #[serde(default)]
    pub principal_arn: Option<String>,
    /// The principal's IAM identity policies, as JSON documents: Keyhold's stand-in for IAM.
    /// A principal other than the account root may do only what these allow, unless a key
    /// policy names it directly or a grant gives it the operation.
    #[serde(default)]
    pub identity_policies: Vec<String>,
    /// May call the test-mode endpoints (`/moto-api/reset`, `/keyhold-test/*`) under
    /// `--auth strict` (default false). Test mode itself needs the `--test-mode` flag.
    #[serde(default)]
    pub admin: bool,
    /// The parsed `identity_policies` (filled in when the configuration is resolved).
    #[serde(skip)]
    pub parsed_identity_policies: keyhold_core::context::IdentityPolicies,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("account_id", &self.account_id)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

/// The file form of the configuration (`keyhold serve --config keyhold.toml`). Every field is
/// optional; flags and environment variables override it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Listen address, e.g. "127.0.0.1:4600".
    pub listen: Option<String>,
    /// Admin listener (`/livez`, `/readyz`, `/metrics`), e.g. "127.0.0.1:4601"; off when unset.
    pub admin_listen: Option<String>,
    /// Data directory (SQLite file, dev root key).
    pub data_dir: Option<PathBuf>,
    /// `postgres://...` to share state between nodes; default SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// PostgreSQL schema holding Keyhold's tables, created if missing (several deployments or
    /// test runs can share one database this way); default: the first schema on the
    /// connection's `search_path`.
    pub database_schema: Option<String>,
    /// PEM certificate chain for HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    pub tls_key: Option<PathBuf>,
    /// Authentication mode.
    pub auth: Option<AuthMode>,
    /// Default account for dev mode.
    pub default_account: Option<String>,
    /// Root key file.
    pub root_key_file: Option<PathBuf>,
    /// Access keys for strict mode.
    #[serde(default)]
    pub access_keys: Vec<AccessKey>,
    /// No longer accepted: test mode exists only with the `--test-mode` flag. A file that
    /// still sets it is refused at start-up, naming the flag.
    pub test_mode: Option<toml::Value>,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: Option<usize>,
    /// Seconds a client has to send a request's headers (and, on a new connection, to start
    /// its first request) before the connection is closed; HTTP/2 connections are pinged at
    /// this interval and closed when a ping is not answered within it. Default 10.
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds a client has to complete the TLS handshake. Default 10.
    pub tls_handshake_timeout_secs: Option<u64>,
    /// Connections open at once; when reached, new connections wait in the kernel's backlog
    /// until one closes. Default 4096.
    pub max_connections: Option<usize>,
    /// `text` (default) or `json`.
    pub log_format: Option<LogFormat>,
    /// Allowed SigV4 clock skew in seconds. Default 300: real KMS rejects signatures older
    /// than five minutes ("... - 5 min."), although other AWS services allow fifteen.
    pub max_clock_skew_secs: Option<i64>,
    /// The XKS client: trusted CAs, `connect_to` address overrides, VPC endpoint services,
    /// per-call budget.
    pub xks: Option<keyhold_xks::XksClientConfig>,
    /// Custom key stores allowed per account and Region (default 10, as AWS).
    pub max_custom_key_stores: Option<u32>,
    /// Cryptographic requests per second allowed on the keys of one custom key store
    /// (default 1800, AWS's quota); beyond it, ThrottlingException.
    pub custom_key_store_requests_per_second: Option<u32>,
    /// Milliseconds a key change made through another node sharing the database may go unseen
    /// by this node's cryptographic operations (default 1000; 0 reads the key on every call).
    /// Changes made through this node are seen at once. AWS KMS documents its own changes
    /// as typically propagating in "less than a few seconds".
    pub key_cache_ttl_ms: Option<u64>,
    /// Seconds between health checks of connected external key stores (default 300;
    /// 0 turns them off). Results are logged; a store never leaves CONNECTED because of one.
    pub xks_health_check_interval_secs: Option<u64>,
    /// Seconds between sweeps that finish custom key stores left CONNECTING or DISCONNECTING
    /// (by a crash, a restart or another node); default 5. A sweep also runs at start-up.
    pub custom_key_store_sweep_interval_secs: Option<u64>,
    /// This node's identity for connection leases (default: kept in `<data_dir>/node-id`,
    /// so a restarted node resumes its own stores at once). Nodes sharing a database need
    /// distinct ids.
    pub node_id: Option<String>,
    /// AWS CloudHSM clusters (`BaldrApiService.*` on the same endpoint) backing AWS_CLOUDHSM
    /// custom key stores: `enabled`, `module_path`, `fault_injection`. On by default when the
    /// PKCS#11 module (SoftHSMv2's, or `module_path`) exists; `enabled = false` turns it off.
    pub cloudhsm: Option<keyhold_cloudhsm::CloudHsmConfig>,
    /// The audit trail: a file path, or "-" for standard output; off when unset.
    pub audit_log: Option<String>,
    /// Size in bytes at which the audit log file is rotated (default 100 MiB).
    pub audit_log_max_bytes: Option<u64>,
    /// Rotated audit log files kept, `PATH.1`...`PATH.<n>` (default 5).
    pub audit_log_max_files: Option<u32>,
    /// Seed file (TOML or JSON, by extension) applied at every start: keys with given ids,
    /// aliases, tags, custom key stores (see `seed`).
    pub seed: Option<PathBuf>,
}

/// Resolved settings of one server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The admin listener's address (`/livez`, `/readyz`, `/metrics`), when on.
    pub admin_listen: Option<SocketAddr>,
    /// Where the audit trail goes (`--audit-log`), when on.
    pub audit_log: Option<crate::audit::AuditTarget>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database URL; `None` means SQLite in `data_dir`.
    pub database_url: Option<String>,
    /// PostgreSQL schema for Keyhold's tables (`None`: the `search_path`'s first).
    pub database_schema: Option<String>,
    /// TLS certificate and key, when serving HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Authentication mode.
    pub auth: AuthMode,
    /// Account used in dev mode.
    pub default_account: String,
    /// Root key source.
    pub root_key: keyhold_crypto::RootKeySource,
    /// Strict-mode access keys by id.
    pub access_keys: BTreeMap<String, AccessKey>,
    /// Test-harness endpoints enabled.
    pub test_mode: bool,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Time to send a request's headers (and to start the first request of a connection).
    pub header_read_timeout: std::time::Duration,
    /// Time to complete the TLS handshake.
    pub tls_handshake_timeout: std::time::Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// The format of log lines.
    pub log_format: LogFormat,
    /// Allowed clock skew for SigV4.
    pub max_clock_skew: time::Duration,
    /// Where to write the bound address once listening (for harnesses).
    pub ready_file: Option<PathBuf>,
    /// The XKS client configuration.
    pub xks: keyhold_xks::XksClientConfig,
    /// Custom key stores allowed per account and Region.
    pub max_custom_key_stores: u32,
    /// Cryptographic requests per second per custom key store.
    pub custom_key_store_requests_per_second: u32,
    /// Bound on how long another node's key changes may go unseen here (zero: no key cache).
    pub key_cache_ttl: std::time::Duration,
    /// Interval of the XKS health check (`None`: off).
    pub xks_health_check_interval: Option<std::time::Duration>,
    /// Interval of the custom key store recovery sweep.
    pub custom_key_store_sweep_interval: std::time::Duration,
    /// Lease-holder identity; `None` means the one kept in the data directory.
    pub node_id: Option<String>,
    /// The `[cloudhsm]` table.
    pub cloudhsm: keyhold_cloudhsm::CloudHsmConfig,
    /// Seed file applied at every start, before requests are accepted.
    pub seed: Option<PathBuf>,
}

/// Default data directory: `$KEYHOLD_DATA_DIR`, else `$XDG_DATA_HOME/keyhold`, else
/// `~/.local/share/keyhold`, else `./keyhold-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("keyhold");
    }
    if let Some(h) = std::env::var_os("HOME") {
        return PathBuf::from(h).join(".local/share/keyhold");
    }
    PathBuf::from("keyhold-data")
}

/// Flags of `keyhold serve` (each also readable from a `KEYHOLD_*` environment variable).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "KEYHOLD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Listen address [default: 127.0.0.1:4600]; port 0 picks a free port.
    #[arg(long, env = "KEYHOLD_LISTEN")]
    pub listen: Option<String>,
    /// Serve /livez, /readyz and /metrics (Prometheus) on this address, e.g.
    /// 127.0.0.1:4601 [default: off].
    #[arg(long, env = "KEYHOLD_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,
    /// Write a CloudTrail-shaped audit record per API call to this file (JSON lines, appended,
    /// rotated by size), or to standard output with `-` [default: off] (config: audit_log).
    #[arg(long, env = "KEYHOLD_AUDIT_LOG")]
    pub audit_log: Option<String>,
    /// Rotate the audit log file when it would pass this many bytes [default: 104857600]
    /// (config: audit_log_max_bytes).
    #[arg(long, env = "KEYHOLD_AUDIT_LOG_MAX_BYTES")]
    pub audit_log_max_bytes: Option<u64>,
    /// Rotated audit log files kept, PATH.1 (newest) to PATH.<n> [default: 5]
    /// (config: audit_log_max_files).
    #[arg(long, env = "KEYHOLD_AUDIT_LOG_MAX_FILES")]
    pub audit_log_max_files: Option<u32>,
    /// Data directory for the SQLite file and the dev root key
    /// [default: ~/.local/share/keyhold].
    #[arg(long, env = "KEYHOLD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `postgres://...` to share state between Keyhold nodes (default: SQLite in the data dir).
    #[arg(long, env = "KEYHOLD_DATABASE_URL")]
    pub database_url: Option<String>,
    /// PEM certificate chain: serve HTTPS.
    #[arg(long, env = "KEYHOLD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "KEYHOLD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Authentication mode [default: dev].
    #[arg(long, env = "KEYHOLD_AUTH", value_enum)]
    pub auth: Option<AuthMode>,
    /// Account id used in dev mode for non-numeric access keys [default: 123456789012].
    #[arg(long, env = "KEYHOLD_DEFAULT_ACCOUNT")]
    pub default_account: Option<String>,
    /// Root key file [default: <data-dir>/root.key, created in dev mode]. The variable
    /// KEYHOLD_ROOT_KEY (base64 of 32 bytes) takes precedence over any file.
    #[arg(long, env = "KEYHOLD_ROOT_KEY_FILE")]
    pub root_key_file: Option<PathBuf>,
    /// Answer the test endpoints (`POST /moto-api/reset` wipes all state,
    /// `/keyhold-test/*`) and allow `[cloudhsm] fault_injection`. Only this flag turns test
    /// mode on (never the config file or the environment); with `--auth strict` the test
    /// endpoints need a request signed by an access key with `admin = true`.
    #[arg(long)]
    pub test_mode: bool,
    /// Seconds a client has to send a request's headers [default: 10]
    /// (config: header_read_timeout_secs).
    #[arg(long, env = "KEYHOLD_HEADER_READ_TIMEOUT_SECS")]
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds a client has to complete the TLS handshake [default: 10]
    /// (config: tls_handshake_timeout_secs).
    #[arg(long, env = "KEYHOLD_TLS_HANDSHAKE_TIMEOUT_SECS")]
    pub tls_handshake_timeout_secs: Option<u64>,
    /// Connections open at once [default: 4096] (config: max_connections).
    #[arg(long, env = "KEYHOLD_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Milliseconds another node's key changes may go unseen by this node's cryptographic
    /// operations [default: 1000; 0: no key cache] (config: key_cache_ttl_ms).
    #[arg(long, env = "KEYHOLD_KEY_CACHE_TTL_MS")]
    pub key_cache_ttl_ms: Option<u64>,
    /// Log line format on standard error [default: text] (config: log_format).
    #[arg(long, env = "KEYHOLD_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Write the bound address (host:port) to this file once listening.
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
    /// Seed file (.toml or .json) applied idempotently at every start: keys with given ids,
    /// aliases, tags, custom key stores, for reproducible test environments (config: seed).
    #[arg(long, env = "KEYHOLD_SEED")]
    pub seed: Option<PathBuf>,
}

/// Default bound on the staleness of another node's key changes, in milliseconds.
pub const DEFAULT_KEY_CACHE_TTL_MS: u64 = 1000;

/// The environment variable holding the root key itself (base64 of 32 bytes).
pub const ROOT_KEY_ENV: &str = "KEYHOLD_ROOT_KEY";
/// The environment variable that switched test mode on in earlier releases; now refused.
pub const RETIRED_TEST_MODE_ENV: &str = "KEYHOLD_TEST_MODE";

/// Resolves file < environment < flags into [`Settings`].
pub fn resolve(args: ServeArgs) -> anyhow::Result<Settings> {
    use anyhow::Context as _;
    let file: FileConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => FileConfig::default(),
    };
    if file.test_mode.is_some() {
        let path = args.config.as_deref().unwrap_or(std::path::Path::new(""));
        anyhow::bail!(
            "{}: `test_mode` is no longer read from the configuration file; remove it and start \
             the server with the --test-mode command-line flag instead",
            path.display()
        );
    }
    if std::env::var_os(RETIRED_TEST_MODE_ENV).is_some() {
        anyhow::bail!(
            "the environment variable {RETIRED_TEST_MODE_ENV} no longer turns test mode on; unset \
             it and start the server with the --test-mode command-line flag instead"
        );
    }
    let cloudhsm = file.cloudhsm.unwrap_or_default();
    if cloudhsm.fault_injection && !args.test_mode {
        anyhow::bail!(
            "[cloudhsm] fault_injection = true needs test mode: start the server with the \
             --test-mode command-line flag (never in production)"
        );
    }
    let header_read_timeout = positive_secs(
        "header_read_timeout_secs",
        args.header_read_timeout_secs
            .or(file.header_read_timeout_secs)
            .unwrap_or(DEFAULT_HEADER_READ_TIMEOUT_SECS),
    )?;
    let tls_handshake_timeout = positive_secs(
        "tls_handshake_timeout_secs",
        args.tls_handshake_timeout_secs
            .or(file.tls_handshake_timeout_secs)
            .unwrap_or(DEFAULT_TLS_HANDSHAKE_TIMEOUT_SECS),
    )?;
    let max_connections = args
        .max_connections
        .or(file.max_connections)
        .unwrap_or(DEFAULT_MAX_CONNECTIONS);
    if max_connections == 0 {
        anyhow::bail!("max_connections must be at least 1");
    }
    let listen_text = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let listen: SocketAddr = listen_text.parse().with_context(|| {
        format!("--listen {listen_text:?} is not an address like 127.0.0.1:4600")
    })?;
    let admin_listen = match args.admin_listen.or(file.admin_listen) {
        Some(text) => Some(text.parse::<SocketAddr>().with_context(|| {
            format!("--admin-listen {text:?} is not an address like 127.0.0.1:4601")
        })?),
        None => None,
    };
    let audit_log = match args.audit_log.or(file.audit_log) {
        None => None,
        Some(p) if p == "-" => Some(crate::audit::AuditTarget::Stdout),
        Some(p) if p.is_empty() => anyhow::bail!("--audit-log needs a path, or - for stdout"),
        Some(p) => Some(crate::audit::AuditTarget::File {
            path: PathBuf::from(p),
            max_bytes: args
                .audit_log_max_bytes
                .or(file.audit_log_max_bytes)
                .unwrap_or(crate::audit::writer::DEFAULT_MAX_BYTES),
            max_files: args
                .audit_log_max_files
                .or(file.audit_log_max_files)
                .unwrap_or(crate::audit::writer::DEFAULT_MAX_FILES),
        }),
    };
    let data_dir = args
        .data_dir
        .or(file.data_dir)
        .unwrap_or_else(default_data_dir);
    let auth = args.auth.or(file.auth).unwrap_or(AuthMode::Dev);
    let tls = match (
        args.tls_cert.or(file.tls_cert),
        args.tls_key.or(file.tls_key),
    ) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => anyhow::bail!("TLS needs both a certificate and a key"),
    };
    let root_key = if std::env::var_os(ROOT_KEY_ENV).is_some() {
        keyhold_crypto::RootKeySource::Env(ROOT_KEY_ENV.to_string())
    } else {
        keyhold_crypto::RootKeySource::File {
            path: args
                .root_key_file
                .or(file.root_key_file)
                .unwrap_or_else(|| data_dir.join("root.key")),
            create_if_missing: auth == AuthMode::Dev,
        }
    };
    let default_account = args
        .default_account
        .or(file.default_account)
        .unwrap_or_else(|| DEFAULT_ACCOUNT.to_string());
    if default_account.len() != 12 || !default_account.bytes().all(|b| b.is_ascii_digit()) {
        anyhow::bail!("the default account must be 12 digits, got {default_account:?}");
    }
    let mut access_keys = BTreeMap::new();
    for mut k in file.access_keys {
        k.parsed_identity_policies = parse_identity_policies(&k)?;
        access_keys.insert(k.access_key_id.clone(), k);
    }
    if auth == AuthMode::Strict && access_keys.is_empty() {
        anyhow::bail!(
            "strict authentication needs at least one [[access_keys]] entry in the config file"
        );
    }
    Ok(Settings {
        listen,
        admin_listen,
        audit_log,
        data_dir,
        database_url: args.database_url.or(file.database_url),
        database_schema: file.database_schema,
        tls,
        auth,
        default_account,
        root_key,
        access_keys,
        test_mode: args.test_mode,
        max_body_bytes: file.max_body_bytes.unwrap_or(1024 * 1024),
        header_read_timeout,
        tls_handshake_timeout,
        max_connections,
        log_format: args.log_format.or(file.log_format).unwrap_or_default(),
        max_clock_skew: time::Duration::seconds(file.max_clock_skew_secs.unwrap_or(300)),
        ready_file: args.ready_file,
        xks: file.xks.unwrap_or_default(),
        custom_key_store_requests_per_second: file
            .custom_key_store_requests_per_second
            .unwrap_or(keyhold_core::custom_key_stores::DEFAULT_CRYPTO_REQUESTS_PER_SECOND),
        max_custom_key_stores: file
            .max_custom_key_stores
            .unwrap_or(keyhold_core::custom_key_stores::DEFAULT_MAX_CUSTOM_KEY_STORES),
        key_cache_ttl: std::time::Duration::from_millis(
            args.key_cache_ttl_ms
                .or(file.key_cache_ttl_ms)
                .unwrap_or(DEFAULT_KEY_CACHE_TTL_MS),
        ),
        xks_health_check_interval: match file.xks_health_check_interval_secs.unwrap_or(300) {
            0 => None,
            secs => Some(std::time::Duration::from_secs(secs)),
        },
        custom_key_store_sweep_interval: std::time::Duration::from_secs(
            file.custom_key_store_sweep_interval_secs
                .unwrap_or(5)
                .max(1),
        ),
        node_id: file.node_id,
        cloudhsm,
        seed: args.seed.or(file.seed),
    })
}

/// `secs` as a duration, refusing 0 (which would close every connection at once).
fn positive_secs(key: &str, secs: u64) -> anyhow::Result<std::time::Duration> {
    if secs == 0 {
        anyhow::bail!("{key} must be at least 1 second");
    }
    Ok(std::time::Duration::from_secs(secs))
}

/// Parses an access key's identity policies, naming the key and the policy on error.
fn parse_identity_policies(
    key: &AccessKey,
) -> anyhow::Result<keyhold_core::context::IdentityPolicies> {
    let mut parsed = Vec::with_capacity(key.identity_policies.len());
    for (i, text) in key.identity_policies.iter().enumerate() {
        let p = keyhold_policy::Policy::parse(text, keyhold_policy::PolicyKind::Identity).map_err(
            |e| {
                anyhow::anyhow!(
                    "identity policy {} of access key {} is not valid: {e}",
                    i + 1,
                    key.access_key_id
                )
            },
        )?;
        parsed.push(p);
    }
    Ok(keyhold_core::context::IdentityPolicies(parsed.into()))
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
