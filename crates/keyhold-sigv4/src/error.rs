//! The one error type of this crate and its mapping onto AWS wire errors.

/// Everything that can go wrong while inspecting, verifying or signing.
///
/// Each variant corresponds to one AWS wire exception (see
/// [`SigV4Error::wire_name`]) and its `Display` text is the message AWS
/// sends for that case, so a server can put `to_string()` straight into
/// the error body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// The request carries no `Authorization` header (and is not a
    /// presigned URL). Wire: `MissingAuthenticationTokenException`.
    ///
    /// The text is the one AWS's JSON services (DynamoDB, KMS) answer with;
    /// API Gateway says "Missing Authentication Token" instead.
    #[error("Request is missing Authentication Token")]
    MissingAuthentication,

    /// The `Authorization` header (or the date it depends on) is present
    /// but unusable: a missing `Credential`/`SignedHeaders`/`Signature`
    /// parameter, a malformed credential, an unsupported algorithm, a date
    /// that is not ISO-8601 basic format, or a presigned URL (not supported
    /// here). Wire: `IncompleteSignatureException`. The payload is the full
    /// AWS-style message.
    #[error("{0}")]
    IncompleteSignature(String),

    /// The header is well formed but its content is not acceptable: `host`
    /// is not signed, the credential scope has the wrong terminator, date,
    /// region or service. Wire: `InvalidSignatureException`. The payload
    /// is the full AWS-style message.
    #[error("{0}")]
    InvalidSignature(String),

    /// The signature does not match the one recomputed from the request.
    /// Wire: `InvalidSignatureException`.
    ///
    /// The canonical request and string to sign that the server computed
    /// are carried for debug logging only; they are deliberately not part
    /// of the `Display` text (AWS KMS does not echo them either).
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. \
         Consult the service documentation for details."
    )]
    SignatureMismatch {
        /// The canonical request the server built.
        canonical_request: String,
        /// The string to sign the server built from it.
        string_to_sign: String,
    },

    /// The request time is outside the allowed clock-skew window around
    /// the server's clock. Wire: `InvalidSignatureException`.
    ///
    /// All times are ISO-8601 basic format (`20130524T000000Z`).
    #[error("{}", expired_message(self))]
    RequestExpired {
        /// The time the request says it was signed at.
        request_time: String,
        /// The bound it fell outside of (`server_time` ∓ the window).
        limit: String,
        /// The server's clock when it checked.
        server_time: String,
        /// The window as AWS prints it, e.g. `15 min.`.
        window: String,
        /// `true` when the request is from the future ("not yet current"),
        /// `false` when it is too old ("expired").
        not_yet_current: bool,
    },

    /// `sign()` was given something it cannot sign (a signed header that
    /// the request does not carry, `host` not signed, a `/` inside the
    /// region...). This is a programming error on the signing side and is
    /// never produced while verifying. Wire: `InternalFailure`.
    #[error("cannot sign request: {0}")]
    InvalidSigningInput(String),
}

impl SigV4Error {
    /// The AWS exception name (the `__type` of a JSON error body) that
    /// this error is reported as on the wire.
    pub fn wire_name(&self) -> &'static str {
        match self {
            SigV4Error::MissingAuthentication => "MissingAuthenticationTokenException",
            SigV4Error::IncompleteSignature(_) => "IncompleteSignatureException",
            SigV4Error::InvalidSignature(_)
            | SigV4Error::SignatureMismatch { .. }
            | SigV4Error::RequestExpired { .. } => "InvalidSignatureException",
            SigV4Error::InvalidSigningInput(_) => "InternalFailure",
        }
    }
}

/// Renders the two AWS clock-skew messages, e.g.
/// `Signature expired: 20130524T000000Z is now earlier than 20130524T001000Z (20130524T002500Z - 15 min.)`.
fn expired_message(err: &SigV4Error) -> String {
    match err {
        SigV4Error::RequestExpired {
            request_time,
            limit,
            server_time,
            window,
            not_yet_current: false,
        } => format!(
            "Signature expired: {request_time} is now earlier than {limit} ({server_time} - {window})"
        ),
        SigV4Error::RequestExpired {
            request_time,
            limit,
            server_time,
            window,
            not_yet_current: true,
        } => format!(
            "Signature not yet current: {request_time} is still later than {limit} ({server_time} + {window})"
        ),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names() {
        assert_eq!(
            SigV4Error::MissingAuthentication.wire_name(),
            "MissingAuthenticationTokenException"
        );
        assert_eq!(
            SigV4Error::IncompleteSignature(String::new()).wire_name(),
            "IncompleteSignatureException"
        );
        assert_eq!(
            SigV4Error::InvalidSignature(String::new()).wire_name(),
            "InvalidSignatureException"
        );
        let mismatch = SigV4Error::SignatureMismatch {
            canonical_request: "secret-free debug text".into(),
            string_to_sign: String::new(),
        };
        assert_eq!(mismatch.wire_name(), "InvalidSignatureException");
        assert!(!mismatch.to_string().contains("secret-free"));
        assert!(mismatch
            .to_string()
            .starts_with("The request signature we calculated does not match"));
    }

    #[test]
    fn expiry_messages_use_aws_wording() {
        let expired = SigV4Error::RequestExpired {
            request_time: "20130524T000000Z".into(),
            limit: "20130524T001000Z".into(),
            server_time: "20130524T002500Z".into(),
            window: "15 min.".into(),
            not_yet_current: false,
        };
        assert_eq!(
            expired.to_string(),
            "Signature expired: 20130524T000000Z is now earlier than 20130524T001000Z \
             (20130524T002500Z - 15 min.)"
        );
        assert_eq!(expired.wire_name(), "InvalidSignatureException");
        let future = SigV4Error::RequestExpired {
            request_time: "20130524T010000Z".into(),
            limit: "20130524T004000Z".into(),
            server_time: "20130524T002500Z".into(),
            window: "15 min.".into(),
            not_yet_current: true,
        };
        assert_eq!(
            future.to_string(),
            "Signature not yet current: 20130524T010000Z is still later than 20130524T004000Z \
             (20130524T002500Z + 15 min.)"
        );
    }
}
