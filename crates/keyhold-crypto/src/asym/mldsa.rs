//! ML-DSA keys (FIPS 204): the private key is stored as its 32-byte seed ξ, from which
//! `ML-DSA.KeyGen_internal` derives the key pair on every use. Signing is hedged (fresh
//! randomness per signature) with an empty context string, over the message itself (RAW) or an
//! externally computed mu (EXTERNAL_MU).

use ml_dsa::common::array::Array;
use ml_dsa::common::getrandom::SysRng;
use ml_dsa::common::typenum::U64;
use ml_dsa::{
    EncodedVerifyingKey, ExpandedSigningKey, MlDsa44, MlDsa65, MlDsa87, MlDsaParams, Seed,
    Signature, SigningKey, VerifyingKey,
};
use rand::RngCore;
use spki::der::asn1::BitString;
use spki::der::Encode;
use spki::{AlgorithmIdentifierOwned, ObjectIdentifier, SubjectPublicKeyInfoOwned};
use zeroize::Zeroize;

use super::{AsymError, Input};
use crate::SecretBytes;

/// Length of mu, the message representative ML-DSA signs.
pub(super) const MU_LEN: usize = 64;

/// Length of the stored seed.
const SEED_LEN: usize = 32;

/// An ML-DSA parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Level {
    /// ML-DSA-44.
    L44,
    /// ML-DSA-65.
    L65,
    /// ML-DSA-87.
    L87,
}

/// id-ml-dsa-44 (NIST CSOR sigAlgs 17); checked at compile time.
const ID_ML_DSA_44: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.17");
/// id-ml-dsa-65 (NIST CSOR sigAlgs 18).
const ID_ML_DSA_65: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.18");
/// id-ml-dsa-87 (NIST CSOR sigAlgs 19).
const ID_ML_DSA_87: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.3.19");

impl Level {
    /// The algorithm identifier OID.
    fn oid(self) -> ObjectIdentifier {
        match self {
            Level::L44 => ID_ML_DSA_44,
            Level::L65 => ID_ML_DSA_65,
            Level::L87 => ID_ML_DSA_87,
        }
    }
}

/// A new private key: 32 random bytes, the seed ξ.
pub(super) fn generate() -> SecretBytes {
    let mut seed = vec![0u8; SEED_LEN];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    SecretBytes::new(seed)
}

/// The key pair of a stored seed.
pub(super) fn parse<P: MlDsaParams>(private_key: &[u8]) -> Result<SigningKey<P>, AsymError> {
    let mut seed = Seed::try_from(private_key).map_err(|_| {
        AsymError::InvalidPrivateKey(format!(
            "an ML-DSA key is a {SEED_LEN}-byte seed, not {} bytes",
            private_key.len()
        ))
    })?;
    let key = SigningKey::<P>::from_seed(&seed);
    seed.zeroize();
    Ok(key)
}

/// The expanded signing key of a stored seed.
pub(super) fn parse_expanded<P: MlDsaParams>(
    private_key: &[u8],
) -> Result<ExpandedSigningKey<P>, AsymError> {
    let mut seed = Seed::try_from(private_key).map_err(|_| {
        AsymError::InvalidPrivateKey(format!(
            "an ML-DSA key is a {SEED_LEN}-byte seed, not {} bytes",
            private_key.len()
        ))
    })?;
    let key = ExpandedSigningKey::<P>::from_seed(&seed);
    seed.zeroize();
    Ok(key)
}

/// The SubjectPublicKeyInfo of a stored key: id-ml-dsa-*, no parameters, the FIPS 204
/// `pkEncode` bytes as the BIT STRING.
pub(super) fn public_key_der(level: Level, private_key: &[u8]) -> Result<Vec<u8>, AsymError> {
    let encoded = match level {
        Level::L44 => encoded_public_key::<MlDsa44>(private_key)?,
        Level::L65 => encoded_public_key::<MlDsa65>(private_key)?,
        Level::L87 => encoded_public_key::<MlDsa87>(private_key)?,
    };
    let encode_error =
        |e: spki::der::Error| AsymError::InvalidPrivateKey(format!("ML-DSA SPKI encoding: {e}"));
    SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: level.oid(),
            parameters: None,
        },
        subject_public_key: BitString::from_bytes(&encoded).map_err(encode_error)?,
    }
    .to_der()
    .map_err(encode_error)
}

