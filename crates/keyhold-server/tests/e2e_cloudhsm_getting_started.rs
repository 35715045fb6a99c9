//! AWS CloudHSM's getting-started sequence against the real binary: the cluster CSR is a real
//! PKCS#10 request (checked with `openssl req -verify`), InitializeCluster verifies the signed
//! certificate against the CSR and the trust anchor, the result survives a restart; and
//! CloudHSM's default (on when SoftHSMv2 is installed, otherwise off and saying why).

mod cloudhsm_common;
mod common;
mod custom_key_stores_common;

use serde_json::{json, Value};

use cloudhsm_common::*;
use common::{client, TestServer};
use custom_key_stores_common::code;

fn softhsm_installed() -> bool {
    std::path::Path::new(keyhold_cloudhsm::DEFAULT_MODULE).exists()
}

/// `op` must fail with `name`; its message.
async fn refused(s: &TestServer, op: &str, body: Value, name: &str) -> String {
    let (status, v) = hsm(s, op, body).await;
    assert_eq!(status, 400, "{op}: {v}");
    assert_eq!(v["__type"], name, "{op}: {v}");
    v["message"].as_str().unwrap_or_default().to_string()
}

/// The cluster's record as DescribeClusters shows it.
async fn describe(s: &TestServer, id: &str) -> Value {
    let d = ok(
        s,
        "DescribeClusters",
        json!({"Filters": {"clusterIds": [id]}}),
    )
    .await;
    d["Clusters"][0].clone()
}

