//! End-to-end: every way an XKS proxy can fail during a cryptographic operation, caused for
//! real on a loopback proxy mid-operation, becomes `KMSInvalidStateException` with AWS's
//! message for that cause, quickly; the server keeps serving other keys. Also the custom key
//! store request quota (`ThrottlingException`).

mod common;
mod custom_key_stores_common;
mod e2e_xks_keys_common;

use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;
use e2e_xks_keys_common::*;
use keyhold_xks::testing::{Behaviour, CertMode, FakeProxyOptions, FakeXksProxy};

/// Longest a failing call may take: the test servers' 1 s proxy budget plus slack.
const MAX_FAILURE: Duration = Duration::from_millis(2500);

struct Keys {
    xks: String,
    plain: String,
    blob: Blob,
}

async fn keys(f: &Fixture) -> Keys {
    let (xks, _) = f.xks_key(XKS_KEY).await;
    let (plain, _) = f.default_key().await;
    let blob = f
        .kms
        .encrypt()
        .key_id(&xks)
        .plaintext(Blob::new(b"payload"))
        .send()
        .await
        .expect("encrypt")
        .ciphertext_blob()
        .cloned()
        .expect("blob");
    Keys { xks, plain, blob }
}

/// Encrypt and Decrypt with the XKS key fail with `message`, in time; the default key works.
async fn expect_failure(f: &Fixture, k: &Keys, message: &str, what: &str) {
    let kms = &f.kms;
    let started = Instant::now();
    let got = err(kms
        .encrypt()
        .key_id(&k.xks)
        .plaintext(Blob::new(b"x"))
        .send()
        .await);
    assert_eq!(got, invalid_state(message), "Encrypt: {what}");
    let got = err(kms.decrypt().ciphertext_blob(k.blob.clone()).send().await);
    assert_eq!(got, invalid_state(message), "Decrypt: {what}");
    assert!(
        started.elapsed() < MAX_FAILURE * 2,
        "{what} took {:?}",
        started.elapsed()
    );
    kms.encrypt()
        .key_id(&k.plain)
        .plaintext(Blob::new(b"still served"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("default key during {what}: {e:?}"));
}

async fn expect_recovered(f: &Fixture, k: &Keys, what: &str) {
    let dec = f
        .kms
        .decrypt()
        .ciphertext_blob(k.blob.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("decrypt after {what}: {e:?}"));
    assert_eq!(dec.plaintext().expect("pt").as_ref(), b"payload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_proxy_failure_becomes_kms_invalid_state_with_aws_message() {
    let f = Fixture::start("").await;
    let k = keys(&f).await;
    let status = |status: u16, name: &str| Behaviour::Status {
        status,
        error_name: name.to_string(),
    };
    let cases = [
        (
            status(400, "ValidationException"),
            msg::CANNOT_INTERPRET,
            "400 ValidationException",
        ),
        (
            status(403, "AccessDeniedException"),
            msg::ACCESS_DENIED,
            "403",
        ),
        (
            status(404, "InvalidUriPathException"),
            msg::INVALID_URI_PATH,
            "404 InvalidUriPath",
        ),
        (status(429, "ThrottlingException"), msg::THROTTLED, "429"),
        (status(500, "InternalException"), msg::PROXY_INTERNAL, "500"),
        (
            status(501, "UnsupportedOperationException"),
            msg::UNSUPPORTED_OPERATION,
            "501",
        ),
        (
            status(503, "DependencyTimeoutException"),
            msg::DEPENDENCY_TIMEOUT,
            "503",
        ),
        (
            status(502, "BadGatewayException"),
            msg::CANNOT_INTERPRET,
            "unknown error",
        ),
        (Behaviour::Garbage, msg::CANNOT_INTERPRET, "not JSON"),
        (Behaviour::WrongShape, msg::CANNOT_INTERPRET, "wrong shape"),
        (Behaviour::Slow { ms: 3000 }, msg::TIMED_OUT, "timeout"),
        (
            Behaviour::CloseImmediately,
            msg::CANNOT_COMMUNICATE,
            "connection closed",
        ),
        (
            Behaviour::TruncatedBody,
            msg::CANNOT_COMMUNICATE,
            "truncated answer",
        ),
    ];
    for (behaviour, message, what) in cases {
        f.proxy.set_behaviour(behaviour);
        expect_failure(&f, &k, message, what).await;
        f.proxy.set_behaviour(Behaviour::Healthy);
        expect_recovered(&f, &k, what).await;
    }

    // Real causes on the proxy's side.
    f.proxy.set_credential(
        &f.opts.access_key_id,
        "b3RoZXItb3RoZXItb3RoZXItb3RoZXItb3RoZXItb3RoZXI=",
    );
    expect_failure(&f, &k, msg::AUTHENTICATION_FAILED, "wrong credential").await;
    f.proxy
        .set_credential(&f.opts.access_key_id, &f.opts.secret);
    expect_recovered(&f, &k, "credential").await;

    f.proxy.set_key_enabled(XKS_KEY, false);
    expect_failure(&f, &k, msg::KEY_NOT_ENABLED, "external key disabled").await;
    f.proxy.set_key_enabled(XKS_KEY, true);
    expect_recovered(&f, &k, "external key disabled").await;

    f.proxy.set_key_metadata(XKS_KEY, "AES_256", &["SIGN"]);
    expect_failure(&f, &k, msg::KEY_INVALID_USAGE, "external key usage").await;
    f.proxy
        .set_key_metadata(XKS_KEY, "AES_256", &["ENCRYPT", "DECRYPT"]);
    expect_recovered(&f, &k, "external key usage").await;

    assert!(f.proxy.remove_key(XKS_KEY));
    expect_failure(&f, &k, msg::KEY_NOT_FOUND, "external key deleted").await;

    // Nothing listens any more: connection refused.
    f.proxy.stop();
    expect_failure(&f, &k, msg::CANNOT_COMMUNICATE, "proxy down").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_failure_mid_operation() {
    let mut f = Fixture::start("").await;
    let k = keys(&f).await;
    // The proxy's address now answers with an expired certificate: restart Keyhold with its
    // host mapped to such a proxy (the store stays CONNECTED in the database).
    let expired = FakeXksProxy::start(FakeProxyOptions {
        cert_mode: CertMode::Expired,
        ..FakeProxyOptions::default()
    })
    .await;
    let dir = f.server.data_dir.with_file_name("expired");
    std::fs::create_dir_all(&dir).expect("dir");
    let cfg = custom_key_stores_common::write_config(
        &dir,
        "",
        &[f.proxy.ca_pem(), expired.ca_pem()],
        &[(custom_key_stores_common::HOST, expired.addr().to_string())],
    );
    let cfg = cfg.display().to_string();
    f.server.set_args(&["--test-mode", "--config", &cfg]);
    f.server.restart();
    f.kms = no_retry_client(&f.server);
    expect_failure(&f, &k, msg::TLS, "expired certificate").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_key_store_request_quota() {
    let f = Fixture::start("custom_key_store_requests_per_second = 5").await;
    let (xks, _) = f.xks_key(XKS_KEY).await;
    let (plain, _) = f.default_key().await;
    let mut throttled = None;
    for _ in 0..30 {
        let got = err(f
            .kms
            .encrypt()
            .key_id(&xks)
            .plaintext(Blob::new(b"x"))
            .send()
            .await);
        if got.0 != "Ok" {
            throttled = Some(got);
            break;
        }
    }
    assert_eq!(
        throttled,
        Some((
            "ThrottlingException".to_string(),
            "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."
                .to_string()
        ))
    );
    // Keys outside the store are not limited by it.
    for _ in 0..20 {
        f.kms
            .encrypt()
            .key_id(&plain)
            .plaintext(Blob::new(b"x"))
            .send()
            .await
            .expect("default key is not throttled");
    }
    // HTTP 400 on the wire.
    let mut status = 200;
    for _ in 0..30 {
        let (s, body, _) = common::raw(
            &f.server.endpoint,
            Some("TrentService.Encrypt"),
            Some("application/x-amz-json-1.1"),
            serde_json::json!({ "KeyId": xks, "Plaintext": "eA==" }).to_string(),
        )
        .await;
        if s != 200 {
            assert_eq!(body["__type"], "ThrottlingException", "{body}");
            status = s;
            break;
        }
    }
    assert_eq!(status, 400);
    // The bucket refills.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    f.kms
        .encrypt()
        .key_id(&xks)
        .plaintext(Blob::new(b"x"))
        .send()
        .await
        .expect("after the quota refills");
}

/// The proxy credential is unwrapped once and kept with the store's record for the key
/// operations: a credential changed through UpdateCustomKeyStore on this node must be the one
/// the very next call signs with (no staleness window), and the old one must stop being used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_changed_by_update_is_used_by_the_next_call() {
    const ROTATED: &str = "b3RoZXItb3RoZXItb3RoZXItb3RoZXItb3RoZXItb3RoZXI=";
    let f = Fixture::start("").await;
    let k = keys(&f).await;
    // The proxy rotates first: the credential KMS keeps is now refused.
    f.proxy.set_credential(&f.opts.access_key_id, ROTATED);
    expect_failure(&f, &k, msg::AUTHENTICATION_FAILED, "rotated on the proxy").await;
    f.kms
        .update_custom_key_store()
        .custom_key_store_id(&f.store_id)
        .xks_proxy_authentication_credential(
            aws_sdk_kms::types::XksProxyAuthenticationCredentialType::builder()
                .access_key_id(&f.opts.access_key_id)
                .raw_secret_access_key(ROTATED)
                .build()
                .expect("credential"),
        )
        .send()
        .await
        .expect("update the credential");
    // At once, without waiting for any cache to expire.
    f.kms
        .encrypt()
        .key_id(&k.xks)
        .plaintext(Blob::new(b"after rotation"))
        .send()
        .await
        .expect("encrypt right after the update");
    expect_recovered(&f, &k, "the credential update").await;
    // And back: the old credential again, on both sides.
    f.proxy
        .set_credential(&f.opts.access_key_id, &f.opts.secret);
    expect_failure(&f, &k, msg::AUTHENTICATION_FAILED, "restored on the proxy").await;
}
