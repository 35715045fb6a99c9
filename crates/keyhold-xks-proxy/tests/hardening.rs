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

/// Connects with `cert`, sends a request, and returns the rustls error the client ends with.
async fn refused_with(
    h: &Harness,
    cert: (PathBuf, PathBuf),
    version: &'static rustls::SupportedProtocolVersion,
) -> Result<rustls::Error, String> {
    let config = tls_config(h, b"http/1.1", &[version], Some(cert));
    let io_error = match tls_connect(h, config).await {
        // TLS 1.2: the server's verdict arrives before the handshake ends.
        Err(e) => e,
        // TLS 1.3: the client is done first and sends its request at once.
        Ok(mut tls) => {
            let body = vec![b'x'; 16 * 1024];
            let head = format!(
                "POST /a/kms/xks/v1/health HTTP/1.1\r\nhost: {HOST}\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            let mut sent = tls.write_all(head.as_bytes()).await;
            if sent.is_ok() {
                sent = tls.write_all(&body).await;
            }
            let mut answer = Vec::new();
            match sent {
                Err(e) => e,
                Ok(()) => match tls.read_to_end(&mut answer).await {
                    Err(e) => e,
                    Ok(_) => return Err(format!("server answered: {answer:?}")),
                },
            }
        }
    };
    io_error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned()
        .ok_or_else(|| format!("not a TLS alert but {io_error:?}"))
}

#[tokio::test]
async fn refused_client_certificates_get_a_handshake_failure_alert() {
    let h = Harness::start().await;
    let extra = format!(
        "client_ca = \"{}\"\nclient_subject_cn = [\"cks.kms.{REGION}.amazonaws.com\"]",
        h.pki.ca_pem.display()
    );
    h.rewrite_config(&extra, &[(AKID_1, SECRET_1)]);
    h.server.reload().expect("reload with mTLS");
    let subject = format!("cks.kms.{REGION}.amazonaws.com");
    // The right subject from a CA the proxy does not trust, and a trusted CA's certificate
    // with another subject.
    let other_dir = tempfile::tempdir().expect("tempdir");
    let untrusted = Pki::new(other_dir.path()).client_cert(other_dir.path(), &subject);
    let wrong_subject = h.pki.client_cert(h.dir.path(), "someone.example.com");
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        for cert in [&untrusted, &wrong_subject] {
            assert_eq!(
                refused_with(&h, cert.clone(), version).await,
                Ok(rustls::Error::AlertReceived(
                    rustls::AlertDescription::HandshakeFailure
                )),
                "{:?} with {}",
                version.version,
                cert.0.display()
            );
        }
    }
    // The right certificate still gets in.
    let good = h.pki.client_cert(h.dir.path(), &subject);
    let c = h.signed_custom("/a", REGION, Some(good), false);
    let mut conn = c.connect().await.expect("mTLS connection");
    let health = br#"{"requestMetadata":{"kmsRequestId":"r","kmsOperation":"KmsHealthCheck"}}"#;
    let req = c.request("/health", health.to_vec()).expect("request");
    assert_eq!(conn.send(req).await.expect("send").0, 200);
}

/// The whole HTTP/1.1 answer to a request signed with this credential, its `date` header
/// removed.
async fn raw_answer(h: &Harness, akid: &str, secret: &str) -> String {
    let c = h.signed("/a", akid, secret, false);
    let body = br#"{"requestMetadata":{"kmsRequestId":"r","kmsOperation":"KmsHealthCheck"}}"#;
    let req = c
        .request_with("/health", body.to_vec(), akid, secret)
        .expect("signed request");
    let mut head = format!("POST {} HTTP/1.1\r\n", req.uri());
    for (name, value) in req.headers() {
        head.push_str(&format!(
            "{name}: {}\r\n",
            value.to_str().expect("ascii header")
        ));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut tls = tls_connect(
        h,
        tls_config(h, b"http/1.1", &[&rustls::version::TLS13], None),
    )
    .await
    .expect("TLS");
    tls.write_all(head.as_bytes()).await.expect("write head");
    tls.write_all(body).await.expect("write body");
    let mut answer = Vec::new();
    // The proxy closes after answering; how it closes does not matter here.
    let _ = tls.read_to_end(&mut answer).await;
    String::from_utf8(answer)
        .expect("utf-8 answer")
        .split("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("date:"))
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[tokio::test]
async fn unknown_access_key_id_and_wrong_secret_get_the_same_answer() {
    let h = Harness::start().await;
    let unknown = raw_answer(&h, "AKIAXKSPROXYUNKNOWN2", SECRET_1).await;
    let wrong_secret = raw_answer(&h, AKID_1, SECRET_2).await;
    assert!(unknown.starts_with("HTTP/1.1 401"), "{unknown}");
    assert!(
        unknown.contains("AuthenticationFailedException"),
        "{unknown}"
    );
    assert!(!unknown.contains("AKIAXKSPROXYUNKNOWN2"), "{unknown}");
    assert_eq!(unknown, wrong_secret);
    // And a credential of another store is just as unknown here.
    assert_eq!(raw_answer(&h, AKID_3, SECRET_3).await, wrong_secret);
}
