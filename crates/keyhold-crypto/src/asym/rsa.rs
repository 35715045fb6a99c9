//! RSA keys: PKCS#8 private keys, RSASSA-PSS and RSASSA-PKCS1-v1_5 over a digest, and
//! RSAES-OAEP with SHA-1 or SHA-256.
//!
//! Every private-key operation uses RSA blinding, so its timing does not depend on the input.

use ::rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use ::rsa::traits::PublicKeyParts;
use ::rsa::{Oaep, Pkcs1v15Sign, Pss, RsaPrivateKey, RsaPublicKey};
use rand::rngs::OsRng;
use sha2::{Sha256, Sha384, Sha512};

use super::{AsymError, Input, OaepAlgorithm, SigningAlgorithm};
use crate::SecretBytes;

/// A new `bits`-bit RSA key (exponent 65537) as PKCS#8 DER.
pub(super) fn generate(bits: usize) -> Result<SecretBytes, AsymError> {
    let key = RsaPrivateKey::new(&mut OsRng, bits)
        .map_err(|e| AsymError::InvalidPrivateKey(format!("RSA key generation failed: {e}")))?;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| AsymError::InvalidPrivateKey(format!("RSA key encoding failed: {e}")))?;
    Ok(SecretBytes::from_slice(der.as_bytes()))
}

/// Parses a stored PKCS#8 RSA key and checks that its modulus has `bits` bits.
pub(super) fn parse(bits: usize, private_key: &[u8]) -> Result<RsaPrivateKey, AsymError> {
    let key = RsaPrivateKey::from_pkcs8_der(private_key)
        .map_err(|e| AsymError::InvalidPrivateKey(format!("not a PKCS#8 RSA key: {e}")))?;
    let actual = key.n().bits();
    if actual != bits {
        return Err(AsymError::InvalidPrivateKey(format!(
            "RSA modulus has {actual} bits, the key spec {bits}"
        )));
    }
    Ok(key)
}

/// `private_key` (PKCS#8, a consistent RSA key of `bits` bits) re-encoded the way [`generate`]
/// writes keys, so one key always has one stored form.
pub(super) fn canonical(bits: usize, private_key: &[u8]) -> Result<SecretBytes, AsymError> {
    let der = parse(bits, private_key)?
        .to_pkcs8_der()
        .map_err(|e| AsymError::InvalidPrivateKey(format!("RSA key encoding failed: {e}")))?;
    Ok(SecretBytes::from_slice(der.as_bytes()))
}

/// The SubjectPublicKeyInfo (rsaEncryption) of a stored key.
pub(super) fn public_key_der(bits: usize, private_key: &[u8]) -> Result<Vec<u8>, AsymError> {
    let key = parse(bits, private_key)?;
    spki_of(&RsaPublicKey::from(&key))
}

/// The SubjectPublicKeyInfo (rsaEncryption) of `public`.
fn spki_of(public: &RsaPublicKey) -> Result<Vec<u8>, AsymError> {
    public
        .to_public_key_der()
        .map(|doc| doc.into_vec())
        .map_err(|e| AsymError::InvalidPrivateKey(format!("RSA public key encoding failed: {e}")))
}

/// The hash of an RSA signing algorithm's padding.
#[derive(Clone, Copy)]
enum PaddingHash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// The padding and hash of an RSA signing algorithm: `(is_pss, hash)`.
fn padding_of(algorithm: SigningAlgorithm) -> Result<(bool, PaddingHash), AsymError> {
    use SigningAlgorithm as A;
    match algorithm {
        A::RsassaPssSha256 => Ok((true, PaddingHash::Sha256)),
        A::RsassaPssSha384 => Ok((true, PaddingHash::Sha384)),
        A::RsassaPssSha512 => Ok((true, PaddingHash::Sha512)),
        A::RsassaPkcs1V15Sha256 => Ok((false, PaddingHash::Sha256)),
        A::RsassaPkcs1V15Sha384 => Ok((false, PaddingHash::Sha384)),
        A::RsassaPkcs1V15Sha512 => Ok((false, PaddingHash::Sha512)),
        other => Err(AsymError::Unsupported(format!(
            "{} is not an RSA signing algorithm",
            other.aws_name()
        ))),
    }
}

/// PSS padding (MGF1 with the same hash, salt as long as the digest); blinded for signing.
fn pss(hash: PaddingHash, for_signing: bool) -> Pss {
    match (hash, for_signing) {
        (PaddingHash::Sha256, true) => Pss::new_blinded_with_salt::<Sha256>(32),
        (PaddingHash::Sha384, true) => Pss::new_blinded_with_salt::<Sha384>(48),
        (PaddingHash::Sha512, true) => Pss::new_blinded_with_salt::<Sha512>(64),
        (PaddingHash::Sha256, false) => Pss::new_with_salt::<Sha256>(32),
        (PaddingHash::Sha384, false) => Pss::new_with_salt::<Sha384>(48),
        (PaddingHash::Sha512, false) => Pss::new_with_salt::<Sha512>(64),
    }
}

