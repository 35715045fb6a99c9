//! Checking a signing request against its key spec, and turning the message into what the
//! signature primitive takes: a digest (hashing RAW messages, length-checking DIGEST ones),
//! the message itself (pure Ed25519 and ML-DSA), or ML-DSA's mu.

use std::borrow::Cow;

use super::{mldsa, AsymError, AsymmetricSpec, MessageType, SigningAlgorithm};

impl MessageType {
    /// The KMS name, for error messages.
    fn aws_name(&self) -> &'static str {
        match self {
            Self::Raw => "RAW",
            Self::Digest => "DIGEST",
            Self::ExternalMu => "EXTERNAL_MU",
        }
    }
}

impl SigningAlgorithm {
    /// The hash the algorithm applies to RAW messages and whose length a DIGEST must have;
    /// `None` for pure Ed25519 and ML-DSA, which sign the message itself.
    pub(super) fn hash(&self) -> Option<Hash> {
        use SigningAlgorithm as A;
        match self {
            A::RsassaPssSha256 | A::RsassaPkcs1V15Sha256 | A::EcdsaSha256 => Some(Hash::Sha256),
            A::RsassaPssSha384 | A::RsassaPkcs1V15Sha384 | A::EcdsaSha384 => Some(Hash::Sha384),
            A::RsassaPssSha512 | A::RsassaPkcs1V15Sha512 | A::EcdsaSha512 => Some(Hash::Sha512),
            A::Ed25519PhSha512 => Some(Hash::Sha512),
            A::Ed25519Sha512 | A::MlDsaShake256 => None,
            #[cfg(feature = "sm2")]
            A::Sm2dsa => None,
        }
    }
}

/// A SHA-2 hash a signing algorithm applies before signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Hash {
    /// Digest length in bytes.
    pub(super) fn len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// The digest of `message`.
    pub(super) fn digest(self, message: &[u8]) -> Vec<u8> {
        use sha2::Digest as _;
        match self {
            Self::Sha256 => sha2::Sha256::digest(message).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(message).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(message).to_vec(),
        }
    }
}

/// The digest a hash-then-sign algorithm (RSA, ECDSA, Ed25519ph) signs: RAW messages hashed
/// with `hash`, DIGEST messages as given once their length is checked.
fn digest_of<'m>(
    algorithm: SigningAlgorithm,
    hash: Hash,
    message_type: MessageType,
    message: &'m [u8],
) -> Result<Cow<'m, [u8]>, AsymError> {
    match message_type {
        MessageType::Raw => Ok(Cow::Owned(hash.digest(message))),
        MessageType::Digest if message.len() == hash.len() => Ok(Cow::Borrowed(message)),
        MessageType::Digest => Err(AsymError::DigestLength {
            expected: hash.len(),
            actual: message.len(),
        }),
        MessageType::ExternalMu => Err(unsupported_message_type(algorithm, message_type)),
    }
}

/// The error for a message type `algorithm` does not take.
fn unsupported_message_type(algorithm: SigningAlgorithm, message_type: MessageType) -> AsymError {
    let valid = match algorithm {
        SigningAlgorithm::Ed25519Sha512 => "RAW",
        SigningAlgorithm::MlDsaShake256 => "RAW or EXTERNAL_MU",
        _ => "RAW or DIGEST",
    };
    AsymError::Unsupported(format!(
        "message type {} is not valid with signing algorithm {}; use {valid}",
        message_type.aws_name(),
        algorithm.aws_name()
    ))
}

/// Refuses an algorithm that is not among the spec's signing algorithms.
fn check_algorithm(spec: AsymmetricSpec, algorithm: SigningAlgorithm) -> Result<(), AsymError> {
    let offered = spec.signing_algorithms();
    if offered.contains(&algorithm) {
        return Ok(());
    }
    let names: Vec<&str> = offered.iter().map(SigningAlgorithm::aws_name).collect();
    Err(AsymError::Unsupported(format!(
        "signing algorithm {} is not valid for key spec {}; valid: {}",
        algorithm.aws_name(),
        spec.aws_name(),
        names.join(", ")
    )))
}

/// What to sign or verify, once the algorithm and message type are known to fit the spec.
pub(super) enum Input<'m> {
    /// A digest (RSA, ECDSA, Ed25519ph).
    Digest(Cow<'m, [u8]>),
    /// The message itself (pure Ed25519, pure ML-DSA).
    Message(&'m [u8]),
    /// ML-DSA's 64-byte mu.
    Mu(&'m [u8]),
}

/// Checks `algorithm` and `message_type` against `spec` and turns the message into the input
/// of the signature primitive.
pub(super) fn prepare<'m>(
    spec: AsymmetricSpec,
    algorithm: SigningAlgorithm,
    message_type: MessageType,
    message: &'m [u8],
) -> Result<Input<'m>, AsymError> {
    check_algorithm(spec, algorithm)?;
    if let Some(hash) = algorithm.hash() {
        return digest_of(algorithm, hash, message_type, message).map(Input::Digest);
    }
    match (algorithm, message_type) {
        (SigningAlgorithm::Ed25519Sha512 | SigningAlgorithm::MlDsaShake256, MessageType::Raw) => {
            Ok(Input::Message(message))
        }
        (SigningAlgorithm::MlDsaShake256, MessageType::ExternalMu) => {
            if message.len() == mldsa::MU_LEN {
                Ok(Input::Mu(message))
            } else {
                Err(AsymError::DigestLength {
                    expected: mldsa::MU_LEN,
                    actual: message.len(),
                })
            }
        }
        #[cfg(feature = "sm2")]
        (SigningAlgorithm::Sm2dsa, MessageType::Raw) => Ok(Input::Message(message)),
        #[cfg(feature = "sm2")]
        (SigningAlgorithm::Sm2dsa, MessageType::Digest) => {
            if message.len() == super::sm2::DIGEST_LEN {
                Ok(Input::Digest(Cow::Borrowed(message)))
            } else {
                Err(AsymError::DigestLength {
                    expected: super::sm2::DIGEST_LEN,
                    actual: message.len(),
                })
            }
        }
        _ => Err(unsupported_message_type(algorithm, message_type)),
    }
}
