//! End-to-end: the key-state table operation × state over the wire (Enabled, Disabled,
//! PendingDeletion; Unavailable is covered by the custom key store suites), the operations
//! that take only a key id or key ARN, and AWS managed keys created on first use.

mod common;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::KeyManagerType;
use common::{client, failure, raw, TestServer};
use serde_json::{json, Value};

const CT: Option<&str> = Some("application/x-amz-json-1.1");

async fn call(server: &TestServer, op: &str, body: Value) -> (u16, Value) {
    let target = format!("TrentService.{op}");
    let (status, json, _) = raw(&server.endpoint, Some(&target), CT, body.to_string()).await;
    (status, json)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    Enabled,
    Disabled,
    PendingDeletion,
}

/// A new key in `state`.
async fn key_in(server: &TestServer, state: State) -> String {
    let (status, made) = call(server, "CreateKey", json!({})).await;
    assert_eq!(status, 200, "{made}");
    let key = made["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("key id")
        .to_string();
    let setup = match state {
        State::Enabled => None,
        State::Disabled => Some(("DisableKey", json!({ "KeyId": key }))),
        State::PendingDeletion => Some((
            "ScheduleKeyDeletion",
            json!({ "KeyId": key, "PendingWindowInDays": 7 }),
        )),
    };
    if let Some((op, body)) = setup {
        let (status, out) = call(server, op, body).await;
        assert_eq!(status, 200, "{op}: {out}");
    }
    key
}

const OK: &str = "";
const DISABLED: &str = "DisabledException";
const INVALID: &str = "KMSInvalidStateException";

/// (operation, request body for key `k`, outcome in Enabled, Disabled, PendingDeletion): AWS's
/// key-state table for the operations Keyhold serves.
fn table(k: &str) -> Vec<(&'static str, Value, [&'static str; 3])> {
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}]}"#;
    vec![
        ("DescribeKey", json!({"KeyId": k}), [OK, OK, OK]),
        (
            "Encrypt",
            json!({"KeyId": k, "Plaintext": "eA=="}),
            [OK, DISABLED, INVALID],
        ),
        (
            "GenerateDataKey",
            json!({"KeyId": k, "NumberOfBytes": 16}),
            [OK, DISABLED, INVALID],
        ),
        (
            "GenerateDataKeyWithoutPlaintext",
            json!({"KeyId": k, "KeySpec": "AES_256"}),
            [OK, DISABLED, INVALID],
        ),
        ("EnableKey", json!({"KeyId": k}), [OK, OK, INVALID]),
        ("DisableKey", json!({"KeyId": k}), [OK, OK, INVALID]),
        (
            "UpdateKeyDescription",
            json!({"KeyId": k, "Description": "d"}),
            [OK, OK, INVALID],
        ),
        (
            "TagResource",
            json!({"KeyId": k, "Tags": [{"TagKey": "a", "TagValue": "b"}]}),
            [OK, OK, INVALID],
        ),
        (
            "UntagResource",
            json!({"KeyId": k, "TagKeys": ["a"]}),
            [OK, OK, INVALID],
        ),
        ("ListResourceTags", json!({"KeyId": k}), [OK, OK, OK]),
        ("GetKeyPolicy", json!({"KeyId": k}), [OK, OK, OK]),
        ("ListKeyPolicies", json!({"KeyId": k}), [OK, OK, OK]),
        (
            "PutKeyPolicy",
            json!({"KeyId": k, "Policy": policy}),
            [OK, OK, OK],
        ),
        (
            "EnableKeyRotation",
            json!({"KeyId": k}),
            [OK, DISABLED, INVALID],
        ),
        (
            "DisableKeyRotation",
            json!({"KeyId": k}),
            [OK, DISABLED, INVALID],
        ),
        (
            "RotateKeyOnDemand",
            json!({"KeyId": k}),
            [OK, DISABLED, INVALID],
        ),
        ("GetKeyRotationStatus", json!({"KeyId": k}), [OK, OK, OK]),
        ("ListKeyRotations", json!({"KeyId": k}), [OK, OK, OK]),
        ("GetKeyLastUsage", json!({"KeyId": k}), [OK, OK, OK]),
        ("ListAliases", json!({"KeyId": k}), [OK, OK, OK]),
        (
            "CreateAlias",
            json!({"AliasName": format!("alias/s-{}", &k[..8]), "TargetKeyId": k}),
            [OK, OK, INVALID],
        ),
        (
            "ScheduleKeyDeletion",
            json!({"KeyId": k, "PendingWindowInDays": 7}),
            [OK, OK, INVALID],
        ),
        (
            "CancelKeyDeletion",
            json!({"KeyId": k}),
            [INVALID, INVALID, OK],
        ),
    ]
}

