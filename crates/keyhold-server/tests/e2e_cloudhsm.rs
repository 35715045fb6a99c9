//! AWS CloudHSM v2 API on the Keyhold endpoint, and CreateCustomKeyStore's cluster checks,
//! against the real binary and real SoftHSMv2 tokens.

mod cloudhsm_common;
mod common;
mod custom_key_stores_common;

use aws_sdk_kms::types::ConnectionStateType;
use serde_json::json;

use cloudhsm_common::*;
use common::client;
use custom_key_stores_common::code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_lifecycle_and_errors_as_aws() {
    let tmp = tempfile::tempdir().expect("tmp");
    let Some(s) = server(tmp.path()) else { return };

    // Validation and not-found errors.
    err(
        &s,
        "CreateCluster",
        json!({"HsmType": "m5.large", "SubnetIds": ["subnet-0123abcd"]}),
        "CloudHsmInvalidRequestException",
    )
    .await;
    err(
        &s,
        "CreateCluster",
        json!({"HsmType": "hsm2m.medium", "SubnetIds": ["nope"]}),
        "CloudHsmInvalidRequestException",
    )
    .await;
    err(
        &s,
        "InitializeCluster",
        json!({"ClusterId": "cluster-abcdefghijk", "SignedCert": trust_anchor(), "TrustAnchor": trust_anchor()}),
        "CloudHsmResourceNotFoundException",
    )
    .await;
    err(
        &s,
        "DeleteCluster",
        json!({"ClusterId": "cluster-abcdefghijk"}),
        "CloudHsmResourceNotFoundException",
    )
    .await;

    let (id, zones) = create_cluster(&s, ["subnet-0a0a0a0a", "subnet-0b0b0b0b"]).await;
    assert!(id.starts_with("cluster-") && id.len() == 19, "{id}");
    assert_eq!(zones.len(), 2);
    assert!(
        zones.iter().all(|z| z.starts_with("us-east-1")),
        "{zones:?}"
    );
    // Deterministic zones: the same subnets map to the same zones again.
    let (id2, zones2) = create_cluster(&s, ["subnet-0b0b0b0b", "subnet-0a0a0a0a"]).await;
    assert_eq!(zones, zones2);

    // No HSM yet: no CSR, initialization refused.
    err(
        &s,
        "InitializeCluster",
        json!({"ClusterId": id, "SignedCert": trust_anchor(), "TrustAnchor": trust_anchor()}),
        "CloudHsmInvalidRequestException",
    )
    .await;
    err(
        &s,
        "CreateHsm",
        json!({"ClusterId": id, "AvailabilityZone": "eu-west-1a"}),
        "CloudHsmInvalidRequestException",
    )
    .await;
    let h = create_hsm(&s, &id, &zones[0]).await;
    assert!(h.starts_with("hsm-"));
    // Not initialized: activation refused; bad certificates refused.
    err(
        &s,
        "KeyholdActivateCluster",
        json!({"ClusterId": id, "AdminPassword": ADMIN}),
        "CloudHsmInvalidRequestException",
    )
    .await;
    err(
        &s,
        "InitializeCluster",
        json!({"ClusterId": id, "SignedCert": "x", "TrustAnchor": trust_anchor()}),
        "CloudHsmInvalidRequestException",
    )
    .await;

    // DescribeClusters: filters and pages.
    let all = ok(&s, "DescribeClusters", json!({})).await;
    assert_eq!(all["Clusters"].as_array().map(Vec::len), Some(2));
    let p1 = ok(&s, "DescribeClusters", json!({"MaxResults": 1})).await;
    assert_eq!(p1["Clusters"].as_array().map(Vec::len), Some(1));
    let token = p1["NextToken"].as_str().expect("NextToken").to_string();
    let p2 = ok(
        &s,
        "DescribeClusters",
        json!({"MaxResults": 1, "NextToken": token}),
    )
    .await;
    assert_eq!(p2["Clusters"].as_array().map(Vec::len), Some(1));
    assert!(p2.get("NextToken").is_none());
    assert_ne!(
        p1["Clusters"][0]["ClusterId"],
        p2["Clusters"][0]["ClusterId"]
    );
    let one = ok(
        &s,
        "DescribeClusters",
        json!({"Filters": {"clusterIds": [id]}}),
    )
    .await;
    assert_eq!(one["Clusters"][0]["Hsms"][0]["HsmId"], h.as_str());
    assert_eq!(
        one["Clusters"][0]["Hsms"][0]["AvailabilityZone"],
        zones[0].as_str()
    );
    assert!(one["Clusters"][0]["Hsms"][0]["EniIp"]
        .as_str()
        .is_some_and(|ip| ip.starts_with("10.")));
    let none = ok(
        &s,
        "DescribeClusters",
        json!({"Filters": {"states": ["ACTIVE"]}}),
    )
    .await;
    assert_eq!(none["Clusters"].as_array().map(Vec::len), Some(0));
    err(
        &s,
        "DescribeClusters",
        json!({"Filters": {"bogus": ["x"]}}),
        "CloudHsmInvalidRequestException",
    )
    .await;

    // Tags.
    ok(
        &s,
        "TagResource",
        json!({"ResourceId": id, "TagList": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]}),
    )
    .await;
    ok(
        &s,
        "UntagResource",
        json!({"ResourceId": id, "TagKeyList": ["a"]}),
    )
    .await;
    let t = ok(&s, "ListTags", json!({"ResourceId": id})).await;
    assert_eq!(t["TagList"], json!([{"Key": "b", "Value": "2"}]));
    err(
        &s,
        "ListTags",
        json!({"ResourceId": "cluster-abcdefghijk"}),
        "CloudHsmResourceNotFoundException",
    )
    .await;

    // DeleteCluster refuses while HSMs exist; DeleteHsm then DeleteCluster → DELETED.
    err(
        &s,
        "DeleteCluster",
        json!({"ClusterId": id}),
        "CloudHsmInvalidRequestException",
    )
    .await;
    err(
        &s,
        "DeleteHsm",
        json!({"ClusterId": id, "HsmId": "hsm-abcdefghijk"}),
        "CloudHsmResourceNotFoundException",
    )
    .await;
    let v = ok(&s, "DeleteHsm", json!({"ClusterId": id, "HsmId": h})).await;
    assert_eq!(v["HsmId"], h.as_str());
    let v = ok(&s, "DeleteCluster", json!({"ClusterId": id})).await;
    assert_eq!(v["Cluster"]["State"], "DELETED");
    err(
        &s,
        "CreateHsm",
        json!({"ClusterId": id, "AvailabilityZone": zones[0]}),
        "CloudHsmResourceNotFoundException",
    )
    .await;
    ok(&s, "DeleteCluster", json!({"ClusterId": id2})).await;

    // Fault injection is an admin API; unknown operations are unknown.
    err(&s, "Bogus", json!({}), "UnknownOperationException").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_custom_key_store_checks_the_cluster_then_connects_for_real() {
    let tmp = tempfile::tempdir().expect("tmp");
    let Some(s) = server(tmp.path()) else { return };
    let kms = client(&s);
    let create = |name: &str, cluster: &str, anchor: &str, pw: &str| {
        kms.create_custom_key_store()
            .custom_key_store_name(name)
            .cloud_hsm_cluster_id(cluster)
            .trust_anchor_certificate(anchor)
            .key_store_password(pw)
            .send()
    };

    assert_eq!(
        code(create("a", "cluster-abcdefghijk", trust_anchor(), KMSUSER_PW).await),
        "CloudHsmClusterNotFoundException"
    );
    // Not active yet.
    let (pending, zones) = create_cluster(&s, ["subnet-1a1a1a1a", "subnet-1b1b1b1b"]).await;
    assert_eq!(
        code(create("a", &pending, trust_anchor(), KMSUSER_PW).await),
        "CloudHsmClusterNotActiveException"
    );
    let _ = zones;

    let (id, zones, hsms) = ready_cluster(&s, ["subnet-2a2a2a2a", "subnet-2b2b2b2b"]).await;
    // One HSM only → invalid configuration.
    ok(&s, "DeleteHsm", json!({"ClusterId": id, "HsmId": hsms[1]})).await;
    assert_eq!(
        code(create("a", &id, trust_anchor(), KMSUSER_PW).await),
        "CloudHsmClusterInvalidConfigurationException"
    );
    create_hsm(&s, &id, &zones[1]).await;
    // Wrong trust anchor.
    let other = "-----BEGIN CERTIFICATE-----\nOTHER\n-----END CERTIFICATE-----\n";
    assert_eq!(
        code(create("a", &id, other, KMSUSER_PW).await),
        "IncorrectTrustAnchorException"
    );

    let store = create("a", &id, trust_anchor(), KMSUSER_PW)
        .await
        .expect("create");
    let store = store.custom_key_store_id().expect("id").to_string();
    // The cluster is in use by that store.
    assert_eq!(
        code(create("b", &id, trust_anchor(), KMSUSER_PW).await),
        "CloudHsmClusterInUseException"
    );

    let (state, c) = reconnect(&kms, &store).await;
    assert_eq!((state, c), (ConnectionStateType::Connected, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kmsuser_never_created_then_state_survives_a_restart() {
    let tmp = tempfile::tempdir().expect("tmp");
    let Some(mut s) = server(tmp.path()) else {
        return;
    };
    let kms = client(&s);
    let (cluster, _, _) = activated_cluster(&s, ["subnet-8a8a8a8a", "subnet-8b8b8b8b"]).await;
    let store = kms
        .create_custom_key_store()
        .custom_key_store_name("no-user-yet")
        .cloud_hsm_cluster_id(&cluster)
        .trust_anchor_certificate(trust_anchor())
        .key_store_password(KMSUSER_PW)
        .send()
        .await
        .expect("create")
        .custom_key_store_id()
        .expect("id")
        .to_string();
    // The token's user PIN was never initialised: CKR_USER_PIN_NOT_INITIALIZED.
    assert_eq!(
        reconnect(&kms, &store).await,
        (
            ConnectionStateType::Failed,
            Some(aws_sdk_kms::types::ConnectionErrorCodeType::UserNotFound)
        )
    );
    // A kmsuser login before it exists is refused the same way.
    err(
        &s,
        "KeyholdUserLogin",
        json!({"ClusterId": cluster, "Username": "kmsuser", "Password": KMSUSER_PW}),
        "CloudHsmResourceNotFoundException",
    )
    .await;
    user(&s, "KeyholdUserCreate", &cluster, Some(KMSUSER_PW)).await;
    // A wrong admin password is refused.
    err(
        &s,
        "KeyholdUserChangePassword",
        json!({"ClusterId": cluster, "AdminPassword": "notTheAdmin", "Username": "kmsuser", "Password": "whatever1"}),
        "CloudHsmAccessDeniedException",
    )
    .await;
    assert_eq!(
        reconnect(&kms, &store).await,
        (ConnectionStateType::Connected, None)
    );

    // Clusters, HSMs, the token and kmsuser persist in the data dir.
    s.restart();
    let kms = client(&s);
    let d = ok(
        &s,
        "DescribeClusters",
        json!({"Filters": {"clusterIds": [cluster]}}),
    )
    .await;
    assert_eq!(d["Clusters"][0]["State"], "ACTIVE");
    assert_eq!(d["Clusters"][0]["Hsms"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        reconnect(&kms, &store).await,
        (ConnectionStateType::Connected, None)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_injection_is_off_unless_configured() {
    // Enabled, fault injection off: the fault operations are refused. (CloudHSM's default is
    // tested in e2e_cloudhsm_getting_started.rs.)
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("keyhold.toml");
    std::fs::write(&cfg, "[cloudhsm]\nenabled = true\n").expect("config");
    let cfg = cfg.display().to_string();
    let s = common::TestServer::start_with(&["--test-mode", "--config", &cfg]);
    ok(&s, "DescribeClusters", json!({})).await;
    err(
        &s,
        "KeyholdFaultSetSubnet",
        json!({"SubnetId": "subnet-0a0a0a0a", "Removed": true}),
        "CloudHsmAccessDeniedException",
    )
    .await;
}

/// Clusters an earlier release kept in `<data_dir>/cloudhsm/clusters.json` are imported into
/// the metadata store at start-up, once; the file is renamed so it is never read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_json_of_an_earlier_release_is_imported_at_start() {
    let tmp = tempfile::tempdir().expect("tmp");
    let Some(mut s) = server(tmp.path()) else {
        return;
    };
    s.stop();
    let legacy = json!({
        "clusters": {
            "cluster-upgradeaaaa2": {
                "cluster_id": "cluster-upgradeaaaa2",
                "account": "123456789012",
                "region": "us-east-1",
                "state": "UNINITIALIZED",
                "hsm_type": "hsm2m.medium",
                "source_backup_id": null,
                "subnet_mapping": {"us-east-1c": "subnet-0c0c0c0c"},
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
                "tags": [["team", "payments"]],
                "lineage": "cluster-upgradeaaaa2"
            }
        },
        "subnets": {}
    });
    let dir = s.data_dir.join("cloudhsm");
    std::fs::create_dir_all(&dir).expect("cloudhsm dir");
    std::fs::write(dir.join("clusters.json"), legacy.to_string()).expect("legacy file");
    s.restart();

    let v = ok(
        &s,
        "DescribeClusters",
        json!({"Filters": {"clusterIds": ["cluster-upgradeaaaa2"]}}),
    )
    .await;
    assert_eq!(v["Clusters"][0]["State"], "UNINITIALIZED", "{v}");
    assert_eq!(v["Clusters"][0]["HsmType"], "hsm2m.medium", "{v}");
    let tags = ok(
        &s,
        "ListTags",
        json!({"ResourceId": "cluster-upgradeaaaa2"}),
    )
    .await;
    assert_eq!(
        tags["TagList"],
        json!([{"Key": "team", "Value": "payments"}])
    );
    assert!(
        !dir.join("clusters.json").exists(),
        "renamed after the import"
    );
    assert!(dir.join("clusters.json.imported").exists());
}
