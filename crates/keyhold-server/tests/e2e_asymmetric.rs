//! End-to-end with the official AWS SDK for Rust: every asymmetric and HMAC key spec × algorithm
//! × message type (Sign/Verify, GetPublicKey, RSA Encrypt/Decrypt, DeriveSharedSecret,
//! GenerateMac/VerifyMac, GenerateDataKeyPair), and AWS's refusals. Offline interoperability
//! (signatures checked by `cryptography` and openssl) is in tests/python/test_asymmetric.py.

mod common;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    DataKeyPairSpec, EncryptionAlgorithmSpec, KeyAgreementAlgorithmSpec, KeySpec, KeyUsageType,
    MacAlgorithmSpec, MessageType, SigningAlgorithmSpec,
};
use common::{client, failure, TestServer};

const MESSAGE: &[u8] = b"signed by keyhold";

async fn create(kms: &aws_sdk_kms::Client, spec: KeySpec, usage: KeyUsageType) -> String {
    let out = kms
        .create_key()
        .key_spec(spec.clone())
        .key_usage(usage)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create {spec}: {e:?}"));
    out.key_metadata().expect("metadata").key_id().to_string()
}

/// A signing algorithm with its digest length (`None` where DIGEST is refused).
type AlgorithmRow = (SigningAlgorithmSpec, Option<usize>);

/// (spec, its algorithms).
fn signing_matrix() -> Vec<(KeySpec, Vec<AlgorithmRow>)> {
    use SigningAlgorithmSpec as S;
    let rsa = vec![
        (S::RsassaPssSha256, Some(32)),
        (S::RsassaPssSha384, Some(48)),
        (S::RsassaPssSha512, Some(64)),
        (S::RsassaPkcs1V15Sha256, Some(32)),
        (S::RsassaPkcs1V15Sha384, Some(48)),
        (S::RsassaPkcs1V15Sha512, Some(64)),
    ];
    vec![
        (KeySpec::Rsa2048, rsa.clone()),
        (KeySpec::Rsa3072, rsa.clone()),
        (KeySpec::Rsa4096, rsa),
        (KeySpec::EccNistP256, vec![(S::EcdsaSha256, Some(32))]),
        (KeySpec::EccNistP384, vec![(S::EcdsaSha384, Some(48))]),
        (KeySpec::EccNistP521, vec![(S::EcdsaSha512, Some(64))]),
        (KeySpec::EccSecgP256K1, vec![(S::EcdsaSha256, Some(32))]),
        (
            KeySpec::EccNistEdwards25519,
            vec![(S::Ed25519Sha512, None), (S::Ed25519PhSha512, Some(64))],
        ),
        (KeySpec::MlDsa44, vec![(S::MlDsaShake256, None)]),
        (KeySpec::MlDsa65, vec![(S::MlDsaShake256, None)]),
        (KeySpec::MlDsa87, vec![(S::MlDsaShake256, None)]),
    ]
}

async fn sign(
    kms: &aws_sdk_kms::Client,
    key: &str,
    algorithm: &SigningAlgorithmSpec,
    kind: MessageType,
    message: &[u8],
) -> Result<Blob, (String, String)> {
    let out = kms
        .sign()
        .key_id(key)
        .message(Blob::new(message.to_vec()))
        .message_type(kind)
        .signing_algorithm(algorithm.clone())
        .send()
        .await
        .map_err(|e| failure::<(), _>(Err(e)))?;
    Ok(out.signature().cloned().expect("signature"))
}

async fn verify(
    kms: &aws_sdk_kms::Client,
    key: &str,
    algorithm: &SigningAlgorithmSpec,
    kind: MessageType,
    message: &[u8],
    signature: Blob,
) -> Result<bool, String> {
    kms.verify()
        .key_id(key)
        .message(Blob::new(message.to_vec()))
        .message_type(kind)
        .signature(signature)
        .signing_algorithm(algorithm.clone())
        .send()
        .await
        .map(|o| o.signature_valid())
        .map_err(|e| failure::<(), _>(Err(e)).0)
}

