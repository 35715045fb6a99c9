//! The PKCS#11 side: the exported `C_GetFunctionList`, the function list
//! that forwards to the real module, and the wrappers that inject faults.
//!
//! No Rust panic may unwind into the C caller: every wrapper body runs under
//! [`guarded`], which turns a panic into `CKR_GENERAL_ERROR`.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use cryptoki_sys::*;

use crate::rules::{Rules, Watcher};
use crate::{DEFAULT_MODULE, FILE_ENV, MODULE_ENV, TRACE_ENV};

/// The loaded real module and the shim's state.
struct Shim {
    /// The real module's function list (copied).
    real: CK_FUNCTION_LIST,
    /// What callers get: `real` with the intercepted entries replaced.
    list: CK_FUNCTION_LIST,
    watcher: Watcher,
    /// Sessions opened through the shim and still open, with their slot.
    sessions: Mutex<HashMap<CK_SESSION_HANDLE, CK_SLOT_ID>>,
    /// Log every intercepted call and its result to stderr
    /// ([`crate::TRACE_ENV`]).
    trace: bool,
    /// Keeps the real module loaded for the life of the process.
    _lib: libloading::Library,
}

static SHIM: OnceLock<Shim> = OnceLock::new();
static LOADING: Mutex<()> = Mutex::new(());

/// The shim, loading the real module on first use. A failed load is not
/// cached: the next call tries again.
fn shim() -> Option<&'static Shim> {
    if let Some(s) = SHIM.get() {
        return Some(s);
    }
    let _guard = LOADING.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = SHIM.get() {
        return Some(s);
    }
    match load() {
        Ok(s) => {
            let _ = SHIM.set(s);
            SHIM.get()
        }
        Err(e) => {
            eprintln!("keyhold-pkcs11-faults: {e}");
            None
        }
    }
}

fn load() -> Result<Shim, String> {
    let path = std::env::var_os(MODULE_ENV)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MODULE));
    // SAFETY: loading a PKCS#11 module runs its initialisers; that is what
    // the caller asked for by loading this shim.
    let lib = unsafe { libloading::Library::new(&path) }
        .map_err(|e| format!("cannot load the real module {}: {e}", path.display()))?;
    // SAFETY: `C_GetFunctionList` has this signature in every PKCS#11 module.
    let get: libloading::Symbol<unsafe extern "C" fn(CK_FUNCTION_LIST_PTR_PTR) -> CK_RV> =
        unsafe { lib.get(b"C_GetFunctionList\0") }
            .map_err(|e| format!("{} has no C_GetFunctionList: {e}", path.display()))?;
    let ours: unsafe extern "C" fn(CK_FUNCTION_LIST_PTR_PTR) -> CK_RV = C_GetFunctionList;
    if *get as usize == ours as usize {
        return Err(format!(
            "{MODULE_ENV} names the shim itself ({})",
            path.display()
        ));
    }
    let mut ptr: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
    // SAFETY: `ptr` is a valid out-pointer for the call.
    let rv = unsafe { get(&mut ptr) };
    if rv != CKR_OK || ptr.is_null() {
        return Err(format!(
            "C_GetFunctionList of {} failed: 0x{rv:X}",
            path.display()
        ));
    }
    // SAFETY: on success the module hands out a pointer to its function
    // list, valid while the library stays loaded (we keep it loaded). Only
    // the v2.40 part is read.
    let real: CK_FUNCTION_LIST = unsafe { *ptr };
    let mut list = real;
    // This is a v2.40 list whatever the real module's version: callers must
    // not read 3.0 entries past its end.
    list.version = CK_VERSION {
        major: 2,
        minor: 40,
    };
    list.C_GetFunctionList = Some(C_GetFunctionList);
    install(&mut list, &real);
    Ok(Shim {
        real,
        list,
        watcher: Watcher::new(std::env::var_os(FILE_ENV).map(PathBuf::from)),
        sessions: Mutex::new(HashMap::new()),
        trace: std::env::var_os(TRACE_ENV).is_some_and(|v| !v.is_empty() && v != "0"),
        _lib: lib,
    })
}