/// `openssl req -in <csr> -noout -verify -subject`: (success, stdout + stderr).
fn openssl_verify(csr: &str, dir: &std::path::Path) -> Option<(bool, String)> {
    let file = dir.join("cluster.csr");
    std::fs::write(&file, csr).expect("write csr");
    let out = std::process::Command::new("openssl")
        .args(["req", "-noout", "-verify", "-subject", "-in"])
        .arg(&file)
        .output()
        .ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csr_is_pkcs10_and_initialize_cluster_verifies_the_certificates() {
    let tmp = tempfile::tempdir().expect("tmp");
    let Some(mut s) = server(tmp.path()) else {
        return;
    };
    let (id, zones) = create_cluster(&s, ["subnet-5a5a5a5a", "subnet-5b5b5b5b"]).await;
    assert!(describe(&s, &id).await["Certificates"]
        .get("ClusterCsr")
        .is_none());
    create_hsm(&s, &id, &zones[0]).await;
    let c = describe(&s, &id).await;
    let csr = c["Certificates"]["ClusterCsr"]
        .as_str()
        .expect("ClusterCsr")
        .to_string();
    match openssl_verify(&csr, tmp.path()) {
        Some((ok, text)) => {
            assert!(ok, "openssl req -verify: {text}");
            assert!(text.contains(&id), "subject names the cluster: {text}");
        }
        None => println!("openssl not installed: CSR checked by the test CA only"),
    }

    // A certificate for another key, one from another CA, an anchor that is not self-signed.
    let msg = refused(
        &s,
        "InitializeCluster",
        json!({"ClusterId": id, "SignedCert": cert_for_other_key(), "TrustAnchor": trust_anchor()}),
        "CloudHsmInvalidRequestException",
    )
    .await;
    assert!(msg.contains("public key"), "{msg}");
    let msg = refused(
        &s,
        "InitializeCluster",
        json!({"ClusterId": id, "SignedCert": sign_csr_by_other_ca(&csr), "TrustAnchor": trust_anchor()}),
        "CloudHsmInvalidRequestException",
    )
    .await;
    assert!(msg.contains("not signed by the trust anchor"), "{msg}");
    let signed = sign_csr(&csr);
    let msg = refused(
        &s,
        "InitializeCluster",
        json!({"ClusterId": id, "SignedCert": signed, "TrustAnchor": signed}),
        "CloudHsmInvalidRequestException",
    )
    .await;
    assert!(msg.contains("trust anchor"), "{msg}");
    let c = describe(&s, &id).await;
    assert_eq!(c["State"], "UNINITIALIZED");
    assert_eq!(c["Certificates"]["ClusterCsr"], csr.as_str());

    // The CSR signed by the trust anchor.
    let v = ok(
        &s,
        "InitializeCluster",
        json!({"ClusterId": id, "SignedCert": signed, "TrustAnchor": trust_anchor()}),
    )
    .await;
    assert_eq!(v["State"], "INITIALIZED");
    let after = |c: &Value| {
        assert_eq!(c["State"], "INITIALIZED");
        assert_eq!(c["Certificates"]["ClusterCertificate"], signed.as_str());
        assert!(c["Certificates"].get("ClusterCsr").is_none(), "{c}");
    };
    after(&describe(&s, &id).await);
    refused(
        &s,
        "InitializeCluster",
        json!({"ClusterId": id, "SignedCert": signed, "TrustAnchor": trust_anchor()}),
        "CloudHsmInvalidRequestException",
    )
    .await;
    create_hsm(&s, &id, &zones[1]).await;
    s.restart();
    after(&describe(&s, &id).await);
    // The rest of the guide: activate, kmsuser, a key store over the cluster.
    ok(
        &s,
        "KeyholdActivateCluster",
        json!({"ClusterId": id, "AdminPassword": ADMIN}),
    )
    .await;
    cli(
        &s,
        &["user", "create", "--cluster-id", &id],
        Some(ADMIN),
        Some(KMSUSER_PW),
    );
    let kms = client(&s);
    let store = create_store(&kms, &id).await;
    assert_eq!(
        reconnect(&kms, &store).await,
        (aws_sdk_kms::types::ConnectionStateType::Connected, None)
    );
}

/// CreateCustomKeyStore (AWS_CLOUDHSM) over `cluster`: the error code and message.
async fn create_store_error(kms: &aws_sdk_kms::Client, cluster: &str) -> (String, String) {
    let r = kms
        .create_custom_key_store()
        .custom_key_store_name("hsm")
        .cloud_hsm_cluster_id(cluster)
        .trust_anchor_certificate(trust_anchor())
        .key_store_password(KMSUSER_PW)
        .send()
        .await;
    let message = match &r {
        Err(e) => aws_sdk_kms::error::ProvideErrorMetadata::message(e)
            .unwrap_or_default()
            .to_string(),
        Ok(_) => String::new(),
    };
    (code(r), message)
}

fn config_server(dir: &std::path::Path, text: &str) -> TestServer {
    let cfg = dir.join("keyhold.toml");
    std::fs::write(&cfg, text).expect("config");
    let cfg = cfg.display().to_string();
    TestServer::start_with(&["--test-mode", "--config", &cfg])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloudhsm_is_on_with_a_module_and_otherwise_says_what_to_install() {
    // No PKCS#11 module: the API and AWS_CLOUDHSM stores say what to install or configure.
    let tmp = tempfile::tempdir().expect("tmp");
    let s = config_server(
        tmp.path(),
        "[cloudhsm]\nmodule_path = \"/nonexistent/libpkcs11.so\"\n",
    );
    let msg = refused(
        &s,
        "DescribeClusters",
        json!({}),
        "CloudHsmServiceException",
    )
    .await;
    assert!(
        msg.contains("apt-get install softhsm2") && msg.contains("module_path"),
        "{msg}"
    );
    let (c, msg) = create_store_error(&client(&s), "cluster-abcdefghijk").await;
    assert_eq!(c, "CloudHsmClusterNotFoundException");
    assert!(
        msg.contains("cluster-abcdefghijk") && msg.contains("softhsm2"),
        "{msg}"
    );
    drop(s);

    // Explicitly off.
    let tmp = tempfile::tempdir().expect("tmp");
    let s = config_server(tmp.path(), "[cloudhsm]\nenabled = false\n");
    let msg = refused(
        &s,
        "DescribeClusters",
        json!({}),
        "CloudHsmServiceException",
    )
    .await;
    assert!(msg.contains("enabled = false"), "{msg}");
    let (c, _) = create_store_error(&client(&s), "cluster-abcdefghijk").await;
    assert_eq!(c, "CloudHsmClusterNotFoundException");
    drop(s);

    // No [cloudhsm] table and SoftHSMv2 installed: on, tokens under this server's data dir,
    // and an unknown cluster is not found (as AWS).
    if !softhsm_installed() {
        println!("SKIP: SoftHSMv2 not installed");
        return;
    }
    let plain = TestServer::start();
    ok(&plain, "DescribeClusters", json!({})).await;
    let conf = plain.data_dir.join("cloudhsm").join("softhsm2.conf");
    if std::env::var_os("SOFTHSM2_CONF").is_none() {
        let text = std::fs::read_to_string(&conf).expect("softhsm2.conf in the data dir");
        assert!(
            text.contains(&plain.data_dir.display().to_string()),
            "{text}"
        );
    }
    let (c, _) = create_store_error(&client(&plain), "cluster-abcdefghijk").await;
    assert_eq!(c, "CloudHsmClusterNotFoundException");
    // Fault injection stays off unless configured.
    refused(
        &plain,
        "KeyholdFaultSetSubnet",
        json!({"SubnetId": "subnet-0a0a0a0a", "Removed": true}),
        "CloudHsmAccessDeniedException",
    )
    .await;
}

/// On PostgreSQL, two nodes: the CSR made on one is the one the other shows and verifies
/// against, and the initialized cluster survives a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialized_cluster_is_shared_and_survives_a_restart_on_postgres() {
    let Some(url) = common::database_url() else {
        return;
    };
    let (mut a, b, _tmp) =
        common::two_pg_nodes(&url, "kh_e2e_hsm_init", "[cloudhsm]\nenabled = true\n");
    let (id, zones) = create_cluster(&a, ["subnet-6a6a6a6a", "subnet-6b6b6b6b"]).await;
    create_hsm(&a, &id, &zones[0]).await;
    let csr = describe(&a, &id).await["Certificates"]["ClusterCsr"]
        .as_str()
        .expect("ClusterCsr")
        .to_string();
    assert_eq!(
        describe(&b, &id).await["Certificates"]["ClusterCsr"],
        csr.as_str()
    );
    refused(
        &b,
        "InitializeCluster",
        json!({"ClusterId": id, "SignedCert": cert_for_other_key(), "TrustAnchor": trust_anchor()}),
        "CloudHsmInvalidRequestException",
    )
    .await;
    let signed = sign_csr(&csr);
    ok(
        &b,
        "InitializeCluster",
        json!({"ClusterId": id, "SignedCert": signed, "TrustAnchor": trust_anchor()}),
    )
    .await;
    a.restart();
    let c = describe(&a, &id).await;
    assert_eq!(c["State"], "INITIALIZED");
    assert_eq!(c["Certificates"]["ClusterCertificate"], signed.as_str());
}
