//! SM2 keys (GM/T 0003-2012, GB/T 32918) as AWS KMS uses them in the China Regions:
//! PKCS#8 private keys and SubjectPublicKeyInfo public keys (id-ecPublicKey with the named
//! curve sm2p256v1, 1.2.156.10197.1.301), SM2DSA signatures, SM2PKE encryption and raw ECDH.
//!
//! - SM2DSA: for a RAW message KMS signs e = SM3(ZA || M), ZA computed with the default
//!   distinguishing ID `1234567812345678` (GM/T 0009-2012); a DIGEST message is that 32-byte
//!   e, computed by the caller (with any distinguishing ID), signed as is. Signatures are DER
//!   `SEQUENCE { r INTEGER, s INTEGER }`, what OpenSSL writes and reads.
//! - SM2PKE: C1 = kG, (x2, y2) = k·PB, t = KDF(x2 || y2, len M), C2 = M ⊕ t,
//!   C3 = SM3(x2 || M || y2), encoded as AWS takes it (the GM/T 0009 ASN.1 form OpenSSL also
//!   writes): `SEQUENCE { x1 INTEGER, y1 INTEGER, C3 OCTET STRING, C2 OCTET STRING }`.
//! - Key agreement: the x-coordinate of d·Q, as for the NIST curves.

use elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use pkcs8::der::asn1::{OctetStringRef, UintRef};
use pkcs8::der::{Decode, Encode, Header, Length, Reader, SliceReader, Tag};
use pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rand::rngs::OsRng;
use signature::hazmat::{PrehashVerifier, RandomizedPrehashSigner};
use sm2::dsa::{Signature, SigningKey, VerifyingKey};
use sm2::{AffinePoint, EncodedPoint, NonZeroScalar, ProjectivePoint, PublicKey, SecretKey};
use sm3::{Digest, Sm3};
use spki::{DecodePublicKey, EncodePublicKey};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{AsymError, Input};
use crate::SecretBytes;

/// The distinguishing ID KMS uses for RAW messages (GM/T 0009-2012's default).
pub(super) const DEFAULT_DISTINGUISHING_ID: &str = "1234567812345678";

/// Length of an SM3 digest, of e and of a field element.
pub(super) const DIGEST_LEN: usize = 32;

/// The largest plaintext KMS encrypts with SM2PKE.
pub(super) const MAX_PLAINTEXT: usize = 1024;

/// A new private key as PKCS#8 DER.
pub(super) fn generate() -> Result<SecretBytes, AsymError> {
    encode(&SecretKey::random(&mut OsRng))
}

/// `key` as PKCS#8 DER.
fn encode(key: &SecretKey) -> Result<SecretBytes, AsymError> {
    let der = key
        .to_pkcs8_der()
        .map_err(|e| AsymError::InvalidPrivateKey(format!("SM2 key encoding failed: {e}")))?;
    Ok(SecretBytes::from_slice(der.as_bytes()))
}

/// Parses a stored PKCS#8 SM2 private key.
fn parse(private_key: &[u8]) -> Result<SecretKey, AsymError> {
    SecretKey::from_pkcs8_der(private_key)
        .map_err(|e| AsymError::InvalidPrivateKey(format!("not a PKCS#8 SM2 key: {e}")))
}

/// `private_key` (PKCS#8 on sm2p256v1) re-encoded as [`generate`] writes keys.
pub(super) fn canonical(private_key: &[u8]) -> Result<SecretBytes, AsymError> {
    encode(&parse(private_key)?)
}

/// The SubjectPublicKeyInfo (id-ecPublicKey, sm2p256v1, uncompressed point).
pub(super) fn public_key_der(private_key: &[u8]) -> Result<Vec<u8>, AsymError> {
    parse(private_key)?
        .public_key()
        .to_public_key_der()
        .map(|doc| doc.into_vec())
        .map_err(|e| AsymError::InvalidPrivateKey(format!("SM2 public key encoding failed: {e}")))
}

