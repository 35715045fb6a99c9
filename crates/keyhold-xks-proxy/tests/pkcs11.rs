//! The PKCS#11 backend on a private SoftHSMv2 token, end to end through `XksClient`.

mod common;

use common::*;
use keyhold_core::ports::xks::{HealthCheckReason, XksConnector, XksFailure, XksRequestMetadata};
use keyhold_xks::wire::{DecryptRequest, EncryptRequest, GetKeyMetadataRequest, B64};
use keyhold_xks_proxy::backend::pkcs11::HEALTH_KEY_LABEL;
use keyhold_xks_proxy::config::Config;
use keyhold_xks_proxy::envelope::cdiv;
use keyhold_xks_proxy::ProxyServer;

fn health_meta() -> XksRequestMetadata {
    XksRequestMetadata {
        aws_principal_arn: "AWS Internal".to_string(),
        kms_request_id: "r-health".to_string(),
        custom_key_store_id: None,
    }
}

#[tokio::test]
async fn softhsm_round_trip_health_and_key_states() {
    let Some(env) = keyhold_pkcs11::softhsm::TestEnv::get() else {
        return;
    };
    env.token("xks-proxy-e2e", "user-pin-e2e").expect("token");
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let module = env.module_path().display().to_string();
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
tls_cert = "{cert}"
tls_key = "{key}"
health_cache_seconds = 0
backend_timeout_ms = 2000

[backends.hsm]
type = "pkcs11"
module = "{module}"
token_label = "xks-proxy-e2e"
user_pin = "user-pin-e2e"
pool_size = 2
key_label_prefix = "xks/"

[backends.gone]
type = "pkcs11"
module = "{module}"
token_label = "no-such-token"
user_pin = "user-pin-e2e"

[[stores]]
prefix = "/hsm"
backend = "hsm"
disabled_keys = ["kdis"]
[[stores.credentials]]
access_key_id = "{AKID_1}"
secret = "{SECRET_1}"

[[stores]]
prefix = "/gone"
backend = "gone"
[[stores.credentials]]
access_key_id = "{AKID_1}"
secret = "{SECRET_1}"
"#,
        cert = pki.cert.display(),
        key = pki.key.display(),
    );
    let config = Config::parse(&text).expect("valid config");
    let admin = hsm_backend(&config);
    for k in ["k1", "kdis"] {
        admin.create_key(k).expect("create token key");
    }
    assert!(admin.create_key("k1").is_err(), "labels are unique");
    let server = ProxyServer::start(config, None).await.expect("start");

    let client = xks_client_for(&pki, server.local_addr, 5000);
    let target = |prefix: &str| xks_target(prefix, AKID_1, SECRET_1);
    let t = target("/hsm");

    let health = client
        .get_health_status(&t, HealthCheckReason::Connect, &health_meta())
        .await
        .expect("health");
    assert_eq!(health.ekm_fleet_details[0].health_status, "ACTIVE");
    assert_eq!(health.ekm_vendor, "PKCS#11");
    // A token that is not there is UNAVAILABLE, which KMS turns into XKS_PROXY_NOT_REACHABLE.
    assert_eq!(
        client
            .get_health_status(&target("/gone"), HealthCheckReason::Connect, &health_meta())
            .await
            .err(),
        Some(XksFailure::AllEkmsUnavailable)
    );

    let md = |op: &str| GetKeyMetadataRequest {
        request_metadata: meta(op),
    };
    let m = client
        .get_key_metadata(&t, "k1", &md("CreateKey"))
        .await
        .expect("metadata");
    assert_eq!(
        (m.key_spec.as_str(), m.key_status.as_str()),
        ("AES_256", "ENABLED")
    );
    let m = client
        .get_key_metadata(&t, "kdis", &md("CreateKey"))
        .await
        .expect("metadata");
    assert_eq!(m.key_status, "DISABLED");
    for missing in ["nokey", HEALTH_KEY_LABEL] {
        assert_eq!(
            client
                .get_key_metadata(&t, missing, &md("CreateKey"))
                .await
                .err(),
            Some(XksFailure::KeyNotFound)
        );
    }

    let plaintext = vec![5u8; 4300];
    let aad = vec![6u8; 8192];
    let req = EncryptRequest {
        request_metadata: meta("Encrypt"),
        plaintext: B64(plaintext.clone()),
        encryption_algorithm: "AES_GCM".to_string(),
        additional_authenticated_data: Some(B64(aad.clone())),
        ciphertext_data_integrity_value_algorithm: Some("SHA_256".to_string()),
    };
    let out = client
        .encrypt(&t, "k1", &req)
        .await
        .expect("encrypt in the token");
    let md_bytes = out.ciphertext_metadata.clone().expect("metadata").0;
    let want = cdiv(
        &aad,
        &md_bytes,
        &out.initialization_vector.0,
        &out.ciphertext.0,
        &out.authentication_tag.0,
    );
    assert_eq!(
        out.ciphertext_data_integrity_value
            .as_ref()
            .map(|v| v.0.clone()),
        Some(want.to_vec())
    );
    let mut dec = DecryptRequest {
        request_metadata: meta("Decrypt"),
        ciphertext: out.ciphertext.clone(),
        ciphertext_metadata: out.ciphertext_metadata.clone(),
        encryption_algorithm: "AES_GCM".to_string(),
        additional_authenticated_data: Some(B64(aad.clone())),
        initialization_vector: out.initialization_vector.clone(),
        authentication_tag: out.authentication_tag.clone(),
    };
    assert_eq!(
        client
            .decrypt(&t, "k1", &dec)
            .await
            .expect("decrypt")
            .plaintext
            .0,
        plaintext
    );
    dec.additional_authenticated_data = Some(B64(b"wrong".to_vec()));
    assert_eq!(
        client.decrypt(&t, "k1", &dec).await.err(),
        Some(XksFailure::InvalidCiphertext)
    );
    assert_eq!(
        client.encrypt(&t, "kdis", &req).await.err(),
        Some(XksFailure::KeyInvalidState)
    );
    assert_eq!(
        client.encrypt(&t, "nokey", &req).await.err(),
        Some(XksFailure::KeyNotFound)
    );
    server.shutdown();
}

