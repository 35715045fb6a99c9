//! Key usages on both backends (SoftHSMv2 and the software key store): created with
//! `keyhold xks-proxy keys create --usage`, reported by GetKeyMetadata and enforced on Encrypt,
//! Decrypt and the test decryption behind a CDIV.

mod common;

use std::path::Path;

use common::*;
use keyhold_xks_proxy::backend::KeyUsage;
use keyhold_xks_proxy::cli::{CreateKeyArgs, KeyArgs, KeysAction, StoreArgs};
use keyhold_xks_proxy::client::SignedClient;
use keyhold_xks_proxy::config::Config;
use keyhold_xks_proxy::{ProxyServer, XksProxyCommand};
use serde_json::{json, Value};

const PIN: &str = "user-pin-usage";

fn config_text(dir: &Path, pki: &Pki, module: &Path, token: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
tls_cert = "{cert}"
tls_key = "{key}"
health_cache_seconds = 0
backend_timeout_ms = 2000
# Only availability is checked here, not speed (CI machines are busy).
degraded_latency_ms = 2000

[backends.soft]
type = "software"
key_file = "{dir}/keys.json"
root_key_file = "{dir}/root.key"
create_root_key = true

[backends.hsm]
type = "pkcs11"
module = "{module}"
token_label = "{token}"
user_pin = "{PIN}"
pool_size = 2
key_label_prefix = "xks/"

[[stores]]
prefix = "/soft"
backend = "soft"
[[stores.credentials]]
access_key_id = "{AKID_1}"
secret = "{SECRET_1}"

[[stores]]
prefix = "/hsm"
backend = "hsm"
[[stores.credentials]]
access_key_id = "{AKID_1}"
secret = "{SECRET_1}"
"#,
        cert = pki.cert.display(),
        key = pki.key.display(),
        dir = dir.display(),
        module = module.display(),
    )
}

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

fn md(op: &str) -> Value {
    json!({
        "awsPrincipalArn": "arn:aws:iam::111122223333:role/app",
        "kmsOperation": op,
        "kmsRequestId": "6112f4d6-db54-4af4-ae30-c55a22a8dfae",
        "kmsKeyArn": "arn:aws:kms:eu-west-1:111122223333:key/x",
    })
}

fn encrypt(cdiv: bool) -> Value {
    let mut v = json!({
        "requestMetadata": md("Encrypt"),
        "plaintext": "aGVsbG8gd29ybGQ=",
        "encryptionAlgorithm": "AES_GCM",
        "additionalAuthenticatedData": "YWFk",
    });
    if cdiv {
        v["ciphertextDataIntegrityValueAlgorithm"] = json!("SHA_256");
    }
    v
}

fn decrypt(encrypted: &Value) -> Value {
    json!({
        "requestMetadata": md("Decrypt"),
        "ciphertext": encrypted["ciphertext"],
        "ciphertextMetadata": encrypted["ciphertextMetadata"],
        "encryptionAlgorithm": "AES_GCM",
        "additionalAuthenticatedData": "YWFk",
        "initializationVector": encrypted["initializationVector"],
        "authenticationTag": encrypted["authenticationTag"],
    })
}

fn create(config: &Path, store: &str, key_id: &str, usage: &str) {
    keyhold_xks_proxy::run(XksProxyCommand::Keys {
        action: KeysAction::Create(CreateKeyArgs {
            key: KeyArgs {
                store: StoreArgs {
                    config: config.to_path_buf(),
                    store: store.to_string(),
                },
                key_id: key_id.to_string(),
            },
            usage: usage.parse::<KeyUsage>().expect("usage"),
        }),
    })
    .expect("keys create");
}

fn outcome(answer: &(u16, Value)) -> (u16, &str) {
    (answer.0, answer.1["errorName"].as_str().unwrap_or("OK"))
}

