//! End-to-end: the real `keyhold` binary driven by the official AWS SDK for Rust.

mod common;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeySpec, KeyState, KeyUsageType, OriginType};
use common::{client, TestServer};

fn service_error_code<E: aws_sdk_kms::error::ProvideErrorMetadata>(
    e: &E,
) -> (String, Option<String>) {
    (
        e.code().unwrap_or_default().to_string(),
        e.message().map(str::to_string),
    )
}

#[tokio::test]
async fn key_lifecycle_encrypt_decrypt_and_restart() {
    let mut server = TestServer::start();
    let kms = client(&server);

    let created = kms
        .create_key()
        .description("e2e key")
        .send()
        .await
        .expect("create_key");
    let md = created.key_metadata().expect("metadata");
    let key_id = md.key_id().to_string();
    assert_eq!(md.description(), Some("e2e key"));
    assert_eq!(md.key_state(), Some(&KeyState::Enabled));
    assert_eq!(md.key_spec(), Some(&KeySpec::SymmetricDefault));
    assert_eq!(md.key_usage(), Some(&KeyUsageType::EncryptDecrypt));
    assert_eq!(md.origin(), Some(&OriginType::AwsKms));
    assert!(md.enabled());
    assert_eq!(md.multi_region(), Some(false));
    assert_eq!(md.aws_account_id(), Some("123456789012"));
    let arn = format!("arn:aws:kms:us-east-1:123456789012:key/{key_id}");
    assert_eq!(md.arn(), Some(arn.as_str()));
    assert!(md.creation_date().is_some());

    let described = kms
        .describe_key()
        .key_id(&arn)
        .send()
        .await
        .expect("describe by ARN");
    assert_eq!(described.key_metadata().unwrap().key_id(), key_id);

    let listed = kms.list_keys().send().await.expect("list_keys");
    assert!(listed
        .keys()
        .iter()
        .any(|k| k.key_id() == Some(key_id.as_str())));

    let plaintext = b"attack at dawn".to_vec();
    let enc = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(plaintext.clone()))
        .encryption_context("purpose", "e2e")
        .encryption_context("tenant", "7")
        .send()
        .await
        .expect("encrypt");
    assert_eq!(enc.key_id(), Some(arn.as_str()));
    let blob = enc.ciphertext_blob().unwrap().as_ref().to_vec();
    assert!(!blob
        .windows(plaintext.len())
        .any(|w| w == plaintext.as_slice()));

    // Non-deterministic: the same plaintext encrypts differently every time.
    let enc2 = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(plaintext.clone()))
        .encryption_context("purpose", "e2e")
        .encryption_context("tenant", "7")
        .send()
        .await
        .unwrap();
    assert_ne!(enc2.ciphertext_blob().unwrap().as_ref(), blob.as_slice());

    // Self-describing: Decrypt needs no KeyId; context order does not matter.
    let dec = kms
        .decrypt()
        .ciphertext_blob(Blob::new(blob.clone()))
        .encryption_context("tenant", "7")
        .encryption_context("purpose", "e2e")
        .send()
        .await
        .expect("decrypt");
    assert_eq!(dec.plaintext().unwrap().as_ref(), plaintext.as_slice());
    assert_eq!(dec.key_id(), Some(arn.as_str()));

    // Wrong or missing context: InvalidCiphertextException.
    for ctx in [Some(("purpose", "other")), None] {
        let mut req = kms.decrypt().ciphertext_blob(Blob::new(blob.clone()));
        if let Some((k, v)) = ctx {
            req = req.encryption_context(k, v);
        }
        let err = req.send().await.expect_err("wrong context must fail");
        let se = err.into_service_error();
        assert!(se.is_invalid_ciphertext_exception(), "{se:?}");
    }

    // Tampering with any byte is detected.
    for i in [0, 3, 10, blob.len() / 2, blob.len() - 1] {
        let mut bad = blob.clone();
        bad[i] ^= 0x40;
        let err = kms
            .decrypt()
            .ciphertext_blob(Blob::new(bad))
            .encryption_context("purpose", "e2e")
            .encryption_context("tenant", "7")
            .send()
            .await
            .expect_err("tampered blob must fail");
        assert!(
            err.into_service_error().is_invalid_ciphertext_exception(),
            "byte {i}"
        );
    }

    // Restart (SIGKILL) and decrypt again: keys and ciphertexts survive.
    server.restart();
    let kms = client(&server);
    let dec = kms
        .decrypt()
        .ciphertext_blob(Blob::new(blob))
        .encryption_context("purpose", "e2e")
        .encryption_context("tenant", "7")
        .send()
        .await
        .expect("decrypt after restart");
    assert_eq!(dec.plaintext().unwrap().as_ref(), plaintext.as_slice());
    let described = kms.describe_key().key_id(&key_id).send().await.unwrap();
    assert_eq!(
        described.key_metadata().unwrap().description(),
        Some("e2e key")
    );
}