/// A digest of `len` bytes of MESSAGE with the matching SHA-2 hash, computed without the
/// server (the `sha2` crate is not a test dependency; a fixed-length stand-in is enough for
/// a sign/verify round trip, and the Python suite checks DIGEST against real hashes offline).
fn digest_of_len(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(7))
        .collect()
}

#[tokio::test]
async fn every_spec_algorithm_and_message_type_signs_and_verifies() {
    let server = TestServer::start();
    let kms = client(&server);
    for (spec, algorithms) in signing_matrix() {
        let key = create(&kms, spec.clone(), KeyUsageType::SignVerify).await;
        let md = kms
            .describe_key()
            .key_id(&key)
            .send()
            .await
            .expect("describe");
        let listed: Vec<_> = md.key_metadata().unwrap().signing_algorithms().to_vec();
        let expected: Vec<_> = algorithms.iter().map(|(a, _)| a.clone()).collect();
        assert_eq!(listed, expected, "{spec}");
        let public = kms
            .get_public_key()
            .key_id(&key)
            .send()
            .await
            .expect("public key");
        assert_eq!(public.key_spec(), Some(&spec));
        assert_eq!(public.signing_algorithms(), expected.as_slice());
        assert!(public.public_key().is_some_and(|k| k.as_ref().len() > 40));

        for (algorithm, digest_len) in &algorithms {
            let sig = sign(&kms, &key, algorithm, MessageType::Raw, MESSAGE)
                .await
                .expect("sign");
            let ok = verify(
                &kms,
                &key,
                algorithm,
                MessageType::Raw,
                MESSAGE,
                sig.clone(),
            )
            .await;
            assert_eq!(ok, Ok(true), "{spec} {algorithm} RAW");
            let bad = verify(&kms, &key, algorithm, MessageType::Raw, b"tampered", sig).await;
            assert_eq!(
                bad,
                Err("KMSInvalidSignatureException".into()),
                "{spec} {algorithm}"
            );
            match digest_len {
                Some(len) => {
                    let d = digest_of_len(*len);
                    let sig = sign(&kms, &key, algorithm, MessageType::Digest, &d)
                        .await
                        .expect("sign digest");
                    let ok = verify(&kms, &key, algorithm, MessageType::Digest, &d, sig).await;
                    assert_eq!(ok, Ok(true), "{spec} {algorithm} DIGEST");
                    let short = sign(&kms, &key, algorithm, MessageType::Digest, &d[1..]).await;
                    assert_eq!(
                        short.unwrap_err().0,
                        "ValidationException",
                        "{spec} {algorithm}"
                    );
                }
                None => {
                    let refused = sign(
                        &kms,
                        &key,
                        algorithm,
                        MessageType::Digest,
                        &digest_of_len(64),
                    )
                    .await;
                    assert_eq!(
                        refused.unwrap_err().0,
                        "ValidationException",
                        "{spec} {algorithm}"
                    );
                }
            }
        }
        // ML-DSA's EXTERNAL_MU: the 64-byte mu, signed and verified as such.
        if matches!(spec, KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87) {
            let mu = digest_of_len(64);
            let a = &algorithms[0].0;
            let sig = sign(&kms, &key, a, MessageType::ExternalMu, &mu)
                .await
                .expect("sign mu");
            let ok = verify(&kms, &key, a, MessageType::ExternalMu, &mu, sig).await;
            assert_eq!(ok, Ok(true), "{spec} EXTERNAL_MU");
        }
        // An algorithm of another spec, and encrypting with a signing key.
        let other = if spec == KeySpec::EccNistP256 {
            SigningAlgorithmSpec::RsassaPssSha256
        } else {
            SigningAlgorithmSpec::EcdsaSha256
        };
        if !expected.contains(&other) {
            let e = sign(&kms, &key, &other, MessageType::Raw, MESSAGE)
                .await
                .unwrap_err();
            assert_eq!(e.0, "InvalidKeyUsageException", "{spec} {other}: {}", e.1);
        }
        let (code, _) = failure(
            kms.encrypt()
                .key_id(&key)
                .plaintext(Blob::new(b"x".to_vec()))
                .send()
                .await,
        );
        assert_eq!(code, "InvalidKeyUsageException", "{spec}");
    }
}