/// e = SM3(ZA || M) with ZA over `distinguishing_id` and `public_key`.
pub(super) fn message_digest(
    public_key: &PublicKey,
    distinguishing_id: &str,
    message: &[u8],
) -> Result<[u8; DIGEST_LEN], AsymError> {
    let point = public_key.to_encoded_point(false);
    let (Some(x), Some(y)) = (point.x(), point.y()) else {
        return Err(AsymError::InvalidPrivateKey(
            "SM2 public key is the identity".into(),
        ));
    };
    let id = distinguishing_id.as_bytes();
    let entl = u16::try_from(id.len() * 8)
        .map_err(|_| AsymError::Unsupported("distinguishing ID too long".into()))?;
    let mut za = Sm3::new();
    za.update(entl.to_be_bytes());
    za.update(id);
    za.update(CURVE_A);
    za.update(CURVE_B);
    za.update(GENERATOR_X);
    za.update(GENERATOR_Y);
    za.update(x);
    za.update(y);
    let za = za.finalize();
    Ok(Sm3::new()
        .chain_update(za)
        .chain_update(message)
        .finalize()
        .into())
}

/// Curve coefficient a of sm2p256v1 (GB/T 32918.5).
const CURVE_A: [u8; 32] = hex32("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC");
/// Curve coefficient b.
const CURVE_B: [u8; 32] = hex32("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93");
/// x-coordinate of the base point G.
const GENERATOR_X: [u8; 32] =
    hex32("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7");
/// y-coordinate of the base point G.
const GENERATOR_Y: [u8; 32] =
    hex32("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0");

/// 64 hex digits as 32 bytes, at compile time.
const fn hex32(s: &str) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("not an upper-case hex digit"),
        }
    }
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

/// The e to sign or verify: SM3(ZA || M) for RAW, the caller's e for DIGEST.
fn prehash(key: &PublicKey, input: &Input<'_>) -> Result<[u8; DIGEST_LEN], AsymError> {
    match input {
        Input::Message(m) => message_digest(key, DEFAULT_DISTINGUISHING_ID, m),
        Input::Digest(d) => {
            <[u8; DIGEST_LEN]>::try_from(d.as_ref()).map_err(|_| AsymError::DigestLength {
                expected: DIGEST_LEN,
                actual: d.len(),
            })
        }
        _ => Err(AsymError::Unsupported(
            "SM2DSA signs a RAW message or its DIGEST".into(),
        )),
    }
}

/// A DER SM2DSA signature of `input`.
pub(super) fn sign(private_key: &[u8], input: &Input<'_>) -> Result<Vec<u8>, AsymError> {
    let secret = parse(private_key)?;
    let e = prehash(&secret.public_key(), input)?;
    let key = SigningKey::new(DEFAULT_DISTINGUISHING_ID, &secret)
        .map_err(|e| AsymError::InvalidPrivateKey(format!("SM2 signing key: {e}")))?;
    let signature: Signature = key
        .sign_prehash_with_rng(&mut OsRng, &e)
        .map_err(|e| AsymError::InvalidPrivateKey(format!("SM2DSA signing failed: {e}")))?;
    let der = ecdsa::Signature::<sm2::Sm2>::from_scalars(signature.r_bytes(), signature.s_bytes())
        .map_err(|e| AsymError::InvalidPrivateKey(format!("SM2DSA signature encoding: {e}")))?;
    Ok(der.to_der().as_bytes().to_vec())
}

/// Whether `signature` (DER) is a valid SM2DSA signature of `input`.
pub(super) fn verify(
    private_key: &[u8],
    input: &Input<'_>,
    signature: &[u8],
) -> Result<bool, AsymError> {
    let public = parse(private_key)?.public_key();
    let e = prehash(&public, input)?;
    let Ok(der) = ecdsa::Signature::<sm2::Sm2>::from_der(signature) else {
        return Ok(false);
    };
    let Ok(signature) = Signature::from_scalars(der.r().to_bytes(), der.s().to_bytes()) else {
        return Ok(false);
    };
    let key = VerifyingKey::new(DEFAULT_DISTINGUISHING_ID, public)
        .map_err(|e| AsymError::InvalidPrivateKey(format!("SM2 verifying key: {e}")))?;
    Ok(key.verify_prehash(&e, &signature).is_ok())
}