#[tokio::test]
async fn errors_are_aws_errors() {
    let server = TestServer::start();
    let kms = client(&server);

    let missing = "0b3e2c4a-1111-4222-8333-944455556666";
    let err = kms
        .describe_key()
        .key_id(missing)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_not_found_exception());
    assert_eq!(
        service_error_code(&err),
        (
            "NotFoundException".into(),
            Some(format!(
                "Key 'arn:aws:kms:us-east-1:123456789012:key/{missing}' does not exist"
            ))
        )
    );

    let err = kms
        .describe_key()
        .key_id("not-a-key")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(
        service_error_code(&err).1.as_deref(),
        Some("Invalid keyId 'not-a-key'")
    );

    let err = kms
        .describe_key()
        .key_id("alias/none")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(
        service_error_code(&err).1.as_deref(),
        Some("Alias arn:aws:kms:us-east-1:123456789012:alias/none is not found.")
    );

    let long = "k".repeat(2049);
    let err = kms
        .describe_key()
        .key_id(&long)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(
        service_error_code(&err),
        (
            "ValidationException".into(),
            Some(format!(
                "1 validation error detected: Value '{long}' at 'keyId' failed to satisfy constraint: Member must have length less than or equal to 2048"
            ))
        )
    );

    let key = kms.create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    let err = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(vec![0u8; 4097]))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(
        service_error_code(&err).1.as_deref(),
        Some("1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096")
    );

    let err = kms
        .create_key()
        .key_spec(KeySpec::from("NOT_A_SPEC"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    let (code, msg) = service_error_code(&err);
    assert_eq!(code, "ValidationException");
    assert!(
        msg.as_deref().unwrap().starts_with(
            "1 validation error detected: Value 'NOT_A_SPEC' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: ["
        ),
        "{msg:?}"
    );

    let err = kms
        .decrypt()
        .ciphertext_blob(Blob::new(b"garbage".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_invalid_ciphertext_exception());

    // Decrypt naming another key than the one that encrypted: IncorrectKeyException.
    let other = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let blob = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    let err = kms
        .decrypt()
        .key_id(&other)
        .ciphertext_blob(blob)
        .send()
        .await
        .unwrap_err();
    let se = err.into_service_error();
    assert!(se.is_incorrect_key_exception(), "{se:?}");

    let err = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"x".to_vec()))
        .dry_run(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        service_error_code(&err.into_service_error()).0,
        "DryRunOperationException"
    );

    // Every operation of the model is implemented: a target outside it is an unknown
    // operation, as AWS answers it, and the server keeps serving.
    let (status, body, _) = common::raw(
        &server.endpoint,
        Some("TrentService.NoSuchOperation"),
        Some("application/x-amz-json-1.1"),
        "{}",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["__type"]
            .as_str()
            .is_some_and(|t| t.ends_with("UnknownOperationException")),
        "{body}"
    );
    kms.describe_key()
        .key_id(&key_id)
        .send()
        .await
        .expect("still serving");
}

#[tokio::test]
async fn list_keys_paginates() {
    let server = TestServer::start();
    let kms = client(&server);
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(
            kms.create_key()
                .send()
                .await
                .unwrap()
                .key_metadata()
                .unwrap()
                .key_id()
                .to_string(),
        );
    }
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = kms
            .list_keys()
            .limit(2)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(page.keys().len() <= 2);
        seen.extend(page.keys().iter().map(|k| k.key_id().unwrap().to_string()));
        if page.truncated() {
            marker = page.next_marker().map(str::to_string);
            assert!(marker.is_some());
        } else {
            assert!(page.next_marker().is_none());
            break;
        }
    }
    assert_eq!(pages, 3);
    created.sort();
    assert_eq!(seen, created, "every key exactly once, in a stable order");

    let err = kms
        .list_keys()
        .marker("bogus marker")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_marker_exception(), "{err:?}");
}

#[tokio::test]
async fn accounts_are_isolated_by_access_key() {
    let server = TestServer::start();
    let a = common::sdk_client(&server.endpoint, "111122223333", "x");
    let b = common::sdk_client(&server.endpoint, "444455556666", "x");
    let key = a.create_key().send().await.unwrap();
    let md = key.key_metadata().unwrap();
    assert_eq!(md.aws_account_id(), Some("111122223333"));
    let err = b
        .describe_key()
        .key_id(md.key_id())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_not_found_exception());
    assert!(b.list_keys().send().await.unwrap().keys().is_empty());

    // Another account's key, named by ARN, is not usable without policies (not implemented):
    // AccessDeniedException, for describe and for decrypting that account's ciphertext.
    let arn = md.arn().unwrap();
    let err = b
        .describe_key()
        .key_id(arn)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(service_error_code(&err).0, "AccessDeniedException");
    let blob = a
        .encrypt()
        .key_id(arn)
        .plaintext(Blob::new(b"a's secret".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    let err = b
        .decrypt()
        .ciphertext_blob(blob.clone())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(service_error_code(&err).0, "AccessDeniedException");
    let ok = a.decrypt().ciphertext_blob(blob).send().await.unwrap();
    assert_eq!(ok.plaintext().unwrap().as_ref(), b"a's secret");
}
