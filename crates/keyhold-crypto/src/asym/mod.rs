//! Asymmetric and HMAC cryptography for KMS's non-symmetric key specs, as standard bytes a
//! user can check offline: PKCS#8 private keys, SubjectPublicKeyInfo public keys, RSA OAEP and
//! PSS/PKCS#1 v1.5, DER-encoded ECDSA, Ed25519 (pure and pre-hashed), ML-DSA, raw ECDH secrets
//! and HMAC; with the `sm2` feature, SM2 (SM2DSA, SM2PKE and ECDH on sm2p256v1).
//!
//! The KMS vocabulary (key specs, algorithm names, message types) is mirrored here by small
//! enums with `from_aws_name`, so this crate stays independent of the generated model. Every
//! function is synchronous and CPU-bound: callers run key generation off their async executor.
//!
//! INTERFACE CONTRACT (written by the domain side; bodies are implemented in this module's
//! submodules). Private keys are opaque bytes per spec ([`generate`] documents each form).

use crate::SecretBytes;
use prepare::{prepare, Input};

mod ecc;
mod ed25519;
mod hmac;
mod mldsa;
mod prepare;
mod rsa;
#[cfg(feature = "sm2")]
mod sm2;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_kex;
#[cfg(all(test, feature = "sm2"))]
mod tests_sm2;

/// An asymmetric KMS key spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AsymmetricSpec {
    /// `RSA_2048`.
    Rsa2048,
    /// `RSA_3072`.
    Rsa3072,
    /// `RSA_4096`.
    Rsa4096,
    /// `ECC_NIST_P256` (secp256r1).
    EccNistP256,
    /// `ECC_NIST_P384` (secp384r1).
    EccNistP384,
    /// `ECC_NIST_P521` (secp521r1).
    EccNistP521,
    /// `ECC_SECG_P256K1` (secp256k1).
    EccSecgP256k1,
    /// `ECC_NIST_EDWARDS25519` (Ed25519).
    EccNistEdwards25519,
    /// `ML_DSA_44`.
    MlDsa44,
    /// `ML_DSA_65`.
    MlDsa65,
    /// `ML_DSA_87`.
    MlDsa87,
    /// `SM2` (sm2p256v1; China Regions only in AWS).
    #[cfg(feature = "sm2")]
    Sm2,
}

/// A KMS signing algorithm (`SigningAlgorithmSpec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    /// `RSASSA_PSS_SHA_256` (MGF1 with SHA-256, salt length 32).
    RsassaPssSha256,
    /// `RSASSA_PSS_SHA_384`.
    RsassaPssSha384,
    /// `RSASSA_PSS_SHA_512`.
    RsassaPssSha512,
    /// `RSASSA_PKCS1_V1_5_SHA_256`.
    RsassaPkcs1V15Sha256,
    /// `RSASSA_PKCS1_V1_5_SHA_384`.
    RsassaPkcs1V15Sha384,
    /// `RSASSA_PKCS1_V1_5_SHA_512`.
    RsassaPkcs1V15Sha512,
    /// `ECDSA_SHA_256` (DER signature).
    EcdsaSha256,
    /// `ECDSA_SHA_384`.
    EcdsaSha384,
    /// `ECDSA_SHA_512`.
    EcdsaSha512,
    /// `ED25519_SHA_512`: pure Ed25519 (RFC 8032), RAW messages only.
    Ed25519Sha512,
    /// `ED25519_PH_SHA_512`: Ed25519ph (RFC 8032, empty context); RAW is hashed with SHA-512
    /// first, DIGEST is that 64-byte SHA-512 digest.
    Ed25519PhSha512,
    /// `ML_DSA_SHAKE_256`: ML-DSA (FIPS 204), RAW (pure, empty context) or EXTERNAL_MU (the
    /// 64-byte mu).
    MlDsaShake256,
    /// `SM2DSA`: RAW is signed as e = SM3(ZA || M) with the distinguishing ID
    /// `1234567812345678`; DIGEST is that 32-byte e.
    #[cfg(feature = "sm2")]
    Sm2dsa,
}

