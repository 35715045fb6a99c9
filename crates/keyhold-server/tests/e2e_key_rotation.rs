//! End-to-end with the official AWS SDK for Rust: key policies (PutKeyPolicy, the checks a
//! policy passes, CreateKey's Policy), rotation (automatic by the server's clock, on demand,
//! ListKeyRotations) and GetKeyLastUsage — and that all of it survives a restart.

mod common;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    IncludeKeyMaterial, KeyLastUsageTrackingOperation, KeyMaterialState, RotationType,
};
use common::{advance_clock, client, encrypt_blob, failure, TestServer};

const DAY: u64 = 86_400;

async fn new_key(kms: &aws_sdk_kms::Client) -> String {
    let made = kms.create_key().send().await.expect("create");
    made.key_metadata().expect("metadata").key_id().to_string()
}

async fn current_material(kms: &aws_sdk_kms::Client, key: &str) -> String {
    let d = kms
        .describe_key()
        .key_id(key)
        .send()
        .await
        .expect("describe");
    let md = d.key_metadata().expect("metadata");
    md.current_key_material_id()
        .expect("material id")
        .to_string()
}

async fn decrypt(kms: &aws_sdk_kms::Client, blob: Blob) -> Vec<u8> {
    let out = kms
        .decrypt()
        .ciphertext_blob(blob)
        .send()
        .await
        .expect("decrypt");
    out.plaintext().expect("plaintext").as_ref().to_vec()
}

#[tokio::test]
async fn key_policies_are_checked_and_stored_exactly() {
    let server = TestServer::start();
    let kms = client(&server);
    // dev mode: the account is derived from the access key; read it off a key ARN.
    let key = new_key(&kms).await;
    let d = kms
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .expect("describe");
    let account = d
        .key_metadata()
        .unwrap()
        .aws_account_id()
        .unwrap()
        .to_string();

    // Exactly the text put comes back, whitespace and all.
    let policy = format!(
        "{{\"Version\":\"2012-10-17\",  \"Statement\":[{{\"Sid\":\"admin\",\"Effect\":\"Allow\",\"Principal\":{{\"AWS\":\"arn:aws:iam::{account}:root\"}},\"Action\":\"kms:*\",\"Resource\":\"*\"}}]}}\n"
    );
    kms.put_key_policy()
        .key_id(&key)
        .policy(&policy)
        .send()
        .await
        .expect("put policy");
    let got = kms.get_key_policy().key_id(&key).send().await.expect("get");
    assert_eq!(got.policy(), Some(policy.as_str()));

    // CreateKey with a Policy stores it too.
    let made = kms
        .create_key()
        .policy(&policy)
        .send()
        .await
        .expect("create with policy");
    let with_policy = made.key_metadata().unwrap().key_id().to_string();
    let got = kms
        .get_key_policy()
        .key_id(&with_policy)
        .send()
        .await
        .expect("get");
    assert_eq!(got.policy(), Some(policy.as_str()));

    // Not JSON, no statement, a principal that is no principal: MalformedPolicyDocument,
    // and the stored policy is unchanged.
    for bad in [
        "{not json".to_string(),
        r#"{"Version":"2012-10-17"}"#.to_string(),
        r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"kms:*","Resource":"*"}]}"#.to_string(),
    ] {
        let (code, _) = failure(kms.put_key_policy().key_id(&key).policy(&bad).send().await);
        assert_eq!(code, "MalformedPolicyDocumentException", "{bad}");
        let (code, _) = failure(kms.create_key().policy(&bad).send().await);
        assert_eq!(code, "MalformedPolicyDocumentException", "{bad}");
    }
    let got = kms.get_key_policy().key_id(&key).send().await.expect("get");
    assert_eq!(got.policy(), Some(policy.as_str()));

    // A policy that would lock the caller out needs BypassPolicyLockoutSafetyCheck.
    // (This one still lets the account read the key and its policy, but not put a policy.)
    let lockout = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999999999999:root"},"Action":"kms:*","Resource":"*"},{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":["kms:Get*","kms:Describe*"],"Resource":"*"}]}"#;
    let (code, message) = failure(
        kms.put_key_policy()
            .key_id(&key)
            .policy(lockout)
            .send()
            .await,
    );
    assert_eq!(code, "MalformedPolicyDocumentException");
    assert_eq!(
        message,
        "The new key policy will not allow you to update the key policy in the future."
    );
    kms.put_key_policy()
        .key_id(&key)
        .policy(lockout)
        .bypass_policy_lockout_safety_check(true)
        .send()
        .await
        .expect("bypass");
    // ... and it is in force: the caller is locked out of PutKeyPolicy now.
    let (code, message) = failure(
        kms.put_key_policy()
            .key_id(&key)
            .policy(&policy)
            .send()
            .await,
    );
    assert_eq!(code, "AccessDeniedException");
    assert!(
        message.ends_with("because no resource-based policy allows the kms:PutKeyPolicy action"),
        "{message}"
    );

    // A disabled key's policy can be replaced; the policy survives a restart.
    kms.disable_key()
        .key_id(&with_policy)
        .send()
        .await
        .expect("disable");
    kms.put_key_policy()
        .key_id(&with_policy)
        .policy(&policy)
        .send()
        .await
        .expect("put on a disabled key");
    let mut server = server;
    server.restart();
    let kms = client(&server);
    let got = kms.get_key_policy().key_id(&key).send().await.expect("get");
    assert_eq!(got.policy(), Some(lockout));
}

