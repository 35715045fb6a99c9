//! `<data_dir>/cloudhsm/clusters.json` of releases before the metadata store (commit bf9ca9d)
//! is imported once: what the store lacks is inserted, nothing it has is overwritten, and the
//! file is renamed to `clusters.json.imported`.

use std::path::Path;
use std::sync::Arc;

use keyhold_cloudhsm::records::Records;
use keyhold_cloudhsm::{CloudHsmConfig, ClusterService};
use keyhold_core::ports::MetadataStore;
use serde_json::{json, Value};

const ACCT: &str = "111122223333";
const OTHER: &str = "444455556666";
const REGION: &str = "us-east-1";
const ACTIVE_ID: &str = "cluster-legacyaaaaa2";
const FRESH_ID: &str = "cluster-legacybbbbb3";

/// A state file as the `State::save` of bf9ca9d wrote it (`serde_json::to_vec_pretty` of
/// `State { clusters, subnets }`; tags as `[key, value]` pairs), written by hand.
const LEGACY: &str = r#"{
  "clusters": {
    "cluster-legacyaaaaa2": {
      "cluster_id": "cluster-legacyaaaaa2",
      "account": "111122223333",
      "region": "us-east-1",
      "state": "ACTIVE",
      "hsm_type": "hsm2m.medium",
      "source_backup_id": null,
      "subnet_mapping": {
        "us-east-1b": "subnet-0a0a0a0a",
        "us-east-1e": "subnet-0b0b0b0b"
      },
      "vpc_id": "vpc-0123456789abcdef0",
      "security_group": "sg-0123456789abcdef0",
      "create_timestamp": 1764300000.25,
      "hsms": [
        {
          "hsm_id": "hsm-abcdefghij2",
          "availability_zone": "us-east-1b",
          "subnet_id": "subnet-0a0a0a0a",
          "eni_id": "eni-0123456789abcdef0",
          "eni_ip": "10.12.34.10",
          "state": "ACTIVE"
        },
        {
          "hsm_id": "hsm-bcdefghij23",
          "availability_zone": "us-east-1e",
          "subnet_id": "subnet-0b0b0b0b",
          "eni_id": "eni-0123456789abcdef1",
          "eni_ip": "10.56.78.10",
          "state": "DEGRADED"
        }
      ],
      "csr": "-----BEGIN CERTIFICATE REQUEST-----\nQUJD\n-----END CERTIFICATE REQUEST-----\n",
      "cluster_certificate": "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n",
      "trust_anchor": "-----BEGIN CERTIFICATE-----\nREVG\n-----END CERTIFICATE-----\n",
      "module_path": "/usr/lib/softhsm/libsofthsm2.so",
      "token_label": "cluster-legacyaaaaa2",
      "kmsuser": {
        "failed_logins": 2,
        "logged_in": false
      },
      "user_pin_set": true,
      "tags": [
        [
          "env",
          "prod"
        ]
      ],
      "lineage": "cluster-legacyaaaaa2"
    },
    "cluster-legacybbbbb3": {
      "cluster_id": "cluster-legacybbbbb3",
      "account": "444455556666",
      "region": "us-east-1",
      "state": "UNINITIALIZED",
      "hsm_type": "hsm1.medium",
      "source_backup_id": null,
      "subnet_mapping": {
        "us-east-1c": "subnet-0c0c0c0c"
      },
      "vpc_id": "vpc-0123456789abcdef2",
      "security_group": "sg-0123456789abcdef2",
      "create_timestamp": 1764300100.5,
      "hsms": [],
      "csr": "",
      "cluster_certificate": null,
      "trust_anchor": null,
      "module_path": "/usr/lib/softhsm/libsofthsm2.so",
      "token_label": null,
      "kmsuser": null,
      "user_pin_set": false,
      "tags": [],
      "lineage": "cluster-legacybbbbb3"
    }
  },
  "subnets": {
    "111122223333/us-east-1/subnet-0a0a0a0a": {
      "free_addresses": 250,
      "removed": false,
      "next_host": 11
    },
    "111122223333/us-east-1/subnet-0b0b0b0b": {
      "free_addresses": 250,
      "removed": false,
      "next_host": 11
    }
  }
}"#;

