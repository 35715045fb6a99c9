//! Wire-level conformance: exact status codes and error names for every operation, over
//! HTTP/1.1 and HTTP/2, with hand-made bodies.

mod common;

use common::*;
use http::Method;
use keyhold_xks_proxy::client::SignedClient;
use serde_json::{json, Value};

async fn post(c: &SignedClient, suffix: &str, body: &Value) -> (u16, Value) {
    let mut conn = c.connect().await.expect("connect");
    let req = c
        .request(suffix, serde_json::to_vec(body).expect("json"))
        .expect("request");
    let (status, bytes) = conn.send(req).await.expect("send");
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v)
}

fn error_name(v: &Value) -> &str {
    v["errorName"].as_str().unwrap_or("")
}

fn md(op: &str) -> Value {
    json!({
        "awsPrincipalArn": "arn:aws:iam::111122223333:role/app",
        "kmsOperation": op,
        "kmsRequestId": "5112f4d6-db54-4af4-ae30-c55a22a8dfae",
        "kmsKeyArn": "arn:aws:kms:eu-west-1:111122223333:key/x",
    })
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn paths_methods_and_http_versions() {
    let h = Harness::start().await;
    for http2 in [false, true] {
        let c = h.signed("/a", AKID_1, SECRET_1, http2);
        let mut conn = c.connect().await.expect("connect");
        for suffix in [
            "/health",
            "/keys/k1/metadata",
            "/keys/k1/encrypt",
            "/keys/k1/decrypt",
        ] {
            let req = c
                .raw_request(Method::GET, &format!("/a/kms/xks/v1{suffix}"), Vec::new())
                .expect("req");
            let (status, _) = conn.send(req).await.expect("send");
            assert_eq!(status, 405, "GET {suffix} over h2={http2}");
        }
        for path in [
            "/a/kms/xks/v1/keys/k1/sign",
            "/a/kms/xks/v2/health",
            "/nostore/kms/xks/v1/health",
            "/kms/xks/v1/health",
            "/a/kms/xks/v1/keys/k1",
            "/",
        ] {
            let req = c
                .raw_request(Method::POST, path, b"{}".to_vec())
                .expect("req");
            let (status, body) = conn.send(req).await.expect("send");
            let v: Value = serde_json::from_slice(&body).expect("json error body");
            assert_eq!(
                (status, error_name(&v)),
                (404, "InvalidUriPathException"),
                "{path}"
            );
        }
        let req = c
            .raw_request(Method::GET, "/ping", Vec::new())
            .expect("req");
        assert_eq!(conn.send(req).await.expect("send").0, 200);
        // A signed health check over this protocol version.
        let (status, v) = post(
            &c,
            "/health",
            &json!({"requestMetadata": {"kmsRequestId": "r", "kmsOperation": "KmsHealthCheck"}}),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["ekmFleetDetails"][0]["healthStatus"], "ACTIVE");
        assert!(v["xksProxyFleetSize"].as_u64().unwrap_or(0) > 0);
    }
}

#[tokio::test]
async fn validation_limits_and_tolerance() {
    let h = Harness::start().await;
    let c = h.signed("/a", AKID_1, SECRET_1, false);

    // Health: {} and an empty requestMetadata are ValidationException.
    for body in [json!({}), json!({"requestMetadata": {}})] {
        let (status, v) = post(&c, "/health", &body).await;
        assert_eq!(
            (status, error_name(&v)),
            (400, "ValidationException"),
            "{body}"
        );
    }
    // Unknown fields anywhere and unknown kmsOperation values are accepted.
    let mut m = md("BulkEncryptFromTheFuture");
    m["sourceIdentity"] = json!("x");
    let (status, v) = post(&c, "/keys/k1/encrypt", &json!({
        "requestMetadata": m, "plaintext": b64(b"hi"), "encryptionAlgorithm": "AES_GCM", "newField": [1, 2]
    })).await;
    assert_eq!(status, 200, "{v}");
    let (status, _) = post(
        &c,
        "/keys/k1/metadata",
        &json!({"requestMetadata": md("DescribeKey"), "x": 1}),
    )
    .await;
    assert_eq!(status, 200);

    let cases = [
        // missing plaintext
        json!({"requestMetadata": md("Encrypt"), "encryptionAlgorithm": "AES_GCM"}),
        // URL-safe Base64
        json!({"requestMetadata": md("Encrypt"), "plaintext": "-_-_", "encryptionAlgorithm": "AES_GCM"}),
        // not Base64
        json!({"requestMetadata": md("Encrypt"), "plaintext": "!!!", "encryptionAlgorithm": "AES_GCM"}),
        // unknown algorithm
        json!({"requestMetadata": md("Encrypt"), "plaintext": "aGk=", "encryptionAlgorithm": "RSA"}),
        // unknown CDIV algorithm
        json!({"requestMetadata": md("Encrypt"), "plaintext": "aGk=", "encryptionAlgorithm": "AES_GCM", "ciphertextDataIntegrityValueAlgorithm": "MD5"}),
        // no principal
        json!({"requestMetadata": {"kmsOperation": "Encrypt", "kmsRequestId": "r"}, "plaintext": "aGk=", "encryptionAlgorithm": "AES_GCM"}),
    ];
    for body in cases {
        let (status, v) = post(&c, "/keys/k1/encrypt", &body).await;
        assert_eq!(
            (status, error_name(&v)),
            (400, "ValidationException"),
            "{body}"
        );
    }

    // The spec's minimums pass; beyond this proxy's limits is UnsupportedOperationException.
    let (status, v) = post(
        &c,
        "/keys/k1/encrypt",
        &json!({
            "requestMetadata": md("Encrypt"), "plaintext": b64(&[1; 4300]),
            "additionalAuthenticatedData": b64(&[2; 8192]), "encryptionAlgorithm": "AES_GCM"
        }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    for (pt, aad) in [(65537, 1), (1, 16385)] {
        let (status, v) = post(
            &c,
            "/keys/k1/encrypt",
            &json!({
                "requestMetadata": md("Encrypt"), "plaintext": b64(&vec![1; pt]),
                "additionalAuthenticatedData": b64(&vec![2; aad]), "encryptionAlgorithm": "AES_GCM"
            }),
        )
        .await;
        assert_eq!(
            (status, error_name(&v)),
            (501, "UnsupportedOperationException")
        );
    }

    // Decrypt field checks.
    let (_, enc) = post(&c, "/keys/k1/encrypt", &json!({
        "requestMetadata": md("Encrypt"), "plaintext": b64(b"secret"), "encryptionAlgorithm": "AES_GCM"
    })).await;
    let good = json!({
        "requestMetadata": md("Decrypt"), "encryptionAlgorithm": "AES_GCM",
        "ciphertext": enc["ciphertext"], "ciphertextMetadata": enc["ciphertextMetadata"],
        "initializationVector": enc["initializationVector"], "authenticationTag": enc["authenticationTag"],
    });
    let (status, v) = post(&c, "/keys/k1/decrypt", &good).await;
    assert_eq!(
        (status, v["plaintext"].as_str()),
        (200, Some(b64(b"secret").as_str()))
    );
    let with = |field: &str, value: Value| {
        let mut b = good.clone();
        b[field] = value;
        b
    };
    let cases = [
        (
            with("initializationVector", json!(b64(&[0; 11]))),
            400,
            "ValidationException",
        ),
        (
            with("authenticationTag", json!(b64(&[0; 15]))),
            400,
            "ValidationException",
        ),
        (
            with("ciphertextMetadata", json!(b64(&[1; 21]))),
            400,
            "ValidationException",
        ),
        (
            with("initializationVector", json!(b64(&[0; 16]))),
            400,
            "InvalidCiphertextException",
        ),
        (
            with("authenticationTag", json!(b64(&[0; 16]))),
            400,
            "InvalidCiphertextException",
        ),
        (
            with("additionalAuthenticatedData", json!(b64(b"x"))),
            400,
            "InvalidCiphertextException",
        ),
        (
            with("ciphertextMetadata", json!(b64(&[9]))),
            400,
            "InvalidCiphertextException",
        ),
    ];
    for (body, want_status, want_name) in cases {
        let (status, v) = post(&c, "/keys/k1/decrypt", &body).await;
        assert_eq!((status, error_name(&v)), (want_status, want_name), "{body}");
    }
    let (status, v) = post(&c, "/keys/kdisabled/decrypt", &good).await;
    assert_eq!((status, error_name(&v)), (400, "InvalidStateException"));
    let (status, v) = post(&c, "/keys/nokey/decrypt", &good).await;
    assert_eq!((status, error_name(&v)), (404, "KeyNotFoundException"));
}

#[tokio::test]
async fn sigv4_rules() {
    let h = Harness::start().await;
    let c = h.signed("/a", AKID_1, SECRET_1, false);
    let body = serde_json::to_vec(
        &json!({"requestMetadata": {"kmsRequestId": "r", "kmsOperation": "KmsHealthCheck"}}),
    )
    .expect("json");
    let mut conn = c.connect().await.expect("connect");
    let now = time::OffsetDateTime::now_utc();

    // curl signs content-type too: the client's SignedHeaders are honoured.
    let req = c
        .request_custom("/health", body.clone(), AKID_1, SECRET_1, now, true)
        .expect("req");
    assert_eq!(conn.send(req).await.expect("send").0, 200);
    // Inside the 5-minute window, both ways.
    for skew in [-4, 4] {
        let req = c
            .request_custom(
                "/health",
                body.clone(),
                AKID_1,
                SECRET_1,
                now + time::Duration::minutes(skew),
                false,
            )
            .expect("req");
        assert_eq!(conn.send(req).await.expect("send").0, 200, "skew {skew}");
    }
    let mut refused = vec![
        c.request_custom(
            "/health",
            body.clone(),
            AKID_1,
            SECRET_1,
            now - time::Duration::minutes(6),
            false,
        )
        .expect("req"),
        c.request_custom(
            "/health",
            body.clone(),
            AKID_1,
            SECRET_1,
            now + time::Duration::minutes(6),
            false,
        )
        .expect("req"),
        c.request_with("/health", body.clone(), AKID_1, SECRET_2)
            .expect("req"),
        c.request_with("/health", body.clone(), "AKIAUNKNOWNKEYIDXXXX", SECRET_1)
            .expect("req"),
        c.raw_request(Method::POST, "/a/kms/xks/v1/health", body.clone())
            .expect("unsigned"),
    ];
    // Body changed after signing.
    let mut tampered = c.request("/health", body.clone()).expect("req");
    *tampered.body_mut() = http_body_util::Full::new(bytes::Bytes::from(
        b"{\"requestMetadata\":{\"kmsRequestId\":\"s\",\"kmsOperation\":\"K\"}}".to_vec(),
    ));
    refused.push(tampered);
    for req in refused {
        let (status, bytes) = conn.send(req).await.expect("send");
        let v: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(
            (status, error_name(&v)),
            (401, "AuthenticationFailedException")
        );
    }
    let wrong_region = h.signed_custom("/a", "us-east-1", None, false);
    // Any region is accepted unless [server].region is set.
    let (status, _) = post(
        &wrong_region,
        "/health",
        &json!({"requestMetadata": {"kmsRequestId": "r", "kmsOperation": "KmsHealthCheck"}}),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn secondary_authorization_and_region_pinning() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        r#"
        [[rule]]
        name = "app-encrypt-k1"
        principals = ["arn:aws:iam::111122223333:role/app"]
        operations = ["Encrypt", "CreateKey"]
        keys = ["k1"]
    "#,
    )
    .expect("write rules");
    let extra = format!(
        "authorization_rules = \"{}\"\nregion = \"{REGION}\"",
        rules.display()
    );
    let h = Harness::start_with(&extra).await;
    let c = h.signed("/a", AKID_1, SECRET_1, true);
    let enc = |op: &str| json!({"requestMetadata": md(op), "plaintext": b64(b"x"), "encryptionAlgorithm": "AES_GCM"});
    assert_eq!(post(&c, "/keys/k1/encrypt", &enc("Encrypt")).await.0, 200);
    let (status, v) = post(&c, "/keys/k1/encrypt", &enc("GenerateDataKey")).await;
    assert_eq!((status, error_name(&v)), (403, "AccessDeniedException"));
    let (status, v) = post(&c, "/keys/k2/encrypt", &enc("Encrypt")).await;
    assert_eq!((status, error_name(&v)), (403, "AccessDeniedException"));
    let (status, _) = post(
        &c,
        "/keys/k1/metadata",
        &json!({"requestMetadata": md("CreateKey")}),
    )
    .await;
    assert_eq!(status, 200);
    // Health is never subject to the rules.
    let (status, _) = post(
        &c,
        "/health",
        &json!({"requestMetadata": {"kmsRequestId": "r", "kmsOperation": "KmsHealthCheck"}}),
    )
    .await;
    assert_eq!(status, 200);
    // The region is pinned now.
    let other = h.signed_custom("/a", "us-east-1", None, false);
    let (status, v) = post(
        &other,
        "/health",
        &json!({"requestMetadata": {"kmsRequestId": "r", "kmsOperation": "KmsHealthCheck"}}),
    )
    .await;
    assert_eq!(
        (status, error_name(&v)),
        (401, "AuthenticationFailedException")
    );
}

#[tokio::test]
async fn mutual_tls_checks_ca_and_subject() {
    // The harness makes its own CA; client certificates are issued by it.
    let h0 = Harness::start().await;
    let extra = format!(
        "client_ca = \"{}\"\nclient_subject_cn = [\"cks.kms.{REGION}.amazonaws.com\"]",
        h0.pki.ca_pem.display()
    );
    h0.rewrite_config(&extra, &[(AKID_1, SECRET_1)]);
    h0.server.reload().expect("reload with mTLS");
    let good = h0
        .pki
        .client_cert(h0.dir.path(), &format!("cks.kms.{REGION}.amazonaws.com"));
    let bad = h0.pki.client_cert(h0.dir.path(), "someone.example.com");
    let client = |cert| h0.signed_custom("/a", REGION, cert, false);
    let health =
        json!({"requestMetadata": {"kmsRequestId": "r", "kmsOperation": "KmsHealthCheck"}});
    let ok = client(Some(good));
    assert_eq!(post(&ok, "/health", &health).await.0, 200);
    for c in [client(None), client(Some(bad))] {
        // TLS 1.3 reports a refused client certificate on first use of the connection.
        let outcome = match c.connect().await {
            Err(_) => None,
            Ok(mut conn) => {
                let req = c
                    .request("/health", serde_json::to_vec(&health).expect("json"))
                    .expect("req");
                conn.send(req).await.ok()
            }
        };
        assert!(
            outcome.is_none(),
            "connection without an acceptable client certificate must fail"
        );
    }
}

/// A bare TLS handshake with the given suites and versions; returns the negotiated version.
async fn handshake(
    h: &Harness,
    suites: Vec<rustls::SupportedCipherSuite>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<rustls::ProtocolVersion, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = suites;
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&h.pki.ca_pem).map_err(|e| e.to_string())?;
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(provider))
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(h.addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from(HOST).map_err(|e| e.to_string())?;
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    tls.get_ref()
        .1
        .protocol_version()
        .ok_or_else(|| "no version".to_string())
}

#[tokio::test]
async fn tls_versions_and_cipher_suites() {
    use rustls::crypto::ring::cipher_suite as cs;
    let h = Harness::start().await;
    let all = rustls::crypto::ring::default_provider().cipher_suites;
    assert_eq!(
        handshake(&h, all.clone(), &[&rustls::version::TLS12]).await,
        Ok(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(
        handshake(&h, all, &[&rustls::version::TLS13]).await,
        Ok(rustls::ProtocolVersion::TLSv1_3)
    );
    // Suites outside the spec's list are refused, in both versions.
    assert!(handshake(
        &h,
        vec![cs::TLS13_AES_128_GCM_SHA256],
        &[&rustls::version::TLS13]
    )
    .await
    .is_err());
    assert!(handshake(
        &h,
        vec![cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256],
        &[&rustls::version::TLS12]
    )
    .await
    .is_err());
    assert_eq!(
        handshake(
            &h,
            vec![cs::TLS13_CHACHA20_POLY1305_SHA256],
            &[&rustls::version::TLS13]
        )
        .await,
        Ok(rustls::ProtocolVersion::TLSv1_3)
    );
}