/// PKCS#1 v1.5 padding with the DigestInfo prefix of `hash`.
fn pkcs1v15(hash: PaddingHash) -> Pkcs1v15Sign {
    match hash {
        PaddingHash::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
        PaddingHash::Sha384 => Pkcs1v15Sign::new::<Sha384>(),
        PaddingHash::Sha512 => Pkcs1v15Sign::new::<Sha512>(),
    }
}

/// The digest of a prepared RSA input.
fn digest<'a>(input: &'a Input<'_>) -> Result<&'a [u8], AsymError> {
    match input {
        Input::Digest(d) => Ok(d),
        _ => Err(AsymError::Unsupported(
            "RSA signs a digest of the message".to_string(),
        )),
    }
}

/// Signs the digest in `input` with `algorithm` (randomized PSS salt, blinded private-key
/// operation).
pub(super) fn sign(
    bits: usize,
    private_key: &[u8],
    algorithm: SigningAlgorithm,
    input: &Input<'_>,
) -> Result<Vec<u8>, AsymError> {
    let (is_pss, hash) = padding_of(algorithm)?;
    let digest = digest(input)?;
    let key = parse(bits, private_key)?;
    sign_digest(&key, is_pss, hash, digest)
}

/// Signs `digest` with a parsed key.
fn sign_digest(
    key: &RsaPrivateKey,
    is_pss: bool,
    hash: PaddingHash,
    digest: &[u8],
) -> Result<Vec<u8>, AsymError> {
    let signed = if is_pss {
        key.sign_with_rng(&mut OsRng, pss(hash, true), digest)
    } else {
        key.sign_with_rng(&mut OsRng, pkcs1v15(hash), digest)
    };
    signed.map_err(|e| AsymError::InvalidPrivateKey(format!("RSA signing failed: {e}")))
}

/// Whether `signature` is a valid `algorithm` signature of the digest in `input`.
pub(super) fn verify(
    bits: usize,
    private_key: &[u8],
    algorithm: SigningAlgorithm,
    input: &Input<'_>,
    signature: &[u8],
) -> Result<bool, AsymError> {
    let (is_pss, hash) = padding_of(algorithm)?;
    let digest = digest(input)?;
    let public = RsaPublicKey::from(parse(bits, private_key)?);
    let verified = if is_pss {
        public.verify(pss(hash, false), digest, signature)
    } else {
        public.verify(pkcs1v15(hash), digest, signature)
    };
    Ok(verified.is_ok())
}

/// Output length of an OAEP hash.
fn oaep_hash_len(algorithm: OaepAlgorithm) -> usize {
    match algorithm {
        OaepAlgorithm::Sha1 => 20,
        OaepAlgorithm::Sha256 => 32,
    }
}

/// OAEP padding: MGF1 with the same hash, empty label.
fn oaep(algorithm: OaepAlgorithm) -> Oaep {
    match algorithm {
        OaepAlgorithm::Sha1 => Oaep::new::<sha1::Sha1>(),
        OaepAlgorithm::Sha256 => Oaep::new::<Sha256>(),
    }
}

/// k − 2·hLen − 2 for a `bits`-bit modulus.
pub(super) fn max_plaintext(bits: usize, algorithm: OaepAlgorithm) -> usize {
    (bits / 8).saturating_sub(2 * oaep_hash_len(algorithm) + 2)
}

/// RSAES-OAEP encryption of `plaintext` under the public half of the stored key.
pub(super) fn encrypt(
    bits: usize,
    private_key: &[u8],
    algorithm: OaepAlgorithm,
    plaintext: &[u8],
) -> Result<Vec<u8>, AsymError> {
    let max = max_plaintext(bits, algorithm);
    if plaintext.len() > max {
        return Err(AsymError::PlaintextTooLong {
            max,
            actual: plaintext.len(),
        });
    }
    let public = RsaPublicKey::from(parse(bits, private_key)?);
    public
        .encrypt(&mut OsRng, oaep(algorithm), plaintext)
        .map_err(|e| AsymError::InvalidPrivateKey(format!("RSA encryption failed: {e}")))
}

/// RSAES-OAEP decryption (blinded); any failure, whatever its cause, is `DecryptFailed`.
pub(super) fn decrypt(
    bits: usize,
    private_key: &[u8],
    algorithm: OaepAlgorithm,
    ciphertext: &[u8],
) -> Result<SecretBytes, AsymError> {
    let key = parse(bits, private_key)?;
    if ciphertext.len() != key.size() {
        return Err(AsymError::DecryptFailed);
    }
    key.decrypt_blinded(&mut OsRng, oaep(algorithm), ciphertext)
        .map(SecretBytes::new)
        .map_err(|_| AsymError::DecryptFailed)
}
