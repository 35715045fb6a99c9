//! A small signed XKS client that keeps its connection open (HTTP/1.1 or HTTP/2): the load
//! generator of [`crate::bench`] and the conformance tests use it to see exact status codes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Where and how to call. `Debug` never shows the secret.
#[derive(Clone)]
pub struct ClientOptions {
    /// `https://host[:port][/prefix]/kms/xks/v1`.
    pub url: String,
    /// Dial this address instead of resolving the host (the certificate is still checked
    /// against the host name).
    pub connect_to: Option<SocketAddr>,
    /// Extra trusted CA (PEM); without it the system roots are used.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for proxies that require mTLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// SigV4 access key id.
    pub access_key_id: String,
    /// SigV4 secret.
    pub secret: String,
    /// SigV4 region.
    pub region: String,
    /// Offer only `h2` in ALPN (otherwise only `http/1.1`).
    pub http2: bool,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("url", &self.url)
            .field("connect_to", &self.connect_to)
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .field("access_key_id", &self.access_key_id)
            .field("secret", &"<redacted>")
            .field("region", &self.region)
            .field("http2", &self.http2)
            .finish()
    }
}

/// A configured client; [`SignedClient::connect`] opens connections.
#[derive(Clone)]
pub struct SignedClient {
    tls: Arc<rustls::ClientConfig>,
    opts: ClientOptions,
    host_header: String,
    server_name: ServerName<'static>,
    dial: String,
    base_path: String,
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// One open connection.
pub struct Connection {
    sender: Sender,
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

fn load_pem_certs(
    path: &PathBuf,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))
}