#[tokio::test]
async fn key_state_table_operation_by_state() {
    let server = TestServer::start();
    let states = [State::Enabled, State::Disabled, State::PendingDeletion];
    let rows = table("00000000-0000-0000-0000-000000000000").len();
    let mut checked = 0;
    for row in 0..rows {
        for (i, state) in states.iter().enumerate() {
            // A fresh key per cell: several operations change the state they are tested in.
            let key = key_in(&server, *state).await;
            let (op, body, outcomes) = table(&key).swap_remove(row);
            let (status, out) = call(&server, op, body).await;
            let expected = outcomes[i];
            if expected == OK {
                assert_eq!(status, 200, "{op} in {state:?}: {out}");
            } else {
                assert_eq!(status, 400, "{op} in {state:?}: {out}");
                assert_eq!(out["__type"], expected, "{op} in {state:?}: {out}");
                let message = out["message"].as_str().unwrap_or_default();
                assert!(
                    message.contains(&key),
                    "{op} in {state:?}: the message names the key: {out}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, rows * 3);
}

#[tokio::test]
async fn management_operations_take_a_key_id_or_arn_not_an_alias() {
    let server = TestServer::start();
    let kms = client(&server);
    let key = kms.create_key().send().await.expect("create");
    let md = key.key_metadata().expect("metadata");
    let (key_id, arn) = (md.key_id().to_string(), md.arn().expect("arn").to_string());
    kms.create_alias()
        .alias_name("alias/managed")
        .target_key_id(&key_id)
        .send()
        .await
        .expect("alias");
    let alias_arn = arn.replace(&format!("key/{key_id}"), "alias/managed");
    for alias in ["alias/managed", alias_arn.as_str()] {
        for op in [
            "EnableKey",
            "DisableKey",
            "GetKeyPolicy",
            "ListResourceTags",
            "EnableKeyRotation",
            "GetKeyRotationStatus",
            "ScheduleKeyDeletion",
        ] {
            let (status, out) = call(&server, op, json!({"KeyId": alias})).await;
            assert_eq!(status, 400, "{op} {alias}: {out}");
            assert_eq!(out["__type"], "NotFoundException", "{op} {alias}: {out}");
            assert_eq!(out["message"], format!("Invalid keyId {alias}"), "{op}");
        }
    }
    // The key ARN works, and the alias keeps working where AWS accepts one.
    kms.enable_key_rotation()
        .key_id(&arn)
        .send()
        .await
        .expect("by ARN");
    kms.describe_key()
        .key_id("alias/managed")
        .send()
        .await
        .expect("describe by alias");
}

#[tokio::test]
async fn aws_managed_keys_are_created_on_first_use() {
    let mut server = TestServer::start();
    let kms = client(&server);

    // Before first use: listed without a key; CreateAlias cannot take the name.
    let listed = kms.list_aliases().limit(100).send().await.expect("list");
    let s3 = listed
        .aliases()
        .iter()
        .find(|a| a.alias_name() == Some("alias/aws/s3"))
        .expect("alias/aws/s3 is predefined");
    assert!(s3.target_key_id().is_none());

    // First use from several requests at once: exactly one key.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let kms = kms.clone();
        tasks.push(tokio::spawn(async move {
            let out = kms
                .describe_key()
                .key_id("alias/aws/s3")
                .send()
                .await
                .expect("describe alias/aws/s3");
            out.key_metadata()
                .expect("metadata")
                .arn()
                .expect("arn")
                .to_string()
        }));
    }
    let mut arns = Vec::new();
    for t in tasks {
        arns.push(t.await.expect("task"));
    }
    arns.dedup();
    assert_eq!(arns.len(), 1, "{arns:?}");
    let keys = kms.list_keys().send().await.expect("list keys");
    assert_eq!(keys.keys().len(), 1, "the losers' keys are gone");

    let md = kms
        .describe_key()
        .key_id("alias/aws/s3")
        .send()
        .await
        .expect("describe")
        .key_metadata
        .expect("metadata");
    assert_eq!(md.arn(), Some(arns[0].as_str()));
    assert_eq!(md.key_manager(), Some(&KeyManagerType::Aws));
    // Only the service may use it (kms:ViaService in AWS's policy): a direct call is denied.
    let denied = kms
        .encrypt()
        .key_id("alias/aws/s3")
        .plaintext(Blob::new(b"managed".to_vec()))
        .send()
        .await
        .expect_err("AWS managed keys are for their service");
    assert_eq!(
        aws_sdk_kms::error::ProvideErrorMetadata::code(&denied),
        Some("AccessDeniedException")
    );
    let status = kms
        .get_key_rotation_status()
        .key_id(md.key_id())
        .send()
        .await
        .expect("rotation status");
    assert!(status.key_rotation_enabled());
    assert_eq!(status.rotation_period_in_days(), Some(365));
    let policy = kms
        .get_key_policy()
        .key_id(md.key_id())
        .send()
        .await
        .expect("policy");
    assert!(policy
        .policy()
        .unwrap_or_default()
        .contains("s3.us-east-1.amazonaws.com"));

    // DescribeKey creates one too, as AWS documents; an unknown service has none.
    let ebs = kms
        .describe_key()
        .key_id("alias/aws/ebs")
        .send()
        .await
        .expect("describe ebs");
    assert_eq!(
        ebs.key_metadata().unwrap().key_manager(),
        Some(&KeyManagerType::Aws)
    );
    let (code, _) = failure(kms.describe_key().key_id("alias/aws/nothing").send().await);
    assert_eq!(code, "NotFoundException");

    // AWS manages them: not disabled, deleted or aliased by the caller.
    for (op, result) in [
        (
            "DisableKey",
            failure(kms.disable_key().key_id(md.key_id()).send().await),
        ),
        (
            "ScheduleKeyDeletion",
            failure(kms.schedule_key_deletion().key_id(md.key_id()).send().await),
        ),
        (
            "CreateAlias",
            failure(
                kms.create_alias()
                    .alias_name("alias/mine")
                    .target_key_id(md.key_id())
                    .send()
                    .await,
            ),
        ),
    ] {
        // AWS's policy for them lets the account only read them (kms:Describe*, Get*, List*).
        assert_eq!(result.0, "AccessDeniedException", "{op}: {}", result.1);
        assert!(
            result.1.contains("because no resource-based policy allows"),
            "{op}: {}",
            result.1
        );
    }

    // Listed with its key now, and the same key after a restart.
    server.restart();
    let kms = client(&server);
    let listed = kms.list_aliases().limit(100).send().await.expect("list");
    let s3 = listed
        .aliases()
        .iter()
        .find(|a| a.alias_name() == Some("alias/aws/s3"))
        .expect("alias/aws/s3");
    assert_eq!(s3.target_key_id(), Some(md.key_id()));
    let again = kms
        .describe_key()
        .key_id("alias/aws/s3")
        .send()
        .await
        .expect("describe");
    assert_eq!(again.key_metadata().unwrap().key_id(), md.key_id());
}
