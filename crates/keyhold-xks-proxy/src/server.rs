//! The HTTPS listener: TLS accept, HTTP/1.1 or HTTP/2 (ALPN), routing, SigV4, rate limits, the
//! request log line, and configuration reloads (SIGHUP and a file poll).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::backend::software::valid_key_id;
use crate::config::{Config, ConfigError};
use crate::error::{ErrorName, XksError};
use crate::ops::{self, RequestLog};
use crate::state::{Runtime, Shared, Store};

/// SigV4 service name of the XKS proxy API.
pub const SERVICE: &str = "kms-xks-proxy";

/// What a path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `/health`
    Health,
    /// `/keys/{id}/metadata`
    Metadata(String),
    /// `/keys/{id}/encrypt`
    Encrypt(String),
    /// `/keys/{id}/decrypt`
    Decrypt(String),
}

impl Operation {
    fn name(&self) -> &'static str {
        match self {
            Operation::Health => "GetHealthStatus",
            Operation::Metadata(_) => "GetKeyMetadata",
            Operation::Encrypt(_) => "Encrypt",
            Operation::Decrypt(_) => "Decrypt",
        }
    }

    fn key_id(&self) -> &str {
        match self {
            Operation::Health => "",
            Operation::Metadata(k) | Operation::Encrypt(k) | Operation::Decrypt(k) => k,
        }
    }
}

/// Splits `[/prefix]/kms/xks/v1/<op>` into the prefix and the operation.
pub fn route(path: &str) -> Option<(&str, Operation)> {
    if let Some(base) = path.strip_suffix("/health") {
        return Some((base.strip_suffix("/kms/xks/v1")?, Operation::Health));
    }
    let mut parts = path.rsplitn(4, '/');
    let op = parts.next()?;
    let id = parts.next()?;
    let keys = parts.next()?;
    let base = parts.next()?;
    if keys != "keys" || !valid_key_id(id) {
        return None;
    }
    let prefix = base.strip_suffix("/kms/xks/v1")?;
    let op = match op {
        "metadata" => Operation::Metadata(id.to_string()),
        "encrypt" => Operation::Encrypt(id.to_string()),
        "decrypt" => Operation::Decrypt(id.to_string()),
        _ => return None,
    };
    Some((prefix, op))
}

