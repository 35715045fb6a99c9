//! Signing and verification for every spec × algorithm × message type, with real keys.

use std::sync::OnceLock;

use sha2::Digest as _;

use super::*;

/// Every asymmetric spec.
pub(super) const ALL_SPECS: [AsymmetricSpec; 11] = [
    AsymmetricSpec::Rsa2048,
    AsymmetricSpec::Rsa3072,
    AsymmetricSpec::Rsa4096,
    AsymmetricSpec::EccNistP256,
    AsymmetricSpec::EccNistP384,
    AsymmetricSpec::EccNistP521,
    AsymmetricSpec::EccSecgP256k1,
    AsymmetricSpec::EccNistEdwards25519,
    AsymmetricSpec::MlDsa44,
    AsymmetricSpec::MlDsa65,
    AsymmetricSpec::MlDsa87,
];

/// Every signing algorithm.
const ALL_ALGORITHMS: [SigningAlgorithm; 12] = [
    SigningAlgorithm::RsassaPssSha256,
    SigningAlgorithm::RsassaPssSha384,
    SigningAlgorithm::RsassaPssSha512,
    SigningAlgorithm::RsassaPkcs1V15Sha256,
    SigningAlgorithm::RsassaPkcs1V15Sha384,
    SigningAlgorithm::RsassaPkcs1V15Sha512,
    SigningAlgorithm::EcdsaSha256,
    SigningAlgorithm::EcdsaSha384,
    SigningAlgorithm::EcdsaSha512,
    SigningAlgorithm::Ed25519Sha512,
    SigningAlgorithm::Ed25519PhSha512,
    SigningAlgorithm::MlDsaShake256,
];

/// A private key of `spec`, generated once per test run (RSA-4096 generation is slow).
pub(super) fn key(spec: AsymmetricSpec) -> &'static [u8] {
    static KEYS: [OnceLock<SecretBytes>; 11] = [const { OnceLock::new() }; 11];
    let index = ALL_SPECS.iter().position(|s| *s == spec).unwrap_or(0);
    KEYS[index]
        .get_or_init(|| generate(spec).expect("key generation"))
        .expose()
}

/// A second key of `spec` (for ECDH and wrong-key checks), generated once per test run.
pub(super) fn other_key(spec: AsymmetricSpec) -> &'static [u8] {
    static KEYS: [OnceLock<SecretBytes>; 11] = [const { OnceLock::new() }; 11];
    let index = ALL_SPECS.iter().position(|s| *s == spec).unwrap_or(0);
    KEYS[index]
        .get_or_init(|| generate(spec).expect("key generation"))
        .expose()
}

/// The message types `algorithm` takes.
fn message_types(algorithm: SigningAlgorithm) -> &'static [MessageType] {
    match algorithm {
        SigningAlgorithm::Ed25519Sha512 => &[MessageType::Raw],
        SigningAlgorithm::MlDsaShake256 => &[MessageType::Raw, MessageType::ExternalMu],
        _ => &[MessageType::Raw, MessageType::Digest],
    }
}

/// A message of `message_type` for `algorithm`: the text itself, its digest, or a mu.
fn message_for(
    spec: AsymmetricSpec,
    algorithm: SigningAlgorithm,
    message_type: MessageType,
    text: &[u8],
) -> Vec<u8> {
    match message_type {
        MessageType::Raw => text.to_vec(),
        MessageType::Digest => algorithm.hash().expect("hashing algorithm").digest(text),
        MessageType::ExternalMu => mu(spec, text),
    }
}

