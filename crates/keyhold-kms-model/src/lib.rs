//! Wire vocabulary of AWS KMS (awsJson1.1), generated from botocore's KMS service model.
//!
//! The model is pinned (botocore version and sha256) in `xtask`; regenerate with
//! `cargo xtask codegen` and check freshness with `cargo xtask codegen --check`.
//!
//! * [`Operation`]: every operation, `X-Amz-Target` lookup, input/output shape names and the
//!   exceptions each operation declares.
//! * [`validate_input`]: checks a request body against the model's constraints and renders
//!   AWS's (Coral) `ValidationException` message.
//! * [`shapes`]: serde structures for every request, response and nested structure.
//! * [`enums`]: closed enums for every enum shape.
//! * [`exceptions`]: every exception shape with its fault and HTTP status.
//! * [`Blob`] and [`Timestamp`]: the wire encodings of blobs (base64) and timestamps (epoch
//!   seconds as a JSON number).

#![warn(missing_docs)]

mod blob;
pub mod exceptions;
mod generated;
mod timestamp;
mod validate;

pub use blob::Blob;
pub use generated::operations::Operation;
pub use generated::{enums, shapes};
pub use timestamp::Timestamp;
pub use validate::{validate_input, ValidationError, Violation, ViolationValue};

/// Error returned when a string is not one of an enum shape's values
/// (`FromStr`/`TryFrom<&str>` of the types in [`enums`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseEnumError {
    /// The enum shape's name, e.g. `"KeySpec"`.
    pub enum_name: &'static str,
    /// The rejected string.
    pub value: String,
}

impl ParseEnumError {
    /// Creates the error for `value` not being a value of `enum_name`.
    pub fn new(enum_name: &'static str, value: &str) -> Self {
        ParseEnumError {
            enum_name,
            value: value.to_owned(),
        }
    }
}

impl std::fmt::Display for ParseEnumError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "'{}' is not a value of {}", self.value, self.enum_name)
    }
}

impl std::error::Error for ParseEnumError {}
