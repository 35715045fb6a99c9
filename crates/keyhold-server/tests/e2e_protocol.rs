//! End-to-end: the awsJson1.1 front door answers malformed requests as AWS does, with 4xx
//! statuses, and keeps serving afterwards.

mod common;

use common::{raw, TestServer};
use serde_json::json;

const CT: Option<&str> = Some("application/x-amz-json-1.1");

/// (target, content type, body, expected status, expected `__type`).
type Case<'a> = (Option<&'a str>, Option<&'a str>, String, u16, &'a str);

async fn assert_healthy(server: &TestServer) {
    let (status, body, _) = raw(&server.endpoint, Some("TrentService.ListKeys"), CT, "{}").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["Keys"].is_array());
}

#[tokio::test]
async fn malformed_requests_get_aws_errors() {
    let server = TestServer::start();
    let ep = &server.endpoint;

    let cases: Vec<Case> = vec![
        (
            Some("TrentService.CreateKey"),
            CT,
            "{not json".into(),
            400,
            "SerializationException",
        ),
        (
            Some("TrentService.CreateKey"),
            CT,
            "[1,2]".into(),
            400,
            "SerializationException",
        ),
        (
            Some("TrentService.DescribeKey"),
            CT,
            r#"{"KeyId": 5}"#.into(),
            400,
            "SerializationException",
        ),
        (
            Some("TrentService.NoSuchOperation"),
            CT,
            "{}".into(),
            400,
            "UnknownOperationException",
        ),
        (
            Some("OtherService.CreateKey"),
            CT,
            "{}".into(),
            400,
            "UnknownOperationException",
        ),
        (None, CT, "{}".into(), 400, "UnknownOperationException"),
        (
            Some("TrentService.ListKeys"),
            Some("text/plain"),
            "{}".into(),
            400,
            "SerializationException",
        ),
        (
            Some("TrentService.DescribeKey"),
            CT,
            "{}".into(),
            400,
            "ValidationException",
        ),
        (
            Some("TrentService.ListKeys"),
            CT,
            r#"{"Limit": 0}"#.into(),
            400,
            "ValidationException",
        ),
        (
            Some("TrentService.GenerateRandom"),
            CT,
            r#"{"NumberOfBytes": 1025}"#.into(),
            400,
            "ValidationException",
        ),
        (
            Some("TrentService.UpdatePrimaryRegion"),
            CT,
            r#"{"KeyId":"k","PrimaryRegion":"Not a Region"}"#.into(),
            400,
            "ValidationException",
        ),
        (
            Some("TrentService.ListKeys"),
            CT,
            "x".repeat(2 * 1024 * 1024),
            413,
            "RequestEntityTooLargeException",
        ),
    ];
    for (target, ct, body, want_status, want_type) in cases {
        let (status, json, headers) = raw(ep, target, ct, body.clone()).await;
        let shown = &body[..body.len().min(60)];
        assert_eq!(status, want_status, "{target:?} {shown}: {json}");
        assert_eq!(json["__type"], want_type, "{target:?} {shown}: {json}");
        assert!(headers.contains_key("x-amzn-requestid"));
        assert_eq!(headers["content-type"], "application/x-amz-json-1.1");
    }

    // Exact AWS wording for a range violation and a missing member.
    let (_, json, _) = raw(ep, Some("TrentService.ListKeys"), CT, r#"{"Limit": 0}"#).await;
    assert_eq!(
        json["message"],
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
    );
    let (_, json, _) = raw(ep, Some("TrentService.DescribeKey"), CT, "{}").await;
    assert_eq!(
        json["message"],
        "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null"
    );
    // Several violations are counted and joined.
    let (_, json, _) = raw(
        ep,
        Some("TrentService.CreateKey"),
        CT,
        json!({"KeyUsage": "NOPE", "Description": "d".repeat(8193)}).to_string(),
    )
    .await;
    let msg = json["message"].as_str().unwrap();
    assert!(msg.starts_with("2 validation errors detected: "), "{msg}");
    assert!(
        msg.contains("at 'keyUsage'") && msg.contains("at 'description'"),
        "{msg}"
    );

    // An empty body is accepted as {} (awsJson), unknown members are ignored.
    let (status, json, _) = raw(ep, Some("TrentService.ListKeys"), CT, "").await;
    assert_eq!(status, 200, "{json}");
    let (status, _, _) = raw(
        ep,
        Some("TrentService.ListKeys"),
        CT,
        r#"{"Surprise": true}"#,
    )
    .await;
    assert_eq!(status, 200);

    // Wrong method.
    let resp = reqwest::get(format!("{ep}/")).await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);

    assert_healthy(&server).await;
}

