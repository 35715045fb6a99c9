//! Every CloudHSM `ConnectionErrorCode` caused for real on a SoftHSMv2-backed cluster, fixed
//! the way AWS documents, and reconnected.

mod cloudhsm_common;
mod common;
mod custom_key_stores_common;

use aws_sdk_kms::types::{ConnectionErrorCodeType as E, ConnectionStateType as S};
use serde_json::json;

use cloudhsm_common::*;
use common::{client, encrypt_blob, TestServer};
use custom_key_stores_common::code;

/// A connected store over a ready cluster: (server, kms, store id, cluster id, zones, hsms).
async fn connected(
    s: &TestServer,
    kms: &aws_sdk_kms::Client,
    subnets: [&str; 2],
) -> (String, String, Vec<String>, Vec<String>) {
    let (cluster, zones, hsms) = ready_cluster(s, subnets).await;
    let store = create_store(kms, &cluster).await;
    assert_eq!(reconnect(kms, &store).await, (S::Connected, None));
    (store, cluster, zones, hsms)
}

fn failed(c: E) -> (S, Option<E>) {
    (S::Failed, Some(c))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_lockout_missing_and_logged_in_user() {
    let tmp = tempfile::tempdir().expect("tmp");
    let Some(s) = server(tmp.path()) else { return };
    let kms = client(&s);
    let (store, cluster, _, _) = connected(&s, &kms, ["subnet-3a3a3a3a", "subnet-3b3b3b3b"]).await;

    let login = |pw: &str| json!({"ClusterId": cluster, "Username": "kmsuser", "Password": pw});
    // Connecting rotated the kmsuser password, as AWS KMS does: the original one is gone.
    err(
        &s,
        "KeyholdUserLogin",
        login(KMSUSER_PW),
        "CloudHsmAccessDeniedException",
    )
    .await;

    // INVALID_CREDENTIALS: the store's password no longer matches kmsuser's.
    set_store_password(&kms, &store, "wrongPass1").await;
    assert_eq!(reconnect(&kms, &store).await, failed(E::InvalidCredentials));
    // Fix: change the kmsuser password and update KeyStorePassword to it.
    user(&s, "KeyholdUserChangePassword", &cluster, Some("fixPass11")).await;
    set_store_password(&kms, &store, "fixPass11").await;
    assert_eq!(reconnect(&kms, &store).await, (S::Connected, None));

    // USER_LOCKED_OUT: five failed logins (CloudHSM CLI `login` equivalent).
    for _ in 0..5 {
        err(
            &s,
            "KeyholdUserLogin",
            login("badPassw0rd"),
            "CloudHsmAccessDeniedException",
        )
        .await;
    }
    assert_eq!(reconnect(&kms, &store).await, failed(E::UserLockedOut));
    // Fix: change the kmsuser password (as admin) and update the store's password.
    user(&s, "KeyholdUserChangePassword", &cluster, Some("newPass22")).await;
    set_store_password(&kms, &store, "newPass22").await;
    assert_eq!(reconnect(&kms, &store).await, (S::Connected, None));

    // USER_LOGGED_IN: an admin sets a password to log in with (the store's was rotated),
    // and kmsuser logs in elsewhere (CloudHSM CLI `login` equivalent).
    user(&s, "KeyholdUserChangePassword", &cluster, Some("login333")).await;
    cli(
        &s,
        &["login", "--cluster-id", &cluster],
        None,
        Some("login333"),
    );
    assert_eq!(reconnect(&kms, &store).await, failed(E::UserLoggedIn));
    // Fix: log kmsuser out, and (the password was changed) update the store's password.
    cli(&s, &["logout", "--cluster-id", &cluster], None, None);
    set_store_password(&kms, &store, "login333").await;
    assert_eq!(reconnect(&kms, &store).await, (S::Connected, None));

    // USER_NOT_FOUND: kmsuser deleted.
    user(&s, "KeyholdUserDelete", &cluster, None).await;
    assert_eq!(reconnect(&kms, &store).await, failed(E::UserNotFound));
    // Fix: create kmsuser and update the store's password.
    user(&s, "KeyholdUserCreate", &cluster, Some("again777")).await;
    set_store_password(&kms, &store, "again777").await;
    assert_eq!(reconnect(&kms, &store).await, (S::Connected, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsms_subnets_and_cluster_failures() {
    let tmp = tempfile::tempdir().expect("tmp");
    let Some(s) = server(tmp.path()) else { return };
    let kms = client(&s);
    let subnets = ["subnet-4a4a4a4a", "subnet-4b4b4b4b"];
    let (store, cluster, zones, hsms) = connected(&s, &kms, subnets).await;

    // INSUFFICIENT_CLOUDHSM_HSMS: every HSM deleted.
    for h in &hsms {
        ok(&s, "DeleteHsm", json!({"ClusterId": cluster, "HsmId": h})).await;
    }
    assert_eq!(
        reconnect(&kms, &store).await,
        failed(E::InsufficientCloudhsmHsms)
    );
    // Fix: add an HSM.
    let h = create_hsm(&s, &cluster, &zones[0]).await;
    assert_eq!(reconnect(&kms, &store).await, (S::Connected, None));
    // The same with the only HSM marked unavailable (fault injection).
    let set_hsm = |state: &str| json!({"ClusterId": cluster, "HsmId": h, "State": state});
    ok(&s, "KeyholdFaultSetHsmState", set_hsm("DEGRADED")).await;
    assert_eq!(
        reconnect(&kms, &store).await,
        failed(E::InsufficientCloudhsmHsms)
    );
    ok(&s, "KeyholdFaultSetHsmState", set_hsm("ACTIVE")).await;
    assert_eq!(reconnect(&kms, &store).await, (S::Connected, None));

    // INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET: a subnet exhausted.
    let subnet = |body: serde_json::Value| async { ok(&s, "KeyholdFaultSetSubnet", body).await };
    subnet(json!({"SubnetId": subnets[1], "FreeAddresses": 0})).await;
    assert_eq!(
        reconnect(&kms, &store).await,
        failed(E::InsufficientFreeAddressesInSubnet)
    );
    // Fix: free addresses in the subnet.
    subnet(json!({"SubnetId": subnets[1], "FreeAddresses": 2})).await;
    assert_eq!(reconnect(&kms, &store).await, (S::Connected, None));

    // SUBNET_NOT_FOUND: a subnet of the cluster removed.
    subnet(json!({"SubnetId": subnets[0], "Removed": true})).await;
    assert_eq!(reconnect(&kms, &store).await, failed(E::SubnetNotFound));
    // AWS's fix: a cluster from a recent backup in new subnets, associated with the store.
    let backup = cluster.replacen("cluster-", "backup-", 1);
    let v = ok(
        &s,
        "CreateCluster",
        json!({"HsmType": "hsm2m.medium", "SubnetIds": ["subnet-5a5a5a5a", "subnet-5b5b5b5b"], "SourceBackupId": backup}),
    )
    .await;
    let restored = v["Cluster"]["ClusterId"].as_str().expect("id").to_string();
    let rz: Vec<String> = v["Cluster"]["SubnetMapping"]
        .as_object()
        .expect("map")
        .keys()
        .cloned()
        .collect();
    create_hsm(&s, &restored, &rz[0]).await;
    create_hsm(&s, &restored, &rz[1]).await;
    // An unrelated cluster is refused.
    let (unrelated, _, _) = ready_cluster(&s, ["subnet-6a6a6a6a", "subnet-6b6b6b6b"]).await;
    disconnect(&kms, &store).await;
    let r = kms
        .update_custom_key_store()
        .custom_key_store_id(&store)
        .cloud_hsm_cluster_id(&unrelated)
        .send()
        .await;
    assert_eq!(code(r), "CloudHsmClusterNotRelatedException");
    kms.update_custom_key_store()
        .custom_key_store_id(&store)
        .cloud_hsm_cluster_id(&restored)
        .send()
        .await
        .expect("update to the restored cluster");
    assert_eq!(reconnect(&kms, &store).await, (S::Connected, None));

    // CLUSTER_NOT_FOUND: the cluster deleted (HSMs first, as AWS requires).
    let d = ok(
        &s,
        "DescribeClusters",
        json!({"Filters": {"clusterIds": [restored]}}),
    )
    .await;
    for h in d["Clusters"][0]["Hsms"].as_array().expect("hsms") {
        ok(
            &s,
            "DeleteHsm",
            json!({"ClusterId": restored, "HsmId": h["HsmId"]}),
        )
        .await;
    }
    ok(&s, "DeleteCluster", json!({"ClusterId": restored})).await;
    assert_eq!(reconnect(&kms, &store).await, failed(E::ClusterNotFound));
    // Fix: restore the cluster from its backup and associate it with the store.
    let v = ok(
        &s,
        "CreateCluster",
        json!({"HsmType": "hsm2m.medium", "SubnetIds": ["subnet-7a7a7a7a", "subnet-7b7b7b7b"], "SourceBackupId": restored.replacen("cluster-", "backup-", 1)}),
    )
    .await;
    let again = v["Cluster"]["ClusterId"].as_str().expect("id").to_string();
    let az: Vec<String> = v["Cluster"]["SubnetMapping"]
        .as_object()
        .expect("map")
        .keys()
        .cloned()
        .collect();
    create_hsm(&s, &again, &az[0]).await;
    create_hsm(&s, &again, &az[1]).await;
    disconnect(&kms, &store).await;
    kms.update_custom_key_store()
        .custom_key_store_id(&store)
        .cloud_hsm_cluster_id(&again)
        .send()
        .await
        .expect("update to the re-restored cluster");
    assert_eq!(reconnect(&kms, &store).await, (S::Connected, None));
}

/// Reconnects until `want` or 10 s pass: module resets are rate-limited, so the first
/// attempt right after the HSM returns may still see it gone.
async fn reconnect_until(
    kms: &aws_sdk_kms::Client,
    store: &str,
    want: (S, Option<E>),
) -> (S, Option<E>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let got = reconnect(kms, store).await;
        if got == want || std::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The HSM's token disappears under the running module (its SoftHSM files are moved away:
/// the module answers CKR_GENERAL_ERROR from then on): Connect fails with NETWORK_ERRORS and
/// keys are unavailable. When the token comes back, Keyhold resets the module
/// (C_Finalize + C_Initialize) and everything works again — no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_gone_then_back_recovers_without_restart() {
    let tmp = tempfile::tempdir().expect("tmp");
    let Some(s) = server(tmp.path()) else {
        return;
    };
    let kms = client(&s);
    let (store, _, _, _) = connected(&s, &kms, ["subnet-9a9a9a9a", "subnet-9b9b9b9b"]).await;
    let (key, _) = hsm_key(&kms, &store).await;
    let plaintext = aws_sdk_kms::primitives::Blob::new(b"kept in the HSM".to_vec());
    let blob = encrypt_blob(&kms, &key, plaintext.as_ref()).await;

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
    let gone = common::until_failure(std::time::Duration::from_secs(5), || {
        kms.decrypt().ciphertext_blob(blob.clone()).send()
    })
    .await;
    let gone_code = gone
        .as_ref()
        .err()
        .and_then(|e| e.as_service_error())
        .and_then(|e| aws_sdk_kms::error::ProvideErrorMetadata::code(e))
        .map(str::to_string);
    assert_eq!(
        gone_code.as_deref(),
        Some("KMSInvalidStateException"),
        "{gone:?}"
    );
    let outcome = reconnect(&kms, &store).await;
    std::fs::rename(&aside, &dir).expect("put token back");
    assert_eq!(outcome, failed(E::NetworkErrors));

    // The token is back: disconnect, reconnect (AWS's fix), no restart.
    assert_eq!(
        reconnect_until(&kms, &store, (S::Connected, None)).await,
        (S::Connected, None)
    );
    let back = kms
        .decrypt()
        .ciphertext_blob(blob)
        .send()
        .await
        .expect("decrypt after the token returned");
    assert_eq!(back.plaintext(), Some(&plaintext));
}

/// INTERNAL_ERROR from a cause inside KMS: the server restarts with another root key, so the
/// stored kmsuser password cannot be unwrapped. The fix: the right root key, reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_error_when_the_kmsuser_password_cannot_be_unwrapped() {
    let tmp = tempfile::tempdir().expect("tmp");
    if server(tmp.path()).is_none() {
        return;
    }
    let cfg = tmp.path().join("keyhold.toml").display().to_string();
    let write_key = |name: &str, byte: u8| {
        use base64::Engine;
        let path = tmp.path().join(name);
        std::fs::write(
            &path,
            base64::engine::general_purpose::STANDARD.encode([byte; 32]),
        )
        .expect("root key");
        // Keyhold refuses a root key file its group or others can read.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        path.display().to_string()
    };
    let (a, b) = (write_key("a.key", 0xa1), write_key("b.key", 0xb2));
    let args = |key: &str| {
        [
            "--test-mode".to_string(),
            "--config".to_string(),
            cfg.clone(),
            "--root-key-file".to_string(),
            key.to_string(),
        ]
    };
    let mut s = TestServer::start_with(&args(&a).each_ref().map(String::as_str));
    let kms = client(&s);
    let (store, _, _, _) = connected(&s, &kms, ["subnet-8a8a8a8a", "subnet-8b8b8b8b"]).await;
    disconnect(&kms, &store).await;

    s.set_args(&args(&b).each_ref().map(String::as_str));
    s.restart();
    let kms = client(&s);
    assert_eq!(reconnect(&kms, &store).await, failed(E::InternalError));

    s.set_args(&args(&a).each_ref().map(String::as_str));
    s.restart();
    let kms = client(&s);
    assert_eq!(reconnect(&kms, &store).await, (S::Connected, None));
}