fn json_response(status: u16, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn error_response(e: &XksError) -> Response<Full<Bytes>> {
    json_response(e.name.status(), e.body())
}

/// Signs for an access key id the store does not know, so that such a request goes through
/// the same checks (and about the same work) as one with a known id and a wrong secret.
const UNKNOWN_KEY_SECRET: &str = "keyhold-xks-proxy/unknown-access-key-id/no-secret";

/// Checks the SigV4 signature against the store's credentials.
///
/// An unknown access key id is answered exactly as a wrong secret is (same status, name and
/// message: a signature mismatch), so valid ids cannot be probed; the log says which it was.
fn authenticate(
    rt: &Runtime,
    store: &Store,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<String, XksError> {
    let fail = |m: String| XksError::new(ErrorName::AuthenticationFailed, m);
    let http_parts = keyhold_sigv4::HttpRequestParts::from_http(parts, body);
    let req = http_parts.request_parts();
    let parsed = keyhold_sigv4::inspect(&req).map_err(|e| fail(e.to_string()))?;
    let secret = store.credentials.get(parsed.access_key_id());
    parsed
        .check_scope(rt.settings.region.as_deref(), SERVICE)
        .map_err(|e| fail(e.to_string()))?;
    if parsed
        .authorization
        .signed_headers
        .iter()
        .any(|h| h.eq_ignore_ascii_case("x-amz-content-sha256"))
    {
        let claimed = parts
            .headers
            .get("x-amz-content-sha256")
            .and_then(|v| v.to_str().ok());
        if claimed != Some(http_parts.payload_sha256_hex()) && claimed != Some("UNSIGNED-PAYLOAD") {
            return Err(fail(
                "x-amz-content-sha256 does not match the body".to_string(),
            ));
        }
    }
    let skew = time::Duration::seconds(i64::try_from(rt.settings.max_skew_seconds).unwrap_or(300));
    let verdict = keyhold_sigv4::verify(
        &parsed,
        &req,
        secret.map_or(UNKNOWN_KEY_SECRET, |s| s.as_str()),
        time::OffsetDateTime::now_utc(),
        skew,
    );
    match (secret, verdict) {
        (Some(_), Ok(())) => Ok(parsed.access_key_id().to_string()),
        (Some(_), Err(e)) => Err(fail(e.to_string())),
        (None, verdict) => {
            tracing::info!(
                access_key_id = parsed.access_key_id(),
                store = %store.prefix,
                "request signed with an access key id this store does not have"
            );
            // A clock-skew refusal does not depend on the id; anything else reads as a
            // signature mismatch, as a wrong secret would.
            Err(fail(match verdict {
                Err(e @ keyhold_sigv4::SigV4Error::RequestExpired { .. }) => e.to_string(),
                _ => keyhold_sigv4::SigV4Error::SignatureMismatch {
                    canonical_request: String::new(),
                    string_to_sign: String::new(),
                }
                .to_string(),
            }))
        }
    }
}

/// Largest request body: Base64 of the data and AAD limits plus room for metadata.
fn max_body(rt: &Runtime) -> usize {
    (rt.settings.max_plaintext_bytes + rt.settings.max_aad_bytes + 64) / 3 * 4 + 16 * 1024
}

/// Reads the whole request body, at most `limit` bytes.
async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, XksError> {
    Ok(Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                XksError::new(
                    ErrorName::UnsupportedOperation,
                    format!("request body above {limit} bytes"),
                )
            } else {
                XksError::new(ErrorName::Validation, "request body could not be read")
            }
        })?
        .to_bytes())
}

