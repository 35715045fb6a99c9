//! Exception shapes of the KMS service model.
//!
//! The pinned model states no `httpStatusCode` for KMS exceptions, so `model_status` is the
//! awsJson default: 400 for client faults and 500 for server faults (`"fault": true`).
//! Per-operation error lists are [`Operation::errors`](crate::Operation::errors).

pub use keyhold_model_runtime::{ExceptionInfo, Fault};

pub use crate::generated::exceptions::EXCEPTIONS;

/// Looks up an exception shape by exact name.
pub fn find(name: &str) -> Option<&'static ExceptionInfo> {
    EXCEPTIONS.iter().find(|e| e.name == name)
}
