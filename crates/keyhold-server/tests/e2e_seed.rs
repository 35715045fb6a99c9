//! End-to-end: `keyhold serve --seed FILE` creates keys with given ids (and given material),
//! their aliases and tags, and an external key store, before the first request; a restart
//! with the same file duplicates nothing; a fresh server seeded with the same file decrypts
//! what the first one encrypted under the seeded material; a bad file stops the start.

mod common;
mod custom_key_stores_common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{CustomKeyStoreType, KeyState};
use common::{client, TestServer};
use custom_key_stores_common::*;
use keyhold_xks::testing::{FakeProxyOptions, FakeXksProxy};

const KEY: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
const RANDOM_KEY: &str = "0badc0de-0000-4000-8000-000000000001";
/// base64 of 32 bytes 0x01..=0x20: the given material of [`KEY`].
const MATERIAL: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
const ACCOUNT: &str = "123456789012";

fn seed_toml(opts: &FakeProxyOptions) -> String {
    format!(
        r#"
[[custom_key_stores]]
name = "seeded-xks"
custom_key_store_type = "EXTERNAL_KEY_STORE"
xks_proxy_connectivity = "PUBLIC_ENDPOINT"
xks_proxy_uri_endpoint = "https://{HOST}"
xks_proxy_uri_path = "/kms/xks/v1"
xks_proxy_access_key_id = {:?}
xks_proxy_secret_access_key = {:?}

[[keys]]
key_id = "{KEY}"
description = "seeded with given material"
material = "{MATERIAL}"
aliases = ["alias/seeded"]
tags = {{ Project = "demo", Env = "test" }}

[[keys]]
key_id = "{RANDOM_KEY}"
description = "seeded with random material"
"#,
        opts.access_key_id, opts.secret
    )
}

/// What the server holds: (key ids, non-AWS alias names, custom key store names), sorted.
async fn inventory(kms: &aws_sdk_kms::Client) -> (Vec<String>, Vec<String>, Vec<String>) {
    let keys = kms.list_keys().send().await.expect("list keys");
    let mut key_ids: Vec<String> = keys
        .keys()
        .iter()
        .filter_map(|k| k.key_id().map(str::to_string))
        .collect();
    key_ids.sort();
    let aliases = kms.list_aliases().send().await.expect("list aliases");
    let mut names: Vec<String> = aliases
        .aliases()
        .iter()
        .filter_map(|a| a.alias_name().map(str::to_string))
        .filter(|n| !n.starts_with("alias/aws/"))
        .collect();
    names.sort();
    let stores = kms
        .describe_custom_key_stores()
        .send()
        .await
        .expect("describe stores");
    let mut store_names: Vec<String> = stores
        .custom_key_stores()
        .iter()
        .filter_map(|s| s.custom_key_store_name().map(str::to_string))
        .collect();
    store_names.sort();
    (key_ids, names, store_names)
}

