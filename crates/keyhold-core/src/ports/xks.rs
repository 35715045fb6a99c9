//! The port to external key store (XKS) proxies.
//!
//! The domain asks an [`XksConnector`] to reach a proxy; the backend (`keyhold-xks`) speaks
//! HTTPS + SigV4 and classifies every failure from its real cause (an HTTP status and
//! `errorName`, a TLS error, a timeout, a refused connection) into one [`XksFailure`]. The
//! domain then maps a failure to a `ConnectionErrorCode` or to the exception of the operation at
//! hand with the tables in [`XksFailure`]'s methods: one place, no string matching.

use async_trait::async_trait;
use keyhold_crypto::SecretBytes;
use keyhold_kms_model::Exception;

pub use super::xks_cause::{TlsCause, XksCallObserver, XksOperation};

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
    /// 400 `InvalidKeyUsageException`.
    #[error("external key does not support the operation")]
    KeyInvalidUsage,
    /// 501 `UnsupportedOperationException`: the proxy does not implement the operation.
    #[error("proxy does not support the operation")]
    UnsupportedOperation,
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
        /// What the TLS layer found, typed (the expiry date, the names presented, the alert),
        /// so a diagnosis can name it exactly.
        cause: TlsCause,
        /// The TLS error chain as text (for logs).
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
            | XksFailure::UnsupportedOperation
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
    pub fn create_update_exception(&self) -> Exception {
        match self {
            XksFailure::AuthenticationFailed => {
                Exception::XksProxyIncorrectAuthenticationCredential
            }
            XksFailure::InvalidUriPath => Exception::XksProxyInvalidConfiguration,
            XksFailure::AccessDenied => Exception::XksProxyInvalidConfiguration,
            XksFailure::InvalidResponse { .. }
            | XksFailure::ProxyInternal
            | XksFailure::KeyNotFound
            | XksFailure::KeyInvalidState
            | XksFailure::KeyInvalidUsage
            | XksFailure::UnsupportedOperation
            | XksFailure::InvalidCiphertext => Exception::XksProxyInvalidResponse,
            XksFailure::VpcEndpointServiceNotFound => Exception::XksProxyVpcEndpointServiceNotFound,
            XksFailure::VpcEndpointServiceInvalid { .. } => {
                Exception::XksProxyVpcEndpointServiceInvalidConfiguration
            }
            XksFailure::Internal { .. } => Exception::KMSInternal,
            XksFailure::Tls { .. }
            | XksFailure::NotReachable { .. }
            | XksFailure::AllEkmsUnavailable
            | XksFailure::TimedOut { .. }
            | XksFailure::DependencyTimeout
            | XksFailure::Throttled
            | XksFailure::Network { .. } => Exception::XksProxyUriUnreachable,
        }
    }
}

impl XksFailure {
    /// The message AWS returns with `KMSInvalidStateException` when this failure happens during
    /// a cryptographic operation, and with the matching exception during CreateKey (the XKS
    /// specification's "KMS considerations" table).
    pub fn kms_message(&self) -> &'static str {
        match self {
            XksFailure::AuthenticationFailed => msg::AUTHENTICATION_FAILED,
            XksFailure::AccessDenied => msg::ACCESS_DENIED,
            XksFailure::InvalidUriPath => msg::INVALID_URI_PATH,
            XksFailure::KeyNotFound => msg::KEY_NOT_FOUND,
            XksFailure::KeyInvalidState => msg::KEY_NOT_ENABLED,
            XksFailure::KeyInvalidUsage => msg::KEY_INVALID_USAGE,
            XksFailure::UnsupportedOperation => msg::UNSUPPORTED_OPERATION,
            XksFailure::InvalidCiphertext => msg::PROXY_REJECTED_CIPHERTEXT,
            XksFailure::Throttled => msg::THROTTLED,
            XksFailure::DependencyTimeout => msg::DEPENDENCY_TIMEOUT,
            XksFailure::ProxyInternal => msg::PROXY_INTERNAL,
            XksFailure::InvalidResponse { .. } => msg::CANNOT_INTERPRET,
            XksFailure::Tls { .. } => msg::TLS,
            XksFailure::TimedOut { .. } => msg::TIMED_OUT,
            XksFailure::NotReachable { .. }
            | XksFailure::AllEkmsUnavailable
            | XksFailure::VpcEndpointServiceNotFound
            | XksFailure::VpcEndpointServiceInvalid { .. }
            | XksFailure::Network { .. }
            | XksFailure::Internal { .. } => msg::CANNOT_COMMUNICATE,
        }
    }

    /// The exception CreateKey raises for this failure while it asks the proxy for the external
    /// key's metadata. The specification names `XksKeyInvalidResponseException` for 501, which
    /// is not a modeled exception; Keyhold answers `CustomKeyStoreInvalidStateException` there,
    /// and for 403 it follows the Developer Guide (`CustomKeyStoreInvalidStateException`).
    pub fn create_key_exception(&self) -> Exception {
        match self {
            XksFailure::KeyNotFound => Exception::XksKeyNotFound,
            XksFailure::KeyInvalidState | XksFailure::KeyInvalidUsage => {
                Exception::XksKeyInvalidConfiguration
            }
            _ => Exception::CustomKeyStoreInvalidState,
        }
    }
}

