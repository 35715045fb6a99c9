//! `keyhold xks-proxy ...`: serve, manage software-store keys, print KMS settings, generate
//! credentials, benchmark.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use clap::{Args, Subcommand};
use rand::Rng;

use crate::backend::pkcs11::Pkcs11Backend;
use crate::backend::software::SoftwareBackend;
use crate::backend::KeyUsage;
use crate::bench::{run_bench, BenchOptions};
use crate::client::ClientOptions;
use crate::config::{BackendConfig, Config, StoreConfig};
use crate::server::ProxyServer;

/// `keyhold xks-proxy` subcommands.
#[derive(Debug, Subcommand)]
pub enum XksProxyCommand {
    /// Run the proxy.
    Serve {
        /// Configuration file (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// Manage keys of a store backed by the built-in software key store.
    Keys {
        /// What to do.
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Print the XksProxyUriPath and credential a KMS administrator needs for a store.
    PrintKmsSettings {
        /// Configuration file (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Store prefix ("" for the store without one).
        #[arg(long)]
        store: String,
        /// Which credential (default: the first).
        #[arg(long)]
        access_key_id: Option<String>,
    },
    /// Print a new random credential in KMS's format, for the configuration file.
    GenerateCredential,
    /// Signed Encrypt requests at a fixed concurrency against any XKS proxy.
    Bench(BenchArgs),
}

/// `keys` actions.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create a new AES-256 key (on the store's PKCS#11 token or in its software key file).
    Create(CreateKeyArgs),
    /// Create the key a PKCS#11 backend's `health_check_key_label` names, if missing.
    CreateHealthCheckKey(StoreArgs),
    /// List keys.
    List(StoreArgs),
    /// Disable a key (metadata DISABLED, crypto InvalidStateException).
    Disable(KeyArgs),
    /// Enable a key.
    Enable(KeyArgs),
}

/// Selects a store.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Configuration file (TOML).
    #[arg(long)]
    pub config: PathBuf,
    /// Store prefix ("" for the store without one).
    #[arg(long)]
    pub store: String,
}

/// Selects a key of a store.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// External key id.
    #[arg(long)]
    pub key_id: String,
}

/// `keys create` options.
#[derive(Debug, Args)]
pub struct CreateKeyArgs {
    /// The store and key id.
    #[command(flatten)]
    pub key: KeyArgs,
    /// What the key may be used for: `encrypt,decrypt`, `encrypt`, `decrypt` or `none`
    /// (reported in GetKeyMetadata's keyUsage and enforced; KMS only accepts keys with both).
    #[arg(long, default_value = "encrypt,decrypt")]
    pub usage: KeyUsage,
}

/// `bench` options.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// `https://host[:port][/prefix]/kms/xks/v1`.
    #[arg(long)]
    pub url: String,
    /// SigV4 access key id.
    #[arg(long)]
    pub access_key_id: String,
    /// SigV4 secret.
    #[arg(long, env = "XKS_SECRET")]
    pub secret: String,
    /// External key id.
    #[arg(long)]
    pub key_id: String,
    /// Concurrent connections.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// SigV4 region.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Extra CA certificate (PEM) to trust instead of the system roots.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Dial this ip:port instead of resolving the URL's host.
    #[arg(long)]
    pub connect_to: Option<SocketAddr>,
    /// Client certificate (PEM), for proxies that require mTLS.
    #[arg(long, requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long)]
    pub client_key: Option<PathBuf>,
    /// Ask for `ciphertextDataIntegrityValueAlgorithm` SHA_256, as KMS always does: the proxy
    /// then also decrypts each ciphertext to prove it (the cost KMS traffic pays).
    #[arg(long)]
    pub cdiv: bool,
    /// Use HTTP/2 instead of HTTP/1.1.
    #[arg(long)]
    pub http2: bool,
    /// Plaintext size in bytes.
    #[arg(long, default_value_t = 64)]
    pub plaintext_bytes: usize,
}

/// A CLI failure, printed by the caller.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

fn err(e: impl std::fmt::Display) -> CliError {
    CliError(e.to_string())
}

