//! What the proxy adds around the key manager's AES-GCM: the spec's AAD construction,
//! `ciphertextMetadata` versioning, and the ciphertext data integrity value (CDIV).

use sha2::{Digest, Sha256};

/// `ciphertextMetadata` of everything this proxy encrypts: one byte naming the scheme.
///
/// Version 1: AES-256-GCM, 12-byte IV from the OS CSPRNG, 16-byte tag, key-manager AAD built
/// by [`key_manager_aad`]. A later scheme gets a new byte; decrypt dispatches on it.
pub const METADATA_V1: [u8; 1] = [1];

/// Largest `ciphertextMetadata` the spec allows (bytes before Base64).
pub const MAX_METADATA_LEN: usize = 20;

/// The AAD given to the key manager: `be16(len(aad)) || aad || u8(len(md)) || md`, so the
/// metadata can never be shifted into the caller's AAD or the other way round.
///
/// Returns `None` when the AAD is longer than 65535 bytes or the metadata longer than 255
/// (callers enforce lower limits first).
pub fn key_manager_aad(aad: &[u8], metadata: &[u8]) -> Option<Vec<u8>> {
    let aad_len = u16::try_from(aad.len()).ok()?;
    let md_len = u8::try_from(metadata.len()).ok()?;
    let mut out = Vec::with_capacity(3 + aad.len() + metadata.len());
    out.extend_from_slice(&aad_len.to_be_bytes());
    out.extend_from_slice(aad);
    out.push(md_len);
    out.extend_from_slice(metadata);
    Some(out)
}

/// The CDIV of spec Appendix C: `SHA-256(aad || ciphertextMetadata || iv || ciphertext || tag)`
/// over the decoded values, absent fields empty, no lengths.
pub fn cdiv(aad: &[u8], metadata: &[u8], iv: &[u8], ciphertext: &[u8], tag: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [aad, metadata, iv, ciphertext, tag] {
        h.update(part);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;

    #[test]
    fn spec_cdiv_worked_example() {
        // Spec Appendix C: the five fields are 33 + 13 + 12 + 12 + 16 = 86 bytes.
        let b64 = |s: &str| STANDARD.decode(s).expect("valid base64");
        let aad = b64("cHJvamVjdD1uaWxlLGRlcGFydG1lbnQ9bWFya2V0aW5n");
        let md = b64("a2V5X3ZlcnNpb249MQ==");
        let iv = b64("HMrlRw85cAJUd5Ax");
        let ct = b64("ghxkK1txeDNn3q8Y");
        let tag = b64("vBxN2ncH1oEkR8WVXpmyYQ==");
        assert_eq!(aad.len() + md.len() + iv.len() + ct.len() + tag.len(), 86);
        let got = STANDARD.encode(cdiv(&aad, &md, &iv, &ct, &tag));
        assert_eq!(got, "qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc=");
    }

    #[test]
    fn aad_construction_separates_fields() {
        assert_eq!(
            key_manager_aad(b"ab", b"\x01").expect("small"),
            [0, 2, b'a', b'b', 1, 1]
        );
        assert_eq!(key_manager_aad(b"", b"").expect("small"), [0, 0, 0]);
        // Moving a byte from the metadata into the AAD changes the result.
        assert_ne!(
            key_manager_aad(b"ab\x01", b""),
            key_manager_aad(b"ab", b"\x01")
        );
        assert!(key_manager_aad(&vec![0; 65536], b"").is_none());
        assert!(key_manager_aad(b"", &[0; 256]).is_none());
    }
}
