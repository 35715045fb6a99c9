//! Task 1 and 2 of SigV4: the canonical request and the string to sign.

use percent_encoding::{percent_decode_str, percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

use crate::RequestParts;

/// The algorithm name, the first line of every string to sign.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The fixed last element of every credential scope.
pub const TERMINATOR: &str = "aws4_request";

/// RFC 3986 unreserved characters stay as they are; every other byte is
/// `%XX` with upper-case hex.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Same as [`UNRESERVED`] but keeps the path separator.
const PATH: &AsciiSet = &UNRESERVED.remove(b'/');

/// Lower-case hex SHA-256 of `data`.
///
/// Servers use it for [`RequestParts::payload_sha256_hex`] (hash the body
/// they received); signers for the same field of the request they send.
pub fn payload_hash(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Builds the SigV4 canonical request:
///
/// ```text
/// METHOD\nCanonicalURI\nCanonicalQuery\nCanonicalHeaders\n\nSignedHeaders\nHashedPayload
/// ```
///
/// `signed_headers` is used in the order given (verification must use the
/// client's list exactly; [`crate::sign`] passes it sorted). Names are
/// matched case-insensitively and written lower-case. A signed header the
/// request does not carry canonicalises as an empty value, so a stripped
/// header simply fails verification instead of being an error of its own.
///
/// The rules, for non-S3 services, as AWS's SDKs apply them:
/// * URI: the raw wire path with `.`/`..` segments resolved and empty
///   segments dropped (a trailing `/` is kept), then every byte except
///   unreserved characters and `/` percent-encoded *once more*; since the
///   wire path is already encoded this is AWS's "encode twice". Empty → `/`.
/// * Query: each `name=value` pair percent-decoded then re-encoded with the
///   RFC 3986 unreserved set (`+` is a literal plus), sorted by name then
///   value, bytewise. A name without `=` gets an empty value.
/// * Headers: values trimmed, runs of spaces collapsed to one, repeated
///   headers joined with `,` in the order received.
pub fn canonical_request(parts: &RequestParts<'_>, signed_headers: &[String]) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(parts.method);
    out.push('\n');
    out.push_str(&canonical_uri(parts.raw_path));
    out.push('\n');
    out.push_str(&canonical_query(parts.raw_query));
    out.push('\n');
    for name in signed_headers {
        let name = name.to_ascii_lowercase();
        let value = header_value(parts.headers, &name).unwrap_or_default();
        out.push_str(&name);
        out.push(':');
        out.push_str(&value);
        out.push('\n');
    }
    out.push('\n');
    let names: Vec<String> = signed_headers
        .iter()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    out.push_str(&names.join(";"));
    out.push('\n');
    out.push_str(parts.payload_sha256_hex);
    out
}

/// Builds the string to sign:
/// `AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256(canonical_request)>`.
///
/// `amz_date` is ISO-8601 basic format (`20150830T123600Z`) and `scope`
/// is `yyyymmdd/region/service/aws4_request`.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        payload_hash(canonical_request.as_bytes())
    )
}

/// All values of header `name` (already lower-case), each normalised,
/// joined by `,`; `None` when the request has no such header.
pub(crate) fn header_value(headers: &[(&str, &str)], name: &str) -> Option<String> {
    let mut joined: Option<String> = None;
    for (n, v) in headers {
        if n.eq_ignore_ascii_case(name) {
            let v = normalize_value(v);
            match joined.as_mut() {
                Some(acc) => {
                    acc.push(',');
                    acc.push_str(&v);
                }
                None => joined = Some(v),
            }
        }
    }
    joined
}

/// Trims spaces/tabs at both ends and collapses each run of spaces inside
/// to a single space (AWS: "convert sequential spaces to a single space").
fn normalize_value(value: &str) -> String {
    let trimmed = value.trim_matches(|c| c == ' ' || c == '\t');
    let mut out = String::with_capacity(trimmed.len());
    let mut previous_space = false;
    for c in trimmed.chars() {
        if c == ' ' {
            if !previous_space {
                out.push(' ');
            }
            previous_space = true;
        } else {
            out.push(c);
            previous_space = false;
        }
    }
    out
}

