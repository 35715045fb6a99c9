//! The transport of [`XksClient`] calls: the target checked, the request signed with SigV4,
//! and sent on a kept-alive connection from the pool or on a fresh one, each failure
//! classified by the phase it happened in.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use keyhold_core::ports::xks::{XksConnectivity, XksFailure, XksTarget};
use rustls::pki_types::ServerName;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{XksClient, SIGV4_SERVICE};
use crate::classify::{classify_transport, Phase};

/// Answers larger than this are not proxy answers (the largest legitimate one, Decrypt of
/// ~4300 bytes, is well under 16 KiB).
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Where a call's TCP connection goes.
#[derive(Debug, Clone)]
enum Dial {
    Addr(SocketAddr),
    Host(String),
}

/// A signed request ready to be sent.
pub(super) struct Prepared {
    dial: Dial,
    server_name: ServerName<'static>,
    request: http::Request<Full<Bytes>>,
}

/// Idle connections kept per pool key; more than this are closed instead of kept.
const MAX_IDLE_PER_KEY: usize = 64;
/// Idle connections older than this are not reused (proxies close idle connections too).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A kept-alive connection: its request sender and the task driving it.
struct Idle {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    _driver: AbortOnDrop,
    since: std::time::Instant,
}

/// Idle connections by `"<dial>|<server name>"`.
#[derive(Clone, Default)]
pub(super) struct Pool(Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<Idle>>>>);

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pool(..)")
    }
}

impl Pool {
    fn take(&self, key: &str) -> Option<Idle> {
        let mut map = self.0.lock().ok()?;
        let idle = map.get_mut(key)?;
        while let Some(c) = idle.pop() {
            if !c.sender.is_closed() && c.since.elapsed() < IDLE_TIMEOUT {
                return Some(c);
            }
        }
        None
    }

    fn put(&self, key: String, mut conn: Idle) {
        if conn.sender.is_closed() {
            return;
        }
        conn.since = std::time::Instant::now();
        if let Ok(mut map) = self.0.lock() {
            let idle = map.entry(key).or_default();
            if idle.len() < MAX_IDLE_PER_KEY {
                idle.push(conn);
            }
        }
    }
}

impl XksClient {
    /// Validates the target, picks the address to dial and signs the request. Everything here
    /// is local, so failures are configuration problems (`VpcEndpointService*`, `Internal`).
    pub(super) fn prepare<Req: Serialize>(
        &self,
        target: &XksTarget,
        suffix: &str,
        request: &Req,
    ) -> Result<Prepared, XksFailure> {
        let host = endpoint_host(&target.uri_endpoint)?;
        check_path(&target.uri_path)?;
        let dial = match &target.connectivity {
            XksConnectivity::PublicEndpoint => match self.connect_to.get(&host) {
                Some(addr) => Dial::Addr(*addr),
                None => Dial::Host(host.clone()),
            },
            XksConnectivity::VpcEndpointService { service_name, .. } => {
                let (addr, svc) = self
                    .vpc
                    .get(service_name)
                    .ok_or(XksFailure::VpcEndpointServiceNotFound)?;
                svc.validate(&target.region)?;
                Dial::Addr(*addr)
            }
        };
        let server_name = ServerName::try_from(host.clone()).map_err(|e| internal(&e))?;
        let path = format!("{}{}", target.uri_path, suffix);
        let body = serde_json::to_vec(request).map_err(|e| internal(&e))?;
        let secret = std::str::from_utf8(target.secret_access_key.expose())
            .map_err(|_| internal(&"the XKS secret access key is not UTF-8"))?;
        let payload_hash = keyhold_sigv4::payload_hash(&body);
        let headers = [("host", host.as_str())];
        let parts = keyhold_sigv4::RequestParts {
            method: "POST",
            raw_path: &path,
            raw_query: "",
            headers: &headers,
            payload_sha256_hex: &payload_hash,
        };
        let signed = keyhold_sigv4::sign(
            &parts,
            &target.access_key_id,
            secret,
            &target.region,
            SIGV4_SERVICE,
            time::OffsetDateTime::now_utc(),
            &["host", "x-amz-date"],
        )
        .map_err(|e| internal(&e))?;
        let request = http::Request::builder()
            .method(http::Method::POST)
            .uri(path.as_str())
            .header(http::header::HOST, host.as_str())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::CONTENT_LENGTH, body.len())
            .header("x-amz-date", signed.amz_date.as_str())
            .header(http::header::AUTHORIZATION, signed.authorization.as_str())
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| internal(&e))?;
        Ok(Prepared {
            dial,
            server_name,
            request,
        })
    }

    /// Sends the request on a pooled connection when one is idle, else on a fresh one.
    pub(super) async fn exchange(&self, p: Prepared) -> Result<(u16, Bytes), XksFailure> {
        let key = format!("{:?}|{:?}", p.dial, p.server_name);
        let (parts, body) = p.request.into_parts();
        let rebuild = || http::Request::from_parts(parts.clone(), body.clone());
        while let Some(mut conn) = self.pool.take(&key) {
            if conn.sender.ready().await.is_err() {
                continue;
            }
            match conn.sender.send_request(rebuild()).await {
                Ok(response) => {
                    let answer = read_answer(response).await?;
                    self.pool.put(key, conn);
                    return Ok(answer);
                }
                // The proxy closed or reset a kept-alive connection before answering: not a
                // proxy failure yet; try a fresh connection.
                Err(e) => {
                    tracing::debug!(error = %e, "pooled XKS connection failed; reconnecting");
                    continue;
                }
            }
        }
        let mut conn = self.connect(&p.dial, p.server_name).await?;
        let response = conn
            .sender
            .send_request(rebuild())
            .await
            .map_err(|e| classify_transport(Phase::Exchange, &e))?;
        let answer = read_answer(response).await?;
        self.pool.put(key, conn);
        Ok(answer)
    }

    /// Connect and handshake: each step's errors are classified by its phase.
    async fn connect(
        &self,
        dial: &Dial,
        server_name: ServerName<'static>,
    ) -> Result<Idle, XksFailure> {
        let tcp = match dial {
            Dial::Addr(addr) => TcpStream::connect(*addr).await,
            Dial::Host(host) => TcpStream::connect((host.as_str(), 443)).await,
        }
        .map_err(|e| classify_transport(Phase::Connect, &e))?;
        // Small request/response pairs: do not wait for Nagle.
        let _ = tcp.set_nodelay(true);
        let tls = TlsConnector::from(Arc::clone(&self.tls))
            .connect(server_name, tcp)
            .await
            .map_err(|e| classify_transport(Phase::Handshake, &e))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| classify_transport(Phase::Exchange, &e))?;
        let driver = AbortOnDrop(tokio::spawn(async move {
            // Its errors surface through `send_request` and the body.
            let _ = conn.await;
        }));
        Ok(Idle {
            sender,
            _driver: driver,
            since: std::time::Instant::now(),
        })
    }
}

