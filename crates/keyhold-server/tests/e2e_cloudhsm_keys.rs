//! End-to-end: KMS keys in an AWS CloudHSM key store on a real SoftHSMv2 token, through
//! aws-sdk-kms: CreateKey and its rules, DescribeKey, AES-GCM inside the HSM in all five
//! cryptographic operations (ReEncrypt to and from default-store keys), tampering, GenerateRandom,
//! the `Unavailable` state across disconnect and reconnect, and HSM failures.

mod cloudhsm_common;
mod common;
mod custom_key_stores_common;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{ConnectionStateType as S, DataKeySpec, KeySpec, KeyState, OriginType};
use keyhold_crypto::CiphertextBlob;

use cloudhsm_common::*;
use common::{client, TestServer};
use custom_key_stores_common::code;

/// (error code, message) of a result, ("Ok", "") on success.
fn err<T, E: aws_sdk_kms::error::ProvideErrorMetadata>(r: Result<T, E>) -> (String, String) {
    match r {
        Ok(_) => ("Ok".into(), String::new()),
        Err(e) => (
            e.code().unwrap_or_default().to_string(),
            e.message().unwrap_or_default().to_string(),
        ),
    }
}

async fn state_of(kms: &aws_sdk_kms::Client, key: &str) -> KeyState {
    kms.describe_key()
        .key_id(key)
        .send()
        .await
        .expect("describe")
        .key_metadata()
        .and_then(|m| m.key_state())
        .cloned()
        .expect("state")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudhsm_keys_encrypt_inside_the_hsm_in_all_five_operations() {
    let tmp = tempfile::tempdir().expect("tmp");
    let Some(s) = server(tmp.path()) else { return };
    let kms = client(&s);
    let (store, cluster) = connected_store(&s, &kms, ["subnet-4a4a4a4a", "subnet-4b4b4b4b"]).await;
    let (key_id, arn) = hsm_key(&kms, &store).await;

    let md = kms
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
        .expect("describe")
        .key_metadata()
        .cloned()
        .expect("metadata");
    assert_eq!(md.origin(), Some(&OriginType::AwsCloudhsm));
    assert_eq!(md.custom_key_store_id(), Some(store.as_str()));
    assert_eq!(md.cloud_hsm_cluster_id(), Some(cluster.as_str()));
    assert_eq!(md.key_spec(), Some(&KeySpec::SymmetricDefault));
    assert_eq!(md.key_state(), Some(&KeyState::Enabled));
    assert_eq!(md.multi_region(), Some(false));
    assert_eq!(md.current_key_material_id(), None);
    assert!(md.xks_key_configuration().is_none());

    // Encrypt / Decrypt with an encryption context.
    let enc = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"hsm secret"))
        .encryption_context("tenant", "a")
        .send()
        .await
        .expect("encrypt");
    assert_eq!(enc.key_id(), Some(arn.as_str()));
    let blob = enc.ciphertext_blob().expect("blob").clone();
    let parsed = CiphertextBlob::parse(blob.as_ref()).expect("a Keyhold blob");
    assert_eq!(parsed.kind, keyhold_crypto::blob::BlobKind::CloudHsmAesGcm);
    assert!(!blob.as_ref().windows(10).any(|w| w == b"hsm secret"));
    let dec = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("tenant", "a")
        .send()
        .await
        .expect("decrypt");
    assert_eq!(
        dec.plaintext().map(|p| p.as_ref()),
        Some(&b"hsm secret"[..])
    );
    assert_eq!(dec.key_id(), Some(arn.as_str()));
    assert_eq!(dec.key_material_id(), None);

    // Wrong or missing context, tampering: InvalidCiphertextException.
    let r = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("tenant", "b")
        .send()
        .await;
    assert_eq!(code(r), "InvalidCiphertextException");
    let r = kms.decrypt().ciphertext_blob(blob.clone()).send().await;
    assert_eq!(code(r), "InvalidCiphertextException");
    let mut bytes = blob.as_ref().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let r = kms
        .decrypt()
        .ciphertext_blob(Blob::new(bytes))
        .encryption_context("tenant", "a")
        .send()
        .await;
    assert_eq!(code(r), "InvalidCiphertextException");
    let mut iv_flip = parsed.clone();
    iv_flip.iv[0] ^= 1;
    let r = kms
        .decrypt()
        .ciphertext_blob(Blob::new(iv_flip.to_bytes()))
        .encryption_context("tenant", "a")
        .send()
        .await;
    assert_eq!(code(r), "InvalidCiphertextException");

    // GenerateDataKey(WithoutPlaintext).
    let dk = kms
        .generate_data_key()
        .key_id(&key_id)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .expect("gdk");
    let plain = dk.plaintext().expect("plaintext").as_ref().to_vec();
    assert_eq!(plain.len(), 32);
    let back = kms
        .decrypt()
        .ciphertext_blob(dk.ciphertext_blob().expect("blob").clone())
        .send()
        .await
        .expect("decrypt data key");
    assert_eq!(back.plaintext().map(|p| p.as_ref().to_vec()), Some(plain));
    let dkw = kms
        .generate_data_key_without_plaintext()
        .key_id(&key_id)
        .number_of_bytes(64)
        .send()
        .await
        .expect("gdk without plaintext");
    let back = kms
        .decrypt()
        .ciphertext_blob(dkw.ciphertext_blob().expect("blob").clone())
        .send()
        .await
        .expect("decrypt");
    assert_eq!(back.plaintext().map(|p| p.as_ref().len()), Some(64));

    // ReEncrypt from the HSM key to a default-store key and back.
    let plain_md = kms.create_key().send().await.expect("default key");
    let plain_id = plain_md.key_metadata().expect("md").key_id().to_string();
    let to_default = kms
        .re_encrypt()
        .ciphertext_blob(blob.clone())
        .source_encryption_context("tenant", "a")
        .destination_key_id(&plain_id)
        .destination_encryption_context("tenant", "c")
        .send()
        .await
        .expect("re-encrypt to default");
    assert_eq!(to_default.source_key_id(), Some(arn.as_str()));
    let back_to_hsm = kms
        .re_encrypt()
        .ciphertext_blob(to_default.ciphertext_blob().expect("blob").clone())
        .source_encryption_context("tenant", "c")
        .destination_key_id(&arn)
        .send()
        .await
        .expect("re-encrypt to the HSM key");
    assert_eq!(back_to_hsm.key_id(), Some(arn.as_str()));
    let dec = kms
        .decrypt()
        .ciphertext_blob(back_to_hsm.ciphertext_blob().expect("blob").clone())
        .send()
        .await
        .expect("decrypt");
    assert_eq!(
        dec.plaintext().map(|p| p.as_ref()),
        Some(&b"hsm secret"[..])
    );

    // GenerateRandom: from the HSM with the store id, from the OS without.
    let r = kms
        .generate_random()
        .number_of_bytes(48)
        .custom_key_store_id(&store)
        .send()
        .await
        .expect("random from the HSM");
    assert_eq!(r.plaintext().map(|p| p.as_ref().len()), Some(48));
    let r = kms
        .generate_random()
        .number_of_bytes(1024)
        .send()
        .await
        .expect("random");
    assert_eq!(r.plaintext().map(|p| p.as_ref().len()), Some(1024));
    let r = kms.generate_random().number_of_bytes(1025).send().await;
    assert_eq!(code(r), "ValidationException");
    let r = kms
        .generate_random()
        .number_of_bytes(8)
        .custom_key_store_id("cks-0000000000000000a")
        .send()
        .await;
    assert_eq!(code(r), "CustomKeyStoreNotFoundException");

    // The store has a key: it cannot be deleted.
    disconnect(&kms, &store).await;
    let r = kms
        .delete_custom_key_store()
        .custom_key_store_id(&store)
        .send()
        .await;
    assert_eq!(code(r), "CustomKeyStoreHasCMKsException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudhsm_keys_rules_unavailable_state_and_reopened_sessions() {
    let tmp = tempfile::tempdir().expect("tmp");
    let Some(s) = server(tmp.path()) else { return };
    let kms = client(&s);
    let (store, cluster) = connected_store(&s, &kms, ["subnet-5a5a5a5a", "subnet-5b5b5b5b"]).await;

    // CreateKey rules.
    let r = kms
        .create_key()
        .origin(OriginType::AwsCloudhsm)
        .custom_key_store_id(&store)
        .key_spec(KeySpec::Rsa2048)
        .send()
        .await;
    assert_eq!(code(r), "UnsupportedOperationException");
    let r = kms
        .create_key()
        .origin(OriginType::AwsCloudhsm)
        .custom_key_store_id(&store)
        .multi_region(true)
        .send()
        .await;
    assert_eq!(code(r), "UnsupportedOperationException");
    let r = kms
        .create_key()
        .origin(OriginType::AwsCloudhsm)
        .custom_key_store_id("cks-0000000000000000a")
        .send()
        .await;
    assert_eq!(code(r), "CustomKeyStoreNotFoundException");

    let (key_id, arn) = hsm_key(&kms, &store).await;
    let enc = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"kept"))
        .send()
        .await
        .expect("encrypt");
    let blob = enc.ciphertext_blob().expect("blob").clone();

    // Another login to the token (here a failed kmsuser login) suspends this process's
    // kmsuser sessions; the next operation opens them again with the store's password.
    err_hsm(&s, &cluster).await;
    let dec = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .send()
        .await
        .expect("decrypt after the sessions were reopened");
    assert_eq!(dec.plaintext().map(|p| p.as_ref()), Some(&b"kept"[..]));

    // Disconnected: the key is Unavailable, crypto fails with AWS's message, CreateKey and
    // GenerateRandom with the store id fail with CustomKeyStoreInvalidStateException.
    disconnect(&kms, &store).await;
    assert_eq!(state_of(&kms, &key_id).await, KeyState::Unavailable);
    let unavailable = (
        "KMSInvalidStateException".to_string(),
        format!("{arn} is unavailable."),
    );
    let r = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"x"))
        .send()
        .await;
    assert_eq!(err(r), unavailable);
    let r = kms.decrypt().ciphertext_blob(blob.clone()).send().await;
    assert_eq!(err(r), unavailable);
    let r = kms
        .generate_data_key()
        .key_id(&key_id)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await;
    assert_eq!(err(r), unavailable);
    let r = kms
        .create_key()
        .origin(OriginType::AwsCloudhsm)
        .custom_key_store_id(&store)
        .send()
        .await;
    assert_eq!(code(r), "CustomKeyStoreInvalidStateException");
    let r = kms
        .generate_random()
        .number_of_bytes(8)
        .custom_key_store_id(&store)
        .send()
        .await;
    assert_eq!(code(r), "CustomKeyStoreInvalidStateException");

    // Reconnected (the password rotates again): Enabled, and old ciphertexts decrypt.
    assert_eq!(reconnect(&kms, &store).await, (S::Connected, None));
    assert_eq!(state_of(&kms, &key_id).await, KeyState::Enabled);
    let dec = kms
        .decrypt()
        .ciphertext_blob(blob)
        .send()
        .await
        .expect("decrypt after reconnect");
    assert_eq!(dec.plaintext().map(|p| p.as_ref()), Some(&b"kept"[..]));
}