fn store<'a>(config: &'a Config, prefix: &str) -> Result<&'a StoreConfig, CliError> {
    config
        .store(prefix)
        .ok_or_else(|| CliError(format!("no store with prefix {prefix:?}")))
}

/// Opens the software backend behind a store.
pub fn software_store(config_path: &Path, prefix: &str) -> Result<SoftwareBackend, CliError> {
    let config = Config::load(config_path).map_err(err)?;
    let s = store(&config, prefix)?;
    match config.backends.get(&s.backend) {
        Some(BackendConfig::Software(c)) => SoftwareBackend::open(&s.backend, c).map_err(err),
        Some(BackendConfig::Pkcs11(_)) => Err(CliError(format!(
            "store {prefix:?} is on a PKCS#11 token: only `keys create` and \
             `keys create-health-check-key` apply; disable keys with disabled_keys in the \
             store's configuration"
        ))),
        None => Err(CliError(format!("store {prefix:?} has no backend"))),
    }
}

/// The settings a KMS administrator enters for `store`, as the console's JSON file.
pub fn kms_settings(
    config: &Config,
    prefix: &str,
    access_key_id: Option<&str>,
) -> Result<String, CliError> {
    let s = store(config, prefix)?;
    let cred = match access_key_id {
        Some(id) => s.credentials.iter().find(|c| c.access_key_id == id),
        None => s.credentials.first(),
    }
    .ok_or_else(|| CliError("no such credential in this store".to_string()))?;
    let secret = cred.resolve_secret().map_err(err)?;
    let json = serde_json::json!({
        "XksProxyUriPath": s.uri_path(),
        "XksProxyAuthenticationCredential": {
            "AccessKeyId": cred.access_key_id,
            "RawSecretAccessKey": secret,
        }
    });
    serde_json::to_string_pretty(&json).map_err(err)
}

/// A new random credential: 20 characters of `A-Z2-7` and the Base64 of 32 random bytes.
pub fn generate_credential() -> (String, String) {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rngs::OsRng;
    let id: String = (0..20)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    let secret = STANDARD.encode(keyhold_crypto::random_bytes(32).expose());
    (id, secret)
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(err)
}