/// `MessageType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// The message itself.
    Raw,
    /// A digest of the message, never hashed again.
    Digest,
    /// ML-DSA's externally computed mu.
    ExternalMu,
}

/// RSAES-OAEP with MGF1 over the same hash and no label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OaepAlgorithm {
    /// `RSAES_OAEP_SHA_1`.
    Sha1,
    /// `RSAES_OAEP_SHA_256`.
    Sha256,
}

/// `MacAlgorithmSpec`; the HMAC key of `HMAC_<n>` is n bits long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MacAlgorithm {
    /// `HMAC_SHA_224`.
    HmacSha224,
    /// `HMAC_SHA_256`.
    HmacSha256,
    /// `HMAC_SHA_384`.
    HmacSha384,
    /// `HMAC_SHA_512`.
    HmacSha512,
}

/// Why an asymmetric or HMAC operation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AsymError {
    /// The algorithm or message type is not valid for the key spec.
    #[error("{0}")]
    Unsupported(String),
    /// A DIGEST (or EXTERNAL_MU) message has the wrong length for the algorithm.
    #[error("digest length {actual} does not match the algorithm's {expected} bytes")]
    DigestLength {
        /// Bytes the algorithm's hash produces.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The plaintext is longer than the algorithm can encrypt with this key.
    #[error("plaintext of {actual} bytes exceeds the maximum of {max} bytes")]
    PlaintextTooLong {
        /// Largest plaintext, in bytes.
        max: usize,
        /// Bytes given.
        actual: usize,
    },
    /// A public key given by the caller (ECDH peer) does not parse or is on another curve.
    #[error("invalid public key: {0}")]
    InvalidPublicKey(String),
    /// A ciphertext that does not decrypt under the key.
    #[error("the ciphertext does not decrypt under this key")]
    DecryptFailed,
    /// Stored key bytes that do not parse (a bug or corruption, never the caller's input).
    #[error("stored private key is invalid: {0}")]
    InvalidPrivateKey(String),
}

/// The key families behind the specs, with what each needs to pick its implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// RSA with a modulus of this many bits.
    Rsa(usize),
    /// ECDSA (and, for NIST curves, ECDH) on this curve.
    Ec(ecc::Curve),
    /// Ed25519.
    Ed25519,
    /// ML-DSA at this parameter set.
    MlDsa(mldsa::Level),
    /// SM2.
    #[cfg(feature = "sm2")]
    Sm2,
}

/// Every asymmetric spec with its KMS name.
const SPEC_NAMES: &[(AsymmetricSpec, &str)] = &[
    (AsymmetricSpec::Rsa2048, "RSA_2048"),
    (AsymmetricSpec::Rsa3072, "RSA_3072"),
    (AsymmetricSpec::Rsa4096, "RSA_4096"),
    (AsymmetricSpec::EccNistP256, "ECC_NIST_P256"),
    (AsymmetricSpec::EccNistP384, "ECC_NIST_P384"),
    (AsymmetricSpec::EccNistP521, "ECC_NIST_P521"),
    (AsymmetricSpec::EccSecgP256k1, "ECC_SECG_P256K1"),
    (AsymmetricSpec::EccNistEdwards25519, "ECC_NIST_EDWARDS25519"),
    (AsymmetricSpec::MlDsa44, "ML_DSA_44"),
    (AsymmetricSpec::MlDsa65, "ML_DSA_65"),
    (AsymmetricSpec::MlDsa87, "ML_DSA_87"),
    #[cfg(feature = "sm2")]
    (AsymmetricSpec::Sm2, "SM2"),
];

