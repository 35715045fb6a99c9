//! [`FakeXksProxy`]: a real loopback HTTPS XKS proxy that misbehaves on request.
//!
//! Tests of the client (and of the domain above it) need failures with *real* causes: a
//! genuinely expired certificate, a genuinely wrong SigV4 secret, a proxy that genuinely does
//! not answer in time. This proxy speaks TLS (rustls, certificates made with rcgen at start),
//! verifies SigV4 like a real proxy (`kms-xks-proxy`, 5-minute clock window) and answers
//! GetHealthStatus, and GetKeyMetadata, Encrypt and Decrypt from an in-memory table of
//! AES-256-GCM external keys ([`FakeXksProxy::add_key`]; spec AAD construction and
//! ciphertext data integrity values). Its [`Behaviour`] can be switched at runtime so a test
//! can break a proxy, watch the failure, fix it, and watch the recovery.
//!
//! TLS versions below 1.2 cannot be produced: rustls does not implement them, so there is no
//! "old protocol" certificate mode.

mod certs;
mod keys;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

pub use certs::WRONG_HOSTNAME;
pub use keys::{cdiv, KeyCall, CIPHERTEXT_METADATA};

use crate::wire::{self, ErrorName};

/// Which certificate the proxy presents (chosen at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertMode {
    /// A leaf for the proxy's hostname signed by the CA [`FakeXksProxy::ca_pem`] returns.
    Valid,
    /// Like `Valid` but its validity ended yesterday.
    Expired,
    /// Signed by the exposed CA but issued for [`WRONG_HOSTNAME`].
    WrongHostname,
    /// For the right hostname but signed by a CA the client is never told about.
    UnknownCa,
}

/// Which TLS versions the proxy offers (chosen at start). Both are ones KMS accepts; a
/// proxy limited to TLS 1.0/1.1 cannot be built because rustls does not implement them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersions {
    /// TLS 1.2 and 1.3.
    #[default]
    Both,
    /// TLS 1.2 only.
    Tls12Only,
    /// TLS 1.3 only.
    Tls13Only,
}

/// How the proxy answers (switchable at runtime with [`FakeXksProxy::set_behaviour`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// 200 with a healthy fleet (after path and SigV4 checks).
    Healthy,
    /// This status with an error body naming `error_name` (after path and SigV4 checks).
    /// Deliberately free-form so a test can send names the spec does not define or pair a
    /// spec name with the wrong status; for a well-formed answer use
    /// `wire::ErrorName::as_str()` and `status()`.
    Status {
        /// HTTP status.
        status: u16,
        /// `errorName`, sent as given.
        error_name: String,
    },
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with JSON missing required fields.
    WrongShape,
    /// Answer as `Healthy`, but only after `ms` milliseconds.
    Slow {
        /// Delay before answering.
        ms: u64,
    },
    /// 200 with every external key manager instance UNAVAILABLE.
    AllUnavailable,
    /// Accept the TCP connection and close it at once (before TLS). The client gets no answer
    /// at all, so it reports `NotReachable` (`XKS_PROXY_NOT_REACHABLE`), not a network error.
    CloseImmediately,
    /// Complete TLS, read the request, then send a response head promising more body than
    /// is sent and hang up (no SigV4 check in this mode). The answer had started, so the
    /// client reports `Network` (`NETWORK_ERRORS`).
    TruncatedBody,
    /// Key operations work, but Encrypt returns a `ciphertextDataIntegrityValue` that does not
    /// match what it returned.
    WrongCdiv,
    /// Key operations work, but Encrypt leaves out the `ciphertextDataIntegrityValue` it was
    /// asked for.
    NoCdiv,
    /// Key operations work, but Decrypt returns a plaintext with one bit flipped.
    WrongPlaintext,
}

/// How to start a [`FakeXksProxy`]. `Debug` never shows the secret.
#[derive(Clone)]
pub struct FakeProxyOptions {
    /// DNS name the certificate is issued for (clients map it to [`FakeXksProxy::addr`]).
    pub hostname: String,
    /// The SigV4 access key id accepted.
    pub access_key_id: String,
    /// Its secret.
    pub secret: String,
    /// The region that must be in the credential scope.
    pub region: String,
    /// The served `[/prefix]/kms/xks/v1`.
    pub uri_path: String,
    /// The certificate presented.
    pub cert_mode: CertMode,
    /// The TLS versions offered.
    pub tls_versions: TlsVersions,
}