/// Canonical URI for non-S3 services; see [`canonical_request`].
pub(crate) fn canonical_uri(raw_path: &str) -> String {
    let normalized = normalize_path(raw_path);
    percent_encode(normalized.as_bytes(), PATH).to_string()
}

/// Resolves `.` and `..`, drops empty segments, keeps a trailing slash
/// (as botocore and the Rust SDK do before signing, and as the AWS test
/// suite's `normalize-path` cases require).
fn normalize_path(raw_path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in raw_path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(raw_path.len() + 1);
    out.push('/');
    out.push_str(&segments.join("/"));
    if !segments.is_empty() && raw_path.ends_with('/') {
        out.push('/');
    }
    out
}

/// Canonical query string; see [`canonical_request`].
pub(crate) fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (reencode(name), reencode(value))
        })
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(raw_query.len() + 8);
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Percent-decodes (invalid escapes stay literal) and re-encodes with the
/// unreserved set, so `a%20b`, `a b` and `a%2520b`'s decoded form all end
/// in AWS's single canonical spelling.
fn reencode(component: &str) -> String {
    let decoded: Vec<u8> = percent_decode_str(component).collect();
    percent_encode(&decoded, UNRESERVED).to_string()
}

/// Whether the raw query names parameter `name` (used to recognise
/// presigned URLs, which carry `X-Amz-Algorithm`).
pub(crate) fn query_has(raw_query: &str, name: &str) -> bool {
    raw_query.split('&').any(|pair| {
        let key = pair.split_once('=').map_or(pair, |(k, _)| k);
        let decoded: Vec<u8> = percent_decode_str(key).collect();
        decoded == name.as_bytes()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_normalisation() {
        for (raw, want) in [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("/./", "/"),
            ("/example/..", "/"),
            ("/example1/example2/../..", "/"),
            ("/./example", "/example"),
            ("//example//", "/example/"),
            ("/a/b/../c", "/a/c"),
            ("/..", "/"),
            ("/../../a", "/a"),
            ("/a/..b/.c", "/a/..b/.c"),
            ("relative", "/relative"),
        ] {
            assert_eq!(normalize_path(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn uri_is_encoded_once_more() {
        assert_eq!(canonical_uri("/example space/"), "/example%20space/");
        assert_eq!(canonical_uri("/\u{1234}"), "/%E1%88%B4");
        assert_eq!(
            canonical_uri("/kms/xks/v1/keys/k%201/encrypt"),
            "/kms/xks/v1/keys/k%25201/encrypt"
        );
        assert_eq!(canonical_uri("/a%2Fb"), "/a%252Fb");
        assert_eq!(
            canonical_uri("/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
            "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        );
        // Encoded dots are data, not dot segments.
        assert_eq!(canonical_uri("/a/%2E%2E/b"), "/a/%252E%252E/b");
    }

    #[test]
    fn query_canonicalisation() {
        for (raw, want) in [
            ("", ""),
            ("Param2=value2&Param1=value1", "Param1=value1&Param2=value2"),
            ("Param1=value2&Param1=Value1", "Param1=Value1&Param1=value2"),
            ("b&a=1", "a=1&b="),
            ("a=1=2", "a=1%3D2"),
            ("q=a+b", "q=a%2Bb"),
            ("q=a%20b", "q=a%20b"),
            ("q=a%2fb", "q=a%2Fb"),
            ("x=a.b&x=a%2Fb", "x=a%2Fb&x=a.b"),
            ("a=10&a=9", "a=10&a=9"),
            ("a=1&&b=2&", "a=1&b=2"),
            ("%zz=%", "%25zz=%25"),
            ("\u{1234}=bar", "%E1%88%B4=bar"),
        ] {
            assert_eq!(canonical_query(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn header_values() {
        let headers = [
            ("My-Header1", "  a   b\tc  "),
            ("my-header1", "d"),
            ("Other", "x"),
        ];
        assert_eq!(
            header_value(&headers, "my-header1").as_deref(),
            Some("a b\tc,d")
        );
        assert_eq!(header_value(&headers, "missing"), None);
    }

    #[test]
    fn presign_detection() {
        assert!(query_has(
            "a=b&X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Algorithm"
        ));
        assert!(query_has("X%2DAmz-Algorithm", "X-Amz-Algorithm"));
        assert!(!query_has("x-amz-algorithmx=1", "X-Amz-Algorithm"));
    }
}