/// Every signing algorithm with its KMS name.
const ALGORITHM_NAMES: &[(SigningAlgorithm, &str)] = &[
    (SigningAlgorithm::RsassaPssSha256, "RSASSA_PSS_SHA_256"),
    (SigningAlgorithm::RsassaPssSha384, "RSASSA_PSS_SHA_384"),
    (SigningAlgorithm::RsassaPssSha512, "RSASSA_PSS_SHA_512"),
    (
        SigningAlgorithm::RsassaPkcs1V15Sha256,
        "RSASSA_PKCS1_V1_5_SHA_256",
    ),
    (
        SigningAlgorithm::RsassaPkcs1V15Sha384,
        "RSASSA_PKCS1_V1_5_SHA_384",
    ),
    (
        SigningAlgorithm::RsassaPkcs1V15Sha512,
        "RSASSA_PKCS1_V1_5_SHA_512",
    ),
    (SigningAlgorithm::EcdsaSha256, "ECDSA_SHA_256"),
    (SigningAlgorithm::EcdsaSha384, "ECDSA_SHA_384"),
    (SigningAlgorithm::EcdsaSha512, "ECDSA_SHA_512"),
    (SigningAlgorithm::Ed25519Sha512, "ED25519_SHA_512"),
    (SigningAlgorithm::Ed25519PhSha512, "ED25519_PH_SHA_512"),
    (SigningAlgorithm::MlDsaShake256, "ML_DSA_SHAKE_256"),
    #[cfg(feature = "sm2")]
    (SigningAlgorithm::Sm2dsa, "SM2DSA"),
];

/// The RSA signing algorithms, in the order KMS lists them.
const RSA_ALGORITHMS: [SigningAlgorithm; 6] = [
    SigningAlgorithm::RsassaPssSha256,
    SigningAlgorithm::RsassaPssSha384,
    SigningAlgorithm::RsassaPssSha512,
    SigningAlgorithm::RsassaPkcs1V15Sha256,
    SigningAlgorithm::RsassaPkcs1V15Sha384,
    SigningAlgorithm::RsassaPkcs1V15Sha512,
];

impl AsymmetricSpec {
    /// The spec of KMS name `name` (`RSA_2048`, ...), if asymmetric.
    pub fn from_aws_name(name: &str) -> Option<Self> {
        SPEC_NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(spec, _)| *spec)
    }

    /// The KMS name.
    pub fn aws_name(&self) -> &'static str {
        SPEC_NAMES
            .iter()
            .find(|(spec, _)| spec == self)
            .map_or("", |(_, n)| n)
    }

    /// The signing algorithms KMS offers for this spec (empty for none).
    pub fn signing_algorithms(&self) -> &'static [SigningAlgorithm] {
        use SigningAlgorithm as A;
        match self {
            Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096 => &RSA_ALGORITHMS,
            Self::EccNistP256 | Self::EccSecgP256k1 => &[A::EcdsaSha256],
            Self::EccNistP384 => &[A::EcdsaSha384],
            Self::EccNistP521 => &[A::EcdsaSha512],
            Self::EccNistEdwards25519 => &[A::Ed25519Sha512, A::Ed25519PhSha512],
            Self::MlDsa44 | Self::MlDsa65 | Self::MlDsa87 => &[A::MlDsaShake256],
            #[cfg(feature = "sm2")]
            Self::Sm2 => &[A::Sm2dsa],
        }
    }

    /// True for RSA specs (the only ones with OAEP encryption here).
    pub fn is_rsa(&self) -> bool {
        matches!(self.family(), Family::Rsa(_))
    }

    /// True for the NIST curves and SM2, the specs with ECDH key agreement.
    pub fn has_key_agreement(&self) -> bool {
        match self.family() {
            Family::Ec(curve) => curve.has_key_agreement(),
            #[cfg(feature = "sm2")]
            Family::Sm2 => true,
            _ => false,
        }
    }

    /// True for SM2, the spec with SM2PKE encryption.
    pub fn is_sm2(&self) -> bool {
        #[cfg(feature = "sm2")]
        if matches!(self, Self::Sm2) {
            return true;
        }
        false
    }

    /// The family and parameters of this spec.
    fn family(&self) -> Family {
        match self {
            Self::Rsa2048 => Family::Rsa(2048),
            Self::Rsa3072 => Family::Rsa(3072),
            Self::Rsa4096 => Family::Rsa(4096),
            Self::EccNistP256 => Family::Ec(ecc::Curve::P256),
            Self::EccNistP384 => Family::Ec(ecc::Curve::P384),
            Self::EccNistP521 => Family::Ec(ecc::Curve::P521),
            Self::EccSecgP256k1 => Family::Ec(ecc::Curve::K256),
            Self::EccNistEdwards25519 => Family::Ed25519,
            Self::MlDsa44 => Family::MlDsa(mldsa::Level::L44),
            Self::MlDsa65 => Family::MlDsa(mldsa::Level::L65),
            Self::MlDsa87 => Family::MlDsa(mldsa::Level::L87),
            #[cfg(feature = "sm2")]
            Self::Sm2 => Family::Sm2,
        }
    }
}

