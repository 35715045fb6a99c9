//! End-to-end: the front door's hardening. Slow and idle clients are closed after the header
//! read timeout, and stalled TLS handshakes after the handshake timeout, while real requests
//! are served; the connection cap holds new connections
//! (with one WARN line) until one closes; test mode exists only with `--test-mode` and, under
//! `--auth strict`, only for admin access keys; logs carry no colour codes when piped and
//! `--log-format json` writes JSON lines.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use common::{client, sdk_client, TestServer};

const AKID_ADMIN: &str = "AKIAKEYHOLDADMIN0001";
const AKID_PLAIN: &str = "AKIAKEYHOLDPLAIN0001";
const SECRET: &str = "kEyHoLdTeStSeCrEt0000000000000000000000000";
const ACCOUNT: &str = "111122223333";

/// Generous bound for the server to close a connection it should close (the configured
/// timeouts are 1–2 s); no assertion is about speed.
const CLOSE_BOUND: Duration = Duration::from_secs(60);

/// The address of a `http://host:port` endpoint.
fn addr_of(endpoint: &str) -> String {
    endpoint.trim_start_matches("http://").to_string()
}

/// Waits until the server closes `conn` (end of stream or reset); panics after
/// [`CLOSE_BOUND`]. Returns what the server sent before closing, if anything.
async fn closed_by_server(mut conn: TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + CLOSE_BOUND;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return seen,
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server left a slow connection open for {CLOSE_BOUND:?}"),
        }
    }
}

