//! The client's key operations (GetKeyMetadata, Encrypt, Decrypt) against the fake proxy's
//! AES-256-GCM key table: round trips with AAD, ciphertext metadata and integrity values as
//! the XKS specification defines them, and the key-level errors.

use std::collections::BTreeMap;

use keyhold_core::ports::xks::{
    XksConnectivity, XksConnector, XksDecryptInput, XksEncryptInput, XksEncryptOutput, XksFailure,
    XksKeyCall, XksKeyMetadata, XksKeyRequestMetadata, XksTarget,
};
use keyhold_crypto::SecretBytes;
use keyhold_xks::testing::{cdiv, Behaviour, FakeProxyOptions, FakeXksProxy, CIPHERTEXT_METADATA};
use keyhold_xks::{XksClient, XksClientConfig};

const HOST: &str = "xks.example.test";

async fn setup() -> (FakeXksProxy, XksClient, XksTarget, tempfile::TempDir) {
    let options = FakeProxyOptions::default();
    let proxy = FakeXksProxy::start(options.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("ca.pem"), proxy.ca_pem()).expect("write CA");
    let client = XksClient::new(XksClientConfig {
        extra_ca_files: vec![dir.path().join("ca.pem")],
        use_system_roots: false,
        connect_to: BTreeMap::from([(HOST.to_string(), proxy.addr().to_string())]),
        timeout_ms: 5_000,
        ..XksClientConfig::default()
    })
    .expect("client");
    let target = XksTarget {
        uri_endpoint: format!("https://{HOST}"),
        uri_path: options.uri_path.clone(),
        connectivity: XksConnectivity::PublicEndpoint,
        access_key_id: options.access_key_id.clone(),
        secret_access_key: SecretBytes::from_slice(options.secret.as_bytes()),
        region: options.region.clone(),
    };
    (proxy, client, target, dir)
}

fn md(operation: &str) -> XksKeyRequestMetadata {
    XksKeyRequestMetadata {
        aws_principal_arn: "arn:aws:iam::111122223333:user/alice".into(),
        kms_key_arn: Some("arn:aws:kms:us-east-1:111122223333:key/k".into()),
        kms_operation: operation.into(),
        kms_request_id: "req-1".into(),
    }
}

/// GetKeyMetadata of `key` through the connector, as at CreateKey.
async fn key_metadata(
    client: &XksClient,
    target: &XksTarget,
    key: &str,
) -> Result<XksKeyMetadata, XksFailure> {
    XksConnector::get_key_metadata(client, XksKeyCall::new(target, key, &md("CreateKey"))).await
}

/// Encrypt under `key` through the connector, as KMS's Encrypt.
async fn encrypt(
    client: &XksClient,
    target: &XksTarget,
    key: &str,
    input: &XksEncryptInput,
) -> Result<XksEncryptOutput, XksFailure> {
    XksConnector::encrypt(client, XksKeyCall::new(target, key, &md("Encrypt")), input).await
}

/// Decrypt under `key` through the connector, as KMS's Decrypt.
async fn decrypt(
    client: &XksClient,
    target: &XksTarget,
    key: &str,
    input: &XksDecryptInput,
) -> Result<SecretBytes, XksFailure> {
    XksConnector::decrypt(client, XksKeyCall::new(target, key, &md("Decrypt")), input).await
}