impl SigningAlgorithm {
    /// The algorithm of KMS name `name`.
    pub fn from_aws_name(name: &str) -> Option<Self> {
        ALGORITHM_NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(alg, _)| *alg)
    }

    /// The KMS name.
    pub fn aws_name(&self) -> &'static str {
        ALGORITHM_NAMES
            .iter()
            .find(|(alg, _)| alg == self)
            .map_or("", |(_, n)| n)
    }
}

impl MacAlgorithm {
    /// The algorithm of KMS name `name`.
    pub fn from_aws_name(name: &str) -> Option<Self> {
        match name {
            "HMAC_SHA_224" => Some(Self::HmacSha224),
            "HMAC_SHA_256" => Some(Self::HmacSha256),
            "HMAC_SHA_384" => Some(Self::HmacSha384),
            "HMAC_SHA_512" => Some(Self::HmacSha512),
            _ => None,
        }
    }

    /// HMAC key length in bytes for the matching `HMAC_<n>` key spec (n / 8).
    pub fn key_len(&self) -> usize {
        match self {
            Self::HmacSha224 => 28,
            Self::HmacSha256 => 32,
            Self::HmacSha384 => 48,
            Self::HmacSha512 => 64,
        }
    }
}

/// A new private key of `spec`.
///
/// - RSA: PKCS#8 DER (`PrivateKeyInfo`, rsaEncryption), public exponent 65537.
/// - ECC (P-256, P-384, P-521, secp256k1): PKCS#8 DER, id-ecPublicKey with the named curve,
///   wrapping a SEC1 `ECPrivateKey` that includes the public point.
/// - Ed25519: PKCS#8 v1 DER (RFC 8410 `OneAsymmetricKey` without the public key, the form
///   OpenSSL writes).
/// - ML-DSA: the raw 32-byte FIPS 204 seed ξ, from which `ML-DSA.KeyGen_internal`
///   (Algorithm 6) re-derives the key pair on every use; no PKCS#8 wrapping. The same seed
///   gives the same key pair in any FIPS 204 implementation (e.g. OpenSSL 3.5's
///   seed-based ML-DSA private keys).
/// - SM2: PKCS#8 DER, id-ecPublicKey with the named curve sm2p256v1 (1.2.156.10197.1.301),
///   wrapping a SEC1 `ECPrivateKey` that includes the public point.
pub fn generate(spec: AsymmetricSpec) -> Result<SecretBytes, AsymError> {
    match spec.family() {
        Family::Rsa(bits) => rsa::generate(bits),
        Family::Ec(curve) => ecc::generate(curve),
        Family::Ed25519 => ed25519::generate(),
        Family::MlDsa(_) => Ok(mldsa::generate()),
        #[cfg(feature = "sm2")]
        Family::Sm2 => sm2::generate(),
    }
}

/// The DER SubjectPublicKeyInfo of a private key made by [`generate`] (what GetPublicKey
/// returns): rsaEncryption (NULL parameters) for RSA; id-ecPublicKey with the named curve
/// and the uncompressed point for ECC; id-Ed25519 for Ed25519; id-ml-dsa-44/65/87 without
/// parameters and the FIPS 204 encoded public key for ML-DSA.
pub fn public_key_der(spec: AsymmetricSpec, private_key: &[u8]) -> Result<Vec<u8>, AsymError> {
    match spec.family() {
        Family::Rsa(bits) => rsa::public_key_der(bits, private_key),
        Family::Ec(curve) => ecc::public_key_der(curve, private_key),
        Family::Ed25519 => ed25519::public_key_der(private_key),
        Family::MlDsa(level) => mldsa::public_key_der(level, private_key),
        #[cfg(feature = "sm2")]
        Family::Sm2 => sm2::public_key_der(private_key),
    }
}

