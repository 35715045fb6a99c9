//! The hand-written runtime shared by Keyhold's generated AWS model crates
//! (`keyhold-kms-model`, `keyhold-cloudhsm-model`): `cargo xtask codegen` emits the same
//! template into each of them, and the generated code reaches these pieces through the model
//! crate's own re-exports (`crate::Blob`, `crate::validate::Shape`, ...).
//!
//! * [`validate`]: model-driven input validation with AWS (Coral) `ValidationException`
//!   wording, walking the generated constraint tables.
//! * [`Blob`] and [`Timestamp`]: the wire encodings of blobs (base64) and timestamps (epoch
//!   seconds as a JSON number).
//! * [`Fault`] and [`ExceptionInfo`]: what the generated exception tables are made of.
//! * [`ParseEnumError`]: the error of the generated enums' `FromStr`.
//! * [`dispatch`]: the protocol steps of the generated service dispatch.
//! * `oracle` (feature `oracle`, tests only): compares the two decoding paths of [`dispatch`].

#![warn(missing_docs)]

mod blob;
mod clean;
pub mod dispatch;
#[cfg(feature = "oracle")]
pub mod oracle;
mod sensitive;
mod timestamp;
pub mod validate;

pub use blob::Blob;
pub use sensitive::SensitiveString;
pub use timestamp::Timestamp;

/// Who is at fault for an exception, as declared by the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The caller's request was at fault.
    Client,
    /// The service was at fault (the model marks the shape `"fault": true`).
    Server,
}

/// One exception shape of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExceptionInfo {
    /// The shape name, which is also the `__type` on the wire, e.g. `"NotFoundException"`.
    pub name: &'static str,
    /// Client or server fault.
    pub fault: Fault,
    /// HTTP status code for the exception (the model's `httpStatusCode`, else the awsJson
    /// default: 400 for client faults, 500 for server faults).
    pub model_status: u16,
}

/// Error returned when a string is not one of an enum shape's values
/// (`FromStr`/`TryFrom<&str>` of the generated enums).
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
