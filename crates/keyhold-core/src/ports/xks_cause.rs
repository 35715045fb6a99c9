//! What an XKS failure tells an operator: the typed cause of a TLS failure, the proxy's
//! answer (status and `errorName`), the cause as one sentence for connection diagnostics, a
//! bounded cause class for metrics, and the observer the domain reports proxy calls to.
//! Re-exported from [`super::xks`].

use super::xks::XksFailure;

/// The typed cause of a TLS failure, kept from the TLS library's error so that connection
/// diagnostics can say "the certificate of xks.example.com expired on 2026-11-01" rather than
/// only "TLS failure". Times are seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsCause {
    /// The proxy's certificate expired (`not_after`, when the TLS library reports it).
    CertificateExpired {
        /// The certificate's `notAfter`.
        not_after: Option<u64>,
    },
    /// The proxy's certificate is not valid yet (`not_before`, when reported).
    CertificateNotYetValid {
        /// The certificate's `notBefore`.
        not_before: Option<u64>,
    },
    /// The certificate chain does not lead to a trusted certificate authority.
    UnknownIssuer,
    /// The certificate is not issued for the endpoint's host name; `presented` lists the
    /// names it is issued for (empty when not reported).
    NameMismatch {
        /// The subject names in the certificate.
        presented: Vec<String>,
    },
    /// Another certificate problem (bad encoding, bad signature, revoked, wrong purpose).
    BadCertificate {
        /// The TLS library's name for it.
        reason: String,
    },
    /// The proxy ended the handshake with a TLS alert (e.g. `ProtocolVersion`).
    AlertReceived {
        /// The alert's name.
        alert: String,
    },
    /// The two sides share no protocol version or cipher suite.
    Incompatible {
        /// What did not match.
        reason: String,
    },
    /// Any other TLS failure (see the failure's `detail`).
    Other,
}

impl TlsCause {
    /// The cause as part of a sentence about `host`'s certificate or handshake.
    pub fn describe(&self, host: &str) -> String {
        match self {
            TlsCause::CertificateExpired { not_after } => match not_after.and_then(date) {
                Some(d) => format!("TLS: the certificate of {host} expired on {d}"),
                None => format!("TLS: the certificate of {host} expired"),
            },
            TlsCause::CertificateNotYetValid { not_before } => match not_before.and_then(date) {
                Some(d) => format!("TLS: the certificate of {host} is not valid before {d}"),
                None => format!("TLS: the certificate of {host} is not valid yet"),
            },
            TlsCause::UnknownIssuer => format!(
                "TLS: the certificate of {host} is not issued by a trusted certificate authority"
            ),
            TlsCause::NameMismatch { presented } if !presented.is_empty() => format!(
                "TLS: the certificate presented by {host} is issued for {}, not {host}",
                presented.join(", ")
            ),
            TlsCause::NameMismatch { .. } => {
                format!("TLS: the certificate presented by {host} is not issued for {host}")
            }
            TlsCause::BadCertificate { reason } => {
                format!("TLS: the certificate of {host} is invalid ({reason})")
            }
            TlsCause::AlertReceived { alert } => {
                format!("TLS: {host} ended the handshake with the alert {alert}")
            }
            TlsCause::Incompatible { reason } => {
                format!("TLS: {host} and KMS share no TLS 1.2/1.3 parameters ({reason})")
            }
            TlsCause::Other => format!("TLS: the handshake with {host} failed"),
        }
    }
}

/// `YYYY-MM-DD` (UTC) of a Unix time.
fn date(secs: u64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02}",
        t.year(),
        u8::from(t.month()),
        t.day()
    ))
}

impl XksFailure {
    /// The HTTP status and `errorName` the proxy answered with, for the failures that are a
    /// proxy's error answer. The variant determines both: the client classifies a name only
    /// when it arrives with the status the XKS specification pairs it with (anything else is
    /// [`XksFailure::InvalidResponse`]).
    pub fn proxy_answer(&self) -> Option<(u16, &'static str)> {
        Some(match self {
            XksFailure::AuthenticationFailed => (401, "AuthenticationFailedException"),
            XksFailure::AccessDenied => (403, "AccessDeniedException"),
            XksFailure::InvalidUriPath => (404, "InvalidUriPathException"),
            XksFailure::KeyNotFound => (404, "KeyNotFoundException"),
            XksFailure::KeyInvalidState => (400, "InvalidStateException"),
            XksFailure::KeyInvalidUsage => (400, "InvalidKeyUsageException"),
            XksFailure::UnsupportedOperation => (501, "UnsupportedOperationException"),
            XksFailure::InvalidCiphertext => (400, "InvalidCiphertextException"),
            XksFailure::Throttled => (429, "ThrottlingException"),
            XksFailure::DependencyTimeout => (503, "DependencyTimeoutException"),
            XksFailure::ProxyInternal => (500, "InternalException"),
            _ => return None,
        })
    }