/// The FIPS 204 encoding of the public key of a stored seed.
fn encoded_public_key<P: MlDsaParams>(private_key: &[u8]) -> Result<Vec<u8>, AsymError> {
    let key = parse::<P>(private_key)?;
    let public: &VerifyingKey<P> = key.as_ref();
    let encoded: EncodedVerifyingKey<P> = public.encode();
    Ok(encoded.to_vec())
}

/// Converts a checked 64-byte slice to mu.
fn mu_of(mu: &[u8]) -> Result<Array<u8, U64>, AsymError> {
    Array::try_from(mu).map_err(|_| AsymError::DigestLength {
        expected: MU_LEN,
        actual: mu.len(),
    })
}

/// A hedged ML-DSA signature of the prepared input (message or mu).
pub(super) fn sign(
    level: Level,
    private_key: &[u8],
    input: &Input<'_>,
) -> Result<Vec<u8>, AsymError> {
    match level {
        Level::L44 => sign_with::<MlDsa44>(private_key, input),
        Level::L65 => sign_with::<MlDsa65>(private_key, input),
        Level::L87 => sign_with::<MlDsa87>(private_key, input),
    }
}

/// [`sign`] at parameter set `P`.
fn sign_with<P: MlDsaParams>(private_key: &[u8], input: &Input<'_>) -> Result<Vec<u8>, AsymError> {
    let signed = match input {
        Input::Message(message) => {
            let key = parse_expanded::<P>(private_key)?;
            key.sign_randomized(message, &[], &mut SysRng)
        }
        Input::Mu(mu) => {
            let mu = mu_of(mu)?;
            let key = parse_expanded::<P>(private_key)?;
            key.sign_mu_randomized(&mu, &mut SysRng)
        }
        Input::Digest(_) => return Err(not_digest()),
    };
    signed
        .map(|signature| signature.encode().to_vec())
        .map_err(|e| AsymError::InvalidPrivateKey(format!("ML-DSA signing failed: {e}")))
}

/// The error for a digest input, which ML-DSA does not take.
fn not_digest() -> AsymError {
    AsymError::Unsupported("ML_DSA_SHAKE_256 does not take DIGEST messages".to_string())
}

/// Whether `signature` is a valid ML-DSA signature (empty context) of the prepared input.
pub(super) fn verify(
    level: Level,
    private_key: &[u8],
    input: &Input<'_>,
    signature: &[u8],
) -> Result<bool, AsymError> {
    match level {
        Level::L44 => verify_with::<MlDsa44>(private_key, input, signature),
        Level::L65 => verify_with::<MlDsa65>(private_key, input, signature),
        Level::L87 => verify_with::<MlDsa87>(private_key, input, signature),
    }
}

/// [`verify`] at parameter set `P`.
fn verify_with<P: MlDsaParams>(
    private_key: &[u8],
    input: &Input<'_>,
    signature: &[u8],
) -> Result<bool, AsymError> {
    if let Input::Digest(_) = input {
        return Err(not_digest());
    }
    let key = parse::<P>(private_key)?;
    let public: &VerifyingKey<P> = key.as_ref();
    let Ok(signature) = Signature::<P>::try_from(signature) else {
        return Ok(false);
    };
    match input {
        Input::Message(message) => Ok(public.verify_with_context(message, &[], &signature)),
        Input::Mu(mu) => Ok(public.verify_mu(&mu_of(mu)?, &signature)),
        Input::Digest(_) => Err(not_digest()),
    }
}
