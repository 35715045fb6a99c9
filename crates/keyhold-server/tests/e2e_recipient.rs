//! End-to-end with the official AWS SDK for Rust: the `Recipient` parameter (Nitro Enclaves
//! attestation). No attestation document can chain to the AWS Nitro root here, so every
//! operation that takes one (Decrypt, DeriveSharedSecret, GenerateDataKey,
//! GenerateDataKeyPair, GenerateRandom) refuses it with `ValidationException`.

mod common;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    DataKeyPairSpec, KeyAgreementAlgorithmSpec, KeyEncryptionMechanism, KeySpec, KeyUsageType,
    RecipientInfo,
};
use common::{client, encrypt_blob, failure, TestServer};

fn recipient(document: &[u8]) -> RecipientInfo {
    RecipientInfo::builder()
        .attestation_document(Blob::new(document.to_vec()))
        .key_encryption_algorithm(KeyEncryptionMechanism::RsaesOaepSha256)
        .build()
}

/// A structurally valid COSE_Sign1 (tag 18, array of four) that no Nitro hypervisor signed.
const COSE_SIGN1: &[u8] = &[0xd2, 0x84, 0x41, 0xa0, 0xa0, 0x40, 0x40];

#[tokio::test]
async fn every_attestation_document_is_refused() {
    let server = TestServer::start();
    let kms = client(&server);
    let key = kms.create_key().send().await.unwrap();
    let key = key.key_metadata().unwrap().key_id().to_string();
    let blob = encrypt_blob(&kms, &key, b"secret").await;
    let agreement = kms
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::KeyAgreement)
        .send()
        .await
        .unwrap();
    let agreement = agreement.key_metadata().unwrap().key_id().to_string();
    let peer = kms
        .get_public_key()
        .key_id(&agreement)
        .send()
        .await
        .unwrap()
        .public_key()
        .cloned()
        .unwrap();

    for (document, detail) in [
        (&b"garbage"[..], "not a valid COSE_Sign1"),
        (COSE_SIGN1, "not signed by the AWS Nitro Attestation PKI"),
    ] {
        let r = || recipient(document);
        let answers = [
            failure(
                kms.decrypt()
                    .ciphertext_blob(blob.clone())
                    .recipient(r())
                    .send()
                    .await,
            ),
            failure(
                kms.generate_data_key()
                    .key_id(&key)
                    .number_of_bytes(32)
                    .recipient(r())
                    .send()
                    .await,
            ),
            failure(
                kms.generate_data_key_pair()
                    .key_id(&key)
                    .key_pair_spec(DataKeyPairSpec::EccNistP256)
                    .recipient(r())
                    .send()
                    .await,
            ),
            failure(
                kms.generate_random()
                    .number_of_bytes(16)
                    .recipient(r())
                    .send()
                    .await,
            ),
            failure(
                kms.derive_shared_secret()
                    .key_id(&agreement)
                    .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
                    .public_key(peer.clone())
                    .recipient(r())
                    .send()
                    .await,
            ),
        ];
        for (code, message) in answers {
            assert_eq!(code, "ValidationException", "{message}");
            assert!(message.contains(detail), "{message}");
        }
    }
    // Without a Recipient the same calls work.
    let plain = kms.decrypt().ciphertext_blob(blob).send().await.unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref(), b"secret");
    assert!(plain.ciphertext_for_recipient().is_none());
}
