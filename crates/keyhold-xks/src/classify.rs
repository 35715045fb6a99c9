//! The one place where a proxy's answer or a transport error becomes an [`XksFailure`].
//!
//! Proxy errors are read as the spec's [`ErrorName`]s (the one table of the API's errors, in
//! `keyhold-xks-wire`) and must arrive with the HTTP status the spec pairs them with: a name
//! arriving with another status is not trusted and counts as an invalid response, like any
//! unknown name. Transport errors are classified by the phase of the call they happened in
//! plus whether rustls raised them, never by matching message text.

use std::error::Error as StdError;

use keyhold_core::ports::xks::{TlsCause, XksFailure};

use crate::wire::ErrorName;

/// The failure each of the spec's error names means (XKS API v1, "Error codes"), or `None`
/// for a name KMS does not trust as a proxy's verdict. The match is exhaustive, so a name
/// added to the table cannot be left unclassified.
fn failure_for(name: ErrorName) -> Option<XksFailure> {
    match name {
        // Deliberately not a failure of its own: KMS reports it as an invalid response.
        ErrorName::Validation => None,
        ErrorName::AuthenticationFailed => Some(XksFailure::AuthenticationFailed),
        ErrorName::AccessDenied => Some(XksFailure::AccessDenied),
        ErrorName::InvalidUriPath => Some(XksFailure::InvalidUriPath),
        ErrorName::KeyNotFound => Some(XksFailure::KeyNotFound),
        ErrorName::InvalidState => Some(XksFailure::KeyInvalidState),
        ErrorName::InvalidKeyUsage => Some(XksFailure::KeyInvalidUsage),
        ErrorName::UnsupportedOperation => Some(XksFailure::UnsupportedOperation),
        ErrorName::InvalidCiphertext => Some(XksFailure::InvalidCiphertext),
        ErrorName::Throttling => Some(XksFailure::Throttled),
        ErrorName::DependencyTimeout => Some(XksFailure::DependencyTimeout),
        ErrorName::Internal => Some(XksFailure::ProxyInternal),
    }
}

/// Classifies a non-200 answer. `error_name` is `None` when the body was not a JSON error
/// body; that, a name the spec does not define (compared exactly), a spec name with another
/// status than the spec's, and `ValidationException` are invalid responses.
pub fn classify_status(status: u16, error_name: Option<&str>) -> XksFailure {
    let Some(name) = error_name else {
        return XksFailure::InvalidResponse {
            detail: format!("HTTP {status} without a JSON error body"),
        };
    };
    ErrorName::from_wire(name)
        .filter(|known| known.status() == status)
        .and_then(failure_for)
        .unwrap_or_else(|| XksFailure::InvalidResponse {
            detail: format!("HTTP {status} with errorName {name:?}"),
        })
}

/// Where in a call a transport error happened; the same I/O error means different things
/// before and after the proxy started answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// DNS lookup and TCP connect.
    Connect,
    /// The TLS handshake.
    Handshake,
    /// Sending the request and waiting for the response head.
    Exchange,
    /// Reading the response body.
    Body,
}