/// The messages KMS returns for XKS failures, word for word from the XKS specification's
/// "KMS considerations" table (its newer wording, "external key manager" for "external HSM").
pub mod msg {
    /// 401 `AuthenticationFailedException`.
    pub const AUTHENTICATION_FAILED: &str = "The external key store proxy rejected the request because it could not authenticate AWS KMS. Verify the XKS proxy authentication credentials for your external key store and update if necessary.";
    /// 403 `AccessDeniedException`.
    pub const ACCESS_DENIED: &str = "The external key store proxy denied access to the operation. Verify that the user and the external key are both authorized for this operation, and try the request again.";
    /// 404 `InvalidUriPathException`.
    pub const INVALID_URI_PATH: &str = "The external key store proxy rejected the request because of an invalid URI path. Verify the URI path for your external key store and update if necessary.";
    /// 404 `KeyNotFoundException`.
    pub const KEY_NOT_FOUND: &str = "The external key associated with this KMS key in an external key store was not found in its external key manager. If the external key ID associated with this KMS key is incorrect, create a new KMS key with the correct external key ID.";
    /// 400 `InvalidStateException`.
    pub const KEY_NOT_ENABLED: &str = "The external key associated with this KMS key in an external key store is not enabled in the external key manager. Enable the external key in the external key manager and retry the request.";
    /// 400 `InvalidKeyUsageException`.
    pub const KEY_INVALID_USAGE: &str = "The external key associated with this KMS key in an external key store does not support the requested operation. Enable the operation on the key in your external key manager, and try the request again.";
    /// 501 `UnsupportedOperationException`.
    pub const UNSUPPORTED_OPERATION: &str = "The external key store proxy rejected the request because it does not support the requested operation. If you see this error repeatedly, report it to your external key store proxy administrator.";
    /// 400 `InvalidCiphertextException`.
    pub const PROXY_REJECTED_CIPHERTEXT: &str = "The external key store proxy rejected the request because the specified ciphertext or encryption context is corrupted, missing, or otherwise invalid.";
    /// The proxy answered with a ciphertext KMS cannot accept (bad integrity value, bad sizes,
    /// or a plaintext that does not decrypt).
    pub const PROXY_RETURNED_INVALID_CIPHERTEXT: &str = "The ciphertext that the external key store proxy submitted for decryption, or the encryption context, is corrupted, missing, or otherwise invalid.";
    /// 429 `ThrottlingException`.
    pub const THROTTLED: &str = "The external key store proxy rejected the request due to a very high request rate. Reduce the frequency of your calls using KMS keys in this external key store.";
    /// 503 `DependencyTimeoutException`.
    pub const DEPENDENCY_TIMEOUT: &str = "The external key store proxy did not respond to the request in the time allotted. Retry the request. If you see this error repeatedly, report it to your external key store proxy administrator.";
    /// 500 `InternalException`.
    pub const PROXY_INTERNAL: &str = "The external key store proxy rejected the request because it cannot communicate with the external key manager. Verify that the external key store proxy configuration is correct and that the external key manager is available.";
    /// No TCP connection (and other network failures).
    pub const CANNOT_COMMUNICATE: &str = "AWS KMS cannot communicate with the external key store proxy. This might be a transient network issue. If you see this error repeatedly, verify that your external key store proxy is active and is connected to the network, and that its endpoint URI is correct in your external key store.";
    /// TLS failure.
    pub const TLS: &str = "AWS KMS cannot establish a TLS connection to the external key store proxy. Verify the TLS configuration, including its certificate.";
    /// Socket timeout (the per-call budget).
    pub const TIMED_OUT: &str = "AWS KMS rejected the request because the external key store proxy did not respond in time. Retry the request. If you see this error repeatedly, report it to your external key store proxy administrator.";
    /// Malformed response, 400 `ValidationException`, error without a JSON body.
    pub const CANNOT_INTERPRET: &str = "AWS KMS cannot interpret the response from the external key store proxy. If you see this error repeatedly, report it to your external key store proxy administrator.";
    /// The key's custom key store is not `CONNECTED`.
    pub const NOT_CONNECTED: &str = "This KMS key is in a custom key store that is not connected to its external key store proxy. Connect the external key store and try the request again.";
}

/// What KMS sends with a key operation (`requestMetadata` of GetKeyMetadata, Encrypt, Decrypt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XksKeyRequestMetadata {
    /// `awsPrincipalArn`: the caller's principal ARN.
    pub aws_principal_arn: String,
    /// `kmsKeyArn` (absent for GetKeyMetadata at CreateKey: the key does not exist yet).
    pub kms_key_arn: Option<String>,
    /// `kmsOperation`: the KMS operation being served, e.g. `GenerateDataKey`.
    pub kms_operation: String,
    /// `kmsRequestId`.
    pub kms_request_id: String,
}

