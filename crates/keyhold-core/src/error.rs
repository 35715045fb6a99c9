//! Domain errors. Each variant is one AWS KMS exception; the message is AWS's wording where
//! AWS publishes it. The server maps them to wire errors in exactly one place and never needs
//! to look inside; causes (storage, crypto) are kept for the log.

use crate::ports::StoreError;

/// A failure of a KMS operation, named after the AWS exception it becomes.
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    /// `NotFoundException`.
    #[error("{0}")]
    NotFound(String),
    /// `DisabledException`.
    #[error("{0}")]
    Disabled(String),
    /// `KMSInvalidStateException`.
    #[error("{0}")]
    InvalidState(String),
    /// `InvalidCiphertextException`.
    #[error("{0}")]
    InvalidCiphertext(String),
    /// `IncorrectKeyException`.
    #[error("{0}")]
    IncorrectKey(String),
    /// `InvalidKeyUsageException`.
    #[error("{0}")]
    InvalidKeyUsage(String),
    /// `InvalidArnException`.
    #[error("{0}")]
    InvalidArn(String),
    /// `InvalidMarkerException`.
    #[error("{0}")]
    InvalidMarker(String),
    /// `ValidationException` raised by domain rules (not by the model's constraints).
    #[error("{0}")]
    Validation(String),
    /// `UnsupportedOperationException`.
    #[error("{0}")]
    UnsupportedOperation(String),
    /// `LimitExceededException`.
    #[error("{0}")]
    LimitExceeded(String),
    /// `AlreadyExistsException`.
    #[error("{0}")]
    AlreadyExists(String),
    /// `TagException`.
    #[error("{0}")]
    Tag(String),
    /// `MalformedPolicyDocumentException`.
    #[error("{0}")]
    MalformedPolicyDocument(String),
    /// Any other modeled exception, by name (custom key store and XKS exceptions go here until
    /// they get variants of their own).
    #[error("{message}")]
    Other {
        /// The exception shape name.
        name: &'static str,
        /// The message.
        message: String,
    },
    /// `KMSInternalException`; the cause stays in the log, never on the wire.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl KmsError {
    /// The AWS exception shape name.
    pub fn exception_name(&self) -> &'static str {
        match self {
            KmsError::NotFound(_) => "NotFoundException",
            KmsError::Disabled(_) => "DisabledException",
            KmsError::InvalidState(_) => "KMSInvalidStateException",
            KmsError::InvalidCiphertext(_) => "InvalidCiphertextException",
            KmsError::IncorrectKey(_) => "IncorrectKeyException",
            KmsError::InvalidKeyUsage(_) => "InvalidKeyUsageException",
            KmsError::InvalidArn(_) => "InvalidArnException",
            KmsError::InvalidMarker(_) => "InvalidMarkerException",
            KmsError::Validation(_) => "ValidationException",
            KmsError::UnsupportedOperation(_) => "UnsupportedOperationException",
            KmsError::LimitExceeded(_) => "LimitExceededException",
            KmsError::AlreadyExists(_) => "AlreadyExistsException",
            KmsError::Tag(_) => "TagException",
            KmsError::MalformedPolicyDocument(_) => "MalformedPolicyDocumentException",
            KmsError::Other { name, .. } => name,
            KmsError::Internal(_) => "KMSInternalException",
        }
    }

    /// An internal error keeping `cause`.
    pub fn internal(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        KmsError::Internal(Box::new(cause))
    }
}

impl From<StoreError> for KmsError {
    fn from(e: StoreError) -> Self {
        KmsError::internal(e)
    }
}

/// Result of a KMS operation.
pub type KmsResult<T> = Result<T, KmsError>;
