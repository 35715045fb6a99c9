//! The port to AWS CloudHSM-style clusters (backed by PKCS#11 tokens in `keyhold-cloudhsm`).
//!
//! The control plane asks two things of a cluster: its facts (for CreateCustomKeyStore's
//! checks) and a real connection attempt as `kmsuser` (for ConnectCustomKeyStore). Every
//! failure is a typed [`CloudHsmFailure`]; [`CloudHsmFailure::connection_error_code`] is the
//! one table from causes to `ConnectionErrorCode`s.
//!
//! The key side: while a store is `CONNECTED` the cluster keeps a `kmsuser` session pool
//! ([`HsmClusters::open_key_sessions`] / [`HsmClusters::close_key_sessions`]), through which
//! backing keys are created and AES-GCM runs inside the HSM. Key-operation failures are typed
//! [`HsmKeyFailure`]s.

use async_trait::async_trait;
use keyhold_crypto::SecretBytes;
use keyhold_kms_model::enums::ConnectionErrorCodeType;

/// What CreateCustomKeyStore needs to know about a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterFacts {
    /// The cluster id.
    pub cluster_id: String,
    /// The CloudHSM cluster state (`ACTIVE`, `INITIALIZED`, ...).
    pub state: String,
    /// The trust anchor given to `InitializeCluster`, if initialised.
    pub trust_anchor: Option<String>,
    /// The availability zone of every `ACTIVE` HSM (one entry per HSM).
    pub active_hsm_zones: Vec<String>,
    /// The backup lineage: clusters restored from one another's backups share it (AWS's
    /// "related" clusters).
    pub lineage: String,
}

/// Why a connection to a cluster failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudHsmFailure {
    /// No cluster with this id in the account and Region (or it was deleted).
    #[error("cluster not found")]
    ClusterNotFound,
    /// This Keyhold does not serve CloudHSM clusters at all (disabled, or no PKCS#11 module);
    /// `detail` says why and what to install or configure.
    #[error("CloudHSM is not available: {detail}")]
    Unavailable {
        /// Why, and the fix.
        detail: String,
    },
    /// The cluster has no `ACTIVE` HSM.
    #[error("the cluster has no active HSM")]
    NoActiveHsm,
    /// A subnet of the cluster's subnet mapping no longer exists.
    #[error("subnet {subnet} not found")]
    SubnetNotFound {
        /// The subnet id.
        subnet: String,
    },
    /// A subnet of the cluster's subnet mapping has no free IP address.
    #[error("subnet {subnet} has no free address")]
    NoFreeAddress {
        /// The subnet id.
        subnet: String,
    },
    /// The password is wrong (`CKR_PIN_INCORRECT`).
    #[error("incorrect kmsuser password ({ckr})")]
    InvalidCredentials {
        /// The PKCS#11 call and return value (or Keyhold's own check) behind it.
        ckr: HsmCause,
    },
    /// Too many failed logins (`CKR_PIN_LOCKED`, or Keyhold's count).
    #[error("kmsuser is locked out ({ckr})")]
    UserLockedOut {
        /// The PKCS#11 call and return value (or Keyhold's own check) behind it.
        ckr: HsmCause,
    },
    /// No `kmsuser` (`CKR_USER_PIN_NOT_INITIALIZED`, or Keyhold's user record).
    #[error("kmsuser not found ({ckr})")]
    UserNotFound {
        /// The PKCS#11 call and return value (or Keyhold's own check) behind it.
        ckr: HsmCause,
    },
    /// `kmsuser` is logged in to the cluster elsewhere.
    #[error("kmsuser is logged in elsewhere")]
    UserLoggedIn,
    /// The device failed (token removed, device error, ...).
    #[error("HSM device failure: {detail}")]
    Device {
        /// What failed.
        detail: String,
    },
    /// The HSM refused another session (`CKR_SESSION_COUNT`: its session limit is reached,
    /// by this node or other applications). Retryable: back off and try again.
    #[error("no PKCS #11 session available: {detail}")]
    SessionsExhausted {
        /// What failed.
        detail: String,
    },
    /// Anything else.
    #[error("internal error: {detail}")]
    Internal {
        /// What failed.
        detail: String,
    },
}

/// What decided a credential failure: the token's answer to a PKCS#11 call made as a user, or
/// Keyhold's own user record. Kept typed so connection diagnostics can say exactly
/// "C_Login as kmsuser: CKR_PIN_INCORRECT".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HsmCause {
    /// The token answered `function` (e.g. `C_Login`), called as `user`, with `return_value`
    /// (e.g. `CKR_PIN_INCORRECT`).
    Token {
        /// The PKCS#11 function.
        function: String,
        /// The crypto user the call was made as.
        user: String,
        /// The `CKR_*` name (or number).
        return_value: String,
    },
    /// Keyhold's own record decided (a deleted user, too many failed logins, a password
    /// that is not UTF-8), before any call to the token.
    Keyhold {
        /// What the record says.
        reason: String,
    },
}

