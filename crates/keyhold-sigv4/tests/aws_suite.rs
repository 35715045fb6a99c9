//! AWS's published SigV4 test suite ("aws-sig-v4-test-suite") and the IAM
//! example from the SigV4 documentation.
//!
//! Expected values are AWS's, not computed by this crate: every vector
//! uses AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY,
//! 20150830T123600Z, us-east-1, service "service". Each vector is checked
//! three ways: the step-by-step building blocks, `sign()` reproducing the
//! published `Authorization` header, and `inspect()` + `verify()`
//! accepting that published header.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use keyhold_sigv4::{
    canonical_request, inspect, payload_hash, sign, signing_key, string_to_sign, verify,
    RequestParts,
};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const AMZ_DATE: &str = "20150830T123600Z";
const SCOPE: &str = "20150830/us-east-1/service/aws4_request";
const NOW: OffsetDateTime = datetime!(2015-08-30 12:36:00 UTC);
const HOST: (&str, &str) = ("Host", "example.amazonaws.com");
const DATE: (&str, &str) = ("X-Amz-Date", AMZ_DATE);

struct Vector {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    query: &'static str,
    /// Headers besides Host and X-Amz-Date, in wire order.
    extra: &'static [(&'static str, &'static str)],
    body: &'static str,
    signed: &'static str,
    signature: &'static str,
}

const GET_VANILLA: &str = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
const STS_TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

const fn get(name: &'static str, path: &'static str, signature: &'static str) -> Vector {
    Vector {
        name,
        method: "GET",
        path,
        query: "",
        extra: &[],
        body: "",
        signed: "host;x-amz-date",
        signature,
    }
}

const fn get_query(name: &'static str, query: &'static str, signature: &'static str) -> Vector {
    Vector {
        query,
        ..get(name, "/", signature)
    }
}

const fn with_header(
    name: &'static str,
    method: &'static str,
    extra: &'static [(&'static str, &'static str)],
    signature: &'static str,
) -> Vector {
    Vector {
        method,
        extra,
        signed: "host;my-header1;x-amz-date",
        ..get(name, "/", signature)
    }
}

