//! KMS- and XKS-shaped requests: sign() then inspect()/verify(), and every
//! way a request can fail verification.

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use keyhold_sigv4::{inspect, payload_hash, sign, verify, RequestParts, SigV4Error};

const AKID: &str = "AKIAKEYHOLDTEST00001";
const SECRET: &str = "kH0ld/SecretKey+ForTests0123456789abcdEF";
const REGION: &str = "eu-west-1";
const HOST: &str = "kms.eu-west-1.amazonaws.com";
const BODY: &str = r#"{"KeyId":"alias/test","Plaintext":"aGVsbG8="}"#;
const SIGNED_AT: OffsetDateTime = datetime!(2025-01-01 10:00:00 UTC);
const KMS_SKEW: Duration = Duration::minutes(15);

/// A KMS request as aws-sdk-kms / botocore send it, signed; the headers
/// are returned in wire form including Authorization and X-Amz-Date.
fn signed_kms_request() -> Vec<(String, String)> {
    let hash = payload_hash(BODY.as_bytes());
    let headers = [
        ("Host", HOST),
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", "TrentService.Encrypt"),
        ("User-Agent", "aws-sdk-rust/1.0"),
    ];
    let parts = RequestParts {
        method: "POST",
        raw_path: "/",
        raw_query: "",
        headers: &headers,
        payload_sha256_hex: &hash,
    };
    let out = sign(
        &parts,
        AKID,
        SECRET,
        REGION,
        "kms",
        SIGNED_AT,
        &["content-type", "host", "x-amz-date", "x-amz-target"],
    )
    .expect("signs");
    assert_eq!(out.content_sha256, None);
    assert_eq!(out.amz_date, "20250101T100000Z");
    assert!(out.authorization.starts_with(
        "AWS4-HMAC-SHA256 Credential=AKIAKEYHOLDTEST00001/20250101/eu-west-1/kms/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="
    ));
    let mut wire: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    for (n, v) in out.headers() {
        wire.push((n.to_string(), v.to_string()));
    }
    wire
}

struct Req {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: String,
    now: OffsetDateTime,
    secret: String,
}

impl Req {
    fn kms() -> Req {
        Req {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: signed_kms_request(),
            body: BODY.into(),
            now: SIGNED_AT,
            secret: SECRET.into(),
        }
    }

    fn set(&mut self, name: &str, value: &str) -> &mut Self {
        self.remove(name);
        self.headers.push((name.into(), value.into()));
        self
    }

    fn remove(&mut self, name: &str) -> &mut Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    fn header(&self, name: &str) -> String {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .expect("header present")
    }

    /// Rewrites the Authorization header with `f`.
    fn edit_auth(&mut self, f: impl Fn(&str) -> String) -> &mut Self {
        let new = f(&self.header("authorization"));
        self.set("Authorization", &new)
    }

    /// The server's view: inspect, check the scope, verify.
    fn check(&self) -> Result<(), SigV4Error> {
        let hash = payload_hash(self.body.as_bytes());
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let parts = RequestParts {
            method: &self.method,
            raw_path: &self.path,
            raw_query: &self.query,
            headers: &headers,
            payload_sha256_hex: &hash,
        };
        let parsed = inspect(&parts)?;
        assert_eq!(parsed.access_key_id(), AKID);
        parsed.check_scope(Some(REGION), "kms")?;
        verify(&parsed, &parts, &self.secret, self.now, KMS_SKEW)
    }
}

fn assert_mismatch(r: Result<(), SigV4Error>, what: &str) {
    match r {
        Err(e @ SigV4Error::SignatureMismatch { .. }) => {
            assert_eq!(e.wire_name(), "InvalidSignatureException")
        }
        other => panic!("{what}: expected SignatureMismatch, got {other:?}"),
    }
}

fn incomplete(r: Result<(), SigV4Error>) -> String {
    match r {
        Err(SigV4Error::IncompleteSignature(m)) => m,
        other => panic!("expected IncompleteSignature, got {other:?}"),
    }
}

fn invalid(r: Result<(), SigV4Error>) -> String {
    match r {
        Err(SigV4Error::InvalidSignature(m)) => m,
        other => panic!("expected InvalidSignature, got {other:?}"),
    }
}

#[test]
fn round_trip_verifies() {
    Req::kms()
        .check()
        .expect("a freshly signed request verifies");
}

#[test]
fn unsigned_headers_may_change() {
    let mut r = Req::kms();
    r.set("User-Agent", "something else entirely");
    r.headers
        .push(("X-Forwarded-For".into(), "10.0.0.1".into()));
    r.check().expect("unsigned headers are not covered");
}

