//! End-to-end: the admin listener (`--admin-listen`). `/livez` and `/readyz` answer, and
//! `/metrics` counts the requests aws-sdk-kms made, by operation and outcome, with latency
//! histograms; the KMS port itself serves none of it.

mod common;

use common::{client, TestServer};

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

async fn get(url: &str) -> (u16, String) {
    let resp = reqwest::get(url).await.expect("GET");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

/// The value of the sample line `name{labels}` in `text`, if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn health_and_metrics_count_what_the_sdk_did() {
    let port = free_port();
    let admin = format!("http://127.0.0.1:{port}");
    let server = TestServer::start_with(&["--admin-listen", &format!("127.0.0.1:{port}")]);
    assert_eq!(get(&format!("{admin}/livez")).await.0, 200);
    assert_eq!(get(&format!("{admin}/readyz")).await.0, 200);

    let kms = client(&server);
    let key = kms.create_key().send().await.expect("create");
    let key_id = key.key_metadata().expect("metadata").key_id().to_string();
    for _ in 0..2 {
        kms.encrypt()
            .key_id(&key_id)
            .plaintext(aws_sdk_kms::primitives::Blob::new(b"m".to_vec()))
            .send()
            .await
            .expect("encrypt");
    }
    let missing = kms.disable_key().key_id("alias/none").send().await;
    assert!(missing.is_err());

    let (status, text) = get(&format!("{admin}/metrics")).await;
    assert_eq!(status, 200);
    let kms_op = |op: &str, outcome: &str| {
        sample(
            &text,
            &format!(
                "keyhold_requests_total{{service=\"kms\",operation=\"{op}\",outcome=\"{outcome}\"}}"
            ),
        )
    };
    assert_eq!(kms_op("Encrypt", "success"), Some(2.0), "{text}");
    assert_eq!(kms_op("CreateKey", "success"), Some(1.0), "{text}");
    assert!(
        kms_op("DisableKey", "NotFoundException").is_some(),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "keyhold_request_duration_seconds_count{service=\"kms\",operation=\"Encrypt\"}"
        ),
        Some(2.0)
    );
    assert!(!text.contains(&key_id));

    // The KMS port answers KMS only.
    let (status, _) = get(&format!("{}/metrics", server.endpoint)).await;
    assert_ne!(status, 200);
}
