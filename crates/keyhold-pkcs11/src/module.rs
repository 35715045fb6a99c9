//! The process-wide registry of loaded PKCS#11 modules.
//!
//! `C_Initialize` may succeed only once per library per process, and cryptoki
//! calls `C_Finalize` when the last handle to a context is dropped — which
//! would pull the module out from under every other `Token` on it. So each
//! module path is loaded once and kept for the life of the process, and all
//! users share it.
//!
//! # Resetting a module
//! Some modules never recover in-process from a failure of the device behind
//! them: SoftHSMv2, whose token directory vanished and came back, answers
//! `CKR_GENERAL_ERROR` to every `C_GetSlotList` until it is finalized and
//! initialised again. [`Module::locate`] therefore resets the module
//! (`C_Finalize` + `C_Initialize`) when listing its tokens fails as a whole,
//! then looks again. A reset invalidates every session of every token on the
//! module, so it must never run while a PKCS#11 call is in flight:
//! every sequence of calls holds [`Module::enter`]'s shared guard, a reset
//! takes it exclusively, and sessions remember the generation they were
//! opened under so stale ones are forgotten, never closed. Resets are
//! single-flight (callers that saw the same generation share one) and at most
//! one per [`MIN_RESET_INTERVAL`], so a token that stays broken cannot make
//! the module thrash under load.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::slot::Slot;

use crate::error::{ck, Ckr, Pkcs11Error};

/// The shortest time between two resets of one module, except after
/// `CKR_CRYPTOKI_NOT_INITIALIZED`, which is always answered with one.
pub(crate) const MIN_RESET_INTERVAL: Duration = Duration::from_millis(250);

/// One loaded module and the number of times it has been (re)initialised.
pub(crate) struct Module {
    path: PathBuf,
    state: RwLock<ModuleState>,
    /// Serialises token initialisation: picking "the" free slot and
    /// initialising it must not interleave between two callers.
    pub(crate) admin_lock: Mutex<()>,
    /// Held for every `C_GetSlotList` and `C_InitToken` of this process: SoftHSMv2 sizes the
    /// slot list and then fills it, and aborts the process on an assertion if a token
    /// initialised meanwhile (which adds a slot) changed its length.
    slot_list: Mutex<()>,
    /// Shared by every sequence of PKCS#11 calls, exclusive for a reset (see
    /// the module docs). Never taken twice by one thread.
    calls: RwLock<()>,
    /// When the module was last reset.
    last_reset: Mutex<Option<Instant>>,
}

/// Held while PKCS#11 calls are in flight; a reset waits for all of them.
pub(crate) type CallGuard<'a> = RwLockReadGuard<'a, ()>;

/// True when a failure to list the module's tokens says the module (or the
/// device behind it) is unwell as a whole, not that one request was wrong —
/// the failures a reset may cure.
pub(crate) fn module_wide(e: &Pkcs11Error) -> bool {
    match e {
        Pkcs11Error::TokenNotFound { .. } => true,
        Pkcs11Error::Ckr { rv, .. } => {
            rv.is_device_failure() || matches!(rv, Ckr::GeneralError | Ckr::FunctionFailed)
        }
        _ => false,
    }
}

struct ModuleState {
    ctx: Pkcs11,
    generation: u64,
}

fn registry() -> &'static Mutex<HashMap<PathBuf, Arc<Module>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Arc<Module>>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The module at `path`, loading and initialising it on first use.
pub(crate) fn module(path: &Path) -> Result<Arc<Module>, Pkcs11Error> {
    let mut map = registry().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(m) = map.get(path) {
        return Ok(Arc::clone(m));
    }
    let ctx = load(path)?;
    let m = Arc::new(Module {
        path: path.to_path_buf(),
        state: RwLock::new(ModuleState { ctx, generation: 0 }),
        admin_lock: Mutex::new(()),
        slot_list: Mutex::new(()),
        calls: RwLock::new(()),
        last_reset: Mutex::new(None),
    });
    map.insert(path.to_path_buf(), Arc::clone(&m));
    Ok(m)
}