async fn encrypt(kms: &aws_sdk_kms::Client, key: &str, plaintext: &[u8]) -> Blob {
    let out = kms
        .encrypt()
        .key_id(key)
        .plaintext(Blob::new(plaintext))
        .send()
        .await
        .expect("encrypt");
    out.ciphertext_blob().expect("blob").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_environment_is_reproducible() {
    let opts = FakeProxyOptions::default();
    let proxy = FakeXksProxy::start(opts.clone()).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let seed = tmp.path().join("seed.toml");
    std::fs::write(&seed, seed_toml(&opts)).expect("write seed");
    // The seed file named in the configuration file (`seed = ...`).
    let top = format!("seed = {:?}", seed.display().to_string());
    let config_dir = tmp.path().join("first");
    std::fs::create_dir_all(&config_dir).expect("dir");
    let mut server = server_for(&proxy, &config_dir, &top);
    let kms = client(&server);

    let key = kms
        .describe_key()
        .key_id(KEY)
        .send()
        .await
        .expect("describe");
    let meta = key.key_metadata().expect("metadata");
    assert_eq!(meta.key_id(), KEY);
    assert_eq!(
        meta.arn(),
        Some(format!("arn:aws:kms:us-east-1:{ACCOUNT}:key/{KEY}").as_str())
    );
    assert_eq!(meta.description(), Some("seeded with given material"));
    assert_eq!(meta.key_state(), Some(&KeyState::Enabled));
    let created = meta.creation_date().copied();

    let aliases = kms
        .list_aliases()
        .key_id(KEY)
        .send()
        .await
        .expect("aliases");
    let names: Vec<_> = aliases.aliases().iter().map(|a| a.alias_name()).collect();
    assert_eq!(names, vec![Some("alias/seeded")]);

    let tags = kms
        .list_resource_tags()
        .key_id(KEY)
        .send()
        .await
        .expect("tags");
    let mut tags: Vec<(String, String)> = tags
        .tags()
        .iter()
        .map(|t| (t.tag_key().to_string(), t.tag_value().to_string()))
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        vec![
            ("Env".to_string(), "test".to_string()),
            ("Project".to_string(), "demo".to_string())
        ]
    );

    let stores = kms
        .describe_custom_key_stores()
        .custom_key_store_name("seeded-xks")
        .send()
        .await
        .expect("describe store");
    let store = &stores.custom_key_stores()[0];
    assert_eq!(
        store.custom_key_store_type(),
        Some(&CustomKeyStoreType::ExternalKeyStore)
    );
    assert_eq!(
        store
            .xks_proxy_configuration()
            .and_then(|x| x.access_key_id()),
        Some(opts.access_key_id.as_str())
    );

    let before = inventory(&kms).await;
    assert_eq!(
        before,
        (
            vec![RANDOM_KEY.to_string(), KEY.to_string()],
            vec!["alias/seeded".to_string()],
            vec!["seeded-xks".to_string()]
        )
    );
    let given = encrypt(&kms, "alias/seeded", b"seeded secret").await;
    let random = encrypt(&kms, RANDOM_KEY, b"random secret").await;

    // A restart with the same file: nothing duplicated, nothing changed, no error.
    server.restart();
    let kms = client(&server);
    assert_eq!(inventory(&kms).await, before);
    let again = kms
        .describe_key()
        .key_id(KEY)
        .send()
        .await
        .expect("describe");
    assert_eq!(
        again
            .key_metadata()
            .and_then(|m| m.creation_date())
            .copied(),
        created
    );
    common::assert_decrypts_to(&kms, given.clone(), b"seeded secret").await;

    // A fresh server (its own data directory and root key) seeded with the same file
    // decrypts what the first made under the given material; not under random material.
    let fresh_dir = tmp.path().join("fresh");
    std::fs::create_dir_all(&fresh_dir).expect("dir");
    let fresh = server_for(&proxy, &fresh_dir, &top);
    let root_a = std::fs::read(server.data_dir.join("root.key")).expect("root key a");
    let root_b = std::fs::read(fresh.data_dir.join("root.key")).expect("root key b");
    assert_ne!(root_a, root_b, "the fresh server has its own root key");
    let fresh_kms = client(&fresh);
    assert_eq!(inventory(&fresh_kms).await, before);
    common::assert_decrypts_to(&fresh_kms, given, b"seeded secret").await;
    let refused = fresh_kms.decrypt().ciphertext_blob(random).send().await;
    assert!(
        refused.is_err(),
        "random material must differ between servers"
    );
}

