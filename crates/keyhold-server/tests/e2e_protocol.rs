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
            Some("TrentService.Sign"),
            CT,
            r#"{"KeyId":"k","Message":"AA==","SigningAlgorithm":"ECDSA_SHA_256"}"#.into(),
            400,
            "UnsupportedOperationException",
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