#[tokio::test]
async fn automatic_rotation_by_the_clock_and_on_demand_rotation() {
    let mut server = TestServer::start();
    let kms = client(&server);
    let key = new_key(&kms).await;
    let first = current_material(&kms, &key).await;
    let old = encrypt_blob(&kms, &key, b"made before rotation").await;

    // Outside 90..=2560 days: the model's ValidationException.
    let (code, _) = failure(
        kms.enable_key_rotation()
            .key_id(&key)
            .rotation_period_in_days(89)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    kms.enable_key_rotation()
        .key_id(&key)
        .rotation_period_in_days(90)
        .send()
        .await
        .expect("enable rotation");
    let status = kms
        .get_key_rotation_status()
        .key_id(&key)
        .send()
        .await
        .expect("status");
    assert!(status.key_rotation_enabled());
    assert_eq!(status.rotation_period_in_days(), Some(90));
    assert!(status.next_rotation_date().is_some());

    // 89 days: nothing yet. 91 days: rotated; the old ciphertext still decrypts.
    let done = advance_clock(&server, 89 * DAY).await;
    assert_eq!(done["rotated"], 0, "{done}");
    assert_eq!(current_material(&kms, &key).await, first);
    let done = advance_clock(&server, 2 * DAY).await;
    assert_eq!(done["rotated"], 1, "{done}");
    let second = current_material(&kms, &key).await;
    assert_ne!(second, first);
    assert_eq!(decrypt(&kms, old.clone()).await, b"made before rotation");

    // On demand: up to 25 per key (the pinned model's quota), then LimitExceededException.
    for _ in 0..25 {
        kms.rotate_key_on_demand()
            .key_id(&key)
            .send()
            .await
            .expect("rotate on demand");
    }
    let (code, _) = failure(kms.rotate_key_on_demand().key_id(&key).send().await);
    assert_eq!(code, "LimitExceededException");

    let listed = kms
        .list_key_rotations()
        .key_id(&key)
        .include_key_material(IncludeKeyMaterial::AllKeyMaterial)
        .limit(5)
        .send()
        .await
        .expect("list rotations");
    assert!(listed.truncated());
    let page = listed.rotations();
    assert_eq!(page.len(), 5);
    assert_eq!(page[0].key_material_id(), Some(first.as_str()));
    assert_eq!(page[0].rotation_type(), None);
    assert_eq!(page[1].key_material_id(), Some(second.as_str()));
    assert_eq!(page[1].rotation_type(), Some(&RotationType::Automatic));
    assert_eq!(page[2].rotation_type(), Some(&RotationType::OnDemand));
    let mut all = page.to_vec();
    let mut marker = listed.next_marker().map(str::to_string);
    while let Some(m) = marker {
        let next = kms
            .list_key_rotations()
            .key_id(&key)
            .include_key_material(IncludeKeyMaterial::AllKeyMaterial)
            .limit(5)
            .marker(m)
            .send()
            .await
            .expect("next page");
        all.extend(next.rotations().iter().cloned());
        marker = next.next_marker().map(str::to_string);
    }
    assert_eq!(all.len(), 27, "first material + 1 automatic + 25 on demand");
    let current: Vec<_> = all
        .iter()
        .filter(|r| r.key_material_state() == Some(&KeyMaterialState::Current))
        .collect();
    assert_eq!(current.len(), 1);
    assert_eq!(
        all.last().unwrap().key_material_state(),
        Some(&KeyMaterialState::Current)
    );

    // Rotations, the schedule and every material survive a restart.
    let latest = current_material(&kms, &key).await;
    server.restart();
    let kms = client(&server);
    assert_eq!(current_material(&kms, &key).await, latest);
    assert_eq!(decrypt(&kms, old).await, b"made before rotation");
    let status = kms
        .get_key_rotation_status()
        .key_id(&key)
        .send()
        .await
        .expect("status");
    assert!(status.key_rotation_enabled());

    // Disabled rotation: no more automatic rotations.
    kms.disable_key_rotation()
        .key_id(&key)
        .send()
        .await
        .expect("disable rotation");
    let done = advance_clock(&server, 400 * DAY).await;
    assert_eq!(done["rotated"], 0, "{done}");
    assert_eq!(current_material(&kms, &key).await, latest);
}

#[tokio::test]
async fn rotation_is_refused_where_aws_refuses_it() {
    let server = TestServer::start();
    let kms = client(&server);
    let key = new_key(&kms).await;
    kms.disable_key()
        .key_id(&key)
        .send()
        .await
        .expect("disable");
    for (op, result) in [
        (
            "EnableKeyRotation",
            failure(kms.enable_key_rotation().key_id(&key).send().await),
        ),
        (
            "RotateKeyOnDemand",
            failure(kms.rotate_key_on_demand().key_id(&key).send().await),
        ),
    ] {
        assert_eq!(result.0, "DisabledException", "{op}");
    }
    kms.schedule_key_deletion()
        .key_id(&key)
        .pending_window_in_days(7)
        .send()
        .await
        .expect("schedule");
    let (code, _) = failure(kms.enable_key_rotation().key_id(&key).send().await);
    assert_eq!(code, "KMSInvalidStateException");
    let (code, _) = failure(
        kms.enable_key_rotation()
            .key_id("alias/does-not-exist")
            .send()
            .await,
    );
    assert_eq!(code, "NotFoundException");
}

#[tokio::test]
async fn last_usage_is_tracked_per_operation_and_survives_a_restart() {
    let mut server = TestServer::start();
    let kms = client(&server);
    let key = new_key(&kms).await;
    let usage = kms
        .get_key_last_usage()
        .key_id(&key)
        .send()
        .await
        .expect("usage");
    assert!(usage.key_last_usage().and_then(|u| u.operation()).is_none());
    assert_eq!(usage.tracking_start_date(), usage.key_creation_date());

    let blob = encrypt_blob(&kms, &key, b"x").await;
    let usage = kms
        .get_key_last_usage()
        .key_id(&key)
        .send()
        .await
        .expect("usage");
    let last = usage.key_last_usage().expect("last usage");
    assert_eq!(
        last.operation(),
        Some(&KeyLastUsageTrackingOperation::Encrypt)
    );
    assert!(last.kms_request_id().is_some_and(|id| !id.is_empty()));
    assert!(last.timestamp().is_some());

    decrypt(&kms, blob).await;
    kms.generate_data_key()
        .key_id(&key)
        .number_of_bytes(16)
        .send()
        .await
        .expect("data key");
    let usage = kms
        .get_key_last_usage()
        .key_id(&key)
        .send()
        .await
        .expect("usage");
    let last = usage.key_last_usage().expect("last usage").clone();
    assert_eq!(
        last.operation(),
        Some(&KeyLastUsageTrackingOperation::GenerateDataKey)
    );
    // A failed operation is not a use.
    let (code, _) = failure(
        kms.decrypt()
            .ciphertext_blob(Blob::new(b"not a ciphertext".to_vec()))
            .key_id(&key)
            .send()
            .await,
    );
    assert_eq!(code, "InvalidCiphertextException");

    // Written in the background batch (the test hook writes it now), then kept on restart.
    advance_clock(&server, 0).await;
    server.restart();
    let kms = client(&server);
    let usage = kms
        .get_key_last_usage()
        .key_id(&key)
        .send()
        .await
        .expect("usage");
    let after = usage.key_last_usage().expect("last usage");
    assert_eq!(after.operation(), last.operation());
    assert_eq!(after.kms_request_id(), last.kms_request_id());
}