/// FIPS 204 mu of `text` with an empty context, computed independently of `ml-dsa`:
/// SHAKE256(SHAKE256(pk, 64) || 0x00 || 0x00 || text, 64).
pub(super) fn mu(spec: AsymmetricSpec, text: &[u8]) -> Vec<u8> {
    use sha3::digest::{ExtendableOutput, Update, XofReader};
    let spki_der = public_key_der(spec, key(spec)).expect("public key");
    let spki = spki::SubjectPublicKeyInfoRef::try_from(spki_der.as_slice()).expect("spki");
    let pk = spki.subject_public_key.raw_bytes();
    let mut tr = [0u8; 64];
    let mut h = sha3::Shake256::default();
    h.update(pk);
    h.finalize_xof().read(&mut tr);
    let mut mu = vec![0u8; 64];
    let mut h = sha3::Shake256::default();
    h.update(&tr);
    h.update(&[0, 0]);
    h.update(text);
    h.finalize_xof().read(&mut mu);
    mu
}

/// Sign-then-verify, tampering and cross-message-type checks for every algorithm of `spec`.
fn exercise(spec: AsymmetricSpec) {
    let sk = key(spec);
    let text = b"Keyhold signs what KMS would sign";
    for &algorithm in spec.signing_algorithms() {
        for &mt in message_types(algorithm) {
            let what = format!("{} {} {mt:?}", spec.aws_name(), algorithm.aws_name());
            let message = message_for(spec, algorithm, mt, text);
            let signature = sign(spec, sk, algorithm, mt, &message).expect(&what);
            assert_eq!(
                verify(spec, sk, algorithm, mt, &message, &signature),
                Ok(true),
                "{what}"
            );

            // Another message (or digest of one) does not verify.
            let other = message_for(spec, algorithm, mt, b"Keyhold signs what KMS would sigN");
            assert_eq!(
                verify(spec, sk, algorithm, mt, &other, &signature),
                Ok(false),
                "{what}"
            );

            // Any flipped bit, truncation, extension or garbage is simply false.
            for position in [0, signature.len() / 2, signature.len() - 1] {
                let mut bad = signature.clone();
                bad[position] ^= 0x01;
                assert_eq!(
                    verify(spec, sk, algorithm, mt, &message, &bad),
                    Ok(false),
                    "{what}"
                );
            }
            let truncated = &signature[..signature.len() - 1];
            assert_eq!(
                verify(spec, sk, algorithm, mt, &message, truncated),
                Ok(false)
            );
            let mut extended = signature.clone();
            extended.push(0);
            assert_eq!(
                verify(spec, sk, algorithm, mt, &message, &extended),
                Ok(false)
            );
            assert_eq!(verify(spec, sk, algorithm, mt, &message, &[]), Ok(false));
            assert_eq!(
                verify(spec, sk, algorithm, mt, &message, &[0x30; 7]),
                Ok(false)
            );

            // Another key of the same spec does not verify it.
            let other_sk = other_key(spec);
            assert_eq!(
                verify(spec, other_sk, algorithm, mt, &message, &signature),
                Ok(false)
            );

            // A signature over one message type verifies as every other type of the same text.
            for &other_mt in message_types(algorithm) {
                let other_message = message_for(spec, algorithm, other_mt, text);
                assert_eq!(
                    verify(spec, sk, algorithm, other_mt, &other_message, &signature),
                    Ok(true),
                    "{what} verified as {other_mt:?}"
                );
            }
        }
    }
}

#[test]
fn rsa_2048_signs_and_verifies() {
    exercise(AsymmetricSpec::Rsa2048);
}

#[test]
fn rsa_3072_signs_and_verifies() {
    exercise(AsymmetricSpec::Rsa3072);
}

#[test]
fn rsa_4096_signs_and_verifies() {
    exercise(AsymmetricSpec::Rsa4096);
}

#[test]
fn ecc_nist_p256_signs_and_verifies() {
    exercise(AsymmetricSpec::EccNistP256);
}

#[test]
fn ecc_nist_p384_signs_and_verifies() {
    exercise(AsymmetricSpec::EccNistP384);
}

#[test]
fn ecc_nist_p521_signs_and_verifies() {
    exercise(AsymmetricSpec::EccNistP521);
}