impl std::fmt::Display for HsmCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HsmCause::Token {
                function,
                user,
                return_value,
            } => write!(f, "{function} as {user}: {return_value}"),
            HsmCause::Keyhold { reason } => write!(f, "Keyhold: {reason}"),
        }
    }
}

impl From<&str> for HsmCause {
    /// A cause decided by Keyhold's own records.
    fn from(reason: &str) -> Self {
        HsmCause::Keyhold {
            reason: reason.to_string(),
        }
    }
}

impl From<String> for HsmCause {
    /// A cause decided by Keyhold's own records.
    fn from(reason: String) -> Self {
        HsmCause::Keyhold { reason }
    }
}

impl CloudHsmFailure {
    /// The `ConnectionErrorCode` a store that failed for this reason reports — the one table.
    pub fn connection_error_code(&self) -> ConnectionErrorCodeType {
        use ConnectionErrorCodeType as C;
        match self {
            CloudHsmFailure::ClusterNotFound | CloudHsmFailure::Unavailable { .. } => {
                C::ClusterNotFound
            }
            CloudHsmFailure::NoActiveHsm => C::InsufficientCloudhsmHsms,
            CloudHsmFailure::SubnetNotFound { .. } => C::SubnetNotFound,
            CloudHsmFailure::NoFreeAddress { .. } => C::InsufficientFreeAddressesInSubnet,
            CloudHsmFailure::InvalidCredentials { .. } => C::InvalidCredentials,
            CloudHsmFailure::UserLockedOut { .. } => C::UserLockedOut,
            CloudHsmFailure::UserNotFound { .. } => C::UserNotFound,
            CloudHsmFailure::UserLoggedIn => C::UserLoggedIn,
            CloudHsmFailure::Device { .. } => C::NetworkErrors,
            // AWS has no code of its own for an HSM out of sessions; INTERNAL_ERROR says
            // "retry", which is the fix.
            CloudHsmFailure::SessionsExhausted { .. } | CloudHsmFailure::Internal { .. } => {
                C::InternalError
            }
        }
    }
}

impl CloudHsmFailure {
    /// The observed cause as one sentence for connection diagnostics about `cluster_id`:
    /// "C_Login as kmsuser: CKR_PIN_INCORRECT", "subnet subnet-0ab has no free address".
    pub fn cause_sentence(&self, cluster_id: &str) -> String {
        match self {
            CloudHsmFailure::ClusterNotFound => {
                format!("cluster {cluster_id} not found in this account and Region")
            }
            CloudHsmFailure::Unavailable { detail } => {
                format!("CloudHSM is not available on this node: {detail}")
            }
            CloudHsmFailure::NoActiveHsm => format!("cluster {cluster_id} has no ACTIVE HSM"),
            CloudHsmFailure::SubnetNotFound { subnet } => {
                format!("subnet {subnet} of cluster {cluster_id} no longer exists")
            }
            CloudHsmFailure::NoFreeAddress { subnet } => {
                format!("subnet {subnet} of cluster {cluster_id} has no free address")
            }
            CloudHsmFailure::InvalidCredentials { ckr }
            | CloudHsmFailure::UserLockedOut { ckr }
            | CloudHsmFailure::UserNotFound { ckr } => ckr.to_string(),
            CloudHsmFailure::UserLoggedIn => {
                format!("kmsuser is logged in to cluster {cluster_id} elsewhere")
            }
            CloudHsmFailure::Device { detail } => format!("HSM device failure: {detail}"),
            CloudHsmFailure::SessionsExhausted { detail } => {
                format!("the HSM refused another session: {detail}")
            }
            CloudHsmFailure::Internal { detail } => format!("internal error: {detail}"),
        }
    }
}

/// Why a key operation in a cluster failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HsmKeyFailure {
    /// No `kmsuser` session pool is open for the cluster (store not connected on this node,
    /// or the cluster is gone).
    #[error("no kmsuser session to the cluster: {detail}")]
    NotConnected {
        /// Why.
        detail: String,
    },
    /// The backing key (labelled with the KMS key ARN) is not in the cluster.
    #[error("the backing key is not in the cluster")]
    KeyNotFound,
    /// The ciphertext, IV, AAD or tag does not authenticate.
    #[error("the ciphertext does not authenticate")]
    InvalidCiphertext,
    /// The HSM failed or is unreachable (token removed, device error).
    #[error("HSM unavailable: {detail}")]
    Unavailable {
        /// The PKCS#11 cause.
        detail: String,
    },
    /// Every session of the pool stayed busy (session exhaustion).
    #[error("all kmsuser sessions are busy")]
    Busy,
    /// Anything else.
    #[error("internal error: {detail}")]
    Internal {
        /// What failed.
        detail: String,
    },
}