#[test]
fn header_case_and_whitespace_do_not_matter() {
    let mut r = Req::kms();
    let target = r.header("x-amz-target");
    r.set("x-AMZ-target", &format!("  {target} "));
    r.check()
        .expect("names are case-insensitive, values trimmed");
}

#[test]
fn tampered_body_fails() {
    let mut r = Req::kms();
    r.body = BODY.replace("alias/test", "alias/evil");
    assert_mismatch(r.check(), "tampered body");
}

#[test]
fn tampered_signed_header_fails() {
    let mut r = Req::kms();
    r.set("X-Amz-Target", "TrentService.Decrypt");
    assert_mismatch(r.check(), "x-amz-target");

    let mut r = Req::kms();
    r.set("Host", "kms.us-east-1.amazonaws.com");
    assert_mismatch(r.check(), "host");

    let mut r = Req::kms();
    r.headers
        .push(("X-Amz-Target".into(), "TrentService.Decrypt".into()));
    assert_mismatch(r.check(), "second value for a signed header");

    let mut r = Req::kms();
    r.remove("Content-Type");
    assert_mismatch(r.check(), "signed header stripped");
}

#[test]
fn tampered_request_line_fails() {
    let mut r = Req::kms();
    r.method = "PUT".into();
    assert_mismatch(r.check(), "method");

    let mut r = Req::kms();
    r.path = "/other".into();
    assert_mismatch(r.check(), "path");

    let mut r = Req::kms();
    r.query = "Action=Decrypt".into();
    assert_mismatch(r.check(), "query");
}

#[test]
fn wrong_secret_fails() {
    let mut r = Req::kms();
    r.secret = SECRET.replace('K', "k");
    assert_mismatch(r.check(), "wrong secret");
}

#[test]
fn tampered_signature_fails() {
    let sig = |r: &Req| {
        let a = r.header("authorization");
        a[a.len() - 64..].to_string()
    };
    let original = sig(&Req::kms());

    let mut r = Req::kms();
    let flipped: String = original
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i == 10 {
                if c == 'a' {
                    'b'
                } else {
                    'a'
                }
            } else {
                c
            }
        })
        .collect();
    r.edit_auth(|a| a.replace(&original, &flipped));
    assert_mismatch(r.check(), "one digit changed");

    let mut r = Req::kms();
    r.edit_auth(|a| a.replace(&original, &original.to_uppercase()));
    assert_mismatch(r.check(), "upper-case hex");

    let mut r = Req::kms();
    r.edit_auth(|a| a.replace(&original, &original[..63]));
    assert_mismatch(r.check(), "truncated");

    let mut r = Req::kms();
    r.edit_auth(|a| a.replace(&original, ""));
    assert_mismatch(r.check(), "empty");
}

#[test]
fn signed_headers_list_is_taken_literally() {
    // Dropping x-amz-target from the list changes the canonical request.
    let mut r = Req::kms();
    r.edit_auth(|a| a.replace(";x-amz-target", ""));
    assert_mismatch(r.check(), "SignedHeaders shortened");
}

#[test]
fn clock_skew_window() {
    let mut r = Req::kms();
    r.now = SIGNED_AT + Duration::minutes(15);
    r.check()
        .expect("exactly 15 min later is inside the window");
    r.now = SIGNED_AT - Duration::minutes(15);
    r.check()
        .expect("exactly 15 min earlier is inside the window");

    r.now = SIGNED_AT + Duration::minutes(15) + Duration::seconds(1);
    let err = r.check().unwrap_err();
    assert_eq!(err.wire_name(), "InvalidSignatureException");
    assert_eq!(
        err.to_string(),
        "Signature expired: 20250101T100000Z is now earlier than 20250101T100001Z \
         (20250101T101501Z - 15 min.)"
    );
    assert!(matches!(
        err,
        SigV4Error::RequestExpired {
            not_yet_current: false,
            ..
        }
    ));

    r.now = SIGNED_AT - Duration::minutes(20);
    let err = r.check().unwrap_err();
    assert_eq!(
        err.to_string(),
        "Signature not yet current: 20250101T100000Z is still later than 20250101T095500Z \
         (20250101T094000Z + 15 min.)"
    );
}

#[test]
fn missing_authorization() {
    let mut r = Req::kms();
    r.remove("Authorization");
    let err = r.check().unwrap_err();
    assert_eq!(err, SigV4Error::MissingAuthentication);
    assert_eq!(err.wire_name(), "MissingAuthenticationTokenException");

    r.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00".into();
    assert!(incomplete(r.check()).contains("presigned"));
}

