//! End-to-end: HSM failures that SoftHSMv2 cannot produce on demand — module errors in the
//! middle of a cryptographic operation, a token pulled out of its slot, the HSM's session
//! limit, and lock-out or a concurrent login reported by the module itself. The server's
//! `[cloudhsm] module_path` is `keyhold-pkcs11-faults`, a real PKCS#11 module that forwards
//! every call to SoftHSMv2 and fails chosen calls while its fault file says so. Each test
//! causes the fault, sees AWS's answer through aws-sdk-kms, removes the fault, and sees the
//! store work again without a restart of Keyhold.

mod cloudhsm_common;
mod common;
mod custom_key_stores_common;

use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{ConnectionErrorCodeType as E, ConnectionStateType as S, DataKeySpec};
use keyhold_pkcs11_faults::FaultFile;

use cloudhsm_common::*;
use common::{client, encrypt_blob, encrypt_failure, failure, TestServer};

/// A server whose CloudHSM clusters sit behind the fault-injecting module, and its fault
/// file; `None` (after a SKIP line) without SoftHSM or the built module, outside CI.
fn faulty_server(dir: &std::path::Path) -> Option<(TestServer, FaultFile)> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if !std::path::Path::new(keyhold_pkcs11_faults::DEFAULT_MODULE).exists() {
        assert!(!ci, "SoftHSMv2 missing but CI=true");
        println!("SKIP: SoftHSMv2 not installed");
        return None;
    }
    let Some(shim) = keyhold_pkcs11_faults::library_path() else {
        assert!(!ci, "libkeyhold_pkcs11_faults.so not built but CI=true");
        println!(
            "SKIP: libkeyhold_pkcs11_faults.so not built (cargo build -p keyhold-pkcs11-faults)"
        );
        return None;
    };
    let faults = FaultFile::new(dir.join("pkcs11-faults"));
    let cfg = dir.join("keyhold.toml");
    std::fs::write(
        &cfg,
        format!(
            "[cloudhsm]\nenabled = true\nfault_injection = true\nmodule_path = {:?}\n",
            shim.display().to_string()
        ),
    )
    .expect("config");
    let cfg = cfg.display().to_string();
    let faults_path = faults.path().display().to_string();
    let s = TestServer::start_with_env(
        &["--test-mode", "--config", &cfg],
        &[
            (keyhold_pkcs11_faults::FILE_ENV, faults_path.as_str()),
            (
                keyhold_pkcs11_faults::MODULE_ENV,
                keyhold_pkcs11_faults::DEFAULT_MODULE,
            ),
        ],
    );
    Some((s, faults))
}

/// A CONNECTED store over a ready cluster, a key in it, and a ciphertext of `PLAIN`:
/// (store id, cluster id, key id, ciphertext).
async fn store_with_key(
    s: &TestServer,
    kms: &aws_sdk_kms::Client,
    subnets: [&str; 2],
) -> (String, String, String, Blob) {
    let (store, cluster) = connected_store(s, kms, subnets).await;
    let (key, _) = hsm_key(kms, &store).await;
    let blob = encrypt_blob(kms, &key, PLAIN).await;
    (store, cluster, key, blob)
}

const PLAIN: &[u8] = b"inside the HSM";

/// Decrypts `blob` and checks it gives [`PLAIN`].
async fn decrypts(kms: &aws_sdk_kms::Client, blob: &Blob) {
    let out = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .send()
        .await
        .expect("decrypt");
    assert_eq!(out.plaintext().map(|p| p.as_ref()), Some(PLAIN));
}