/// The cluster a key operation runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsmTarget {
    /// Account of the custom key store.
    pub account: String,
    /// Region of the custom key store.
    pub region: String,
    /// The cluster id.
    pub cluster_id: String,
}

/// AES-256-GCM output of the HSM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsmGcmOutput {
    /// The 96-bit IV the HSM drew.
    pub iv: Vec<u8>,
    /// Ciphertext followed by the 128-bit tag.
    pub sealed: Vec<u8>,
}

/// Clusters of HSMs, per account and Region.
#[async_trait]
pub trait HsmClusters: Send + Sync {
    /// The facts of a cluster, or `None` when the account and Region never had such a
    /// cluster (a deleted one is reported with state `DELETED`).
    async fn cluster_facts(
        &self,
        account: &str,
        region: &str,
        cluster_id: &str,
    ) -> Result<Option<ClusterFacts>, CloudHsmFailure>;

    /// Connects as `kmsuser` with `password`: checks the cluster, its HSMs and subnets, and
    /// logs in for real.
    async fn connect(
        &self,
        account: &str,
        region: &str,
        cluster_id: &str,
        password: &SecretBytes,
    ) -> Result<(), CloudHsmFailure>;

    /// Changes the `kmsuser` password from `old` to `new` as `kmsuser` itself (`C_SetPIN`),
    /// as KMS does after every successful connection.
    async fn change_password(
        &self,
        account: &str,
        region: &str,
        cluster_id: &str,
        old: &SecretBytes,
        new: &SecretBytes,
    ) -> Result<(), CloudHsmFailure>;

    /// Opens the `kmsuser` session pool of the cluster, logged in with `password` (an open
    /// one is kept). Called when a store becomes `CONNECTED`, and again on demand.
    async fn open_key_sessions(
        &self,
        target: &HsmTarget,
        password: &SecretBytes,
    ) -> Result<(), CloudHsmFailure>;

    /// Logs out and closes the cluster's `kmsuser` session pool (at Disconnect).
    async fn close_key_sessions(&self, target: &HsmTarget);

    /// Creates a persistent, non-extractable AES-256 key labelled `label` in the cluster.
    async fn create_key(&self, target: &HsmTarget, label: &str) -> Result<(), HsmKeyFailure>;

    /// AES-256-GCM encryption inside the HSM under the key labelled `label`.
    async fn encrypt(
        &self,
        target: &HsmTarget,
        label: &str,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<HsmGcmOutput, HsmKeyFailure>;

    /// AES-256-GCM decryption inside the HSM; `sealed` is ciphertext followed by the tag.
    async fn decrypt(
        &self,
        target: &HsmTarget,
        label: &str,
        iv: &[u8],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<SecretBytes, HsmKeyFailure>;

    /// `n` random bytes from the HSM's RNG.
    async fn generate_random(&self, target: &HsmTarget, n: usize)
        -> Result<Vec<u8>, HsmKeyFailure>;

    /// Destroys the key labelled `label` in the cluster (irreversible).
    async fn destroy_key(&self, target: &HsmTarget, label: &str) -> Result<(), HsmKeyFailure>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_has_its_code() {
        let cases = [
            (CloudHsmFailure::ClusterNotFound, "CLUSTER_NOT_FOUND"),
            (
                CloudHsmFailure::Unavailable { detail: "x".into() },
                "CLUSTER_NOT_FOUND",
            ),
            (CloudHsmFailure::NoActiveHsm, "INSUFFICIENT_CLOUDHSM_HSMS"),
            (
                CloudHsmFailure::SubnetNotFound { subnet: "s".into() },
                "SUBNET_NOT_FOUND",
            ),
            (
                CloudHsmFailure::NoFreeAddress { subnet: "s".into() },
                "INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET",
            ),
            (
                CloudHsmFailure::InvalidCredentials { ckr: "x".into() },
                "INVALID_CREDENTIALS",
            ),
            (
                CloudHsmFailure::UserLockedOut { ckr: "x".into() },
                "USER_LOCKED_OUT",
            ),
            (
                CloudHsmFailure::UserNotFound { ckr: "x".into() },
                "USER_NOT_FOUND",
            ),
            (CloudHsmFailure::UserLoggedIn, "USER_LOGGED_IN"),
            (
                CloudHsmFailure::Device { detail: "x".into() },
                "NETWORK_ERRORS",
            ),
            (
                CloudHsmFailure::Internal { detail: "x".into() },
                "INTERNAL_ERROR",
            ),
        ];
        for (f, code) in cases {
            assert_eq!(f.connection_error_code().as_str(), code, "{f}");
        }
    }
}
