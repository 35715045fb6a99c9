//! Wire errors: the one place where failures become AWS's awsJson1.1 error responses
//! (`{"__type": ..., "message": ...}`, HTTP status, `x-amzn-RequestId`).
//!
//! Every error is built from a generated exception enum — [`KmsException`] for the KMS API,
//! [`CloudHsmException`] for the CloudHSM API — so its name and status come from the model
//! (plus the protocol's common errors). One mapping per API, each tested against its model:
//! [`WireError::kms`] and [`WireError::cloudhsm`].

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

use keyhold_cloudhsm_model::Exception as CloudHsmException;
use keyhold_core::KmsError;
use keyhold_kms_model::Exception as KmsException;
use keyhold_kms_model::ValidationError;
use keyhold_sigv4::SigV4Error;

/// The content type of every KMS request and response.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// An error as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// The exception shape name sent in `__type`.
    pub name: &'static str,
    /// The human-readable message.
    pub message: String,
    /// HTTP status.
    pub status: StatusCode,
}

impl WireError {
    /// A KMS exception with AWS's status for it: the model's (400 for every client fault,
    /// 500 for server faults; 413/405 for the HTTP layer's errors), except that KMS answers
    /// `DependencyTimeoutException` with 503 (Service Unavailable), as AWS's API reference
    /// lists it.
    pub fn kms(exception: KmsException, message: impl Into<String>) -> Self {
        let status = match exception {
            KmsException::DependencyTimeout => StatusCode::SERVICE_UNAVAILABLE,
            e => status(e.model_status()),
        };
        Self {
            name: exception.name(),
            message: message.into(),
            status,
        }
    }

    /// A CloudHSM exception with the model's status for it.
    pub fn cloudhsm(exception: CloudHsmException, message: impl Into<String>) -> Self {
        Self {
            name: exception.name(),
            message: message.into(),
            status: status(exception.model_status()),
        }
    }

    /// The same error with another status (e.g. `UnknownOperationException` answered with 405
    /// to a request that is not a POST).
    pub fn with_status(self, status: StatusCode) -> Self {
        Self { status, ..self }
    }

    /// `SerializationException`: the body is not JSON of the expected shape.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::kms(KmsException::Serialization, message)
    }

    /// Renders the response.
    pub fn into_response(self, request_id: &str) -> Response<Full<Bytes>> {
        // AWS leaves `message` out entirely when it has no text (e.g. InvalidCiphertextException).
        let body = if self.message.is_empty() {
            serde_json::json!({ "__type": self.name })
        } else {
            serde_json::json!({ "__type": self.name, "message": self.message })
        };
        let mut resp = json_response(self.status, body.to_string().into(), request_id);
        if let Ok(v) = HeaderValue::from_str(self.name) {
            resp.headers_mut().insert("x-amzn-ErrorType", v);
        }
        resp
    }
}

/// A model status as an HTTP status (500 for a value HTTP does not know, which no model has).
fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A JSON response with the KMS content type and request id.
pub fn json_response(status: StatusCode, body: Bytes, request_id: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-RequestId", v);
    }
    resp
}

impl From<ValidationError> for WireError {
    fn from(e: ValidationError) -> Self {
        WireError::kms(KmsException::Validation, e.message)
    }
}

/// The exception AWS's JSON services answer an authentication failure with.
pub fn sigv4_exception(e: &SigV4Error) -> KmsException {
    match e {
        SigV4Error::MissingAuthentication => KmsException::MissingAuthenticationToken,
        SigV4Error::IncompleteSignature(_) => KmsException::IncompleteSignature,
        SigV4Error::InvalidSignature(_)
        | SigV4Error::SignatureMismatch { .. }
        | SigV4Error::RequestExpired { .. } => KmsException::InvalidSignature,
        SigV4Error::InvalidSigningInput(_) => KmsException::InternalFailure,
    }
}

impl From<&SigV4Error> for WireError {
    fn from(e: &SigV4Error) -> Self {
        // AWS's JSON services answer every authentication failure with 400.
        WireError::kms(sigv4_exception(e), e.to_string()).with_status(StatusCode::BAD_REQUEST)
    }
}

impl From<KmsError> for WireError {
    fn from(e: KmsError) -> Self {
        match e {
            // Keep the cause in the server log; the caller sees AWS's generic text only.
            KmsError::Internal(_) => {
                tracing::error!(error = ?e, "internal error");
                WireError::kms(
                    KmsException::KMSInternal,
                    "An internal error occurred. Retry the request.",
                )
            }
            // Everything else, server errors included, carries a message written for the
            // caller (e.g. session exhaustion: back off and retry).
            KmsError::Exception { exception, message } => WireError::kms(exception, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The KMS mapping, checked against every exception of the model: client faults are 400,
    /// server faults 500 (503 for DependencyTimeoutException), names are the model's.
    #[test]
    fn kms_statuses_follow_the_model() {
        for &e in KmsException::ALL {
            let w = WireError::kms(e, "m");
            assert_eq!(w.name, e.name());
            let expected = match (e, e.fault()) {
                (KmsException::DependencyTimeout, _) => 503,
                (KmsException::RequestEntityTooLarge, _) => 413,
                (KmsException::MethodNotAllowed, _) => 405,
                (_, keyhold_kms_model::exceptions::Fault::Client) => 400,
                (_, keyhold_kms_model::exceptions::Fault::Server) => 500,
            };
            assert_eq!(w.status.as_u16(), expected, "{e}");
        }
        for info in keyhold_kms_model::exceptions::EXCEPTIONS {
            assert!(
                KmsException::from_name(info.name).is_some(),
                "{}",
                info.name
            );
        }
    }

    #[test]
    fn cloudhsm_statuses_follow_the_model() {
        for &e in CloudHsmException::ALL {
            let w = WireError::cloudhsm(e, "m");
            assert_eq!(w.name, e.name());
            assert_eq!(w.status.as_u16(), e.model_status(), "{e}");
        }
        let internal = WireError::cloudhsm(CloudHsmException::CloudHsmInternalFailure, "");
        assert_eq!(internal.status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn internal_errors_never_show_their_cause() {
        let w = WireError::from(KmsError::internal(std::io::Error::other("secret detail")));
        assert_eq!(w.name, "KMSInternalException");
        assert_eq!(w.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!w.message.contains("secret"));
    }

    #[test]
    fn authentication_failures_are_400_with_aws_names() {
        let w = WireError::from(&SigV4Error::MissingAuthentication);
        assert_eq!(
            (w.name, w.status),
            (
                "MissingAuthenticationTokenException",
                StatusCode::BAD_REQUEST
            )
        );
        let w = WireError::from(&SigV4Error::InvalidSigningInput("x".into()));
        assert_eq!(
            (w.name, w.status),
            ("InternalFailure", StatusCode::BAD_REQUEST)
        );
    }
}