    /// The observed cause as one sentence for connection diagnostics, for a call to `path`
    /// (e.g. `/example/kms/xks/v1/health`) on `host`: "proxy answered 404
    /// InvalidUriPathException for /x/kms/xks/v1/health", "TLS: the certificate of
    /// xks.example.com expired on 2026-11-01", "proxy did not answer within 250 ms".
    pub fn cause_sentence(&self, host: &str, path: &str) -> String {
        if let Some((status, name)) = self.proxy_answer() {
            return format!("proxy answered {status} {name} for {path}");
        }
        match self {
            XksFailure::InvalidResponse { detail } => {
                format!("the proxy's answer for {path} cannot be interpreted: {detail}")
            }
            XksFailure::Tls { cause, detail } => match cause {
                TlsCause::Other => format!("{} ({detail})", cause.describe(host)),
                _ => cause.describe(host),
            },
            XksFailure::NotReachable { detail } => {
                format!("cannot reach the proxy at {host}: {detail}")
            }
            XksFailure::AllEkmsUnavailable => format!(
                "proxy answered {path} with every external key manager instance UNAVAILABLE"
            ),
            XksFailure::TimedOut { budget_ms } => {
                format!("proxy did not answer within {budget_ms} ms")
            }
            XksFailure::VpcEndpointServiceNotFound => {
                "the VPC endpoint service is not declared in Keyhold's [xks] configuration"
                    .to_string()
            }
            XksFailure::VpcEndpointServiceInvalid { detail } => {
                format!("the VPC endpoint service does not meet KMS's requirements: {detail}")
            }
            XksFailure::Network { detail } => {
                format!(
                    "the connection to {host} broke while the answer to {path} arrived: {detail}"
                )
            }
            XksFailure::Internal { detail } => format!("internal error: {detail}"),
            // Every proxy answer was handled above.
            _ => self.to_string(),
        }
    }
}

/// An XKS proxy API operation, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum XksOperation {
    /// `GetHealthStatus` (Create, Update, Connect and the periodic health check).
    GetHealthStatus,
    /// `GetKeyMetadata` (CreateKey).
    GetKeyMetadata,
    /// `Encrypt`.
    Encrypt,
    /// `Decrypt`.
    Decrypt,
}

impl XksOperation {
    /// The operation's name in the XKS Proxy API.
    pub fn as_str(self) -> &'static str {
        match self {
            XksOperation::GetHealthStatus => "GetHealthStatus",
            XksOperation::GetKeyMetadata => "GetKeyMetadata",
            XksOperation::Encrypt => "Encrypt",
            XksOperation::Decrypt => "Decrypt",
        }
    }
}

impl XksFailure {
    /// A short, bounded class of the cause, for metric labels (`tls`, `timed_out`,
    /// `http_404_invalid_uri_path`, ...): one per variant, never text from the proxy.
    pub fn cause_class(&self) -> &'static str {
        match self {
            XksFailure::AuthenticationFailed => "http_401_authentication_failed",
            XksFailure::AccessDenied => "http_403_access_denied",
            XksFailure::InvalidUriPath => "http_404_invalid_uri_path",
            XksFailure::KeyNotFound => "http_404_key_not_found",
            XksFailure::KeyInvalidState => "http_400_invalid_state",
            XksFailure::KeyInvalidUsage => "http_400_invalid_key_usage",
            XksFailure::UnsupportedOperation => "http_501_unsupported_operation",
            XksFailure::InvalidCiphertext => "http_400_invalid_ciphertext",
            XksFailure::Throttled => "http_429_throttling",
            XksFailure::DependencyTimeout => "http_503_dependency_timeout",
            XksFailure::ProxyInternal => "http_500_internal",
            XksFailure::InvalidResponse { .. } => "invalid_response",
            XksFailure::Tls { .. } => "tls",
            XksFailure::NotReachable { .. } => "not_reachable",
            XksFailure::AllEkmsUnavailable => "all_ekms_unavailable",
            XksFailure::TimedOut { .. } => "timed_out",
            XksFailure::VpcEndpointServiceNotFound => "vpc_endpoint_service_not_found",
            XksFailure::VpcEndpointServiceInvalid { .. } => "vpc_endpoint_service_invalid",
            XksFailure::Network { .. } => "network",
            XksFailure::Internal { .. } => "internal",
        }
    }
}

/// Observes every proxy call made for a custom key store (per-store metrics). It is called on
/// the request path, so implementations must be cheap (atomic counters); it lives here so
/// that neither the XKS client nor the domain depends on the server that counts.
pub trait XksCallObserver: Send + Sync {
    /// One call for `custom_key_store_id` of `operation` took `elapsed` and failed with
    /// `failure` (`None`: it succeeded).
    fn observe(
        &self,
        custom_key_store_id: &str,
        operation: XksOperation,
        failure: Option<&XksFailure>,
        elapsed: std::time::Duration,
    );
}
