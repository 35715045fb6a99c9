//! Finding a key by label and keeping its handle: the cached handle (see [`crate::handles`]),
//! or a session copy of the key when the token is configured for them, or a look-up.

use std::time::Instant;

use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use crate::error::{ck, Ckr, Pkcs11Error};
use crate::handles::{is_stale_handle, Origin};
use crate::token::Token;

impl Token {
    /// Runs `op` on `s` with the handle of the key labelled `label`: the
    /// cached one, or one looked up now (and cached). When the token refuses
    /// a cached handle (`CKR_OBJECT_HANDLE_INVALID`, `CKR_KEY_HANDLE_INVALID`:
    /// the key was destroyed, perhaps re-created under the same label, or
    /// the module forgot its handles), the handle is evicted and the key
    /// looked up again, once. The caller holds the call guard (inside
    /// [`Token::run`]), so the module generation cannot move meanwhile.
    pub(crate) fn with_key<T>(
        &self,
        s: &Session,
        label: &str,
        op: impl Fn(ObjectHandle) -> Result<T, Pkcs11Error>,
    ) -> Result<T, Pkcs11Error> {
        let cache = &self.inner.handles;
        let generation = self.inner.module.generation();
        if let Some(entry) = cache.entry(label, generation) {
            let handle = entry.handle;
            let current = match entry.origin {
                Some(origin) => self.original_unchanged(s, label, handle, origin)?,
                None => true,
            };
            if current {
                match op(handle) {
                    Err(e) if is_stale_handle(&e) => {
                        tracing::debug!(token = %self.inner.config.token_label, error = %e, "cached key handle refused; looking the key up again");
                        cache.evict(label, Some(handle));
                    }
                    other => return other,
                }
            }
        }
        let ticket = cache.ticket(generation);
        let handle = find_key(s, label)?;
        if self.inner.config.session_key_copies.is_none() {
            cache.put(label, handle, ticket);
            return op(handle);
        }
        let (copy, origin) = copy_key(s, handle)?;
        if cache.put_copy(label, copy, origin, ticket) {
            return op(copy);
        }
        // The cache was cleared meanwhile (a logout, a recovery): use the copy this once.
        let out = op(copy);
        if origin.is_some() {
            destroy_copy(s, copy);
        }
        out
    }

    /// Whether the token object behind the session copy `copy` still exists with the usage
    /// it had, checked at most once per [`TokenConfig::session_key_copies`] interval. When it
    /// does not (gone, or its usage changed), the copy is destroyed and forgotten, and false
    /// sends the caller to look the key up again.
    fn original_unchanged(
        &self,
        s: &Session,
        label: &str,
        copy: ObjectHandle,
        origin: Origin<ObjectHandle>,
    ) -> Result<bool, Pkcs11Error> {
        let interval = self.inner.config.session_key_copies.unwrap_or_default();
        let now = Instant::now();
        if now.saturating_duration_since(origin.checked) < interval {
            return Ok(true);
        }
        match key_usage(s, origin.handle) {
            Ok(usage) if usage == origin.usage => {
                self.inner.handles.checked(label, copy, now);
                return Ok(true);
            }
            Ok(_) => {}
            Err(e) if is_stale_handle(&e) => {}
            Err(e) => return Err(e),
        }
        tracing::debug!(token = %self.inner.config.token_label, label, "key changed or gone in the token; dropping its session copy");
        if self.inner.handles.evict(label, Some(copy)).is_some() {
            destroy_copy(s, copy);
        }
        Ok(false)
    }

    /// Remembers `handle` as the key labelled `label` (just created).
    /// With session copies, nothing is kept: the first operation makes the copy.
    pub(crate) fn remember_key(&self, label: &str, handle: ObjectHandle) {
        if self.inner.config.session_key_copies.is_some() {
            return;
        }
        let cache = &self.inner.handles;
        cache.put(label, handle, cache.ticket(self.inner.module.generation()));
    }