#[tokio::test]
async fn invalid_ciphertext_has_no_message_member() {
    let server = TestServer::start();
    let (status, json, _) = raw(
        &server.endpoint,
        Some("TrentService.Decrypt"),
        CT,
        json!({"CiphertextBlob": "Z2FyYmFnZQ=="}).to_string(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(json, json!({"__type": "InvalidCiphertextException"}));
}

#[tokio::test]
async fn moto_reset_wipes_state_in_test_mode_only() {
    let server = TestServer::start();
    let (status, _, _) = raw(&server.endpoint, Some("TrentService.CreateKey"), CT, "{}").await;
    assert_eq!(status, 200);
    let (_, list, _) = raw(&server.endpoint, Some("TrentService.ListKeys"), CT, "{}").await;
    assert_eq!(list["Keys"].as_array().unwrap().len(), 1);
    let resp = reqwest::Client::new()
        .post(format!("{}/moto-api/reset", server.endpoint))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (_, list, _) = raw(&server.endpoint, Some("TrentService.ListKeys"), CT, "{}").await;
    assert_eq!(list["Keys"].as_array().unwrap().len(), 0);

    let plain = TestServer::start_with(&[]);
    let (status, _, _) = raw(&plain.endpoint, Some("TrentService.CreateKey"), CT, "{}").await;
    assert_eq!(status, 200);
    let resp = reqwest::Client::new()
        .post(format!("{}/moto-api/reset", plain.endpoint))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        400,
        "reset is not served outside test mode"
    );
    let (_, list, _) = raw(&plain.endpoint, Some("TrentService.ListKeys"), CT, "{}").await;
    assert_eq!(
        list["Keys"].as_array().unwrap().len(),
        1,
        "nothing was wiped"
    );
}

/// A body sent without `Content-Length` (HTTP/1.1 chunked, in several chunks) is read whole:
/// the server's body buffer grows by hand in that case (it is wiped when dropped).
#[tokio::test]
async fn chunked_request_bodies_are_read_whole() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = TestServer::start();
    let kms = common::client(&server);
    let key = kms
        .create_key()
        .send()
        .await
        .expect("create key")
        .key_metadata()
        .expect("metadata")
        .key_id()
        .to_string();
    let plaintext: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    use base64::Engine as _;
    let body = json!({
        "KeyId": key,
        "Plaintext": base64::engine::general_purpose::STANDARD.encode(&plaintext),
    })
    .to_string();
    let addr = server.endpoint.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: TrentService.Encrypt\r\n\
         Content-Type: application/x-amz-json-1.1\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.expect("head");
    for chunk in body.as_bytes().chunks(1000) {
        tcp.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .expect("chunk size");
        tcp.write_all(chunk).await.expect("chunk");
        tcp.write_all(b"\r\n").await.expect("chunk end");
        tcp.flush().await.expect("flush");
    }
    tcp.write_all(b"0\r\n\r\n").await.expect("last chunk");
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.expect("answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let json_start = answer.find('{').expect("a JSON body");
    let json_end = answer.rfind('}').expect("a JSON body");
    let out: serde_json::Value =
        serde_json::from_str(&answer[json_start..=json_end]).expect("JSON");
    let blob = base64::engine::general_purpose::STANDARD
        .decode(out["CiphertextBlob"].as_str().expect("CiphertextBlob"))
        .expect("base64");
    let back = kms
        .decrypt()
        .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(blob))
        .send()
        .await
        .expect("decrypt");
    assert_eq!(back.plaintext().map(|p| p.as_ref()), Some(&plaintext[..]));
}
