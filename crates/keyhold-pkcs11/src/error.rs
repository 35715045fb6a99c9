//! Typed PKCS#11 failures.
//!
//! Callers (the XKS proxy and the AWS_CLOUDHSM custom key store) must turn a
//! token's answer into a KMS error code — `CKR_PIN_INCORRECT` becomes
//! `INVALID_CREDENTIALS`, `CKR_DEVICE_ERROR` a network-style error, and so on —
//! so every token failure keeps the exact `CKR_*` value and the `C_*` function
//! that returned it, instead of collapsing into a string.

use std::path::PathBuf;

use crate::ckr_table::{ckr_name, rv_code};
use cryptoki::error::{Error as CkError, RvError};

/// A PKCS#11 return value (`CK_RV`) that Keyhold reacts to by name.
///
/// Values without a variant of their own arrive as [`Ckr::Other`] with their
/// number, so nothing the token says is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Ckr {
    /// `CKR_PIN_INCORRECT`: wrong PIN at `C_Login` or `C_SetPIN`.
    PinIncorrect,
    /// `CKR_PIN_INVALID`: the new PIN has characters the token refuses.
    PinInvalid,
    /// `CKR_PIN_LEN_RANGE`: the PIN is too short or too long for the token.
    PinLenRange,
    /// `CKR_PIN_LOCKED`: the token locked the user after too many failures.
    PinLocked,
    /// `CKR_PIN_EXPIRED`: the PIN must be changed before use.
    PinExpired,
    /// `CKR_USER_PIN_NOT_INITIALIZED`: the token has no user (C_InitPIN never ran).
    UserPinNotInitialized,
    /// `CKR_USER_ALREADY_LOGGED_IN`: this application is already logged in.
    UserAlreadyLoggedIn,
    /// `CKR_USER_ANOTHER_ALREADY_LOGGED_IN`: another user type (SO) is logged in.
    UserAnotherAlreadyLoggedIn,
    /// `CKR_USER_NOT_LOGGED_IN`: the operation needs a login the application lost.
    UserNotLoggedIn,
    /// `CKR_USER_TYPE_INVALID`.
    UserTypeInvalid,
    /// `CKR_DEVICE_ERROR`: the device (or the HSM cluster) failed.
    DeviceError,
    /// `CKR_DEVICE_MEMORY`: the token is out of memory.
    DeviceMemory,
    /// `CKR_DEVICE_REMOVED`: the token went away during the call.
    DeviceRemoved,
    /// `CKR_TOKEN_NOT_PRESENT`: the slot has no token now.
    TokenNotPresent,
    /// `CKR_SESSION_HANDLE_INVALID`: the session no longer exists.
    SessionHandleInvalid,
    /// `CKR_SESSION_CLOSED`: the session was closed during the call.
    SessionClosed,
    /// `CKR_SESSION_COUNT`: the token will not open more sessions.
    SessionCount,
    /// `CKR_CRYPTOKI_NOT_INITIALIZED`: the module was finalized under us.
    CryptokiNotInitialized,
    /// `CKR_KEY_HANDLE_INVALID`: the key handle is stale (key destroyed).
    KeyHandleInvalid,
    /// `CKR_OBJECT_HANDLE_INVALID`: the object handle is stale.
    ObjectHandleInvalid,
    /// `CKR_KEY_FUNCTION_NOT_PERMITTED`: the key's attributes forbid the use.
    KeyFunctionNotPermitted,
    /// `CKR_ENCRYPTED_DATA_INVALID`: ciphertext, IV, AAD or tag do not authenticate.
    EncryptedDataInvalid,
    /// `CKR_ENCRYPTED_DATA_LEN_RANGE`: the ciphertext has an impossible length.
    EncryptedDataLenRange,
    /// `CKR_DATA_LEN_RANGE`: the plaintext has an impossible length.
    DataLenRange,
    /// `CKR_MECHANISM_INVALID`: the token does not support the mechanism.
    MechanismInvalid,
    /// `CKR_MECHANISM_PARAM_INVALID`: bad IV length, tag length, etc.
    MechanismParamInvalid,
    /// `CKR_ATTRIBUTE_SENSITIVE`: the attribute may not be read (key material).
    AttributeSensitive,
    /// `CKR_TEMPLATE_INCONSISTENT`.
    TemplateInconsistent,
    /// `CKR_GENERAL_ERROR`: the token's catch-all failure.
    GeneralError,
    /// `CKR_FUNCTION_FAILED`.
    FunctionFailed,
    /// `CKR_TOKEN_WRITE_PROTECTED`.
    TokenWriteProtected,
    /// Any other `CK_RV`, by number.
    Other(u64),
}

