//! Domain errors. A failure of a KMS operation is either one of the exceptions the KMS model
//! (or the awsJson protocol) defines, typed by the generated [`Exception`] enum and carrying
//! AWS's message where AWS publishes one, or an internal error whose cause stays in the log.
//! The server maps them to wire errors in exactly one place; a misspelt exception does not
//! compile.

use keyhold_kms_model::Exception;

use crate::ports::StoreError;

/// A failure of a KMS operation.
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    /// An exception the caller sees, with its message (empty when AWS sends none).
    #[error("{message}")]
    Exception {
        /// Which exception.
        exception: Exception,
        /// The message written for the caller.
        message: String,
    },
    /// `KMSInternalException`; the cause stays in the log, never on the wire.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl KmsError {
    /// `exception` with `message`.
    pub fn new(exception: Exception, message: String) -> Self {
        KmsError::Exception { exception, message }
    }

    /// The exception the caller sees (`KMSInternalException` for internal errors).
    pub fn exception(&self) -> Exception {
        match self {
            KmsError::Exception { exception, .. } => *exception,
            KmsError::Internal(_) => Exception::KMSInternal,
        }
    }

    /// The AWS exception shape name.
    pub fn exception_name(&self) -> &'static str {
        self.exception().name()
    }

    /// Whether this is `exception` (never true of an internal error unless `KMSInternal` is
    /// asked for).
    pub fn is(&self, exception: Exception) -> bool {
        self.exception() == exception
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
