//! Helpers of the CloudHSM end-to-end tests: a server with `[cloudhsm]` enabled, raw
//! `BaldrApiService` calls, and a cluster set up the way AWS's guide does it.
#![allow(dead_code, unused_imports)]

use aws_sdk_kms::types::ConnectionStateType;
use serde_json::{json, Value};

use crate::common::{raw, TestServer};
pub use crate::custom_key_stores_common::{disconnect, reconnect};

/// The admin password set at activation (the token's SO PIN).
pub const ADMIN: &str = "adminPass1";
/// The first kmsuser password.
pub const KMSUSER_PW: &str = "kmsPswd1";
pub mod pki;
pub use pki::{cert_for_other_key, sign_csr, sign_csr_by_other_ca, trust_anchor};

/// A server with CloudHSM and its fault-injection API enabled, or `None` without SoftHSM.
pub fn server(dir: &std::path::Path) -> Option<TestServer> {
    if !std::path::Path::new("/usr/lib/softhsm/libsofthsm2.so").exists() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "SoftHSMv2 missing but CI=true"
        );
        println!("SKIP: SoftHSMv2 not installed");
        return None;
    }
    let cfg = dir.join("keyhold.toml");
    std::fs::write(&cfg, "[cloudhsm]\nenabled = true\nfault_injection = true\n").expect("config");
    let cfg = cfg.display().to_string();
    Some(TestServer::start_with(&["--test-mode", "--config", &cfg]))
}

/// Calls `BaldrApiService.<op>`; (status, body).
pub async fn hsm(s: &TestServer, op: &str, body: Value) -> (u16, Value) {
    let (status, v, _) = raw(
        &s.endpoint,
        Some(&format!("BaldrApiService.{op}")),
        Some("application/x-amz-json-1.1"),
        body.to_string(),
    )
    .await;
    (status, v)
}

/// Calls `op` and expects success.
pub async fn ok(s: &TestServer, op: &str, body: Value) -> Value {
    let (status, v) = hsm(s, op, body).await;
    assert_eq!(status, 200, "{op}: {v}");
    v
}

/// Calls `op` and expects the error `name`.
pub async fn err(s: &TestServer, op: &str, body: Value, name: &str) {
    let (status, v) = hsm(s, op, body).await;
    assert_ne!(status, 200, "{op} succeeded: {v}");
    assert_eq!(v["__type"], name, "{op}: {v}");
}

/// A new cluster over two subnets; its id and the zones of its subnets.
pub async fn create_cluster(s: &TestServer, subnets: [&str; 2]) -> (String, Vec<String>) {
    let v = ok(
        s,
        "CreateCluster",
        json!({"HsmType": "hsm2m.medium", "SubnetIds": subnets}),
    )
    .await;
    let c = &v["Cluster"];
    assert_eq!(c["State"], "UNINITIALIZED");
    let id = c["ClusterId"].as_str().expect("id").to_string();
    let zones = c["SubnetMapping"]
        .as_object()
        .expect("mapping")
        .keys()
        .cloned()
        .collect();
    (id, zones)
}

/// An HSM in `zone`; its id.
pub async fn create_hsm(s: &TestServer, cluster: &str, zone: &str) -> String {
    let v = ok(
        s,
        "CreateHsm",
        json!({"ClusterId": cluster, "AvailabilityZone": zone}),
    )
    .await;
    assert_eq!(v["Hsm"]["State"], "ACTIVE");
    v["Hsm"]["HsmId"].as_str().expect("hsm id").to_string()
}

/// Create → HSM → initialize → second HSM → activate → kmsuser: an ACTIVE cluster ready for
/// a key store. Returns the cluster id, its zones and its HSM ids.
pub async fn ready_cluster(
    s: &TestServer,
    subnets: [&str; 2],
) -> (String, Vec<String>, Vec<String>) {
    let out = activated_cluster(s, subnets).await;
    // As with CloudHSM CLI: `user create` as admin.
    cli(
        s,
        &["user", "create", "--cluster-id", &out.0],
        Some(ADMIN),
        Some(KMSUSER_PW),
    );
    out
}

