//! Configuration and PIN handling.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

/// A PKCS#11 PIN. Wiped from memory on drop and never printed, so it can sit
/// in configuration structs that get logged with `{:?}`.
#[derive(Clone)]
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// Wraps a PIN.
    pub fn new(pin: impl Into<String>) -> Self {
        Pin(Zeroizing::new(pin.into()))
    }

    /// The PIN for cryptoki, which keeps it in its own zeroizing wrapper for
    /// the duration of one call.
    pub(crate) fn auth(&self) -> AuthPin {
        AuthPin::new(self.0.as_str().to_owned())
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

impl From<&str> for Pin {
    fn from(s: &str) -> Self {
        Pin::new(s)
    }
}

/// How to reach one token.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    /// Path of the vendor's PKCS#11 shared library
    /// (e.g. `/usr/lib/softhsm/libsofthsm2.so`).
    pub module_path: PathBuf,
    /// `CKA_LABEL` of the token (the slot is found by it, because slot
    /// numbers change when tokens are added or re-initialised).
    pub token_label: String,
    /// The user (crypto user, `kmsuser` for CloudHSM) PIN.
    pub user_pin: Pin,
    /// Number of sessions kept open; concurrent operations beyond this wait.
    pub pool_size: usize,
    /// How long an operation waits for a free session before
    /// [`crate::Pkcs11Error::PoolExhausted`].
    pub checkout_timeout: Duration,
    /// Label of the AES key [`crate::Token::health_check`] creates on demand
    /// and round-trips through.
    pub health_key_label: String,
    /// Keep a session-object copy of each key used and run operations on it, checking the
    /// token's original at most this often (the key-handle cache keeps the copy). A key
    /// destroyed or changed in the token by someone else is then seen within this interval
    /// instead of at once. `None` (the default) uses the token objects themselves.
    pub session_key_copies: Option<Duration>,
}

impl TokenConfig {
    /// A configuration with a pool of 4 sessions, a 5 s checkout timeout,
    /// the health-check key `keyhold-health-check` and no session copies of keys.
    pub fn new(
        module_path: impl Into<PathBuf>,
        token_label: impl Into<String>,
        user_pin: Pin,
    ) -> Self {
        TokenConfig {
            module_path: module_path.into(),
            token_label: token_label.into(),
            user_pin,
            pool_size: 4,
            checkout_timeout: Duration::from_secs(5),
            health_key_label: "keyhold-health-check".into(),
            session_key_copies: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_is_not_printed() {
        let c = TokenConfig::new("/x.so", "t", Pin::new("secret-1234"));
        let s = format!("{c:?}");
        assert!(!s.contains("secret-1234"), "{s}");
        assert!(s.contains("redacted"));
    }
}
