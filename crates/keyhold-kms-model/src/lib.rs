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
//! * [`exceptions`]: every exception shape with its fault and HTTP status; [`Exception`]: every
//!   error the service answers (modeled and common), typed.
//! * [`service`]: the service contract, [`service::KmsService`] (one method per operation) and
//!   [`service::dispatch`].
//! * [`Blob`] and [`Timestamp`]: the wire encodings of blobs (base64) and timestamps (epoch
//!   seconds as a JSON number).

//!
//! The hand-written runtime pieces (validator, [`Blob`], [`Timestamp`], [`ParseEnumError`],
//! exception types) live in `keyhold-model-runtime`, shared with `keyhold-cloudhsm-model`.

#![warn(missing_docs)]

pub mod exceptions;
mod generated;
mod validate;

pub use generated::exceptions::Exception;
pub use generated::operations::Operation;
pub use generated::{enums, service, shapes};
pub use keyhold_model_runtime::dispatch::{
    BodyError, DecodeError, DispatchError, NoOutput, OutputWriter,
};
pub use keyhold_model_runtime::{Blob, ParseEnumError, SensitiveString, Timestamp};
pub use validate::{input_shape, validate_input, ValidationError, Violation, ViolationValue};
