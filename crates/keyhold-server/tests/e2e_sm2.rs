//! End-to-end with the official AWS SDK for Rust: SM2 keys, which AWS offers only in the
//! China Regions (cn-north-1, cn-northwest-1, partition `aws-cn`): CreateKey's Region rule,
//! SM2DSA (RAW and DIGEST), SM2PKE Encrypt/Decrypt/ReEncrypt, DeriveSharedSecret, GetPublicKey
//! and DescribeKey. Offline checks with OpenSSL are in tests/python/test_asymmetric.py.
#![cfg(feature = "sm2")]

mod common;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    DataKeyPairSpec, EncryptionAlgorithmSpec, KeyAgreementAlgorithmSpec, KeySpec, KeyUsageType,
    MessageType, SigningAlgorithmSpec,
};
use common::{client, failure, TestServer};

const MESSAGE: &[u8] = b"signed by keyhold in Beijing";

/// A client whose requests are signed for `region` (the SDK takes an explicit endpoint for
/// the `aws-cn` partition).
fn client_in(server: &TestServer, region: &'static str) -> aws_sdk_kms::Client {
    let conf = client(server)
        .config()
        .to_builder()
        .region(aws_sdk_kms::config::Region::new(region))
        .build();
    aws_sdk_kms::Client::from_conf(conf)
}

