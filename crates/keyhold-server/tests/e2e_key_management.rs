//! End-to-end: managing a key's metadata with the official AWS SDK for Rust — EnableKey,
//! DisableKey, UpdateKeyDescription, tags, the key policy and the rotation status, as
//! Terraform's `aws_kms_key` reads and updates them.

mod common;

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyState, Tag};
use common::{client, TestServer};

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().tag_key(k).tag_value(v).build().expect("tag")
}

#[tokio::test]
async fn enable_disable_and_describe() {
    let server = TestServer::start();
    let kms = client(&server);
    let key_id = kms
        .create_key()
        .send()
        .await
        .expect("create")
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();

    kms.disable_key()
        .key_id(&key_id)
        .send()
        .await
        .expect("disable");
    let md = kms
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(md.key_state(), Some(&KeyState::Disabled));
    assert!(!md.enabled());
    // A disabled key cannot encrypt: DisabledException.
    let err = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("DisabledException"));
    // Disabling twice is fine, as in AWS.
    kms.disable_key()
        .key_id(&key_id)
        .send()
        .await
        .expect("disable again");

    kms.enable_key()
        .key_id(&key_id)
        .send()
        .await
        .expect("enable");
    let md = kms
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(md.key_state(), Some(&KeyState::Enabled));
    kms.encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .expect("encrypt after enable");

    // A key pending deletion can be neither enabled nor disabled.
    kms.schedule_key_deletion()
        .key_id(&key_id)
        .pending_window_in_days(7)
        .send()
        .await
        .expect("schedule");
    for disable in [false, true] {
        let err = if disable {
            kms.disable_key()
                .key_id(&key_id)
                .send()
                .await
                .unwrap_err()
                .into_service_error()
                .code()
                .map(str::to_string)
        } else {
            kms.enable_key()
                .key_id(&key_id)
                .send()
                .await
                .unwrap_err()
                .into_service_error()
                .code()
                .map(str::to_string)
        };
        assert_eq!(err.as_deref(), Some("KMSInvalidStateException"));
    }
    let err = kms
        .enable_key()
        .key_id("00000000-0000-0000-0000-000000000000")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("NotFoundException"));
}