/// SM2's key derivation function: SM3(Z || ct) for ct = 1, 2, ... (32-bit big-endian),
/// concatenated and cut to `len` bytes.
fn kdf(z: &[u8], len: usize) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(len + DIGEST_LEN));
    let mut counter: u32 = 1;
    while out.len() < len {
        out.extend_from_slice(
            &Sm3::new()
                .chain_update(z)
                .chain_update(counter.to_be_bytes())
                .finalize(),
        );
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
}

/// The affine coordinates of a point that is not the identity.
fn coordinates(point: &AffinePoint) -> Option<Zeroizing<[u8; 64]>> {
    let encoded = point.to_encoded_point(false);
    let (x, y) = (encoded.x()?, encoded.y()?);
    let mut xy = Zeroizing::new([0u8; 64]);
    xy[..32].copy_from_slice(x);
    xy[32..].copy_from_slice(y);
    Some(xy)
}

/// C2 = M ⊕ KDF(x2 || y2) and C3 = SM3(x2 || M || y2) for the shared point (x2, y2); `None`
/// when the KDF output is all zero (the standard's "choose another k").
fn mask(xy: &[u8; 64], message: &[u8]) -> Option<(Vec<u8>, [u8; DIGEST_LEN])> {
    let t = kdf(xy, message.len());
    if !message.is_empty() && t.iter().all(|b| *b == 0) {
        return None;
    }
    let c2 = message.iter().zip(t.iter()).map(|(m, t)| m ^ t).collect();
    let c3 = Sm3::new()
        .chain_update(&xy[..32])
        .chain_update(message)
        .chain_update(&xy[32..])
        .finalize()
        .into();
    Some((c2, c3))
}

/// SM2PKE encryption under the public half of `private_key`, in the ASN.1 C1C3C2 form.
pub(super) fn encrypt(private_key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, AsymError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(AsymError::PlaintextTooLong {
            max: MAX_PLAINTEXT,
            actual: plaintext.len(),
        });
    }
    let public = parse(private_key)?.public_key();
    loop {
        let k = NonZeroScalar::random(&mut OsRng);
        let c1 = (ProjectivePoint::GENERATOR * *k).to_affine();
        let shared = (public.to_projective() * *k).to_affine();
        let (Some(c1), Some(xy)) = (coordinates(&c1), coordinates(&shared)) else {
            continue;
        };
        let Some((c2, c3)) = mask(&xy, plaintext) else {
            continue;
        };
        return encode_ciphertext(&c1[..32], &c1[32..], &c3, &c2);
    }
}

