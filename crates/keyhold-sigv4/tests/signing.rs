//! Signing for outgoing calls (the XKS client's shape), sign()'s input
//! checks, and verification of requests dated by an HTTP `Date` header.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use keyhold_sigv4::{
    canonical_request, inspect, payload_hash, sign, signing_key, string_to_sign, verify,
    RequestParts, SigV4Error,
};

const AKID: &str = "AKIAKEYHOLDTEST00001";
const SECRET: &str = "kH0ld/SecretKey+ForTests0123456789abcdEF";
const REGION: &str = "eu-west-1";
const HOST: &str = "kms.eu-west-1.amazonaws.com";
const SIGNED_AT: OffsetDateTime = datetime!(2025-01-01 10:00:00 UTC);
const KMS_SKEW: Duration = Duration::minutes(15);

#[test]
fn date_header_fallback() {
    // Old-style clients sign with an HTTP Date header instead of X-Amz-Date;
    // the string to sign then carries that date in basic format.
    let hash = payload_hash(b"");
    let headers = vec![("Host", HOST), ("Date", "Wed, 01 Jan 2025 10:00:00 GMT")];
    let parts = RequestParts {
        method: "GET",
        raw_path: "/",
        raw_query: "",
        headers: &headers,
        payload_sha256_hex: &hash,
    };
    let signed = ["date".to_string(), "host".to_string()];
    let creq = canonical_request(&parts, &signed);
    let scope = "20250101/eu-west-1/kms/aws4_request";
    let sts = string_to_sign("20250101T100000Z", scope, &creq);
    let mut mac = Hmac::<Sha256>::new_from_slice(&signing_key(SECRET, "20250101", REGION, "kms"))
        .expect("any key length");
    mac.update(sts.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={AKID}/{scope}, SignedHeaders=date;host, Signature={signature}"
    );
    let mut all = headers.clone();
    all.push(("Authorization", &auth));
    let parts = RequestParts {
        headers: &all,
        method: "GET",
        raw_path: "/",
        raw_query: "",
        payload_sha256_hex: &hash,
    };
    let parsed = inspect(&parts).expect("Date header accepted");
    assert_eq!(parsed.amz_date, "20250101T100000Z");
    verify(&parsed, &parts, SECRET, SIGNED_AT, KMS_SKEW).expect("verifies");
}

/// The XKS client's shape: service kms-xks-proxy, only host;x-amz-date
/// signed, an encoded key id in the path, the XKS 5-minute window.
#[test]
fn xks_round_trip() {
    let body = br#"{"requestMetadata":{"kmsOperation":"Encrypt"},"plaintext":"aGk="}"#;
    let hash = payload_hash(body);
    let path = "/kms/xks/v1/keys/k%201/encrypt";
    let headers = [
        ("host", "xks.example.com:8443"),
        ("content-type", "application/json"),
    ];
    let parts = RequestParts {
        method: "POST",
        raw_path: path,
        raw_query: "",
        headers: &headers,
        payload_sha256_hex: &hash,
    };
    let out = sign(
        &parts,
        "AKIAXKSCLIENT",
        SECRET,
        "us-east-1",
        "kms-xks-proxy",
        SIGNED_AT,
        &["x-amz-date", "host", "x-amz-content-sha256"],
    )
    .expect("signs");
    assert_eq!(out.content_sha256.as_deref(), Some(hash.as_str()));

    let mut all = headers.to_vec();
    all.extend(out.headers());
    let parts = RequestParts {
        headers: &all,
        ..parts
    };
    let parsed = inspect(&parts).expect("well formed");
    parsed
        .check_scope(Some("us-east-1"), "kms-xks-proxy")
        .expect("scope");
    let window = Duration::minutes(5);
    verify(&parsed, &parts, SECRET, SIGNED_AT + window, window).expect("verifies");
    let err = verify(
        &parsed,
        &parts,
        SECRET,
        SIGNED_AT + Duration::minutes(6),
        window,
    )
    .unwrap_err();
    assert!(err.to_string().ends_with("- 5 min.)"), "{err}");

    // The path is signed in its doubly-encoded form, so decoding it (or
    // encoding it differently) on the way breaks the signature.
    for other in [
        "/kms/xks/v1/keys/k 1/encrypt",
        "/kms/xks/v1/keys/k%25201/encrypt",
        "/kms/xks/v1/keys/k+1/encrypt",
    ] {
        let tampered = RequestParts {
            raw_path: other,
            ..parts
        };
        assert!(matches!(
            verify(&parsed, &tampered, SECRET, SIGNED_AT, window),
            Err(SigV4Error::SignatureMismatch { .. })
        ));
    }
}

#[test]
fn sign_rejects_unsignable_input() {
    let hash = payload_hash(b"");
    let headers = [("host", HOST)];
    let parts = RequestParts {
        method: "GET",
        raw_path: "/",
        raw_query: "",
        headers: &headers,
        payload_sha256_hex: &hash,
    };
    let bad = |r: Result<_, SigV4Error>| match r {
        Err(e @ SigV4Error::InvalidSigningInput(_)) => e.to_string(),
        other => panic!("expected InvalidSigningInput, got {other:?}"),
    };
    assert!(bad(sign(
        &parts,
        AKID,
        SECRET,
        REGION,
        "kms",
        SIGNED_AT,
        &["x-amz-date"]
    ))
    .contains("'host'"));
    assert!(bad(sign(
        &parts,
        AKID,
        SECRET,
        REGION,
        "kms",
        SIGNED_AT,
        &["host", "x-amz-target"]
    ))
    .contains("x-amz-target"));
    assert!(bad(sign(
        &parts,
        AKID,
        SECRET,
        "eu/west",
        "kms",
        SIGNED_AT,
        &["host"]
    ))
    .contains("region"));
    assert!(bad(sign(
        &parts,
        "",
        SECRET,
        REGION,
        "kms",
        SIGNED_AT,
        &["host"]
    ))
    .contains("access key id"));
    assert!(bad(sign(
        &parts,
        AKID,
        SECRET,
        REGION,
        "kms",
        SIGNED_AT,
        &["host", "a;b"]
    ))
    .contains("not a header name"));
}
