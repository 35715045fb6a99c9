//! End-to-end: two Keyhold nodes sharing one PostgreSQL database (a fresh schema per run).
//!
//! Needs `KEYHOLD_TEST_DATABASE_URL` (e.g. `postgres://postgres@127.0.0.1:5432/test`); without
//! it the test prints SKIP, or fails when `CI=true`.

mod common;
mod custom_key_stores_common;

use std::time::Duration;

use aws_sdk_kms::types::{ConnectionErrorCodeType, ConnectionStateType};
use common::{client, database_url};
use custom_key_stores_common::{code, wait_final};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_creates_yield_one_store() {
    let Some(url) = database_url() else {
        return;
    };
    let anchors = tempfile::tempdir().expect("tmp");
    let racers: Vec<String> = (0..8u8)
        .map(|i| format!("cluster-racer{}aaaaaa", char::from(b'a' + i)))
        .collect();
    let racers: Vec<&str> = racers.iter().map(String::as_str).collect();
    let clusters = custom_key_stores_common::bound_clusters(anchors.path(), &racers);
    let (a, b, _tmp) = common::two_pg_nodes(&url, "kh_e2e_cks", &clusters);
    let (ka, kb) = (client(&a), client(&b));

    // Eight racing creates of one name, split across the two nodes.
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let kms = if i % 2 == 0 { ka.clone() } else { kb.clone() };
        tasks.push(tokio::spawn(async move {
            let r = kms
                .create_custom_key_store()
                .custom_key_store_name("raced")
                .cloud_hsm_cluster_id(format!("cluster-racer{}aaaaaa", char::from(b'a' + i)))
                .trust_anchor_certificate(custom_key_stores_common::HSM_ANCHOR)
                .key_store_password("kmsPswd1")
                .send()
                .await;
            code(r)
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.expect("task"));
    }
    let wins = outcomes.iter().filter(|c| c.as_str() == "Ok").count();
    assert_eq!(wins, 1, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|c| c == "Ok" || c == "CustomKeyStoreNameInUseException"),
        "{outcomes:?}"
    );
    for kms in [&ka, &kb] {
        let all = kms
            .describe_custom_key_stores()
            .send()
            .await
            .expect("describe");
        let named: Vec<_> = all
            .custom_key_stores()
            .iter()
            .filter(|e| e.custom_key_store_name() == Some("raced"))
            .collect();
        assert_eq!(named.len(), 1);
    }

    // A connection started on one node is seen finished on the other.
    let id = ka
        .describe_custom_key_stores()
        .custom_key_store_name("raced")
        .send()
        .await
        .expect("by name")
        .custom_key_stores()
        .first()
        .and_then(|e| e.custom_key_store_id().map(str::to_string))
        .expect("id");
    ka.connect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .expect("connect");
    let got = wait_final(&kb, &id, Duration::from_secs(20)).await;
    assert_eq!(
        got,
        (
            ConnectionStateType::Failed,
            Some(ConnectionErrorCodeType::NetworkErrors)
        )
    );
}