fn load(path: &Path) -> Result<Pkcs11, Pkcs11Error> {
    let ctx = Pkcs11::new(path).map_err(|source| Pkcs11Error::LibraryLoad {
        path: path.to_path_buf(),
        cause: "cannot load the shared library".into(),
        source,
    })?;
    match ctx.initialize(CInitializeArgs::OsThreads) {
        // Another component of this process initialised the library through
        // its own handle; the function list is the same, so just use it.
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(ctx),
        Err(source) => {
            // Dropping `ctx` would call C_Finalize on a library we failed to
            // initialise; harmless, but keep it simple and never finalize.
            std::mem::forget(ctx.clone());
            Err(Pkcs11Error::LibraryLoad {
                path: path.to_path_buf(),
                cause: "C_Initialize failed".into(),
                source,
            })
        }
    }
}

impl Module {
    /// The current context and its generation. Sessions remember the
    /// generation they were opened under so stale ones are never closed
    /// against a re-initialised module (handle numbers restart).
    pub(crate) fn ctx(&self) -> (Pkcs11, u64) {
        let s = self.state.read().unwrap_or_else(|p| p.into_inner());
        (s.ctx.clone(), s.generation)
    }

    /// The current generation.
    pub(crate) fn generation(&self) -> u64 {
        self.state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .generation
    }

    /// The shared guard every sequence of PKCS#11 calls holds (see the
    /// module docs). Must not be held when calling [`Module::reset`] or
    /// [`Module::locate`], and not taken twice by one thread.
    pub(crate) fn enter(&self) -> CallGuard<'_> {
        self.calls.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The shared guard if it can be had without waiting (for `Drop`, which
    /// may run while its thread already holds it).
    pub(crate) fn try_enter(&self) -> Option<CallGuard<'_>> {
        self.calls.try_read().ok()
    }

    /// Finalizes and initialises the module again, once every call in flight
    /// has finished. `seen` is the generation the failing caller used: if
    /// someone else reset meanwhile, or (unless `forced`) the last reset was
    /// less than [`MIN_RESET_INTERVAL`] ago, nothing happens. Callers compare
    /// [`Module::generation`] afterwards to know whether a retry makes sense.
    pub(crate) fn reset(&self, seen: u64, forced: bool) -> Result<(), Pkcs11Error> {
        let _all = self.calls.write().unwrap_or_else(|p| p.into_inner());
        let mut s = self.state.write().unwrap_or_else(|p| p.into_inner());
        if s.generation != seen {
            return Ok(());
        }
        let mut last = self.last_reset.lock().unwrap_or_else(|p| p.into_inner());
        if !forced && last.is_some_and(|t| t.elapsed() < MIN_RESET_INTERVAL) {
            return Ok(());
        }
        tracing::warn!(module = %self.path.display(), generation = s.generation, "resetting PKCS#11 module (C_Finalize, C_Initialize)");
        finalize(&self.path);
        let fresh = load(&self.path)?;
        // The old context must never run C_Finalize (on drop of its last
        // clone): that would finalize the module we just initialised again.
        std::mem::forget(s.ctx.clone());
        s.ctx = fresh;
        s.generation += 1;
        *last = Some(Instant::now());
        Ok(())
    }

    /// Finds the token labelled `label` and returns its slot with the call
    /// guard held. When listing tokens fails as a whole
    /// ([`module_wide`]), the module is reset once and searched again: this
    /// is how a token that vanished and came back is found without a restart.
    pub(crate) fn locate(&self, label: &str) -> Result<(CallGuard<'_>, Slot), Pkcs11Error> {
        let seen = self.generation();
        let guard = self.enter();
        let err = match self.find_slot(label) {
            Ok(slot) => return Ok((guard, slot)),
            Err(e) if module_wide(&e) => e,
            Err(e) => return Err(e),
        };
        drop(guard);
        tracing::warn!(module = %self.path.display(), token = label, error = %err, "cannot list the token; resetting the module");
        self.reset(seen, false)?;
        let guard = self.enter();
        let slot = self.find_slot(label)?;
        Ok((guard, slot))
    }

    /// The slots with a token present (`C_GetSlotList`); never while a token is initialised.
    pub(crate) fn slots_with_token(&self, ctx: &Pkcs11) -> Result<Vec<Slot>, Pkcs11Error> {
        let _list = self.lock_slot_list();
        ctx.get_slots_with_token().map_err(ck("C_GetSlotList"))
    }

