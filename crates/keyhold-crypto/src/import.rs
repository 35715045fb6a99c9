//! Key material imported into KMS keys: the RSA wrapping keys of `GetParametersForImport`,
//! unwrapping `ImportKeyMaterial`'s encrypted key material with each wrapping algorithm, and
//! the identifier of imported material.
//!
//! * `RSAES_OAEP_SHA_1` / `RSAES_OAEP_SHA_256`: the material itself is RSAES-OAEP encrypted
//!   (MGF1 with the same hash, no label) under the wrapping public key.
//! * `RSA_AES_KEY_WRAP_SHA_1` / `RSA_AES_KEY_WRAP_SHA_256`: an ephemeral AES key, RSAES-OAEP
//!   encrypted under the wrapping key (exactly one modulus long), followed by the material
//!   wrapped under that AES key with AES Key Wrap with Padding ([`crate::keywrap`]) — what
//!   PKCS#11's `CKM_RSA_AES_KEY_WRAP` and OpenSSL's `id-aes256-wrap-pad` produce.
//!
//! Every way an encrypted key material can fail to unwrap is one error ([`ImportError::Unwrap`]).

use hmac::{Mac, SimpleHmac};
use sha2::Sha256;

use crate::asym::{self, AsymError, AsymmetricSpec, OaepAlgorithm};
use crate::keywrap;
use crate::SecretBytes;

/// A wrapping algorithm (`AlgorithmSpec`) Keyhold accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WrappingAlgorithm {
    /// `RSAES_OAEP_SHA_1`.
    RsaesOaepSha1,
    /// `RSAES_OAEP_SHA_256`.
    RsaesOaepSha256,
    /// `RSA_AES_KEY_WRAP_SHA_1`.
    RsaAesKeyWrapSha1,
    /// `RSA_AES_KEY_WRAP_SHA_256`.
    RsaAesKeyWrapSha256,
}

/// Every wrapping algorithm with its KMS name.
const ALGORITHMS: [(WrappingAlgorithm, &str); 4] = [
    (WrappingAlgorithm::RsaesOaepSha1, "RSAES_OAEP_SHA_1"),
    (WrappingAlgorithm::RsaesOaepSha256, "RSAES_OAEP_SHA_256"),
    (
        WrappingAlgorithm::RsaAesKeyWrapSha1,
        "RSA_AES_KEY_WRAP_SHA_1",
    ),
    (
        WrappingAlgorithm::RsaAesKeyWrapSha256,
        "RSA_AES_KEY_WRAP_SHA_256",
    ),
];

impl WrappingAlgorithm {
    /// The algorithm of KMS name `name` (`None` for names Keyhold does not accept).
    pub fn from_aws_name(name: &str) -> Option<Self> {
        ALGORITHMS.iter().find(|(_, n)| *n == name).map(|(a, _)| *a)
    }

    /// The KMS name.
    pub fn aws_name(self) -> &'static str {
        ALGORITHMS
            .iter()
            .find(|(a, _)| *a == self)
            .map_or("", |(_, n)| n)
    }

    /// The OAEP hash of the RSA step.
    pub fn oaep(self) -> OaepAlgorithm {
        match self {
            Self::RsaesOaepSha1 | Self::RsaAesKeyWrapSha1 => OaepAlgorithm::Sha1,
            Self::RsaesOaepSha256 | Self::RsaAesKeyWrapSha256 => OaepAlgorithm::Sha256,
        }
    }

    /// True for the two-step RSA + AES Key Wrap algorithms.
    pub fn is_rsa_aes(self) -> bool {
        matches!(self, Self::RsaAesKeyWrapSha1 | Self::RsaAesKeyWrapSha256)
    }

    /// A one-byte code, stable across releases (import tokens carry it).
    pub fn code(self) -> u8 {
        match self {
            Self::RsaesOaepSha1 => 1,
            Self::RsaesOaepSha256 => 2,
            Self::RsaAesKeyWrapSha1 => 3,
            Self::RsaAesKeyWrapSha256 => 4,
        }
    }

    /// The algorithm of a [`WrappingAlgorithm::code`].
    pub fn from_code(code: u8) -> Option<Self> {
        ALGORITHMS
            .iter()
            .map(|(a, _)| *a)
            .find(|a| a.code() == code)
    }
}

