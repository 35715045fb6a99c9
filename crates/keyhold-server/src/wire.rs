//! Wire errors: the one place where failures become AWS's awsJson1.1 error responses
//! (`{"__type": ..., "message": ...}`, HTTP status, `x-amzn-RequestId`).

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

use keyhold_core::KmsError;
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
    /// A client error (HTTP 400), which is what KMS sends for every modeled client exception,
    /// even where the model says 404/409/412.
    pub fn client(name: &'static str, message: impl Into<String>) -> Self {
        Self {
            name,
            message: message.into(),
            status: StatusCode::BAD_REQUEST,
        }
    }

    /// `SerializationException`: the body is not JSON of the expected shape.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::client("SerializationException", message)
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
        WireError::client("ValidationException", e.message)
    }
}

impl From<&SigV4Error> for WireError {
    fn from(e: &SigV4Error) -> Self {
        // AWS's JSON services answer every authentication failure with 400.
        WireError::client(e.wire_name(), e.to_string())
    }
}

impl From<KmsError> for WireError {
    fn from(e: KmsError) -> Self {
        let name = e.exception_name();
        let status = match name {
            "KMSInternalException" | "KeyUnavailableException" => StatusCode::INTERNAL_SERVER_ERROR,
            "DependencyTimeoutException" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        let message = match e {
            // Keep the cause in the server log; the caller sees AWS's generic text only.
            KmsError::Internal(_) => {
                tracing::error!(error = ?e, "internal error");
                "An internal error occurred. Retry the request.".to_string()
            }
            // Everything else, server errors included, carries a message written for the
            // caller (e.g. session exhaustion: back off and retry).
            _ => e.to_string(),
        };
        WireError {
            name,
            message,
            status,
        }
    }
}