#[tokio::test]
async fn usages_are_created_reported_and_enforced_on_both_backends() {
    let Some(env) = keyhold_pkcs11::softhsm::TestEnv::get() else {
        return;
    };
    env.token("xks-proxy-usage", PIN).expect("token");
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let config_path = dir.path().join("xks-proxy.toml");
    let text = config_text(dir.path(), &pki, env.module_path(), "xks-proxy-usage");
    std::fs::write(&config_path, &text).expect("write config");
    for store in ["/soft", "/hsm"] {
        for (key, usage) in [
            ("kboth", "encrypt,decrypt"),
            ("kenc", "encrypt"),
            ("kdec", "DECRYPT"),
            ("knone", "none"),
        ] {
            create(&config_path, store, key, usage);
        }
    }
    let config = Config::load(&config_path).expect("config");
    let server = ProxyServer::start(config, None).await.expect("start");
    let refused = (400, "InvalidKeyUsageException");
    for store in ["/soft", "/hsm"] {
        let c = SignedClient::new(keyhold_xks_proxy::client::ClientOptions {
            url: format!("https://{HOST}{store}/kms/xks/v1"),
            connect_to: Some(server.local_addr),
            ca_file: Some(pki.ca_pem.clone()),
            client_cert: None,
            access_key_id: AKID_1.to_string(),
            secret: SECRET_1.to_string(),
            region: REGION.to_string(),
            http2: false,
        })
        .expect("client");
        let metadata = json!({"requestMetadata": md("CreateKey")});
        for (key, usage) in [
            ("kboth", json!(["ENCRYPT", "DECRYPT"])),
            ("kenc", json!(["ENCRYPT"])),
            ("kdec", json!(["DECRYPT"])),
            ("knone", json!([])),
        ] {
            let (status, v) = post(&c, &format!("/keys/{key}/metadata"), &metadata).await;
            assert_eq!((status, &v["keyUsage"]), (200, &usage), "{store} {key}");
            assert_eq!(v["keyStatus"], "ENABLED", "{store} {key}");
        }

        let both = post(&c, "/keys/kboth/encrypt", &encrypt(true)).await;
        assert_eq!(outcome(&both), (200, "OK"), "{store}");
        let back = post(&c, "/keys/kboth/decrypt", &decrypt(&both.1)).await;
        assert_eq!(back.1["plaintext"], "aGVsbG8gd29ybGQ=", "{store}");

        // Encrypt-only: encrypts, but neither decrypts nor passes the CDIV test decryption.
        let enc = post(&c, "/keys/kenc/encrypt", &encrypt(false)).await;
        assert_eq!(outcome(&enc), (200, "OK"), "{store}");
        assert_eq!(
            outcome(&post(&c, "/keys/kenc/decrypt", &decrypt(&enc.1)).await),
            refused,
            "{store}"
        );
        assert_eq!(
            outcome(&post(&c, "/keys/kenc/encrypt", &encrypt(true)).await),
            refused,
            "{store}: the test decryption obeys the key usage"
        );

        // Decrypt-only: no encryption; a decryption is allowed (this ciphertext is not its own).
        assert_eq!(
            outcome(&post(&c, "/keys/kdec/encrypt", &encrypt(false)).await),
            refused,
            "{store}"
        );
        assert_eq!(
            outcome(&post(&c, "/keys/kdec/decrypt", &decrypt(&enc.1)).await),
            (400, "InvalidCiphertextException"),
            "{store}"
        );

        // Neither.
        assert_eq!(
            outcome(&post(&c, "/keys/knone/encrypt", &encrypt(false)).await),
            refused,
            "{store}"
        );
        assert_eq!(
            outcome(&post(&c, "/keys/knone/decrypt", &decrypt(&both.1)).await),
            refused,
            "{store}"
        );
    }
    server.shutdown();

    // The software store lists the usages; the PKCS#11 token holds them as attributes.
    let listed: Vec<(String, String)> =
        keyhold_xks_proxy::cli::software_store(&config_path, "/soft")
            .expect("store")
            .list()
            .expect("list")
            .into_iter()
            .map(|k| (k.id, k.usage.to_string()))
            .collect();
    assert_eq!(
        listed,
        [
            ("kboth".to_string(), "encrypt,decrypt".to_string()),
            ("kdec".to_string(), "decrypt".to_string()),
            ("kenc".to_string(), "encrypt".to_string()),
            ("knone".to_string(), "none".to_string()),
        ]
    );
}
