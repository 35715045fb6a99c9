//! The ciphertext-blob format Keyhold returns from `Encrypt` and `GenerateDataKey`.
//!
//! A blob is opaque to callers but self-describing to Keyhold: it names the KMS key and the key
//! material that made it, so `Decrypt` needs no `KeyId`. The header is authenticated as
//! associated data together with the encryption context, so changing any byte of the header,
//! the context, the IV or the ciphertext makes decryption fail.
//!
//! Layout (version 1):
//! ```text
//! magic "KH" | version 0x01 | kind u8 | account u8-len str | region u8-len str
//! | key_id u8-len str | material_id u8-len str | iv u8-len bytes
//! [kind 2 only: xks_iv u8-len bytes | xks_tag u8-len bytes | xks_metadata u8-len bytes]
//! | ciphertext (rest)
//! ```
//!
//! Kind 1 ([`BlobKind::KeyholdAesGcm`]): `ciphertext` is the AES-GCM ciphertext and tag.
//! Kind 2 ([`BlobKind::XksDouble`], keys in external key stores): the inner layer is the same
//! Keyhold AES-GCM (its IV in `iv`), and `ciphertext` is what the XKS proxy's Encrypt made of
//! the inner ciphertext and tag; the proxy's IV, tag and `ciphertextMetadata` are embedded
//! ([`XksLayer`]) so Decrypt can hand them back verbatim.
//! Kind 3 ([`BlobKind::CloudHsmAesGcm`], keys in AWS CloudHSM key stores): laid out as kind 1,
//! but the AES-GCM ran inside the HSM under the backing key labelled with the KMS key ARN
//! (`material_id` is an opaque id of that backing key; its IV is the HSM's).

use std::collections::BTreeMap;

/// Magic bytes at the start of every Keyhold ciphertext blob.
const MAGIC: &[u8; 2] = b"KH";
/// Current format version.
const VERSION: u8 = 1;

/// How the payload of a blob was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobKind {
    /// AES-256-GCM under key material Keyhold holds (wrapped by its root key).
    KeyholdAesGcm,
    /// Double encryption for a key in an external key store: Keyhold AES-256-GCM, then the
    /// XKS proxy's AES-GCM under the external key.
    XksDouble,
    /// AES-256-GCM inside an AWS CloudHSM-style cluster under the key's backing key.
    CloudHsmAesGcm,
}

impl BlobKind {
    fn to_byte(self) -> u8 {
        match self {
            BlobKind::KeyholdAesGcm => 1,
            BlobKind::XksDouble => 2,
            BlobKind::CloudHsmAesGcm => 3,
        }
    }
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(BlobKind::KeyholdAesGcm),
            2 => Some(BlobKind::XksDouble),
            3 => Some(BlobKind::CloudHsmAesGcm),
            _ => None,
        }
    }
}

/// Why a byte string is not a Keyhold ciphertext blob.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlobError {
    /// Wrong magic or version.
    #[error("not a Keyhold ciphertext blob")]
    NotABlob,
    /// Ends before a field does.
    #[error("ciphertext blob is truncated")]
    Truncated,
    /// A text field is not UTF-8 or a field is out of range.
    #[error("ciphertext blob field {0} is malformed")]
    Malformed(&'static str),
}

/// A parsed (or to-be-serialised) ciphertext blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiphertextBlob {
    /// How the payload was made.
    pub kind: BlobKind,
    /// Account of the KMS key.
    pub account_id: String,
    /// Region of the KMS key.
    pub region: String,
    /// Id of the KMS key.
    pub key_id: String,
    /// Id of the key material within the key.
    pub material_id: String,
    /// AES-GCM IV.
    pub iv: Vec<u8>,
    /// Kind 1: ciphertext followed by the 16-byte tag. Kind 2: the proxy's ciphertext.
    pub ciphertext: Vec<u8>,
    /// Kind 2 only: the XKS proxy's outer-layer fields.
    pub xks: Option<XksLayer>,
}