/// Runs a subcommand.
pub fn run(command: XksProxyCommand) -> Result<(), CliError> {
    match command {
        XksProxyCommand::Serve { config } => {
            let parsed = Config::load(&config).map_err(err)?;
            runtime()?.block_on(async move {
                let server = ProxyServer::start(parsed, Some(config))
                    .await
                    .map_err(err)?;
                println!(
                    "Keyhold XKS proxy listening on https://{}",
                    server.local_addr
                );
                let _ = tokio::signal::ctrl_c().await;
                server.shutdown();
                Ok(())
            })
        }
        XksProxyCommand::Keys { action } => match action {
            KeysAction::Create(CreateKeyArgs { key: k, usage }) => {
                let config = Config::load(&k.store.config).map_err(err)?;
                let s = store(&config, &k.store.store)?;
                match config.backends.get(&s.backend) {
                    Some(BackendConfig::Pkcs11(c)) => Pkcs11Backend::new(&s.backend, c)
                        .and_then(|b| b.create_key_with_usage(&k.key_id, usage))
                        .map_err(err)?,
                    _ => software_store(&k.store.config, &k.store.store)?
                        .create_key_with_usage(&k.key_id, usage)
                        .map_err(err)?,
                }
                println!("created key {} (usage {usage})", k.key_id);
                if let Some(allowed) = &store(&config, &k.store.store)?.allowed_keys {
                    if !allowed.contains(&k.key_id) {
                        println!(
                            "note: add it to allowed_keys of store {:?} to use it",
                            k.store.store
                        );
                    }
                }
                Ok(())
            }
            KeysAction::CreateHealthCheckKey(s) => {
                let config = Config::load(&s.config).map_err(err)?;
                let sc = store(&config, &s.store)?;
                let Some(BackendConfig::Pkcs11(c)) = config.backends.get(&sc.backend) else {
                    return Err(CliError(format!(
                        "store {:?} is not on a PKCS#11 token",
                        s.store
                    )));
                };
                let Some(label) = c.health_check_key_label.clone() else {
                    return Err(CliError(format!(
                        "backend {} has no health_check_key_label",
                        sc.backend
                    )));
                };
                let created = Pkcs11Backend::new(&sc.backend, c)
                    .and_then(|b| b.create_health_check_key())
                    .map_err(err)?;
                if created {
                    println!("created health-check key {label}");
                } else {
                    println!("health-check key {label} already exists");
                }
                Ok(())
            }
            KeysAction::List(s) => {
                for key in software_store(&s.config, &s.store)?.list().map_err(err)? {
                    let status = if key.enabled { "ENABLED" } else { "DISABLED" };
                    println!("{}\t{status}\t{}\t{}", key.id, key.usage, key.created_at);
                }
                Ok(())
            }
            KeysAction::Disable(k) => {
                software_store(&k.store.config, &k.store.store)?
                    .set_enabled(&k.key_id, false)
                    .map_err(err)?;
                println!("disabled key {}", k.key_id);
                Ok(())
            }
            KeysAction::Enable(k) => {
                software_store(&k.store.config, &k.store.store)?
                    .set_enabled(&k.key_id, true)
                    .map_err(err)?;
                println!("enabled key {}", k.key_id);
                Ok(())
            }
        },
        XksProxyCommand::PrintKmsSettings {
            config,
            store,
            access_key_id,
        } => {
            let parsed = Config::load(&config).map_err(err)?;
            println!(
                "{}",
                kms_settings(&parsed, &store, access_key_id.as_deref())?
            );
            Ok(())
        }
        XksProxyCommand::GenerateCredential => {
            let (id, secret) = generate_credential();
            println!("[[stores.credentials]]\naccess_key_id = \"{id}\"\nsecret = \"{secret}\"");
            Ok(())
        }
        XksProxyCommand::Bench(a) => {
            let opts = BenchOptions {
                client: ClientOptions {
                    url: a.url,
                    connect_to: a.connect_to,
                    ca_file: a.ca_file,
                    client_cert: a.client_cert.zip(a.client_key),
                    access_key_id: a.access_key_id,
                    secret: a.secret,
                    region: a.region,
                    http2: a.http2,
                },
                key_id: a.key_id,
                concurrency: a.concurrency,
                duration: Duration::from_secs(a.duration),
                plaintext_bytes: a.plaintext_bytes,
                cdiv: a.cdiv,
            };
            let report = runtime()?.block_on(run_bench(opts)).map_err(err)?;
            println!("{report}");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_option_parses() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Cli {
            #[command(subcommand)]
            command: XksProxyCommand,
        }
        let parse = |extra: &[&str]| {
            let mut argv = vec![
                "x", "keys", "create", "--config", "c", "--store", "", "--key-id", "k",
            ];
            argv.extend_from_slice(extra);
            match Cli::try_parse_from(argv).map(|c| c.command) {
                Ok(XksProxyCommand::Keys {
                    action: KeysAction::Create(a),
                }) => Ok(a.usage),
                Ok(other) => panic!("{other:?}"),
                Err(e) => Err(e.to_string()),
            }
        };
        let both = KeyUsage::ENCRYPT_DECRYPT;
        assert_eq!(parse(&[]), Ok(both));
        assert_eq!(parse(&["--usage", "decrypt,ENCRYPT"]), Ok(both));
        assert_eq!(
            parse(&["--usage", "encrypt"]),
            Ok(KeyUsage {
                encrypt: true,
                decrypt: false
            })
        );
        assert_eq!(
            parse(&["--usage", "none"]).map(|u| u.to_string()),
            Ok("none".to_string())
        );
        assert!(parse(&["--usage", "sign"]).is_err());
    }

    #[test]
    fn generated_credentials_meet_kms_rules() {
        let (id, secret) = generate_credential();
        assert!(crate::config::valid_access_key_id(&id), "{id}");
        assert!(crate::config::valid_secret(&secret));
        assert_ne!(generate_credential().0, id);
    }
}