    /// Forgets the cached handle of the key labelled `label`, so that the
    /// next operation looks it up in the token again. For callers that learn
    /// of a change made outside this `Token` (a configuration reload, a key
    /// destroyed by another application); a handle the token refuses is
    /// forgotten without this.
    pub fn forget_key(&self, label: &str) {
        self.inner.handles.evict(label, None);
    }

    /// Forgets the cached handle of `label`'s key, and destroys it if it is a session copy.
    pub(crate) fn forget_key_in(&self, s: &Session, label: &str) {
        if let Some(copy) = self.inner.handles.evict(label, None).and_then(|e| e.copy()) {
            destroy_copy(s, copy);
        }
    }

    /// Forgets every cached key handle (see [`Token::forget_key`]).
    pub fn forget_key_handles(&self) {
        self.inner.handles.clear();
    }

    /// Key handles cached right now (for tests and metrics).
    pub fn cached_key_handles(&self) -> usize {
        self.inner.handles.len()
    }
}

/// A session-object copy of the token object `key` and what it was copied from. A module
/// that cannot copy (`C_CopyObject` refused: not supported, `CKA_COPYABLE` false) gets the
/// token object itself, with no origin; a device failure is an error.
fn copy_key(
    s: &Session,
    key: ObjectHandle,
) -> Result<(ObjectHandle, Option<Origin<ObjectHandle>>), Pkcs11Error> {
    let usage = key_usage(s, key)?;
    match s.copy_object(key, &[Attribute::Token(false)]) {
        Ok(copy) => Ok((
            copy,
            Some(Origin {
                handle: key,
                usage,
                checked: Instant::now(),
            }),
        )),
        Err(e) => {
            let e = ck("C_CopyObject")(e);
            if e.is_device_failure() || e.ckr() == Some(Ckr::UserNotLoggedIn) {
                return Err(e);
            }
            tracing::debug!(error = %e, "no session copy of the key; using the token object");
            Ok((key, None))
        }
    }
}

/// Destroys a session copy; a failure only leaves it to die with its session.
fn destroy_copy(s: &Session, copy: ObjectHandle) {
    if let Err(e) = s.destroy_object(copy) {
        tracing::debug!(error = %e, "session copy of a key not destroyed");
    }
}

/// A key's `CKA_ENCRYPT` and `CKA_DECRYPT`.
fn key_usage(s: &Session, key: ObjectHandle) -> Result<(bool, bool), Pkcs11Error> {
    let attrs = s
        .get_attributes(key, &[AttributeType::Encrypt, AttributeType::Decrypt])
        .map_err(ck("C_GetAttributeValue"))?;
    Ok((
        bool_attr(&attrs, AttributeType::Encrypt).unwrap_or(false),
        bool_attr(&attrs, AttributeType::Decrypt).unwrap_or(false),
    ))
}

/// The secret key labelled `label`, if exactly one exists.
pub(crate) fn find_key(s: &Session, label: &str) -> Result<ObjectHandle, Pkcs11Error> {
    let found = find_keys(s, label)?;
    match found.as_slice() {
        [] => Err(Pkcs11Error::KeyNotFound {
            label: label.to_string(),
        }),
        [one] => Ok(*one),
        many => Err(Pkcs11Error::AmbiguousKey {
            label: label.to_string(),
            count: many.len(),
        }),
    }
}

/// All persistent secret keys labelled `label`.
pub(crate) fn find_keys(s: &Session, label: &str) -> Result<Vec<ObjectHandle>, Pkcs11Error> {
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::Token(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    s.find_objects(&template).map_err(ck("C_FindObjects"))
}

/// Reads one boolean attribute the token may refuse to reveal.
pub(crate) fn bool_attr(attrs: &[Attribute], t: AttributeType) -> Option<bool> {
    attrs.iter().find_map(|a| match (a, t) {
        (Attribute::Encrypt(v), AttributeType::Encrypt)
        | (Attribute::Decrypt(v), AttributeType::Decrypt)
        | (Attribute::Extractable(v), AttributeType::Extractable)
        | (Attribute::Sensitive(v), AttributeType::Sensitive) => Some(*v),
        _ => None,
    })
}