/// The PKCS#11 entry point: hands out the shim's function list.
///
/// # Safety
/// `list` must be NULL or valid for writing one pointer (the PKCS#11
/// contract of `C_GetFunctionList`).
#[no_mangle]
pub unsafe extern "C" fn C_GetFunctionList(list: CK_FUNCTION_LIST_PTR_PTR) -> CK_RV {
    let result = catch_unwind(AssertUnwindSafe(|| {
        if list.is_null() {
            return CKR_ARGUMENTS_BAD;
        }
        let Some(shim) = shim() else {
            return CKR_GENERAL_ERROR;
        };
        // SAFETY: `list` is non-NULL and the caller guarantees it is
        // writable. The pointee is a static the caller only reads (PKCS#11
        // function lists are read-only), so handing out `*mut` is sound.
        unsafe { *list = &shim.list as *const CK_FUNCTION_LIST as *mut CK_FUNCTION_LIST };
        CKR_OK
    }));
    result.unwrap_or(CKR_GENERAL_ERROR)
}

/// Calls of each intercepted function so far, failed ones included
/// ([`keyhold_pkcs11_faults_calls`]).
static CALLS: Mutex<Option<HashMap<&'static str, u64>>> = Mutex::new(None);

/// How many times the function named by `function` (a NUL-terminated
/// `C_*` name, e.g. `C_FindObjectsInit`) was called through the shim in this
/// process, faults included; 0 for a name never called (or NULL). Read by
/// [`crate::call_count`], so tests can count the PKCS#11 calls a caller makes.
///
/// # Safety
/// `function` must be NULL or point to a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn keyhold_pkcs11_faults_calls(function: *const std::ffi::c_char) -> u64 {
    let result = catch_unwind(AssertUnwindSafe(|| {
        if function.is_null() {
            return 0;
        }
        // SAFETY: non-NULL, and NUL-terminated per the contract above.
        let name = unsafe { std::ffi::CStr::from_ptr(function) };
        let Ok(name) = name.to_str() else { return 0 };
        CALLS
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(|m| m.get(name).copied())
            .unwrap_or(0)
    }));
    result.unwrap_or(0)
}

/// Runs the body of the wrapper for `function`; a panic becomes
/// `CKR_GENERAL_ERROR`. With tracing on, logs the call and its result.
/// Counts the call ([`keyhold_pkcs11_faults_calls`]).
fn guarded(function: &'static str, f: impl FnOnce(&'static Shim) -> CK_RV) -> CK_RV {
    {
        let mut calls = CALLS.lock().unwrap_or_else(|p| p.into_inner());
        *calls
            .get_or_insert_with(HashMap::new)
            .entry(function)
            .or_insert(0) += 1;
    }
    let rv = catch_unwind(AssertUnwindSafe(|| match SHIM.get() {
        Some(shim) => f(shim),
        None => CKR_CRYPTOKI_NOT_INITIALIZED,
    }))
    .unwrap_or(CKR_GENERAL_ERROR);
    if SHIM.get().is_some_and(|s| s.trace) {
        // Not `eprintln!`, which panics if stderr is gone: this runs
        // outside `catch_unwind`.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "keyhold-pkcs11-faults: {function} -> 0x{rv:X}"
        );
    }
    rv
}