impl std::fmt::Debug for FakeProxyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeProxyOptions")
            .field("hostname", &self.hostname)
            .field("access_key_id", &self.access_key_id)
            .field("secret", &"<redacted>")
            .field("region", &self.region)
            .field("uri_path", &self.uri_path)
            .field("cert_mode", &self.cert_mode)
            .field("tls_versions", &self.tls_versions)
            .finish()
    }
}

impl Default for FakeProxyOptions {
    /// Credentials in the shapes KMS accepts (`A-Z2-7`, 43+ Base64 characters).
    fn default() -> Self {
        Self {
            hostname: "xks.example.test".to_string(),
            access_key_id: "KEYHOLDTESTACCESSKEY2345".to_string(),
            secret: "c2VjcmV0LWZvci10aGUta2V5aG9sZC1mYWtlLXByb3h5IQ==".to_string(),
            region: "us-east-1".to_string(),
            uri_path: "/kms/xks/v1".to_string(),
            cert_mode: CertMode::Valid,
            tls_versions: TlsVersions::Both,
        }
    }
}

struct State {
    behaviour: Mutex<Behaviour>,
    credential: Mutex<(String, String)>,
    last_health: Mutex<Option<wire::HealthRequest>>,
    requests: AtomicUsize,
    keys: keys::KeyTable,
    region: String,
    uri_path: String,
    /// Wakes every live connection so it closes: a behaviour change acts like a proxy restart,
    /// so clients that keep connections alive meet the new behaviour on their next call.
    drop_connections: tokio::sync::Notify,
}

/// Poisoning only means another test thread panicked; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    fn behaviour(&self) -> Behaviour {
        lock(&self.behaviour).clone()
    }
}