/// Answers a request that reaches no operation with `response`, after reading its (bounded)
/// body as for any other request: over HTTP/2 an answer sent while the body is still coming
/// ends with a stream reset, and some clients (curl 7.88) then drop the answer and report
/// only the reset.
async fn answer_after_body(
    rt: &Runtime,
    req: Request<Incoming>,
    response: Response<Full<Bytes>>,
) -> Response<Full<Bytes>> {
    if let Err(e) = read_body(req.into_body(), max_body(rt)).await {
        tracing::debug!(error = %e, "body of a refused request not read to its end");
    }
    response
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let rt = shared.current();
    let path = req.uri().path().to_string();
    if req.method() == Method::GET && path == "/ping" {
        // For load balancers: a plain GET that answers 200 without touching keys.
        let ok = json_response(200, br#"{"status":"ok"}"#.to_vec());
        return Ok(answer_after_body(&rt, req, ok).await);
    }
    let Some((prefix, op)) = route(&path) else {
        let e = XksError::new(
            ErrorName::InvalidUriPath,
            format!("no XKS operation at {path}"),
        );
        tracing::info!(path = %path, outcome = e.name.as_str(), "request refused");
        return Ok(answer_after_body(&rt, req, error_response(&e)).await);
    };
    let Some(store) = rt.stores.get(prefix).cloned() else {
        let e = XksError::new(ErrorName::InvalidUriPath, format!("no key store at {path}"));
        tracing::info!(path = %path, outcome = e.name.as_str(), "request refused");
        return Ok(answer_after_body(&rt, req, error_response(&e)).await);
    };
    if req.method() != Method::POST {
        let mut r = json_response(
            405,
            br#"{"errorName":"MethodNotAllowed","errorMessage":"XKS operations use POST"}"#
                .to_vec(),
        );
        r.headers_mut()
            .insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
        return Ok(answer_after_body(&rt, req, r).await);
    }
    let mut log = RequestLog::default();
    let result = serve_op(&rt, &store, &op, req, &mut log).await;
    let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let (outcome, response) = match result {
        Ok(body) => ("OK", json_response(200, body)),
        Err(e) => {
            if e.name == ErrorName::Internal {
                tracing::warn!(detail = %e.message, "internal error");
            }
            (e.name.as_str(), error_response(&e))
        }
    };
    tracing::info!(
        kms_request_id = log.kms_request_id.as_deref().unwrap_or("-"),
        kms_operation = log.kms_operation.as_deref().unwrap_or("-"),
        operation = op.name(),
        store = %store.prefix,
        key_id = op.key_id(),
        outcome,
        latency_us,
        "xks request"
    );
    Ok(response)
}

async fn serve_op(
    rt: &Runtime,
    store: &Store,
    op: &Operation,
    req: Request<Incoming>,
    log: &mut RequestLog,
) -> Result<Vec<u8>, XksError> {
    let (parts, body) = req.into_parts();
    let body = read_body(body, max_body(rt)).await?;
    authenticate(rt, store, &parts, &body)?;
    // After authentication, so unauthenticated traffic cannot use up KMS's share.
    if let Some(limiter) = &store.limiter {
        if !limiter.try_acquire() {
            return Err(XksError::new(
                ErrorName::Throttling,
                "request rate above this key store's limit",
            ));
        }
    }
    match op {
        Operation::Health => ops::health(rt, store, &body, log).await,
        Operation::Metadata(k) => ops::metadata(rt, store, k, &body, log).await,
        Operation::Encrypt(k) => ops::encrypt(rt, store, k, &body, log).await,
        Operation::Decrypt(k) => ops::decrypt(rt, store, k, &body, log).await,
    }
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Cannot bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// A running proxy.
pub struct ProxyServer {
    /// The bound address.
    pub local_addr: SocketAddr,
    shared: Arc<Shared>,
    config_path: Option<PathBuf>,
    stop: watch::Sender<bool>,
}

impl ProxyServer {
    /// Binds, builds the runtime, and serves in background tasks. With a `config_path`, the file
    /// is reloaded on SIGHUP and, if `reload_poll_seconds` > 0, when it changes.
    pub async fn start(config: Config, config_path: Option<PathBuf>) -> Result<Self, ServeError> {
        let runtime = Runtime::build(&config, None)?;
        let listener = TcpListener::bind(&config.server.listen)
            .await
            .map_err(|source| ServeError::Bind {
                addr: config.server.listen.clone(),
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: config.server.listen.clone(),
            source,
        })?;
        let shared = Arc::new(Shared::new(runtime));
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(accept_loop(listener, Arc::clone(&shared), stopped.clone()));
        let server = Self {
            local_addr,
            shared,
            config_path,
            stop,
        };
        server.spawn_reloaders(config.server.reload_poll_seconds, stopped);
        Ok(server)
    }

    /// Re-reads the configuration file and swaps it in; on error the old one stays.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let Some(path) = &self.config_path else {
            return Err(ConfigError::Invalid(
                "no configuration file to reload".to_string(),
            ));
        };
        reload_from(&self.shared, path)
    }

    /// Swaps in `config` directly.
    pub fn apply(&self, config: &Config) -> Result<(), ConfigError> {
        let old = self.shared.current();
        let new = Runtime::build(config, Some(&old))?;
        self.shared.replace(new);
        Ok(())
    }

    /// Stops accepting connections.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
    }

    fn spawn_reloaders(&self, poll_seconds: u64, stopped: watch::Receiver<bool>) {
        let Some(path) = self.config_path.clone() else {
            return;
        };
        #[cfg(unix)]
        {
            let shared = Arc::clone(&self.shared);
            let path = path.clone();
            let mut stopped = stopped.clone();
            tokio::spawn(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let Ok(mut hup) = signal(SignalKind::hangup()) else {
                    return;
                };
                loop {
                    tokio::select! {
                        got = hup.recv() => {
                            if got.is_none() {
                                return;
                            }
                            if let Err(e) = reload_from(&shared, &path) {
                                tracing::error!(error = %e, "reload on SIGHUP failed; keeping the old configuration");
                            }
                        }
                        _ = stopped.changed() => return,
                    }
                }
            });
        }
        if poll_seconds == 0 {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let mut stopped = stopped;
        tokio::spawn(async move {
            let stamp = |p: &PathBuf| -> Option<(SystemTime, u64)> {
                let m = std::fs::metadata(p).ok()?;
                Some((m.modified().ok()?, m.len()))
            };
            let watched = |rt: &Runtime| {
                let mut files = vec![path.clone()];
                files.extend(rt.settings.authorization_rules.clone());
                files.push(rt.settings.tls_cert.clone());
                files
            };
            let mut last: Vec<_> = watched(&shared.current()).iter().map(stamp).collect();
            let mut tick = tokio::time::interval(Duration::from_secs(poll_seconds));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => return,
                }
                let now: Vec<_> = watched(&shared.current()).iter().map(stamp).collect();
                if now != last {
                    match reload_from(&shared, &path) {
                        Ok(()) => {}
                        Err(e) => {
                            tracing::error!(error = %e, "reload after file change failed; keeping the old configuration")
                        }
                    }
                    last = watched(&shared.current()).iter().map(stamp).collect();
                }
                for slot in shared.current().backends.values() {
                    if let Err(e) = slot.backend.refresh().await {
                        tracing::warn!(backend = %slot.backend.instance_id(), error = %e, "backend refresh failed");
                    }
                }
            }
        });
    }
}

