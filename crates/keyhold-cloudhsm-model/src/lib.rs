//! Wire vocabulary of AWS CloudHSM v2 (`BaldrApiService`, awsJson1.1), generated from
//! botocore's `cloudhsmv2` 2017-04-28 service model by the same generator and template as
//! `keyhold-kms-model`.
//!
//! The model is pinned (botocore version and sha256) in `xtask`; regenerate with
//! `cargo xtask codegen` and check freshness with `cargo xtask codegen --check`.
//!
//! * [`Operation`]: every operation, `X-Amz-Target` lookup ([`Operation::from_target`]),
//!   input/output shape names and the exceptions each operation declares.
//! * [`validate_input`]: checks a request body against the model's constraints and renders
//!   AWS's (Coral) `ValidationException` message.
//! * [`shapes`]: serde structures for every request, response and nested structure.
//! * [`enums`]: closed enums for every enum shape.
//! * [`exceptions`]: every exception shape with its fault and HTTP status; [`Exception`]: every
//!   error the service answers (modeled and common), typed.
//! * [`service`]: the service contract, [`service::CloudHsmService`] (one method per operation) and
//!   [`service::dispatch`].
//!
//! The hand-written runtime pieces ([`Blob`], [`Timestamp`], [`ParseEnumError`], the
//! validator) come from `keyhold-model-runtime`.

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