async fn create(kms: &aws_sdk_kms::Client, usage: KeyUsageType) -> (String, String) {
    let out = kms
        .create_key()
        .key_spec(KeySpec::Sm2)
        .key_usage(usage.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("create SM2 {usage}: {e:?}"));
    let meta = out.key_metadata().expect("metadata");
    (
        meta.key_id().to_string(),
        meta.arn().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn sm2_only_in_china_regions() {
    let server = TestServer::start();
    let (code, message) = failure(
        client(&server)
            .create_key()
            .key_spec(KeySpec::Sm2)
            .key_usage(KeyUsageType::SignVerify)
            .send()
            .await,
    );
    assert_eq!(code, "UnsupportedOperationException");
    assert_eq!(message, "KeySpec SM2 is not supported in this Region");
    let symmetric = client(&server).create_key().send().await.unwrap();
    let (code, _) = failure(
        client(&server)
            .generate_data_key_pair()
            .key_id(symmetric.key_metadata().unwrap().key_id())
            .key_pair_spec(DataKeyPairSpec::Sm2)
            .send()
            .await,
    );
    assert_eq!(code, "UnsupportedOperationException");

    for region in ["cn-north-1", "cn-northwest-1"] {
        let kms = client_in(&server, region);
        let (id, arn) = create(&kms, KeyUsageType::SignVerify).await;
        assert_eq!(
            arn,
            format!("arn:aws-cn:kms:{region}:123456789012:key/{id}")
        );
        // The aws-cn key ARN resolves as a KeyId.
        let described = kms.describe_key().key_id(&arn).send().await.unwrap();
        let meta = described.key_metadata().unwrap();
        assert_eq!(meta.key_spec(), Some(&KeySpec::Sm2));
        assert_eq!(meta.signing_algorithms(), &[SigningAlgorithmSpec::Sm2Dsa]);
    }
}

#[tokio::test]
async fn sm2dsa_sign_verify_and_public_key() {
    let server = TestServer::start();
    let kms = client_in(&server, "cn-north-1");
    let (key, _) = create(&kms, KeyUsageType::SignVerify).await;
    let public = kms.get_public_key().key_id(&key).send().await.unwrap();
    assert_eq!(public.key_spec(), Some(&KeySpec::Sm2));
    assert_eq!(public.signing_algorithms(), &[SigningAlgorithmSpec::Sm2Dsa]);
    let spki = public.public_key().unwrap().as_ref();
    // id-ecPublicKey with the named curve sm2p256v1 (1.2.156.10197.1.301), 65-byte point.
    assert_eq!(spki.len(), 91);
    assert!(spki
        .windows(10)
        .any(|w| w == [0x06, 0x08, 0x2a, 0x81, 0x1c, 0xcf, 0x55, 0x01, 0x82, 0x2d]));

    let sign = |kind: MessageType, message: &[u8]| {
        kms.sign()
            .key_id(&key)
            .message(Blob::new(message.to_vec()))
            .message_type(kind)
            .signing_algorithm(SigningAlgorithmSpec::Sm2Dsa)
            .send()
    };
    let signature = sign(MessageType::Raw, MESSAGE)
        .await
        .expect("sign RAW")
        .signature()
        .cloned()
        .unwrap();
    assert_eq!(signature.as_ref()[0], 0x30, "DER");
    let verify = |kind: MessageType, message: &[u8], signature: Blob| {
        kms.verify()
            .key_id(&key)
            .message(Blob::new(message.to_vec()))
            .message_type(kind)
            .signature(signature)
            .signing_algorithm(SigningAlgorithmSpec::Sm2Dsa)
            .send()
    };
    assert!(verify(MessageType::Raw, MESSAGE, signature.clone())
        .await
        .expect("verify")
        .signature_valid());
    let (code, _) = failure(verify(MessageType::Raw, b"other", signature).await);
    assert_eq!(code, "KMSInvalidSignatureException");

    // DIGEST: a 32-byte e the caller computed; anything else is refused.
    let e = [7u8; 32];
    let signature = sign(MessageType::Digest, &e)
        .await
        .expect("sign DIGEST")
        .signature()
        .cloned()
        .unwrap();
    assert!(verify(MessageType::Digest, &e, signature)
        .await
        .unwrap()
        .signature_valid());
    let (code, _) = failure(sign(MessageType::Digest, &[0; 48]).await);
    assert_eq!(code, "ValidationException");
    let (code, _) = failure(
        kms.sign()
            .key_id(&key)
            .message(Blob::new(MESSAGE.to_vec()))
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidKeyUsageException");
}

#[tokio::test]
async fn sm2pke_encrypt_decrypt_reencrypt() {
    let server = TestServer::start();
    let kms = client_in(&server, "cn-northwest-1");
    let (key, arn) = create(&kms, KeyUsageType::EncryptDecrypt).await;
    let described = kms.describe_key().key_id(&key).send().await.unwrap();
    assert_eq!(
        described.key_metadata().unwrap().encryption_algorithms(),
        &[EncryptionAlgorithmSpec::Sm2Pke]
    );
    let plaintext = vec![0x5a; 1024];
    let out = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(plaintext.clone()))
        .encryption_algorithm(EncryptionAlgorithmSpec::Sm2Pke)
        .send()
        .await
        .expect("encrypt 1024 bytes");
    assert_eq!(out.key_id(), Some(arn.as_str()));
    let ciphertext = out.ciphertext_blob().cloned().unwrap();
    assert_eq!(ciphertext.as_ref()[0], 0x30, "ASN.1 C1C3C2");
    let back = kms
        .decrypt()
        .key_id(&key)
        .ciphertext_blob(ciphertext.clone())
        .encryption_algorithm(EncryptionAlgorithmSpec::Sm2Pke)
        .send()
        .await
        .expect("decrypt");
    assert_eq!(back.plaintext().unwrap().as_ref(), &plaintext[..]);

    let (code, _) = failure(
        kms.encrypt()
            .key_id(&key)
            .plaintext(Blob::new(vec![0; 1025]))
            .encryption_algorithm(EncryptionAlgorithmSpec::Sm2Pke)
            .send()
            .await,
    );
    assert_eq!(
        code, "ValidationException",
        "1025 bytes is over SM2PKE's limit"
    );
    let (code, _) = failure(
        kms.decrypt()
            .key_id(&key)
            .ciphertext_blob(Blob::new(b"not an SM2 ciphertext".to_vec()))
            .encryption_algorithm(EncryptionAlgorithmSpec::Sm2Pke)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidCiphertextException");
    let (code, _) = failure(
        kms.encrypt()
            .key_id(&key)
            .plaintext(Blob::new(b"x".to_vec()))
            .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidKeyUsageException");

    // ReEncrypt from SM2PKE to a symmetric key and back.
    let symmetric = kms.create_key().send().await.unwrap();
    let symmetric = symmetric.key_metadata().unwrap().key_id().to_string();
    let moved = kms
        .re_encrypt()
        .ciphertext_blob(ciphertext)
        .source_key_id(&key)
        .source_encryption_algorithm(EncryptionAlgorithmSpec::Sm2Pke)
        .destination_key_id(&symmetric)
        .send()
        .await
        .expect("re-encrypt to symmetric");
    let back = kms
        .re_encrypt()
        .ciphertext_blob(moved.ciphertext_blob().cloned().unwrap())
        .destination_key_id(&key)
        .destination_encryption_algorithm(EncryptionAlgorithmSpec::Sm2Pke)
        .send()
        .await
        .expect("re-encrypt to SM2");
    let plain = kms
        .decrypt()
        .key_id(&key)
        .ciphertext_blob(back.ciphertext_blob().cloned().unwrap())
        .encryption_algorithm(EncryptionAlgorithmSpec::Sm2Pke)
        .send()
        .await
        .unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref(), &plaintext[..]);
}

#[tokio::test]
async fn sm2_key_agreement_and_data_key_pairs() {
    let server = TestServer::start();
    let kms = client_in(&server, "cn-north-1");
    let (a, _) = create(&kms, KeyUsageType::KeyAgreement).await;
    let (b, _) = create(&kms, KeyUsageType::KeyAgreement).await;
    let public = |k: String| {
        let kms = kms.clone();
        async move {
            kms.get_public_key()
                .key_id(k)
                .send()
                .await
                .unwrap()
                .public_key()
                .cloned()
                .unwrap()
        }
    };
    let (pa, pb) = (public(a.clone()).await, public(b.clone()).await);
    let derive = |k: &str, peer: Blob| {
        kms.derive_shared_secret()
            .key_id(k)
            .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
            .public_key(peer)
            .send()
    };
    let ab = derive(&a, pb).await.expect("derive a·B");
    let ba = derive(&b, pa).await.expect("derive b·A");
    assert_eq!(ab.shared_secret(), ba.shared_secret());
    assert_eq!(ab.shared_secret().unwrap().as_ref().len(), 32);

    // An SM2 data key pair in a China Region (under an SM4-era SYMMETRIC_DEFAULT key).
    let symmetric = kms.create_key().send().await.unwrap();
    let pair = kms
        .generate_data_key_pair()
        .key_id(symmetric.key_metadata().unwrap().key_id())
        .key_pair_spec(DataKeyPairSpec::Sm2)
        .send()
        .await
        .expect("SM2 data key pair");
    assert_eq!(pair.public_key().unwrap().as_ref().len(), 91);
}