/// Classifies a transport error.
///
/// * any rustls error anywhere in the chain (certificate invalid, expired, unknown issuer, name
///   mismatch, protocol version, alerts) → `Tls`;
/// * an HTTP response head that is not HTTP → `InvalidResponse`;
/// * failures before any response (refused, DNS, reset or EOF during connect, handshake or
///   while waiting for the head) → `NotReachable`;
/// * failures while the body arrives → `Network`.
pub fn classify_transport(phase: Phase, err: &(dyn StdError + 'static)) -> XksFailure {
    let detail = error_chain(err);
    if let Some(tls) = find::<rustls::Error>(err) {
        return XksFailure::Tls {
            cause: tls_cause(tls),
            detail,
        };
    }
    if let Some(h) = find::<hyper::Error>(err) {
        if h.is_parse() || h.is_parse_status() {
            return XksFailure::InvalidResponse { detail };
        }
    }
    match phase {
        Phase::Connect | Phase::Handshake | Phase::Exchange => XksFailure::NotReachable { detail },
        Phase::Body => XksFailure::Network { detail },
    }
}

/// The typed cause of a rustls error: which certificate check failed (with the dates and
/// names rustls reports), or which alert or incompatibility ended the handshake.
pub fn tls_cause(e: &rustls::Error) -> TlsCause {
    use rustls::CertificateError as C;
    let secs = |t: &rustls::pki_types::UnixTime| Some(t.as_secs());
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::Expired => TlsCause::CertificateExpired { not_after: None },
            C::ExpiredContext { not_after, .. } => TlsCause::CertificateExpired {
                not_after: secs(not_after),
            },
            C::NotValidYet => TlsCause::CertificateNotYetValid { not_before: None },
            C::NotValidYetContext { not_before, .. } => TlsCause::CertificateNotYetValid {
                not_before: secs(not_before),
            },
            C::UnknownIssuer => TlsCause::UnknownIssuer,
            C::NotValidForName => TlsCause::NameMismatch {
                presented: Vec::new(),
            },
            C::NotValidForNameContext { presented, .. } => TlsCause::NameMismatch {
                presented: presented.clone(),
            },
            other => TlsCause::BadCertificate {
                reason: format!("{other:?}"),
            },
        },
        rustls::Error::AlertReceived(alert) => TlsCause::AlertReceived {
            alert: format!("{alert:?}"),
        },
        rustls::Error::PeerIncompatible(p) => TlsCause::Incompatible {
            reason: format!("{p:?}"),
        },
        _ => TlsCause::Other,
    }
}

/// The budget ran out.
pub fn timed_out(budget_ms: u64) -> XksFailure {
    XksFailure::TimedOut { budget_ms }
}

/// Finds an error of type `T` in `err`'s chain. `std::io::Error::source` skips the error it
/// wraps, so wrapped errors are looked at explicitly.
fn find<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(hit) = e.downcast_ref::<T>() {
            return Some(hit);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(hit) = find::<T>(inner) {
                    return Some(hit);
                }
            }
        }
        current = e.source();
    }
    None
}

