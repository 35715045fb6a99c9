//! Cluster records live in the metadata store: two nodes sharing it see the same clusters,
//! concurrent updates from both are all kept, and a store reset clears them.

use std::sync::Arc;

use keyhold_cloudhsm::{CloudHsmConfig, ClusterService};
use keyhold_core::ports::MetadataStore;
use serde_json::{json, Value};

const ACCT: &str = "111122223333";
const REGION: &str = "us-east-1";

async fn call(node: &ClusterService, op: &str, body: Value) -> Value {
    node.handle(op, ACCT, REGION, body.to_string().as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{op}: {e}"))
}

async fn two_nodes(
    dir: &std::path::Path,
) -> (Arc<dyn MetadataStore>, ClusterService, ClusterService) {
    let path = dir.join("keyhold.sqlite");
    let a: Arc<dyn MetadataStore> =
        Arc::new(keyhold_store::SqliteStore::open(&path).await.unwrap());
    let b: Arc<dyn MetadataStore> =
        Arc::new(keyhold_store::SqliteStore::open(&path).await.unwrap());
    let config = CloudHsmConfig {
        enabled: Some(true),
        ..CloudHsmConfig::default()
    };
    let node_a = ClusterService::open(
        config.clone(),
        &dir.join("a"),
        a.clone(),
        std::sync::Arc::new(keyhold_crypto::RootKey::new(&[9u8; 32]).expect("root key")),
    )
    .unwrap();
    let node_b = ClusterService::open(
        config,
        &dir.join("b"),
        b,
        std::sync::Arc::new(keyhold_crypto::RootKey::new(&[9u8; 32]).expect("root key")),
    )
    .unwrap();
    (a, node_a, node_b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_clusters_updates_and_reset() {
    let dir = tempfile::tempdir().unwrap();
    let (store, a, b) = two_nodes(dir.path()).await;
    let created = call(
        &a,
        "CreateCluster",
        json!({"HsmType": "hsm1.medium", "SubnetIds": ["subnet-0123abcd"]}),
    )
    .await;
    let id = created["Cluster"]["ClusterId"]
        .as_str()
        .unwrap()
        .to_string();

    // Node B sees it, and the HSM node B creates is seen by node A.
    let seen = call(&b, "DescribeClusters", json!({})).await;
    assert_eq!(seen["Clusters"][0]["ClusterId"], json!(id));
    let az = seen["Clusters"][0]["SubnetMapping"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    call(
        &b,
        "CreateHsm",
        json!({"ClusterId": id, "AvailabilityZone": az}),
    )
    .await;
    let seen = call(&a, "DescribeClusters", json!({})).await;
    assert_eq!(seen["Clusters"][0]["Hsms"].as_array().unwrap().len(), 1);

    // Concurrent tag writes from both nodes: none is lost.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            call(
                &node,
                "TagResource",
                json!({"ResourceId": id, "TagList": [{"Key": format!("k{i}"), "Value": "v"}]}),
            )
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let tags = call(&b, "ListTags", json!({"ResourceId": id})).await;
    assert_eq!(tags["TagList"].as_array().unwrap().len(), 20);

    // `/moto-api/reset` resets the store: the clusters are gone on every node.
    store.reset().await.unwrap();
    for node in [&a, &b] {
        let seen = call(node, "DescribeClusters", json!({})).await;
        assert_eq!(seen["Clusters"], json!([]));
        let err = node
            .handle(
                "ListTags",
                ACCT,
                REGION,
                json!({"ResourceId": id}).to_string().as_bytes(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.name(), "CloudHsmResourceNotFoundException");
    }
}

/// The generated contract's defaults: an operation of AWS's model that Keyhold does not serve
/// is as unknown as a misspelt one (once its body passes the model's constraints, which the
/// generated dispatch checks first); bodies that do not fit a served operation's shape are
/// `CloudHsmInvalidRequestException`; fault injection stays off unless configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unserved_and_malformed_operations() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, a, _b) = two_nodes(dir.path()).await;
    let valid = br#"{"DestinationRegion": "us-west-2", "BackupId": "backup-abcdefghijk"}"#;
    for op in ["CopyBackupToRegion", "NoSuchOperation"] {
        let err = a.handle(op, ACCT, REGION, valid).await.unwrap_err();
        assert_eq!(
            (err.name(), err.message.as_str()),
            ("UnknownOperationException", "")
        );
    }
    let err = a
        .handle("DescribeClusters", ACCT, REGION, b"{\"MaxResults\": \"x\"}")
        .await
        .unwrap_err();
    assert_eq!(err.name(), "CloudHsmInvalidRequestException");
    let err = a
        .handle("DescribeClusters", ACCT, REGION, b"[1]")
        .await
        .unwrap_err();
    assert_eq!(err.name(), "CloudHsmInvalidRequestException");
    let err = a
        .handle("KeyholdFaultSetHsmState", ACCT, REGION, b"{}")
        .await
        .unwrap_err();
    assert_eq!(err.name(), "CloudHsmAccessDeniedException");
}