#[tokio::test]
async fn metadata_encrypt_decrypt_round_trip() {
    let (proxy, client, target, _dir) = setup().await;
    proxy.add_key("k1");
    let m = key_metadata(&client, &target, "k1")
        .await
        .expect("metadata");
    assert_eq!(m.key_spec, "AES_256");
    assert_eq!(m.key_usage, vec!["ENCRYPT", "DECRYPT"]);
    assert_eq!(m.key_status, "ENABLED");

    let input = XksEncryptInput {
        plaintext: b"inner ciphertext bytes".to_vec(),
        aad: b"header and context".to_vec(),
        request_cdiv: true,
    };
    let out = encrypt(&client, &target, "k1", &input)
        .await
        .expect("encrypt");
    assert_eq!(out.ciphertext.len(), input.plaintext.len());
    assert_eq!(out.iv.len(), 12);
    assert_eq!(out.tag.len(), 16);
    assert_eq!(out.ciphertext_metadata, CIPHERTEXT_METADATA);
    assert_eq!(
        out.cdiv,
        Some(cdiv(
            &input.aad,
            &out.ciphertext_metadata,
            &out.iv,
            &out.ciphertext,
            &out.tag
        ))
    );
    let call = proxy.key_calls().pop().expect("recorded");
    assert_eq!(call.operation, "encrypt");
    assert_eq!(call.request_metadata.kms_operation, "Encrypt");
    assert_eq!(
        call.request_metadata.aws_principal_arn.as_deref(),
        Some("arn:aws:iam::111122223333:user/alice")
    );
    assert_eq!(
        call.request_metadata.kms_key_arn.as_deref(),
        Some("arn:aws:kms:us-east-1:111122223333:key/k")
    );

    let dec = XksDecryptInput {
        ciphertext: out.ciphertext.clone(),
        iv: out.iv.clone(),
        tag: out.tag.clone(),
        ciphertext_metadata: out.ciphertext_metadata.clone(),
        aad: input.aad.clone(),
    };
    let plain = decrypt(&client, &target, "k1", &dec)
        .await
        .expect("decrypt");
    assert_eq!(plain.expose(), input.plaintext.as_slice());

    // Any change to AAD, metadata, IV, ciphertext or tag is InvalidCiphertextException.
    let mut bad = Vec::new();
    let mut d = dec.clone();
    d.aad.push(0);
    bad.push(d);
    let mut d = dec.clone();
    d.ciphertext_metadata.clear();
    bad.push(d);
    let mut d = dec.clone();
    d.iv[0] ^= 1;
    bad.push(d);
    let mut d = dec.clone();
    d.ciphertext[0] ^= 1;
    bad.push(d);
    let mut d = dec.clone();
    d.tag[0] ^= 1;
    bad.push(d);
    for d in bad {
        assert_eq!(
            decrypt(&client, &target, "k1", &d).await,
            Err(XksFailure::InvalidCiphertext)
        );
    }

    // Integrity value twists.
    proxy.set_behaviour(Behaviour::WrongCdiv);
    let out2 = encrypt(&client, &target, "k1", &input)
        .await
        .expect("encrypt");
    assert_ne!(
        out2.cdiv,
        Some(cdiv(
            &input.aad,
            &out2.ciphertext_metadata,
            &out2.iv,
            &out2.ciphertext,
            &out2.tag
        ))
    );
    proxy.set_behaviour(Behaviour::NoCdiv);
    let out3 = encrypt(&client, &target, "k1", &input)
        .await
        .expect("encrypt");
    assert_eq!(out3.cdiv, None);
}

#[tokio::test]
async fn key_level_errors() {
    let (proxy, client, target, _dir) = setup().await;
    let input = XksEncryptInput {
        plaintext: vec![1; 40],
        aad: Vec::new(),
        request_cdiv: false,
    };
    assert_eq!(
        key_metadata(&client, &target, "missing").await.err(),
        Some(XksFailure::KeyNotFound)
    );
    assert_eq!(
        encrypt(&client, &target, "missing", &input).await.err(),
        Some(XksFailure::KeyNotFound)
    );
    proxy.add_key("k2");
    proxy.set_key_enabled("k2", false);
    let m = key_metadata(&client, &target, "k2")
        .await
        .expect("metadata");
    assert_eq!(m.key_status, "DISABLED");
    assert_eq!(
        encrypt(&client, &target, "k2", &input).await.err(),
        Some(XksFailure::KeyInvalidState)
    );
    proxy.set_key_enabled("k2", true);
    proxy.set_key_metadata("k2", "AES_256", &["DECRYPT"]);
    assert_eq!(
        encrypt(&client, &target, "k2", &input).await.err(),
        Some(XksFailure::KeyInvalidUsage)
    );
    proxy.set_key_metadata("k2", "AES_256", &["ENCRYPT", "DECRYPT"]);
    let out = encrypt(&client, &target, "k2", &input)
        .await
        .expect("encrypt");
    assert_eq!(out.cdiv, None, "not asked for");
}
