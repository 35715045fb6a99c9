//! AWS CloudHSM v2 API subset backed by PKCS#11 tokens, and the CloudHSM port of Keyhold's
//! custom key stores.
//!
//! * The API (`X-Amz-Target: BaldrApiService.<Op>`, awsJson1.1): `CreateCluster`,
//!   `DescribeClusters`, `InitializeCluster`, `CreateHsm`, `DeleteHsm`, `DeleteCluster`,
//!   `TagResource`, `UntagResource`, `ListTags`, with AWS's request and response shapes
//!   generated from botocore's `cloudhsmv2` 2017-04-28 model (`keyhold-cloudhsm-model`,
//!   `cargo xtask codegen`; responses are mapped from the records in one place, `wire.rs`),
//!   inputs checked against the model's constraints, and `CloudHsm*Exception` errors
//!   ([`ClusterService::handle`]). The cluster CSR is a real PKCS#10 request and
//!   `InitializeCluster` verifies the signed certificate ([`pki`]).
//! * What AWS does through CloudHSM CLI is a Keyhold extension on the same target prefix (not
//!   in AWS's model, so its shapes are hand-written, in `admin.rs`):
//!   `KeyholdActivateCluster` (`cluster activate`), `KeyholdUserCreate`, `KeyholdUserDelete`,
//!   `KeyholdUserChangePassword`, `KeyholdUserLogin`, `KeyholdUserLogout` (`user ...`,
//!   `login`, `logout`), always available when CloudHSM is enabled (by default when the PKCS#11
//!   module exists: [`CloudHsmConfig::availability`]).
//! * Fault injection — what AWS controls and a laptop lacks — only with
//!   `[cloudhsm] fault_injection = true`: `KeyholdFaultSetSubnet` (remove/restore a subnet,
//!   set its free addresses), `KeyholdFaultSetHsmState` (`ACTIVE`/`DEGRADED`) and
//!   `KeyholdFaultSetClusterNetwork` (cut or restore the network path KMS → HSMs).
//! * `keyhold cloudhsm activate-cluster|user create|user delete|user change-password|login|logout`
//!   ([`cli`]) calls those operations on a running Keyhold.
//! * [`ClusterService`] implements [`keyhold_core::ports::cloudhsm::HsmClusters`]: Connect
//!   logs in as `kmsuser` on the cluster's token for real.
//!
//! # Clusters and tokens
//! A cluster is a PKCS#11 token labelled with the cluster id, created by
//! `KeyholdActivateCluster` with the admin password as its SO PIN (SoftHSMv2 by default, in a
//! token directory of Keyhold's data dir: `SOFTHSM2_CONF` is set to
//! `<data_dir>/cloudhsm/softhsm2.conf` before the module is first loaded, unless already set;
//! that configuration enables only [`CLUSTER_MECHANISMS`]).
//! HSMs are availability records over that token. `kmsuser` is the token's user: its
//! password is the user PIN. Keyhold counts failed logins and locks the user after five, as
//! CloudHSM does (SoftHSM never locks a PIN); an admin password change unlocks it.
//!
//! Records (clusters with their HSMs, users, lock-out counters, certificates, tags and backup
//! lineage; subnets) persist as documents of Keyhold's metadata store ([`records`]), so several
//! nodes sharing one PostgreSQL database see the same clusters and `/moto-api/reset` clears
//! them. The `<data_dir>/cloudhsm/clusters.json` of earlier releases is imported once
//! ([`ClusterService::import_legacy_clusters`], [`legacy`]). The SoftHSM token directory, however, is per node: a multi-node deployment must bind
//! its clusters to an HSM all nodes reach (a shared PKCS#11 module and token), or a cluster
//! activated on one node has no token on the others.
#![warn(missing_docs)]

mod admin;
mod api;
pub mod bound;
pub mod cli;
mod keys;
pub mod legacy;
pub mod pki;
mod port;
pub mod records;
pub mod service;
pub mod state;
mod tags;
mod wire;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use keyhold_cloudhsm_model::{Exception, Operation};
use serde::Deserialize;

use state::State;

/// Where Debian's `softhsm2` package installs the module.
pub const DEFAULT_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// The PKCS#11 mechanisms a cluster token offers when Keyhold writes SoftHSMv2's
/// configuration: what the CloudHSM key path uses (AES key generation, AES-GCM), nothing else.
///
/// Two reasons. The HSM then refuses every other mechanism, whatever a key's
/// `CKA_ALLOWED_MECHANISMS` says: KMS uses a CloudHSM key store's keys for nothing else. And
/// SoftHSMv2 copies its list of enabled mechanisms (a linked list: 70 allocations and frees
/// with `ALL`) on every `C_EncryptInit` and `C_DecryptInit`: that copy was about 29% of the
/// module's instructions for one 1 KiB Encrypt (callgrind), and with two entries it is
/// negligible.
pub const CLUSTER_MECHANISMS: &[&str] = &["CKM_AES_KEY_GEN", "CKM_AES_GCM"];

