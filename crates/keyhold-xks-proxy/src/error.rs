//! Error answers of the proxy. The twelve error names and their HTTP statuses are the XKS
//! API's vocabulary and live in `keyhold-xks-wire` ([`ErrorName`]), shared with the KMS-side
//! client; they are re-exported here so `crate::error::ErrorName` names the same type.

use keyhold_xks_wire::ErrorBody;
pub use keyhold_xks_wire::ErrorName;

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
        let body = ErrorBody::new(self.name, (!message.is_empty()).then_some(message));
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
