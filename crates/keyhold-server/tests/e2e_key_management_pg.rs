//! End-to-end: key management on two Keyhold nodes sharing one PostgreSQL database — alias
//! names and AWS managed keys stay unique under racing requests on both nodes, and what one
//! node writes (policies, tags, rotations, last use) the other reads.
//!
//! Needs `KEYHOLD_TEST_DATABASE_URL` (e.g. `postgres://postgres@127.0.0.1:5432/test`); without
//! it the test prints SKIP, or fails when `CI=true`.

mod common;

use aws_sdk_kms::types::KeyLastUsageTrackingOperation;
use common::{advance_clock, client, database_url, encrypt_blob};

fn outcome<T, E: aws_sdk_kms::error::ProvideErrorMetadata>(r: Result<T, E>) -> String {
    match r {
        Ok(_) => "Ok".into(),
        Err(e) => e.code().unwrap_or("?").to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_aliases_managed_keys_policies_and_rotations() {
    let Some(url) = database_url() else {
        return;
    };
    let (a, b, _tmp) = common::two_pg_nodes(&url, "kh_e2e_keys", "");
    let (ka, kb) = (client(&a), client(&b));

    // Eight keys, then eight racing CreateAlias of one name split across the nodes.
    let mut keys = Vec::new();
    for i in 0..8 {
        let kms = if i % 2 == 0 { &ka } else { &kb };
        let made = kms.create_key().send().await.expect("create");
        keys.push(made.key_metadata().unwrap().key_id().to_string());
    }
    let mut tasks = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let kms = if i % 2 == 0 { ka.clone() } else { kb.clone() };
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            outcome(
                kms.create_alias()
                    .alias_name("alias/raced")
                    .target_key_id(key)
                    .send()
                    .await,
            )
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.expect("task"));
    }
    assert_eq!(
        outcomes.iter().filter(|o| *o == "Ok").count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .all(|o| o == "Ok" || o == "AlreadyExistsException"),
        "{outcomes:?}"
    );
    let on_a = ka
        .describe_key()
        .key_id("alias/raced")
        .send()
        .await
        .expect("a");
    let on_b = kb
        .describe_key()
        .key_id("alias/raced")
        .send()
        .await
        .expect("b");
    assert_eq!(
        on_a.key_metadata().unwrap().key_id(),
        on_b.key_metadata().unwrap().key_id()
    );

    // First use of an AWS managed alias on both nodes at once: one key.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let kms = if i % 2 == 0 { ka.clone() } else { kb.clone() };
        tasks.push(tokio::spawn(async move {
            let out = kms
                .describe_key()
                .key_id("alias/aws/sqs")
                .send()
                .await
                .expect("describe alias/aws/sqs");
            out.key_metadata()
                .and_then(|m| m.arn())
                .unwrap_or_default()
                .to_string()
        }));
    }
    let mut arns = Vec::new();
    for t in tasks {
        arns.push(t.await.expect("task"));
    }
    arns.dedup();
    assert_eq!(arns.len(), 1, "{arns:?}");
    let listed = ka.list_keys().limit(1000).send().await.expect("list");
    assert_eq!(
        listed.keys().len(),
        keys.len() + 1,
        "no stray AWS managed keys"
    );

    // Written on A, read on B: policy, tags, rotation; a rotation run by A's clock is B's too.
    let key = &keys[0];
    let account = on_a
        .key_metadata()
        .unwrap()
        .aws_account_id()
        .unwrap()
        .to_string();
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"kms:*","Resource":"*"}}]}}"#
    );
    ka.put_key_policy()
        .key_id(key)
        .policy(&policy)
        .send()
        .await
        .expect("put");
    let got = kb.get_key_policy().key_id(key).send().await.expect("get");
    assert_eq!(got.policy(), Some(policy.as_str()));
    let old = encrypt_blob(&kb, key, b"before").await;
    ka.enable_key_rotation()
        .key_id(key)
        .rotation_period_in_days(90)
        .send()
        .await
        .expect("enable rotation");
    let before = kb
        .describe_key()
        .key_id(key)
        .send()
        .await
        .expect("describe");
    let before = before
        .key_metadata()
        .unwrap()
        .current_key_material_id()
        .unwrap()
        .to_string();
    let done = advance_clock(&a, 91 * 86_400).await;
    assert_eq!(done["rotated"], 1, "{done}");
    let after = kb
        .describe_key()
        .key_id(key)
        .send()
        .await
        .expect("describe");
    let after = after
        .key_metadata()
        .unwrap()
        .current_key_material_id()
        .unwrap()
        .to_string();
    assert_ne!(before, after);
    let dec = ka
        .decrypt()
        .ciphertext_blob(old)
        .send()
        .await
        .expect("decrypt on A");
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"before");

    // A use on B, written by B's batch, read on A.
    encrypt_blob(&kb, &keys[1], b"u").await;
    advance_clock(&b, 0).await;
    let usage = ka
        .get_key_last_usage()
        .key_id(&keys[1])
        .send()
        .await
        .expect("usage");
    assert_eq!(
        usage.key_last_usage().and_then(|u| u.operation()),
        Some(&KeyLastUsageTrackingOperation::Encrypt)
    );
}
