//! A PKCS#11 health check on a key the operator configured (`health_check_key_label`): the
//! proxy never creates it, reports the token UNAVAILABLE while it is missing, round-trips
//! through it without changing the token, and keeps it out of reach as an external key.

mod common;

use common::*;
use keyhold_xks_proxy::cli::{KeysAction, StoreArgs};
use keyhold_xks_proxy::client::SignedClient;
use keyhold_xks_proxy::config::Config;
use keyhold_xks_proxy::{ProxyServer, XksProxyCommand};
use serde_json::{json, Value};

const PIN: &str = "user-pin-health-key";

async fn post(c: &SignedClient, suffix: &str, body: &Value) -> (u16, Value) {
    let mut conn = c.connect().await.expect("connect");
    let req = c
        .request(suffix, serde_json::to_vec(body).expect("json"))
        .expect("request");
    let (status, bytes) = conn.send(req).await.expect("send");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn pkcs11_health_check_on_a_configured_key() {
    let Some(env) = keyhold_pkcs11::softhsm::TestEnv::get() else {
        return;
    };
    let token_cfg = env.token("xks-proxy-health-key", PIN).expect("token");
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let config_path = dir.path().join("xks-proxy.toml");
    let text = pkcs11_config_text(
        &pki,
        env.module_path(),
        "xks-proxy-health-key",
        PIN,
        "key_label_prefix = \"xks/\"\nhealth_check_key_label = \"xks/health\"",
    );
    std::fs::write(&config_path, &text).expect("write config");
    let server = ProxyServer::start(Config::load(&config_path).expect("config"), None)
        .await
        .expect("start");
    let c = SignedClient::new(keyhold_xks_proxy::client::ClientOptions {
        url: format!("https://{HOST}/hsm/kms/xks/v1"),
        connect_to: Some(server.local_addr),
        ca_file: Some(pki.ca_pem.clone()),
        client_cert: None,
        access_key_id: AKID_1.to_string(),
        secret: SECRET_1.to_string(),
        region: REGION.to_string(),
        http2: false,
    })
    .expect("client");
    let health =
        json!({"requestMetadata": {"kmsRequestId": "r", "kmsOperation": "KmsHealthCheck"}});
    let status = |v: &Value| v["ekmFleetDetails"][0]["healthStatus"].clone();

    // Not created yet: the proxy does not create it, and reports the token unavailable.
    let (code, v) = post(&c, "/health", &health).await;
    assert_eq!((code, status(&v)), (200, json!("UNAVAILABLE")));
    let view = keyhold_pkcs11::Token::open(token_cfg).expect("open token");
    assert!(view.list_objects().expect("list").is_empty());

    keyhold_xks_proxy::run(XksProxyCommand::Keys {
        action: KeysAction::CreateHealthCheckKey(StoreArgs {
            config: config_path.clone(),
            store: "/hsm".to_string(),
        }),
    })
    .expect("create the health-check key");
    let before = view.list_objects().expect("list");
    assert_eq!(
        before.iter().map(|o| o.label.as_str()).collect::<Vec<_>>(),
        ["xks/health"]
    );
    for _ in 0..3 {
        let (code, v) = post(&c, "/health", &health).await;
        assert_eq!((code, status(&v)), (200, json!("ACTIVE")));
    }
    assert_eq!(view.list_objects().expect("list"), before);
    // The health-check key is not an external key.
    let (code, v) = post(
        &c,
        "/keys/health/metadata",
        &json!({"requestMetadata": {"awsPrincipalArn": "p", "kmsOperation": "CreateKey", "kmsRequestId": "r"}}),
    )
    .await;
    assert_eq!(
        (code, v["errorName"].as_str()),
        (404, Some("KeyNotFoundException"))
    );
    server.shutdown();
}