/// Checks an imported private key (PKCS#8 DER, as KMS takes asymmetric key material) against
/// `spec` and returns it in the stored form [`generate`] writes, so the same key imported in
/// any valid encoding is stored, and identified, the same way: RSA keys must have the spec's
/// modulus and be consistent; ECC keys must be on the spec's curve (the public point is
/// recomputed); Ed25519 keys are stored as their seed. ML-DSA keys cannot be imported.
pub fn import_private_key(spec: AsymmetricSpec, der: &[u8]) -> Result<SecretBytes, AsymError> {
    match spec.family() {
        Family::Rsa(bits) => rsa::canonical(bits, der),
        Family::Ec(curve) => ecc::canonical(curve, der),
        Family::Ed25519 => ed25519::canonical(der),
        Family::MlDsa(_) => Err(AsymError::Unsupported(format!(
            "key material of {} keys cannot be imported",
            spec.aws_name()
        ))),
        #[cfg(feature = "sm2")]
        Family::Sm2 => sm2::canonical(der),
    }
}

/// Signs `message` (of `message_type`) with `algorithm`.
///
/// RSA signatures are k bytes (PSS: MGF1 with the same hash, salt as long as the digest);
/// ECDSA signatures are DER `SEQUENCE { r, s }`; Ed25519 signatures are 64 bytes; ML-DSA
/// signatures are the FIPS 204 encoding (hedged signing, empty context).
pub fn sign(
    spec: AsymmetricSpec,
    private_key: &[u8],
    algorithm: SigningAlgorithm,
    message_type: MessageType,
    message: &[u8],
) -> Result<Vec<u8>, AsymError> {
    let input = prepare(spec, algorithm, message_type, message)?;
    match spec.family() {
        Family::Rsa(bits) => rsa::sign(bits, private_key, algorithm, &input),
        Family::Ec(curve) => ecc::sign(curve, private_key, &input),
        Family::Ed25519 => ed25519::sign(private_key, &input),
        Family::MlDsa(level) => mldsa::sign(level, private_key, &input),
        #[cfg(feature = "sm2")]
        Family::Sm2 => sm2::sign(private_key, &input),
    }
}

/// Whether `signature` is a valid signature of `message`; a malformed signature is `Ok(false)`.
pub fn verify(
    spec: AsymmetricSpec,
    private_key: &[u8],
    algorithm: SigningAlgorithm,
    message_type: MessageType,
    message: &[u8],
    signature: &[u8],
) -> Result<bool, AsymError> {
    let input = prepare(spec, algorithm, message_type, message)?;
    match spec.family() {
        Family::Rsa(bits) => rsa::verify(bits, private_key, algorithm, &input, signature),
        Family::Ec(curve) => ecc::verify(curve, private_key, &input, signature),
        Family::Ed25519 => ed25519::verify(private_key, &input, signature),
        Family::MlDsa(level) => mldsa::verify(level, private_key, &input, signature),
        #[cfg(feature = "sm2")]
        Family::Sm2 => sm2::verify(private_key, &input, signature),
    }
}

/// The largest plaintext RSAES-OAEP with `algorithm` encrypts under an RSA key of `spec`
/// (k - 2·hLen - 2 bytes); 0 for specs that are not RSA.
pub fn rsa_max_plaintext(spec: AsymmetricSpec, algorithm: OaepAlgorithm) -> usize {
    match spec.family() {
        Family::Rsa(bits) => rsa::max_plaintext(bits, algorithm),
        _ => 0,
    }
}

/// RSAES-OAEP encryption under the public half of `private_key`.
pub fn rsa_encrypt(
    spec: AsymmetricSpec,
    private_key: &[u8],
    algorithm: OaepAlgorithm,
    plaintext: &[u8],
) -> Result<Vec<u8>, AsymError> {
    match spec.family() {
        Family::Rsa(bits) => rsa::encrypt(bits, private_key, algorithm, plaintext),
        _ => Err(not_rsa(spec)),
    }
}