#[test]
fn ecc_secg_p256k1_signs_and_verifies() {
    exercise(AsymmetricSpec::EccSecgP256k1);
}

#[test]
fn ed25519_signs_and_verifies() {
    exercise(AsymmetricSpec::EccNistEdwards25519);
}

#[test]
fn ml_dsa_44_signs_and_verifies() {
    exercise(AsymmetricSpec::MlDsa44);
}

#[test]
fn ml_dsa_65_signs_and_verifies() {
    exercise(AsymmetricSpec::MlDsa65);
}

#[test]
fn ml_dsa_87_signs_and_verifies() {
    exercise(AsymmetricSpec::MlDsa87);
}

#[test]
fn digests_of_the_wrong_length_are_refused() {
    for spec in ALL_SPECS {
        let sk = key(spec);
        for &algorithm in spec.signing_algorithms() {
            let (mt, expected) = match algorithm.hash() {
                Some(hash) => (MessageType::Digest, hash.len()),
                None if algorithm == SigningAlgorithm::MlDsaShake256 => {
                    (MessageType::ExternalMu, 64)
                }
                None => continue,
            };
            for actual in [0, 20, expected - 1, expected + 1, 2 * expected] {
                let message = vec![0x5a; actual];
                let error = || AsymError::DigestLength { expected, actual };
                assert_eq!(sign(spec, sk, algorithm, mt, &message), Err(error()));
                assert_eq!(
                    verify(spec, sk, algorithm, mt, &message, &[0; 64]),
                    Err(error())
                );
            }
        }
    }
}

#[test]
fn algorithms_of_other_specs_are_unsupported() {
    for spec in ALL_SPECS {
        let sk = key(spec);
        for algorithm in ALL_ALGORITHMS {
            if spec.signing_algorithms().contains(&algorithm) {
                continue;
            }
            for mt in [
                MessageType::Raw,
                MessageType::Digest,
                MessageType::ExternalMu,
            ] {
                let message = [0u8; 64];
                let signed = sign(spec, sk, algorithm, mt, &message);
                let Err(AsymError::Unsupported(text)) = signed else {
                    panic!("{spec:?} {algorithm:?} {mt:?} signed: {signed:?}");
                };
                assert!(text.contains(algorithm.aws_name()) && text.contains(spec.aws_name()));
                assert!(matches!(
                    verify(spec, sk, algorithm, mt, &message, &[0; 64]),
                    Err(AsymError::Unsupported(_))
                ));
            }
        }
    }
}

#[test]
fn message_types_an_algorithm_does_not_take_are_unsupported() {
    let mut refused = Vec::new();
    for spec in ALL_SPECS {
        for &algorithm in spec.signing_algorithms() {
            for mt in [
                MessageType::Raw,
                MessageType::Digest,
                MessageType::ExternalMu,
            ] {
                if message_types(algorithm).contains(&mt) {
                    continue;
                }
                // Right length for the type, so only the type itself can be the problem.
                let message = [0u8; 64];
                let sk = key(spec);
                assert!(
                    matches!(
                        sign(spec, sk, algorithm, mt, &message),
                        Err(AsymError::Unsupported(_))
                    ),
                    "{spec:?} {algorithm:?} {mt:?}"
                );
                assert!(matches!(
                    verify(spec, sk, algorithm, mt, &message, &[0; 64]),
                    Err(AsymError::Unsupported(_))
                ));
                refused.push((algorithm, mt));
            }
        }
    }
    // DIGEST with pure Ed25519 and ML-DSA, EXTERNAL_MU with everything but ML-DSA.
    assert!(refused.contains(&(SigningAlgorithm::Ed25519Sha512, MessageType::Digest)));
    assert!(refused.contains(&(SigningAlgorithm::MlDsaShake256, MessageType::Digest)));
    assert!(refused.contains(&(SigningAlgorithm::EcdsaSha256, MessageType::ExternalMu)));
    assert!(refused.contains(&(SigningAlgorithm::RsassaPssSha256, MessageType::ExternalMu)));
    assert!(refused.contains(&(SigningAlgorithm::Ed25519PhSha512, MessageType::ExternalMu)));
    assert!(!refused.iter().any(|(_, mt)| *mt == MessageType::Raw));
}