/// A failed `KeyholdUserLogin` for kmsuser (a login to the token from elsewhere).
async fn err_hsm(s: &TestServer, cluster: &str) {
    err_login(s, cluster, "notThePassword1").await;
}

async fn err_login(s: &TestServer, cluster: &str, pw: &str) {
    cloudhsm_common::err(
        s,
        "KeyholdUserLogin",
        serde_json::json!({"ClusterId": cluster, "Username": "kmsuser", "Password": pw}),
        "CloudHsmAccessDeniedException",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsm_failure_mid_operation_and_recovery() {
    let tmp = tempfile::tempdir().expect("tmp");
    let Some(mut s) = server(tmp.path()) else {
        return;
    };
    let kms = client(&s);
    let (store, _) = connected_store(&s, &kms, ["subnet-6a6a6a6a", "subnet-6b6b6b6b"]).await;
    let (key_id, _arn) = hsm_key(&kms, &store).await;
    let blob = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"survives"))
        .send()
        .await
        .expect("encrypt")
        .ciphertext_blob()
        .expect("blob")
        .clone();

    // The token's files vanish under the running module while the store is CONNECTED.
    let tokens = s.data_dir.join("cloudhsm").join("softhsm-tokens");
    let dir = std::fs::read_dir(&tokens)
        .expect("token dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .expect("one token");
    let aside = tmp.path().join("token-aside");
    std::fs::rename(&dir, &aside).expect("move token away");
    // Key operations run on a session copy of the key that SoftHSM keeps in memory, checked
    // against the token every 500 ms: the loss shows within that time, not necessarily at once.
    let r = common::until_failure(std::time::Duration::from_secs(5), || {
        kms.encrypt()
            .key_id(&key_id)
            .plaintext(Blob::new(b"x"))
            .send()
    })
    .await;
    let (name, _) = err(r);
    std::fs::rename(&aside, &dir).expect("put token back");
    // SoftHSM no longer finds the backing key: KMSInvalidStateException, as AWS answers when
    // the key material is not available in the cluster.
    assert_eq!(name, "KMSInvalidStateException");
    // The token is back: Keyhold resets the module (SoftHSM needs C_Finalize + C_Initialize
    // to see a token directory that vanished) and the same CONNECTED store works again
    // without a restart. Resets are rate-limited, so the first try may still fail.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let dec = loop {
        match kms.decrypt().ciphertext_blob(blob.clone()).send().await {
            Ok(d) => break d,
            Err(e) if std::time::Instant::now() < deadline => {
                let (name, _) = err(Err::<(), _>(e));
                assert_eq!(name, "KMSInvalidStateException");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("decrypt after the token returned: {e:?}"),
        }
    };
    assert_eq!(dec.plaintext().map(|p| p.as_ref()), Some(&b"survives"[..]));
    // After a restart the store is still CONNECTED and the first operation opens the
    // kmsuser sessions again with the stored password.
    s.restart();
    let kms = client(&s);
    let dec = kms
        .decrypt()
        .ciphertext_blob(blob)
        .send()
        .await
        .expect("decrypt after restart");
    assert_eq!(dec.plaintext().map(|p| p.as_ref()), Some(&b"survives"[..]));
}

/// The network path from KMS to the cluster's HSMs goes down (fault injection: AWS controls
/// it, a laptop lacks it): cryptographic calls fail with KMSInvalidStateException, a new
/// Connect fails with NETWORK_ERRORS; when the path returns, everything recovers without a
/// restart and old ciphertexts decrypt again.
#[tokio::test]
async fn network_partition_gives_network_errors_and_heals_without_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(s) = server(dir.path()) else { return };
    let kms = client(&s);
    let (store, cluster) = connected_store(&s, &kms, ["subnet-7a7a7a7a", "subnet-7b7b7b7b"]).await;
    let (key, arn) = hsm_key(&kms, &store).await;
    let blob = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"across the partition".to_vec()))
        .send()
        .await
        .expect("encrypt before the partition")
        .ciphertext_blob()
        .cloned()
        .expect("blob");

    let cut = |reachable: bool| serde_json::json!({"ClusterId": cluster, "Reachable": reachable});
    ok(&s, "KeyholdFaultSetClusterNetwork", cut(false)).await;
    let (code, message) = err(kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await);
    assert_eq!(code, "KMSInvalidStateException", "{message}");
    assert!(message.starts_with(&arn), "{message}");
    let (code, _) = err(kms.decrypt().ciphertext_blob(blob.clone()).send().await);
    assert_eq!(code, "KMSInvalidStateException");
    assert_eq!(
        reconnect(&kms, &store).await,
        (
            S::Failed,
            Some(aws_sdk_kms::types::ConnectionErrorCodeType::NetworkErrors)
        )
    );

    // The path comes back: reconnect, no restart.
    ok(&s, "KeyholdFaultSetClusterNetwork", cut(true)).await;
    assert_eq!(reconnect(&kms, &store).await, (S::Connected, None));
    let plain = kms
        .decrypt()
        .ciphertext_blob(blob)
        .send()
        .await
        .expect("decrypt after healing");
    assert_eq!(
        plain.plaintext().map(|p| p.as_ref().to_vec()),
        Some(b"across the partition".to_vec())
    );
}

