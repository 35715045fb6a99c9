//! SIGHUP reloads the configuration (its own test binary: the signal goes to the whole process).

mod common;

use std::time::Duration;

use common::*;
use keyhold_core::ports::xks::XksFailure;
use keyhold_xks::wire::{GetKeyMetadataRequest, RequestMetadata};

#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads_credentials() {
    // No file polling: only the signal can cause the reload.
    let h = Harness::start_with("reload_poll_seconds = 0").await;
    let client = h.xks_client();
    let req = GetKeyMetadataRequest {
        request_metadata: RequestMetadata {
            aws_principal_arn: Some("arn:aws:iam::111122223333:role/app".to_string()),
            kms_operation: "CreateKey".to_string(),
            kms_request_id: "r".to_string(),
            ..Default::default()
        },
    };
    let t3 = h.target("/a", AKID_3, SECRET_3);
    // Time for the signal handler task to be registered.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        client.get_key_metadata(&t3, "k1", &req).await.err(),
        Some(XksFailure::AuthenticationFailed)
    );
    h.rewrite_config("reload_poll_seconds = 0", &[(AKID_3, SECRET_3)]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        client.get_key_metadata(&t3, "k1", &req).await.err(),
        Some(XksFailure::AuthenticationFailed),
        "nothing reloads without the signal"
    );
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let mut ok = false;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if client.get_key_metadata(&t3, "k1", &req).await.is_ok() {
            ok = true;
            break;
        }
    }
    assert!(ok, "credential 3 accepted after SIGHUP");
}
