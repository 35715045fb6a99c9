//! End-to-end: ScheduleKeyDeletion and CancelKeyDeletion for keys in an AWS CloudHSM key
//! store and in the default key store, across disconnects, and the completion of scheduled
//! deletions (through the test-mode hook), which destroys the backing key in the HSM and
//! never touches an external key.

mod cloudhsm_common;
mod common;
mod custom_key_stores_common;
#[allow(unused_imports)]
mod e2e_xks_keys_common;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{ConnectionStateType as S, KeyState, OriginType};

use cloudhsm_common::*;
use common::{client, TestServer};
use custom_key_stores_common::code;

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

/// Files of SoftHSM objects in the server's token directory (one per key).
fn token_objects(s: &TestServer) -> usize {
    let tokens = s.data_dir.join("cloudhsm").join("softhsm-tokens");
    let mut n = 0;
    for dir in std::fs::read_dir(tokens).expect("tokens").flatten() {
        if let Ok(entries) = std::fs::read_dir(dir.path()) {
            n += entries
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "object"))
                .count();
        }
    }
    n
}

async fn complete_deletions(s: &TestServer) -> u64 {
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/keyhold-test/complete-pending-deletions",
            s.endpoint
        ))
        .send()
        .await
        .expect("hook");
    assert_eq!(resp.status().as_u16(), 200);
    let v: serde_json::Value = resp.json().await.expect("json");
    v["deleted"].as_u64().expect("deleted")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_deletion_destroys_the_backing_key_in_the_hsm() {
    let tmp = tempfile::tempdir().expect("tmp");
    let Some(s) = server(tmp.path()) else { return };
    let kms = client(&s);
    let (store, _) = connected_store(&s, &kms, ["subnet-8a8a8a8a", "subnet-8b8b8b8b"]).await;
    let before = token_objects(&s);
    let md = kms
        .create_key()
        .origin(OriginType::AwsCloudhsm)
        .custom_key_store_id(&store)
        .send()
        .await
        .expect("create key");
    let md = md.key_metadata().expect("md");
    let (key, arn) = (md.key_id().to_string(), md.arn().expect("arn").to_string());
    assert_eq!(
        token_objects(&s),
        before + 1,
        "one backing key in the token"
    );
    let plain = kms.create_key().send().await.expect("default key");
    let plain = plain.key_metadata().expect("md").key_id().to_string();

    // Window rules.
    let r = kms
        .schedule_key_deletion()
        .key_id(&key)
        .pending_window_in_days(6)
        .send()
        .await;
    assert_eq!(code(r), "ValidationException");
    let sched = kms
        .schedule_key_deletion()
        .key_id(&key)
        .pending_window_in_days(7)
        .send()
        .await
        .expect("schedule");
    assert_eq!(sched.key_id(), Some(arn.as_str()));
    assert_eq!(sched.key_state(), Some(&KeyState::PendingDeletion));
    assert_eq!(sched.pending_window_in_days(), Some(7));
    let due = sched.deletion_date().expect("date").secs();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    assert!((due - now - 7 * 86_400).abs() < 120, "{due} vs {now}");

    // Pending deletion: crypto and a second schedule fail.
    let pending = (
        "KMSInvalidStateException".to_string(),
        format!("{arn} is pending deletion."),
    );
    let r = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"x"))
        .send()
        .await;
    assert_eq!(err(r), pending);
    let r = kms.schedule_key_deletion().key_id(&key).send().await;
    assert_eq!(err(r), pending);

    // Cancel: Disabled; a second cancel fails.
    kms.cancel_key_deletion()
        .key_id(&key)
        .send()
        .await
        .expect("cancel");
    assert_eq!(state_of(&kms, &key).await, KeyState::Disabled);
    let r = kms.cancel_key_deletion().key_id(&key).send().await;
    assert_eq!(
        err(r),
        (
            "KMSInvalidStateException".to_string(),
            format!("{arn} is not pending deletion.")
        )
    );

    // While disconnected: Unavailable, but scheduling works and shows PendingDeletion.
    disconnect(&kms, &store).await;
    assert_eq!(state_of(&kms, &key).await, KeyState::Unavailable);
    kms.schedule_key_deletion()
        .key_id(&key)
        .send()
        .await
        .expect("schedule while disconnected");
    assert_eq!(state_of(&kms, &key).await, KeyState::PendingDeletion);
    assert_eq!(reconnect(&kms, &store).await, (S::Connected, None));
    kms.schedule_key_deletion()
        .key_id(&plain)
        .send()
        .await
        .expect("schedule the default key");

    // Completing the deletions: both keys gone, the backing key destroyed in the HSM.
    assert_eq!(complete_deletions(&s).await, 2);
    for k in [&key, &plain] {
        let r = kms.describe_key().key_id(k).send().await;
        assert_eq!(code(r), "NotFoundException");
    }
    assert_eq!(token_objects(&s), before, "the backing key is destroyed");
    assert_eq!(complete_deletions(&s).await, 0);
    // No keys left: the store can be deleted.
    disconnect(&kms, &store).await;
    kms.delete_custom_key_store()
        .custom_key_store_id(&store)
        .send()
        .await
        .expect("delete store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_xks_key_never_touches_the_external_key() {
    let f = e2e_xks_keys_common::Fixture::start("").await;
    let (key, _) = f.xks_key(e2e_xks_keys_common::XKS_KEY).await;
    let calls = f.proxy.key_calls().len();
    f.kms
        .schedule_key_deletion()
        .key_id(&key)
        .pending_window_in_days(30)
        .send()
        .await
        .expect("schedule");
    assert_eq!(complete_deletions(&f.server).await, 1);
    let r = f.kms.describe_key().key_id(&key).send().await;
    assert_eq!(code(r), "NotFoundException");
    assert_eq!(
        f.proxy.key_calls().len(),
        calls,
        "no call reached the proxy"
    );
    // The external key still works for a new KMS key.
    let (again, _) = f.xks_key(e2e_xks_keys_common::XKS_KEY).await;
    f.kms
        .encrypt()
        .key_id(&again)
        .plaintext(Blob::new(b"still there"))
        .send()
        .await
        .expect("encrypt with a new key over the same external key");
}
