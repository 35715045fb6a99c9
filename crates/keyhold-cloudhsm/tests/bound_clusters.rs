//! `[[cloudhsm.bound_clusters]]`: a cluster bound to an existing module and token appears as an
//! ACTIVE cluster with one HSM and `kmsuser`; binding again (a restart, another node) updates it
//! in place.

use std::sync::Arc;

use keyhold_cloudhsm::bound::BoundCluster;
use keyhold_cloudhsm::{CloudHsmConfig, ClusterService};
use keyhold_core::ports::cloudhsm::HsmClusters;
use keyhold_core::ports::MetadataStore;
use serde_json::json;

const ACCT: &str = "111122223333";
const REGION: &str = "eu-west-1";
const ID: &str = "cluster-boundhsm2345";

fn config(label: &str, anchor: Option<std::path::PathBuf>) -> CloudHsmConfig {
    CloudHsmConfig {
        enabled: Some(true),
        bound_clusters: vec![BoundCluster {
            cluster_id: ID.into(),
            account_id: ACCT.into(),
            region: REGION.into(),
            module_path: "/opt/hsm/libpkcs11.so".into(),
            token_label: label.into(),
            trust_anchor_file: anchor,
        }],
        ..CloudHsmConfig::default()
    }
}

async fn describe(node: &ClusterService) -> serde_json::Value {
    node.handle("DescribeClusters", ACCT, REGION, b"{}")
        .await
        .expect("DescribeClusters")
}

#[tokio::test]
async fn bound_cluster_is_active_and_rebinding_updates_it() {
    let dir = tempfile::tempdir().unwrap();
    let anchor = dir.path().join("ca.crt");
    std::fs::write(
        &anchor,
        "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let store: Arc<dyn MetadataStore> =
        Arc::new(keyhold_store::SqliteStore::open_in_memory().await.unwrap());

    let a = ClusterService::open(
        config("hsm1", Some(anchor)),
        dir.path(),
        store.clone(),
        std::sync::Arc::new(keyhold_crypto::RootKey::new(&[9u8; 32]).expect("root key")),
    )
    .unwrap();
    a.bind_configured_clusters().await.unwrap();
    let seen = describe(&a).await;
    let c = &seen["Clusters"][0];
    assert_eq!(c["ClusterId"], json!(ID));
    assert_eq!(c["State"], json!("ACTIVE"));
    assert_eq!(c["Hsms"][0]["State"], json!("ACTIVE"));
    let facts = a
        .cluster_facts(ACCT, REGION, ID)
        .await
        .unwrap()
        .expect("facts");
    // Two active HSMs in two zones: enough for CreateCustomKeyStore.
    assert_eq!(
        facts.active_hsm_zones,
        vec![format!("{REGION}a"), format!("{REGION}b")]
    );
    assert!(facts
        .trust_anchor
        .is_some_and(|t| t.contains("BEGIN CERTIFICATE")));

    // Another node (or a restart) with a new token label: same cluster, same HSM, new label.
    let b = ClusterService::open(
        config("hsm2", None),
        dir.path(),
        store.clone(),
        std::sync::Arc::new(keyhold_crypto::RootKey::new(&[9u8; 32]).expect("root key")),
    )
    .unwrap();
    b.bind_configured_clusters().await.unwrap();
    let again = describe(&b).await;
    assert_eq!(again["Clusters"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        again["Clusters"][0]["Hsms"][0]["HsmId"],
        c["Hsms"][0]["HsmId"]
    );

    // A bad entry is refused with a message naming the table.
    let mut bad = config("hsm1", None);
    bad.bound_clusters[0].cluster_id = "cluster-x".into();
    let e = ClusterService::open(
        bad,
        dir.path(),
        store,
        std::sync::Arc::new(keyhold_crypto::RootKey::new(&[9u8; 32]).expect("root key")),
    )
    .unwrap()
    .bind_configured_clusters()
    .await
    .unwrap_err();
    assert!(e.message.contains("[[cloudhsm.bound_clusters]]"), "{e}");
}