impl Ckr {
    /// The numeric `CK_RV`.
    // `CK_RV` is `u64` here but `u32` on Windows.
    #[allow(clippy::useless_conversion)]
    pub fn code(&self) -> u64 {
        use cryptoki_sys as s;
        let c = match self {
            Ckr::PinIncorrect => s::CKR_PIN_INCORRECT,
            Ckr::PinInvalid => s::CKR_PIN_INVALID,
            Ckr::PinLenRange => s::CKR_PIN_LEN_RANGE,
            Ckr::PinLocked => s::CKR_PIN_LOCKED,
            Ckr::PinExpired => s::CKR_PIN_EXPIRED,
            Ckr::UserPinNotInitialized => s::CKR_USER_PIN_NOT_INITIALIZED,
            Ckr::UserAlreadyLoggedIn => s::CKR_USER_ALREADY_LOGGED_IN,
            Ckr::UserAnotherAlreadyLoggedIn => s::CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
            Ckr::UserNotLoggedIn => s::CKR_USER_NOT_LOGGED_IN,
            Ckr::UserTypeInvalid => s::CKR_USER_TYPE_INVALID,
            Ckr::DeviceError => s::CKR_DEVICE_ERROR,
            Ckr::DeviceMemory => s::CKR_DEVICE_MEMORY,
            Ckr::DeviceRemoved => s::CKR_DEVICE_REMOVED,
            Ckr::TokenNotPresent => s::CKR_TOKEN_NOT_PRESENT,
            Ckr::SessionHandleInvalid => s::CKR_SESSION_HANDLE_INVALID,
            Ckr::SessionClosed => s::CKR_SESSION_CLOSED,
            Ckr::SessionCount => s::CKR_SESSION_COUNT,
            Ckr::CryptokiNotInitialized => s::CKR_CRYPTOKI_NOT_INITIALIZED,
            Ckr::KeyHandleInvalid => s::CKR_KEY_HANDLE_INVALID,
            Ckr::ObjectHandleInvalid => s::CKR_OBJECT_HANDLE_INVALID,
            Ckr::KeyFunctionNotPermitted => s::CKR_KEY_FUNCTION_NOT_PERMITTED,
            Ckr::EncryptedDataInvalid => s::CKR_ENCRYPTED_DATA_INVALID,
            Ckr::EncryptedDataLenRange => s::CKR_ENCRYPTED_DATA_LEN_RANGE,
            Ckr::DataLenRange => s::CKR_DATA_LEN_RANGE,
            Ckr::MechanismInvalid => s::CKR_MECHANISM_INVALID,
            Ckr::MechanismParamInvalid => s::CKR_MECHANISM_PARAM_INVALID,
            Ckr::AttributeSensitive => s::CKR_ATTRIBUTE_SENSITIVE,
            Ckr::TemplateInconsistent => s::CKR_TEMPLATE_INCONSISTENT,
            Ckr::GeneralError => s::CKR_GENERAL_ERROR,
            Ckr::FunctionFailed => s::CKR_FUNCTION_FAILED,
            Ckr::TokenWriteProtected => s::CKR_TOKEN_WRITE_PROTECTED,
            Ckr::Other(code) => return *code,
        };
        u64::from(c)
    }

    /// The value from a numeric `CK_RV`.
    pub fn from_code(code: u64) -> Ckr {
        const NAMED: &[Ckr] = &[
            Ckr::PinIncorrect,
            Ckr::PinInvalid,
            Ckr::PinLenRange,
            Ckr::PinLocked,
            Ckr::PinExpired,
            Ckr::UserPinNotInitialized,
            Ckr::UserAlreadyLoggedIn,
            Ckr::UserAnotherAlreadyLoggedIn,
            Ckr::UserNotLoggedIn,
            Ckr::UserTypeInvalid,
            Ckr::DeviceError,
            Ckr::DeviceMemory,
            Ckr::DeviceRemoved,
            Ckr::TokenNotPresent,
            Ckr::SessionHandleInvalid,
            Ckr::SessionClosed,
            Ckr::SessionCount,
            Ckr::CryptokiNotInitialized,
            Ckr::KeyHandleInvalid,
            Ckr::ObjectHandleInvalid,
            Ckr::KeyFunctionNotPermitted,
            Ckr::EncryptedDataInvalid,
            Ckr::EncryptedDataLenRange,
            Ckr::DataLenRange,
            Ckr::MechanismInvalid,
            Ckr::MechanismParamInvalid,
            Ckr::AttributeSensitive,
            Ckr::TemplateInconsistent,
            Ckr::GeneralError,
            Ckr::FunctionFailed,
            Ckr::TokenWriteProtected,
        ];
        NAMED
            .iter()
            .copied()
            .find(|c| c.code() == code)
            .unwrap_or(Ckr::Other(code))
    }

