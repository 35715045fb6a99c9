//! End-to-end with the official AWS SDK for Rust: multi-Region keys. CreateKey with
//! MultiRegion, ReplicateKey, DescribeKey's MultiRegionConfiguration on every related key,
//! ciphertexts crossing Regions, rotation of the primary reaching its replicas,
//! UpdatePrimaryRegion, the deletion of a primary waiting for its replicas
//! (`PendingReplicaDeletion`), AWS's errors, a restart, and two nodes on PostgreSQL.

mod common;

use aws_sdk_kms::types::{KeyState, MultiRegionKeyType, Tag};
use common::{advance_clock, assert_decrypts_to, encrypt_blob, failure, regional, TestServer};

const DAY: u64 = 86_400;
const US: &str = "us-east-1";
const EU: &str = "eu-west-1";
const AP: &str = "ap-northeast-1";

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().tag_key(k).tag_value(v).build().expect("tag")
}

async fn new_mrk(kms: &aws_sdk_kms::Client) -> String {
    let made = kms
        .create_key()
        .multi_region(true)
        .description("primary")
        .tags(tag("side", "primary"))
        .send()
        .await
        .expect("create");
    made.key_metadata().expect("metadata").key_id().to_string()
}

async fn replicate(kms: &aws_sdk_kms::Client, key: &str, region: &str) {
    kms.replicate_key()
        .key_id(key)
        .replica_region(region)
        .send()
        .await
        .expect("replicate");
}

/// (type, primary Region, sorted replica Regions) of the key's MultiRegionConfiguration.
async fn configuration(
    kms: &aws_sdk_kms::Client,
    key: &str,
) -> (MultiRegionKeyType, String, Vec<String>) {
    let d = kms
        .describe_key()
        .key_id(key)
        .send()
        .await
        .expect("describe");
    let md = d.key_metadata().expect("metadata");
    assert_eq!(md.multi_region(), Some(true));
    let c = md.multi_region_configuration().expect("configuration");
    let primary = c.primary_key().expect("primary");
    assert!(primary.arn().unwrap().ends_with(&format!(":key/{key}")));
    let mut replicas: Vec<String> = c
        .replica_keys()
        .iter()
        .map(|r| {
            let region = r.region().unwrap().to_string();
            assert!(r.arn().unwrap().contains(&format!(":kms:{region}:")));
            region
        })
        .collect();
    replicas.sort();
    (
        c.multi_region_key_type().cloned().expect("type"),
        primary.region().unwrap().to_string(),
        replicas,
    )
}

async fn state(kms: &aws_sdk_kms::Client, key: &str) -> KeyState {
    let d = kms
        .describe_key()
        .key_id(key)
        .send()
        .await
        .expect("describe");
    d.key_metadata().unwrap().key_state().cloned().unwrap()
}