    /// Keeps `C_GetSlotList` out while the holder initialises a token (`C_InitToken`).
    pub(crate) fn lock_slot_list(&self) -> std::sync::MutexGuard<'_, ()> {
        self.slot_list.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The slot holding the initialised token labelled `label`. The caller
    /// holds [`Module::enter`]'s guard.
    ///
    /// A slot whose token cannot be described does not hide the one asked for: it is
    /// skipped, and its error is returned only when no slot holds `label` (so a module whose
    /// tokens all fail still reads as unwell, and is reset by [`Module::locate`]).
    pub(crate) fn find_slot(&self, label: &str) -> Result<Slot, Pkcs11Error> {
        let (ctx, _) = self.ctx();
        let slots = self.slots_with_token(&ctx)?;
        let mut unreadable = None;
        for slot in slots {
            match token_info(&ctx, slot) {
                Ok(info) if info.token_initialized() && info.label().trim_end() == label => {
                    return Ok(slot)
                }
                Ok(_) => {}
                Err(e) => unreadable = Some(e),
            }
        }
        Err(unreadable.unwrap_or_else(|| Pkcs11Error::TokenNotFound {
            label: label.to_string(),
        }))
    }
}

/// How often [`token_info`] asks before giving up on a slot.
const TOKEN_INFO_ATTEMPTS: u32 = 4;

/// `C_GetTokenInfo`, asked again after a short pause when it answers `CKR_GENERAL_ERROR`.
///
/// SoftHSMv2 reads the token's file for every `C_GetTokenInfo` and fails with
/// `CKR_GENERAL_ERROR` if another thread of the same process is rewriting that file at that
/// moment (a failed login updating the PIN counters, `C_SetPIN`, a new object): its file
/// locks are per process, so they do not keep our own threads apart. The next read finds the
/// settled file. A failure that lasts (a token directory that vanished) is returned.
pub(crate) fn token_info(
    ctx: &Pkcs11,
    slot: Slot,
) -> Result<cryptoki::slot::TokenInfo, Pkcs11Error> {
    let mut attempt = 1;
    loop {
        match ctx.get_token_info(slot) {
            Ok(info) => return Ok(info),
            Err(CkError::Pkcs11(RvError::GeneralError, _)) if attempt < TOKEN_INFO_ATTEMPTS => {
                std::thread::sleep(Duration::from_millis(u64::from(attempt)));
                attempt += 1;
            }
            Err(e) => return Err(ck("C_GetTokenInfo")(e)),
        }
    }
}

/// Calls `C_Finalize` on the library at `path` through a handle of our own:
/// cryptoki only finalizes when its last context is dropped, and Keyhold
/// never drops one (see [`Module::reset`]). Goes through the function list,
/// the one entry point every module must export. The result is ignored: a
/// module that was not initialised answers `CKR_CRYPTOKI_NOT_INITIALIZED`,
/// which is the state we want anyway.
fn finalize(path: &Path) {
    // SAFETY: loading the same PKCS#11 library again only bumps the dynamic
    // loader's reference count. `C_GetFunctionList` fills in a pointer to the
    // module's static function list, checked for null before use, and
    // `C_Finalize` with a null argument is the call PKCS#11 defines. The
    // caller holds the exclusive call guard, so no other thread of ours is
    // inside the library.
    unsafe {
        let lib = match cryptoki_sys::Pkcs11::new(path) {
            Ok(lib) => lib,
            Err(e) => {
                tracing::warn!(module = %path.display(), error = %e, "cannot load the module to finalize it");
                return;
            }
        };
        let Ok(get_list) = &lib.C_GetFunctionList else {
            tracing::warn!(module = %path.display(), "module exports no C_GetFunctionList");
            return;
        };
        let mut list: cryptoki_sys::CK_FUNCTION_LIST_PTR = std::ptr::null_mut();
        let rv = get_list(&mut list);
        if rv != cryptoki_sys::CKR_OK || list.is_null() {
            tracing::warn!(module = %path.display(), rv, "C_GetFunctionList failed");
            return;
        }
        if let Some(c_finalize) = (*list).C_Finalize {
            let rv = c_finalize(std::ptr::null_mut());
            tracing::debug!(module = %path.display(), rv, "C_Finalize");
        }
    }
}