/// RSAES-OAEP decryption.
pub fn rsa_decrypt(
    spec: AsymmetricSpec,
    private_key: &[u8],
    algorithm: OaepAlgorithm,
    ciphertext: &[u8],
) -> Result<SecretBytes, AsymError> {
    match spec.family() {
        Family::Rsa(bits) => rsa::decrypt(bits, private_key, algorithm, ciphertext),
        _ => Err(not_rsa(spec)),
    }
}

/// The error for encryption with a spec that is not RSA.
fn not_rsa(spec: AsymmetricSpec) -> AsymError {
    AsymError::Unsupported(format!(
        "key spec {} does not support encryption; only RSA key specs do",
        spec.aws_name()
    ))
}

/// The largest plaintext SM2PKE encrypts (1024 bytes, AWS's limit).
#[cfg(feature = "sm2")]
pub const SM2PKE_MAX_PLAINTEXT: usize = sm2::MAX_PLAINTEXT;

/// SM2PKE encryption under the public half of an SM2 `private_key`; the ciphertext is the
/// ASN.1 `SEQUENCE { x, y, C3, C2 }` AWS returns and accepts (OpenSSL's form too).
#[cfg(feature = "sm2")]
pub fn sm2_encrypt(
    spec: AsymmetricSpec,
    private_key: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, AsymError> {
    match spec.family() {
        Family::Sm2 => sm2::encrypt(private_key, plaintext),
        _ => Err(not_sm2(spec)),
    }
}

/// SM2PKE decryption of an ASN.1 C1C3C2 ciphertext.
#[cfg(feature = "sm2")]
pub fn sm2_decrypt(
    spec: AsymmetricSpec,
    private_key: &[u8],
    ciphertext: &[u8],
) -> Result<SecretBytes, AsymError> {
    match spec.family() {
        Family::Sm2 => sm2::decrypt(private_key, ciphertext),
        _ => Err(not_sm2(spec)),
    }
}

/// The error for SM2PKE with a spec that is not SM2.
#[cfg(feature = "sm2")]
fn not_sm2(spec: AsymmetricSpec) -> AsymError {
    AsymError::Unsupported(format!(
        "key spec {} does not support SM2PKE; only SM2 does",
        spec.aws_name()
    ))
}

/// e = SM3(ZA || M) for an SM2 key's public key, ZA over `distinguishing_id`: what a caller
/// passes as a DIGEST message to SM2DSA (KMS itself uses `1234567812345678` for RAW).
#[cfg(feature = "sm2")]
pub fn sm2_message_digest(
    private_key: &[u8],
    distinguishing_id: &str,
    message: &[u8],
) -> Result<[u8; 32], AsymError> {
    use pkcs8::DecodePrivateKey;
    let key = ::sm2::SecretKey::from_pkcs8_der(private_key)
        .map_err(|e| AsymError::InvalidPrivateKey(format!("not a PKCS#8 SM2 key: {e}")))?;
    sm2::message_digest(&key.public_key(), distinguishing_id, message)
}

/// The raw ECDH shared secret (the x-coordinate, field-size bytes) of `private_key` and the
/// peer's DER SubjectPublicKeyInfo, which must be on the same curve.
pub fn ecdh(
    spec: AsymmetricSpec,
    private_key: &[u8],
    peer_public_key_der: &[u8],
) -> Result<SecretBytes, AsymError> {
    match spec.family() {
        Family::Ec(curve) if curve.has_key_agreement() => {
            ecc::ecdh(curve, private_key, peer_public_key_der)
        }
        #[cfg(feature = "sm2")]
        Family::Sm2 => sm2::ecdh(private_key, peer_public_key_der),
        _ => Err(AsymError::Unsupported(format!(
            "key spec {} does not support key agreement; only ECC_NIST_P256, ECC_NIST_P384, \
             ECC_NIST_P521 and SM2 do",
            spec.aws_name()
        ))),
    }
}

/// HMAC of `message` under `key`.
pub fn mac(algorithm: MacAlgorithm, key: &[u8], message: &[u8]) -> Vec<u8> {
    hmac::mac(algorithm, key, message)
}

/// Constant-time check of `tag` against the HMAC of `message`.
pub fn verify_mac(algorithm: MacAlgorithm, key: &[u8], message: &[u8], tag: &[u8]) -> bool {
    hmac::verify(algorithm, key, message, tag)
}