/// A running fake proxy on `127.0.0.1`. Dropping it stops it.
pub struct FakeXksProxy {
    addr: SocketAddr,
    ca_pem: String,
    state: Arc<State>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for FakeXksProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeXksProxy")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FakeXksProxy {
    /// Binds `127.0.0.1:0`, makes the certificates and starts serving on the current tokio
    /// runtime.
    ///
    /// # Panics
    /// When the loopback port cannot be bound or a certificate cannot be made: test-setup
    /// failures no proxy behaviour can cause.
    pub async fn start(options: FakeProxyOptions) -> FakeXksProxy {
        let cert = certs::make(&options.hostname, options.cert_mode)
            .expect("fake XKS proxy: making certificates");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = match options.tls_versions {
            TlsVersions::Both => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersions::Tls12Only => &[&rustls::version::TLS12],
            TlsVersions::Tls13Only => &[&rustls::version::TLS13],
        };
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("fake XKS proxy: TLS versions")
            .with_no_client_auth()
            .with_single_cert(cert.chain, cert.key)
            .expect("fake XKS proxy: server certificate");
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake XKS proxy: binding 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("fake XKS proxy: local address");
        let state = Arc::new(State {
            behaviour: Mutex::new(Behaviour::Healthy),
            credential: Mutex::new((options.access_key_id, options.secret)),
            last_health: Mutex::new(None),
            requests: AtomicUsize::new(0),
            keys: keys::KeyTable::default(),
            region: options.region,
            uri_path: options.uri_path,
            drop_connections: tokio::sync::Notify::new(),
        });
        let task = tokio::spawn(serve(
            listener,
            TlsAcceptor::from(Arc::new(tls)),
            Arc::clone(&state),
        ));
        FakeXksProxy {
            addr,
            ca_pem: cert.ca_pem,
            state,
            task: Mutex::new(Some(task)),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// PEM of the CA that signs the `Valid`, `Expired` and `WrongHostname` certificates.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// Switches how the next connections and requests are answered.
    /// Live connections are closed, as when a real proxy restarts with a new configuration.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *lock(&self.state.behaviour) = behaviour;
        self.state.drop_connections.notify_waiters();
    }

    /// Replaces the accepted SigV4 credential (a rotated or mis-typed credential).
    pub fn set_credential(&self, access_key_id: &str, secret: &str) {
        *lock(&self.state.credential) = (access_key_id.to_string(), secret.to_string());
    }

    /// HTTP requests received so far (connections closed before a request are not counted).
    pub fn requests_seen(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// The last GetHealthStatus body that passed path and SigV4 checks.
    pub fn last_health_request(&self) -> Option<wire::HealthRequest> {
        lock(&self.state.last_health).clone()
    }

    /// Adds an enabled `AES_256` external key allowing `ENCRYPT` and `DECRYPT` (replacing
    /// any key with that id).
    pub fn add_key(&self, external_key_id: &str) {
        self.state.keys.add(external_key_id);
    }

    /// Deletes an external key; false if there was none.
    pub fn remove_key(&self, external_key_id: &str) -> bool {
        self.state.keys.remove(external_key_id)
    }

    /// Enables or disables an external key; false if there is none.
    pub fn set_key_enabled(&self, external_key_id: &str, enabled: bool) -> bool {
        self.state.keys.set_enabled(external_key_id, enabled)
    }

    /// Changes the `keySpec` and `keyUsage` an external key reports (and, for usage, obeys);
    /// false if there is none.
    pub fn set_key_metadata(
        &self,
        external_key_id: &str,
        key_spec: &str,
        key_usage: &[&str],
    ) -> bool {
        self.state
            .keys
            .set_metadata(external_key_id, key_spec, key_usage)
    }

    /// The key operations (GetKeyMetadata, Encrypt, Decrypt) received so far, oldest first.
    pub fn key_calls(&self) -> Vec<KeyCall> {
        self.state.keys.calls()
    }

    /// Stops listening and drops every open connection; the port then refuses connections.
    pub fn stop(&self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

impl Drop for FakeXksProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Accept loop. Connection tasks live in a `JoinSet` owned by this task, so aborting it
/// (stop) drops them all.
async fn serve(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<State>) {
    let mut connections = JoinSet::new();
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(_) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        if state.behaviour() == Behaviour::CloseImmediately {
            drop(tcp);
            continue;
        }
        connections.spawn(connection(tcp, acceptor.clone(), Arc::clone(&state)));
    }
}

async fn connection(tcp: TcpStream, acceptor: TlsAcceptor, state: Arc<State>) {
    let Ok(tls) = acceptor.accept(tcp).await else {
        // The client refused our certificate: nothing to answer.
        return;
    };
    if state.behaviour() == Behaviour::TruncatedBody {
        truncated(tls, &state).await;
        return;
    }
    let state_for_drop = Arc::clone(&state);
    let service = service_fn(move |req| {
        let state = Arc::clone(&state);
        async move { Ok::<_, Infallible>(handle(req, &state).await) }
    });
    let dropped = Arc::clone(&state_for_drop);
    let serving =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service);
    tokio::select! {
        _ = serving => {}
        _ = dropped.drop_connections.notified() => {}
    }
}

/// Reads one whole request (so closing does not reset the connection and discard what was
/// sent), then answers with a body cut short.
async fn truncated(mut tls: tokio_rustls::server::TlsStream<TcpStream>, state: &State) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                break;
            }
        }
        match tls.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    state.requests.fetch_add(1, Ordering::SeqCst);
    let partial = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n{\"xksProxyFleetSize\":";
    let _ = tls.write_all(partial).await;
    let _ = tls.flush().await;
    // Dropping without close_notify: the client sees the stream end mid-body.
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Which XKS operation a path names, relative to the served `uri_path`, and for key
/// operations the external key id.
fn route<'p>(state: &State, path: &'p str) -> Option<(&'static str, &'p str)> {
    let rest = path.strip_prefix(state.uri_path.as_str())?;
    if rest == "/health" {
        return Some(("health", ""));
    }
    let mut parts = rest.strip_prefix("/keys/")?.split('/');
    let (id, op, extra) = (parts.next()?, parts.next()?, parts.next());
    if id.is_empty() || extra.is_some() {
        return None;
    }
    ["metadata", "encrypt", "decrypt"]
        .into_iter()
        .find(|known| *known == op)
        .map(|op| (op, id))
}

