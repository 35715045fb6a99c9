//! Asymmetric and HMAC cryptography for KMS's non-symmetric key specs, as standard bytes a
//! user can check offline: PKCS#8 private keys, SubjectPublicKeyInfo public keys, RSA OAEP and
//! PSS/PKCS#1 v1.5, DER-encoded ECDSA, Ed25519 (pure and pre-hashed), ML-DSA, raw ECDH secrets
//! and HMAC.
//!
//! The KMS vocabulary (key specs, algorithm names, message types) is mirrored here by small
//! enums with `from_aws_name`, so this crate stays independent of the generated model. Every
//! function is synchronous and CPU-bound: callers run key generation off their async executor.
//!
//! INTERFACE CONTRACT (written by the domain side; bodies are implemented in this module's
//! submodules). Private keys are opaque bytes per spec ([`AsymmetricSpec::private_key_format`]).

use crate::SecretBytes;

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
}

/// A KMS signing algorithm (`SigningAlgorithmSpec`), SM2DSA excepted.
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

impl AsymmetricSpec {
    /// The spec of KMS name `name` (`RSA_2048`, ...), if asymmetric.
    pub fn from_aws_name(name: &str) -> Option<Self> {
        let _ = name;
        todo!("asym: from_aws_name")
    }

    /// The KMS name.
    pub fn aws_name(&self) -> &'static str {
        todo!("asym: aws_name")
    }

    /// The signing algorithms KMS offers for this spec (empty for none).
    pub fn signing_algorithms(&self) -> &'static [SigningAlgorithm] {
        todo!("asym: signing_algorithms")
    }

    /// True for RSA specs (the only ones with OAEP encryption here).
    pub fn is_rsa(&self) -> bool {
        todo!("asym: is_rsa")
    }

    /// True for the NIST curves, the specs with ECDH key agreement.
    pub fn has_key_agreement(&self) -> bool {
        todo!("asym: has_key_agreement")
    }
}

impl SigningAlgorithm {
    /// The algorithm of KMS name `name`.
    pub fn from_aws_name(name: &str) -> Option<Self> {
        let _ = name;
        todo!("asym")
    }

    /// The KMS name.
    pub fn aws_name(&self) -> &'static str {
        todo!("asym")
    }
}

impl MacAlgorithm {
    /// The algorithm of KMS name `name`.
    pub fn from_aws_name(name: &str) -> Option<Self> {
        let _ = name;
        todo!("asym")
    }

    /// HMAC key length in bytes for the matching `HMAC_<n>` key spec (n / 8).
    pub fn key_len(&self) -> usize {
        todo!("asym")
    }
}

/// A new private key of `spec` (PKCS#8 DER for RSA, ECC and Ed25519; for ML-DSA the
/// implementation documents its form).
pub fn generate(spec: AsymmetricSpec) -> Result<SecretBytes, AsymError> {
    let _ = spec;
    todo!("asym: generate")
}

/// The DER SubjectPublicKeyInfo of a private key made by [`generate`] (what GetPublicKey
/// returns).
pub fn public_key_der(spec: AsymmetricSpec, private_key: &[u8]) -> Result<Vec<u8>, AsymError> {
    let _ = (spec, private_key);
    todo!("asym: public_key_der")
}

/// Signs `message` (of `message_type`) with `algorithm`.
pub fn sign(
    spec: AsymmetricSpec,
    private_key: &[u8],
    algorithm: SigningAlgorithm,
    message_type: MessageType,
    message: &[u8],
) -> Result<Vec<u8>, AsymError> {
    let _ = (spec, private_key, algorithm, message_type, message);
    todo!("asym: sign")
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
    let _ = (
        spec,
        private_key,
        algorithm,
        message_type,
        message,
        signature,
    );
    todo!("asym: verify")
}

/// The largest plaintext RSAES-OAEP with `algorithm` encrypts under an RSA key of `spec`
/// (k - 2·hLen - 2 bytes).
pub fn rsa_max_plaintext(spec: AsymmetricSpec, algorithm: OaepAlgorithm) -> usize {
    let _ = (spec, algorithm);
    todo!("asym")
}

/// RSAES-OAEP encryption under the public half of `private_key`.
pub fn rsa_encrypt(
    spec: AsymmetricSpec,
    private_key: &[u8],
    algorithm: OaepAlgorithm,
    plaintext: &[u8],
) -> Result<Vec<u8>, AsymError> {
    let _ = (spec, private_key, algorithm, plaintext);
    todo!("asym: rsa_encrypt")
}

/// RSAES-OAEP decryption.
pub fn rsa_decrypt(
    spec: AsymmetricSpec,
    private_key: &[u8],
    algorithm: OaepAlgorithm,
    ciphertext: &[u8],
) -> Result<SecretBytes, AsymError> {
    let _ = (spec, private_key, algorithm, ciphertext);
    todo!("asym: rsa_decrypt")
}

/// The raw ECDH shared secret (the x-coordinate, field-size bytes) of `private_key` and the
/// peer's DER SubjectPublicKeyInfo, which must be on the same curve.
pub fn ecdh(
    spec: AsymmetricSpec,
    private_key: &[u8],
    peer_public_key_der: &[u8],
) -> Result<SecretBytes, AsymError> {
    let _ = (spec, private_key, peer_public_key_der);
    todo!("asym: ecdh")
}

/// HMAC of `message` under `key`.
pub fn mac(algorithm: MacAlgorithm, key: &[u8], message: &[u8]) -> Vec<u8> {
    let _ = (algorithm, key, message);
    todo!("asym: mac")
}

/// Constant-time check of `tag` against the HMAC of `message`.
pub fn verify_mac(algorithm: MacAlgorithm, key: &[u8], message: &[u8], tag: &[u8]) -> bool {
    let _ = (algorithm, key, message, tag);
    todo!("asym: verify_mac")
}