impl Drop for ProxyServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn reload_from(shared: &Shared, path: &std::path::Path) -> Result<(), ConfigError> {
    let config = Config::load(path)?;
    let old = shared.current();
    let new = Runtime::build(&config, Some(&old))?;
    for slot in new.backends.values() {
        slot.backend.forget_cached_keys();
    }
    shared.replace(new);
    tracing::info!(path = %path.display(), "configuration reloaded");
    Ok(())
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = TlsAcceptor::from(Arc::clone(&shared.current().tls));
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let handshake = acceptor.accept(tcp).into_fallible();
            let tls = match tokio::time::timeout(Duration::from_secs(10), handshake).await {
                Ok(Ok(tls)) => tls,
                Ok(Err((e, tcp))) => {
                    tracing::info!(%peer, error = %e, "TLS handshake failed");
                    crate::tls::close_after_refusal(tcp).await;
                    return;
                }
                Err(_) => {
                    tracing::info!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let service = hyper::service::service_fn(move |req| handle(Arc::clone(&shared), req));
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(e) = builder.serve_connection(TokioIo::new(tls), service).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/kms/xks/v1/health"), Some(("", Operation::Health)));
        assert_eq!(
            route("/a/b/kms/xks/v1/health"),
            Some(("/a/b", Operation::Health))
        );
        assert_eq!(
            route("/t/kms/xks/v1/keys/k.1_-x/encrypt"),
            Some(("/t", Operation::Encrypt("k.1_-x".into())))
        );
        assert_eq!(
            route("/kms/xks/v1/keys/k/metadata"),
            Some(("", Operation::Metadata("k".into())))
        );
        assert_eq!(
            route("/kms/xks/v1/keys/k/decrypt"),
            Some(("", Operation::Decrypt("k".into())))
        );
        for bad in [
            "/",
            "/kms/xks/v1",
            "/kms/xks/v2/health",
            "/kms/xks/v1/keys/k/sign",
            "/kms/xks/v1/keys//encrypt",
            "/kms/xks/v1/keys/k%2F/encrypt",
            "/kms/xks/v1/key/k/encrypt",
            "/x/kms/xks/v1/keys/k/encrypt/more",
        ] {
            assert_eq!(route(bad), None, "{bad}");
        }
    }
}
