//! Elliptic-curve keys on P-256, P-384, P-521 and secp256k1: PKCS#8 private keys, ECDSA over
//! a digest with DER signatures, and raw ECDH shared secrets on the NIST curves.
//!
//! The curves differ only in types, so a macro writes one small module per curve.

use super::{AsymError, Input};
use crate::SecretBytes;

/// A curve of the ECC key specs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Curve {
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// NIST P-521 (secp521r1).
    P521,
    /// secp256k1.
    K256,
}

impl Curve {
    /// True for the NIST curves, which KMS offers ECDH on.
    pub(super) fn has_key_agreement(self) -> bool {
        !matches!(self, Curve::K256)
    }
}

/// Writes a module of key generation, public key export, ECDSA signing and verification for
/// one curve crate. `$curve` is the curve type, `$name` its name in error messages; with
/// `ecdh "<curve OID name>"` the module also has `ecdh`.
macro_rules! curve_module {
    ($module:ident, $krate:ident, $curve:ty, $name:literal $(, ecdh $oid_name:literal)?) => {
        /// Operations on one curve.
        pub(super) mod $module {
            use ecdsa::signature::hazmat::{PrehashVerifier, RandomizedPrehashSigner};
            use pkcs8::{DecodePrivateKey, EncodePrivateKey};
            use rand::rngs::OsRng;
            use spki::EncodePublicKey;

            use super::{AsymError, SecretBytes};
            use $krate::ecdsa::{Signature, SigningKey, VerifyingKey};
            use $krate::SecretKey;

            /// A new private key as PKCS#8 DER.
            pub(in crate::asym) fn generate() -> Result<SecretBytes, AsymError> {
                let key = SecretKey::random(&mut OsRng);
                let der = key.to_pkcs8_der().map_err(|e| {
                    AsymError::InvalidPrivateKey(format!("{} key encoding failed: {e}", $name))
                })?;
                Ok(SecretBytes::from_slice(der.as_bytes()))
            }

            /// Parses a stored PKCS#8 private key.
            pub(in crate::asym) fn parse(private_key: &[u8]) -> Result<SecretKey, AsymError> {
                SecretKey::from_pkcs8_der(private_key).map_err(|e| {
                    AsymError::InvalidPrivateKey(format!("not a PKCS#8 {} key: {e}", $name))
                })
            }

            /// `private_key` (PKCS#8 on this curve) re-encoded as [`generate`] writes keys.
            pub(in crate::asym) fn canonical(private_key: &[u8]) -> Result<SecretBytes, AsymError> {
                let der = parse(private_key)?.to_pkcs8_der().map_err(|e| {
                    AsymError::InvalidPrivateKey(format!("{} key encoding failed: {e}", $name))
                })?;
                Ok(SecretBytes::from_slice(der.as_bytes()))
            }

            /// The SubjectPublicKeyInfo (id-ecPublicKey, named curve, uncompressed point).
            pub(in crate::asym) fn public_key_der(
                private_key: &[u8],
            ) -> Result<Vec<u8>, AsymError> {
                parse(private_key)?
                    .public_key()
                    .to_public_key_der()
                    .map(|doc| doc.into_vec())
                    .map_err(|e| {
                        AsymError::InvalidPrivateKey(format!(
                            "{} public key encoding failed: {e}",
                            $name
                        ))
                    })
            }

            /// The ECDSA signing key of a parsed private key.
            pub(in crate::asym) fn signing_key(key: &SecretKey) -> SigningKey {
                SigningKey::from(ecdsa::SigningKey::<$curve>::from(key))
            }

            /// A DER ECDSA signature of `digest` (a hash of the field's size or shorter).
            pub(in crate::asym) fn sign(
                private_key: &[u8],
                digest: &[u8],
            ) -> Result<Vec<u8>, AsymError> {
                let key = signing_key(&parse(private_key)?);
                let signature: Signature = key
                    .sign_prehash_with_rng(&mut OsRng, digest)
                    .map_err(|e| {
                        AsymError::InvalidPrivateKey(format!("{} signing failed: {e}", $name))
                    })?;
                Ok(signature.to_der().as_bytes().to_vec())
            }

            /// Whether `signature` (DER) is a valid ECDSA signature of `digest`.
            pub(in crate::asym) fn verify(
                private_key: &[u8],
                digest: &[u8],
                signature: &[u8],
            ) -> Result<bool, AsymError> {
                let key = VerifyingKey::from(ecdsa::VerifyingKey::<$curve>::from(
                    parse(private_key)?.public_key(),
                ));
                let Ok(signature) = Signature::from_der(signature) else {
                    return Ok(false);
                };
                Ok(key.verify_prehash(digest, &signature).is_ok())
            }

            $(
            /// The raw ECDH secret (x-coordinate) of the stored key and the peer's DER
            /// SubjectPublicKeyInfo, which must be on this curve.
            pub(in crate::asym) fn ecdh(
                private_key: &[u8],
                peer_public_key_der: &[u8],
            ) -> Result<SecretBytes, AsymError> {
                use spki::DecodePublicKey;
                let peer = $krate::PublicKey::from_public_key_der(peer_public_key_der)
                    .map_err(|e| {
                        AsymError::InvalidPublicKey(format!(
                            "not a DER SubjectPublicKeyInfo of an {} ({}) key: {e}",
                            $name, $oid_name
                        ))
                    })?;
                let secret = parse(private_key)?;
                let shared =
                    $krate::ecdh::diffie_hellman(secret.to_nonzero_scalar(), peer.as_affine());
                Ok(SecretBytes::from_slice(shared.raw_secret_bytes().as_slice()))
            }
            )?
        }
    };
}

