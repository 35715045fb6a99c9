//! The table of PKCS#11 return values: cryptoki turns a `CK_RV` into its own
//! `RvError` and drops the number, so this maps it back to the number and the
//! `CKR_*` name that operators look up in vendor documentation.
//!
//! Generated once from the PKCS#11 constant list; every row is just `name, value`.
//!
//! `CK_RV` is `c_ulong`: `u64` here, `u32` on Windows, hence the casts that
//! are no-ops on Linux.
#![allow(clippy::unnecessary_cast, clippy::useless_conversion)]

use cryptoki::error::RvError;
use cryptoki_sys as sys;

/// The numeric `CK_RV` and `CKR_*` name of a cryptoki return value.
pub(crate) fn rv_code(rv: RvError) -> (u64, &'static str) {
    let (code, name) = match rv {
        RvError::Cancel => (sys::CKR_CANCEL, "CKR_CANCEL"),
        RvError::HostMemory => (sys::CKR_HOST_MEMORY, "CKR_HOST_MEMORY"),
        RvError::SlotIdInvalid => (sys::CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID"),
        RvError::GeneralError => (sys::CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"),
        RvError::FunctionFailed => (sys::CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"),
        RvError::ArgumentsBad => (sys::CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"),
        RvError::NoEvent => (sys::CKR_NO_EVENT, "CKR_NO_EVENT"),
        RvError::NeedToCreateThreads => (
            sys::CKR_NEED_TO_CREATE_THREADS,
            "CKR_NEED_TO_CREATE_THREADS",
        ),
        RvError::CantLock => (sys::CKR_CANT_LOCK, "CKR_CANT_LOCK"),
        RvError::AttributeReadOnly => (sys::CKR_ATTRIBUTE_READ_ONLY, "CKR_ATTRIBUTE_READ_ONLY"),
        RvError::AttributeSensitive => (sys::CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE"),
        RvError::AttributeTypeInvalid => (
            sys::CKR_ATTRIBUTE_TYPE_INVALID,
            "CKR_ATTRIBUTE_TYPE_INVALID",
        ),
        RvError::AttributeValueInvalid => (
            sys::CKR_ATTRIBUTE_VALUE_INVALID,
            "CKR_ATTRIBUTE_VALUE_INVALID",
        ),
        RvError::ActionProhibited => (sys::CKR_ACTION_PROHIBITED, "CKR_ACTION_PROHIBITED"),
        RvError::DataInvalid => (sys::CKR_DATA_INVALID, "CKR_DATA_INVALID"),
        RvError::DataLenRange => (sys::CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE"),
        RvError::DeviceError => (sys::CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"),
        RvError::DeviceMemory => (sys::CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY"),
        RvError::DeviceRemoved => (sys::CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED"),
        RvError::EncryptedDataInvalid => (
            sys::CKR_ENCRYPTED_DATA_INVALID,
            "CKR_ENCRYPTED_DATA_INVALID",
        ),
        RvError::EncryptedDataLenRange => (
            sys::CKR_ENCRYPTED_DATA_LEN_RANGE,
            "CKR_ENCRYPTED_DATA_LEN_RANGE",
        ),
        RvError::FunctionCanceled => (sys::CKR_FUNCTION_CANCELED, "CKR_FUNCTION_CANCELED"),
        RvError::FunctionNotParallel => {
            (sys::CKR_FUNCTION_NOT_PARALLEL, "CKR_FUNCTION_NOT_PARALLEL")
        }
        RvError::FunctionNotSupported => (
            sys::CKR_FUNCTION_NOT_SUPPORTED,
            "CKR_FUNCTION_NOT_SUPPORTED",
        ),
        RvError::CurveNotSupported => (sys::CKR_CURVE_NOT_SUPPORTED, "CKR_CURVE_NOT_SUPPORTED"),
        RvError::KeyHandleInvalid => (sys::CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"),
        RvError::KeySizeRange => (sys::CKR_KEY_SIZE_RANGE, "CKR_KEY_SIZE_RANGE"),
        RvError::KeyTypeInconsistent => {
            (sys::CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT")
        }
        RvError::KeyNotNeeded => (sys::CKR_KEY_NOT_NEEDED, "CKR_KEY_NOT_NEEDED"),
        RvError::KeyChanged => (sys::CKR_KEY_CHANGED, "CKR_KEY_CHANGED"),
        RvError::KeyNeeded => (sys::CKR_KEY_NEEDED, "CKR_KEY_NEEDED"),
        RvError::KeyIndigestible => (sys::CKR_KEY_INDIGESTIBLE, "CKR_KEY_INDIGESTIBLE"),
        RvError::KeyFunctionNotPermitted => (
            sys::CKR_KEY_FUNCTION_NOT_PERMITTED,
            "CKR_KEY_FUNCTION_NOT_PERMITTED",
        ),
        RvError::KeyNotWrappable => (sys::CKR_KEY_NOT_WRAPPABLE, "CKR_KEY_NOT_WRAPPABLE"),
        RvError::KeyUnextractable => (sys::CKR_KEY_UNEXTRACTABLE, "CKR_KEY_UNEXTRACTABLE"),
        RvError::MechanismInvalid => (sys::CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"),
        RvError::MechanismParamInvalid => (
            sys::CKR_MECHANISM_PARAM_INVALID,
            "CKR_MECHANISM_PARAM_INVALID",
        ),
        RvError::ObjectHandleInvalid => {
            (sys::CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID")
        }
        RvError::OperationActive => (sys::CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"),
        RvError::OperationNotInitialized => (
            sys::CKR_OPERATION_NOT_INITIALIZED,
            "CKR_OPERATION_NOT_INITIALIZED",
        ),
        RvError::PinIncorrect => (sys::CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"),
        RvError::PinInvalid => (sys::CKR_PIN_INVALID, "CKR_PIN_INVALID"),
        RvError::PinLenRange => (sys::CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE"),
        RvError::PinExpired => (sys::CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED"),
        RvError::PinLocked => (sys::CKR_PIN_LOCKED, "CKR_PIN_LOCKED"),
        RvError::SessionClosed => (sys::CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED"),
        RvError::SessionCount => (sys::CKR_SESSION_COUNT, "CKR_SESSION_COUNT"),
        RvError::SessionHandleInvalid => (
            sys::CKR_SESSION_HANDLE_INVALID,
            "CKR_SESSION_HANDLE_INVALID",
        ),
        RvError::SessionParallelNotSupported => (
            sys::CKR_SESSION_PARALLEL_NOT_SUPPORTED,
            "CKR_SESSION_PARALLEL_NOT_SUPPORTED",
        ),
        RvError::SessionReadOnly => (sys::CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY"),
        RvError::SessionExists => (sys::CKR_SESSION_EXISTS, "CKR_SESSION_EXISTS"),
        RvError::SessionReadOnlyExists => (
            sys::CKR_SESSION_READ_ONLY_EXISTS,
            "CKR_SESSION_READ_ONLY_EXISTS",
        ),
        RvError::SessionReadWriteSoExists => (
            sys::CKR_SESSION_READ_WRITE_SO_EXISTS,
            "CKR_SESSION_READ_WRITE_SO_EXISTS",
        ),
        RvError::SignatureInvalid => (sys::CKR_SIGNATURE_INVALID, "CKR_SIGNATURE_INVALID"),
        RvError::SignatureLenRange => (sys::CKR_SIGNATURE_LEN_RANGE, "CKR_SIGNATURE_LEN_RANGE"),
        RvError::TemplateIncomplete => (sys::CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE"),
        RvError::TemplateInconsistent => {
            (sys::CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT")
        }
        RvError::TokenNotPresent => (sys::CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"),
        RvError::TokenNotRecognized => (sys::CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED"),
        RvError::TokenWriteProtected => {
            (sys::CKR_TOKEN_WRITE_PROTECTED, "CKR_TOKEN_WRITE_PROTECTED")
        }
        RvError::UnwrappingKeyHandleInvalid => (
            sys::CKR_UNWRAPPING_KEY_HANDLE_INVALID,
            "CKR_UNWRAPPING_KEY_HANDLE_INVALID",
        ),
        RvError::UnwrappingKeySizeRange => (
            sys::CKR_UNWRAPPING_KEY_SIZE_RANGE,
            "CKR_UNWRAPPING_KEY_SIZE_RANGE",
        ),
        RvError::UnwrappingKeyTypeInconsistent => (
            sys::CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
            "CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT",
        ),
        RvError::UserAlreadyLoggedIn => (
            sys::CKR_USER_ALREADY_LOGGED_IN,
            "CKR_USER_ALREADY_LOGGED_IN",
        ),
        RvError::UserNotLoggedIn => (sys::CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"),
        RvError::UserPinNotInitialized => (
            sys::CKR_USER_PIN_NOT_INITIALIZED,
            "CKR_USER_PIN_NOT_INITIALIZED",
        ),
        RvError::UserTypeInvalid => (sys::CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID"),
        RvError::UserAnotherAlreadyLoggedIn => (
            sys::CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
            "CKR_USER_ANOTHER_ALREADY_LOGGED_IN",
        ),
        RvError::UserTooManyTypes => (sys::CKR_USER_TOO_MANY_TYPES, "CKR_USER_TOO_MANY_TYPES"),
        RvError::WrappedKeyInvalid => (sys::CKR_WRAPPED_KEY_INVALID, "CKR_WRAPPED_KEY_INVALID"),
        RvError::WrappedKeyLenRange => {
            (sys::CKR_WRAPPED_KEY_LEN_RANGE, "CKR_WRAPPED_KEY_LEN_RANGE")
        }
        RvError::WrappingKeyHandleInvalid => (
            sys::CKR_WRAPPING_KEY_HANDLE_INVALID,
            "CKR_WRAPPING_KEY_HANDLE_INVALID",
        ),
        RvError::WrappingKeySizeRange => (
            sys::CKR_WRAPPING_KEY_SIZE_RANGE,
            "CKR_WRAPPING_KEY_SIZE_RANGE",
        ),
        RvError::WrappingKeyTypeInconsistent => (
            sys::CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
            "CKR_WRAPPING_KEY_TYPE_INCONSISTENT",
        ),
        RvError::RandomSeedNotSupported => (
            sys::CKR_RANDOM_SEED_NOT_SUPPORTED,
            "CKR_RANDOM_SEED_NOT_SUPPORTED",
        ),
        RvError::RandomNoRng => (sys::CKR_RANDOM_NO_RNG, "CKR_RANDOM_NO_RNG"),
        RvError::DomainParamsInvalid => {
            (sys::CKR_DOMAIN_PARAMS_INVALID, "CKR_DOMAIN_PARAMS_INVALID")
        }
        RvError::BufferTooSmall => (sys::CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"),
        RvError::SavedStateInvalid => (sys::CKR_SAVED_STATE_INVALID, "CKR_SAVED_STATE_INVALID"),
        RvError::InformationSensitive => {
            (sys::CKR_INFORMATION_SENSITIVE, "CKR_INFORMATION_SENSITIVE")
        }
        RvError::StateUnsaveable => (sys::CKR_STATE_UNSAVEABLE, "CKR_STATE_UNSAVEABLE"),
        RvError::CryptokiNotInitialized => (
            sys::CKR_CRYPTOKI_NOT_INITIALIZED,
            "CKR_CRYPTOKI_NOT_INITIALIZED",
        ),
        RvError::CryptokiAlreadyInitialized => (
            sys::CKR_CRYPTOKI_ALREADY_INITIALIZED,
            "CKR_CRYPTOKI_ALREADY_INITIALIZED",
        ),
        RvError::MutexBad => (sys::CKR_MUTEX_BAD, "CKR_MUTEX_BAD"),
        RvError::MutexNotLocked => (sys::CKR_MUTEX_NOT_LOCKED, "CKR_MUTEX_NOT_LOCKED"),
        RvError::NewPinMode => (sys::CKR_NEW_PIN_MODE, "CKR_NEW_PIN_MODE"),
        RvError::NextOtp => (sys::CKR_NEXT_OTP, "CKR_NEXT_OTP"),
        RvError::ExceededMaxIterations => (
            sys::CKR_EXCEEDED_MAX_ITERATIONS,
            "CKR_EXCEEDED_MAX_ITERATIONS",
        ),
        RvError::FipsSelfTestFailed => {
            (sys::CKR_FIPS_SELF_TEST_FAILED, "CKR_FIPS_SELF_TEST_FAILED")
        }
        RvError::LibraryLoadFailed => (sys::CKR_LIBRARY_LOAD_FAILED, "CKR_LIBRARY_LOAD_FAILED"),
        RvError::PinTooWeak => (sys::CKR_PIN_TOO_WEAK, "CKR_PIN_TOO_WEAK"),
        RvError::PublicKeyInvalid => (sys::CKR_PUBLIC_KEY_INVALID, "CKR_PUBLIC_KEY_INVALID"),
        RvError::FunctionRejected => (sys::CKR_FUNCTION_REJECTED, "CKR_FUNCTION_REJECTED"),
        RvError::VendorDefined => (sys::CKR_VENDOR_DEFINED, "CKR_VENDOR_DEFINED"),
    };
    (u64::from(code), name)
}

/// The `CKR_*` name of a numeric return value, if it is a standard one.
pub(crate) fn ckr_name(code: u64) -> Option<&'static str> {
    const NAMES: &[(u64, &str)] = &[
        (sys::CKR_CANCEL as u64, "CKR_CANCEL"),
        (sys::CKR_HOST_MEMORY as u64, "CKR_HOST_MEMORY"),
        (sys::CKR_SLOT_ID_INVALID as u64, "CKR_SLOT_ID_INVALID"),
        (sys::CKR_GENERAL_ERROR as u64, "CKR_GENERAL_ERROR"),
        (sys::CKR_FUNCTION_FAILED as u64, "CKR_FUNCTION_FAILED"),
        (sys::CKR_ARGUMENTS_BAD as u64, "CKR_ARGUMENTS_BAD"),
        (sys::CKR_NO_EVENT as u64, "CKR_NO_EVENT"),
        (
            sys::CKR_NEED_TO_CREATE_THREADS as u64,
            "CKR_NEED_TO_CREATE_THREADS",
        ),
        (sys::CKR_CANT_LOCK as u64, "CKR_CANT_LOCK"),
        (
            sys::CKR_ATTRIBUTE_READ_ONLY as u64,
            "CKR_ATTRIBUTE_READ_ONLY",
        ),
        (
            sys::CKR_ATTRIBUTE_SENSITIVE as u64,
            "CKR_ATTRIBUTE_SENSITIVE",
        ),
        (
            sys::CKR_ATTRIBUTE_TYPE_INVALID as u64,
            "CKR_ATTRIBUTE_TYPE_INVALID",
        ),
        (
            sys::CKR_ATTRIBUTE_VALUE_INVALID as u64,
            "CKR_ATTRIBUTE_VALUE_INVALID",
        ),
        (sys::CKR_ACTION_PROHIBITED as u64, "CKR_ACTION_PROHIBITED"),
        (sys::CKR_DATA_INVALID as u64, "CKR_DATA_INVALID"),
        (sys::CKR_DATA_LEN_RANGE as u64, "CKR_DATA_LEN_RANGE"),
        (sys::CKR_DEVICE_ERROR as u64, "CKR_DEVICE_ERROR"),
        (sys::CKR_DEVICE_MEMORY as u64, "CKR_DEVICE_MEMORY"),
        (sys::CKR_DEVICE_REMOVED as u64, "CKR_DEVICE_REMOVED"),
        (
            sys::CKR_ENCRYPTED_DATA_INVALID as u64,
            "CKR_ENCRYPTED_DATA_INVALID",
        ),
        (
            sys::CKR_ENCRYPTED_DATA_LEN_RANGE as u64,
            "CKR_ENCRYPTED_DATA_LEN_RANGE",
        ),
        (sys::CKR_FUNCTION_CANCELED as u64, "CKR_FUNCTION_CANCELED"),
        (
            sys::CKR_FUNCTION_NOT_PARALLEL as u64,
            "CKR_FUNCTION_NOT_PARALLEL",
        ),
        (
            sys::CKR_FUNCTION_NOT_SUPPORTED as u64,
            "CKR_FUNCTION_NOT_SUPPORTED",
        ),
        (
            sys::CKR_CURVE_NOT_SUPPORTED as u64,
            "CKR_CURVE_NOT_SUPPORTED",
        ),
        (sys::CKR_KEY_HANDLE_INVALID as u64, "CKR_KEY_HANDLE_INVALID"),
        (sys::CKR_KEY_SIZE_RANGE as u64, "CKR_KEY_SIZE_RANGE"),
        (
            sys::CKR_KEY_TYPE_INCONSISTENT as u64,
            "CKR_KEY_TYPE_INCONSISTENT",
        ),
        (sys::CKR_KEY_NOT_NEEDED as u64, "CKR_KEY_NOT_NEEDED"),
        (sys::CKR_KEY_CHANGED as u64, "CKR_KEY_CHANGED"),
        (sys::CKR_KEY_NEEDED as u64, "CKR_KEY_NEEDED"),
        (sys::CKR_KEY_INDIGESTIBLE as u64, "CKR_KEY_INDIGESTIBLE"),
        (
            sys::CKR_KEY_FUNCTION_NOT_PERMITTED as u64,
            "CKR_KEY_FUNCTION_NOT_PERMITTED",
        ),
        (sys::CKR_KEY_NOT_WRAPPABLE as u64, "CKR_KEY_NOT_WRAPPABLE"),
        (sys::CKR_KEY_UNEXTRACTABLE as u64, "CKR_KEY_UNEXTRACTABLE"),
        (sys::CKR_MECHANISM_INVALID as u64, "CKR_MECHANISM_INVALID"),
        (
            sys::CKR_MECHANISM_PARAM_INVALID as u64,
            "CKR_MECHANISM_PARAM_INVALID",
        ),
        (
            sys::CKR_OBJECT_HANDLE_INVALID as u64,
            "CKR_OBJECT_HANDLE_INVALID",
        ),
        (sys::CKR_OPERATION_ACTIVE as u64, "CKR_OPERATION_ACTIVE"),
        (
            sys::CKR_OPERATION_NOT_INITIALIZED as u64,
            "CKR_OPERATION_NOT_INITIALIZED",
        ),
        (sys::CKR_PIN_INCORRECT as u64, "CKR_PIN_INCORRECT"),
        (sys::CKR_PIN_INVALID as u64, "CKR_PIN_INVALID"),
        (sys::CKR_PIN_LEN_RANGE as u64, "CKR_PIN_LEN_RANGE"),
        (sys::CKR_PIN_EXPIRED as u64, "CKR_PIN_EXPIRED"),
        (sys::CKR_PIN_LOCKED as u64, "CKR_PIN_LOCKED"),
        (sys::CKR_SESSION_CLOSED as u64, "CKR_SESSION_CLOSED"),
        (sys::CKR_SESSION_COUNT as u64, "CKR_SESSION_COUNT"),
        (
            sys::CKR_SESSION_HANDLE_INVALID as u64,
            "CKR_SESSION_HANDLE_INVALID",
        ),
        (
            sys::CKR_SESSION_PARALLEL_NOT_SUPPORTED as u64,
            "CKR_SESSION_PARALLEL_NOT_SUPPORTED",
        ),
        (sys::CKR_SESSION_READ_ONLY as u64, "CKR_SESSION_READ_ONLY"),
        (sys::CKR_SESSION_EXISTS as u64, "CKR_SESSION_EXISTS"),
        (
            sys::CKR_SESSION_READ_ONLY_EXISTS as u64,
            "CKR_SESSION_READ_ONLY_EXISTS",
        ),
        (
            sys::CKR_SESSION_READ_WRITE_SO_EXISTS as u64,
            "CKR_SESSION_READ_WRITE_SO_EXISTS",
        ),
        (sys::CKR_SIGNATURE_INVALID as u64, "CKR_SIGNATURE_INVALID"),
        (
            sys::CKR_SIGNATURE_LEN_RANGE as u64,
            "CKR_SIGNATURE_LEN_RANGE",
        ),
        (
            sys::CKR_TEMPLATE_INCOMPLETE as u64,
            "CKR_TEMPLATE_INCOMPLETE",
        ),
        (
            sys::CKR_TEMPLATE_INCONSISTENT as u64,
            "CKR_TEMPLATE_INCONSISTENT",
        ),
        (sys::CKR_TOKEN_NOT_PRESENT as u64, "CKR_TOKEN_NOT_PRESENT"),
        (
            sys::CKR_TOKEN_NOT_RECOGNIZED as u64,
            "CKR_TOKEN_NOT_RECOGNIZED",
        ),
        (
            sys::CKR_TOKEN_WRITE_PROTECTED as u64,
            "CKR_TOKEN_WRITE_PROTECTED",
        ),
        (
            sys::CKR_UNWRAPPING_KEY_HANDLE_INVALID as u64,
            "CKR_UNWRAPPING_KEY_HANDLE_INVALID",
        ),
        (
            sys::CKR_UNWRAPPING_KEY_SIZE_RANGE as u64,
            "CKR_UNWRAPPING_KEY_SIZE_RANGE",
        ),
        (
            sys::CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT as u64,
            "CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT",
        ),
        (
            sys::CKR_USER_ALREADY_LOGGED_IN as u64,
            "CKR_USER_ALREADY_LOGGED_IN",
        ),
        (sys::CKR_USER_NOT_LOGGED_IN as u64, "CKR_USER_NOT_LOGGED_IN"),
        (
            sys::CKR_USER_PIN_NOT_INITIALIZED as u64,
            "CKR_USER_PIN_NOT_INITIALIZED",
        ),
        (sys::CKR_USER_TYPE_INVALID as u64, "CKR_USER_TYPE_INVALID"),
        (
            sys::CKR_USER_ANOTHER_ALREADY_LOGGED_IN as u64,
            "CKR_USER_ANOTHER_ALREADY_LOGGED_IN",
        ),
        (
            sys::CKR_USER_TOO_MANY_TYPES as u64,
            "CKR_USER_TOO_MANY_TYPES",
        ),
        (
            sys::CKR_WRAPPED_KEY_INVALID as u64,
            "CKR_WRAPPED_KEY_INVALID",
        ),
        (
            sys::CKR_WRAPPED_KEY_LEN_RANGE as u64,
            "CKR_WRAPPED_KEY_LEN_RANGE",
        ),
        (
            sys::CKR_WRAPPING_KEY_HANDLE_INVALID as u64,
            "CKR_WRAPPING_KEY_HANDLE_INVALID",
        ),
        (
            sys::CKR_WRAPPING_KEY_SIZE_RANGE as u64,
            "CKR_WRAPPING_KEY_SIZE_RANGE",
        ),
        (
            sys::CKR_WRAPPING_KEY_TYPE_INCONSISTENT as u64,
            "CKR_WRAPPING_KEY_TYPE_INCONSISTENT",
        ),
        (
            sys::CKR_RANDOM_SEED_NOT_SUPPORTED as u64,
            "CKR_RANDOM_SEED_NOT_SUPPORTED",
        ),
        (sys::CKR_RANDOM_NO_RNG as u64, "CKR_RANDOM_NO_RNG"),
        (
            sys::CKR_DOMAIN_PARAMS_INVALID as u64,
            "CKR_DOMAIN_PARAMS_INVALID",
        ),
        (sys::CKR_BUFFER_TOO_SMALL as u64, "CKR_BUFFER_TOO_SMALL"),
        (
            sys::CKR_SAVED_STATE_INVALID as u64,
            "CKR_SAVED_STATE_INVALID",
        ),
        (
            sys::CKR_INFORMATION_SENSITIVE as u64,
            "CKR_INFORMATION_SENSITIVE",
        ),
        (sys::CKR_STATE_UNSAVEABLE as u64, "CKR_STATE_UNSAVEABLE"),
        (
            sys::CKR_CRYPTOKI_NOT_INITIALIZED as u64,
            "CKR_CRYPTOKI_NOT_INITIALIZED",
        ),
        (
            sys::CKR_CRYPTOKI_ALREADY_INITIALIZED as u64,
            "CKR_CRYPTOKI_ALREADY_INITIALIZED",
        ),
        (sys::CKR_MUTEX_BAD as u64, "CKR_MUTEX_BAD"),
        (sys::CKR_MUTEX_NOT_LOCKED as u64, "CKR_MUTEX_NOT_LOCKED"),
        (sys::CKR_NEW_PIN_MODE as u64, "CKR_NEW_PIN_MODE"),
        (sys::CKR_NEXT_OTP as u64, "CKR_NEXT_OTP"),
        (
            sys::CKR_EXCEEDED_MAX_ITERATIONS as u64,
            "CKR_EXCEEDED_MAX_ITERATIONS",
        ),
        (
            sys::CKR_FIPS_SELF_TEST_FAILED as u64,
            "CKR_FIPS_SELF_TEST_FAILED",
        ),
        (
            sys::CKR_LIBRARY_LOAD_FAILED as u64,
            "CKR_LIBRARY_LOAD_FAILED",
        ),
        (sys::CKR_PIN_TOO_WEAK as u64, "CKR_PIN_TOO_WEAK"),
        (sys::CKR_PUBLIC_KEY_INVALID as u64, "CKR_PUBLIC_KEY_INVALID"),
        (sys::CKR_FUNCTION_REJECTED as u64, "CKR_FUNCTION_REJECTED"),
        (sys::CKR_VENDOR_DEFINED as u64, "CKR_VENDOR_DEFINED"),
    ];
    NAMES.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}
