//! End-to-end: the key cache's consistency on two Keyhold nodes sharing one PostgreSQL
//! database. A node sees its own key changes at once; the other node sees them within its
//! configured bound (`key_cache_ttl_ms`), never later; with the bound at zero, at once.
//!
//! Needs `KEYHOLD_TEST_DATABASE_URL` (e.g. `postgres://postgres@127.0.0.1:5432/test`); without
//! it the test prints SKIP, or fails when `CI=true`.

mod common;

use std::time::{Duration, Instant};

use common::{client, database_url, encrypt_blob, encrypt_failure};

/// The bound both nodes run with in the first test.
const TTL: Duration = Duration::from_millis(400);
/// Slack for a loaded CI machine on top of the bound (requests, scheduling).
const SLACK: Duration = Duration::from_secs(10);

/// Encrypts on `kms` until it fails; the exception and how long that took. Panics if it still
/// succeeds after `limit`.
async fn until_refused(kms: &aws_sdk_kms::Client, key_id: &str, limit: Duration) -> String {
    let started = Instant::now();
    loop {
        let r = kms
            .encrypt()
            .key_id(key_id)
            .plaintext(aws_sdk_kms::primitives::Blob::new(b"x".to_vec()))
            .send()
            .await;
        if let Err(e) = r {
            return aws_sdk_kms::error::ProvideErrorMetadata::code(&e)
                .unwrap_or_default()
                .to_string();
        }
        assert!(
            started.elapsed() < limit,
            "the other node still used the disabled key after {:?} (bound {TTL:?})",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_changes_reach_the_other_node_within_the_configured_bound() {
    let Some(url) = database_url() else {
        return;
    };
    let config = format!("key_cache_ttl_ms = {}\n", TTL.as_millis());
    let (a, b, _tmp) = common::two_pg_nodes(&url, "kh_e2e_key_cache", &config);
    let (ka, kb) = (client(&a), client(&b));

    let key = ka.create_key().send().await.expect("create");
    let key = key.key_metadata().unwrap().key_id().to_string();
    // Both nodes have used (and cached) the key.
    encrypt_blob(&ka, &key, b"warm").await;
    let blob = encrypt_blob(&kb, &key, b"warm").await;

    // Disabled through a: a refuses at once; b within its bound.
    ka.disable_key().key_id(&key).send().await.expect("disable");
    assert_eq!(encrypt_failure(&ka, &key).await.0, "DisabledException");
    assert_eq!(
        until_refused(&kb, &key, TTL + SLACK).await,
        "DisabledException"
    );

    // Enabled through b: b uses it at once (its own change), a within its bound.
    kb.enable_key().key_id(&key).send().await.expect("enable");
    encrypt_blob(&kb, &key, b"at once").await;
    let started = Instant::now();
    loop {
        let r = ka.decrypt().ciphertext_blob(blob.clone()).send().await;
        if r.is_ok() {
            break;
        }
        assert!(
            started.elapsed() < TTL + SLACK,
            "a still refused the enabled key after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Scheduled for deletion through a: a refuses at once, b within its bound.
    ka.schedule_key_deletion()
        .key_id(&key)
        .pending_window_in_days(7)
        .send()
        .await
        .expect("schedule");
    assert_eq!(
        encrypt_failure(&ka, &key).await.0,
        "KMSInvalidStateException"
    );
    assert_eq!(
        until_refused(&kb, &key, TTL + SLACK).await,
        "KMSInvalidStateException"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_bound_at_zero_the_other_node_sees_changes_at_once() {
    let Some(url) = database_url() else {
        return;
    };
    let (a, b, _tmp) = common::two_pg_nodes(&url, "kh_e2e_key_cache0", "key_cache_ttl_ms = 0\n");
    let (ka, kb) = (client(&a), client(&b));
    let key = ka.create_key().send().await.expect("create");
    let key = key.key_metadata().unwrap().key_id().to_string();
    encrypt_blob(&kb, &key, b"warm").await;
    ka.disable_key().key_id(&key).send().await.expect("disable");
    assert_eq!(encrypt_failure(&kb, &key).await.0, "DisabledException");
    ka.enable_key().key_id(&key).send().await.expect("enable");
    encrypt_blob(&kb, &key, b"again").await;
}
