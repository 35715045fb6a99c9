//! End-to-end: two Keyhold nodes sharing one PostgreSQL database and one HSM token, bound by
//! `[[cloudhsm.bound_clusters]]` (how a multi-node deployment shares a real HSM). A store
//! created and connected through node A — which rotates the kmsuser password on the shared
//! token — works through node B too: keys created on one node encrypt and decrypt on the other.
//!
//! Needs `KEYHOLD_TEST_DATABASE_URL` and SoftHSMv2; without them it prints SKIP, or fails when
//! `CI=true`.

mod cloudhsm_common;
mod common;
mod custom_key_stores_common;

use aws_sdk_kms::types::ConnectionStateType as S;

use cloudhsm_common::{hsm_key, reconnect, trust_anchor};
use common::{
    assert_decrypts_to, client, database_url, encrypt_blob, encrypt_failure, fresh_schema,
    TestServer,
};

const CLUSTER: &str = "cluster-boundshared2";
const KMSUSER_PIN: &str = "sharedKms1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_a_bound_cluster() {
    let Some(url) = database_url() else { return };
    // The token lives in this process's private SoftHSM directory (SOFTHSM2_CONF, set by
    // TestEnv); both servers inherit the variable, so all three processes see one token.
    let Some(env) = keyhold_pkcs11::softhsm::TestEnv::get() else {
        return;
    };
    let label = format!("bound-{}", std::process::id());
    env.token(&label, KMSUSER_PIN).expect("shared token");

    let schema = fresh_schema("kh_e2e_bound");
    let tmp = tempfile::tempdir().expect("tmp");
    let anchor = tmp.path().join("anchor.pem");
    std::fs::write(&anchor, trust_anchor()).expect("anchor");
    let cfg = tmp.path().join("keyhold.toml");
    std::fs::write(
        &cfg,
        format!(
            "database_schema = {schema:?}\n\
             [cloudhsm]\nenabled = true\n\
             [[cloudhsm.bound_clusters]]\n\
             cluster_id = {CLUSTER:?}\naccount_id = \"123456789012\"\nregion = \"us-east-1\"\n\
             module_path = {:?}\ntoken_label = {label:?}\ntrust_anchor_file = {:?}\n",
            env.module_path().display().to_string(),
            anchor.display().to_string()
        ),
    )
    .expect("config");
    let root_key = tmp.path().join("root.key").display().to_string();
    let cfg = cfg.display().to_string();
    let args = [
        "--test-mode",
        "--database-url",
        url.as_str(),
        "--config",
        cfg.as_str(),
        "--root-key-file",
        root_key.as_str(),
    ];
    let a = TestServer::start_with(&args);
    let b = TestServer::start_with(&args);
    let (ka, kb) = (client(&a), client(&b));

    let store = ka
        .create_custom_key_store()
        .custom_key_store_name("shared-hsm")
        .cloud_hsm_cluster_id(CLUSTER)
        .trust_anchor_certificate(trust_anchor())
        .key_store_password(KMSUSER_PIN)
        .send()
        .await
        .expect("create store on node A")
        .custom_key_store_id()
        .expect("id")
        .to_string();
    // Connecting logs in as kmsuser and rotates its password on the shared token.
    assert_eq!(reconnect(&ka, &store).await, (S::Connected, None));

    let (key_a, _) = hsm_key(&ka, &store).await;
    let from_a = encrypt_blob(&ka, &key_a, b"sealed on node A").await;
    // Node B opens its own kmsuser sessions with the rotated password from the database.
    assert_decrypts_to(&kb, from_a, b"sealed on node A").await;

    let (key_b, _) = hsm_key(&kb, &store).await;
    let from_b = encrypt_blob(&kb, &key_b, b"sealed on node B").await;
    assert_decrypts_to(&ka, from_b, b"sealed on node B").await;

    // Disconnected through node A: A refuses the store's keys at once; B, which has used the
    // store (and cached its record), within its key_cache_ttl_ms (default 1 s), never later.
    ka.disconnect_custom_key_store()
        .custom_key_store_id(&store)
        .send()
        .await
        .expect("disconnect");
    custom_key_stores_common::wait_final(&ka, &store, std::time::Duration::from_secs(30)).await;
    let refused_on_a = encrypt_failure(&ka, &key_a).await.0;
    assert_eq!(refused_on_a, "KMSInvalidStateException");
    let started = std::time::Instant::now();
    loop {
        let r = kb
            .encrypt()
            .key_id(&key_b)
            .plaintext(aws_sdk_kms::primitives::Blob::new(b"x".to_vec()))
            .send()
            .await;
        if let Err(e) = r {
            let code = aws_sdk_kms::error::ProvideErrorMetadata::code(&e).unwrap_or_default();
            assert_eq!(code, refused_on_a);
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(11),
            "node B still used a key of the disconnected store after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