    /// The `CKR_*` constant's name, or `None` for a vendor-defined value.
    pub fn name(&self) -> Option<&'static str> {
        ckr_name(self.code())
    }

    /// True when the failure is about the device, the module or the session
    /// rather than the request: the caller should report a connectivity-style
    /// error, and [`crate::Token`] drops the session and retries once.
    pub fn is_device_failure(&self) -> bool {
        matches!(
            self,
            Ckr::DeviceError
                | Ckr::DeviceRemoved
                | Ckr::DeviceMemory
                | Ckr::TokenNotPresent
                | Ckr::SessionHandleInvalid
                | Ckr::SessionClosed
                | Ckr::CryptokiNotInitialized
        )
    }

    /// True when the session handle itself is known dead: closing it again
    /// could close somebody else's session if the token reuses handle numbers.
    pub(crate) fn session_is_dead(&self) -> bool {
        matches!(
            self,
            Ckr::SessionHandleInvalid
                | Ckr::SessionClosed
                | Ckr::CryptokiNotInitialized
                | Ckr::DeviceRemoved
                | Ckr::TokenNotPresent
        )
    }
}

impl From<RvError> for Ckr {
    fn from(rv: RvError) -> Self {
        Ckr::from_code(rv_code(rv).0)
    }
}

impl std::fmt::Display for Ckr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "CKR 0x{:08X}", self.code()),
        }
    }
}