impl Shim {
    fn rules(&self) -> Arc<Rules> {
        self.watcher.rules()
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<CK_SESSION_HANDLE, CK_SLOT_ID>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The blank-trimmed label of the token in `slot`, from the real module.
    fn slot_label(&self, slot: CK_SLOT_ID) -> Option<String> {
        let get = self.real.C_GetTokenInfo?;
        let mut info = CK_TOKEN_INFO::default();
        // SAFETY: `info` is a valid, writable CK_TOKEN_INFO.
        let rv = unsafe { get(slot, &mut info) };
        if rv != CKR_OK {
            return None;
        }
        let label = String::from_utf8_lossy(&info.label);
        Some(label.trim_end_matches([' ', '\0']).to_string())
    }

    /// Whether `remove_token` applies to the token in `slot`.
    fn slot_removed(&self, rules: &Rules, slot: CK_SLOT_ID) -> bool {
        rules.has_removals() && self.slot_label(slot).is_some_and(|l| rules.is_removed(&l))
    }

    /// The fault for a call on `slot`, if any.
    fn slot_fault(&self, function: &str, slot: CK_SLOT_ID) -> Option<CK_RV> {
        let rules = self.rules();
        if self.slot_removed(&rules, slot) {
            return Some(CKR_TOKEN_NOT_PRESENT);
        }
        rules.fail_code(function)
    }

    /// The fault for a call on `session`, if any.
    fn session_fault(&self, function: &str, session: CK_SESSION_HANDLE) -> Option<CK_RV> {
        let rules = self.rules();
        if rules.has_removals() {
            let slot = self.sessions().get(&session).copied();
            if slot.is_some_and(|slot| self.slot_removed(&rules, slot)) {
                return Some(CKR_DEVICE_REMOVED);
            }
        }
        rules.fail_code(function)
    }

    /// The real module's full slot list (the two-call protocol, retried if
    /// the list grows in between).
    fn real_slot_list(&self, present: CK_BBOOL) -> Result<Vec<CK_SLOT_ID>, CK_RV> {
        let get = self.real.C_GetSlotList.ok_or(CKR_FUNCTION_NOT_SUPPORTED)?;
        for _ in 0..8 {
            let mut n: CK_ULONG = 0;
            // SAFETY: a NULL list asks for the count only; `n` is writable.
            let rv = unsafe { get(present, std::ptr::null_mut(), &mut n) };
            if rv != CKR_OK {
                return Err(rv);
            }
            let mut slots: Vec<CK_SLOT_ID> = vec![0; n as usize];
            // SAFETY: `slots` has room for `n` slot ids, as `n` says.
            let rv = unsafe { get(present, slots.as_mut_ptr(), &mut n) };
            match rv {
                CKR_OK => {
                    slots.truncate(n as usize);
                    return Ok(slots);
                }
                CKR_BUFFER_TOO_SMALL => continue,
                other => return Err(other),
            }
        }
        Err(CKR_GENERAL_ERROR)
    }
}

/// Wrappers for functions whose first argument is a session handle: fault
/// check, then forward. Also generates `install_session_fns`.
macro_rules! session_fns {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        mod session_wrappers {
            #![allow(non_snake_case)]
            use super::*;
            $(
                pub(super) unsafe extern "C" fn $name(session: CK_SESSION_HANDLE $(, $arg: $ty)*) -> CK_RV {
                    guarded(stringify!($name), |shim| {
                        if let Some(rv) = shim.session_fault(stringify!($name), session) {
                            return rv;
                        }
                        match shim.real.$name {
                            // SAFETY: the caller's arguments go unchanged to
                            // the real module's function of the same type.
                            Some(f) => unsafe { f(session $(, $arg)*) },
                            None => CKR_FUNCTION_NOT_SUPPORTED,
                        }
                    })
                }
            )*
        }
        fn install_session_fns(list: &mut CK_FUNCTION_LIST, real: &CK_FUNCTION_LIST) {
            $(if real.$name.is_some() { list.$name = Some(session_wrappers::$name); })*
        }
    };
}

/// The same for functions whose first argument is a slot id.
macro_rules! slot_fns {
    ($($name:ident($($arg:ident: $ty:ty),*);)*) => {
        mod slot_wrappers {
            #![allow(non_snake_case)]
            use super::*;
            $(
                pub(super) unsafe extern "C" fn $name(slot: CK_SLOT_ID $(, $arg: $ty)*) -> CK_RV {
                    guarded(stringify!($name), |shim| {
                        if let Some(rv) = shim.slot_fault(stringify!($name), slot) {
                            return rv;
                        }
                        match shim.real.$name {
                            // SAFETY: the caller's arguments go unchanged to
                            // the real module's function of the same type.
                            Some(f) => unsafe { f(slot $(, $arg)*) },
                            None => CKR_FUNCTION_NOT_SUPPORTED,
                        }
                    })
                }
            )*
        }
        fn install_slot_fns(list: &mut CK_FUNCTION_LIST, real: &CK_FUNCTION_LIST) {
            $(if real.$name.is_some() { list.$name = Some(slot_wrappers::$name); })*
        }
    };
}

