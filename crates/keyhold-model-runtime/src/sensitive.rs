//! The `string` wire type for members the model marks `"sensitive": true` (passwords, proxy
//! credentials).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A string the model marks sensitive. On the wire it is an ordinary JSON string; in memory it
/// is zeroized when dropped, and `Debug` never shows it, so a logged request shape cannot leak a
/// password or a secret access key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SensitiveString(String);

impl SensitiveString {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret text; callers decide where it may go.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Unwraps the text (the caller becomes responsible for wiping it).
    pub fn into_inner(mut self) -> String {
        std::mem::take(&mut self.0)
    }
}

impl Drop for SensitiveString {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// Read access as `&str`, so code that needs the value (to wrap it with the root key, to sign
/// with it) reads naturally; what the type prevents is accidental printing.
impl std::ops::Deref for SensitiveString {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SensitiveString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SensitiveString(<redacted>)")
    }
}

impl From<String> for SensitiveString {
    fn from(v: String) -> Self {
        Self(v)
    }
}

impl From<&str> for SensitiveString {
    fn from(v: &str) -> Self {
        Self(v.to_owned())
    }
}

impl Serialize for SensitiveString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SensitiveString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_and_serde_is_a_plain_string() {
        let s = SensitiveString::from("kmsPswd1");
        assert_eq!(format!("{s:?}"), "SensitiveString(<redacted>)");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"kmsPswd1\"");
        let back: SensitiveString = serde_json::from_str("\"kmsPswd1\"").unwrap();
        assert_eq!(back.expose(), "kmsPswd1");
    }
}