async fn handle(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return error(ErrorName::Validation, "unreadable body");
    };
    state.requests.fetch_add(1, Ordering::SeqCst);
    let behaviour = state.behaviour();
    if let Behaviour::Slow { ms } = behaviour {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    let Some((operation, key_id)) = route(state, parts.uri.path()) else {
        return error(ErrorName::InvalidUriPath, "no such path");
    };
    if parts.method != hyper::Method::POST {
        // Not a spec pairing (the spec has no 405), kept as this proxy has always answered.
        return error_raw(405, ErrorName::Validation.as_str(), "method not allowed");
    }
    if let Err(why) = check_signature(state, &parts, &body) {
        return error(ErrorName::AuthenticationFailed, &why);
    }
    match behaviour {
        // Deliberate fault: any status with any name, spec-defined or not, exactly as set.
        Behaviour::Status { status, error_name } => error_raw(status, &error_name, "as configured"),
        Behaviour::Garbage => respond(200, "<html>surely not JSON</html>"),
        Behaviour::WrongShape => respond(200, r#"{"xksProxyFleetSize":1,"ekmVendor":"x"}"#),
        _ if operation != "health" => {
            let twist = match behaviour {
                Behaviour::WrongCdiv => keys::Twist::WrongCdiv,
                Behaviour::NoCdiv => keys::Twist::NoCdiv,
                Behaviour::WrongPlaintext => keys::Twist::WrongPlaintext,
                _ => keys::Twist::None,
            };
            let (status, body) = state.keys.handle(operation, key_id, &body, twist);
            respond(status, &body)
        }
        Behaviour::AllUnavailable => health(state, &body, "UNAVAILABLE"),
        _ => health(state, &body, "ACTIVE"),
    }
}

fn health(state: &State, body: &[u8], status: &str) -> Response<Full<Bytes>> {
    let Ok(request) = serde_json::from_slice::<wire::HealthRequest>(body) else {
        return error(ErrorName::Validation, "bad health request");
    };
    *lock(&state.last_health) = Some(request);
    let answer = wire::HealthResponse {
        xks_proxy_fleet_size: 1,
        xks_proxy_vendor: "Keyhold".to_string(),
        xks_proxy_model: "FakeXksProxy".to_string(),
        ekm_vendor: "Keyhold test EKM".to_string(),
        ekm_fleet_details: ["ekm-1", "ekm-2"]
            .into_iter()
            .map(|id| wire::EkmFleetDetail {
                id: id.to_string(),
                model: "fake".to_string(),
                health_status: status.to_string(),
            })
            .collect(),
    };
    match serde_json::to_string(&answer) {
        Ok(json) => respond(200, &json),
        Err(_) => error(ErrorName::Internal, "serializing health"),
    }
}

/// SigV4 as the spec asks a proxy to check it; the error text is for the error body.
fn check_signature(state: &State, parts: &http::request::Parts, body: &[u8]) -> Result<(), String> {
    let headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v)))
        .collect();
    let hash = keyhold_sigv4::payload_hash(body);
    let request = keyhold_sigv4::RequestParts {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        payload_sha256_hex: &hash,
    };
    let parsed = keyhold_sigv4::inspect(&request).map_err(|e| e.to_string())?;
    let (access_key_id, secret) = lock(&state.credential).clone();
    if parsed.access_key_id() != access_key_id {
        return Err("unknown access key id".to_string());
    }
    parsed
        .check_scope(Some(&state.region), crate::client::SIGV4_SERVICE)
        .map_err(|e| e.to_string())?;
    keyhold_sigv4::verify(
        &parsed,
        &request,
        &secret,
        time::OffsetDateTime::now_utc(),
        time::Duration::minutes(5),
    )
    .map_err(|e| e.to_string())
}

/// An error answer as the spec defines it: `name` with the status the spec gives it.
fn error(name: ErrorName, message: &str) -> Response<Full<Bytes>> {
    error_raw(name.status(), name.as_str(), message)
}

/// An error answer with any status and any `errorName`. Only for the faults a test asks for
/// ([`Behaviour::Status`]) and the non-spec 405; everything else goes through [`error`].
fn error_raw(status: u16, error_name: &str, message: &str) -> Response<Full<Bytes>> {
    respond(
        status,
        &error_json(error_name, message.chars().take(200).collect()),
    )
}

/// The JSON error body `{"errorName", "errorMessage"}`.
fn error_json(error_name: &str, message: String) -> String {
    let body = wire::ErrorBody {
        error_name: error_name.to_string(),
        error_message: Some(message),
    };
    // Serializing two strings cannot fail; should it, answer the bare internal error.
    serde_json::to_string(&body)
        .unwrap_or_else(|_| format!(r#"{{"errorName":"{}"}}"#, ErrorName::Internal))
}

fn respond(status: u16, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    fn debug_redacts_the_proxy_secret() {
        let secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==";
        let opts = FakeProxyOptions {
            hostname: "xks.example".into(),
            access_key_id: "AKIAFAKEPROXYAAAAAAA".into(),
            secret: secret.into(),
            region: "us-east-1".into(),
            uri_path: "/kms/xks/v1".into(),
            cert_mode: CertMode::Valid,
            tls_versions: TlsVersions::Both,
        };
        let shown = format!("{opts:?}");
        assert!(!shown.contains(secret), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