#[test]
fn duplicate_authorization() {
    let mut r = Req::kms();
    let a = r.header("authorization");
    r.headers.push(("authorization".into(), a));
    assert!(incomplete(r.check()).contains("exactly one Authorization"));
}

#[test]
fn missing_or_malformed_date() {
    let mut r = Req::kms();
    r.remove("X-Amz-Date");
    let auth = r.header("authorization");
    assert_eq!(
        incomplete(r.check()),
        format!(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' \
             header. Authorization={auth}"
        )
    );

    let mut r = Req::kms();
    r.set("X-Amz-Date", "2025-01-01T10:00:00Z");
    assert_eq!(
        incomplete(r.check()),
        "Date must be in ISO-8601 'basic format'. Got '2025-01-01T10:00:00Z'. \
         See http://en.wikipedia.org/wiki/ISO_8601"
    );

    // A present but malformed X-Amz-Date is not rescued by Date.
    r.headers
        .push(("Date".into(), "Wed, 01 Jan 2025 10:00:00 GMT".into()));
    incomplete(r.check());
}

#[test]
fn malformed_authorization_pieces() {
    type Edit = fn(&str) -> String;
    let cases: [(&str, Edit, &str); 5] = [
        (
            "no Signature",
            |a| a[..a.find(", Signature").unwrap_or(a.len())].to_string(),
            "Authorization header requires 'Signature' parameter.",
        ),
        (
            "no Credential",
            |a| a.replacen("Credential=", "Cred=", 1),
            "Authorization header requires 'Credential' parameter.",
        ),
        (
            "no SignedHeaders",
            |a| a.replacen("SignedHeaders=", "Signed=", 1),
            "Authorization header requires 'SignedHeaders' parameter.",
        ),
        (
            "four-element credential",
            |a| a.replacen("/kms/", "/", 1),
            "Credential must have exactly 5 slash-delimited elements",
        ),
        (
            "other algorithm",
            |a| a.replacen("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1),
            "Unsupported AWS 'algorithm': 'AWS4-ECDSA-P256-SHA256'",
        ),
    ];
    for (what, edit, want) in cases {
        let mut r = Req::kms();
        r.edit_auth(edit);
        let message = incomplete(r.check());
        assert!(message.contains(want), "{what}: {message}");
    }

    let mut r = Req::kms();
    r.edit_auth(|a| a.replacen("aws4_request", "aws4_reqest", 1));
    assert!(invalid(r.check()).contains("valid terminator: 'aws4_request', not 'aws4_reqest'"));

    let mut r = Req::kms();
    r.set("Authorization", "Bearer eyJhbGciOi");
    assert!(incomplete(r.check()).ends_with("Authorization=Bearer eyJhbGciOi"));
}

#[test]
fn host_must_be_signed() {
    let mut r = Req::kms();
    r.edit_auth(|a| {
        a.replace(
            "SignedHeaders=content-type;host;",
            "SignedHeaders=content-type;",
        )
    });
    assert_eq!(
        invalid(r.check()),
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
    );
}

#[test]
fn scope_must_match_date_region_and_service() {
    let mut r = Req::kms();
    r.edit_auth(|a| a.replace("/20250101/", "/20241231/"));
    assert_eq!(
        invalid(r.check()),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
         HTTP: '20241231' != '20250101', from '20250101T100000Z'."
    );

    // Signed correctly, but for another service and region.
    let hash = payload_hash(b"");
    let headers = [("host", HOST)];
    let parts = RequestParts {
        method: "POST",
        raw_path: "/",
        raw_query: "",
        headers: &headers,
        payload_sha256_hex: &hash,
    };
    let out = sign(
        &parts,
        AKID,
        SECRET,
        "us-east-1",
        "dynamodb",
        SIGNED_AT,
        &["host"],
    )
    .expect("signs");
    let mut all = headers.to_vec();
    all.extend(out.headers());
    let parts = RequestParts {
        headers: &all,
        ..parts
    };
    let parsed = inspect(&parts).expect("well formed");
    verify(&parsed, &parts, SECRET, SIGNED_AT, KMS_SKEW).expect("signature itself is fine");
    let err = parsed.check_scope(Some(REGION), "kms").unwrap_err();
    assert_eq!(err.wire_name(), "InvalidSignatureException");
    assert_eq!(
        err.to_string(),
        "Credential should be scoped to a valid region, not 'us-east-1'. \
         Credential should be scoped to correct service: 'kms'."
    );
    parsed
        .check_scope(None, "dynamodb")
        .expect("any region accepted with None");
}