/// One key operation on an XKS proxy (GetKeyMetadata, Encrypt, Decrypt): the proxy it goes to,
/// the key, and what KMS sends with it. What every connector takes, and a wrapper hands on.
#[derive(Debug, Clone, Copy)]
pub struct XksKeyCall<'a> {
    /// The proxy.
    pub target: &'a XksTarget,
    /// The key's id in the external key manager (`XksKeyId`), the `{external_key_id}` of the
    /// request path.
    pub external_key_id: &'a str,
    /// `requestMetadata`.
    pub metadata: &'a XksKeyRequestMetadata,
}

impl<'a> XksKeyCall<'a> {
    /// The call on `external_key_id` at `target`, sending `metadata`.
    pub fn new(
        target: &'a XksTarget,
        external_key_id: &'a str,
        metadata: &'a XksKeyRequestMetadata,
    ) -> Self {
        Self {
            target,
            external_key_id,
            metadata,
        }
    }
}

/// A proxy's answer to GetKeyMetadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XksKeyMetadata {
    /// `keySpec`, e.g. `AES_256`.
    pub key_spec: String,
    /// `keyUsage`, e.g. `["ENCRYPT", "DECRYPT"]`.
    pub key_usage: Vec<String>,
    /// `keyStatus`: `ENABLED` or `DISABLED`.
    pub key_status: String,
}

/// An XKS Encrypt call (always `AES_GCM`).
#[derive(Clone, PartialEq, Eq)]
pub struct XksEncryptInput {
    /// `plaintext` (for KMS: its own inner ciphertext).
    pub plaintext: Vec<u8>,
    /// `additionalAuthenticatedData`.
    pub aad: Vec<u8>,
    /// Ask for `ciphertextDataIntegrityValue` (`SHA_256`).
    pub request_cdiv: bool,
}

impl std::fmt::Debug for XksEncryptInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XksEncryptInput")
            .field("plaintext_len", &self.plaintext.len())
            .field("aad_len", &self.aad.len())
            .field("request_cdiv", &self.request_cdiv)
            .finish()
    }
}

/// A proxy's answer to Encrypt, as received (the domain checks the sizes and the CDIV).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XksEncryptOutput {
    /// `ciphertext`.
    pub ciphertext: Vec<u8>,
    /// `initializationVector`.
    pub iv: Vec<u8>,
    /// `authenticationTag`.
    pub tag: Vec<u8>,
    /// `ciphertextMetadata` (empty when absent).
    pub ciphertext_metadata: Vec<u8>,
    /// `ciphertextDataIntegrityValue`, when returned.
    pub cdiv: Option<Vec<u8>>,
}

/// An XKS Decrypt call (always `AES_GCM`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XksDecryptInput {
    /// `ciphertext`.
    pub ciphertext: Vec<u8>,
    /// `initializationVector`.
    pub iv: Vec<u8>,
    /// `authenticationTag`.
    pub tag: Vec<u8>,
    /// `ciphertextMetadata` (empty: not sent).
    pub ciphertext_metadata: Vec<u8>,
    /// `additionalAuthenticatedData`, the same bytes as at Encrypt.
    pub aad: Vec<u8>,
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

    /// `POST {endpoint}{path}/keys/{external_key_id}/metadata`.
    async fn get_key_metadata(&self, call: XksKeyCall<'_>) -> Result<XksKeyMetadata, XksFailure> {
        let _ = call;
        Err(not_configured())
    }

    /// `POST {endpoint}{path}/keys/{external_key_id}/encrypt` with `AES_GCM`.
    async fn encrypt(
        &self,
        call: XksKeyCall<'_>,
        input: &XksEncryptInput,
    ) -> Result<XksEncryptOutput, XksFailure> {
        let _ = (call, input);
        Err(not_configured())
    }

    /// `POST {endpoint}{path}/keys/{external_key_id}/decrypt` with `AES_GCM`; the plaintext.
    async fn decrypt(
        &self,
        call: XksKeyCall<'_>,
        input: &XksDecryptInput,
    ) -> Result<SecretBytes, XksFailure> {
        let _ = (call, input);
        Err(not_configured())
    }
}

fn not_configured() -> XksFailure {
    XksFailure::Internal {
        detail: "this XKS connector does not implement key operations".into(),
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==";

    /// The proxy credential never shows in `Debug`, neither in the target the domain hands to
    /// the connector nor in the request shape it arrives in.
    #[test]
    fn proxy_credentials_are_redacted_in_debug() {
        let target = XksTarget {
            uri_endpoint: "https://xks.example".into(),
            uri_path: "/kms/xks/v1".into(),
            connectivity: XksConnectivity::PublicEndpoint,
            access_key_id: "AKIAXKSPROXYTESTAAAA".into(),
            secret_access_key: SecretBytes::from_slice(SECRET.as_bytes()),
            region: "us-east-1".into(),
        };
        let shown = format!("{target:?}");
        assert!(!shown.contains(SECRET), "{shown}");
        let cred = keyhold_kms_model::shapes::XksProxyAuthenticationCredentialType {
            access_key_id: "AKIAXKSPROXYTESTAAAA".to_string().into(),
            raw_secret_access_key: SECRET.to_string().into(),
        };
        let shown = format!("{cred:?}");
        assert!(!shown.contains(SECRET), "{shown}");
    }
}