/// `a: b: c` from an error and its sources, for `detail` (rustls and I/O errors carry no
/// secrets).
fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut text = err.to_string();
    let mut current = err.source();
    while let Some(e) = current {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        current = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn is_invalid_response(f: &XksFailure) -> bool {
        matches!(f, XksFailure::InvalidResponse { .. })
    }

    #[test]
    fn each_spec_row_maps_to_its_failure() {
        let rows: [(u16, &str, XksFailure); 11] = [
            (
                401,
                "AuthenticationFailedException",
                XksFailure::AuthenticationFailed,
            ),
            (403, "AccessDeniedException", XksFailure::AccessDenied),
            (404, "InvalidUriPathException", XksFailure::InvalidUriPath),
            (404, "KeyNotFoundException", XksFailure::KeyNotFound),
            (400, "InvalidStateException", XksFailure::KeyInvalidState),
            (400, "InvalidKeyUsageException", XksFailure::KeyInvalidUsage),
            (
                501,
                "UnsupportedOperationException",
                XksFailure::UnsupportedOperation,
            ),
            (
                400,
                "InvalidCiphertextException",
                XksFailure::InvalidCiphertext,
            ),
            (429, "ThrottlingException", XksFailure::Throttled),
            (
                503,
                "DependencyTimeoutException",
                XksFailure::DependencyTimeout,
            ),
            (500, "InternalException", XksFailure::ProxyInternal),
        ];
        for (status, name, want) in rows {
            assert_eq!(classify_status(status, Some(name)), want, "{status} {name}");
        }
    }

    #[test]
    fn validation_unknown_and_mismatched_rows_are_invalid_responses() {
        assert!(is_invalid_response(&classify_status(
            400,
            Some("ValidationException")
        )));
        assert!(is_invalid_response(&classify_status(
            418,
            Some("TeapotException")
        )));
        assert!(is_invalid_response(&classify_status(
            400,
            Some("NewException")
        )));
        assert!(is_invalid_response(&classify_status(
            500,
            Some("AccessDeniedException")
        )));
        assert!(is_invalid_response(&classify_status(401, None)));
        assert!(is_invalid_response(&classify_status(
            200,
            Some("InternalException")
        )));
    }

    #[test]
    fn every_name_counts_only_with_its_spec_status() {
        let statuses = [
            200, 400, 401, 403, 404, 405, 418, 429, 500, 501, 502, 503, 504,
        ];
        for name in ErrorName::ALL {
            for status in statuses {
                let got = classify_status(status, Some(name.as_str()));
                match failure_for(name) {
                    Some(want) if status == name.status() => assert_eq!(got, want, "{name}"),
                    _ => assert!(is_invalid_response(&got), "{status} {name}: {got:?}"),
                }
            }
        }
    }

    #[test]
    fn rustls_errors_are_tls_in_any_phase_even_wrapped_in_io() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        let wrapped = io::Error::new(io::ErrorKind::InvalidData, tls);
        for phase in [Phase::Handshake, Phase::Exchange, Phase::Body] {
            let f = classify_transport(phase, &wrapped);
            assert!(matches!(f, XksFailure::Tls { .. }), "{phase:?}: {f:?}");
        }
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion);
        assert!(matches!(
            classify_transport(Phase::Handshake, &alert),
            XksFailure::Tls { .. }
        ));
    }

    #[test]
    fn tls_causes_keep_dates_names_and_alerts() {
        let expired = rustls::Error::InvalidCertificate(rustls::CertificateError::ExpiredContext {
            time: rustls::pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                1_796_000_000,
            )),
            // 2026-11-01T00:00:00Z
            not_after: rustls::pki_types::UnixTime::since_unix_epoch(
                std::time::Duration::from_secs(1_793_491_200),
            ),
        });
        let f = classify_transport(Phase::Handshake, &expired);
        assert_eq!(
            f.cause_sentence("xks.example.com", "/kms/xks/v1/health"),
            "TLS: the certificate of xks.example.com expired on 2026-11-01"
        );
        let wrong = rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        assert_eq!(
            tls_cause(&wrong),
            TlsCause::NameMismatch {
                presented: Vec::new()
            }
        );
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion);
        assert_eq!(
            tls_cause(&alert),
            TlsCause::AlertReceived {
                alert: "ProtocolVersion".into()
            }
        );
    }

    #[test]
    fn proxy_answers_name_the_status_and_error_name_of_the_spec() {
        for name in ErrorName::ALL {
            if let Some(f) = failure_for(name) {
                assert_eq!(
                    f.proxy_answer(),
                    Some((name.status(), name.as_str())),
                    "{name}"
                );
            }
        }
        assert_eq!(
            XksFailure::InvalidUriPath.cause_sentence("h", "/example/kms/xks/v1/health"),
            "proxy answered 404 InvalidUriPathException for /example/kms/xks/v1/health"
        );
    }

    #[test]
    fn io_errors_depend_on_the_phase() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert!(matches!(
            classify_transport(Phase::Connect, &refused),
            XksFailure::NotReachable { .. }
        ));
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof");
        assert!(matches!(
            classify_transport(Phase::Handshake, &eof),
            XksFailure::NotReachable { .. }
        ));
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        let f = classify_transport(Phase::Body, &reset);
        assert!(matches!(f, XksFailure::Network { .. }));
        assert_eq!(f.connection_error_code(), "NETWORK_ERRORS");
    }

    #[test]
    fn timeout_keeps_the_budget() {
        let f = timed_out(250);
        assert_eq!(f, XksFailure::TimedOut { budget_ms: 250 });
        assert_eq!(f.connection_error_code(), "XKS_PROXY_TIMED_OUT");
    }
}