#[tokio::test]
async fn description_tags_policy_and_rotation_status() {
    let server = TestServer::start();
    let kms = client(&server);
    let key_id = kms
        .create_key()
        .description("first")
        .tags(tag("team", "kms"))
        .send()
        .await
        .expect("create")
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();

    kms.update_key_description()
        .key_id(&key_id)
        .description("second")
        .send()
        .await
        .expect("update description");
    let md = kms
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(md.description(), Some("second"));

    kms.tag_resource()
        .key_id(&key_id)
        .tags(tag("env", "dev"))
        .tags(tag("team", "crypto"))
        .send()
        .await
        .expect("tag");
    let tags = kms
        .list_resource_tags()
        .key_id(&key_id)
        .send()
        .await
        .expect("list tags");
    let pairs: Vec<(&str, &str)> = tags
        .tags()
        .iter()
        .map(|t| (t.tag_key(), t.tag_value()))
        .collect();
    assert_eq!(pairs, [("team", "crypto"), ("env", "dev")]);
    assert!(!tags.truncated());

    // Paging: one tag per page.
    let first = kms
        .list_resource_tags()
        .key_id(&key_id)
        .limit(1)
        .send()
        .await
        .expect("page 1");
    assert!(first.truncated());
    let second = kms
        .list_resource_tags()
        .key_id(&key_id)
        .limit(1)
        .marker(first.next_marker().unwrap())
        .send()
        .await
        .expect("page 2");
    assert_eq!(second.tags()[0].tag_key(), "env");
    assert!(!second.truncated());
    let err = kms
        .list_resource_tags()
        .key_id(&key_id)
        .marker("bogus")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("InvalidMarkerException"));

    kms.untag_resource()
        .key_id(&key_id)
        .tag_keys("team")
        .tag_keys("absent")
        .send()
        .await
        .expect("untag");
    let tags = kms
        .list_resource_tags()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().len(), 1);
    assert_eq!(tags.tags()[0].tag_key(), "env");

    // Reserved prefix and the 50-tag quota: TagException, nothing changed.
    let err = kms
        .tag_resource()
        .key_id(&key_id)
        .tags(tag("aws:x", "y"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("TagException"));
    let mut too_many = kms.tag_resource().key_id(&key_id);
    for i in 0..50 {
        too_many = too_many.tags(tag(&format!("k{i}"), "v"));
    }
    let err = too_many.send().await.unwrap_err().into_service_error();
    assert_eq!(err.code(), Some("TagException"));
    assert_eq!(
        kms.list_resource_tags()
            .key_id(&key_id)
            .send()
            .await
            .unwrap()
            .tags()
            .len(),
        1
    );

    // The key policy: AWS's default one, under its only name.
    let policy = kms
        .get_key_policy()
        .key_id(&key_id)
        .send()
        .await
        .expect("get policy");
    assert_eq!(policy.policy_name(), Some("default"));
    let doc: serde_json::Value =
        serde_json::from_str(policy.policy().unwrap()).expect("policy JSON");
    assert_eq!(
        doc["Statement"][0]["Principal"]["AWS"],
        "arn:aws:iam::123456789012:root"
    );
    assert_eq!(doc["Statement"][0]["Action"], "kms:*");
    let err = kms
        .get_key_policy()
        .key_id(&key_id)
        .policy_name("other")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("NotFoundException"));
    let names = kms
        .list_key_policies()
        .key_id(&key_id)
        .send()
        .await
        .expect("list policies");
    assert_eq!(names.policy_names(), ["default"]);

    let rotation = kms
        .get_key_rotation_status()
        .key_id(&key_id)
        .send()
        .await
        .expect("rotation status");
    assert!(!rotation.key_rotation_enabled());

    // Tags and descriptions cannot change while the key is pending deletion.
    kms.schedule_key_deletion()
        .key_id(&key_id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let err = kms
        .tag_resource()
        .key_id(&key_id)
        .tags(tag("a", "b"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("KMSInvalidStateException"));
    let err = kms
        .update_key_description()
        .key_id(&key_id)
        .description("x")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("KMSInvalidStateException"));
    // Reading still works.
    assert_eq!(
        kms.list_resource_tags()
            .key_id(&key_id)
            .send()
            .await
            .unwrap()
            .tags()
            .len(),
        1
    );
}

/// Concurrent TagResource calls on one key all land (compare-and-set with retries).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_tagging_keeps_every_tag() {
    let server = TestServer::start();
    let kms = client(&server);
    let key_id = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let kms = kms.clone();
        let key_id = key_id.clone();
        tasks.push(tokio::spawn(async move {
            kms.tag_resource()
                .key_id(key_id)
                .tags(tag(&format!("k{i}"), "v"))
                .send()
                .await
        }));
    }
    for t in tasks {
        t.await.expect("join").expect("tag");
    }
    let tags = kms
        .list_resource_tags()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().len(), 8);
}