/// SoftHSMv2's configuration for cluster tokens kept in `tokens` (file object store, errors
/// only in the log, fixed slots, [`CLUSTER_MECHANISMS`]).
fn softhsm_conf(tokens: &Path) -> String {
    format!(
        "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\nslots.mechanisms = {}\n",
        tokens.display(),
        CLUSTER_MECHANISMS.join(",")
    )
}

/// The `[cloudhsm]` configuration table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudHsmConfig {
    /// Serve the CloudHSM API and make AWS_CLOUDHSM key stores real. Default: on when the
    /// PKCS#11 module (`module_path`, else SoftHSMv2 at [`DEFAULT_MODULE`]) exists
    /// ([`CloudHsmConfig::availability`]). When off, the CloudHSM API and CreateCustomKeyStore
    /// for `AWS_CLOUDHSM` answer an error saying why and what to install or configure.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// PKCS#11 module of new clusters' tokens (default SoftHSMv2's).
    #[serde(default)]
    pub module_path: Option<PathBuf>,
    /// Answer the `KeyholdFault*` operations (never in production).
    #[serde(default)]
    pub fault_injection: bool,
    /// Clusters bound to an existing PKCS#11 module and token (a real HSM), as
    /// `[[cloudhsm.bound_clusters]]` entries ([`bound`]).
    #[serde(default)]
    pub bound_clusters: Vec<bound::BoundCluster>,
}

/// Whether a node serves the CloudHSM API ([`CloudHsmConfig::availability`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// Served: [`ClusterService::open`].
    On,
    /// Not served, for the reason given (the message of every refusal):
    /// [`ClusterService::unavailable`].
    Off(String),
}

impl CloudHsmConfig {
    /// The PKCS#11 module of new clusters' tokens: `module_path`, else [`DEFAULT_MODULE`].
    pub fn module(&self) -> PathBuf {
        self.module_path
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_MODULE))
    }

    /// On when `enabled = true`, off when `enabled = false`; without `enabled`, on exactly when
    /// the module exists.
    pub fn availability(&self) -> Availability {
        match self.enabled {
            Some(true) => Availability::On,
            Some(false) => Availability::Off(
                "the CloudHSM API is disabled on this Keyhold ([cloudhsm] enabled = false); \
                 remove that line or set enabled = true to serve it"
                    .to_string(),
            ),
            None if self.module().exists() => Availability::On,
            None => Availability::Off(format!(
                "the CloudHSM API needs a PKCS#11 module and {} does not exist: install \
                 SoftHSMv2 (apt-get install softhsm2) or set [cloudhsm] module_path to the \
                 PKCS#11 module of your HSM",
                self.module().display()
            )),
        }
    }
}

/// A CloudHSM API error: one of the API's exceptions (generated from the model, plus the
/// protocol's common errors) and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{exception}: {message}")]
pub struct ApiError {
    /// e.g. `CloudHsmResourceNotFound`.
    pub exception: Exception,
    /// Human-readable.
    pub message: String,
}

impl ApiError {
    /// `exception` with `message`.
    pub fn new(exception: Exception, message: impl Into<String>) -> Self {
        Self {
            exception,
            message: message.into(),
        }
    }
    /// `CloudHsmInvalidRequestException`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Exception::CloudHsmInvalidRequest, message)
    }
    /// `CloudHsmResourceNotFoundException`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Exception::CloudHsmResourceNotFound, message)
    }
    /// `CloudHsmInternalFailureException`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Exception::CloudHsmInternalFailure, message)
    }
    /// `CloudHsmAccessDeniedException`.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(Exception::CloudHsmAccessDenied, message)
    }
    /// The exception's shape name, as sent in `__type`.
    pub fn name(&self) -> &'static str {
        self.exception.name()
    }
    /// Whether this is the server's fault (HTTP 500).
    pub fn is_server_error(&self) -> bool {
        self.exception.fault() == keyhold_cloudhsm_model::exceptions::Fault::Server
    }
}

/// The clusters of one Keyhold node. Cheap to clone.
#[derive(Clone)]
pub struct ClusterService {
    inner: Arc<Inner>,
}

struct Inner {
    config: CloudHsmConfig,
    /// Why this node does not serve CloudHSM, when it does not ([`Availability::Off`]).
    unavailable: Option<String>,
    /// Keyhold's root key: wraps each cluster's CSR key in its record ([`pki`]).
    root_key: Arc<keyhold_crypto::RootKey>,
    module_path: PathBuf,
    /// The records in the metadata store (the truth).
    records: records::Records,
    /// This node's cache of the records, for synchronous readers.
    state: Mutex<State>,
    /// Serialises logins: PKCS#11 login is per process, so two concurrent checks of one token
    /// would let the second pass without its PIN being checked.
    login_lock: Arc<Mutex<()>>,
    /// The open `kmsuser` session pools of connected key stores ([`keys`]).
    key_sessions: keys::KeySessions,
}