#[tokio::test]
async fn replicas_share_material_and_survive_a_restart() {
    let mut server = TestServer::start();
    let (us, eu) = (
        regional(&server.endpoint, US),
        regional(&server.endpoint, EU),
    );
    let key = new_mrk(&us).await;
    assert!(key.starts_with("mrk-") && key.len() == 36, "{key}");
    assert_eq!(
        configuration(&us, &key).await,
        (MultiRegionKeyType::Primary, US.into(), vec![])
    );

    let out = us
        .replicate_key()
        .key_id(&key)
        .replica_region(EU)
        .description("replica")
        .tags(tag("side", "replica"))
        .send()
        .await
        .expect("replicate");
    let md = out.replica_key_metadata().expect("metadata");
    assert_eq!(md.key_id(), key);
    assert!(md.arn().unwrap().starts_with("arn:aws:kms:eu-west-1:"));
    assert_eq!(md.key_state(), Some(&KeyState::Enabled));
    assert_eq!(md.description(), Some("replica"));
    let c = md.multi_region_configuration().expect("configuration");
    assert_eq!(
        c.multi_region_key_type(),
        Some(&MultiRegionKeyType::Replica)
    );
    assert!(out
        .replica_policy()
        .unwrap()
        .contains("Enable IAM User Permissions"));
    assert_eq!(out.replica_tags(), [tag("side", "replica")]);

    // Both keys describe the set the same way; description and tags are the key's own.
    assert_eq!(
        configuration(&us, &key).await,
        (MultiRegionKeyType::Primary, US.into(), vec![EU.to_string()])
    );
    assert_eq!(
        configuration(&eu, &key).await,
        (MultiRegionKeyType::Replica, US.into(), vec![EU.to_string()])
    );
    let tags = eu
        .list_resource_tags()
        .key_id(&key)
        .send()
        .await
        .expect("tags");
    assert_eq!(tags.tags(), [tag("side", "replica")]);

    // Ciphertexts cross Regions both ways, with or without the KeyId.
    let from_us = encrypt_blob(&us, &key, b"made in us").await;
    let from_eu = encrypt_blob(&eu, &key, b"made in eu").await;
    assert_decrypts_to(&eu, from_us.clone(), b"made in us").await;
    assert_decrypts_to(&us, from_eu.clone(), b"made in eu").await;
    let acct = account(&eu, &key).await;
    let out = eu
        .decrypt()
        .key_id(format!("arn:aws:kms:{EU}:{acct}:key/{key}"))
        .ciphertext_blob(from_us.clone())
        .send()
        .await
        .expect("decrypt with the replica's ARN");
    assert!(out.key_id().unwrap().contains(":kms:eu-west-1:"));

    // Enabled/disabled is not shared.
    eu.disable_key().key_id(&key).send().await.expect("disable");
    assert_decrypts_to(&us, from_eu.clone(), b"made in eu").await;
    let (code, _) = failure(eu.decrypt().ciphertext_blob(from_us.clone()).send().await);
    assert_eq!(code, "DisabledException");
    eu.enable_key().key_id(&key).send().await.expect("enable");

    // AWS's refusals.
    let (code, _) = failure(
        us.replicate_key()
            .key_id(&key)
            .replica_region(EU)
            .send()
            .await,
    );
    assert_eq!(code, "AlreadyExistsException");
    let (code, _) = failure(
        us.replicate_key()
            .key_id(&key)
            .replica_region(US)
            .send()
            .await,
    );
    assert_eq!(code, "ValidationException");
    let (code, _) = failure(
        eu.replicate_key()
            .key_id(&key)
            .replica_region(AP)
            .send()
            .await,
    );
    assert_eq!(code, "UnsupportedOperationException");
    let single = us.create_key().send().await.expect("create");
    let single = single.key_metadata().unwrap().key_id().to_string();
    let (code, msg) = failure(
        us.replicate_key()
            .key_id(&single)
            .replica_region(EU)
            .send()
            .await,
    );
    assert_eq!(code, "UnsupportedOperationException");
    assert!(msg.contains("is not a multi-Region key"), "{msg}");
    let (code, _) = failure(
        us.update_primary_region()
            .key_id(&key)
            .primary_region(AP)
            .send()
            .await,
    );
    assert_eq!(code, "NotFoundException");
    let (code, _) = failure(
        us.update_primary_region()
            .key_id(&single)
            .primary_region(EU)
            .send()
            .await,
    );
    assert_eq!(code, "UnsupportedOperationException");
    let (code, _) = failure(
        us.create_key()
            .multi_region(true)
            .origin(aws_sdk_kms::types::OriginType::AwsCloudhsm)
            .custom_key_store_id("cks-1234567890abcdef0")
            .send()
            .await,
    );
    assert_eq!(code, "UnsupportedOperationException");

    // Everything is stored.
    server.restart();
    let (us, eu) = (
        regional(&server.endpoint, US),
        regional(&server.endpoint, EU),
    );
    assert_decrypts_to(&eu, from_us, b"made in us").await;
    assert_decrypts_to(&us, from_eu, b"made in eu").await;
    assert_eq!(
        configuration(&eu, &key).await,
        (MultiRegionKeyType::Replica, US.into(), vec![EU.to_string()])
    );
}

async fn account(kms: &aws_sdk_kms::Client, key: &str) -> String {
    let d = kms
        .describe_key()
        .key_id(key)
        .send()
        .await
        .expect("describe");
    d.key_metadata()
        .unwrap()
        .aws_account_id()
        .unwrap()
        .to_string()
}

async fn material(kms: &aws_sdk_kms::Client, key: &str) -> String {
    let d = kms
        .describe_key()
        .key_id(key)
        .send()
        .await
        .expect("describe");
    d.key_metadata()
        .unwrap()
        .current_key_material_id()
        .expect("material")
        .to_string()
}

