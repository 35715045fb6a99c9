//! End-to-end: GenerateDataKey, GenerateDataKeyWithoutPlaintext and ReEncrypt on keys of
//! Keyhold's default key store, through aws-sdk-kms.

mod common;

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, EncryptionAlgorithmSpec};
use common::{client, TestServer};

fn err<T, E: ProvideErrorMetadata>(r: Result<T, E>) -> (String, String) {
    match r {
        Ok(_) => ("Ok".into(), String::new()),
        Err(e) => (
            e.code().unwrap_or_default().to_string(),
            e.message().unwrap_or_default().to_string(),
        ),
    }
}

async fn new_key(kms: &aws_sdk_kms::Client) -> (String, String) {
    let md = kms
        .create_key()
        .send()
        .await
        .expect("create_key")
        .key_metadata()
        .cloned()
        .expect("metadata");
    (
        md.key_id().to_string(),
        md.arn().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn generate_data_key_round_trips_and_validates() {
    let server = TestServer::start();
    let kms = client(&server);
    let (key_id, arn) = new_key(&kms).await;

    for (spec, len) in [(DataKeySpec::Aes256, 32), (DataKeySpec::Aes128, 16)] {
        let out = kms
            .generate_data_key()
            .key_id(&key_id)
            .key_spec(spec)
            .encryption_context("purpose", "test")
            .send()
            .await
            .expect("generate_data_key");
        assert_eq!(out.key_id(), Some(arn.as_str()));
        let plaintext = out.plaintext().expect("plaintext").as_ref().to_vec();
        assert_eq!(plaintext.len(), len);
        let blob = out.ciphertext_blob().expect("blob").clone();
        let dec = kms
            .decrypt()
            .ciphertext_blob(blob.clone())
            .encryption_context("purpose", "test")
            .send()
            .await
            .expect("decrypt data key");
        assert_eq!(dec.plaintext().expect("pt").as_ref(), plaintext.as_slice());
        assert_eq!(dec.key_id(), Some(arn.as_str()));
        // The context is bound.
        let (code, _) = err(kms.decrypt().ciphertext_blob(blob).send().await);
        assert_eq!(code, "InvalidCiphertextException");
    }

    let out = kms
        .generate_data_key()
        .key_id(&key_id)
        .number_of_bytes(1024)
        .send()
        .await
        .expect("1024 bytes");
    assert_eq!(out.plaintext().expect("pt").as_ref().len(), 1024);
    let out = kms
        .generate_data_key()
        .key_id(&key_id)
        .number_of_bytes(1)
        .send()
        .await
        .expect("1 byte");
    assert_eq!(out.plaintext().expect("pt").as_ref().len(), 1);

    let (code, message) = err(kms.generate_data_key().key_id(&key_id).send().await);
    assert_eq!(code, "ValidationException");
    assert_eq!(
        message,
        "Please specify either number of bytes or key spec."
    );
    let (code, message) = err(kms
        .generate_data_key()
        .key_id(&key_id)
        .key_spec(DataKeySpec::Aes256)
        .number_of_bytes(32)
        .send()
        .await);
    assert_eq!(code, "ValidationException");
    assert_eq!(
        message,
        "Please specify either number of bytes or key spec."
    );
    for bad in [0, 1025] {
        let (code, message) = err(kms
            .generate_data_key()
            .key_id(&key_id)
            .number_of_bytes(bad)
            .send()
            .await);
        assert_eq!(code, "ValidationException", "{bad}");
        assert!(message.contains("numberOfBytes"), "{message}");
    }
    let (code, _) = err(kms
        .generate_data_key()
        .key_id("alias/nope")
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await);
    assert_eq!(code, "NotFoundException");

    let out = kms
        .generate_data_key_without_plaintext()
        .key_id(&arn)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .expect("without plaintext");
    assert_eq!(out.key_id(), Some(arn.as_str()));
    let dec = kms
        .decrypt()
        .ciphertext_blob(out.ciphertext_blob().expect("blob").clone())
        .send()
        .await
        .expect("decrypt");
    assert_eq!(dec.plaintext().expect("pt").as_ref().len(), 32);
    let (code, message) = err(kms
        .generate_data_key_without_plaintext()
        .key_id(&key_id)
        .send()
        .await);
    assert_eq!(code, "ValidationException");
    assert_eq!(
        message,
        "Please specify either number of bytes or key spec."
    );
}

#[tokio::test]
async fn re_encrypt_between_keys() {
    let server = TestServer::start();
    let kms = client(&server);
    let (a, a_arn) = new_key(&kms).await;
    let (b, b_arn) = new_key(&kms).await;

    let enc = kms
        .encrypt()
        .key_id(&a)
        .plaintext(Blob::new(b"move me"))
        .encryption_context("k", "v")
        .send()
        .await
        .expect("encrypt");
    let blob = enc.ciphertext_blob().expect("blob").clone();

    let re = kms
        .re_encrypt()
        .ciphertext_blob(blob.clone())
        .source_encryption_context("k", "v")
        .destination_key_id(&b)
        .destination_encryption_context("k2", "v2")
        .send()
        .await
        .expect("re_encrypt");
    assert_eq!(re.key_id(), Some(b_arn.as_str()));
    assert_eq!(re.source_key_id(), Some(a_arn.as_str()));
    assert_eq!(
        re.source_encryption_algorithm(),
        Some(&EncryptionAlgorithmSpec::SymmetricDefault)
    );
    assert_eq!(
        re.destination_encryption_algorithm(),
        Some(&EncryptionAlgorithmSpec::SymmetricDefault)
    );
    let dec = kms
        .decrypt()
        .ciphertext_blob(re.ciphertext_blob().expect("blob").clone())
        .encryption_context("k2", "v2")
        .send()
        .await
        .expect("decrypt re-encrypted");
    assert_eq!(dec.plaintext().expect("pt").as_ref(), b"move me");
    assert_eq!(dec.key_id(), Some(b_arn.as_str()));

    // SourceKeyId naming the right key works; another key is IncorrectKeyException.
    kms.re_encrypt()
        .ciphertext_blob(blob.clone())
        .source_key_id(&a_arn)
        .source_encryption_context("k", "v")
        .destination_key_id(&a)
        .send()
        .await
        .expect("same key, SourceKeyId given");
    let (code, message) = err(kms
        .re_encrypt()
        .ciphertext_blob(blob.clone())
        .source_key_id(&b)
        .source_encryption_context("k", "v")
        .destination_key_id(&a)
        .send()
        .await);
    assert_eq!(code, "IncorrectKeyException");
    assert_eq!(
        message,
        "The key ID in the request does not identify a CMK that can perform this operation."
    );
    // Wrong source context.
    let (code, _) = err(kms
        .re_encrypt()
        .ciphertext_blob(blob.clone())
        .destination_key_id(&b)
        .send()
        .await);
    assert_eq!(code, "InvalidCiphertextException");
    // Missing destination key.
    let (code, _) = err(kms
        .re_encrypt()
        .ciphertext_blob(blob.clone())
        .source_encryption_context("k", "v")
        .destination_key_id("alias/missing")
        .send()
        .await);
    assert_eq!(code, "NotFoundException");

    // DestinationKeyId is required (sent raw: the SDK refuses to build the request).
    let (status, body, _) = common::raw(
        &server.endpoint,
        Some("TrentService.ReEncrypt"),
        Some("application/x-amz-json-1.1"),
        serde_json::json!({ "CiphertextBlob": "AAAA" }).to_string(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "ValidationException", "{body}");
}