/// Runs `keyhold serve` with `args` and waits for it to exit; returns (success, stderr).
fn serve_until_exit(data_dir: &Path, args: &[&str]) -> (bool, String) {
    let ready = data_dir.with_file_name("ready");
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyhold"))
        .arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--ready-file")
        .arg(&ready)
        .args(args)
        .env_remove("KEYHOLD_ROOT_KEY")
        .env_remove("KEYHOLD_DATABASE_URL")
        .env_remove("KEYHOLD_SEED")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn keyhold");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if ready.exists() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("keyhold started serving with a bad seed file");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_seed_file_stops_the_start_naming_the_file_and_the_problem() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");

    let malformed = tmp.path().join("malformed.toml");
    std::fs::write(&malformed, "[[keys]]\nkey_id = \"1234\"\nkey_spec = [\n").expect("write");
    let path = malformed.display().to_string();
    let (ok, stderr) = serve_until_exit(&data, &["--test-mode", "--seed", &path]);
    assert!(!ok);
    assert!(stderr.contains(&path), "{stderr}");
    assert!(
        stderr.contains("not a valid seed file (TOML) at line"),
        "{stderr}"
    );

    let bad_id = tmp.path().join("bad-id.toml");
    std::fs::write(&bad_id, "[[keys]]\nkey_id = \"my-key\"\n").expect("write");
    let path = bad_id.display().to_string();
    let (ok, stderr) = serve_until_exit(&data, &["--test-mode", "--seed", &path]);
    assert!(!ok);
    assert!(
        stderr.contains(&path) && stderr.contains("keys[0] (my-key)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("key_id must be a lowercase UUID"),
        "{stderr}"
    );

    // Given material without --test-mode or the file's explicit permission.
    let material = tmp.path().join("material.toml");
    std::fs::write(
        &material,
        format!("[[keys]]\nkey_id = \"{KEY}\"\nmaterial = \"{MATERIAL}\"\n"),
    )
    .expect("write");
    let path = material.display().to_string();
    let (ok, stderr) = serve_until_exit(&data, &["--seed", &path]);
    assert!(!ok);
    assert!(stderr.contains("allow_seeded_key_material"), "{stderr}");
    assert!(!stderr.contains(MATERIAL), "the material is never echoed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_seed_file_from_the_environment_works_too() {
    let tmp = tempfile::tempdir().expect("tmp");
    let seed = tmp.path().join("seed.json");
    std::fs::write(
        &seed,
        format!(
            r#"{{"allow_seeded_key_material": true,
                "keys": [{{"key_id": "{KEY}", "region": "eu-west-1", "material": "{MATERIAL}",
                          "aliases": ["alias/json"], "tags": {{"From": "json"}}}}]}}"#
        ),
    )
    .expect("write");
    let path = seed.display().to_string();
    let mut server = TestServer::start_with_env(&[], &[("KEYHOLD_SEED", path.as_str())]);
    let kms = common::regional(&server.endpoint, "eu-west-1");
    let key = kms
        .describe_key()
        .key_id("alias/json")
        .send()
        .await
        .expect("describe by alias");
    assert_eq!(
        key.key_metadata().and_then(|m| m.arn()),
        Some(format!("arn:aws:kms:eu-west-1:{ACCOUNT}:key/{KEY}").as_str())
    );
    let tags = kms
        .list_resource_tags()
        .key_id(KEY)
        .send()
        .await
        .expect("tags");
    assert_eq!(tags.tags().len(), 1);
    assert_eq!(tags.tags()[0].tag_value(), "json");
    // Not in the default Region.
    let home = client(&server);
    assert!(home.describe_key().key_id(KEY).send().await.is_err());

    // A seeded key scheduled for deletion is left so by the next start, which still starts
    // (its alias exists; the key no longer accepts new aliases).
    kms.schedule_key_deletion()
        .key_id(KEY)
        .pending_window_in_days(7)
        .send()
        .await
        .expect("schedule deletion");
    server.restart();
    let kms = common::regional(&server.endpoint, "eu-west-1");
    let key = kms
        .describe_key()
        .key_id(KEY)
        .send()
        .await
        .expect("describe");
    assert_eq!(
        key.key_metadata().and_then(|m| m.key_state()),
        Some(&KeyState::PendingDeletion)
    );
}
