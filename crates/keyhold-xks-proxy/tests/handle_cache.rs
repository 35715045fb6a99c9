//! The proxy's PKCS#11 backend looks a key up in the token once, not on every request: XKS
//! Encrypt (with the test decryption KMS asks for) and Decrypt through the real server, on a
//! real SoftHSMv2 token behind the counting shim (`keyhold-pkcs11-faults`). A configuration
//! reload makes it look the key up again. Its own test binary: the shim's counters are per
//! process.

mod common;

use common::*;
use keyhold_pkcs11::admin::{self, SlotChoice};
use keyhold_pkcs11::softhsm::TEST_SO_PIN;
use keyhold_pkcs11::Pin;
use keyhold_pkcs11_faults::{call_count, library_path};
use keyhold_xks::wire::{DecryptRequest, EncryptRequest, B64};
use keyhold_xks_proxy::config::Config;
use keyhold_xks_proxy::ProxyServer;

#[tokio::test]
async fn a_key_is_looked_up_once_per_token_not_per_request() {
    // The private SoftHSM token store (SOFTHSM2_CONF), before the shim loads SoftHSM.
    if keyhold_pkcs11::softhsm::TestEnv::get().is_none() {
        return;
    }
    let shim = library_path().expect("libkeyhold_pkcs11_faults.so next to the test binary");
    let (token, pin) = ("xks-proxy-handles", "user-pin-handles");
    admin::init_token(
        &shim,
        SlotChoice::FirstFree,
        token,
        &Pin::new(TEST_SO_PIN),
        Some(&Pin::new(pin)),
    )
    .expect("init token through the shim");
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path());
    let text = pkcs11_config_text(&pki, &shim, token, pin, "pool_size = 2");
    let path = dir.path().join("proxy.toml");
    std::fs::write(&path, &text).expect("write config");
    let config = Config::parse(&text).expect("valid config");
    // Created through another Token (as by the CLI): the server's own has nothing cached.
    hsm_backend(&config)
        .create_key("k1")
        .expect("create token key");
    let server = ProxyServer::start(config, Some(path)).await.expect("start");
    let client = xks_client_for(&pki, server.local_addr, 5000);
    let t = xks_target("/hsm", AKID_1, SECRET_1);
    let count = |f: &str| call_count(&shim, f).expect("shim counter");
    let encrypt = EncryptRequest {
        request_metadata: meta("Encrypt"),
        plaintext: B64(b"attack at dawn".to_vec()),
        encryption_algorithm: "AES_GCM".to_string(),
        additional_authenticated_data: Some(B64(b"aad".to_vec())),
        ciphertext_data_integrity_value_algorithm: Some("SHA_256".to_string()),
    };
    let (finds, encrypts, decrypts) = (
        count("C_FindObjectsInit"),
        count("C_EncryptInit"),
        count("C_DecryptInit"),
    );
    let mut last = None;
    for _ in 0..20 {
        let out = client.encrypt(&t, "k1", &encrypt).await.expect("encrypt");
        assert!(out.ciphertext_data_integrity_value.is_some());
        last = Some(out);
    }
    let out = last.expect("an answer");
    let decrypt = DecryptRequest {
        request_metadata: meta("Decrypt"),
        ciphertext: out.ciphertext.clone(),
        ciphertext_metadata: out.ciphertext_metadata.clone(),
        encryption_algorithm: "AES_GCM".to_string(),
        additional_authenticated_data: Some(B64(b"aad".to_vec())),
        initialization_vector: out.initialization_vector.clone(),
        authentication_tag: out.authentication_tag.clone(),
    };
    for _ in 0..5 {
        let back = client.decrypt(&t, "k1", &decrypt).await.expect("decrypt");
        assert_eq!(back.plaintext.0, b"attack at dawn");
    }
    assert_eq!(count("C_FindObjectsInit"), finds + 1, "one look-up");
    assert_eq!(count("C_EncryptInit"), encrypts + 20);
    assert_eq!(
        count("C_DecryptInit"),
        decrypts + 25,
        "20 test decryptions and 5 decryptions"
    );

    // A reload forgets the handles: the next request looks the key up again, once.
    server.reload().expect("reload");
    for _ in 0..3 {
        client.encrypt(&t, "k1", &encrypt).await.expect("encrypt");
    }
    assert_eq!(count("C_FindObjectsInit"), finds + 2);
    server.shutdown();
}
