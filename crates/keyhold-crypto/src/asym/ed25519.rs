//! Ed25519 keys: PKCS#8 private keys, pure Ed25519 and Ed25519ph (RFC 8032, empty context).
//!
//! ed25519-dalek takes the Ed25519ph pre-hash as a SHA-512 hasher it finalizes itself. The
//! pre-hash PH(M) = SHA-512(M) is at hand instead (a DIGEST message, or the digest of a RAW
//! one), so [`GivenSha512`] stands in for that hasher: a [`Digest`](sha2::Digest) whose
//! output is exactly the 64 bytes fed to it.

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, KeypairBytes};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::RngCore;
use sha2::digest::consts::U64;
use sha2::digest::{FixedOutput, HashMarker, Output, OutputSizeUser, Update};
use zeroize::{Zeroize, Zeroizing};

use super::{AsymError, Input};
use crate::SecretBytes;

/// Length of an Ed25519ph pre-hash (SHA-512).
const PREHASH_LEN: usize = 64;

/// A stand-in for a SHA-512 hasher that already holds a known digest: its output is the first
/// 64 bytes fed to it (zero-padded if fewer were fed; callers feed exactly 64). Used only to
/// hand PH(M) = SHA-512(M) to ed25519-dalek's pre-hashed API unchanged, never hashed again.
#[derive(Clone)]
pub(super) struct GivenSha512 {
    /// The digest.
    bytes: [u8; PREHASH_LEN],
    /// Bytes of `bytes` filled so far.
    filled: usize,
}

impl GivenSha512 {
    /// The stand-in holding `digest`.
    pub(super) fn new(digest: &[u8]) -> Self {
        Self::default().chain(digest)
    }
}

impl Default for GivenSha512 {
    fn default() -> Self {
        Self {
            bytes: [0; PREHASH_LEN],
            filled: 0,
        }
    }
}

impl Update for GivenSha512 {
    fn update(&mut self, data: &[u8]) {
        let room = &mut self.bytes[self.filled..];
        let n = room.len().min(data.len());
        room[..n].copy_from_slice(&data[..n]);
        self.filled += n;
    }
}

impl OutputSizeUser for GivenSha512 {
    type OutputSize = U64;
}

impl FixedOutput for GivenSha512 {
    fn finalize_into(self, out: &mut Output<Self>) {
        out.copy_from_slice(&self.bytes);
    }
}

impl HashMarker for GivenSha512 {}

/// The pre-hash of a prepared input (for Ed25519ph, the 64-byte SHA-512 digest, which
/// [`super::prepare`] computed for RAW messages), or the message for pure Ed25519.
fn split<'a>(input: &'a Input<'_>) -> Result<(Option<GivenSha512>, &'a [u8]), AsymError> {
    match input {
        Input::Message(m) => Ok((None, m)),
        Input::Digest(d) if d.len() == PREHASH_LEN => Ok((Some(GivenSha512::new(d)), &[])),
        Input::Digest(d) => Err(AsymError::DigestLength {
            expected: PREHASH_LEN,
            actual: d.len(),
        }),
        Input::Mu(_) => Err(AsymError::Unsupported(
            "Ed25519 does not take EXTERNAL_MU".to_string(),
        )),
    }
}

/// A new key as PKCS#8 v1 DER (RFC 8410: the 32-byte seed, no public key).
pub(super) fn generate() -> Result<SecretBytes, AsymError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(seed.as_mut());
    let mut keypair = KeypairBytes {
        secret_key: *seed,
        public_key: None,
    };
    let der = keypair.to_pkcs8_der();
    keypair.secret_key.zeroize();
    let der =
        der.map_err(|e| AsymError::InvalidPrivateKey(format!("Ed25519 key encoding failed: {e}")))?;
    Ok(SecretBytes::from_slice(der.as_bytes()))
}

/// `private_key` (PKCS#8 v1, or v2 with a matching public key) re-encoded as [`generate`]
/// writes keys: v1, the seed only.
pub(super) fn canonical(private_key: &[u8]) -> Result<SecretBytes, AsymError> {
    let mut keypair = KeypairBytes {
        secret_key: parse(private_key)?.to_bytes(),
        public_key: None,
    };
    let der = keypair.to_pkcs8_der();
    keypair.secret_key.zeroize();
    let der =
        der.map_err(|e| AsymError::InvalidPrivateKey(format!("Ed25519 key encoding failed: {e}")))?;
    Ok(SecretBytes::from_slice(der.as_bytes()))
}

/// Parses a stored PKCS#8 key (v1, or v2 with a matching public key).
pub(super) fn parse(private_key: &[u8]) -> Result<SigningKey, AsymError> {
    SigningKey::from_pkcs8_der(private_key)
        .map_err(|e| AsymError::InvalidPrivateKey(format!("not a PKCS#8 Ed25519 key: {e}")))
}

/// The SubjectPublicKeyInfo (id-Ed25519) of a stored key.
pub(super) fn public_key_der(private_key: &[u8]) -> Result<Vec<u8>, AsymError> {
    parse(private_key)?
        .verifying_key()
        .to_public_key_der()
        .map(|doc| doc.into_vec())
        .map_err(|e| {
            AsymError::InvalidPrivateKey(format!("Ed25519 public key encoding failed: {e}"))
        })
}

/// A 64-byte Ed25519 (message input) or Ed25519ph (digest input) signature.
pub(super) fn sign(private_key: &[u8], input: &Input<'_>) -> Result<Vec<u8>, AsymError> {
    let (prehash, message) = split(input)?;
    let key = parse(private_key)?;
    let signature = match prehash {
        None => key.sign(message),
        Some(ph) => key
            .sign_prehashed(ph, None)
            .map_err(|e| AsymError::InvalidPrivateKey(format!("Ed25519ph signing failed: {e}")))?,
    };
    Ok(signature.to_bytes().to_vec())
}

/// Whether `signature` is a valid Ed25519 or Ed25519ph signature (strict verification:
/// canonical encodings, no small-order keys or R).
pub(super) fn verify(
    private_key: &[u8],
    input: &Input<'_>,
    signature: &[u8],
) -> Result<bool, AsymError> {
    let (prehash, message) = split(input)?;
    let key: VerifyingKey = parse(private_key)?.verifying_key();
    let Ok(signature) = Signature::from_slice(signature) else {
        return Ok(false);
    };
    let verified = match prehash {
        None => key.verify_strict(message, &signature),
        Some(ph) => key.verify_prehashed_strict(ph, None, &signature),
    };
    Ok(verified.is_ok())
}