/// The fields of an XKS proxy's Encrypt answer that Decrypt must send back.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct XksLayer {
    /// `initializationVector` (12 or 16 bytes).
    pub iv: Vec<u8>,
    /// `authenticationTag` (16 bytes).
    pub tag: Vec<u8>,
    /// `ciphertextMetadata` (0–20 bytes).
    pub metadata: Vec<u8>,
}

impl CiphertextBlob {
    /// A blob for Keyhold-held AES-GCM; the payload fields are filled by the caller after
    /// sealing with [`CiphertextBlob::header`] as associated data.
    pub fn new_keyhold(account_id: &str, region: &str, key_id: &str, material_id: &str) -> Self {
        Self {
            kind: BlobKind::KeyholdAesGcm,
            account_id: account_id.to_string(),
            region: region.to_string(),
            key_id: key_id.to_string(),
            material_id: material_id.to_string(),
            iv: Vec::new(),
            ciphertext: Vec::new(),
            xks: None,
        }
    }

    /// A blob for a key in an external key store: [`BlobKind::XksDouble`]; the caller fills
    /// `iv`, `ciphertext` and `xks`.
    pub fn new_xks(account_id: &str, region: &str, key_id: &str, material_id: &str) -> Self {
        Self {
            kind: BlobKind::XksDouble,
            ..Self::new_keyhold(account_id, region, key_id, material_id)
        }
    }

    /// A blob for a key in an AWS CloudHSM key store: [`BlobKind::CloudHsmAesGcm`]; the
    /// caller fills `iv` and `ciphertext` (ciphertext and tag) from the HSM.
    pub fn new_cloudhsm(account_id: &str, region: &str, key_id: &str, material_id: &str) -> Self {
        Self {
            kind: BlobKind::CloudHsmAesGcm,
            ..Self::new_keyhold(account_id, region, key_id, material_id)
        }
    }

    /// The header bytes (everything before the IV). Authenticated as associated data.
    pub fn header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(self.kind.to_byte());
        for s in [
            &self.account_id,
            &self.region,
            &self.key_id,
            &self.material_id,
        ] {
            push_short(&mut out, s.as_bytes());
        }
        out
    }

    /// Serialises the blob.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.header();
        push_short(&mut out, &self.iv);
        if self.kind == BlobKind::XksDouble {
            let layer = self.xks.clone().unwrap_or_default();
            push_short(&mut out, &layer.iv);
            push_short(&mut out, &layer.tag);
            push_short(&mut out, &layer.metadata);
        }
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Parses a blob; never panics, whatever the input.
    pub fn parse(bytes: &[u8]) -> Result<Self, BlobError> {
        if bytes.len() < 4 || &bytes[..2] != MAGIC || bytes[2] != VERSION {
            return Err(BlobError::NotABlob);
        }
        let kind = BlobKind::from_byte(bytes[3]).ok_or(BlobError::Malformed("kind"))?;
        let mut rest = &bytes[4..];
        let account_id = take_str(&mut rest, "account")?;
        let region = take_str(&mut rest, "region")?;
        let key_id = take_str(&mut rest, "key id")?;
        let material_id = take_str(&mut rest, "material id")?;
        let iv = take_short(&mut rest)?.to_vec();
        let xks = match kind {
            BlobKind::KeyholdAesGcm | BlobKind::CloudHsmAesGcm => None,
            BlobKind::XksDouble => Some(XksLayer {
                iv: take_short(&mut rest)?.to_vec(),
                tag: take_short(&mut rest)?.to_vec(),
                metadata: take_short(&mut rest)?.to_vec(),
            }),
        };
        if rest.len() < crate::aead::TAG_LEN {
            return Err(BlobError::Truncated);
        }
        Ok(Self {
            kind,
            account_id,
            region,
            key_id,
            material_id,
            iv,
            ciphertext: rest.to_vec(),
            xks,
        })
    }
}