/// `SEQUENCE { x INTEGER, y INTEGER, C3 OCTET STRING, C2 OCTET STRING }`.
fn encode_ciphertext(x: &[u8], y: &[u8], c3: &[u8], c2: &[u8]) -> Result<Vec<u8>, AsymError> {
    let fail = |e: pkcs8::der::Error| AsymError::InvalidPrivateKey(format!("SM2PKE encoding: {e}"));
    let mut body = Vec::new();
    UintRef::new(x)
        .and_then(|v| v.encode_to_vec(&mut body))
        .map_err(fail)?;
    UintRef::new(y)
        .and_then(|v| v.encode_to_vec(&mut body))
        .map_err(fail)?;
    OctetStringRef::new(c3)
        .and_then(|v| v.encode_to_vec(&mut body))
        .map_err(fail)?;
    OctetStringRef::new(c2)
        .and_then(|v| v.encode_to_vec(&mut body))
        .map_err(fail)?;
    let len = Length::try_from(body.len()).map_err(fail)?;
    let mut out = Header::new(Tag::Sequence, len)
        .and_then(|h| h.to_der())
        .map_err(fail)?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// The parts of an ASN.1 SM2PKE ciphertext: C1 as a point, C3, C2.
struct Ciphertext {
    c1: AffinePoint,
    c3: Vec<u8>,
    c2: Vec<u8>,
}

/// A big-endian unsigned integer as a 32-byte field element (left-padded).
fn field_bytes(v: UintRef<'_>) -> Option<[u8; 32]> {
    let b = v.as_bytes();
    let mut out = [0u8; 32];
    let start = 32usize.checked_sub(b.len())?;
    out[start..].copy_from_slice(b);
    Some(out)
}

/// Parses a ciphertext; `None` for anything that is not one on the curve.
fn decode_ciphertext(der: &[u8]) -> Option<Ciphertext> {
    let mut reader = SliceReader::new(der).ok()?;
    let (x, y, c3, c2) = reader
        .sequence(|r| {
            let x = UintRef::decode(r)?;
            let y = UintRef::decode(r)?;
            let c3 = OctetStringRef::decode(r)?;
            let c2 = OctetStringRef::decode(r)?;
            Ok((
                field_bytes(x),
                field_bytes(y),
                c3.as_bytes().to_vec(),
                c2.as_bytes().to_vec(),
            ))
        })
        .ok()?;
    reader.finish(()).ok()?;
    let point = EncodedPoint::from_affine_coordinates(&x?.into(), &y?.into(), false);
    let c1 = Option::<PublicKey>::from(PublicKey::from_encoded_point(&point))?;
    Some(Ciphertext {
        c1: *c1.as_affine(),
        c3,
        c2,
    })
}

/// SM2PKE decryption of an ASN.1 C1C3C2 ciphertext.
pub(super) fn decrypt(private_key: &[u8], ciphertext: &[u8]) -> Result<SecretBytes, AsymError> {
    let secret = parse(private_key)?;
    let parsed = decode_ciphertext(ciphertext).ok_or(AsymError::DecryptFailed)?;
    if parsed.c3.len() != DIGEST_LEN || bool::from(parsed.c1.is_identity()) {
        return Err(AsymError::DecryptFailed);
    }
    let shared = (ProjectivePoint::from(parsed.c1) * *secret.to_nonzero_scalar()).to_affine();
    let xy = coordinates(&shared).ok_or(AsymError::DecryptFailed)?;
    let t = kdf(&xy[..], parsed.c2.len());
    if !parsed.c2.is_empty() && t.iter().all(|b| *b == 0) {
        return Err(AsymError::DecryptFailed);
    }
    let unmasked: Zeroizing<Vec<u8>> =
        Zeroizing::new(parsed.c2.iter().zip(t.iter()).map(|(c, t)| c ^ t).collect());
    let plaintext = SecretBytes::from_slice(&unmasked);
    let u: [u8; DIGEST_LEN] = Sm3::new()
        .chain_update(&xy[..32])
        .chain_update(plaintext.expose())
        .chain_update(&xy[32..])
        .finalize()
        .into();
    if bool::from(u.ct_eq(parsed.c3.as_slice())) {
        Ok(plaintext)
    } else {
        Err(AsymError::DecryptFailed)
    }
}

/// The raw ECDH secret (x-coordinate of d·Q) of the stored key and the peer's DER
/// SubjectPublicKeyInfo, which must be an SM2 key.
pub(super) fn ecdh(
    private_key: &[u8],
    peer_public_key_der: &[u8],
) -> Result<SecretBytes, AsymError> {
    let peer = PublicKey::from_public_key_der(peer_public_key_der).map_err(|e| {
        AsymError::InvalidPublicKey(format!(
            "not a DER SubjectPublicKeyInfo of an SM2 (sm2p256v1) key: {e}"
        ))
    })?;
    let secret = parse(private_key)?;
    let shared = (peer.to_projective() * *secret.to_nonzero_scalar()).to_affine();
    let xy = coordinates(&shared)
        .ok_or_else(|| AsymError::InvalidPublicKey("the shared point is the identity".into()))?;
    Ok(SecretBytes::from_slice(&xy[..32]))
}