/// Reads a whole (bounded) answer.
async fn read_answer(
    response: http::Response<hyper::body::Incoming>,
) -> Result<(u16, Bytes), XksFailure> {
    let status = response.status().as_u16();
    let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                XksFailure::InvalidResponse {
                    detail: format!("body larger than {MAX_BODY_BYTES} bytes"),
                }
            } else {
                classify_transport(Phase::Body, &*e)
            }
        })?
        .to_bytes();
    Ok((status, body))
}

/// Aborts the connection driver when the call ends or its budget runs out, so no task
/// outlives the call.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn internal(e: &dyn std::fmt::Display) -> XksFailure {
    XksFailure::Internal {
        detail: e.to_string(),
    }
}

/// `https://host` → lower-cased `host`; KMS endpoints have no port, path or user info.
fn endpoint_host(uri_endpoint: &str) -> Result<String, XksFailure> {
    let host = uri_endpoint
        .strip_prefix("https://")
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        })
        .ok_or_else(|| internal(&format!("invalid XKS URI endpoint {uri_endpoint:?}")))?;
    Ok(host.to_ascii_lowercase())
}

fn check_path(uri_path: &str) -> Result<(), XksFailure> {
    let ok = uri_path.starts_with('/')
        && uri_path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_'));
    if ok {
        Ok(())
    } else {
        Err(internal(&format!("invalid XKS URI path {uri_path:?}")))
    }
}

/// `/keys/{id}/{op}`; ids are 1–128 of `A-Z a-z 0-9 - . _`, so no escaping is needed.
pub(super) fn key_suffix(external_key_id: &str, op: &str) -> Result<String, XksFailure> {
    let ok = (1..=128).contains(&external_key_id.len())
        && external_key_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if ok {
        Ok(format!("/keys/{external_key_id}/{op}"))
    } else {
        Err(internal(&format!(
            "invalid external key id {external_key_id:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_and_path_checks() {
        assert_eq!(
            endpoint_host("https://XKS.Example.test").ok(),
            Some("xks.example.test".to_string())
        );
        for bad in [
            "http://x.test",
            "https://",
            "https://x.test:443",
            "https://x.test/p",
        ] {
            assert!(endpoint_host(bad).is_err(), "{bad}");
        }
        assert!(check_path("/prefix_1/kms/xks/v1").is_ok());
        assert!(check_path("kms/xks/v1").is_err());
        assert!(check_path("/a.b/kms/xks/v1").is_err());
        assert_eq!(
            key_suffix("k-1.a_b", "encrypt").ok(),
            Some("/keys/k-1.a_b/encrypt".to_string())
        );
        assert!(key_suffix("k/1", "encrypt").is_err());
        assert!(key_suffix("", "encrypt").is_err());
    }
}
