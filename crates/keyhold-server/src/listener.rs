//! The HTTP(S) listener: accepts connections (plain or TLS via rustls, HTTP/1.1 and HTTP/2),
//! and hands each request to [`crate::router::handle`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use crate::router::{handle, AppState};

/// A running server. Dropping it does not stop it; call [`RunningServer::shutdown`].
pub struct RunningServer {
    /// The address actually bound (useful with port 0).
    pub local_addr: SocketAddr,
    /// `http` or `https`.
    pub scheme: &'static str,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// The endpoint URL clients should use.
    pub fn endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.local_addr)
    }

    /// Stops accepting connections and waits for the accept loop to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Waits until the accept loop ends (it ends only on shutdown or a fatal error).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

fn load_tls(cert: &Path, key: &Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert).with_context(|| format!("opening {}", cert.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .with_context(|| format!("reading certificates from {}", cert.display()))?;
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key).with_context(|| format!("opening {}", key.display()))?,
    ))
    .with_context(|| format!("reading private key from {}", key.display()))?
    .with_context(|| format!("no private key in {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("building the TLS configuration")?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// Binds the listener and starts serving in the background.
///
/// Slow or idle clients cannot hold connections: a connection must complete its TLS handshake
/// within `tls_handshake_timeout` and start its first request within `header_read_timeout`;
/// HTTP/1 request headers must arrive within `header_read_timeout` (hyper's
/// `header_read_timeout`, which also closes idle keep-alive connections); HTTP/2 connections
/// are pinged every `header_read_timeout` and closed when a ping goes unanswered for as long.
/// At most `max_connections` are open at once: beyond that, the accept loop waits (new
/// connections queue in the kernel's backlog) and says so once in a WARN line. Accept errors
/// (e.g. `EMFILE`) are logged and retried after a short, growing pause instead of spinning.
pub async fn start(
    listen: SocketAddr,
    tls: Option<(&Path, &Path)>,
    state: Arc<AppState>,
) -> anyhow::Result<RunningServer> {
    let acceptor = match tls {
        Some((cert, key)) => Some(load_tls(cert, key)?),
        None => None,
    };
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let local_addr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    let limits = Limits::of(&state.settings);
    let task = tokio::spawn(accept_loop(listener, acceptor, state, limits, stopped));
    Ok(RunningServer {
        local_addr,
        scheme,
        stop,
        task,
    })
}

/// The front door's limits, from [`crate::Settings`].
#[derive(Debug, Clone, Copy)]
struct Limits {
    header_read_timeout: Duration,
    tls_handshake_timeout: Duration,
    max_connections: usize,
}

impl Limits {
    fn of(settings: &crate::Settings) -> Self {
        Self {
            header_read_timeout: settings.header_read_timeout,
            tls_handshake_timeout: settings.tls_handshake_timeout,
            max_connections: settings.max_connections,
        }
    }
}

/// The first pause after an accept error; it doubles up to [`MAX_ACCEPT_BACKOFF`] while
/// errors continue.
const MIN_ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// The longest pause after an accept error.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<AppState>,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut at_cap = false;
    let mut backoff = MIN_ACCEPT_BACKOFF;
    loop {
        // A slot first: at the cap, nothing more is accepted until a connection closes.
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => {
                at_cap = false;
                p
            }
            Err(_) => {
                if !at_cap {
                    at_cap = true;
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached: {} connections are open; new connections \
                         wait until one closes (raise max_connections in the config file or \
                         --max-connections)",
                        limits.max_connections
                    );
                }
                tokio::select! {
                    p = slots.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    _ = stopped.changed() => break,
                }
            }
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stopped.changed() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => {
                backoff = MIN_ACCEPT_BACKOFF;
                x
            }
            Err(e) => {
                // EMFILE, ENFILE, ENOBUFS...: retrying at once would spin; pause, growing the
                // pause while the errors go on.
                tracing::warn!(error = %e, pause_ms = backoff.as_millis() as u64, "accept failed; pausing before accepting again");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stopped.changed() => break,
                }
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let state = state.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            serve(tcp, peer, acceptor, state, limits).await;
            drop(permit);
        });
    }
}

/// Serves one connection until it ends or a limit closes it.
async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<AppState>,
    limits: Limits,
) {
    let info = ConnectionInfo {
        peer,
        tls: acceptor.is_some(),
    };
    // Set once the connection's first request has arrived (its headers are complete).
    let started = Arc::new(AtomicBool::new(false));
    let seen = started.clone();
    let svc = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        seen.store(true, Ordering::Relaxed);
        req.extensions_mut().insert(info);
        let state = state.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(state, req).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_read_timeout)
        .keep_alive_timeout(limits.header_read_timeout);
    let result = match acceptor {
        Some(acceptor) => {
            match tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let conn = builder.serve_connection(TokioIo::new(tls), svc);
                    first_request_within(conn, &started, limits.header_read_timeout, peer).await
                }
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out; closing");
                    return;
                }
            }
        }
        None => {
            let conn = builder.serve_connection(TokioIo::new(tcp), svc);
            first_request_within(conn, &started, limits.header_read_timeout, peer).await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Drives `conn`, closing it when no request has arrived within `timeout`. This covers what
/// hyper's own timers do not: a client that sends nothing, or too little to tell HTTP/1 from
/// HTTP/2, or an HTTP/2 preface without a request.
async fn first_request_within<F, E>(
    conn: F,
    started: &AtomicBool,
    timeout: Duration,
    peer: SocketAddr,
) -> Result<(), E>
where
    F: std::future::Future<Output = Result<(), E>>,
{
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => r,
        _ = tokio::time::sleep(timeout) => {
            if started.load(Ordering::Relaxed) {
                conn.await
            } else {
                tracing::debug!(%peer, "no request within the header read timeout; closing");
                Ok(())
            }
        }
    }
}

/// What the listener knows of a request's connection, passed to the router as a request
/// extension (for `aws:SourceIp` and `aws:SecureTransport`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
}