/// AWS: a cryptographic operation needs an active HSM in the cluster; without one it fails
/// with KMSInvalidStateException. Deleting both HSMs of a CONNECTED store's cluster makes its
/// keys fail; a new HSM makes them work again, without reconnecting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_active_hsm_fails_operations_until_an_hsm_is_back() {
    let tmp = tempfile::tempdir().expect("tmp");
    let Some(s) = server(tmp.path()) else { return };
    let kms = client(&s);
    let (cluster, zones, hsms) = ready_cluster(&s, ["subnet-2a2a2a2a", "subnet-2b2b2b2b"]).await;
    let store = create_store(&kms, &cluster).await;
    assert_eq!(reconnect(&kms, &store).await, (S::Connected, None));
    let (key, arn) = hsm_key(&kms, &store).await;
    let blob = common::encrypt_blob(&kms, &key, b"needs an HSM").await;

    for hsm_id in &hsms {
        ok(
            &s,
            "DeleteHsm",
            serde_json::json!({"ClusterId": cluster, "HsmId": hsm_id}),
        )
        .await;
    }
    let (code, message) = common::encrypt_failure(&kms, &key).await;
    assert_eq!(code, "KMSInvalidStateException", "{message}");
    assert!(message.starts_with(&arn), "{message}");
    let (code, _) = err(kms.decrypt().ciphertext_blob(blob.clone()).send().await);
    assert_eq!(code, "KMSInvalidStateException");

    create_hsm(&s, &cluster, &zones[0]).await;
    let plain = kms
        .decrypt()
        .ciphertext_blob(blob)
        .send()
        .await
        .expect("decrypt with an active HSM again");
    assert_eq!(
        plain.plaintext().map(|p| p.as_ref()),
        Some(&b"needs an HSM"[..])
    );
}
