//! Test harness: starts the real `keyhold` binary on a free loopback port and builds clients.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod admin;

/// A `keyhold serve` child process with its own data directory.
pub struct TestServer {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// The data directory (kept across restarts).
    pub data_dir: PathBuf,
    extra_args: Vec<String>,
    envs: Vec<(String, String)>,
    _tmp: Option<tempfile::TempDir>,
}

impl TestServer {
    /// Starts a server in dev mode with test mode on.
    pub fn start() -> Self {
        Self::start_with(&["--test-mode"])
    }

    /// Starts a server with extra flags.
    pub fn start_with(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// Starts a server with extra flags and extra environment variables (kept across
    /// restarts).
    pub fn start_with_env(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        let mut s = TestServer {
            child: None,
            endpoint: String::new(),
            data_dir,
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            envs: envs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            _tmp: Some(tmp),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let ready = self
            .data_dir
            .with_file_name(format!("ready-{}", uuid::Uuid::new_v4()));
        let mut command = Command::new(env!("CARGO_BIN_EXE_keyhold"));
        // KEYHOLD_TEST_AUDIT_DIR: every server of the run writes its own audit log there, for
        // scripts/audit-scan, unless the test chose its own (flag or config file).
        if let Some(dir) =
            std::env::var_os("KEYHOLD_TEST_AUDIT_DIR").filter(|_| !self.own_audit_log())
        {
            let log = Path::new(&dir).join(format!("{}.jsonl", uuid::Uuid::new_v4()));
            command.env("KEYHOLD_AUDIT_LOG", log);
        }
        let child = command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--ready-file")
            .arg(&ready)
            .args(&self.extra_args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .env_remove("KEYHOLD_ROOT_KEY")
            .env_remove("KEYHOLD_DATABASE_URL")
            .stdout(Stdio::null())
            .env(
                "KEYHOLD_LOG",
                std::env::var("KEYHOLD_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn keyhold");
        self.child = Some(child);
        let addr = wait_for_file(&ready, self.child.as_mut().unwrap());
        self.endpoint = format!("http://{addr}");
    }

    /// Whether the test configured an audit log itself (`--audit-log`, or `audit_log` in its
    /// `--config` file).
    fn own_audit_log(&self) -> bool {
        let args = &self.extra_args;
        args.iter().any(|a| a == "--audit-log")
            || args.windows(2).any(|w| {
                w[0] == "--config"
                    && std::fs::read_to_string(&w[1]).is_ok_and(|t| t.contains("audit_log"))
            })
    }

    /// Stops the process (SIGKILL: nothing is flushed on purpose, durability must not depend
    /// on a clean shutdown) and starts it again on the same data directory.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Replaces the extra flags used by the next [`TestServer::restart`] (e.g. another
    /// configuration file or root key).
    pub fn set_args(&mut self, args: &[&str]) {
        self.extra_args = args.iter().map(|s| s.to_string()).collect();
    }

    /// Kills the process.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn wait_for_file(path: &Path, child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if !text.is_empty() {
                return text.trim().to_string();
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("keyhold exited before listening: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "keyhold did not start within 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An aws-sdk-kms client for `endpoint` with static credentials.
pub fn sdk_client(endpoint: &str, access_key: &str, secret: &str) -> aws_sdk_kms::Client {
    sdk_client_in(endpoint, access_key, secret, "us-east-1")
}

/// A dev-mode client of `endpoint` in `region` (multi-Region keys).
pub fn regional(endpoint: &str, region: &str) -> aws_sdk_kms::Client {
    sdk_client_in(endpoint, "AKIDEXAMPLEKEYHOLD", "secret", region)
}

/// An aws-sdk-kms client for `endpoint` in `region` with static credentials.
pub fn sdk_client_in(
    endpoint: &str,
    access_key: &str,
    secret: &str,
    region: &str,
) -> aws_sdk_kms::Client {
    let creds = aws_credential_types::Credentials::new(access_key, secret, None, None, "test");
    let conf = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .build();
    aws_sdk_kms::Client::from_conf(conf)
}

/// A dev-mode client.
pub fn client(server: &TestServer) -> aws_sdk_kms::Client {
    sdk_client(&server.endpoint, "AKIDEXAMPLEKEYHOLD", "secret")
}

/// Sends a raw request and returns (status, parsed JSON body or Null, headers).
pub async fn raw(
    endpoint: &str,
    target: Option<&str>,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let mut req = reqwest::Client::new()
        .post(format!("{endpoint}/"))
        .body(body);
    if let Some(t) = target {
        req = req.header("X-Amz-Target", t);
    }
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    (status, json, headers)
}

/// Test mode: moves the server's clock `seconds` forward and completes what fell due;
/// returns `{"deleted": n, "rotated": m}`.
pub async fn advance_clock(server: &TestServer, seconds: u64) -> serde_json::Value {
    let resp = reqwest::Client::new()
        .post(format!("{}/keyhold-test/advance-clock", server.endpoint))
        .body(format!("{{\"seconds\": {seconds}}}"))
        .send()
        .await
        .expect("advance-clock request");
    assert_eq!(resp.status().as_u16(), 200, "advance-clock");
    resp.json().await.expect("advance-clock answer")
}

/// Encrypts `plaintext` under `key_id` and returns the ciphertext blob; panics on failure.
pub async fn encrypt_blob(
    kms: &aws_sdk_kms::Client,
    key_id: &str,
    plaintext: &[u8],
) -> aws_sdk_kms::primitives::Blob {
    kms.encrypt()
        .key_id(key_id)
        .plaintext(aws_sdk_kms::primitives::Blob::new(plaintext.to_vec()))
        .send()
        .await
        .expect("encrypt")
        .ciphertext_blob()
        .cloned()
        .expect("blob")
}

/// (code, message) of a call that must fail; panics on success.
pub fn failure<
    T: std::fmt::Debug,
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::fmt::Debug,
>(
    r: Result<T, E>,
) -> (String, String) {
    let e = r.expect_err("the call must fail");
    (
        e.code().unwrap_or_default().to_string(),
        e.message().unwrap_or_default().to_string(),
    )
}

/// Encrypts a byte under `key_id`, which must fail; (code, message).
pub async fn encrypt_failure(kms: &aws_sdk_kms::Client, key_id: &str) -> (String, String) {
    failure(
        kms.encrypt()
            .key_id(key_id)
            .plaintext(aws_sdk_kms::primitives::Blob::new(b"x".to_vec()))
            .send()
            .await,
    )
}

/// The result of `call`, repeated every 100 ms until it fails or `within` has passed: for a
/// change the server notices within a bounded time rather than at once (a CloudHSM key's
/// session copy is checked against its token every 500 ms).
pub async fn until_failure<T, E, F, Fut>(within: Duration, mut call: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + within;
    loop {
        let r = call().await;
        if r.is_err() || Instant::now() > deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The PostgreSQL URL of `KEYHOLD_TEST_DATABASE_URL`, or `None` after a visible SKIP line
/// (a failure under `CI=true`, where no test may skip).
pub fn database_url() -> Option<String> {
    const VAR: &str = "KEYHOLD_TEST_DATABASE_URL";
    match std::env::var(VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{VAR} must be set in CI"
            );
            println!("SKIP: {VAR} is not set; this PostgreSQL test did not run");
            None
        }
    }
}

/// Two test-mode nodes sharing one PostgreSQL database (`url`) in a fresh schema, with one
/// root key, as a multi-node deployment runs; `extra_config` is appended to their shared
/// configuration file. The temp dir holding the config and root key must outlive the nodes.
pub fn two_pg_nodes(
    url: &str,
    schema_prefix: &str,
    extra_config: &str,
) -> (TestServer, TestServer, tempfile::TempDir) {
    let schema = fresh_schema(schema_prefix);
    let tmp = tempfile::tempdir().expect("tmp");
    // Both nodes share the root key (secrets written by one are read by the other) and keep
    // their tables in a schema of their own.
    let root_key = tmp.path().join("root.key").display().to_string();
    let cfg = tmp.path().join("keyhold.toml");
    std::fs::write(
        &cfg,
        format!("database_schema = {schema:?}\n{extra_config}"),
    )
    .expect("config");
    let cfg = cfg.display().to_string();
    let args = [
        "--test-mode",
        "--database-url",
        url,
        "--config",
        cfg.as_str(),
        "--root-key-file",
        root_key.as_str(),
    ];
    let a = TestServer::start_with(&args);
    let b = TestServer::start_with(&args);
    (a, b, tmp)
}

/// A schema name no other run uses, so tests sharing one database never see each other.
pub fn fresh_schema(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// Decrypts `blob` and checks the plaintext is `expected`.
pub async fn assert_decrypts_to(
    kms: &aws_sdk_kms::Client,
    blob: aws_sdk_kms::primitives::Blob,
    expected: &[u8],
) {
    let out = kms
        .decrypt()
        .ciphertext_blob(blob)
        .send()
        .await
        .expect("decrypt");
    assert_eq!(out.plaintext().map(|p| p.as_ref()), Some(expected));
}
