//! The twelve `errorName`s of the XKS Proxy API v1 with their HTTP status codes (spec
//! §"Error codes"). This is the one table of the API's errors: the proxy answers with these
//! names and the KMS-side client classifies a proxy's answer by them, so neither side writes
//! an error name as a string.

/// An `errorName` the spec defines, answered as `{"errorName", "errorMessage"}` with the
/// HTTP status [`ErrorName::status`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// 501: not implemented, or input above the proxy's limits.
    UnsupportedOperation,
    /// 503: the key manager timed out.
    DependencyTimeout,
    /// 500: anything else.
    Internal,
}

impl ErrorName {
    /// Every error name, in the spec's table order.
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

    /// The name an `errorName` on the wire spells, compared exactly (case-sensitive, no
    /// trimming); `None` for a name the spec does not define.
    pub fn from_wire(error_name: &str) -> Option<ErrorName> {
        ErrorName::ALL
            .into_iter()
            .find(|name| name.as_str() == error_name)
    }
}

impl std::fmt::Display for ErrorName {
    /// The wire name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's table (XKS Proxy API v1, "Error codes"), written out independently of the
    /// code under test.
    const SPEC: [(&str, u16); 12] = [
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
    ];

    #[test]
    fn every_name_has_the_spec_wire_name_and_status() {
        let table: Vec<(&str, u16)> = ErrorName::ALL
            .iter()
            .map(|n| (n.as_str(), n.status()))
            .collect();
        assert_eq!(table, SPEC);
    }

    #[test]
    fn from_wire_round_trips_every_name() {
        for name in ErrorName::ALL {
            assert_eq!(ErrorName::from_wire(name.as_str()), Some(name));
            assert_eq!(name.to_string(), name.as_str());
        }
        for (wire, status) in SPEC {
            let name = ErrorName::from_wire(wire).expect("a spec name");
            assert_eq!((name.as_str(), name.status()), (wire, status));
        }
    }

    #[test]
    fn from_wire_rejects_names_the_spec_does_not_define() {
        for wire in [
            "",
            "Validation",
            "validationexception",
            "VALIDATIONEXCEPTION",
            " ValidationException",
            "ValidationException ",
            "TeapotException",
            "MethodNotAllowed",
        ] {
            assert_eq!(ErrorName::from_wire(wire), None, "{wire:?}");
        }
    }

    #[test]
    fn all_lists_each_name_once() {
        // Twelve distinct entries in a twelve-element array: with twelve variants (the
        // matches above are exhaustive), every name is listed.
        let distinct: std::collections::HashSet<ErrorName> = ErrorName::ALL.into_iter().collect();
        assert_eq!(distinct.len(), ErrorName::ALL.len());
    }
}
