//! The `blob` wire type.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A KMS `blob`: raw bytes, standard base64 (with padding) on the wire.
///
/// `Debug` prints only the length, never the contents (blobs carry plaintext and key material),
/// and the bytes are zeroized when the blob is dropped.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Blob(pub Vec<u8>);

impl Blob {
    /// Wraps `bytes`.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Blob(bytes.into())
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Unwraps the bytes (the caller becomes responsible for wiping them).
    pub fn into_inner(mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `true` when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for Blob {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob(<{} bytes>)", self.0.len())
    }
}

impl From<Vec<u8>> for Blob {
    fn from(v: Vec<u8>) -> Self {
        Blob(v)
    }
}

impl From<&[u8]> for Blob {
    fn from(v: &[u8]) -> Self {
        Blob(v.to_vec())
    }
}

impl AsRef<[u8]> for Blob {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for Blob {
    /// The base64 text is as secret as the bytes: it is built in a buffer wiped afterwards.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let encoded = zeroize::Zeroizing::new(STANDARD.encode(&self.0));
        s.serialize_str(&encoded)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Blob;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a base64-encoded string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Blob, E> {
                STANDARD
                    .decode(v)
                    .map(Blob)
                    .map_err(|_| E::custom("invalid base64"))
            }
            /// An owned string (from a parsed `serde_json::Value`, say) holds the secret in
            /// base64: wiped once decoded.
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Blob, E> {
                let v = zeroize::Zeroizing::new(v);
                self.visit_str(&v)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_and_redacted_debug() {
        let b = Blob::new(b"secret".to_vec());
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(json, "\"c2VjcmV0\"");
        assert_eq!(serde_json::from_str::<Blob>(&json).unwrap(), b);
        assert_eq!(format!("{b:?}"), "Blob(<6 bytes>)");
        assert!(serde_json::from_str::<Blob>("\"not base64!\"").is_err());
        assert!(serde_json::from_str::<Blob>("12").is_err());
    }

    #[test]
    fn owned_strings_decode_too() {
        // serde_json::Value hands its strings over owned (visit_string).
        let v = serde_json::Value::String("c2VjcmV0".into());
        assert_eq!(
            serde_json::from_value::<Blob>(v).unwrap().as_bytes(),
            b"secret"
        );
        let bad = serde_json::Value::String("not base64!".into());
        assert!(serde_json::from_value::<Blob>(bad).is_err());
    }
}
