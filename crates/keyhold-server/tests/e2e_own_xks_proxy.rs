//! End-to-end: Keyhold KMS → Keyhold's own XKS proxy (`keyhold xks-proxy serve`) → a real
//! SoftHSMv2 token, driven through aws-sdk-kms. Both servers are the real `keyhold` binary.

mod common;
mod custom_key_stores_common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    ConnectionErrorCodeType, ConnectionStateType, CustomKeyStoreType, DataKeySpec, KeyState,
    OriginType, XksProxyAuthenticationCredentialType, XksProxyConnectivityType,
};
use common::{client, encrypt_failure, failure, TestServer};
use custom_key_stores_common::{reconnect, wait_final};

const HOST: &str = "xks.example.test";
const AKID: &str = "KEYHOLDE2EPROXYAKID2345";
const SECRET: &str = "kEyHoLdE2eSeCrEtKeY0123456789abcdefghijklmnop";
const PIN: &str = "e2e-user-pin";
const KEY: &str = "kms-key-1";
const WAIT: Duration = Duration::from_secs(20);

/// The proxy child process; killed on drop.
struct Proxy {
    child: Child,
    config: PathBuf,
    addr: String,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The PKCS#11 module the proxy's HSM backend loads.
const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";

fn write_proxy_config(
    dir: &Path,
    addr: &str,
    module: &str,
    token_label: &str,
    disabled: &[&str],
) -> PathBuf {
    let path = dir.join("xks-proxy.toml");
    let disabled = disabled
        .iter()
        .map(|k| format!("{k:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!(
        r#"[server]
listen = "{addr}"
tls_cert = {cert:?}
tls_key = {key:?}
health_cache_seconds = 0

[backends.hsm]
type = "pkcs11"
module = "{module}"
token_label = "{token_label}"
user_pin_env = "KEYHOLD_E2E_HSM_PIN"

[[stores]]
prefix = "/e2e"
backend = "hsm"
disabled_keys = [{disabled}]
[[stores.credentials]]
access_key_id = "{AKID}"
secret = "{SECRET}"
"#,
        cert = dir.join("proxy.pem").display().to_string(),
        key = dir.join("proxy.key").display().to_string(),
    );
    // Write then rename, so the proxy's file poll never reads half a file.
    let tmp = dir.join("xks-proxy.toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

fn keyhold(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_keyhold"));
    c.args(args)
        .env("KEYHOLD_E2E_HSM_PIN", PIN)
        .env("KEYHOLD_LOG", "warn")
        .envs(envs.iter().copied());
    c
}

/// `keyhold xks-proxy keys create` of `key_id` with `usage` in store `/e2e` of the proxy
/// configured by `cfg`; panics with the command's error output if it fails.
fn create_proxy_key(cfg: &str, key_id: &str, usage: &str, envs: &[(&str, &str)]) {
    let out = keyhold(
        &[
            "xks-proxy",
            "keys",
            "create",
            "--config",
            cfg,
            "--store",
            "/e2e",
            "--key-id",
            key_id,
            "--usage",
            usage,
        ],
        envs,
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "keys create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `keyhold xks-proxy serve` on `module`'s token `token_label`, with extra environment
/// variables for the proxy process.
fn start_proxy(dir: &Path, module: &str, token_label: &str, envs: &[(&str, &str)]) -> Proxy {
    let addr = format!("127.0.0.1:{}", free_port());
    let config = write_proxy_config(dir, &addr, module, token_label, &[]);
    let cfg = config.display().to_string();
    create_proxy_key(&cfg, KEY, "encrypt,decrypt", envs);
    let child = keyhold(&["xks-proxy", "serve", "--config", &cfg], envs)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "proxy did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Proxy {
        child,
        config,
        addr,
    }
}

/// Rewrites the proxy's configuration and tells it to reload (SIGHUP).
fn reconfigure(proxy: &Proxy, dir: &Path, token_label: &str, disabled: &[&str]) {
    write_proxy_config(dir, &proxy.addr, SOFTHSM, token_label, disabled);
    let status = Command::new("kill")
        .args(["-HUP", &proxy.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(proxy.config, dir.join("xks-proxy.toml"));
}

/// Retries `f` until it returns `Some`, for effects that apply asynchronously (a reload).
async fn eventually<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "condition not reached within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A running proxy on `module`'s token, a KMS server dialling it, and an external key store
/// over it (CONNECTED) with one key.
struct Setup {
    proxy: Proxy,
    // Kept alive for the test's duration.
    _server: TestServer,
    kms: aws_sdk_kms::Client,
    store: String,
    key: String,
}

async fn setup(dir: &Path, module: &str, token_label: &str, envs: &[(&str, &str)]) -> Setup {
    let cert = rcgen::generate_simple_self_signed(vec![HOST.to_string()]).unwrap();
    std::fs::write(dir.join("proxy.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("proxy.key"), cert.key_pair.serialize_pem()).unwrap();

    // The proxy inherits SOFTHSM2_CONF from this process (set by TestEnv).
    let proxy = start_proxy(dir, module, token_label, envs);

    let kms_cfg = dir.join("keyhold.toml");
    std::fs::write(
        &kms_cfg,
        format!(
            "[xks]\ntimeout_ms = 2000\nuse_system_roots = false\nextra_ca_files = [{:?}]\n[xks.connect_to]\n{HOST:?} = {:?}\n",
            dir.join("proxy.pem").display().to_string(),
            proxy.addr
        ),
    )
    .unwrap();
    let server = TestServer::start_with(&["--config", kms_cfg.to_str().unwrap()]);
    let kms = client(&server);

    let store = kms
        .create_custom_key_store()
        .custom_key_store_name("own-proxy")
        .custom_key_store_type(CustomKeyStoreType::ExternalKeyStore)
        .xks_proxy_connectivity(XksProxyConnectivityType::PublicEndpoint)
        .xks_proxy_uri_endpoint(format!("https://{HOST}"))
        .xks_proxy_uri_path("/e2e/kms/xks/v1")
        .xks_proxy_authentication_credential(
            XksProxyAuthenticationCredentialType::builder()
                .access_key_id(AKID)
                .raw_secret_access_key(SECRET)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create store (probes the proxy)")
        .custom_key_store_id()
        .unwrap()
        .to_string();
    kms.connect_custom_key_store()
        .custom_key_store_id(&store)
        .send()
        .await
        .unwrap();
    assert_eq!(
        wait_final(&kms, &store, WAIT).await,
        (ConnectionStateType::Connected, None)
    );

    let key = kms
        .create_key()
        .origin(OriginType::ExternalKeyStore)
        .custom_key_store_id(&store)
        .xks_key_id(KEY)
        .send()
        .await
        .expect("CreateKey in the external key store")
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    Setup {
        proxy,
        _server: server,
        kms,
        store,
        key,
    }
}

/// The tests of this file run one at a time: each starts proxy processes that load SoftHSM
/// over the process's shared token directory, and a proxy scanning the directory while the
/// other test's `C_InitToken` writes a token there sees `CKR_GENERAL_ERROR` (seen under load:
/// `C_GetSlotList` failing in the test, "all key manager instances unavailable" from the
/// proxy).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A fresh SoftHSM token for one test; its label.
fn test_token(env: &keyhold_pkcs11::softhsm::TestEnv) -> String {
    let token_label = format!(
        "xks-e2e-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    env.token(&token_label, PIN).expect("SoftHSM token");
    token_label
}

#[tokio::test]
async fn kms_through_keyholds_own_proxy_on_softhsm() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let Some(env) = keyhold_pkcs11::softhsm::TestEnv::get() else {
        return;
    };
    let token_label = test_token(env);
    let dir = tempfile::tempdir().unwrap();
    let Setup {
        proxy,
        _server,
        kms,
        store,
        key,
    } = setup(dir.path(), SOFTHSM, &token_label, &[]).await;
    let default_key = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();

    // Encrypt / Decrypt with an encryption context.
    let blob = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"through the HSM".to_vec()))
        .encryption_context("app", "e2e")
        .send()
        .await
        .expect("encrypt")
        .ciphertext_blob()
        .unwrap()
        .clone();
    let plain = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("app", "e2e")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref(), b"through the HSM");

    // A key the proxy may only encrypt with (CKA_DECRYPT false in the token) is refused as
    // the backing key of a KMS key, as AWS refuses an external key without both usages.
    let cfg = proxy.config.display().to_string();
    create_proxy_key(&cfg, "encrypt-only", "encrypt", &[]);
    let (code, message) = failure(
        kms.create_key()
            .origin(OriginType::ExternalKeyStore)
            .custom_key_store_id(&store)
            .xks_key_id("encrypt-only")
            .send()
            .await,
    );
    assert_eq!(code, "XksKeyInvalidConfigurationException", "{message}");
    assert!(message.contains("ENCRYPT and DECRYPT"), "{message}");

    // GenerateDataKey, GenerateDataKeyWithoutPlaintext.
    let dk = kms
        .generate_data_key()
        .key_id(&key)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .unwrap();
    let again = kms
        .decrypt()
        .ciphertext_blob(dk.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.plaintext().unwrap().as_ref(),
        dk.plaintext().unwrap().as_ref()
    );
    let wp = kms
        .generate_data_key_without_plaintext()
        .key_id(&key)
        .number_of_bytes(16)
        .send()
        .await
        .unwrap();
    let wp_plain = kms
        .decrypt()
        .ciphertext_blob(wp.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(wp_plain.plaintext().unwrap().as_ref().len(), 16);

    // ReEncrypt to a default-store key and back.
    let to_default = kms
        .re_encrypt()
        .ciphertext_blob(blob.clone())
        .source_encryption_context("app", "e2e")
        .destination_key_id(&default_key)
        .send()
        .await
        .unwrap();
    let back = kms
        .re_encrypt()
        .ciphertext_blob(to_default.ciphertext_blob().unwrap().clone())
        .destination_key_id(&key)
        .destination_encryption_context("app", "back")
        .send()
        .await
        .unwrap();
    let back_plain = kms
        .decrypt()
        .ciphertext_blob(back.ciphertext_blob().unwrap().clone())
        .encryption_context("app", "back")
        .send()
        .await
        .unwrap();
    assert_eq!(back_plain.plaintext().unwrap().as_ref(), b"through the HSM");

    // Disable the key in the proxy: KMS answers as AWS does.
    reconfigure(&proxy, dir.path(), &token_label, &[KEY]);
    let message = eventually(|| async {
        let r = kms
            .encrypt()
            .key_id(&key)
            .plaintext(Blob::new(b"x".to_vec()))
            .send()
            .await;
        match r {
            Err(e) => {
                let se = e.into_service_error();
                assert!(se.is_kms_invalid_state_exception(), "{se:?}");
                aws_sdk_kms::error::ProvideErrorMetadata::message(&se).map(str::to_string)
            }
            Ok(_) => None,
        }
    })
    .await;
    assert!(message.contains("not enabled"), "{message}");
    // Default-store keys are not affected.
    kms.encrypt()
        .key_id(&default_key)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap();

    // Stop the HSM (the proxy now points at a token that is not there): health is
    // UNAVAILABLE and Connect fails with XKS_PROXY_NOT_REACHABLE.
    reconfigure(&proxy, dir.path(), "no-such-token", &[]);
    kms.disconnect_custom_key_store()
        .custom_key_store_id(&store)
        .send()
        .await
        .unwrap();
    assert_eq!(
        wait_final(&kms, &store, WAIT).await,
        (ConnectionStateType::Disconnected, None)
    );
    let described = kms.describe_key().key_id(&key).send().await.unwrap();
    assert_eq!(
        described.key_metadata().unwrap().key_state(),
        Some(&KeyState::Unavailable)
    );
    let outcome = eventually(|| async {
        kms.connect_custom_key_store()
            .custom_key_store_id(&store)
            .send()
            .await
            .unwrap();
        let outcome = wait_final(&kms, &store, WAIT).await;
        if outcome.0 == ConnectionStateType::Connected {
            // The reload had not happened yet: try again.
            kms.disconnect_custom_key_store()
                .custom_key_store_id(&store)
                .send()
                .await
                .unwrap();
            wait_final(&kms, &store, WAIT).await;
            return None;
        }
        Some(outcome)
    })
    .await;
    assert_eq!(
        outcome,
        (
            ConnectionStateType::Failed,
            Some(ConnectionErrorCodeType::XksProxyNotReachable)
        )
    );

    // Bring the HSM back: reconnect, and the old ciphertext decrypts again.
    reconfigure(&proxy, dir.path(), &token_label, &[]);
    kms.disconnect_custom_key_store()
        .custom_key_store_id(&store)
        .send()
        .await
        .unwrap();
    wait_final(&kms, &store, WAIT).await;
    let state = eventually(|| async {
        kms.connect_custom_key_store()
            .custom_key_store_id(&store)
            .send()
            .await
            .unwrap();
        match wait_final(&kms, &store, WAIT).await {
            (ConnectionStateType::Connected, None) => Some(ConnectionStateType::Connected),
            _ => {
                kms.disconnect_custom_key_store()
                    .custom_key_store_id(&store)
                    .send()
                    .await
                    .unwrap();
                wait_final(&kms, &store, WAIT).await;
                None
            }
        }
    })
    .await;
    assert_eq!(state, ConnectionStateType::Connected);
    let plain = kms
        .decrypt()
        .ciphertext_blob(blob)
        .encryption_context("app", "e2e")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref(), b"through the HSM");
}

/// The HSM behind Keyhold's own proxy fails and comes back while the proxy keeps running:
/// the proxy loads `keyhold-pkcs11-faults` (a PKCS#11 module forwarding to SoftHSMv2 that
/// fails chosen calls on demand). Device errors and a token pulled from its slot give AWS's
/// answers through KMS; once the HSM is healthy again everything recovers without restarting
/// or reconfiguring the proxy.
#[tokio::test]
async fn own_proxy_recovers_from_hsm_faults_without_restart() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let Some(env) = keyhold_pkcs11::softhsm::TestEnv::get() else {
        return;
    };
    let Some(shim) = keyhold_pkcs11_faults::library_path() else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "libkeyhold_pkcs11_faults.so not built but CI=true"
        );
        println!("SKIP: libkeyhold_pkcs11_faults.so not built");
        return;
    };
    let token_label = test_token(env);
    let dir = tempfile::tempdir().unwrap();
    let faults = keyhold_pkcs11_faults::FaultFile::new(dir.path().join("pkcs11-faults"));
    let faults_path = faults.path().display().to_string();
    let shim = shim.display().to_string();
    let envs = [
        (keyhold_pkcs11_faults::FILE_ENV, faults_path.as_str()),
        (keyhold_pkcs11_faults::MODULE_ENV, SOFTHSM),
    ];
    let Setup {
        proxy: _proxy,
        _server,
        kms,
        store,
        key,
    } = setup(dir.path(), &shim, &token_label, &envs).await;
    let blob = common::encrypt_blob(&kms, &key, b"behind the proxy").await;

    // The HSM answers CKR_DEVICE_ERROR to every encryption and decryption.
    faults
        .set(&[
            "fail C_EncryptInit CKR_DEVICE_ERROR",
            "fail C_DecryptInit CKR_DEVICE_ERROR",
        ])
        .unwrap();
    let (code, message) = encrypt_failure(&kms, &key).await;
    assert_eq!(code, "KMSInvalidStateException", "{message}");
    let (code, _) = failure(kms.decrypt().ciphertext_blob(blob.clone()).send().await);
    assert_eq!(code, "KMSInvalidStateException");
    faults.clear().unwrap();
    let plain = kms.decrypt().ciphertext_blob(blob.clone()).send().await;
    assert_eq!(
        plain.expect("decrypt after the device errors").plaintext(),
        Some(&Blob::new(b"behind the proxy".to_vec()))
    );

    // The token leaves its slot: the proxy's health is UNAVAILABLE, so a Connect fails with
    // XKS_PROXY_NOT_REACHABLE, and cryptographic calls fail.
    let removed = format!("remove_token {token_label}");
    faults.set(&[removed.as_str()]).unwrap();
    let (code, message) = encrypt_failure(&kms, &key).await;
    assert_eq!(code, "KMSInvalidStateException", "{message}");
    assert_eq!(
        reconnect(&kms, &store).await,
        (
            ConnectionStateType::Failed,
            Some(ConnectionErrorCodeType::XksProxyNotReachable)
        )
    );

    // The token is back: reconnect (module resets are rate-limited, so retry briefly).
    faults.clear().unwrap();
    let state = eventually(|| async {
        match reconnect(&kms, &store).await {
            (ConnectionStateType::Connected, None) => Some(ConnectionStateType::Connected),
            _ => None,
        }
    })
    .await;
    assert_eq!(state, ConnectionStateType::Connected);
    let plain = kms.decrypt().ciphertext_blob(blob).send().await;
    assert_eq!(
        plain.expect("decrypt after the token returned").plaintext(),
        Some(&Blob::new(b"behind the proxy".to_vec()))
    );
}