/// An RSA wrapping key spec (`WrappingKeySpec`) Keyhold accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WrappingKeySpec {
    /// `RSA_2048`.
    Rsa2048,
    /// `RSA_3072`.
    Rsa3072,
    /// `RSA_4096`.
    Rsa4096,
}

impl WrappingKeySpec {
    /// The spec of KMS name `name` (`None` for names Keyhold does not accept).
    pub fn from_aws_name(name: &str) -> Option<Self> {
        match name {
            "RSA_2048" => Some(Self::Rsa2048),
            "RSA_3072" => Some(Self::Rsa3072),
            "RSA_4096" => Some(Self::Rsa4096),
            _ => None,
        }
    }

    /// The asymmetric key spec of the same RSA size.
    pub fn asymmetric(self) -> AsymmetricSpec {
        match self {
            Self::Rsa2048 => AsymmetricSpec::Rsa2048,
            Self::Rsa3072 => AsymmetricSpec::Rsa3072,
            Self::Rsa4096 => AsymmetricSpec::Rsa4096,
        }
    }

    /// The modulus length in bytes: the length of one RSA ciphertext.
    pub fn modulus_len(self) -> usize {
        match self {
            Self::Rsa2048 => 256,
            Self::Rsa3072 => 384,
            Self::Rsa4096 => 512,
        }
    }

    /// A one-byte code, stable across releases (import tokens carry it).
    pub fn code(self) -> u8 {
        match self {
            Self::Rsa2048 => 1,
            Self::Rsa3072 => 2,
            Self::Rsa4096 => 3,
        }
    }

    /// The spec of a [`WrappingKeySpec::code`].
    pub fn from_code(code: u8) -> Option<Self> {
        [Self::Rsa2048, Self::Rsa3072, Self::Rsa4096]
            .into_iter()
            .find(|s| s.code() == code)
    }
}

/// Why encrypted key material could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The encrypted key material does not unwrap under the wrapping key with the algorithm.
    #[error("the encrypted key material does not unwrap under this wrapping key and algorithm")]
    Unwrap,
    /// The wrapping private key itself is unusable (a bug or corruption, never the caller's
    /// input).
    #[error("the wrapping key is unusable: {0}")]
    WrappingKey(#[source] AsymError),
}

/// A new RSA wrapping key pair of `spec`: the private key as PKCS#8 DER. CPU-bound (seconds
/// for RSA-4096 in unoptimised builds); run it off async executors.
pub fn generate_wrapping_key(spec: WrappingKeySpec) -> Result<SecretBytes, AsymError> {
    asym::generate(spec.asymmetric())
}

/// The DER SubjectPublicKeyInfo of a wrapping key made by [`generate_wrapping_key`] (what
/// `GetParametersForImport` returns as `PublicKey`).
pub fn wrapping_public_key(
    spec: WrappingKeySpec,
    private_key: &[u8],
) -> Result<Vec<u8>, AsymError> {
    asym::public_key_der(spec.asymmetric(), private_key)
}

/// Unwraps `encrypted` key material with the wrapping private key `private_key` of `spec` and
/// `algorithm`.
pub fn unwrap_key_material(
    spec: WrappingKeySpec,
    private_key: &[u8],
    algorithm: WrappingAlgorithm,
    encrypted: &[u8],
) -> Result<SecretBytes, ImportError> {
    let rsa = |ciphertext: &[u8]| {
        asym::rsa_decrypt(spec.asymmetric(), private_key, algorithm.oaep(), ciphertext).map_err(
            |e| match e {
                AsymError::InvalidPrivateKey(_) => ImportError::WrappingKey(e),
                _ => ImportError::Unwrap,
            },
        )
    };
    if !algorithm.is_rsa_aes() {
        return rsa(encrypted);
    }
    let k = spec.modulus_len();
    if encrypted.len() <= k {
        return Err(ImportError::Unwrap);
    }
    let (wrapped_aes_key, wrapped_material) = encrypted.split_at(k);
    let aes_key = rsa(wrapped_aes_key)?;
    keywrap::unwrap_with_padding(aes_key.expose(), wrapped_material)
        .map_err(|_| ImportError::Unwrap)
}

