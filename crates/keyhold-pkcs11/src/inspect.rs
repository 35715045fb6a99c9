//! Read-only looks at a token: a health probe that changes nothing, and a
//! listing of the objects the user can see.

use cryptoki::context::Function;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::SessionState;

use crate::error::{ck, Pkcs11Error};
use crate::token::Token;

/// One object on the token, as [`Token::list_objects`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectSummary {
    /// `CKA_CLASS`, as cryptoki prints it (e.g. `CKO_SECRET_KEY`).
    pub class: String,
    /// `CKA_LABEL` (lossy UTF-8; empty when the object has none).
    pub label: String,
}

impl Token {
    /// A health probe that leaves the token as it was: the token is present,
    /// initialised, not in an error state, its user PIN is set and not
    /// locked (`C_GetTokenInfo`), the pooled session is logged in as the user
    /// (`C_GetSessionInfo`), and an object search answers (`C_FindObjects`
    /// for the configured health-check key label; finding nothing is fine).
    ///
    /// A lost login is recovered (log in again) and the probe retried once,
    /// like any other operation. Fails with the token's `CKR_*`, or with
    /// [`Pkcs11Error::HealthCheck`] naming the flag that is wrong.
    pub fn probe(&self) -> Result<(), Pkcs11Error> {
        let label = self.inner.config.health_key_label.clone();
        self.run(true, |s| {
            let state = s
                .get_session_info()
                .map_err(ck("C_GetSessionInfo"))?
                .session_state();
            if !matches!(state, SessionState::RwUser | SessionState::RoUser) {
                // The application's login was lost: reported as the token
                // would, so `run` logs in again and retries.
                return Err(ck("C_GetSessionInfo")(CkError::Pkcs11(
                    RvError::UserNotLoggedIn,
                    Function::GetSessionInfo,
                )));
            }
            let (ctx, _) = self.inner.module.ctx();
            let info = crate::module::token_info(&ctx, self.slot()?)?;
            if !info.token_initialized() {
                return Err(Pkcs11Error::HealthCheck("token not initialised"));
            }
            if info.error_state() {
                return Err(Pkcs11Error::HealthCheck("token reports an error state"));
            }
            if !info.user_pin_initialized() {
                return Err(Pkcs11Error::HealthCheck("user PIN not initialised"));
            }
            if info.user_pin_locked() {
                return Err(Pkcs11Error::HealthCheck("user PIN locked"));
            }
            let template = [
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Token(true),
                Attribute::Label(label.as_bytes().to_vec()),
            ];
            s.find_objects(&template).map_err(ck("C_FindObjects"))?;
            Ok(())
        })
    }

    /// Every token object the logged-in user can see (public and private),
    /// with its class and label, sorted. For tests and diagnostics: on a
    /// large HSM this reads every object's attributes.
    pub fn list_objects(&self) -> Result<Vec<ObjectSummary>, Pkcs11Error> {
        self.run(true, |s| {
            let handles = s
                .find_objects(&[Attribute::Token(true)])
                .map_err(ck("C_FindObjects"))?;
            let mut out = Vec::with_capacity(handles.len());
            for handle in handles {
                let attrs = s
                    .get_attributes(handle, &[AttributeType::Class, AttributeType::Label])
                    .map_err(ck("C_GetAttributeValue"))?;
                let mut summary = ObjectSummary {
                    class: String::new(),
                    label: String::new(),
                };
                for a in attrs {
                    match a {
                        Attribute::Class(c) => summary.class = c.to_string(),
                        Attribute::Label(l) => {
                            summary.label = String::from_utf8_lossy(&l).into_owned()
                        }
                        _ => {}
                    }
                }
                out.push(summary);
            }
            out.sort();
            Ok(out)
        })
    }
}
