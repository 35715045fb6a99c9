//! End-to-end: KMS keys in an external key store, through aws-sdk-kms, Keyhold and a real
//! loopback XKS proxy (SigV4-checking, AES-256-GCM external keys): CreateKey and its rules,
//! DescribeKey, double encryption in all five cryptographic operations, tampering and
//! integrity checks, and the `Unavailable` key state across disconnect and reconnect.

mod common;
mod custom_key_stores_common;
mod e2e_xks_keys_common;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, KeyManagerType, KeySpec, KeyState, OriginType};
use e2e_xks_keys_common::*;
use keyhold_crypto::CiphertextBlob;
use keyhold_xks::testing::Behaviour;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xks_keys_double_encrypt_in_all_five_operations() {
    let f = Fixture::start("").await;
    let kms = &f.kms;
    let (key_id, arn) = f.xks_key(XKS_KEY).await;
    let (plain_id, plain_arn) = f.default_key().await;

    // DescribeKey shows where the key lives.
    let md = kms
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
        .expect("describe")
        .key_metadata()
        .cloned()
        .expect("metadata");
    assert_eq!(md.origin(), Some(&OriginType::ExternalKeyStore));
    assert_eq!(md.custom_key_store_id(), Some(f.store_id.as_str()));
    assert_eq!(
        md.xks_key_configuration().and_then(|c| c.id()),
        Some(XKS_KEY)
    );
    assert_eq!(md.key_manager(), Some(&KeyManagerType::Customer));
    assert_eq!(md.key_state(), Some(&KeyState::Enabled));
    assert_eq!(md.key_spec(), Some(&KeySpec::SymmetricDefault));
    assert_eq!(md.multi_region(), Some(false));
    assert!(md.enabled());
    assert_eq!(md.current_key_material_id(), None);

    // Encrypt / Decrypt.
    let enc = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"external secret"))
        .encryption_context("tenant", "a")
        .send()
        .await
        .expect("encrypt");
    assert_eq!(enc.key_id(), Some(arn.as_str()));
    let blob = enc.ciphertext_blob().expect("blob").clone();
    let call = f.proxy.key_calls().pop().expect("a proxy call");
    assert_eq!(call.operation, "encrypt");
    assert_eq!(call.external_key_id, XKS_KEY);
    let m = &call.request_metadata;
    assert_eq!(m.kms_operation, "Encrypt");
    assert_eq!(m.kms_key_arn.as_deref(), Some(arn.as_str()));
    assert_eq!(
        m.aws_principal_arn.as_deref(),
        Some("arn:aws:iam::123456789012:root")
    );
    assert!(!m.kms_request_id.is_empty());
    let dec = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("tenant", "a")
        .send()
        .await
        .expect("decrypt");
    assert_eq!(dec.plaintext().expect("pt").as_ref(), b"external secret");
    assert_eq!(dec.key_id(), Some(arn.as_str()));
    assert_eq!(
        f.proxy
            .key_calls()
            .pop()
            .map(|c| c.request_metadata.kms_operation),
        Some("Decrypt".to_string())
    );

    // Wrong encryption context: the proxy rejects the AAD.
    let got = err(kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("tenant", "b")
        .send()
        .await);
    assert_eq!(got, invalid_state(msg::PROXY_REJECTED_CIPHERTEXT));

    // GenerateDataKey and GenerateDataKeyWithoutPlaintext.
    let gdk = kms
        .generate_data_key()
        .key_id(&key_id)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .expect("generate_data_key");
    assert_eq!(gdk.key_id(), Some(arn.as_str()));
    let dk = gdk.plaintext().expect("pt").as_ref().to_vec();
    let back = kms
        .decrypt()
        .ciphertext_blob(gdk.ciphertext_blob().expect("blob").clone())
        .send()
        .await
        .expect("decrypt data key");
    assert_eq!(back.plaintext().expect("pt").as_ref(), dk.as_slice());
    let gdkwp = kms
        .generate_data_key_without_plaintext()
        .key_id(&arn)
        .number_of_bytes(64)
        .send()
        .await
        .expect("without plaintext");
    let back = kms
        .decrypt()
        .ciphertext_blob(gdkwp.ciphertext_blob().expect("blob").clone())
        .send()
        .await
        .expect("decrypt");
    assert_eq!(back.plaintext().expect("pt").as_ref().len(), 64);

    // ReEncrypt XKS -> default and default -> XKS.
    let to_plain = kms
        .re_encrypt()
        .ciphertext_blob(blob.clone())
        .source_encryption_context("tenant", "a")
        .destination_key_id(&plain_id)
        .send()
        .await
        .expect("re_encrypt to default key");
    assert_eq!(to_plain.source_key_id(), Some(arn.as_str()));
    assert_eq!(to_plain.key_id(), Some(plain_arn.as_str()));
    assert_eq!(
        f.proxy
            .key_calls()
            .pop()
            .map(|c| c.request_metadata.kms_operation),
        Some("ReEncrypt".to_string())
    );
    let to_xks = kms
        .re_encrypt()
        .ciphertext_blob(to_plain.ciphertext_blob().expect("blob").clone())
        .destination_key_id(&key_id)
        .destination_encryption_context("tenant", "c")
        .send()
        .await
        .expect("re_encrypt to XKS key");
    assert_eq!(to_xks.source_key_id(), Some(plain_arn.as_str()));
    assert_eq!(to_xks.key_id(), Some(arn.as_str()));
    let back = kms
        .decrypt()
        .ciphertext_blob(to_xks.ciphertext_blob().expect("blob").clone())
        .encryption_context("tenant", "c")
        .send()
        .await
        .expect("decrypt");
    assert_eq!(back.plaintext().expect("pt").as_ref(), b"external secret");

    // Every embedded field is protected.
    let parsed = CiphertextBlob::parse(blob.as_ref()).expect("Keyhold blob");
    let layer = parsed.xks.clone().expect("XKS layer");
    let mut cases: Vec<(&str, CiphertextBlob)> = Vec::new();
    let mut t = parsed.clone();
    t.xks.as_mut().expect("layer").iv[0] ^= 1;
    cases.push(("proxy IV", t));
    let mut t = parsed.clone();
    t.xks.as_mut().expect("layer").tag[0] ^= 1;
    cases.push(("proxy tag", t));
    let mut t = parsed.clone();
    t.xks.as_mut().expect("layer").metadata = b"other-metadata".to_vec();
    cases.push(("ciphertext metadata", t));
    let mut t = parsed.clone();
    t.ciphertext[0] ^= 1;
    cases.push(("proxy ciphertext", t));
    let mut t = parsed.clone();
    t.iv[0] ^= 1;
    cases.push(("inner IV", t));
    assert!(!layer.metadata.is_empty());
    for (what, tampered) in cases {
        let got = err(kms
            .decrypt()
            .ciphertext_blob(Blob::new(tampered.to_bytes()))
            .encryption_context("tenant", "a")
            .send()
            .await);
        assert_eq!(got, invalid_state(msg::PROXY_REJECTED_CIPHERTEXT), "{what}");
    }
    let mut t = parsed.clone();
    t.key_id = plain_id.clone();
    let got = err(kms
        .decrypt()
        .ciphertext_blob(Blob::new(t.to_bytes()))
        .encryption_context("tenant", "a")
        .send()
        .await);
    assert_eq!(got.0, "InvalidCiphertextException", "key id");

    // The proxy returns a wrong integrity value: Encrypt and GenerateDataKey fail.
    f.proxy.set_behaviour(Behaviour::WrongCdiv);
    let got = err(kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"x"))
        .send()
        .await);
    assert_eq!(got, invalid_state(msg::PROXY_RETURNED_INVALID_CIPHERTEXT));
    let got = err(kms
        .generate_data_key()
        .key_id(&key_id)
        .key_spec(DataKeySpec::Aes128)
        .send()
        .await);
    assert_eq!(got, invalid_state(msg::PROXY_RETURNED_INVALID_CIPHERTEXT));
    // ... or none at all.
    f.proxy.set_behaviour(Behaviour::NoCdiv);
    let got = err(kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"x"))
        .send()
        .await);
    assert_eq!(got, invalid_state(msg::CANNOT_INTERPRET));
    // The proxy returns a wrong plaintext: Decrypt fails.
    f.proxy.set_behaviour(Behaviour::WrongPlaintext);
    let got = err(kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("tenant", "a")
        .send()
        .await);
    assert_eq!(got, invalid_state(msg::PROXY_RETURNED_INVALID_CIPHERTEXT));
    f.proxy.set_behaviour(Behaviour::Healthy);
    kms.decrypt()
        .ciphertext_blob(blob)
        .encryption_context("tenant", "a")
        .send()
        .await
        .expect("decrypt after the proxy is fixed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_key_rules_for_external_key_stores() {
    let f = Fixture::start("").await;
    let kms = &f.kms;
    let create = |store: &str, xks: &str| {
        kms.create_key()
            .origin(OriginType::ExternalKeyStore)
            .custom_key_store_id(store)
            .xks_key_id(xks)
    };

    let got = err(create("cks-1234567890abcdef0", XKS_KEY).send().await);
    assert_eq!(got.0, "CustomKeyStoreNotFoundException");

    let got = err(create(&f.store_id, "no-such-key").send().await);
    assert_eq!(
        got,
        (
            "XksKeyNotFoundException".to_string(),
            msg::KEY_NOT_FOUND.to_string()
        )
    );

    f.proxy.add_key("disabled");
    f.proxy.set_key_enabled("disabled", false);
    let got = err(create(&f.store_id, "disabled").send().await);
    assert_eq!(
        got,
        (
            "XksKeyInvalidConfigurationException".to_string(),
            "The status of the external key must be ENABLED. The status of specified external key is DISABLED.".to_string()
        )
    );
    f.proxy.add_key("aes128");
    f.proxy
        .set_key_metadata("aes128", "AES_128", &["ENCRYPT", "DECRYPT"]);
    let got = err(create(&f.store_id, "aes128").send().await);
    assert_eq!(
        got,
        (
            "XksKeyInvalidConfigurationException".to_string(),
            "The key spec of the external key must be AES_256. The key spec of specified external key is AES_128.".to_string()
        )
    );
    f.proxy.add_key("encrypt-only");
    f.proxy
        .set_key_metadata("encrypt-only", "AES_256", &["ENCRYPT", "WRAP"]);
    let got = err(create(&f.store_id, "encrypt-only").send().await);
    assert_eq!(
        got,
        (
            "XksKeyInvalidConfigurationException".to_string(),
            "The key usage of the external key must include ENCRYPT and DECRYPT. The key use of specified external key is ENCRYPT, WRAP.".to_string()
        )
    );

    // Proxy failures during CreateKey.
    f.proxy.set_behaviour(Behaviour::Status {
        status: 403,
        error_name: "AccessDeniedException".into(),
    });
    let got = err(create(&f.store_id, XKS_KEY).send().await);
    assert_eq!(
        got,
        (
            "CustomKeyStoreInvalidStateException".to_string(),
            msg::ACCESS_DENIED.to_string()
        )
    );
    f.proxy.set_behaviour(Behaviour::Healthy);
    f.proxy.set_credential(
        &f.opts.access_key_id,
        "b3RoZXItb3RoZXItb3RoZXItb3RoZXItb3RoZXItb3RoZXI=",
    );
    let got = err(create(&f.store_id, XKS_KEY).send().await);
    assert_eq!(
        got,
        (
            "CustomKeyStoreInvalidStateException".to_string(),
            msg::AUTHENTICATION_FAILED.to_string()
        )
    );
    f.proxy
        .set_credential(&f.opts.access_key_id, &f.opts.secret);

    // Unique XksKeyId per store.
    let (key_id, _) = f.xks_key(XKS_KEY).await;
    let got = err(create(&f.store_id, XKS_KEY).send().await);
    assert_eq!(got.0, "XksKeyAlreadyInUseException");

    // Parameter combinations.
    let got = err(kms.create_key().xks_key_id(XKS_KEY).send().await);
    assert_eq!(got.0, "ValidationException");
    let got = err(kms
        .create_key()
        .origin(OriginType::ExternalKeyStore)
        .custom_key_store_id(&f.store_id)
        .send()
        .await);
    assert_eq!(got.0, "ValidationException");
    let got = err(kms
        .create_key()
        .origin(OriginType::ExternalKeyStore)
        .xks_key_id(XKS_KEY)
        .send()
        .await);
    assert_eq!(got.0, "ValidationException");
    f.proxy.add_key("other");
    let got = err(create(&f.store_id, "other")
        .key_spec(KeySpec::Rsa2048)
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .send()
        .await);
    assert_eq!(got.0, "UnsupportedOperationException");
    let got = err(create(&f.store_id, "other")
        .key_spec(KeySpec::Hmac256)
        .key_usage(aws_sdk_kms::types::KeyUsageType::GenerateVerifyMac)
        .send()
        .await);
    assert_eq!(got.0, "UnsupportedOperationException");
    let got = err(create(&f.store_id, "other").multi_region(true).send().await);
    assert_eq!(got.0, "UnsupportedOperationException");

    // A store with keys cannot be deleted; a store that is not connected takes no new keys.
    disconnect(kms, &f.store_id).await;
    let got = err(create(&f.store_id, "other").send().await);
    assert_eq!(
        got,
        (
            "CustomKeyStoreInvalidStateException".to_string(),
            msg::NOT_CONNECTED.to_string()
        )
    );
    let got = err(kms
        .delete_custom_key_store()
        .custom_key_store_id(&f.store_id)
        .send()
        .await);
    assert_eq!(got.0, "CustomKeyStoreHasCMKsException");
    let md = kms
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
        .expect("describe")
        .key_metadata()
        .cloned()
        .expect("md");
    assert_eq!(md.custom_key_store_id(), Some(f.store_id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_makes_keys_unavailable_and_reconnect_restores_them() {
    let f = Fixture::start("").await;
    let kms = &f.kms;
    let (key_id, arn) = f.xks_key(XKS_KEY).await;
    let blob = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"kept across reconnects"))
        .send()
        .await
        .expect("encrypt")
        .ciphertext_blob()
        .cloned()
        .expect("blob");

    disconnect(kms, &f.store_id).await;
    let md = kms
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
        .expect("describe while disconnected")
        .key_metadata()
        .cloned()
        .expect("md");
    assert_eq!(md.key_state(), Some(&KeyState::Unavailable));
    assert!(!md.enabled());
    let unavailable = invalid_state(&format!("{arn} is unavailable."));
    let got = err(kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"x"))
        .send()
        .await);
    assert_eq!(got, unavailable);
    let got = err(kms.decrypt().ciphertext_blob(blob.clone()).send().await);
    assert_eq!(got, unavailable);
    let got = err(kms
        .generate_data_key()
        .key_id(&key_id)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await);
    assert_eq!(got, unavailable);

    connect(kms, &f.store_id).await;
    let md = kms
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
        .expect("describe after reconnect")
        .key_metadata()
        .cloned()
        .expect("md");
    assert_eq!(md.key_state(), Some(&KeyState::Enabled));
    let dec = kms
        .decrypt()
        .ciphertext_blob(blob)
        .send()
        .await
        .expect("decrypt after reconnect");
    assert_eq!(
        dec.plaintext().expect("pt").as_ref(),
        b"kept across reconnects"
    );
}