/// The identifier of imported key material: 64 lowercase hex characters, the HMAC-SHA-256 of
/// a fixed label and `binding` (the KMS key it is imported into) keyed by the material.
///
/// The same material imported into the same key always gets the same identifier (so
/// ciphertexts naming it decrypt again after it is deleted and reimported, and a reimport can
/// be recognised as the same material), while the identifier reveals nothing about the
/// material and differs between keys, as AWS describes its key material identifiers.
pub fn material_id(material: &[u8], binding: &str) -> String {
    // HMAC takes keys of any length, so this never fails.
    let mut mac = <SimpleHmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(material)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    mac.update(b"keyhold/imported-key-material-id/v1\n");
    mac.update(binding.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa_2048() -> SecretBytes {
        generate_wrapping_key(WrappingKeySpec::Rsa2048).unwrap()
    }

    #[test]
    fn names_and_codes_round_trip() {
        for (a, name) in ALGORITHMS {
            assert_eq!(WrappingAlgorithm::from_aws_name(name), Some(a));
            assert_eq!(a.aws_name(), name);
            assert_eq!(WrappingAlgorithm::from_code(a.code()), Some(a));
        }
        assert_eq!(WrappingAlgorithm::from_aws_name("RSAES_PKCS1_V1_5"), None);
        assert_eq!(WrappingAlgorithm::from_aws_name("SM2PKE"), None);
        for s in ["RSA_2048", "RSA_3072", "RSA_4096"] {
            let spec = WrappingKeySpec::from_aws_name(s).unwrap();
            assert_eq!(WrappingKeySpec::from_code(spec.code()), Some(spec));
            assert_eq!(spec.asymmetric().aws_name(), s);
        }
        assert_eq!(WrappingKeySpec::from_aws_name("SM2"), None);
    }

    /// Material wrapped as a client does (with the public key only) unwraps with every
    /// algorithm; anything else is the one `Unwrap` error.
    #[test]
    fn every_algorithm_unwraps_what_a_client_wraps() {
        use ::rsa::pkcs8::DecodePublicKey;
        let private = rsa_2048();
        let spki = wrapping_public_key(WrappingKeySpec::Rsa2048, private.expose()).unwrap();
        let public = ::rsa::RsaPublicKey::from_public_key_der(&spki).unwrap();
        let material = crate::random_bytes(32);
        for (algorithm, _) in ALGORITHMS {
            let oaep = || match algorithm.oaep() {
                OaepAlgorithm::Sha1 => ::rsa::Oaep::new::<sha1::Sha1>(),
                OaepAlgorithm::Sha256 => ::rsa::Oaep::new::<sha2::Sha256>(),
            };
            let mut rng = rand::rngs::OsRng;
            let encrypted = if algorithm.is_rsa_aes() {
                let aes = crate::random_bytes(32);
                let mut out = public.encrypt(&mut rng, oaep(), aes.expose()).unwrap();
                out.extend(keywrap::wrap_with_padding(aes.expose(), material.expose()).unwrap());
                out
            } else {
                public.encrypt(&mut rng, oaep(), material.expose()).unwrap()
            };
            let got = unwrap_key_material(
                WrappingKeySpec::Rsa2048,
                private.expose(),
                algorithm,
                &encrypted,
            )
            .unwrap();
            assert_eq!(got.expose(), material.expose(), "{algorithm:?}");
            // The other hash, a flipped byte, a truncation: all refused alike.
            let other = match algorithm {
                WrappingAlgorithm::RsaesOaepSha1 => WrappingAlgorithm::RsaesOaepSha256,
                WrappingAlgorithm::RsaesOaepSha256 => WrappingAlgorithm::RsaesOaepSha1,
                WrappingAlgorithm::RsaAesKeyWrapSha1 => WrappingAlgorithm::RsaAesKeyWrapSha256,
                WrappingAlgorithm::RsaAesKeyWrapSha256 => WrappingAlgorithm::RsaAesKeyWrapSha1,
            };
            let mut flipped = encrypted.clone();
            let last = flipped.len() - 1;
            flipped[last] ^= 1;
            for bad in [
                (other, encrypted.clone()),
                (algorithm, flipped),
                (algorithm, encrypted[..200].to_vec()),
                (algorithm, Vec::new()),
            ] {
                let r =
                    unwrap_key_material(WrappingKeySpec::Rsa2048, private.expose(), bad.0, &bad.1);
                assert!(matches!(r, Err(ImportError::Unwrap)), "{algorithm:?}");
            }
        }
    }

    /// Imported private keys are checked against the spec and stored in one canonical form,
    /// whatever valid encoding they came in.
    #[test]
    fn imported_private_keys_are_checked_and_canonical() {
        use ed25519_dalek::pkcs8::{EncodePrivateKey, KeypairBytes};
        for spec in [
            AsymmetricSpec::EccNistP256,
            AsymmetricSpec::EccNistP384,
            AsymmetricSpec::EccNistP521,
            AsymmetricSpec::EccSecgP256k1,
            AsymmetricSpec::Rsa2048,
            AsymmetricSpec::EccNistEdwards25519,
        ] {
            let key = asym::generate(spec).unwrap();
            let imported = asym::import_private_key(spec, key.expose()).unwrap();
            assert_eq!(imported.expose(), key.expose(), "{spec:?}");
        }
        // Another curve or size, garbage, and ML-DSA are refused.
        let p384 = asym::generate(AsymmetricSpec::EccNistP384).unwrap();
        assert!(asym::import_private_key(AsymmetricSpec::EccNistP256, p384.expose()).is_err());
        let rsa = asym::generate(AsymmetricSpec::Rsa2048).unwrap();
        assert!(asym::import_private_key(AsymmetricSpec::Rsa3072, rsa.expose()).is_err());
        assert!(
            asym::import_private_key(AsymmetricSpec::EccNistP256, &[0x30, 3, 1, 2, 3]).is_err()
        );
        let seed = asym::generate(AsymmetricSpec::MlDsa44).unwrap();
        assert!(asym::import_private_key(AsymmetricSpec::MlDsa44, seed.expose()).is_err());
        // Ed25519 in PKCS#8 v2 (with the public key) is stored as v1, the seed only.
        let v1 = asym::generate(AsymmetricSpec::EccNistEdwards25519).unwrap();
        let signing = ed25519_dalek::SigningKey::from_bytes(
            &v1.expose()[v1.len() - 32..].try_into().unwrap(),
        );
        let v2 = KeypairBytes {
            secret_key: signing.to_bytes(),
            public_key: Some(ed25519_dalek::pkcs8::PublicKeyBytes(
                signing.verifying_key().to_bytes(),
            )),
        }
        .to_pkcs8_der()
        .unwrap();
        assert_ne!(v2.as_bytes(), v1.expose());
        let imported =
            asym::import_private_key(AsymmetricSpec::EccNistEdwards25519, v2.as_bytes()).unwrap();
        assert_eq!(imported.expose(), v1.expose());
    }

    #[test]
    fn material_ids_are_stable_per_key_and_distinct_across_keys() {
        let m = crate::random_bytes(32);
        let a = material_id(m.expose(), "arn:aws:kms:us-east-1:111122223333:key/a");
        assert_eq!(a.len(), 64);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(
            a,
            material_id(m.expose(), "arn:aws:kms:us-east-1:111122223333:key/a")
        );
        assert_ne!(
            a,
            material_id(m.expose(), "arn:aws:kms:us-east-1:111122223333:key/b")
        );
        let other = crate::random_bytes(32);
        assert_ne!(
            a,
            material_id(other.expose(), "arn:aws:kms:us-east-1:111122223333:key/a")
        );
    }
}
