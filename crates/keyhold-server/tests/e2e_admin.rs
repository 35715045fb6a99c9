//! End-to-end: the admin listener (`--admin-listen`). `/livez` and `/readyz` answer, and
//! `/metrics` counts the requests aws-sdk-kms made, by operation and outcome, with latency
//! histograms; the KMS port itself serves none of it.

mod common;

use common::admin::{get, sample, start_with_admin};
use common::client;

#[tokio::test]
async fn health_and_metrics_count_what_the_sdk_did() {
    let (server, admin) = start_with_admin(&[]);
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