#[tokio::test]
async fn rotating_the_primary_rotates_every_replica() {
    let server = TestServer::start();
    let (us, eu) = (
        regional(&server.endpoint, US),
        regional(&server.endpoint, EU),
    );
    let key = new_mrk(&us).await;
    let old = encrypt_blob(&us, &key, b"old").await;
    replicate(&us, &key, EU).await;
    assert_eq!(material(&us, &key).await, material(&eu, &key).await);

    // The replica refuses changes of the shared rotation properties.
    for code in [
        failure(eu.enable_key_rotation().key_id(&key).send().await).0,
        failure(eu.rotate_key_on_demand().key_id(&key).send().await).0,
    ] {
        assert_eq!(code, "UnsupportedOperationException");
    }

    let before = material(&us, &key).await;
    us.rotate_key_on_demand()
        .key_id(&key)
        .send()
        .await
        .expect("rotate");
    let after = material(&us, &key).await;
    assert_ne!(before, after);
    assert_eq!(material(&eu, &key).await, after);
    let new = encrypt_blob(&eu, &key, b"new").await;
    for kms in [&us, &eu] {
        assert_decrypts_to(kms, old.clone(), b"old").await;
        assert_decrypts_to(kms, new.clone(), b"new").await;
    }

    // Automatic rotation: enabled on the primary, reported and performed on the replica.
    us.enable_key_rotation()
        .key_id(&key)
        .send()
        .await
        .expect("enable rotation");
    let status = eu
        .get_key_rotation_status()
        .key_id(&key)
        .send()
        .await
        .expect("status");
    assert!(status.key_rotation_enabled());
    let done = advance_clock(&server, 366 * DAY).await;
    assert_eq!(done["rotated"], 1, "{done}");
    let rotations = eu
        .list_key_rotations()
        .key_id(&key)
        .send()
        .await
        .expect("list");
    assert_eq!(rotations.rotations().len(), 2);
    assert_eq!(material(&eu, &key).await, material(&us, &key).await);
    let newest = encrypt_blob(&us, &key, b"newest").await;
    assert_decrypts_to(&eu, newest, b"newest").await;
    assert_decrypts_to(&eu, old, b"old").await;
}

#[tokio::test]
async fn update_primary_region_swaps_the_roles() {
    let server = TestServer::start();
    let us = regional(&server.endpoint, US);
    let eu = regional(&server.endpoint, EU);
    let ap = regional(&server.endpoint, AP);
    let key = new_mrk(&us).await;
    replicate(&us, &key, EU).await;
    replicate(&us, &key, AP).await;
    let blob = encrypt_blob(&us, &key, b"before").await;

    let (code, _) = failure(
        eu.update_primary_region()
            .key_id(&key)
            .primary_region(AP)
            .send()
            .await,
    );
    assert_eq!(
        code, "UnsupportedOperationException",
        "only the primary is updated"
    );
    us.update_primary_region()
        .key_id(&key)
        .primary_region(EU)
        .send()
        .await
        .expect("update primary");
    let others = |primary: &str| -> Vec<String> {
        let mut v: Vec<String> = [US, EU, AP]
            .into_iter()
            .filter(|r| *r != primary)
            .map(String::from)
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        configuration(&eu, &key).await,
        (MultiRegionKeyType::Primary, EU.into(), others(EU))
    );
    for kms in [&us, &ap] {
        assert_eq!(
            configuration(kms, &key).await,
            (MultiRegionKeyType::Replica, EU.into(), others(EU))
        );
    }
    // The old primary is a replica now; the new one replicates and rotates.
    let (code, _) = failure(
        us.replicate_key()
            .key_id(&key)
            .replica_region("us-west-2")
            .send()
            .await,
    );
    assert_eq!(code, "UnsupportedOperationException");
    replicate(&eu, &key, "us-west-2").await;
    eu.rotate_key_on_demand()
        .key_id(&key)
        .send()
        .await
        .expect("rotate");
    assert_eq!(material(&us, &key).await, material(&eu, &key).await);
    let west = regional(&server.endpoint, "us-west-2");
    assert_decrypts_to(&west, blob, b"before").await;
}

