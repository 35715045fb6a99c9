//! End-to-end with the official AWS SDK for Rust: asymmetric and HMAC key material imported
//! into `Origin: EXTERNAL` keys (PKCS#8 private keys, raw HMAC keys), checked against the
//! local key; what AWS does not import; and AWS's key-state table for a key pending import.

mod common;
mod import_common;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    AlgorithmSpec, ExpirationModelType, KeySpec, KeyState, KeyUsageType, MacAlgorithmSpec,
    MessageType, OriginType, SigningAlgorithmSpec, WrappingKeySpec,
};
use common::{client, failure, TestServer};
use import_common::{create_external, import, params, state, wrap};
use keyhold_crypto::asym::{self, AsymmetricSpec, MacAlgorithm};
use serde_json::json;

#[tokio::test]
async fn asymmetric_and_hmac_material_imports_as_pkcs8_and_raw_bytes() {
    let server = TestServer::start();
    let kms = client(&server);

    // ECC_NIST_P256 signing key: PKCS#8 through RSA_AES_KEY_WRAP_SHA_256.
    let key = create_external(&kms, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let private = asym::generate(AsymmetricSpec::EccNistP256).unwrap();
    let public = asym::public_key_der(AsymmetricSpec::EccNistP256, private.expose()).unwrap();
    assert_eq!(
        import(
            &kms,
            &key,
            private.expose(),
            AlgorithmSpec::RsaAesKeyWrapSha256
        )
        .await,
        None,
        "asymmetric keys report no KeyMaterialId"
    );
    let got = kms.get_public_key().key_id(&key).send().await.unwrap();
    assert_eq!(got.public_key().unwrap().as_ref(), public.as_slice());
    let signed = kms
        .sign()
        .key_id(&key)
        .message(Blob::new(b"signed by imported key".to_vec()))
        .message_type(MessageType::Raw)
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap();
    let verified = kms
        .verify()
        .key_id(&key)
        .message(Blob::new(b"signed by imported key".to_vec()))
        .message_type(MessageType::Raw)
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .signature(signed.signature().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert!(verified.signature_valid());
    // A key of another curve is not this key's material; and asymmetric material cannot change.
    let other = asym::generate(AsymmetricSpec::EccNistP384).unwrap();
    let p = params(
        &kms,
        &key,
        AlgorithmSpec::RsaAesKeyWrapSha256,
        WrappingKeySpec::Rsa2048,
    )
    .await;
    let (code, _) = failure(
        kms.import_key_material()
            .key_id(&key)
            .import_token(p.token.clone())
            .encrypted_key_material(wrap(
                &p,
                &AlgorithmSpec::RsaAesKeyWrapSha256,
                other.expose(),
            ))
            .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
            .send()
            .await,
    );
    assert_eq!(code, "IncorrectKeyMaterialException");

    // RSA_2048 encryption key: an RSA private key only fits the RSA_AES algorithms.
    let key = create_external(&kms, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    let private = asym::generate(AsymmetricSpec::Rsa2048).unwrap();
    import(
        &kms,
        &key,
        private.expose(),
        AlgorithmSpec::RsaAesKeyWrapSha1,
    )
    .await;
    let got = kms.get_public_key().key_id(&key).send().await.unwrap();
    assert_eq!(
        got.public_key().unwrap().as_ref(),
        asym::public_key_der(AsymmetricSpec::Rsa2048, private.expose())
            .unwrap()
            .as_slice()
    );
    kms.delete_imported_key_material()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(state(&kms, &key).await, KeyState::PendingImport);
    let (code, _) = failure(kms.get_public_key().key_id(&key).send().await);
    assert_eq!(code, "KMSInvalidStateException");

    // HMAC_256: raw key bytes; GenerateMac matches a local HMAC.
    let key = create_external(&kms, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
    let hmac_key = keyhold_crypto::random_bytes(32);
    import(
        &kms,
        &key,
        hmac_key.expose(),
        AlgorithmSpec::RsaesOaepSha256,
    )
    .await;
    let mac = kms
        .generate_mac()
        .key_id(&key)
        .message(Blob::new(b"mac me".to_vec()))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap();
    assert_eq!(
        mac.mac().unwrap().as_ref(),
        asym::mac(MacAlgorithm::HmacSha256, hmac_key.expose(), b"mac me").as_slice()
    );

    // What AWS does not import: ML-DSA keys, and EXTERNAL keys in custom key stores.
    let r = kms
        .create_key()
        .origin(OriginType::External)
        .key_spec(KeySpec::MlDsa44)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await;
    assert_eq!(failure(r).0, "UnsupportedOperationException");
    let r = kms
        .create_key()
        .origin(OriginType::External)
        .custom_key_store_id("cks-1234567890abcdef0")
        .send()
        .await;
    assert_eq!(failure(r).0, "UnsupportedOperationException");
}

/// AWS's key-state table for a key pending import, over the wire: (operation, request body,
/// expected exception or "" for success, message suffix).
#[tokio::test]
async fn the_key_state_table_of_a_key_pending_import() {
    let server = TestServer::start();
    let kms = client(&server);
    let k = create_external(
        &kms,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await;
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}]}"#;
    const INVALID: &str = "KMSInvalidStateException";
    const UNSUPPORTED: &str = "UnsupportedOperationException";
    let pending = "is pending import.";
    let origin = "origin is EXTERNAL which is not valid for this operation.";
    let rows: Vec<(&str, serde_json::Value, &str, &str)> = vec![
        ("DescribeKey", json!({"KeyId": k}), "", ""),
        (
            "Encrypt",
            json!({"KeyId": k, "Plaintext": "eA=="}),
            INVALID,
            pending,
        ),
        (
            "GenerateDataKey",
            json!({"KeyId": k, "NumberOfBytes": 16}),
            INVALID,
            pending,
        ),
        (
            "GenerateDataKeyWithoutPlaintext",
            json!({"KeyId": k, "KeySpec": "AES_256"}),
            INVALID,
            pending,
        ),
        ("EnableKey", json!({"KeyId": k}), INVALID, pending),
        ("DisableKey", json!({"KeyId": k}), INVALID, pending),
        (
            "UpdateKeyDescription",
            json!({"KeyId": k, "Description": "d"}),
            "",
            "",
        ),
        (
            "TagResource",
            json!({"KeyId": k, "Tags": [{"TagKey": "a", "TagValue": "b"}]}),
            "",
            "",
        ),
        (
            "PutKeyPolicy",
            json!({"KeyId": k, "Policy": policy}),
            "",
            "",
        ),
        ("GetKeyPolicy", json!({"KeyId": k}), "", ""),
        (
            "EnableKeyRotation",
            json!({"KeyId": k}),
            UNSUPPORTED,
            origin,
        ),
        (
            "DisableKeyRotation",
            json!({"KeyId": k}),
            UNSUPPORTED,
            origin,
        ),
        ("RotateKeyOnDemand", json!({"KeyId": k}), INVALID, pending),
        ("GetKeyRotationStatus", json!({"KeyId": k}), "", ""),
        ("ListKeyRotations", json!({"KeyId": k}), "", ""),
        (
            "CancelKeyDeletion",
            json!({"KeyId": k}),
            INVALID,
            "is not pending deletion.",
        ),
        // No material yet: deleting it has no effect.
        ("DeleteImportedKeyMaterial", json!({"KeyId": k}), "", ""),
        (
            "GetParametersForImport",
            json!({"KeyId": k, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"}),
            "",
            "",
        ),
        (
            "ScheduleKeyDeletion",
            json!({"KeyId": k, "PendingWindowInDays": 7}),
            "",
            "",
        ),
        // Pending deletion: no import, but deleting imported material is allowed.
        (
            "GetParametersForImport",
            json!({"KeyId": k, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"}),
            INVALID,
            "is pending deletion.",
        ),
        ("DeleteImportedKeyMaterial", json!({"KeyId": k}), "", ""),
        ("CancelKeyDeletion", json!({"KeyId": k}), "", ""),
    ];
    for (op, body, exception, suffix) in rows {
        let target = format!("TrentService.{op}");
        let (status, out, _) = common::raw(
            &server.endpoint,
            Some(&target),
            Some("application/x-amz-json-1.1"),
            body.to_string(),
        )
        .await;
        if exception.is_empty() {
            assert_eq!(status, 200, "{op}: {out}");
        } else {
            assert_eq!(out["__type"], exception, "{op}: {out}");
            let message = out["message"].as_str().unwrap_or_default();
            assert!(message.ends_with(suffix), "{op}: {message}");
        }
    }
    // Cancelling the deletion leaves the key waiting for its material.
    assert_eq!(state(&kms, &k).await, KeyState::PendingImport);
    // The import operations refuse keys whose material KMS made.
    let aws = kms.create_key().send().await.unwrap();
    let aws = aws.key_metadata().unwrap().key_id().to_string();
    let (code, message) = failure(kms.delete_imported_key_material().key_id(&aws).send().await);
    assert_eq!(code, UNSUPPORTED);
    assert!(message.ends_with("origin is AWS_KMS which is not valid for this operation."));
}