curve_module!(p256_ops, p256, p256::NistP256, "ECC_NIST_P256", ecdh "secp256r1");
curve_module!(p384_ops, p384, p384::NistP384, "ECC_NIST_P384", ecdh "secp384r1");
curve_module!(p521_ops, p521, p521::NistP521, "ECC_NIST_P521", ecdh "secp521r1");
curve_module!(k256_ops, k256, k256::Secp256k1, "ECC_SECG_P256K1");

/// A new private key on `curve` as PKCS#8 DER.
pub(super) fn generate(curve: Curve) -> Result<SecretBytes, AsymError> {
    match curve {
        Curve::P256 => p256_ops::generate(),
        Curve::P384 => p384_ops::generate(),
        Curve::P521 => p521_ops::generate(),
        Curve::K256 => k256_ops::generate(),
    }
}

/// `private_key` (PKCS#8 on `curve`) re-encoded as [`generate`] writes keys.
pub(super) fn canonical(curve: Curve, private_key: &[u8]) -> Result<SecretBytes, AsymError> {
    match curve {
        Curve::P256 => p256_ops::canonical(private_key),
        Curve::P384 => p384_ops::canonical(private_key),
        Curve::P521 => p521_ops::canonical(private_key),
        Curve::K256 => k256_ops::canonical(private_key),
    }
}

/// The SubjectPublicKeyInfo of a stored key.
pub(super) fn public_key_der(curve: Curve, private_key: &[u8]) -> Result<Vec<u8>, AsymError> {
    match curve {
        Curve::P256 => p256_ops::public_key_der(private_key),
        Curve::P384 => p384_ops::public_key_der(private_key),
        Curve::P521 => p521_ops::public_key_der(private_key),
        Curve::K256 => k256_ops::public_key_der(private_key),
    }
}

/// The digest of a prepared ECDSA input.
fn digest<'a>(input: &'a Input<'_>) -> Result<&'a [u8], AsymError> {
    match input {
        Input::Digest(d) => Ok(d),
        _ => Err(AsymError::Unsupported(
            "ECDSA signs a digest of the message".to_string(),
        )),
    }
}

/// A DER ECDSA signature of the digest in `input`.
pub(super) fn sign(
    curve: Curve,
    private_key: &[u8],
    input: &Input<'_>,
) -> Result<Vec<u8>, AsymError> {
    let digest = digest(input)?;
    match curve {
        Curve::P256 => p256_ops::sign(private_key, digest),
        Curve::P384 => p384_ops::sign(private_key, digest),
        Curve::P521 => p521_ops::sign(private_key, digest),
        Curve::K256 => k256_ops::sign(private_key, digest),
    }
}

/// Whether `signature` is a valid DER ECDSA signature of the digest in `input`.
pub(super) fn verify(
    curve: Curve,
    private_key: &[u8],
    input: &Input<'_>,
    signature: &[u8],
) -> Result<bool, AsymError> {
    let digest = digest(input)?;
    match curve {
        Curve::P256 => p256_ops::verify(private_key, digest, signature),
        Curve::P384 => p384_ops::verify(private_key, digest, signature),
        Curve::P521 => p521_ops::verify(private_key, digest, signature),
        Curve::K256 => k256_ops::verify(private_key, digest, signature),
    }
}

/// The raw ECDH secret (x-coordinate) of the stored key and the peer's SubjectPublicKeyInfo.
pub(super) fn ecdh(
    curve: Curve,
    private_key: &[u8],
    peer_public_key_der: &[u8],
) -> Result<SecretBytes, AsymError> {
    match curve {
        Curve::P256 => p256_ops::ecdh(private_key, peer_public_key_der),
        Curve::P384 => p384_ops::ecdh(private_key, peer_public_key_der),
        Curve::P521 => p521_ops::ecdh(private_key, peer_public_key_der),
        Curve::K256 => Err(AsymError::Unsupported(
            "ECC_SECG_P256K1 does not support key agreement".to_string(),
        )),
    }
}