#[tokio::test]
async fn deleting_a_primary_waits_for_its_replicas() {
    let server = TestServer::start();
    let (us, eu) = (
        regional(&server.endpoint, US),
        regional(&server.endpoint, EU),
    );
    let key = new_mrk(&us).await;
    replicate(&us, &key, EU).await;

    let out = us
        .schedule_key_deletion()
        .key_id(&key)
        .pending_window_in_days(7)
        .send()
        .await
        .expect("schedule");
    assert_eq!(out.key_state(), Some(&KeyState::PendingReplicaDeletion));
    assert!(out.deletion_date().is_none());
    assert_eq!(out.pending_window_in_days(), Some(7));
    let d = us
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .expect("describe");
    let md = d.key_metadata().unwrap();
    assert_eq!(md.pending_deletion_window_in_days(), Some(7));
    assert!(md.deletion_date().is_none());
    let (code, _) = common::encrypt_failure(&us, &key).await;
    assert_eq!(code, "KMSInvalidStateException");
    let (code, _) = failure(
        us.replicate_key()
            .key_id(&key)
            .replica_region(AP)
            .send()
            .await,
    );
    assert_eq!(code, "KMSInvalidStateException");

    // It can be cancelled, as a pending deletion.
    us.cancel_key_deletion()
        .key_id(&key)
        .send()
        .await
        .expect("cancel");
    assert_eq!(state(&us, &key).await, KeyState::Disabled);
    us.schedule_key_deletion()
        .key_id(&key)
        .pending_window_in_days(7)
        .send()
        .await
        .expect("schedule again");

    // Time alone does not delete it while the replica exists.
    advance_clock(&server, 31 * DAY).await;
    assert_eq!(state(&us, &key).await, KeyState::PendingReplicaDeletion);

    let out = eu
        .schedule_key_deletion()
        .key_id(&key)
        .pending_window_in_days(7)
        .send()
        .await
        .expect("schedule the replica");
    assert_eq!(out.key_state(), Some(&KeyState::PendingDeletion));
    assert!(out.deletion_date().is_some());
    let done = advance_clock(&server, 8 * DAY).await;
    assert_eq!(done["deleted"], 1, "{done}");
    let (code, _) = failure(eu.describe_key().key_id(&key).send().await);
    assert_eq!(code, "NotFoundException");
    // The waiting period of the primary starts now.
    let d = us
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .expect("describe");
    let md = d.key_metadata().unwrap();
    assert_eq!(md.key_state(), Some(&KeyState::PendingDeletion));
    assert!(md.deletion_date().is_some());
    assert_eq!(
        configuration(&us, &key).await,
        (MultiRegionKeyType::Primary, US.into(), vec![])
    );
    advance_clock(&server, 6 * DAY).await;
    assert_eq!(state(&us, &key).await, KeyState::PendingDeletion);
    let done = advance_clock(&server, 2 * DAY).await;
    assert_eq!(done["deleted"], 1, "{done}");
    let (code, _) = failure(us.describe_key().key_id(&key).send().await);
    assert_eq!(code, "NotFoundException");
}

#[tokio::test]
async fn two_nodes_on_postgresql_share_multi_region_keys() {
    let Some(url) = common::database_url() else {
        return;
    };
    let (a, b, _tmp) = common::two_pg_nodes(&url, "kh_e2e_mrk", "");
    let (a_us, b_eu) = (regional(&a.endpoint, US), regional(&b.endpoint, EU));
    let key = new_mrk(&a_us).await;
    let blob = encrypt_blob(&a_us, &key, b"node a").await;
    replicate(&regional(&b.endpoint, US), &key, EU).await;
    assert_decrypts_to(&b_eu, blob, b"node a").await;
    a_us.rotate_key_on_demand()
        .key_id(&key)
        .send()
        .await
        .expect("rotate");
    assert_eq!(material(&b_eu, &key).await, material(&a_us, &key).await);
    let blob = encrypt_blob(&b_eu, &key, b"node b").await;
    assert_decrypts_to(&a_us, blob, b"node b").await;
    regional(&b.endpoint, US)
        .update_primary_region()
        .key_id(&key)
        .primary_region(EU)
        .send()
        .await
        .expect("update primary");
    assert_eq!(
        configuration(&regional(&a.endpoint, EU), &key).await,
        (MultiRegionKeyType::Primary, EU.into(), vec![US.to_string()])
    );
}