#[test]
fn rsa_signatures_are_standard_and_pss_randomized() {
    use ::rsa::pkcs8::DecodePublicKey;
    use ::rsa::signature::Verifier;
    let spec = AsymmetricSpec::Rsa2048;
    let public =
        ::rsa::RsaPublicKey::from_public_key_der(&public_key_der(spec, key(spec)).unwrap())
            .expect("rsaEncryption SPKI");
    let text = b"checked by the rsa crate's own verifiers";
    let pkcs1 = sign(
        spec,
        key(spec),
        SigningAlgorithm::RsassaPkcs1V15Sha384,
        MessageType::Raw,
        text,
    )
    .unwrap();
    let verifier = ::rsa::pkcs1v15::VerifyingKey::<sha2::Sha384>::new(public.clone());
    let sig = ::rsa::pkcs1v15::Signature::try_from(pkcs1.as_slice()).unwrap();
    assert!(verifier.verify(text, &sig).is_ok());
    // PKCS#1 v1.5 is deterministic; PSS draws a fresh salt.
    let again = sign(
        spec,
        key(spec),
        SigningAlgorithm::RsassaPkcs1V15Sha384,
        MessageType::Raw,
        text,
    );
    assert_eq!(again, Ok(pkcs1));
    let pss = sign(
        spec,
        key(spec),
        SigningAlgorithm::RsassaPssSha512,
        MessageType::Raw,
        text,
    )
    .unwrap();
    let verifier = ::rsa::pss::VerifyingKey::<sha2::Sha512>::new(public);
    let sig = ::rsa::pss::Signature::try_from(pss.as_slice()).unwrap();
    assert!(verifier.verify(text, &sig).is_ok());
    assert_eq!(pss.len(), 256);
    let pss_again = sign(
        spec,
        key(spec),
        SigningAlgorithm::RsassaPssSha512,
        MessageType::Raw,
        text,
    )
    .unwrap();
    assert_ne!(pss, pss_again);
}

#[test]
fn ecdsa_signatures_are_der_and_verify_with_the_curve_crate() {
    use ::p256::ecdsa::signature::Verifier;
    use spki::DecodePublicKey;
    let text = b"checked by p256's own verifier, hashing with SHA-256 itself";
    let spec = AsymmetricSpec::EccNistP256;
    let der = sign(
        spec,
        key(spec),
        SigningAlgorithm::EcdsaSha256,
        MessageType::Raw,
        text,
    )
    .unwrap();
    assert_eq!(der[0], 0x30, "DER SEQUENCE");
    assert_eq!(usize::from(der[1]) + 2, der.len());
    let vk =
        ::p256::ecdsa::VerifyingKey::from_public_key_der(&public_key_der(spec, key(spec)).unwrap())
            .unwrap();
    let sig = ::p256::ecdsa::DerSignature::try_from(der.as_slice()).unwrap();
    assert!(vk.verify(text, &sig).is_ok());

    let spec = AsymmetricSpec::EccNistP521;
    let der = sign(
        spec,
        key(spec),
        SigningAlgorithm::EcdsaSha512,
        MessageType::Raw,
        text,
    )
    .unwrap();
    let vk = ::p521::ecdsa::VerifyingKey::from_sec1_bytes(
        spki::SubjectPublicKeyInfoRef::try_from(
            public_key_der(spec, key(spec)).unwrap().as_slice(),
        )
        .unwrap()
        .subject_public_key
        .raw_bytes(),
    )
    .unwrap();
    let sig = ::p521::ecdsa::Signature::from_der(&der).unwrap();
    assert!(
        vk.verify(text, &sig).is_ok(),
        "P-521 hashes RAW with SHA-512"
    );
}