async fn call(node: &ClusterService, account: &str, op: &str, body: Value) -> Value {
    node.handle(op, account, REGION, body.to_string().as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{op}: {e}"))
}

fn node(data_dir: &Path, store: Arc<dyn MetadataStore>) -> ClusterService {
    let config = CloudHsmConfig {
        enabled: Some(true),
        ..CloudHsmConfig::default()
    };
    ClusterService::open(
        config,
        data_dir,
        store,
        std::sync::Arc::new(keyhold_crypto::RootKey::new(&[9u8; 32]).expect("root key")),
    )
    .unwrap()
}

fn write_legacy(data_dir: &Path) -> std::path::PathBuf {
    let path = data_dir.join("cloudhsm").join("clusters.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, LEGACY).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_clusters_are_imported_once() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MetadataStore> = Arc::new(
        keyhold_store::SqliteStore::open(&dir.path().join("keyhold.sqlite"))
            .await
            .unwrap(),
    );
    let data_a = dir.path().join("a");
    let a = node(&data_a, store.clone());

    // No file: nothing to do.
    assert_eq!(a.import_legacy_clusters(&data_a).await.unwrap(), 0);

    let legacy = write_legacy(&data_a);
    assert_eq!(a.import_legacy_clusters(&data_a).await.unwrap(), 2);
    let imported = legacy.with_file_name("clusters.json.imported");
    assert!(!legacy.exists());
    assert_eq!(std::fs::read_to_string(&imported).unwrap(), LEGACY);

    // The clusters answer as they did before the upgrade.
    let seen = call(&a, ACCT, "DescribeClusters", json!({})).await;
    let clusters = seen["Clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 1, "{seen}");
    let c = &clusters[0];
    assert_eq!(c["ClusterId"], json!(ACTIVE_ID));
    assert_eq!(c["State"], json!("ACTIVE"));
    assert_eq!(c["CreateTimestamp"], json!(1764300000.25));
    assert_eq!(c["Hsms"].as_array().unwrap().len(), 2);
    assert_eq!(c["Hsms"][1]["State"], json!("DEGRADED"));
    assert_eq!(c["SubnetMapping"]["us-east-1e"], json!("subnet-0b0b0b0b"));
    assert!(c["Certificates"]["ClusterCertificate"].is_string());
    assert_eq!(c["TagList"], json!([{"Key": "env", "Value": "prod"}]));
    let other = call(&a, OTHER, "DescribeClusters", json!({})).await;
    assert_eq!(other["Clusters"][0]["ClusterId"], json!(FRESH_ID));
    assert_eq!(other["Clusters"][0]["State"], json!("UNINITIALIZED"));
    let subnet = Records::new(store.clone())
        .subnet(ACCT, REGION, "subnet-0a0a0a0a")
        .await
        .unwrap();
    assert_eq!((subnet.free_addresses, subnet.next_host), (250, 11));

    // The imported records are live: they change, and deleting an HSM gives its address back.
    call(
        &a,
        ACCT,
        "TagResource",
        json!({"ResourceId": ACTIVE_ID, "TagList": [{"Key": "after", "Value": "import"}]}),
    )
    .await;
    call(
        &a,
        ACCT,
        "DeleteHsm",
        json!({"ClusterId": ACTIVE_ID, "HsmId": "hsm-bcdefghij23"}),
    )
    .await;
    let subnet = Records::new(store.clone())
        .subnet(ACCT, REGION, "subnet-0b0b0b0b")
        .await
        .unwrap();
    assert_eq!(subnet.free_addresses, 251);

    // The renamed file is never read again; a file put back (or another node's copy) imports
    // nothing and overwrites nothing.
    assert_eq!(a.import_legacy_clusters(&data_a).await.unwrap(), 0);
    assert!(imported.exists());
    write_legacy(&data_a);
    assert_eq!(a.import_legacy_clusters(&data_a).await.unwrap(), 0);
    assert!(!legacy.exists());
    let data_b = dir.path().join("b");
    let b = node(&data_b, store.clone());
    write_legacy(&data_b);
    assert_eq!(b.import_legacy_clusters(&data_b).await.unwrap(), 0);
    let tags = call(&b, ACCT, "ListTags", json!({"ResourceId": ACTIVE_ID})).await;
    assert_eq!(tags["TagList"].as_array().unwrap().len(), 2, "{tags}");
    let seen = call(&b, ACCT, "DescribeClusters", json!({})).await;
    assert_eq!(seen["Clusters"][0]["Hsms"].as_array().unwrap().len(), 1);
    let subnet = Records::new(store.clone())
        .subnet(ACCT, REGION, "subnet-0b0b0b0b")
        .await
        .unwrap();
    assert_eq!(subnet.free_addresses, 251);
}

#[tokio::test]
async fn an_unreadable_legacy_file_is_an_error_and_stays() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn MetadataStore> = Arc::new(
        keyhold_store::SqliteStore::open(&dir.path().join("keyhold.sqlite"))
            .await
            .unwrap(),
    );
    let a = node(dir.path(), store);
    let path = write_legacy(dir.path());
    std::fs::write(&path, "{\"clusters\": [").unwrap();
    let err = a.import_legacy_clusters(dir.path()).await.unwrap_err();
    assert_eq!(err.name(), "CloudHsmInternalFailureException");
    assert!(path.exists());
}

/// Two nodes sharing one data dir (and store) import at the same time: each cluster is
/// imported exactly once and the file ends up renamed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_imports_insert_each_cluster_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyhold.sqlite");
    let stores: Vec<Arc<dyn MetadataStore>> = vec![
        Arc::new(keyhold_store::SqliteStore::open(&path).await.unwrap()),
        Arc::new(keyhold_store::SqliteStore::open(&path).await.unwrap()),
    ];
    let data = dir.path().join("shared");
    let legacy = write_legacy(&data);
    let tasks: Vec<_> = stores
        .into_iter()
        .map(|store| {
            let (node, data) = (node(&data, store), data.clone());
            tokio::spawn(async move { node.import_legacy_clusters(&data).await.unwrap() })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, 2);
    assert!(!legacy.exists());
    assert!(legacy.with_file_name("clusters.json.imported").exists());
}