#[tokio::test]
async fn rsa_encryption_key_agreement_macs_and_data_key_pairs() {
    let server = TestServer::start();
    let kms = client(&server);

    // RSA OAEP with both hashes; an encryption context is refused as AWS refuses it.
    let rsa = create(&kms, KeySpec::Rsa3072, KeyUsageType::EncryptDecrypt).await;
    for algorithm in [
        EncryptionAlgorithmSpec::RsaesOaepSha1,
        EncryptionAlgorithmSpec::RsaesOaepSha256,
    ] {
        let out = kms
            .encrypt()
            .key_id(&rsa)
            .plaintext(Blob::new(b"rsa secret".to_vec()))
            .encryption_algorithm(algorithm.clone())
            .send()
            .await
            .expect("rsa encrypt");
        let blob = out.ciphertext_blob().cloned().expect("blob");
        assert_eq!(blob.as_ref().len(), 384);
        let back = kms
            .decrypt()
            .key_id(&rsa)
            .ciphertext_blob(blob)
            .encryption_algorithm(algorithm.clone())
            .send()
            .await
            .expect("rsa decrypt");
        assert_eq!(back.plaintext().unwrap().as_ref(), b"rsa secret");
        let (code, _) = failure(
            kms.encrypt()
                .key_id(&rsa)
                .plaintext(Blob::new(b"x".to_vec()))
                .encryption_algorithm(algorithm)
                .encryption_context("a", "b")
                .send()
                .await,
        );
        assert_eq!(code, "ValidationException");
    }
    // ReEncrypt between a symmetric key and an RSA key, both ways.
    let symmetric_key = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let sym_blob = kms
        .encrypt()
        .key_id(&symmetric_key)
        .plaintext(Blob::new(b"moved".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .cloned()
        .unwrap();
    let to_rsa = kms
        .re_encrypt()
        .ciphertext_blob(sym_blob)
        .destination_key_id(&rsa)
        .destination_encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
        .send()
        .await
        .expect("re-encrypt to RSA");
    assert_eq!(
        to_rsa.destination_encryption_algorithm(),
        Some(&EncryptionAlgorithmSpec::RsaesOaepSha256)
    );
    let rsa_blob = to_rsa.ciphertext_blob().cloned().unwrap();
    let back = kms
        .re_encrypt()
        .ciphertext_blob(rsa_blob.clone())
        .source_key_id(&rsa)
        .source_encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
        .destination_key_id(&symmetric_key)
        .send()
        .await
        .expect("re-encrypt from RSA");
    let plain = kms
        .decrypt()
        .ciphertext_blob(back.ciphertext_blob().cloned().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref(), b"moved");
    let (code, _) = failure(
        kms.re_encrypt()
            .ciphertext_blob(rsa_blob)
            .source_encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
            .destination_key_id(&symmetric_key)
            .send()
            .await,
    );
    assert_eq!(
        code, "ValidationException",
        "an RSA source needs SourceKeyId"
    );

    let (code, _) = failure(
        kms.generate_data_key()
            .key_id(&rsa)
            .number_of_bytes(16)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidKeyUsageException");

    // ECDH between two Keyhold keys: both sides derive the same secret.
    let a = create(&kms, KeySpec::EccNistP384, KeyUsageType::KeyAgreement).await;
    let b = create(&kms, KeySpec::EccNistP384, KeyUsageType::KeyAgreement).await;
    let pub_a = kms
        .get_public_key()
        .key_id(&a)
        .send()
        .await
        .unwrap()
        .public_key()
        .cloned()
        .unwrap();
    let pub_b = kms
        .get_public_key()
        .key_id(&b)
        .send()
        .await
        .unwrap()
        .public_key()
        .cloned()
        .unwrap();
    let ab = kms
        .derive_shared_secret()
        .key_id(&a)
        .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
        .public_key(pub_b)
        .send()
        .await
        .expect("derive a·B");
    let ba = kms
        .derive_shared_secret()
        .key_id(&b)
        .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
        .public_key(pub_a)
        .send()
        .await
        .expect("derive b·A");
    assert_eq!(ab.shared_secret(), ba.shared_secret());
    assert_eq!(ab.shared_secret().unwrap().as_ref().len(), 48);
    let p256 = create(&kms, KeySpec::EccNistP256, KeyUsageType::KeyAgreement).await;
    let pub_p256 = kms
        .get_public_key()
        .key_id(&p256)
        .send()
        .await
        .unwrap()
        .public_key()
        .cloned()
        .unwrap();
    let (code, _) = failure(
        kms.derive_shared_secret()
            .key_id(&a)
            .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
            .public_key(pub_p256)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException", "a peer key on another curve");

    // HMAC.
    let mac_key = create(&kms, KeySpec::Hmac384, KeyUsageType::GenerateVerifyMac).await;
    let mac = kms
        .generate_mac()
        .key_id(&mac_key)
        .message(Blob::new(MESSAGE.to_vec()))
        .mac_algorithm(MacAlgorithmSpec::HmacSha384)
        .send()
        .await
        .expect("mac")
        .mac()
        .cloned()
        .unwrap();
    assert_eq!(mac.as_ref().len(), 48);
    let ok = kms
        .verify_mac()
        .key_id(&mac_key)
        .message(Blob::new(MESSAGE.to_vec()))
        .mac(mac.clone())
        .mac_algorithm(MacAlgorithmSpec::HmacSha384)
        .send()
        .await
        .expect("verify mac");
    assert!(ok.mac_valid());
    let (code, _) = failure(
        kms.verify_mac()
            .key_id(&mac_key)
            .message(Blob::new(b"other".to_vec()))
            .mac(mac)
            .mac_algorithm(MacAlgorithmSpec::HmacSha384)
            .send()
            .await,
    );
    assert_eq!(code, "KMSInvalidMacException");

    // Data key pairs under a symmetric key; the private key decrypts back with its context.
    let symmetric = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    for spec in [
        DataKeyPairSpec::Rsa2048,
        DataKeyPairSpec::EccNistP256,
        DataKeyPairSpec::EccNistEdwards25519,
    ] {
        let pair = kms
            .generate_data_key_pair()
            .key_id(&symmetric)
            .key_pair_spec(spec.clone())
            .encryption_context("purpose", "pair")
            .send()
            .await
            .expect("data key pair");
        let private = pair.private_key_plaintext().cloned().expect("private");
        let back = kms
            .decrypt()
            .ciphertext_blob(pair.private_key_ciphertext_blob().cloned().unwrap())
            .encryption_context("purpose", "pair")
            .send()
            .await
            .expect("decrypt private key");
        assert_eq!(back.plaintext(), Some(&private), "{spec}");
        assert!(pair.public_key().is_some());
    }
    let (code, _) = failure(
        kms.generate_data_key_pair()
            .key_id(&rsa)
            .key_pair_spec(DataKeyPairSpec::EccNistP256)
            .send()
            .await,
    );
    assert_eq!(
        code, "InvalidKeyUsageException",
        "pairs need a symmetric key"
    );
    let (code, _) = failure(kms.get_public_key().key_id(&symmetric).send().await);
    assert_eq!(code, "UnsupportedOperationException");
}