#[test]
fn ed25519ph_digest_matches_the_library_prehash_and_rfc_8032() {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    let spec = AsymmetricSpec::EccNistEdwards25519;
    let alg = SigningAlgorithm::Ed25519PhSha512;
    let text = b"pre-hashed with SHA-512";
    let raw = sign(spec, key(spec), alg, MessageType::Raw, text).unwrap();
    let digest = sha2::Sha512::digest(text);
    let from_digest = sign(spec, key(spec), alg, MessageType::Digest, &digest).unwrap();
    assert_eq!(raw, from_digest, "Ed25519ph is deterministic");
    let dalek = ed25519_dalek::SigningKey::from_pkcs8_der(key(spec)).unwrap();
    let native = dalek
        .sign_prehashed(sha2::Sha512::new().chain_update(text), None)
        .unwrap();
    assert_eq!(
        raw,
        native.to_bytes().to_vec(),
        "same as the library hashing M itself"
    );
    let pure = sign(
        spec,
        key(spec),
        SigningAlgorithm::Ed25519Sha512,
        MessageType::Raw,
        text,
    );
    assert_ne!(
        pure.as_ref().ok(),
        Some(&raw),
        "Ed25519ph differs from pure Ed25519"
    );
    assert_eq!(
        verify(spec, key(spec), alg, MessageType::Raw, text, &pure.unwrap()),
        Ok(false)
    );

    // RFC 8032 §7.3 TEST abc and §7.1 TEST 1, through a PKCS#8 key.
    let rfc_key = |seed: &str| {
        let mut der = hex_bytes("302e020100300506032b657004220420");
        der.extend(hex_bytes(seed));
        der
    };
    let ph_key = rfc_key("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42");
    let expected = hex_bytes(
        "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41\
         31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406",
    );
    assert_eq!(
        sign(spec, &ph_key, alg, MessageType::Raw, b"abc"),
        Ok(expected.clone())
    );
    let abc_digest = sha2::Sha512::digest(b"abc");
    assert_eq!(
        sign(spec, &ph_key, alg, MessageType::Digest, &abc_digest),
        Ok(expected)
    );
    let pure_key = rfc_key("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
    let expected = hex_bytes(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
         5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    );
    let pure = sign(
        spec,
        &pure_key,
        SigningAlgorithm::Ed25519Sha512,
        MessageType::Raw,
        b"",
    );
    assert_eq!(pure, Ok(expected));
}

#[test]
fn ml_dsa_is_hedged_and_verifies_with_the_library_from_the_spki() {
    let spec = AsymmetricSpec::MlDsa65;
    let alg = SigningAlgorithm::MlDsaShake256;
    let text = b"post-quantum";
    let one = sign(spec, key(spec), alg, MessageType::Raw, text).unwrap();
    let two = sign(spec, key(spec), alg, MessageType::Raw, text).unwrap();
    assert_ne!(one, two, "hedged signing draws fresh randomness");
    assert_eq!(one.len(), 3309);
    let spki_der = public_key_der(spec, key(spec)).unwrap();
    let spki = spki::SubjectPublicKeyInfoRef::try_from(spki_der.as_slice()).unwrap();
    let encoded = ml_dsa::EncodedVerifyingKey::<ml_dsa::MlDsa65>::try_from(
        spki.subject_public_key.raw_bytes(),
    )
    .unwrap();
    let vk = ml_dsa::VerifyingKey::<ml_dsa::MlDsa65>::decode(&encoded);
    let sig = ml_dsa::Signature::<ml_dsa::MlDsa65>::try_from(one.as_slice()).unwrap();
    assert!(vk.verify_with_context(text, &[], &sig));
    assert!(
        !vk.verify_with_context(text, b"ctx", &sig),
        "signed with an empty context"
    );
}

/// Bytes of a hex string (test vectors).
pub(super) fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}
