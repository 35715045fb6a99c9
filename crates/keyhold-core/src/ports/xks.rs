//! The port to external key store (XKS) proxies.
//!
//! The domain asks an [`XksConnector`] to reach a proxy; the backend (`keyhold-xks`) speaks
//! HTTPS + SigV4 and classifies every failure from its real cause (an HTTP status and
//! `errorName`, a TLS error, a timeout, a refused connection) into one [`XksFailure`]. The
//! domain then maps a failure to a `ConnectionErrorCode` or to the exception of the operation at
//! hand with the tables in [`XksFailure`]'s methods: one place, no string matching.

use async_trait::async_trait;
use keyhold_crypto::SecretBytes;

/// How KMS reaches the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XksConnectivity {
    /// `PUBLIC_ENDPOINT`: dial the endpoint's host on port 443 (or the address Keyhold's
    /// configuration maps it to).
    PublicEndpoint,
    /// `VPC_ENDPOINT_SERVICE`: dial through a VPC endpoint service declared in Keyhold's
    /// configuration under this name.
    VpcEndpointService {
        /// `com.amazonaws.vpce.<region>.vpce-svc-...`
        service_name: String,
        /// The account owning the service, when given.
        owner: Option<String>,
    },
}

/// Everything needed to call one proxy.
#[derive(Debug, Clone)]
pub struct XksTarget {
    /// `https://host` (no port, no path).
    pub uri_endpoint: String,
    /// `[/prefix]/kms/xks/v1`.
    pub uri_path: String,
    /// How to reach it.
    pub connectivity: XksConnectivity,
    /// SigV4 access key id.
    pub access_key_id: String,
    /// SigV4 secret access key.
    pub secret_access_key: SecretBytes,
    /// The KMS Region (signed into the credential scope).
    pub region: String,
}

/// The `kmsOperation` a health check is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthCheckReason {
    /// `CreateCustomKeyStore`.
    Create,
    /// `ConnectCustomKeyStore`.
    Connect,
    /// `UpdateCustomKeyStore`.
    Update,
    /// `KmsHealthCheck` (periodic).
    Periodic,
}

/// Metadata KMS sends with every proxy request.
#[derive(Debug, Clone)]
pub struct XksRequestMetadata {
    /// The caller's principal ARN.
    pub aws_principal_arn: String,
    /// The KMS request id.
    pub kms_request_id: String,
    /// The custom key store id.
    pub custom_key_store_id: Option<String>,
}

/// Health of one external key manager instance as the proxy reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EkmFleetMember {
    /// `id`.
    pub id: String,
    /// `model`.
    pub model: String,
    /// `healthStatus`: ACTIVE, DEGRADED or UNAVAILABLE.
    pub health_status: String,
}

/// A proxy's answer to `GetHealthStatus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XksHealth {
    /// `xksProxyFleetSize`.
    pub xks_proxy_fleet_size: u32,
    /// `xksProxyVendor`.
    pub xks_proxy_vendor: String,
    /// `xksProxyModel`.
    pub xks_proxy_model: String,
    /// `ekmVendor`.
    pub ekm_vendor: String,
    /// `ekmFleetDetails`.
    pub ekm_fleet_details: Vec<EkmFleetMember>,
}

/// Why a call to a proxy failed, classified from its real cause. `detail` strings are for
/// logs (never secrets), not for the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XksFailure {
    /// 401 `AuthenticationFailedException`.
    #[error("proxy rejected the SigV4 credential")]
    AuthenticationFailed,
    /// 403 `AccessDeniedException`.
    #[error("proxy denied access")]
    AccessDenied,
    /// 404 `InvalidUriPathException`.
    #[error("proxy rejected the URI path")]
    InvalidUriPath,
    /// 404 `KeyNotFoundException`.
    #[error("external key not found")]
    KeyNotFound,
    /// 400 `InvalidStateException`.
    #[error("external key is not enabled")]
    KeyInvalidState,
    /// 400 `InvalidKeyUsageException` or 501 `UnsupportedOperationException`.
    #[error("external key does not support the operation")]
    KeyInvalidUsage,
    /// 400 `InvalidCiphertextException`.
    #[error("proxy rejected the ciphertext")]
    InvalidCiphertext,
    /// 429 `ThrottlingException`.
    #[error("proxy throttled the request")]
    Throttled,
    /// 503 `DependencyTimeoutException`.
    #[error("proxy's key manager timed out")]
    DependencyTimeout,
    /// 500 `InternalException`.
    #[error("proxy cannot reach its key manager")]
    ProxyInternal,
    /// The answer could not be interpreted (not JSON, wrong shape, an unexpected status or
    /// errorName such as 400 ValidationException).
    #[error("invalid proxy response: {detail}")]
    InvalidResponse {
        /// What was wrong.
        detail: String,
    },
    /// TLS failed: expired or untrusted certificate, wrong hostname, protocol below TLS 1.2.
    #[error("TLS failure: {detail}")]
    Tls {
        /// The TLS error.
        detail: String,
    },
    /// Connection refused, DNS failure, or reset before an answer.
    #[error("proxy not reachable: {detail}")]
    NotReachable {
        /// The I/O error.
        detail: String,
    },
    /// The proxy said every external key manager instance is UNAVAILABLE.
    #[error("every external key manager instance is unavailable")]
    AllEkmsUnavailable,
    /// No answer within the per-call budget (250 ms).
    #[error("proxy did not answer within {budget_ms} ms")]
    TimedOut {
        /// The budget.
        budget_ms: u64,
    },
    /// The VPC endpoint service is not declared in Keyhold's configuration.
    #[error("VPC endpoint service not found")]
    VpcEndpointServiceNotFound,
    /// The VPC endpoint service is declared but does not meet KMS's requirements.
    #[error("VPC endpoint service invalid: {detail}")]
    VpcEndpointServiceInvalid {
        /// Which requirement fails.
        detail: String,
    },
    /// Anything else on the network path.
    #[error("network error: {detail}")]
    Network {
        /// The error.
        detail: String,
    },
    /// A failure inside Keyhold (e.g. a request that could not be built).
    #[error("internal error: {detail}")]
    Internal {
        /// The error.
        detail: String,
    },
}