/// The associated data for an encryption: the blob header followed by the canonical encoding of
/// the encryption context (pairs sorted by key, each length-prefixed), so that the same context
/// in any JSON order authenticates and any other context does not.
pub fn associated_data(header: &[u8], encryption_context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = header.to_vec();
    out.extend_from_slice(&(encryption_context.len() as u32).to_be_bytes());
    for (k, v) in encryption_context {
        out.extend_from_slice(&(k.len() as u32).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

fn push_short(out: &mut Vec<u8>, field: &[u8]) {
    // Every field is far below 256 bytes (ids, Region names, IVs); truncation cannot occur for
    // values Keyhold writes, and parse() rejects what does not fit.
    let len = field.len().min(255);
    out.push(len as u8);
    out.extend_from_slice(&field[..len]);
}

fn take_short<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], BlobError> {
    let (&len, tail) = rest.split_first().ok_or(BlobError::Truncated)?;
    let len = len as usize;
    if tail.len() < len {
        return Err(BlobError::Truncated);
    }
    let (field, tail) = tail.split_at(len);
    *rest = tail;
    Ok(field)
}

fn take_str(rest: &mut &[u8], name: &'static str) -> Result<String, BlobError> {
    let field = take_short(rest)?;
    String::from_utf8(field.to_vec()).map_err(|_| BlobError::Malformed(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CiphertextBlob {
        let mut b = CiphertextBlob::new_keyhold("123456789012", "us-east-1", "k-1", "m-1");
        b.iv = vec![9; 12];
        b.ciphertext = vec![5; 20];
        b
    }

    #[test]
    fn round_trip() {
        let b = sample();
        assert_eq!(CiphertextBlob::parse(&b.to_bytes()).unwrap(), b);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = sample().to_bytes();
        // Every cut that leaves less than a tag after the IV is detectable by parsing alone;
        // longer cuts are caught by AES-GCM authentication.
        for n in 0..bytes.len() - 4 {
            assert!(CiphertextBlob::parse(&bytes[..n]).is_err(), "prefix {n}");
        }
        assert_eq!(CiphertextBlob::parse(b"garbage"), Err(BlobError::NotABlob));
    }

    #[test]
    fn xks_blob_round_trips_and_truncations_fail() {
        let mut b = CiphertextBlob::new_xks("123456789012", "us-east-1", "k-1", "m-1");
        b.iv = vec![1; 12];
        b.ciphertext = vec![2; 30];
        b.xks = Some(XksLayer {
            iv: vec![3; 16],
            tag: vec![4; 16],
            metadata: b"meta".to_vec(),
        });
        let bytes = b.to_bytes();
        assert_eq!(CiphertextBlob::parse(&bytes).unwrap(), b);
        assert_ne!(b.header(), sample().header());
        for n in 0..bytes.len() - 30 {
            assert!(CiphertextBlob::parse(&bytes[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn cloudhsm_blob_round_trips_with_its_own_header() {
        let mut b = CiphertextBlob::new_cloudhsm("123456789012", "us-east-1", "k-1", "m-1");
        b.iv = vec![7; 12];
        b.ciphertext = vec![8; 24];
        let bytes = b.to_bytes();
        assert_eq!(CiphertextBlob::parse(&bytes).unwrap(), b);
        assert_ne!(b.header(), sample().header());
    }

    #[test]
    fn context_order_does_not_matter_but_content_does() {
        let a: BTreeMap<_, _> =
            [("a".to_string(), "1".to_string()), ("b".into(), "2".into())].into();
        let b: BTreeMap<_, _> =
            [("b".to_string(), "2".to_string()), ("a".into(), "1".into())].into();
        let c: BTreeMap<_, _> = [("a".to_string(), "12".to_string())].into();
        assert_eq!(associated_data(b"h", &a), associated_data(b"h", &b));
        assert_ne!(associated_data(b"h", &a), associated_data(b"h", &c));
        // "a"="1","b"="2" must differ from "a1b"="2": lengths are encoded.
        let d: BTreeMap<_, _> = [("a1b".to_string(), "2".to_string())].into();
        assert_ne!(associated_data(b"h", &a), associated_data(b"h", &d));
    }
}