/// [`ready_cluster`] without kmsuser.
pub async fn activated_cluster(
    s: &TestServer,
    subnets: [&str; 2],
) -> (String, Vec<String>, Vec<String>) {
    let (id, zones) = create_cluster(s, subnets).await;
    let h1 = create_hsm(s, &id, &zones[0]).await;
    let d = ok(
        s,
        "DescribeClusters",
        json!({"Filters": {"clusterIds": [id]}}),
    )
    .await;
    let csr = d["Clusters"][0]["Certificates"]["ClusterCsr"]
        .as_str()
        .expect("ClusterCsr");
    assert!(csr.contains("CERTIFICATE REQUEST"));
    let v = ok(
        s,
        "InitializeCluster",
        json!({"ClusterId": id, "SignedCert": sign_csr(csr), "TrustAnchor": trust_anchor()}),
    )
    .await;
    assert_eq!(v["State"], "INITIALIZED");
    let h2 = create_hsm(s, &id, &zones[1]).await;
    let v = ok(
        s,
        "KeyholdActivateCluster",
        json!({"ClusterId": id, "AdminPassword": ADMIN}),
    )
    .await;
    assert_eq!(v["Cluster"]["State"], "ACTIVE");
    (id, zones, vec![h1, h2])
}

/// A `KeyholdUser*` call as admin that must succeed.
pub async fn user(s: &TestServer, op: &str, cluster: &str, password: Option<&str>) {
    let mut body = json!({"ClusterId": cluster, "AdminPassword": ADMIN, "Username": "kmsuser"});
    if let Some(p) = password {
        body["Password"] = json!(p);
    }
    ok(s, op, body).await;
}

/// UpdateCustomKeyStore with a new KeyStorePassword (store disconnected first).
pub async fn set_store_password(kms: &aws_sdk_kms::Client, id: &str, pw: &str) {
    disconnect(kms, id).await;
    kms.update_custom_key_store()
        .custom_key_store_id(id)
        .key_store_password(pw)
        .send()
        .await
        .expect("update password");
}

/// Runs `keyhold cloudhsm <args>` against `s` with the given passwords in the environment;
/// panics unless it succeeds.
pub fn cli(s: &TestServer, args: &[&str], admin: Option<&str>, password: Option<&str>) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_keyhold"));
    cmd.arg("cloudhsm")
        .args(args)
        .arg("--endpoint")
        .arg(&s.endpoint)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("KEYHOLD_CLOUDHSM_ADMIN_PASSWORD")
        .env_remove("KEYHOLD_CLOUDHSM_PASSWORD");
    if let Some(a) = admin {
        cmd.env("KEYHOLD_CLOUDHSM_ADMIN_PASSWORD", a);
    }
    if let Some(p) = password {
        cmd.env("KEYHOLD_CLOUDHSM_PASSWORD", p);
    }
    let out = cmd.output().expect("run keyhold cloudhsm");
    assert!(
        out.status.success(),
        "keyhold cloudhsm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// CreateCustomKeyStore (AWS_CLOUDHSM) named `store-<cluster>` over `cluster` with the
/// kmsuser password; its id.
pub async fn create_store(kms: &aws_sdk_kms::Client, cluster: &str) -> String {
    kms.create_custom_key_store()
        .custom_key_store_name(format!("store-{cluster}"))
        .cloud_hsm_cluster_id(cluster)
        .trust_anchor_certificate(trust_anchor())
        .key_store_password(KMSUSER_PW)
        .send()
        .await
        .expect("create store")
        .custom_key_store_id()
        .expect("id")
        .to_string()
}

/// A store over a ready cluster, CONNECTED: (store id, cluster id).
pub async fn connected_store(
    s: &TestServer,
    kms: &aws_sdk_kms::Client,
    subnets: [&str; 2],
) -> (String, String) {
    let (cluster, _, _) = ready_cluster(s, subnets).await;
    let store = create_store(kms, &cluster).await;
    assert_eq!(
        reconnect(kms, &store).await,
        (ConnectionStateType::Connected, None)
    );
    (store, cluster)
}

/// A key in the CloudHSM key store `store`: (key id, ARN).
pub async fn hsm_key(kms: &aws_sdk_kms::Client, store: &str) -> (String, String) {
    let md = kms
        .create_key()
        .origin(aws_sdk_kms::types::OriginType::AwsCloudhsm)
        .custom_key_store_id(store)
        .send()
        .await
        .expect("create key")
        .key_metadata()
        .cloned()
        .expect("metadata");
    (
        md.key_id().to_string(),
        md.arn().unwrap_or_default().to_string(),
    )
}
