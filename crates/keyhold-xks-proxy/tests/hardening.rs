//! What a client sees when it is refused: an HTTP/2 request to an unknown prefix, a client
//! certificate that fails mTLS, and a credential that is unknown or wrong.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A TLS client trusting the harness CA, with this ALPN, versions and client certificate.
fn tls_config(
    h: &Harness,
    alpn: &[u8],
    versions: &[&'static rustls::SupportedProtocolVersion],
    client_cert: Option<(PathBuf, PathBuf)>,
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&h.pki.ca_pem).expect("ca");
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.expect("pem")).expect("root");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .expect("versions")
    .with_root_certificates(roots);
    let mut config = match client_cert {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let certs = rustls_pemfile::certs(&mut std::fs::read(cert).expect("cert").as_slice())
                .collect::<Result<Vec<_>, _>>()
                .expect("certs");
            let key = rustls_pemfile::private_key(&mut std::fs::read(key).expect("key").as_slice())
                .expect("pem")
                .expect("a key");
            builder
                .with_client_auth_cert(certs, key)
                .expect("client cert")
        }
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    config
}

async fn tls_connect(
    h: &Harness,
    config: rustls::ClientConfig,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(h.addr).await?;
    let name = ServerName::try_from(HOST).expect("name");
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

#[tokio::test]
async fn http2_refusal_of_an_unknown_prefix_reads_the_body_first() {
    let h = Harness::start().await;
    let tls = tls_connect(&h, tls_config(&h, b"h2", &[&rustls::version::TLS13], None))
        .await
        .expect("TLS");
    let (client, connection) = h2::client::handshake(tls).await.expect("HTTP/2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut client = client.ready().await.expect("ready");
    for path in [
        "/nostore/kms/xks/v1/keys/k1/encrypt",
        "/a/kms/xks/v1/keys/k1/sign",
    ] {
        let req = http::Request::post(format!("https://{HOST}{path}"))
            .header("content-type", "application/json")
            .body(())
            .expect("request");
        let (response, mut body_out) = client.send_request(req, false).expect("send headers");
        body_out
            .send_data(Bytes::from_static(b"{\"requestMetadata\": "), false)
            .expect("first part of the body");
        // The rest of the body follows a little later, as from a client that streams it.
        let rest = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            body_out
                .send_data(
                    Bytes::from_static(b"{\"kmsOperation\": \"Encrypt\"}}"),
                    true,
                )
                .map_err(|e| e.to_string())
        });
        let response = response.await.expect("response head");
        let status = response.status().as_u16();
        let mut body_in = response.into_body();
        let mut bytes = Vec::new();
        while let Some(chunk) = body_in.data().await {
            let chunk = chunk.expect("response body read without a stream reset");
            let _ = body_in.flow_control().release_capacity(chunk.len());
            bytes.extend_from_slice(&chunk);
        }
        rest.await
            .expect("join")
            .expect("the rest of the body was accepted: the stream was not reset");
        let v: Value = serde_json::from_slice(&bytes).expect("JSON error body");
        assert_eq!(
            (status, v["errorName"].as_str()),
            (404, Some("InvalidUriPathException")),
            "{path}"
        );
    }
}