session_fns! {
    C_GetSessionInfo(info: *mut CK_SESSION_INFO);
    C_Login(user: CK_USER_TYPE, pin: *mut CK_UTF8CHAR, pin_len: CK_ULONG);
    C_Logout();
    C_InitPIN(pin: *mut CK_UTF8CHAR, pin_len: CK_ULONG);
    C_SetPIN(old: *mut CK_UTF8CHAR, old_len: CK_ULONG, new: *mut CK_UTF8CHAR, new_len: CK_ULONG);
    C_CreateObject(template: *mut CK_ATTRIBUTE, count: CK_ULONG, object: *mut CK_OBJECT_HANDLE);
    C_CopyObject(object: CK_OBJECT_HANDLE, template: *mut CK_ATTRIBUTE, count: CK_ULONG, new: *mut CK_OBJECT_HANDLE);
    C_DestroyObject(object: CK_OBJECT_HANDLE);
    C_GetAttributeValue(object: CK_OBJECT_HANDLE, template: *mut CK_ATTRIBUTE, count: CK_ULONG);
    C_SetAttributeValue(object: CK_OBJECT_HANDLE, template: *mut CK_ATTRIBUTE, count: CK_ULONG);
    C_FindObjectsInit(template: *mut CK_ATTRIBUTE, count: CK_ULONG);
    C_FindObjects(objects: *mut CK_OBJECT_HANDLE, max: CK_ULONG, found: *mut CK_ULONG);
    C_FindObjectsFinal();
    C_EncryptInit(mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE);
    C_Encrypt(data: *mut CK_BYTE, len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_EncryptUpdate(data: *mut CK_BYTE, len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_EncryptFinal(out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_DecryptInit(mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE);
    C_Decrypt(data: *mut CK_BYTE, len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_DecryptUpdate(data: *mut CK_BYTE, len: CK_ULONG, out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_DecryptFinal(out: *mut CK_BYTE, out_len: *mut CK_ULONG);
    C_SignInit(mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE);
    C_Sign(data: *mut CK_BYTE, len: CK_ULONG, sig: *mut CK_BYTE, sig_len: *mut CK_ULONG);
    C_VerifyInit(mechanism: *mut CK_MECHANISM, key: CK_OBJECT_HANDLE);
    C_Verify(data: *mut CK_BYTE, len: CK_ULONG, sig: *mut CK_BYTE, sig_len: CK_ULONG);
    C_GenerateKey(mechanism: *mut CK_MECHANISM, template: *mut CK_ATTRIBUTE, count: CK_ULONG, key: *mut CK_OBJECT_HANDLE);
    C_GenerateKeyPair(
        mechanism: *mut CK_MECHANISM,
        public_template: *mut CK_ATTRIBUTE,
        public_count: CK_ULONG,
        private_template: *mut CK_ATTRIBUTE,
        private_count: CK_ULONG,
        public_key: *mut CK_OBJECT_HANDLE,
        private_key: *mut CK_OBJECT_HANDLE
    );
    C_WrapKey(
        mechanism: *mut CK_MECHANISM,
        wrapping_key: CK_OBJECT_HANDLE,
        key: CK_OBJECT_HANDLE,
        wrapped: *mut CK_BYTE,
        wrapped_len: *mut CK_ULONG
    );
    C_UnwrapKey(
        mechanism: *mut CK_MECHANISM,
        unwrapping_key: CK_OBJECT_HANDLE,
        wrapped: *mut CK_BYTE,
        wrapped_len: CK_ULONG,
        template: *mut CK_ATTRIBUTE,
        count: CK_ULONG,
        key: *mut CK_OBJECT_HANDLE
    );
    C_DeriveKey(
        mechanism: *mut CK_MECHANISM,
        base_key: CK_OBJECT_HANDLE,
        template: *mut CK_ATTRIBUTE,
        count: CK_ULONG,
        key: *mut CK_OBJECT_HANDLE
    );
    C_SeedRandom(seed: *mut CK_BYTE, len: CK_ULONG);
    C_GenerateRandom(out: *mut CK_BYTE, len: CK_ULONG);
}

slot_fns! {
    C_GetTokenInfo(info: *mut CK_TOKEN_INFO);
    C_GetMechanismList(list: *mut CK_MECHANISM_TYPE, count: *mut CK_ULONG);
    C_GetMechanismInfo(mechanism: CK_MECHANISM_TYPE, info: *mut CK_MECHANISM_INFO);
    C_InitToken(so_pin: *mut CK_UTF8CHAR, pin_len: CK_ULONG, label: *mut CK_UTF8CHAR);
}

/// Puts every wrapper in place of the real function it wraps (functions the
/// real module lacks stay NULL).
fn install(list: &mut CK_FUNCTION_LIST, real: &CK_FUNCTION_LIST) {
    install_session_fns(list, real);
    install_slot_fns(list, real);
    if real.C_Initialize.is_some() {
        list.C_Initialize = Some(special::C_Initialize);
    }
    if real.C_Finalize.is_some() {
        list.C_Finalize = Some(special::C_Finalize);
    }
    if real.C_GetSlotList.is_some() {
        list.C_GetSlotList = Some(special::C_GetSlotList);
    }
    if real.C_GetSlotInfo.is_some() {
        list.C_GetSlotInfo = Some(special::C_GetSlotInfo);
    }
    if real.C_OpenSession.is_some() {
        list.C_OpenSession = Some(special::C_OpenSession);
    }
    if real.C_CloseSession.is_some() {
        list.C_CloseSession = Some(special::C_CloseSession);
    }
    if real.C_CloseAllSessions.is_some() {
        list.C_CloseAllSessions = Some(special::C_CloseAllSessions);
    }
}

/// Wrappers with behaviour of their own (slot lists, session accounting).
mod special {
    #![allow(non_snake_case)]
    use super::*;

    /// Forwards to the real function `$name`, or `CKR_FUNCTION_NOT_SUPPORTED`.
    macro_rules! forward {
        ($shim:expr, $name:ident($($arg:expr),*)) => {
            match $shim.real.$name {
                // SAFETY: the caller's arguments go unchanged to the real
                // module's function of the same type.
                Some(f) => unsafe { f($($arg),*) },
                None => CKR_FUNCTION_NOT_SUPPORTED,
            }
        };
    }

    pub(super) unsafe extern "C" fn C_Initialize(args: *mut std::ffi::c_void) -> CK_RV {
        guarded("C_Initialize", |shim| {
            if let Some(rv) = shim.rules().fail_code("C_Initialize") {
                return rv;
            }
            forward!(shim, C_Initialize(args))
        })
    }

    pub(super) unsafe extern "C" fn C_Finalize(reserved: *mut std::ffi::c_void) -> CK_RV {
        guarded("C_Finalize", |shim| {
            if let Some(rv) = shim.rules().fail_code("C_Finalize") {
                return rv;
            }
            let rv = forward!(shim, C_Finalize(reserved));
            if rv == CKR_OK {
                shim.sessions().clear();
            }
            rv
        })
    }

    pub(super) unsafe extern "C" fn C_GetSlotList(
        present: CK_BBOOL,
        list: *mut CK_SLOT_ID,
        count: *mut CK_ULONG,
    ) -> CK_RV {
        guarded("C_GetSlotList", |shim| {
            let rules = shim.rules();
            if let Some(rv) = rules.fail_code("C_GetSlotList") {
                return rv;
            }
            if present == CK_FALSE || !rules.has_removals() {
                return forward!(shim, C_GetSlotList(present, list, count));
            }
            if count.is_null() {
                return CKR_ARGUMENTS_BAD;
            }
            let slots = match shim.real_slot_list(present) {
                Ok(s) => s,
                Err(rv) => return rv,
            };
            let kept: Vec<CK_SLOT_ID> = slots
                .into_iter()
                .filter(|s| !shim.slot_removed(&rules, *s))
                .collect();
            let n = kept.len() as CK_ULONG;
            if list.is_null() {
                // SAFETY: `count` is non-NULL and, per PKCS#11, writable.
                unsafe { *count = n };
                return CKR_OK;
            }
            // SAFETY: `count` is non-NULL and, per PKCS#11, readable and
            // writable; it holds the capacity of `list`.
            let room = unsafe { *count };
            // SAFETY: as above.
            unsafe { *count = n };
            if room < n {
                return CKR_BUFFER_TOO_SMALL;
            }
            // SAFETY: `list` has room for `room >= n` slot ids and cannot
            // overlap our own vector.
            unsafe { std::ptr::copy_nonoverlapping(kept.as_ptr(), list, kept.len()) };
            CKR_OK
        })
    }

    pub(super) unsafe extern "C" fn C_GetSlotInfo(
        slot: CK_SLOT_ID,
        info: *mut CK_SLOT_INFO,
    ) -> CK_RV {
        guarded("C_GetSlotInfo", |shim| {
            let rules = shim.rules();
            if let Some(rv) = rules.fail_code("C_GetSlotInfo") {
                return rv;
            }
            let rv = forward!(shim, C_GetSlotInfo(slot, info));
            if rv == CKR_OK && !info.is_null() && shim.slot_removed(&rules, slot) {
                // SAFETY: the real module just filled `*info`.
                unsafe { (*info).flags &= !CKF_TOKEN_PRESENT };
            }
            rv
        })
    }

    pub(super) unsafe extern "C" fn C_OpenSession(
        slot: CK_SLOT_ID,
        flags: CK_FLAGS,
        app: *mut std::ffi::c_void,
        notify: CK_NOTIFY,
        session: *mut CK_SESSION_HANDLE,
    ) -> CK_RV {
        guarded("C_OpenSession", |shim| {
            let rules = shim.rules();
            if shim.slot_removed(&rules, slot) {
                return CKR_TOKEN_NOT_PRESENT;
            }
            if let Some(rv) = rules.fail_code("C_OpenSession") {
                return rv;
            }
            // Held across the real call so concurrent opens cannot both
            // slip under the limit.
            let mut open = shim.sessions();
            if rules
                .max_sessions()
                .is_some_and(|max| open.len() as u64 >= max)
            {
                return CKR_SESSION_COUNT;
            }
            let rv = forward!(shim, C_OpenSession(slot, flags, app, notify, session));
            if rv == CKR_OK && !session.is_null() {
                // SAFETY: the real module just wrote the new handle there.
                open.insert(unsafe { *session }, slot);
            }
            rv
        })
    }

    pub(super) unsafe extern "C" fn C_CloseSession(session: CK_SESSION_HANDLE) -> CK_RV {
        guarded("C_CloseSession", |shim| {
            // Only an explicit `fail C_CloseSession` applies: closing stays
            // possible under `fail *` and `remove_token`.
            if let Some(rv) = shim.rules().fail_code("C_CloseSession") {
                return rv;
            }
            let rv = forward!(shim, C_CloseSession(session));
            if matches!(rv, CKR_OK | CKR_SESSION_HANDLE_INVALID | CKR_SESSION_CLOSED) {
                shim.sessions().remove(&session);
            }
            rv
        })
    }

    pub(super) unsafe extern "C" fn C_CloseAllSessions(slot: CK_SLOT_ID) -> CK_RV {
        guarded("C_CloseAllSessions", |shim| {
            if let Some(rv) = shim.rules().fail_code("C_CloseAllSessions") {
                return rv;
            }
            let rv = forward!(shim, C_CloseAllSessions(slot));
            if rv == CKR_OK {
                shim.sessions().retain(|_, s| *s != slot);
            }
            rv
        })
    }
}
