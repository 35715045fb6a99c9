//! The twelve error names of the XKS Proxy API and their HTTP status codes (spec §"Error codes").

use keyhold_xks_wire::ErrorBody;

/// An error answered to KMS as `{"errorName", "errorMessage"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorName {
    /// 400: invalid input.
    Validation,
    /// 400: key or key store disabled.
    InvalidState,
    /// 400: ciphertext, IV, AAD or tag corrupt.
    InvalidCiphertext,
    /// 400: the key does not allow the operation.
    InvalidKeyUsage,
    /// 401: bad SigV4.
    AuthenticationFailed,
    /// 403: secondary authorization denied.
    AccessDenied,
    /// 404: no such external key.
    KeyNotFound,
    /// 404: bad URI path.
    InvalidUriPath,
    /// 429: rate too high.
    Throttling,
    /// 501: not implemented, or input above this proxy's limits.
    UnsupportedOperation,
    /// 503: the key manager timed out.
    DependencyTimeout,
    /// 500: anything else.
    Internal,
}

impl ErrorName {
    /// Every error name, for tests and documentation.
    pub const ALL: [ErrorName; 12] = [
        ErrorName::Validation,
        ErrorName::InvalidState,
        ErrorName::InvalidCiphertext,
        ErrorName::InvalidKeyUsage,
        ErrorName::AuthenticationFailed,
        ErrorName::AccessDenied,
        ErrorName::KeyNotFound,
        ErrorName::InvalidUriPath,
        ErrorName::Throttling,
        ErrorName::UnsupportedOperation,
        ErrorName::DependencyTimeout,
        ErrorName::Internal,
    ];

    /// The `errorName` on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorName::Validation => "ValidationException",
            ErrorName::InvalidState => "InvalidStateException",
            ErrorName::InvalidCiphertext => "InvalidCiphertextException",
            ErrorName::InvalidKeyUsage => "InvalidKeyUsageException",
            ErrorName::AuthenticationFailed => "AuthenticationFailedException",
            ErrorName::AccessDenied => "AccessDeniedException",
            ErrorName::KeyNotFound => "KeyNotFoundException",
            ErrorName::InvalidUriPath => "InvalidUriPathException",
            ErrorName::Throttling => "ThrottlingException",
            ErrorName::UnsupportedOperation => "UnsupportedOperationException",
            ErrorName::DependencyTimeout => "DependencyTimeoutException",
            ErrorName::Internal => "InternalException",
        }
    }

    /// The HTTP status the spec assigns to the name.
    pub fn status(self) -> u16 {
        match self {
            ErrorName::Validation
            | ErrorName::InvalidState
            | ErrorName::InvalidCiphertext
            | ErrorName::InvalidKeyUsage => 400,
            ErrorName::AuthenticationFailed => 401,
            ErrorName::AccessDenied => 403,
            ErrorName::KeyNotFound | ErrorName::InvalidUriPath => 404,
            ErrorName::Throttling => 429,
            ErrorName::UnsupportedOperation => 501,
            ErrorName::DependencyTimeout => 503,
            ErrorName::Internal => 500,
        }
    }
}

/// An error answer: a name and a message for KMS's CloudWatch log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XksError {
    /// The error name (and so the status).
    pub name: ErrorName,
    /// Free text; sanitized to < 512 printable ASCII characters when rendered.
    pub message: String,
}

impl XksError {
    /// A new error.
    pub fn new(name: ErrorName, message: impl Into<String>) -> Self {
        Self {
            name,
            message: message.into(),
        }
    }

    /// The JSON body. The message is cut to 511 printable ASCII characters as the spec asks.
    pub fn body(&self) -> Vec<u8> {
        let message: String = self
            .message
            .chars()
            .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
            .take(511)
            .collect();
        let body = ErrorBody {
            error_name: self.name.as_str().to_string(),
            error_message: if message.is_empty() {
                None
            } else {
                Some(message)
            },
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

impl std::fmt::Display for XksError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name.as_str(), self.message)
    }
}

impl std::error::Error for XksError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_has_the_spec_status() {
        let table: Vec<(&str, u16)> = ErrorName::ALL
            .iter()
            .map(|n| (n.as_str(), n.status()))
            .collect();
        assert_eq!(
            table,
            [
                ("ValidationException", 400),
                ("InvalidStateException", 400),
                ("InvalidCiphertextException", 400),
                ("InvalidKeyUsageException", 400),
                ("AuthenticationFailedException", 401),
                ("AccessDeniedException", 403),
                ("KeyNotFoundException", 404),
                ("InvalidUriPathException", 404),
                ("ThrottlingException", 429),
                ("UnsupportedOperationException", 501),
                ("DependencyTimeoutException", 503),
                ("InternalException", 500),
            ]
        );
    }

    #[test]
    fn message_is_printable_ascii_and_short() {
        let e = XksError::new(
            ErrorName::Validation,
            format!("bad\n\u{e9}{}", "x".repeat(600)),
        );
        let body: serde_json::Value = serde_json::from_slice(&e.body()).expect("json");
        let m = body["errorMessage"].as_str().expect("message");
        assert!(m.len() < 512);
        assert!(m.starts_with("bad??x"));
        assert_eq!(body["errorName"], "ValidationException");
        let empty = XksError::new(ErrorName::Internal, "");
        assert_eq!(empty.body(), br#"{"errorName":"InternalException"}"#);
    }
}
