//! The process-wide registry of loaded PKCS#11 modules.
//!
//! `C_Initialize` may succeed only once per library per process, and cryptoki
//! calls `C_Finalize` when the last handle to a context is dropped — which
//! would pull the module out from under every other `Token` on it. So each
//! module path is loaded once and kept for the life of the process, and all
//! users share it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::slot::Slot;

use crate::error::{ck, Pkcs11Error};

/// One loaded module and the number of times it has been (re)initialised.
pub(crate) struct Module {
    path: PathBuf,
    state: RwLock<ModuleState>,
    /// Serialises token initialisation: picking "the" free slot and
    /// initialising it must not interleave between two callers.
    pub(crate) admin_lock: Mutex<()>,
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

    /// Re-runs `C_Initialize` after the module reported
    /// `CKR_CRYPTOKI_NOT_INITIALIZED`. `seen` is the generation the failing
    /// caller used: if someone else re-initialised meanwhile, do nothing.
    pub(crate) fn reinitialize(&self, seen: u64) -> Result<(), Pkcs11Error> {
        let mut s = self.state.write().unwrap_or_else(|p| p.into_inner());
        if s.generation != seen {
            return Ok(());
        }
        tracing::warn!(module = %self.path.display(), "re-initialising PKCS#11 module");
        let fresh = load(&self.path)?;
        // The old context must never run C_Finalize (on drop of its last
        // clone): that would finalize the module we just initialised again.
        std::mem::forget(s.ctx.clone());
        s.ctx = fresh;
        s.generation += 1;
        Ok(())
    }

    /// The slot holding the initialised token labelled `label`.
    pub(crate) fn find_slot(&self, label: &str) -> Result<Slot, Pkcs11Error> {
        let (ctx, _) = self.ctx();
        let slots = ctx
            .get_slots_with_initialized_token()
            .map_err(ck("C_GetSlotList"))?;
        for slot in slots {
            let info = ctx.get_token_info(slot).map_err(ck("C_GetTokenInfo"))?;
            if info.label().trim_end() == label {
                return Ok(slot);
            }
        }
        Err(Pkcs11Error::TokenNotFound {
            label: label.to_string(),
        })
    }
}
