//! Token administration: what an operator (or the `keyhold` CLI, or a test)
//! does once per token, outside the request path.

use std::path::Path;

use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;

use crate::config::Pin;
use crate::error::{ck, Pkcs11Error};
use crate::module::module;

/// Which slot [`init_token`] initialises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotChoice {
    /// The first slot whose token is not initialised yet (SoftHSM always
    /// keeps one such slot).
    FirstFree,
    /// This slot id. Re-initialising a token destroys all its objects.
    Id(u64),
}

/// Initialises a token (`C_InitToken` with the SO PIN) and, given a user
/// PIN, creates the user (`C_InitPIN` as SO). Returns the slot id the token
/// ends up in — SoftHSM moves a freshly initialised token to a new slot, so
/// later code should find it by label anyway.
pub fn init_token(
    module_path: &Path,
    slot: SlotChoice,
    token_label: &str,
    so_pin: &Pin,
    user_pin: Option<&Pin>,
) -> Result<u64, Pkcs11Error> {
    if token_label.is_empty() || token_label.len() > 32 {
        return Err(Pkcs11Error::InvalidArgument(
            "token label must be 1-32 bytes",
        ));
    }
    let m = module(module_path)?;
    // Two callers must not both pick "the" free slot.
    let _guard = m.admin_lock.lock().unwrap_or_else(|p| p.into_inner());
    let _calls = m.enter();
    let (ctx, _) = m.ctx();
    let target = match slot {
        SlotChoice::Id(id) => Slot::try_from(id).map_err(ck("C_InitToken"))?,
        SlotChoice::FirstFree => {
            let mut free = None;
            for s in m.slots_with_token(&ctx)? {
                let info = crate::module::token_info(&ctx, s)?;
                if !info.token_initialized() {
                    free = Some(s);
                    break;
                }
            }
            free.ok_or(Pkcs11Error::NoFreeSlot)?
        }
    };
    {
        let _list = m.lock_slot_list();
        ctx.init_token(target, &so_pin.auth(), token_label)
            .map_err(ck("C_InitToken"))?;
    }
    let slot = m.find_slot(token_label)?;
    if let Some(user_pin) = user_pin {
        let session = ctx.open_rw_session(slot).map_err(ck("C_OpenSession"))?;
        session
            .login(UserType::So, Some(&so_pin.auth()))
            .map_err(ck("C_Login"))?;
        session
            .init_pin(&user_pin.auth())
            .map_err(ck("C_InitPIN"))?;
        session.logout().map_err(ck("C_Logout"))?;
    }
    tracing::info!(
        token = token_label,
        slot = slot.id(),
        "initialised PKCS#11 token"
    );
    Ok(slot.id())
}

/// Changes the user PIN from a fresh, not-logged-in session (`C_SetPIN`
/// checks `old` itself). For a running [`crate::Token`] use
/// [`crate::Token::set_user_pin`], which also updates the PIN it logs in with.
pub fn change_user_pin(
    module_path: &Path,
    token_label: &str,
    old: &Pin,
    new: &Pin,
) -> Result<(), Pkcs11Error> {
    with_fresh_session(module_path, token_label, true, |session| {
        session
            .set_pin(&old.auth(), &new.auth())
            .map_err(ck("C_SetPIN"))
    })
}

/// Sets the user PIN as the security officer (`C_InitPIN`): creates the user on a token that
/// has none, or resets a forgotten or locked PIN.
pub fn init_user_pin(
    module_path: &Path,
    token_label: &str,
    so_pin: &Pin,
    user_pin: &Pin,
) -> Result<(), Pkcs11Error> {
    with_fresh_session(module_path, token_label, true, |session| {
        session
            .login(UserType::So, Some(&so_pin.auth()))
            .map_err(ck("C_Login"))?;
        let result = session.init_pin(&user_pin.auth()).map_err(ck("C_InitPIN"));
        let _ = session.logout();
        result
    })
}

/// Checks the user PIN with a real `C_Login` from a fresh session, then logs out.
///
/// PKCS#11 login is per process: if this process is already logged in to the token, the
/// module answers `CKR_USER_ALREADY_LOGGED_IN` without checking the PIN, which is returned
/// as an error here rather than taken as success. Callers serialise calls per token.
pub fn verify_user_pin(
    module_path: &Path,
    token_label: &str,
    user_pin: &Pin,
) -> Result<(), Pkcs11Error> {
    with_fresh_session(module_path, token_label, false, |session| {
        session
            .login(UserType::User, Some(&user_pin.auth()))
            .map_err(ck("C_Login"))?;
        session.logout().map_err(ck("C_Logout"))
    })
}

/// The mechanisms the token labelled `token_label` offers (`C_GetMechanismList` on its
/// slot), by their `CKM_*` names, sorted. For tests and diagnostics: a module may be
/// configured to offer fewer than it implements (SoftHSMv2's `slots.mechanisms`).
pub fn mechanisms(module_path: &Path, token_label: &str) -> Result<Vec<String>, Pkcs11Error> {
    let m = module(module_path)?;
    let (_calls, slot) = m.locate(token_label)?;
    let (ctx, _) = m.ctx();
    let list = ctx
        .get_mechanism_list(slot)
        .map_err(ck("C_GetMechanismList"))?;
    let mut names: Vec<String> = list.iter().map(|t| t.to_string()).collect();
    names.sort();
    Ok(names)
}

/// Runs `f` on a new session (read-write if `rw`) on the token labelled `token_label`,
/// outside any pool, holding the module's call guard throughout; the session is closed
/// before the guard is released.
fn with_fresh_session<T>(
    module_path: &Path,
    token_label: &str,
    rw: bool,
    f: impl FnOnce(&Session) -> Result<T, Pkcs11Error>,
) -> Result<T, Pkcs11Error> {
    let m = module(module_path)?;
    let (_calls, slot) = m.locate(token_label)?;
    let (ctx, _) = m.ctx();
    let session = if rw {
        ctx.open_rw_session(slot)
    } else {
        ctx.open_ro_session(slot)
    }
    .map_err(ck("C_OpenSession"))?;
    f(&session)
}