/// Aliases: create, use wherever a key id is accepted (by name and by ARN), list (all, by key,
/// paged), update, delete; AWS's answers for bad names, duplicates and missing aliases; and
/// aliases go with their key when its deletion completes.
#[tokio::test]
async fn aliases_name_keys() {
    let server = TestServer::start_with(&["--test-mode"]);
    let kms = client(&server);
    let key_a = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let key_b = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();

    kms.create_alias()
        .alias_name("alias/app")
        .target_key_id(&key_a)
        .send()
        .await
        .expect("create alias");
    kms.create_alias()
        .alias_name("alias/app-2")
        .target_key_id(&key_a)
        .send()
        .await
        .expect("second alias");
    kms.create_alias()
        .alias_name("alias/other")
        .target_key_id(&key_b)
        .send()
        .await
        .expect("third alias");

    // An alias name and an alias ARN work as key identifiers.
    let arn = "arn:aws:kms:us-east-1:123456789012:alias/app";
    for id in ["alias/app", arn] {
        let md = kms
            .describe_key()
            .key_id(id)
            .send()
            .await
            .expect("describe by alias")
            .key_metadata
            .unwrap();
        assert_eq!(md.key_id(), key_a);
    }
    let blob = kms
        .encrypt()
        .key_id("alias/app")
        .plaintext(Blob::new(b"named".to_vec()))
        .send()
        .await
        .expect("encrypt by alias")
        .ciphertext_blob
        .unwrap();
    let dec = kms
        .decrypt()
        .key_id("alias/app")
        .ciphertext_blob(blob)
        .send()
        .await
        .expect("decrypt by alias");
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"named");

    // Listing: all, by key, and paged.
    let all = kms.list_aliases().send().await.expect("list");
    // The caller's aliases first (by name), then AWS's predefined aliases, which have no
    // key until first used.
    let (predefined, own): (Vec<_>, Vec<_>) = all
        .aliases()
        .iter()
        .partition(|a| a.alias_name().is_some_and(|n| n.starts_with("alias/aws/")));
    let names: Vec<&str> = own.iter().filter_map(|a| a.alias_name()).collect();
    assert_eq!(names, ["alias/app", "alias/app-2", "alias/other"]);
    assert_eq!(own[0].alias_arn(), Some(arn));
    assert_eq!(own[0].target_key_id(), Some(key_a.as_str()));
    assert!(own[0].creation_date().is_some());
    assert!(predefined
        .iter()
        .any(|a| a.alias_name() == Some("alias/aws/s3")));
    assert!(predefined.iter().all(|a| a.target_key_id().is_none()));
    let of_a = kms
        .list_aliases()
        .key_id(&key_a)
        .send()
        .await
        .expect("list by key");
    let names: Vec<&str> = of_a
        .aliases()
        .iter()
        .filter_map(|a| a.alias_name())
        .collect();
    assert_eq!(names, ["alias/app", "alias/app-2"]);
    let page1 = kms
        .list_aliases()
        .key_id(&key_a)
        .limit(1)
        .send()
        .await
        .unwrap();
    assert!(page1.truncated());
    let page2 = kms
        .list_aliases()
        .key_id(&key_a)
        .limit(1)
        .marker(page1.next_marker().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page2.aliases()[0].alias_name(), Some("alias/app-2"));
    assert!(!page2.truncated());

    // AWS's answers.
    let code = |e: aws_sdk_kms::error::SdkError<_, _>| {
        let e: aws_sdk_kms::operation::create_alias::CreateAliasError = e.into_service_error();
        e.code().map(str::to_string)
    };
    let dup = kms
        .create_alias()
        .alias_name("alias/app")
        .target_key_id(&key_b)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(dup).as_deref(), Some("AlreadyExistsException"));
    let bad = kms
        .create_alias()
        .alias_name("app")
        .target_key_id(&key_b)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(bad).as_deref(), Some("ValidationException"));
    let reserved = kms
        .create_alias()
        .alias_name("alias/aws/s3")
        .target_key_id(&key_b)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(reserved).as_deref(), Some("InvalidAliasNameException"));
    let missing_key = kms
        .create_alias()
        .alias_name("alias/x")
        .target_key_id("00000000-0000-0000-0000-000000000000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(missing_key).as_deref(), Some("NotFoundException"));
    let err = kms
        .describe_key()
        .key_id("alias/none")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("NotFoundException"));
    let err = kms
        .delete_alias()
        .alias_name("alias/none")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("NotFoundException"));

    // UpdateAlias moves it; DeleteAlias removes it.
    kms.update_alias()
        .alias_name("alias/app")
        .target_key_id(&key_b)
        .send()
        .await
        .expect("update alias");
    let md = kms
        .describe_key()
        .key_id("alias/app")
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    assert_eq!(md.key_id(), key_b);
    kms.delete_alias()
        .alias_name("alias/app")
        .send()
        .await
        .expect("delete alias");
    let err = kms
        .describe_key()
        .key_id("alias/app")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(err.code(), Some("NotFoundException"));

    // Aliases go with their key once its deletion completes.
    kms.schedule_key_deletion()
        .key_id(&key_a)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/keyhold-test/complete-pending-deletions",
            server.endpoint
        ))
        .send()
        .await
        .expect("hook");
    let done: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(done["deleted"], 1);
    let names: Vec<String> = kms
        .list_aliases()
        .send()
        .await
        .unwrap()
        .aliases()
        .iter()
        .filter_map(|a| a.alias_name().map(str::to_string))
        .filter(|n| !n.starts_with("alias/aws/"))
        .collect();
    assert_eq!(names, ["alias/other"]);
}