impl XksFailure {
    /// The `ConnectionErrorCode` a failed Connect records for this failure.
    pub fn connection_error_code(&self) -> &'static str {
        match self {
            XksFailure::AuthenticationFailed => "INVALID_CREDENTIALS",
            XksFailure::AccessDenied => "XKS_PROXY_ACCESS_DENIED",
            XksFailure::InvalidUriPath => "XKS_PROXY_INVALID_CONFIGURATION",
            XksFailure::InvalidResponse { .. }
            | XksFailure::ProxyInternal
            | XksFailure::KeyNotFound
            | XksFailure::KeyInvalidState
            | XksFailure::KeyInvalidUsage
            | XksFailure::InvalidCiphertext => "XKS_PROXY_INVALID_RESPONSE",
            XksFailure::Tls { .. } => "XKS_PROXY_INVALID_TLS_CONFIGURATION",
            XksFailure::NotReachable { .. } | XksFailure::AllEkmsUnavailable => {
                "XKS_PROXY_NOT_REACHABLE"
            }
            XksFailure::TimedOut { .. } | XksFailure::DependencyTimeout | XksFailure::Throttled => {
                "XKS_PROXY_TIMED_OUT"
            }
            XksFailure::VpcEndpointServiceNotFound => "XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND",
            XksFailure::VpcEndpointServiceInvalid { .. } => {
                "XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION"
            }
            XksFailure::Network { .. } => "NETWORK_ERRORS",
            XksFailure::Internal { .. } => "INTERNAL_ERROR",
        }
    }

    /// The exception CreateCustomKeyStore / UpdateCustomKeyStore raise for this failure
    /// (the XKS spec's "KMS considerations" table).
    pub fn create_update_exception(&self) -> &'static str {
        match self {
            XksFailure::AuthenticationFailed => {
                "XksProxyIncorrectAuthenticationCredentialException"
            }
            XksFailure::InvalidUriPath => "XksProxyInvalidConfigurationException",
            XksFailure::AccessDenied => "XksProxyInvalidConfigurationException",
            XksFailure::InvalidResponse { .. }
            | XksFailure::ProxyInternal
            | XksFailure::KeyNotFound
            | XksFailure::KeyInvalidState
            | XksFailure::KeyInvalidUsage
            | XksFailure::InvalidCiphertext => "XksProxyInvalidResponseException",
            XksFailure::VpcEndpointServiceNotFound => "XksProxyVpcEndpointServiceNotFoundException",
            XksFailure::VpcEndpointServiceInvalid { .. } => {
                "XksProxyVpcEndpointServiceInvalidConfigurationException"
            }
            XksFailure::Internal { .. } => "KMSInternalException",
            XksFailure::Tls { .. }
            | XksFailure::NotReachable { .. }
            | XksFailure::AllEkmsUnavailable
            | XksFailure::TimedOut { .. }
            | XksFailure::DependencyTimeout
            | XksFailure::Throttled
            | XksFailure::Network { .. } => "XksProxyUriUnreachableException",
        }
    }
}

/// Reaches XKS proxies. Implemented by `keyhold-xks`.
#[async_trait]
pub trait XksConnector: Send + Sync {
    /// `POST {endpoint}{path}/health` with `kmsOperation` set for `reason`. Succeeds only when
    /// the proxy answers 200 with a well-formed body in which at least one external key manager
    /// instance is not UNAVAILABLE.
    async fn get_health_status(
        &self,
        target: &XksTarget,
        reason: HealthCheckReason,
        metadata: &XksRequestMetadata,
    ) -> Result<XksHealth, XksFailure>;
}
