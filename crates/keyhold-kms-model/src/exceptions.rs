//! Exception shapes of the KMS service model.
//!
//! The pinned model states no `httpStatusCode` for KMS exceptions, so `model_status` is the
//! awsJson default: 400 for client faults and 500 for server faults (`"fault": true`).
//! Per-operation error lists are [`Operation::errors`](crate::Operation::errors).

/// Who is at fault for an exception, as declared by the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The caller's request was at fault.
    Client,
    /// The service was at fault (the model marks the shape `"fault": true`).
    Server,
}

/// One exception shape of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExceptionInfo {
    /// The shape name, which is also the `__type` on the wire, e.g. `"NotFoundException"`.
    pub name: &'static str,
    /// Client or server fault.
    pub fault: Fault,
    /// HTTP status code for the exception (see the module docs).
    pub model_status: u16,
}

pub use crate::generated::exceptions::EXCEPTIONS;

/// Looks up an exception shape by exact name.
pub fn find(name: &str) -> Option<&'static ExceptionInfo> {
    EXCEPTIONS.iter().find(|e| e.name == name)
}