async fn generate_random(kms: &aws_sdk_kms::Client) {
    let out = kms
        .generate_random()
        .number_of_bytes(32)
        .send()
        .await
        .expect("GenerateRandom is served");
    assert_eq!(out.plaintext().map(|b| b.as_ref().len()), Some(32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_closed_after_the_header_read_timeout_while_requests_are_served() {
    let server = TestServer::start_with(&["--header-read-timeout-secs", "2"]);
    let addr = addr_of(&server.endpoint);
    // Three kinds of slow client: half an HTTP/1.1 header, nothing at all, and half of the
    // HTTP/2 preface (too little for the server to tell the protocol).
    let mut conns = Vec::new();
    for i in 0..300 {
        let mut c = TcpStream::connect(&addr).await.expect("connect");
        match i % 3 {
            0 => c
                .write_all(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: TrentSer")
                .await
                .expect("half a header"),
            1 => {}
            _ => c
                .write_all(b"PRI * HTTP/2.0\r\n")
                .await
                .expect("half a preface"),
        }
        conns.push(c);
    }
    // Real requests are served while the slow connections are open.
    let kms = client(&server);
    for _ in 0..5 {
        generate_random(&kms).await;
    }
    let closers: Vec<_> = conns
        .into_iter()
        .map(|c| tokio::spawn(closed_by_server(c)))
        .collect();
    for c in closers {
        let sent = c.await.expect("reader");
        // Nothing but (at most) an HTTP error status is ever sent to a slow client.
        assert!(
            sent.is_empty() || sent.starts_with(b"HTTP/1.1 4"),
            "{}",
            String::from_utf8_lossy(&sent)
        );
    }
    // And the server still serves.
    generate_random(&client(&server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshakes_that_stall_are_closed_while_https_requests_are_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let cert_pem = cert.cert.pem();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, &cert_pem).expect("write cert");
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("write key");
    // The header timeout is longer than the bound, so only the handshake timeout can close
    // these connections in time.
    let server = TestServer::start_with(&[
        "--tls-cert",
        cert_path.to_str().expect("utf-8 path"),
        "--tls-key",
        key_path.to_str().expect("utf-8 path"),
        "--tls-handshake-timeout-secs",
        "2",
        "--header-read-timeout-secs",
        "600",
    ]);
    let addr = addr_of(&server.endpoint);
    let mut conns = Vec::new();
    for i in 0..100 {
        let mut c = TcpStream::connect(&addr).await.expect("connect");
        if i % 2 == 0 {
            // The header of a TLS handshake record promising a ClientHello that never comes.
            c.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
                .await
                .expect("half a ClientHello");
        }
        conns.push(c);
    }
    let port = addr.rsplit(':').next().expect("port").to_string();
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("ca"))
        .resolve(
            "localhost",
            format!("127.0.0.1:{port}").parse().expect("addr"),
        )
        .build()
        .expect("client");
    let list_keys = || {
        https
            .post(format!("https://localhost:{port}/"))
            .header("X-Amz-Target", "TrentService.ListKeys")
            .header("Content-Type", "application/x-amz-json-1.1")
            .body("{}")
            .send()
    };
    let served = list_keys()
        .await
        .expect("HTTPS request while handshakes stall");
    assert_eq!(served.status().as_u16(), 200);
    let closers: Vec<_> = conns
        .into_iter()
        .map(|c| tokio::spawn(closed_by_server(c)))
        .collect();
    for c in closers {
        let sent = c.await.expect("reader");
        // At most a TLS alert record, never application data.
        assert!(sent.is_empty() || sent[0] == 0x15, "{sent:?}");
    }
    let after = list_keys().await.expect("HTTPS request after");
    assert_eq!(after.status().as_u16(), 200);
}

/// A `keyhold serve` whose standard error is captured line by line.
struct LoggedServer {
    child: Child,
    endpoint: String,
    lines: Arc<Mutex<Vec<String>>>,
    _tmp: tempfile::TempDir,
}

impl LoggedServer {
    /// Starts `keyhold serve` with `args` on a free port (`--listen` may be overridden by
    /// `listen`), `KEYHOLD_LOG=info`, standard error piped.
    fn start(listen: &str, args: &[&str]) -> Self {
        let tmp = tempfile::tempdir().expect("tmp");
        let ready = tmp.path().join("ready");
        let mut child = Command::new(env!("CARGO_BIN_EXE_keyhold"))
            .arg("serve")
            .arg("--listen")
            .arg(listen)
            .arg("--data-dir")
            .arg(tmp.path().join("data"))
            .arg("--ready-file")
            .arg(&ready)
            .args(args)
            .env_remove("KEYHOLD_ROOT_KEY")
            .env_remove("KEYHOLD_DATABASE_URL")
            .env("KEYHOLD_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn keyhold");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("lines").push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let bound = loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                if !text.is_empty() {
                    break text.trim().to_string();
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "keyhold exited: {status}: {:?}",
                    lines.lock().expect("lines")
                );
            }
            assert!(Instant::now() < deadline, "keyhold did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        // A wildcard listener is reached through loopback.
        let port = bound.rsplit(':').next().expect("port").to_string();
        Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            lines,
            _tmp: tmp,
        }
    }

    /// Waits until a captured line satisfies `pred`; panics with the log after a generous
    /// bound.
    fn wait_for_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + CLOSE_BOUND;
        loop {
            if let Some(l) = self.lines.lock().expect("lines").iter().find(|l| pred(l)) {
                return l.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no log line {what}: {:?}",
                self.lines.lock().expect("lines")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server and returns every captured line.
    fn finish(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Let the reader thread drain the pipe.
        std::thread::sleep(Duration::from_millis(200));
        let lines = self.lines.lock().expect("lines").clone();
        lines
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_holds_new_connections_until_one_closes() {
    let server = LoggedServer::start(
        "127.0.0.1:0",
        &["--max-connections", "4", "--header-read-timeout-secs", "1"],
    );
    let addr = addr_of(&server.endpoint);
    // Four idle connections take every slot.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(&addr).await.expect("connect"));
    }
    // A fifth waits in the backlog; it is served once the idle ones time out.
    let kms = sdk_client(&server.endpoint, "AKIAANYTHING00000001", "anything");
    generate_random(&kms).await;
    let warn = server.wait_for_line("about the connection cap", |l| {
        l.contains("WARN") && l.contains("max_connections")
    });
    assert!(warn.contains("--max-connections"), "{warn}");
    for c in idle {
        closed_by_server(c).await;
    }
    let lines = server.finish();
    let warnings = lines
        .iter()
        .filter(|l| l.contains("connection limit reached"))
        .count();
    assert!(warnings >= 1, "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piped_logs_have_no_colour_codes_and_json_logs_are_json_lines() {
    // Text: no ANSI escape sequence when standard error is a pipe.
    let text = LoggedServer::start("127.0.0.1:0", &[]);
    generate_random(&sdk_client(&text.endpoint, "AKIAANYTHING00000001", "x")).await;
    text.wait_for_line("for the request", |l| l.contains("request"));
    let lines = text.finish();
    assert!(!lines.is_empty());
    for l in &lines {
        assert!(
            !l.contains("\x1b["),
            "colour code in a piped log line: {l:?}"
        );
    }

    // JSON, on a wildcard address with dev authentication: every line is a JSON object, and
    // one is the WARN about dev authentication off loopback.
    let json = LoggedServer::start("0.0.0.0:0", &["--log-format", "json"]);
    generate_random(&sdk_client(&json.endpoint, "AKIAANYTHING00000001", "x")).await;
    json.wait_for_line("for the request", |l| l.contains("\"request\""));
    let lines = json.finish();
    let mut warned = false;
    for l in lines.iter().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}"));
        assert!(v.is_object(), "{l}");
        if v["level"] == "WARN"
            && v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("non-loopback"))
        {
            warned = true;
        }
    }
    assert!(warned, "no WARN about dev auth off loopback: {lines:?}");
}

/// Runs `keyhold serve` expecting it to refuse to start; returns its standard error.
fn refused(args: &[&str], envs: &[(&str, &str)]) -> String {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = Command::new(env!("CARGO_BIN_EXE_keyhold"))
        .arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .args(args)
        .envs(envs.iter().copied())
        .env_remove("KEYHOLD_ROOT_KEY")
        .stdin(Stdio::null())
        .output()
        .expect("run keyhold");
    assert!(
        !out.status.success(),
        "keyhold started with {args:?} {envs:?}"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn test_mode_comes_only_from_the_command_line_flag() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("keyhold.toml");
    std::fs::write(&cfg, "test_mode = true\n").expect("config");
    let cfg = cfg.display().to_string();
    let err = refused(&["--config", &cfg], &[]);
    assert!(
        err.contains("test_mode") && err.contains("--test-mode"),
        "{err}"
    );

    let err = refused(&[], &[("KEYHOLD_TEST_MODE", "true")]);
    assert!(
        err.contains("KEYHOLD_TEST_MODE") && err.contains("--test-mode"),
        "{err}"
    );

    // Fault injection is a test-mode facility.
    let faults = tmp.path().join("faults.toml");
    std::fs::write(
        &faults,
        "[cloudhsm]\nenabled = true\nfault_injection = true\n",
    )
    .expect("config");
    let faults = faults.display().to_string();
    let err = refused(&["--config", &faults], &[]);
    assert!(
        err.contains("fault_injection") && err.contains("--test-mode"),
        "{err}"
    );
}

/// A raw POST to `path` signed (SigV4, service `kms`) with `akid`, or unsigned.
async fn post_test_endpoint(
    endpoint: &str,
    path: &str,
    body: &str,
    akid: Option<&str>,
) -> (u16, serde_json::Value) {
    let host = addr_of(endpoint);
    let mut headers = vec![
        ("host".to_string(), host),
        ("content-type".to_string(), "application/json".to_string()),
    ];
    if let Some(akid) = akid {
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let hash = keyhold_sigv4::payload_hash(body.as_bytes());
        let parts = keyhold_sigv4::RequestParts {
            method: "POST",
            raw_path: path,
            raw_query: "",
            headers: &pairs,
            payload_sha256_hex: &hash,
        };
        let out = keyhold_sigv4::sign(
            &parts,
            akid,
            SECRET,
            "us-east-1",
            "kms",
            time::OffsetDateTime::now_utc(),
            &["host", "content-type", "x-amz-date"],
        )
        .expect("sign");
        for (k, v) in out.headers() {
            headers.push((k.to_string(), v.to_string()));
        }
    }
    let mut req = reqwest::Client::new()
        .post(format!("{endpoint}{path}"))
        .body(body.to_string());
    for (k, v) in headers {
        if k != "host" {
            req = req.header(k, v);
        }
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_mode_test_endpoints_need_an_admin_signature() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("keyhold.toml");
    std::fs::write(
        &cfg,
        format!(
            "auth = \"strict\"\n\
             [[access_keys]]\naccess_key_id = \"{AKID_ADMIN}\"\nsecret_access_key = \"{SECRET}\"\naccount_id = \"{ACCOUNT}\"\nadmin = true\n\
             [[access_keys]]\naccess_key_id = \"{AKID_PLAIN}\"\nsecret_access_key = \"{SECRET}\"\naccount_id = \"{ACCOUNT}\"\n"
        ),
    )
    .expect("config");
    let rk = dir.path().join("root.key");
    std::fs::write(&rk, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n").expect("root key");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&rk, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let server = TestServer::start_with(&[
        "--test-mode",
        "--config",
        cfg.to_str().expect("utf-8"),
        "--root-key-file",
        rk.to_str().expect("utf-8"),
    ]);
    let kms = sdk_client(&server.endpoint, AKID_PLAIN, SECRET);
    kms.create_key().send().await.expect("create a key");

    for (path, body) in [
        ("/moto-api/reset", ""),
        ("/keyhold-test/advance-clock", r#"{"seconds": 1}"#),
        ("/keyhold-test/complete-pending-deletions", ""),
    ] {
        for akid in [None, Some(AKID_PLAIN), Some("AKIAUNKNOWNKEY000000")] {
            let (status, json) = post_test_endpoint(&server.endpoint, path, body, akid).await;
            assert_eq!(status, 403, "{path} {akid:?}: {json}");
            assert_eq!(json["__type"], "AccessDeniedException", "{path} {akid:?}");
        }
    }
    let keys = kms.list_keys().send().await.expect("list");
    assert_eq!(keys.keys().len(), 1, "nothing was reset");

    let (status, json) = post_test_endpoint(
        &server.endpoint,
        "/keyhold-test/advance-clock",
        r#"{"seconds": 1}"#,
        Some(AKID_ADMIN),
    )
    .await;
    assert_eq!(status, 200, "{json}");
    let (status, json) =
        post_test_endpoint(&server.endpoint, "/moto-api/reset", "", Some(AKID_ADMIN)).await;
    assert_eq!(status, 200, "{json}");
    let keys = kms.list_keys().send().await.expect("list");
    assert!(keys.keys().is_empty(), "the admin's reset wiped state");
}
