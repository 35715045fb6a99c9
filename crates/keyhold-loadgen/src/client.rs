//! A minimal HTTP/1.1 keep-alive client that SigV4-signs every request afresh, the way an AWS
//! SDK does, so signing cost is part of what the load generator measures on the client side.

use std::sync::Arc;

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where requests go: a plain-HTTP endpoint such as `http://127.0.0.1:4600`.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port` to connect to and to send (and sign) as the `Host` header.
    pub authority: String,
}

impl Target {
    /// Parses an `http://host:port` endpoint. HTTPS is not supported (the load generator
    /// measures the service, not TLS).
    pub fn parse(endpoint: &str) -> anyhow::Result<Self> {
        let uri: hyper::Uri = endpoint
            .parse()
            .with_context(|| format!("--endpoint {endpoint:?} is not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => bail!("--endpoint scheme {other:?} is not supported; use http://"),
            None => bail!("--endpoint {endpoint:?} needs a scheme, e.g. http://127.0.0.1:4600"),
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            bail!("--endpoint {endpoint:?} must not have a path or query");
        }
        let authority = uri
            .authority()
            .context("--endpoint needs a host")?
            .as_str()
            .to_string();
        let authority = if uri.port().is_some() {
            authority
        } else {
            format!("{authority}:80")
        };
        Ok(Self { authority })
    }
}

/// Credentials and scope for signing.
#[derive(Debug, Clone)]
pub struct Signer {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret: String,
    /// Region in the credential scope.
    pub region: String,
    /// Service in the credential scope (`kms`, later `kms-xks-proxy`).
    pub service: &'static str,
}

/// One request to be sent (and signed) repeatedly: always `POST`.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    /// Raw (already percent-encoded) path, e.g. `/`.
    pub path: String,
    /// Headers besides `host` and the signing headers, names lower-case. All are signed.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Bytes,
}

/// A finished exchange.
#[derive(Debug)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// The whole body.
    pub body: Bytes,
}

/// One keep-alive HTTP/1.1 connection.
pub struct Connection {
    target: Arc<Target>,
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    /// Connects to `target`.
    pub async fn open(target: Arc<Target>) -> anyhow::Result<Self> {
        let tcp = TcpStream::connect(&target.authority)
            .await
            .with_context(|| format!("connecting to {}", target.authority))?;
        tcp.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(async move {
            // The connection ends when the sender is dropped or the server closes it; the
            // next send on a closed connection reports the error.
            let _ = conn.await;
        });
        Ok(Self { target, sender })
    }

    /// True once the connection can no longer be used.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Signs `template` with the current time and sends it, reading the whole response.
    pub async fn send(
        &mut self,
        signer: &Signer,
        template: &RequestTemplate,
    ) -> anyhow::Result<Response> {
        let payload_hash = keyhold_sigv4::payload_hash(&template.body);
        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(template.headers.len() + 1);
        headers.push(("host", self.target.authority.as_str()));
        headers.extend(template.headers.iter().map(|(n, v)| (*n, v.as_str())));
        let mut signed: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
        signed.push("x-amz-date");
        let signing = keyhold_sigv4::sign(
            &keyhold_sigv4::RequestParts {
                method: "POST",
                raw_path: &template.path,
                raw_query: "",
                headers: &headers,
                payload_sha256_hex: &payload_hash,
            },
            &signer.access_key_id,
            &signer.secret,
            &signer.region,
            signer.service,
            time::OffsetDateTime::now_utc(),
            &signed,
        )
        .map_err(|e| anyhow::anyhow!("signing: {e}"))?;

        let mut builder = hyper::Request::post(template.path.as_str());
        for (name, value) in headers.iter().chain(signing.headers().iter()) {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Full::new(template.body.clone()))
            .context("building the request")?;

        self.sender.ready().await.context("connection not ready")?;
        let response = self
            .sender
            .send_request(request)
            .await
            .context("sending the request")?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .context("reading the response body")?
            .to_bytes();
        Ok(Response { status, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_endpoints() {
        assert_eq!(
            Target::parse("http://127.0.0.1:4600").unwrap().authority,
            "127.0.0.1:4600"
        );
        assert_eq!(
            Target::parse("http://localhost/").unwrap().authority,
            "localhost:80"
        );
        assert!(Target::parse("https://127.0.0.1:4600").is_err());
        assert!(Target::parse("127.0.0.1:4600").is_err());
        assert!(Target::parse("http://127.0.0.1:4600/x").is_err());
    }
}
