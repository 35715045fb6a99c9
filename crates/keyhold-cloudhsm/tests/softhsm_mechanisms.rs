//! The SoftHSMv2 configuration that `ClusterService::open` writes is the one SoftHSMv2 then
//! runs with: a token on it offers exactly `CLUSTER_MECHANISMS`, and the CloudHSM key path's
//! work (AES key generation, AES-GCM both ways) still runs on it.
//!
//! Its own test binary, so that this process loads SoftHSMv2 with that configuration and no
//! other (SoftHSMv2 reads `SOFTHSM2_CONF` once per process).

use std::path::Path;
use std::sync::Arc;

use keyhold_cloudhsm::{CloudHsmConfig, ClusterService, CLUSTER_MECHANISMS, DEFAULT_MODULE};
use keyhold_pkcs11::admin::{self, SlotChoice};
use keyhold_pkcs11::{Pin, Token, TokenConfig};

/// Why this test cannot run here: a SKIP line on a laptop, a failure in CI.
fn skip(why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {why}"
    );
    println!("SKIP: {why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_tokens_offer_only_what_the_key_path_uses() {
    if !Path::new(DEFAULT_MODULE).exists() {
        return skip("SoftHSMv2 not installed");
    }
    if std::env::var_os("SOFTHSM2_CONF").is_some() {
        return skip("SOFTHSM2_CONF is set, so Keyhold does not write its own");
    }
    let dir = tempfile::tempdir().expect("tmp");
    let store = Arc::new(
        keyhold_store::SqliteStore::open(&dir.path().join("keyhold.sqlite"))
            .await
            .expect("store"),
    );
    let root = Arc::new(keyhold_crypto::RootKey::new(&[7u8; 32]).expect("root key"));
    let config = CloudHsmConfig {
        enabled: Some(true),
        ..CloudHsmConfig::default()
    };
    let _node = ClusterService::open(config, dir.path(), store, root).expect("open");
    let conf = dir.path().join("cloudhsm").join("softhsm2.conf");
    assert_eq!(
        std::env::var_os("SOFTHSM2_CONF").as_deref(),
        Some(conf.as_os_str())
    );

    let module = Path::new(DEFAULT_MODULE);
    let label = "cluster-mechanisms";
    let pin = Pin::new("kmsuser-pin-1");
    admin::init_token(
        module,
        SlotChoice::FirstFree,
        label,
        &Pin::new("admin-pin-1"),
        Some(&pin),
    )
    .expect("init token");

    let mut expected: Vec<String> = CLUSTER_MECHANISMS.iter().map(|m| m.to_string()).collect();
    expected.sort();
    // A misspelt name would be dropped by SoftHSMv2 without a word, and an unknown
    // `slots.mechanisms` key would leave all of them on: both fail here.
    assert_eq!(admin::mechanisms(module, label).expect("list"), expected);

    let token = Token::open(TokenConfig::new(module, label, pin)).expect("open token");
    token.generate_aes_key("k").expect("C_GenerateKey");
    let out = token
        .aes_gcm_encrypt("k", b"aad", b"plaintext")
        .expect("seal");
    let back = token
        .aes_gcm_decrypt("k", &out.iv, b"aad", &out.ciphertext, &out.tag)
        .expect("open");
    assert_eq!(back.as_slice(), b"plaintext");
}