impl SignedClient {
    /// Checks the options and builds the TLS configuration.
    pub fn new(opts: ClientOptions) -> Result<Self, String> {
        let rest = opts
            .url
            .strip_prefix("https://")
            .ok_or_else(|| format!("{} is not an https:// URL", opts.url))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/kms/xks/v1"),
        };
        let host = match authority.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => authority,
        };
        let dial = if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:443")
        };
        let server_name =
            ServerName::try_from(host.to_string()).map_err(|e| format!("host {host}: {e}"))?;
        let mut roots = rustls::RootCertStore::empty();
        match &opts.ca_file {
            Some(ca) => {
                for cert in load_pem_certs(ca)? {
                    roots
                        .add(cert)
                        .map_err(|e| format!("{}: {e}", ca.display()))?;
                }
            }
            None => {
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            }
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
        let mut tls = match &opts.client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let key_pem = std::fs::read(key).map_err(|e| format!("{}: {e}", key.display()))?;
                let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
                    .map_err(|e| e.to_string())?
                    .ok_or("no private key in the client key file")?;
                builder
                    .with_client_auth_cert(load_pem_certs(cert)?, key)
                    .map_err(|e| e.to_string())?
            }
        };
        tls.alpn_protocols = if opts.http2 {
            vec![b"h2".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        Ok(Self {
            tls: Arc::new(tls),
            host_header: authority.to_string(),
            server_name,
            dial,
            base_path: path.trim_end_matches('/').to_string(),
            opts,
        })
    }

    /// The same client signing with another credential.
    pub fn with_credential(mut self, access_key_id: &str, secret: &str) -> Self {
        self.opts.access_key_id = access_key_id.to_string();
        self.opts.secret = secret.to_string();
        self
    }

    /// Opens a TLS connection and does the HTTP handshake.
    pub async fn connect(&self) -> Result<Connection, String> {
        let tcp = match self.opts.connect_to {
            Some(addr) => TcpStream::connect(addr).await,
            None => TcpStream::connect(self.dial.as_str()).await,
        }
        .map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let tls = TlsConnector::from(Arc::clone(&self.tls))
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        let io = TokioIo::new(tls);
        if self.opts.http2 {
            let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|e| format!("HTTP/2: {e}"))?;
            let driver = tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(Connection {
                sender: Sender::H2(sender),
                driver,
            })
        } else {
            let (sender, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| format!("HTTP/1.1: {e}"))?;
            let driver = tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(Connection {
                sender: Sender::H1(sender),
                driver,
            })
        }
    }

    /// A signed `POST {base}{suffix}` with `body`.
    pub fn request(
        &self,
        suffix: &str,
        body: Vec<u8>,
    ) -> Result<http::Request<Full<Bytes>>, String> {
        self.request_with(suffix, body, &self.opts.access_key_id, &self.opts.secret)
    }

    /// Like [`SignedClient::request`] with another credential.
    pub fn request_with(
        &self,
        suffix: &str,
        body: Vec<u8>,
        access_key_id: &str,
        secret: &str,
    ) -> Result<http::Request<Full<Bytes>>, String> {
        self.request_custom(
            suffix,
            body,
            access_key_id,
            secret,
            time::OffsetDateTime::now_utc(),
            false,
        )
    }

    /// A request signed at `now`; with `sign_content_type` the signature also covers
    /// `content-type` (as `curl --aws-sigv4` does) instead of only `host;x-amz-date` (as KMS does).
    pub fn request_custom(
        &self,
        suffix: &str,
        body: Vec<u8>,
        access_key_id: &str,
        secret: &str,
        now: time::OffsetDateTime,
        sign_content_type: bool,
    ) -> Result<http::Request<Full<Bytes>>, String> {
        let path = format!("{}{suffix}", self.base_path);
        let hash = keyhold_sigv4::payload_hash(&body);
        let headers = [
            ("host", self.host_header.as_str()),
            ("content-type", "application/json"),
        ];
        let parts = keyhold_sigv4::RequestParts {
            method: "POST",
            raw_path: &path,
            raw_query: "",
            headers: &headers,
            payload_sha256_hex: &hash,
        };
        let signed_headers: &[&str] = if sign_content_type {
            &["content-type", "host", "x-amz-date"]
        } else {
            &["host", "x-amz-date"]
        };
        let signed = keyhold_sigv4::sign(
            &parts,
            access_key_id,
            secret,
            &self.opts.region,
            crate::server::SERVICE,
            now,
            signed_headers,
        )
        .map_err(|e| e.to_string())?;
        let mut builder = http::Request::builder()
            .method(http::Method::POST)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("x-amz-date", signed.amz_date.as_str())
            .header(http::header::AUTHORIZATION, signed.authorization.as_str());
        builder = if self.opts.http2 {
            builder.uri(format!("https://{}{path}", self.host_header))
        } else {
            builder
                .uri(path.as_str())
                .header(http::header::HOST, self.host_header.as_str())
        };
        builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())
    }

    /// An unsigned request with any method, for negative tests.
    pub fn raw_request(
        &self,
        method: http::Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<http::Request<Full<Bytes>>, String> {
        let builder = http::Request::builder().method(method);
        let builder = if self.opts.http2 {
            builder.uri(format!("https://{}{path}", self.host_header))
        } else {
            builder
                .uri(path)
                .header(http::header::HOST, self.host_header.as_str())
        };
        builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())
    }
}

impl Connection {
    /// Sends a request and reads the whole answer.
    pub async fn send(&mut self, req: http::Request<Full<Bytes>>) -> Result<(u16, Bytes), String> {
        let response = match &mut self.sender {
            Sender::H1(s) => {
                s.ready().await.map_err(|e| e.to_string())?;
                s.send_request(req).await
            }
            Sender::H2(s) => {
                s.ready().await.map_err(|e| e.to_string())?;
                s.send_request(req).await
            }
        }
        .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    fn debug_redacts_the_secret() {
        let secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==";
        let opts = ClientOptions {
            url: "https://xks.example/kms/xks/v1".into(),
            connect_to: None,
            ca_file: None,
            client_cert: None,
            access_key_id: "AKIAXKSPROXYTESTAAAA".into(),
            secret: secret.into(),
            region: "us-east-1".into(),
            http2: false,
        };
        let shown = format!("{opts:?}");
        assert!(!shown.contains(secret), "{shown}");
        assert!(shown.contains("AKIAXKSPROXYTESTAAAA"));
        assert!(shown.contains("<redacted>"));
    }
}