/// Every failure of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs11Error {
    /// The token answered a `C_*` call with a `CKR_*` failure.
    #[error("{function} failed: {rv}")]
    Ckr {
        /// The PKCS#11 function, e.g. `"C_Login"`.
        function: &'static str,
        /// The return value.
        rv: Ckr,
        /// The cryptoki error, kept for its own rendering.
        #[source]
        source: CkError,
    },
    /// cryptoki failed before or around the call (bad argument size, NULL
    /// function pointer, UTF-8 in token info, …).
    #[error("{function}: {source}")]
    Library {
        /// The PKCS#11 function being prepared.
        function: &'static str,
        /// The cryptoki error.
        #[source]
        source: CkError,
    },
    /// The module's shared library could not be loaded or initialised.
    #[error("cannot load PKCS#11 module {}: {cause}", path.display())]
    LibraryLoad {
        /// The module path from the configuration.
        path: PathBuf,
        /// Why (dlopen or C_Initialize failure).
        cause: String,
        /// The cryptoki error.
        #[source]
        source: CkError,
    },
    /// No slot holds an initialised token with this label.
    #[error("no token labelled {label:?}")]
    TokenNotFound {
        /// The label looked for.
        label: String,
    },
    /// No free (uninitialised) slot is left to initialise a token in.
    #[error("no free slot to initialise a token in")]
    NoFreeSlot,
    /// No secret key carries this label.
    #[error("no key labelled {label:?}")]
    KeyNotFound {
        /// The label looked for.
        label: String,
    },
    /// A key with this label exists already; labels must identify one key.
    #[error("a key labelled {label:?} already exists")]
    DuplicateKey {
        /// The label.
        label: String,
    },
    /// More than one key carries the label (made outside Keyhold); refusing
    /// to guess which one was meant.
    #[error("{count} keys are labelled {label:?}")]
    AmbiguousKey {
        /// The label.
        label: String,
        /// How many keys carry it.
        count: usize,
    },
    /// All pooled sessions stayed busy for the whole checkout timeout.
    #[error("all PKCS#11 sessions busy")]
    PoolExhausted,
    /// No session was free at once, and the caller asked not to wait
    /// ([`crate::Token::without_waiting`]); it may try again where waiting is allowed.
    #[error("no PKCS#11 session free right now")]
    SessionBusy,
    /// The token returned something malformed (e.g. a ciphertext shorter
    /// than its tag).
    #[error("unexpected answer from the token: {0}")]
    Malformed(&'static str),
    /// The caller passed an argument this crate refuses.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// The health check's round trip did not give back its plaintext.
    #[error("health check failed: {0}")]
    HealthCheck(&'static str),
    /// The SoftHSM test environment could not be prepared.
    #[error("test environment: {0}")]
    TestEnv(String),
}

impl Pkcs11Error {
    /// The `CKR_*` value, if the token answered with one.
    pub fn ckr(&self) -> Option<Ckr> {
        match self {
            Pkcs11Error::Ckr { rv, .. } => Some(*rv),
            _ => None,
        }
    }

    /// True when a decryption failed because the ciphertext, IV, AAD, tag or
    /// key do not match — what KMS reports as `InvalidCiphertextException`.
    ///
    /// The standard answer is `CKR_ENCRYPTED_DATA_INVALID`, but SoftHSMv2
    /// answers a GCM tag mismatch from `C_Decrypt` with `CKR_GENERAL_ERROR`
    /// (observed with softhsm2 2.6), so that counts too when it comes from
    /// `C_Decrypt`; a device fault in the middle of `C_Decrypt` is then
    /// indistinguishable from a bad ciphertext.
    pub fn is_authentication_failure(&self) -> bool {
        match self {
            Pkcs11Error::Ckr { function, rv, .. } => match rv {
                Ckr::EncryptedDataInvalid | Ckr::EncryptedDataLenRange => true,
                Ckr::GeneralError | Ckr::FunctionFailed => *function == "C_Decrypt",
                _ => false,
            },
            _ => false,
        }
    }

    /// True for a device, module or session failure (see
    /// [`Ckr::is_device_failure`]); also true for [`Pkcs11Error::PoolExhausted`],
    /// which callers report the same way (the HSM is unavailable right now).
    pub fn is_device_failure(&self) -> bool {
        match self {
            Pkcs11Error::Ckr { rv, .. } => rv.is_device_failure(),
            Pkcs11Error::PoolExhausted => true,
            _ => false,
        }
    }

    /// True when no session could be had: Keyhold's own pool stayed busy
    /// ([`Pkcs11Error::PoolExhausted`]) or the token refused another one
    /// (`CKR_SESSION_COUNT`: the HSM's session limit). Callers report it as
    /// a retryable overload, not as the HSM being gone.
    pub fn is_session_exhaustion(&self) -> bool {
        matches!(self, Pkcs11Error::PoolExhausted) || self.ckr() == Some(Ckr::SessionCount)
    }
}

/// Builds the `map_err` adapter that names the failing `C_*` function.
pub(crate) fn ck(function: &'static str) -> impl Fn(CkError) -> Pkcs11Error {
    move |source| match source {
        CkError::Pkcs11(rv, _) => Pkcs11Error::Ckr {
            function,
            rv: Ckr::from(rv),
            source,
        },
        other => Pkcs11Error::Library {
            function,
            source: other,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        assert_eq!(Ckr::PinIncorrect.to_string(), "CKR_PIN_INCORRECT");
        assert_eq!(Ckr::PinIncorrect.code(), 0xA0);
        assert_eq!(Ckr::from_code(0xA4), Ckr::PinLocked);
        assert_eq!(Ckr::from_code(0x30), Ckr::DeviceError);
        assert_eq!(
            Ckr::from(RvError::UserPinNotInitialized),
            Ckr::UserPinNotInitialized
        );
        assert_eq!(Ckr::from(RvError::NoEvent), Ckr::Other(0x08));
        assert_eq!(Ckr::Other(0x08).to_string(), "CKR_NO_EVENT");
        assert_eq!(Ckr::Other(0x8000_0001).to_string(), "CKR 0x80000001");
    }

    #[test]
    fn device_failures_are_classified() {
        for c in [Ckr::DeviceError, Ckr::DeviceRemoved, Ckr::TokenNotPresent] {
            assert!(c.is_device_failure(), "{c}");
        }
        for c in [Ckr::PinIncorrect, Ckr::EncryptedDataInvalid, Ckr::PinLocked] {
            assert!(!c.is_device_failure(), "{c}");
        }
    }
}