const VECTORS: &[Vector] = &[
    get("get-vanilla", "/", GET_VANILLA),
    get(
        "get-unreserved",
        "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
    ),
    get(
        "get-utf8",
        "/\u{1234}",
        "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
    ),
    get(
        "normalize-path/get-space",
        "/example space/",
        "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
    ),
    get(
        "normalize-path/get-slashes",
        "//example//",
        "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84",
    ),
    get("normalize-path/get-slash", "//", GET_VANILLA),
    get("normalize-path/get-slash-dot-slash", "/./", GET_VANILLA),
    get("normalize-path/get-relative", "/example/..", GET_VANILLA),
    get(
        "normalize-path/get-relative-relative",
        "/example1/example2/../..",
        GET_VANILLA,
    ),
    get(
        "normalize-path/get-slash-pointless-dot",
        "/./example",
        "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5",
    ),
    get_query(
        "get-vanilla-query-order-key-case",
        "Param2=value2&Param1=value1",
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    ),
    get_query(
        "get-vanilla-query-order-key",
        "Param1=value2&Param1=Value1",
        "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1",
    ),
    get_query(
        "get-vanilla-query-order-value",
        "Param1=value2&Param1=value1",
        "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694",
    ),
    get_query(
        "get-vanilla-empty-query-key",
        "Param1=value1",
        "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb",
    ),
    get_query(
        "get-vanilla-query-unreserved",
        "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
        "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
    ),
    get_query(
        "get-vanilla-utf8-query",
        "\u{1234}=bar",
        "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
    ),
    with_header(
        "get-header-key-duplicate",
        "GET",
        &[
            ("My-Header1", "value2"),
            ("My-Header1", "value2"),
            ("My-Header1", "value1"),
        ],
        "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
    ),
    with_header(
        "get-header-value-order",
        "GET",
        &[
            ("My-Header1", "value4"),
            ("My-Header1", "value1"),
            ("My-Header1", "value3"),
            ("My-Header1", "value2"),
        ],
        "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
    ),
    with_header(
        "get-header-value-multiline (folded into one value)",
        "GET",
        &[("My-Header1", "value1,value2,value3")],
        "ba17b383a53190154eb5fa66a1b836cc297cc0a3d70a5d00705980573d8ff790",
    ),
    Vector {
        extra: &[("My-Header1", " value1"), ("My-Header2", "\"a   b   c\"")],
        signed: "host;my-header1;my-header2;x-amz-date",
        ..get(
            "get-header-value-trim",
            "/",
            "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
        )
    },
    Vector {
        method: "POST",
        ..get(
            "post-vanilla",
            "/",
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        )
    },
    Vector {
        method: "POST",
        ..get_query(
            "post-vanilla-empty-query-value",
            "Param1=value1",
            "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
        )
    },
    with_header(
        "post-header-key-sort",
        "POST",
        &[("My-Header1", "value1")],
        "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
    ),
    with_header(
        "post-header-value-case",
        "POST",
        &[("My-Header1", "VALUE1")],
        "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d",
    ),
    Vector {
        method: "POST",
        extra: &[("Content-Type", "application/x-www-form-urlencoded")],
        body: "Param1=value1",
        signed: "content-type;host;x-amz-date",
        ..get(
            "post-x-www-form-urlencoded",
            "/",
            "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        )
    },
    Vector {
        method: "POST",
        extra: &[(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf8",
        )],
        body: "Param1=value1",
        signed: "content-type;host;x-amz-date",
        ..get(
            "post-x-www-form-urlencoded-parameters",
            "/",
            "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe",
        )
    },
    Vector {
        method: "POST",
        extra: &[("X-Amz-Security-Token", STS_TOKEN)],
        signed: "host;x-amz-date;x-amz-security-token",
        ..get(
            "post-sts-token/post-sts-header-before",
            "/",
            "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
        )
    },
];

fn hmac_hex(key: &[u8], data: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(data.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn authorization(signed: &str, signature: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={AKID}/{SCOPE}, SignedHeaders={signed}, Signature={signature}"
    )
}

fn run(v: &Vector) {
    let hash = payload_hash(v.body.as_bytes());
    let mut headers = vec![HOST];
    headers.extend_from_slice(v.extra);
    headers.push(DATE);
    let parts = RequestParts {
        method: v.method,
        raw_path: v.path,
        raw_query: v.query,
        headers: &headers,
        payload_sha256_hex: &hash,
    };
    let signed: Vec<String> = v.signed.split(';').map(str::to_string).collect();

    // 1. Building blocks.
    let creq = canonical_request(&parts, &signed);
    let sts = string_to_sign(AMZ_DATE, SCOPE, &creq);
    let key = signing_key(SECRET, "20150830", "us-east-1", "service");
    assert_eq!(
        hmac_hex(&key, &sts),
        v.signature,
        "{}: building blocks\n{creq}",
        v.name
    );

    // 2. sign() reproduces the published Authorization header.
    let names: Vec<&str> = v.signed.split(';').collect();
    let out = sign(&parts, AKID, SECRET, "us-east-1", "service", NOW, &names)
        .unwrap_or_else(|e| panic!("{}: sign failed: {e}", v.name));
    assert_eq!(
        out.authorization,
        authorization(v.signed, v.signature),
        "{}",
        v.name
    );
    assert_eq!(out.amz_date, AMZ_DATE);

    // 3. The published header verifies, and a one-digit change does not.
    let header = authorization(v.signed, v.signature);
    let mut with_auth = headers.clone();
    with_auth.push(("Authorization", &header));
    let parts = RequestParts {
        headers: &with_auth,
        ..parts
    };
    let parsed = inspect(&parts).unwrap_or_else(|e| panic!("{}: inspect failed: {e}", v.name));
    assert_eq!(parsed.access_key_id(), AKID);
    parsed
        .check_scope(Some("us-east-1"), "service")
        .expect("scope");
    verify(&parsed, &parts, SECRET, NOW, Duration::minutes(15))
        .unwrap_or_else(|e| panic!("{}: verify failed: {e}", v.name));

    let flipped = format!(
        "{}{}",
        &v.signature[..63],
        if v.signature.ends_with('0') { '1' } else { '0' }
    );
    let bad = authorization(v.signed, &flipped);
    let mut with_bad = headers.clone();
    with_bad.push(("Authorization", &bad));
    let parts = RequestParts {
        headers: &with_bad,
        ..parts
    };
    let parsed = inspect(&parts).expect("shape is fine");
    assert!(
        verify(&parsed, &parts, SECRET, NOW, Duration::minutes(15)).is_err(),
        "{}: flipped signature accepted",
        v.name
    );
}

#[test]
fn aws_sig_v4_test_suite() {
    for v in VECTORS {
        run(v);
    }
}

/// Published canonical requests and strings to sign (`.creq`/`.sts` files).
#[test]
fn aws_sig_v4_test_suite_intermediate_steps() {
    let body_hash = payload_hash(b"Param1=value1");
    assert_eq!(
        body_hash,
        "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"
    );
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        HOST,
        DATE,
    ];
    let parts = RequestParts {
        method: "POST",
        raw_path: "/",
        raw_query: "",
        headers: &headers,
        payload_sha256_hex: &body_hash,
    };
    let signed = ["content-type", "host", "x-amz-date"].map(String::from);
    let creq = canonical_request(&parts, &signed);
    assert_eq!(
        creq,
        "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n\
         x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n\
         9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"
    );
    assert_eq!(
        string_to_sign(AMZ_DATE, SCOPE, &creq),
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
         42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281"
    );

    let empty = payload_hash(b"");
    let headers = [HOST, DATE];
    let parts = RequestParts {
        method: "GET",
        raw_path: "/",
        raw_query: "Param1=value2&Param1=Value1",
        headers: &headers,
        payload_sha256_hex: &empty,
    };
    let creq = canonical_request(&parts, &["host".into(), "x-amz-date".into()]);
    assert_eq!(
        creq,
        "GET\n/\nParam1=Value1&Param1=value2\nhost:example.amazonaws.com\n\
         x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        string_to_sign(AMZ_DATE, SCOPE, &creq),
        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
         704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89"
    );
}

/// The worked example of the SigV4 documentation: IAM ListUsers.
#[test]
fn aws_documentation_iam_example() {
    let empty = payload_hash(b"");
    let headers = [
        (
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
        ("Host", "iam.amazonaws.com"),
        ("X-Amz-Date", AMZ_DATE),
    ];
    let parts = RequestParts {
        method: "GET",
        raw_path: "/",
        raw_query: "Action=ListUsers&Version=2010-05-08",
        headers: &headers,
        payload_sha256_hex: &empty,
    };
    let signed = ["content-type", "host", "x-amz-date"].map(String::from);
    let creq = canonical_request(&parts, &signed);
    assert_eq!(
        payload_hash(creq.as_bytes()),
        "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
    );
    let scope = "20150830/us-east-1/iam/aws4_request";
    let key = signing_key(SECRET, "20150830", "us-east-1", "iam");
    assert_eq!(
        hex::encode(key),
        "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
    );
    let sts = string_to_sign(AMZ_DATE, scope, &creq);
    let signature = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
    assert_eq!(hmac_hex(&key, &sts), signature);

    let out = sign(
        &parts,
        AKID,
        SECRET,
        "us-east-1",
        "iam",
        NOW,
        &["Host", "X-Amz-Date", "Content-Type"],
    )
    .expect("signs");
    assert_eq!(
        out.authorization,
        format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{scope}, \
             SignedHeaders=content-type;host;x-amz-date, Signature={signature}"
        )
    );
}