impl ClusterService {
    /// The clusters kept in `store`, cluster keys wrapped by `root_key`; points SoftHSM at a
    /// token directory under `<data_dir>/cloudhsm` unless `SOFTHSM2_CONF` is already set. Call
    /// before anything in the process loads the PKCS#11 module.
    pub fn open(
        config: CloudHsmConfig,
        data_dir: &Path,
        store: Arc<dyn keyhold_core::ports::MetadataStore>,
        root_key: Arc<keyhold_crypto::RootKey>,
    ) -> std::io::Result<ClusterService> {
        let dir = data_dir.join("cloudhsm");
        std::fs::create_dir_all(&dir)?;
        if std::env::var_os("SOFTHSM2_CONF").is_none() {
            let tokens = dir.join("softhsm-tokens");
            std::fs::create_dir_all(&tokens)?;
            let conf = dir.join("softhsm2.conf");
            std::fs::write(&conf, softhsm_conf(&tokens))?;
            std::env::set_var("SOFTHSM2_CONF", &conf);
        }
        Ok(Self::build(config, store, root_key, None))
    }

    /// A node that does not serve CloudHSM, for `reason` ([`Availability::Off`]): every
    /// CloudHSM API request is answered `CloudHsmServiceException` with the reason, and as the
    /// KMS port every cluster lookup fails with [`CloudHsmFailure::Unavailable`] (so
    /// CreateCustomKeyStore for `AWS_CLOUDHSM` is refused with it). Touches no file and
    /// loads no module.
    ///
    /// [`CloudHsmFailure::Unavailable`]: keyhold_core::ports::cloudhsm::CloudHsmFailure::Unavailable
    pub fn unavailable(
        config: CloudHsmConfig,
        store: Arc<dyn keyhold_core::ports::MetadataStore>,
        root_key: Arc<keyhold_crypto::RootKey>,
        reason: String,
    ) -> ClusterService {
        Self::build(config, store, root_key, Some(reason))
    }

    fn build(
        config: CloudHsmConfig,
        store: Arc<dyn keyhold_core::ports::MetadataStore>,
        root_key: Arc<keyhold_crypto::RootKey>,
        unavailable: Option<String>,
    ) -> ClusterService {
        ClusterService {
            inner: Arc::new(Inner {
                module_path: config.module(),
                config,
                unavailable,
                root_key,
                records: records::Records::new(store),
                state: Mutex::new(State::default()),
                login_lock: Arc::new(Mutex::new(())),
                key_sessions: keys::KeySessions::default(),
            }),
        }
    }

    /// Why this node does not serve CloudHSM, if it does not.
    pub fn unavailable_reason(&self) -> Option<&str> {
        self.inner.unavailable.as_deref()
    }

    /// Answers one `BaldrApiService.<op>` request of `account` in `region`; the JSON body of
    /// the response. Operations of AWS's model go through the generated dispatch
    /// (`CloudHsmService`, implemented in `service.rs`); Keyhold's extensions through
    /// [`service::KeyholdOperation`]; any other name is `UnknownOperationException`.
    pub async fn handle(
        &self,
        op: &str,
        account: &str,
        region: &str,
        body: &[u8],
    ) -> Result<serde_json::Value, ApiError> {
        if let Some(reason) = &self.inner.unavailable {
            return Err(ApiError::new(
                Exception::CloudHsmService,
                capitalized(reason),
            ));
        }
        let caller = service::Caller {
            account: account.to_owned(),
            region: region.to_owned(),
        };
        if let Some(model_op) = Operation::from_name(op) {
            return keyhold_cloudhsm_model::service::dispatch(
                self,
                &caller,
                model_op,
                body,
                &service::JsonValue,
            )
            .await
            .map_err(service::dispatch_error);
        }
        match service::KeyholdOperation::from_name(op) {
            Some(k) => self.handle_keyhold(k, &caller, body).await,
            None => Err(ApiError::new(Exception::UnknownOperation, "")),
        }
    }

    /// The port's failure when this node does not serve CloudHSM.
    fn check_available(&self) -> Result<(), keyhold_core::ports::cloudhsm::CloudHsmFailure> {
        match &self.inner.unavailable {
            None => Ok(()),
            Some(reason) => Err(
                keyhold_core::ports::cloudhsm::CloudHsmFailure::Unavailable {
                    detail: reason.clone(),
                },
            ),
        }
    }

    /// This node's cache of the records, locked (a poisoned lock is recovered: entries are
    /// replaced whole).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `s` with its first letter upper-cased and a final full stop (a reason as a message).
fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    let mut out: String = c
        .next()
        .map(|f| f.to_uppercase().collect())
        .unwrap_or_default();
    out.push_str(c.as_str());
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}
