//! Signing and verification per key spec, two ways: through `keyhold_crypto::asym` (which
//! parses the stored private key on every call, as a request does) and through the library
//! call alone with a key parsed beforehand. The difference is the cost of parsing (and for
//! ML-DSA, expanding the seed) per call.
//!
//! Run with `cargo bench -p keyhold-crypto --bench asym`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ecdsa::signature::hazmat::{PrehashVerifier, RandomizedPrehashSigner};
use ed25519_dalek::Signer as _;
use keyhold_crypto::asym::{self, AsymmetricSpec, MessageType, SigningAlgorithm};
use pkcs8::DecodePrivateKey;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

/// The message signed: a typical small KMS Sign request.
const MESSAGE: &[u8] = &[0x5a; 256];

/// Benchmarks `asym::sign`/`asym::verify` against `raw_sign`/`raw_verify` for one spec, on a
/// new key that `parse` turns into the library's types beforehand for the raw path.
fn compare<K>(
    c: &mut Criterion,
    spec: AsymmetricSpec,
    algorithm: SigningAlgorithm,
    parse: impl FnOnce(&[u8]) -> K,
    raw_sign: impl Fn(&K, &[u8]) -> Vec<u8>,
    raw_verify: impl Fn(&K, &[u8], &[u8]) -> bool,
) {
    let key = asym::generate(spec).expect("key generation");
    let key = key.expose();
    let parsed = parse(key);
    let mut group = c.benchmark_group(spec.aws_name());
    group.bench_function(BenchmarkId::new("sign", "keyhold"), |b| {
        b.iter(|| {
            asym::sign(spec, key, algorithm, MessageType::Raw, black_box(MESSAGE)).expect("sign")
        })
    });
    group.bench_function(BenchmarkId::new("sign", "raw"), |b| {
        b.iter(|| raw_sign(&parsed, black_box(MESSAGE)))
    });
    let signature = asym::sign(spec, key, algorithm, MessageType::Raw, MESSAGE).expect("sign");
    assert!(
        raw_verify(&parsed, MESSAGE, &signature),
        "raw path verifies ours"
    );
    group.bench_function(BenchmarkId::new("verify", "keyhold"), |b| {
        b.iter(|| {
            let ok = asym::verify(spec, key, algorithm, MessageType::Raw, MESSAGE, &signature);
            assert_eq!(ok, Ok(true));
        })
    });
    group.bench_function(BenchmarkId::new("verify", "raw"), |b| {
        b.iter(|| assert!(raw_verify(&parsed, black_box(MESSAGE), &signature)))
    });
    group.finish();
}

fn rsa_2048(c: &mut Criterion) {
    use rsa::{Pss, RsaPrivateKey, RsaPublicKey};
    compare(
        c,
        AsymmetricSpec::Rsa2048,
        SigningAlgorithm::RsassaPssSha256,
        |der| {
            let key = RsaPrivateKey::from_pkcs8_der(der).expect("RSA key");
            let public = RsaPublicKey::from(&key);
            (key, public)
        },
        |(key, _), message| {
            key.sign_with_rng(
                &mut OsRng,
                Pss::new_blinded_with_salt::<Sha256>(32),
                &Sha256::digest(message),
            )
            .expect("sign")
        },
        |(_, public), message, signature| {
            public
                .verify(
                    Pss::new_with_salt::<Sha256>(32),
                    &Sha256::digest(message),
                    signature,
                )
                .is_ok()
        },
    );
}

fn ecc_nist_p256(c: &mut Criterion) {
    use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
    compare(
        c,
        AsymmetricSpec::EccNistP256,
        SigningAlgorithm::EcdsaSha256,
        |der| {
            let key = SigningKey::from(p256::SecretKey::from_pkcs8_der(der).expect("P-256 key"));
            let public = VerifyingKey::from(&key);
            (key, public)
        },
        |(key, _), message| {
            let signature: Signature = key
                .sign_prehash_with_rng(&mut OsRng, &Sha256::digest(message))
                .expect("sign");
            signature.to_der().as_bytes().to_vec()
        },
        |(_, public), message, signature| {
            Signature::from_der(signature)
                .is_ok_and(|s| public.verify_prehash(&Sha256::digest(message), &s).is_ok())
        },
    );
}

fn ecc_nist_edwards25519(c: &mut Criterion) {
    use ed25519_dalek::{Signature, SigningKey};
    compare(
        c,
        AsymmetricSpec::EccNistEdwards25519,
        SigningAlgorithm::Ed25519Sha512,
        |der| {
            let key = SigningKey::from_pkcs8_der(der).expect("Ed25519 key");
            let public = key.verifying_key();
            (key, public)
        },
        |(key, _), message| key.sign(message).to_bytes().to_vec(),
        |(_, public), message, signature| {
            Signature::from_slice(signature)
                .is_ok_and(|s| public.verify_strict(message, &s).is_ok())
        },
    );
}

fn ml_dsa_65(c: &mut Criterion) {
    use ml_dsa::common::getrandom::SysRng;
    use ml_dsa::{ExpandedSigningKey, MlDsa65, Seed, Signature, SigningKey, VerifyingKey};
    compare(
        c,
        AsymmetricSpec::MlDsa65,
        SigningAlgorithm::MlDsaShake256,
        |seed| {
            let seed = Seed::try_from(seed).expect("32-byte seed");
            let key = ExpandedSigningKey::<MlDsa65>::from_seed(&seed);
            let public: VerifyingKey<MlDsa65> =
                AsRef::<VerifyingKey<MlDsa65>>::as_ref(&SigningKey::<MlDsa65>::from_seed(&seed))
                    .clone();
            (key, public)
        },
        |(key, _), message| {
            key.sign_randomized(message, &[], &mut SysRng)
                .expect("sign")
                .encode()
                .to_vec()
        },
        |(_, public), message, signature| {
            Signature::<MlDsa65>::try_from(signature)
                .is_ok_and(|s| public.verify_with_context(message, &[], &s))
        },
    );
}

#[cfg(feature = "sm2")]
fn sm2(c: &mut Criterion) {
    use sm2::dsa::{Signature, SigningKey, VerifyingKey};
    /// The distinguishing ID AWS KMS signs with.
    const DISTID: &str = "1234567812345678";
    compare(
        c,
        AsymmetricSpec::Sm2,
        SigningAlgorithm::Sm2dsa,
        |der| {
            let secret = sm2::SecretKey::from_pkcs8_der(der).expect("SM2 key");
            let key = SigningKey::new(DISTID, &secret).expect("SM2 signing key");
            let public = VerifyingKey::new(DISTID, secret.public_key()).expect("SM2 public key");
            (key, public)
        },
        |(key, _), message| {
            // AWS returns DER signatures; the raw path pays the same encoding.
            let signature: Signature = signature::Signer::sign(key, message);
            ecdsa::Signature::<sm2::Sm2>::from_scalars(signature.r_bytes(), signature.s_bytes())
                .expect("scalars")
                .to_der()
                .as_bytes()
                .to_vec()
        },
        |(_, public), message, signature| {
            ecdsa::Signature::<sm2::Sm2>::from_der(signature).is_ok_and(|der| {
                Signature::from_scalars(der.r().to_bytes(), der.s().to_bytes())
                    .is_ok_and(|s| signature::Verifier::verify(public, message, &s).is_ok())
            })
        },
    );
}

#[cfg(not(feature = "sm2"))]
fn sm2(_: &mut Criterion) {}

criterion_group!(
    benches,
    rsa_2048,
    ecc_nist_p256,
    ecc_nist_edwards25519,
    ml_dsa_65,
    sm2
);
criterion_main!(benches);