async fn connection(kms: &aws_sdk_kms::Client, store: &str) -> (S, Option<E>) {
    custom_key_stores_common::wait_final(kms, store, Duration::from_secs(20)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn module_errors_mid_operation_then_recovery_without_restart() {
    let tmp = tempfile::tempdir().expect("tmp");
    let Some((s, faults)) = faulty_server(tmp.path()) else {
        return;
    };
    let kms = client(&s);
    let (store, _, key, blob) =
        store_with_key(&s, &kms, ["subnet-5a5a5a5a", "subnet-5b5b5b5b"]).await;

    // The HSM answers CKR_DEVICE_ERROR to every encryption and decryption: Keyhold drops the
    // session, recovers, retries once, and then answers as AWS does.
    faults
        .set(&[
            "fail C_EncryptInit CKR_DEVICE_ERROR",
            "fail C_DecryptInit CKR_DEVICE_ERROR",
        ])
        .expect("faults");
    let (code, message) = encrypt_failure(&kms, &key).await;
    assert_eq!(code, "KMSInvalidStateException", "{message}");
    assert!(
        message.contains("KMS cannot communicate with your CloudHSM cluster"),
        "{message}"
    );
    let (code, _) = failure(kms.decrypt().ciphertext_blob(blob.clone()).send().await);
    assert_eq!(code, "KMSInvalidStateException");
    let (code, _) = failure(
        kms.generate_data_key()
            .key_id(&key)
            .key_spec(DataKeySpec::Aes256)
            .send()
            .await,
    );
    assert_eq!(code, "KMSInvalidStateException");
    // A failed operation does not disconnect the store.
    assert_eq!(connection(&kms, &store).await, (S::Connected, None));

    // The HSM is healthy again: the same process, the same store, no reconnect.
    faults.clear().expect("clear");
    decrypts(&kms, &blob).await;
    kms.generate_data_key()
        .key_id(&key)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .expect("generate data key after recovery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_removed_then_returned_without_restart() {
    let tmp = tempfile::tempdir().expect("tmp");
    let Some((s, faults)) = faulty_server(tmp.path()) else {
        return;
    };
    let kms = client(&s);
    let (store, cluster, key, blob) =
        store_with_key(&s, &kms, ["subnet-5c5c5c5c", "subnet-5d5d5d5d"]).await;

    // The cluster's token leaves its slot (Keyhold labels a cluster's token with its id).
    let removed = format!("remove_token {cluster}");
    faults.set(&[removed.as_str()]).expect("faults");
    let (code, message) = encrypt_failure(&kms, &key).await;
    assert_eq!(code, "KMSInvalidStateException", "{message}");
    let (code, _) = failure(kms.decrypt().ciphertext_blob(blob.clone()).send().await);
    assert_eq!(code, "KMSInvalidStateException");
    assert_eq!(
        reconnect(&kms, &store).await,
        (S::Failed, Some(E::NetworkErrors))
    );

    // The token is back: AWS's fix (disconnect, reconnect) works in the same process.
    faults.clear().expect("clear");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut state = reconnect(&kms, &store).await;
    while state != (S::Connected, None) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        state = reconnect(&kms, &store).await;
    }
    assert_eq!(state, (S::Connected, None));
    decrypts(&kms, &blob).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_exhaustion_is_kms_internal_exception_then_recovers() {
    let tmp = tempfile::tempdir().expect("tmp");
    let Some((mut s, faults)) = faulty_server(tmp.path()) else {
        return;
    };
    let kms = client(&s);
    let (store, _, key, blob) =
        store_with_key(&s, &kms, ["subnet-5e5e5e5e", "subnet-5f5f5f5f"]).await;

    // Other applications hold every session the HSM allows. After a restart Keyhold has no
    // kmsuser sessions open (the store stays CONNECTED) and cannot open one.
    faults.set(&["max_sessions 0"]).expect("faults");
    s.restart();
    let kms = client(&s);
    assert_eq!(connection(&kms, &store).await, (S::Connected, None));
    let (code, message) = encrypt_failure(&kms, &key).await;
    assert_eq!(code, "KMSInternalException", "{message}");
    assert!(message.contains("PKCS #11 sessions"), "{message}");
    let (code, _) = failure(kms.decrypt().ciphertext_blob(blob.clone()).send().await);
    assert_eq!(code, "KMSInternalException");

    // Sessions free up: the next request opens the pool; no restart, no reconnect.
    faults.clear().expect("clear");
    decrypts(&kms, &blob).await;
    kms.encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"y".to_vec()))
        .send()
        .await
        .expect("encrypt after sessions freed up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_and_concurrent_login_reported_by_the_module() {
    let tmp = tempfile::tempdir().expect("tmp");
    let Some((s, faults)) = faulty_server(tmp.path()) else {
        return;
    };
    let kms = client(&s);
    let (store, _, _, blob) =
        store_with_key(&s, &kms, ["subnet-6c6c6c6c", "subnet-6d6d6d6d"]).await;

    // A module that locks users itself answers CKR_PIN_LOCKED: USER_LOCKED_OUT.
    faults
        .set(&["fail C_Login CKR_PIN_LOCKED"])
        .expect("faults");
    assert_eq!(
        reconnect(&kms, &store).await,
        (S::Failed, Some(E::UserLockedOut))
    );
    // An admin unlocks kmsuser on the HSM; reconnect.
    faults.clear().expect("clear");
    assert_eq!(reconnect(&kms, &store).await, (S::Connected, None));

    // kmsuser logged in by another application: CKR_USER_ANOTHER_ALREADY_LOGGED_IN.
    faults
        .set(&["fail C_Login CKR_USER_ANOTHER_ALREADY_LOGGED_IN"])
        .expect("faults");
    assert_eq!(
        reconnect(&kms, &store).await,
        (S::Failed, Some(E::UserLoggedIn))
    );
    // The other application logs out; reconnect.
    faults.clear().expect("clear");
    assert_eq!(reconnect(&kms, &store).await, (S::Connected, None));
    decrypts(&kms, &blob).await;
}