#[tokio::test]
async fn health_checks_do_not_change_the_token() {
    let Some(env) = keyhold_pkcs11::softhsm::TestEnv::get() else {
        return;
    };
    let pin = "user-pin-health";
    let token_cfg = env.token("xks-proxy-health", pin).expect("token");
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let text = pkcs11_config_text(
        &pki,
        env.module_path(),
        "xks-proxy-health",
        pin,
        "pool_size = 2",
    );
    let config = Config::parse(&text).expect("valid config");
    let admin = hsm_backend(&config);
    admin.create_key("k1").expect("create token key");
    // The test's own view of the token, through the crate's PKCS#11 layer.
    let view = keyhold_pkcs11::Token::open(token_cfg).expect("open token");
    let before = view.list_objects().expect("list objects");
    assert_eq!(
        before.iter().map(|o| o.label.as_str()).collect::<Vec<_>>(),
        ["k1"]
    );

    let server = ProxyServer::start(config, None).await.expect("start");
    let client = xks_client_for(&pki, server.local_addr, 5000);
    let t = xks_target("/hsm", AKID_1, SECRET_1);
    for reason in [
        HealthCheckReason::Connect,
        HealthCheckReason::Periodic,
        HealthCheckReason::Periodic,
    ] {
        let health = client
            .get_health_status(&t, reason, &health_meta())
            .await
            .expect("health");
        assert_eq!(health.ekm_fleet_details[0].health_status, "ACTIVE");
    }
    assert_eq!(view.list_objects().expect("list objects"), before);
    server.shutdown();
}
