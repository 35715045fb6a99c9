//! The one place that turns a received `http` request into [`RequestParts`].
//!
//! Every Keyhold front door that verifies SigV4 (the KMS API, the CloudHSM v2 API, the XKS
//! proxy) needs the same set-up, and getting it subtly different in one of them would make a
//! signature valid on one endpoint and not on another. The rules, kept exactly as they were in
//! each front door:
//!
//! * headers are taken in `HeaderMap` iteration order (repeated names stay in order, which is
//!   how SigV4 joins their values); a value that is not visible ASCII (`HeaderValue::to_str`
//!   fails) is skipped, as no SigV4 client can have signed it as text;
//! * without a `Host` header (HTTP/2, where the host travels as `:authority`), `host` is added
//!   from the URI authority, because that is what clients sign;
//! * the payload hash is computed from the bytes actually received.

use crate::{payload_hash, RequestParts};

/// The parts of a received HTTP request that SigV4 verification needs, with the header list
/// and payload hash built once and owned here; everything else borrows from the
/// [`http::request::Parts`] it was made from.
///
/// [`RequestParts`] borrows a `&[(&str, &str)]`, so something has to own that list while
/// verification runs; this struct is that owner.
#[derive(Debug, Clone)]
pub struct HttpRequestParts<'a> {
    method: &'a str,
    raw_path: &'a str,
    raw_query: &'a str,
    headers: Vec<(&'a str, &'a str)>,
    payload_sha256_hex: String,
}

impl<'a> HttpRequestParts<'a> {
    /// Collects method, raw path and query, headers (plus `host` from the URI authority when
    /// there is no `Host` header) and the SHA-256 of `body`.
    pub fn from_http(parts: &'a http::request::Parts, body: &[u8]) -> Self {
        let mut this = Self::for_inspection(parts);
        this.payload_sha256_hex = payload_hash(body);
        this
    }

    /// As [`HttpRequestParts::from_http`] without hashing the body, for a caller that only
    /// [`crate::inspect`]s the `Authorization` header (Keyhold's dev mode) and never verifies
    /// a signature: hashing a 4 KiB body costs more than the rest of the inspection. The
    /// payload hash is empty, so a [`crate::verify`] of these parts always fails.
    pub fn for_inspection(parts: &'a http::request::Parts) -> Self {
        let mut headers: Vec<(&'a str, &'a str)> = parts
            .headers
            .iter()
            .filter_map(|(name, value)| value.to_str().ok().map(|v| (name.as_str(), v)))
            .collect();
        if !parts.headers.contains_key(http::header::HOST) {
            if let Some(authority) = parts.uri.authority() {
                headers.push(("host", authority.as_str()));
            }
        }
        HttpRequestParts {
            method: parts.method.as_str(),
            raw_path: parts.uri.path(),
            raw_query: parts.uri.query().unwrap_or(""),
            headers,
            payload_sha256_hex: String::new(),
        }
    }

    /// The borrowed view that [`crate::inspect`] and [`crate::verify`] take.
    pub fn request_parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: self.method,
            raw_path: self.raw_path,
            raw_query: self.raw_query,
            headers: &self.headers,
            payload_sha256_hex: &self.payload_sha256_hex,
        }
    }

    /// Lower-case hex SHA-256 of the body, for comparing with a signed
    /// `x-amz-content-sha256` header.
    pub fn payload_sha256_hex(&self) -> &str {
        &self.payload_sha256_hex
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(builder: http::request::Builder) -> http::request::Parts {
        builder.body(()).expect("valid test request").into_parts().0
    }

    #[test]
    fn http1_uses_the_host_header_and_keeps_header_order() {
        let p = parts(
            http::Request::post("/kms/xks/v1/keys/k%201/encrypt?b=2&a=1")
                .header("host", "kms.example:8443")
                .header("x-amz-date", "20240101T000000Z")
                .header("x-multi", "one")
                .header("x-multi", "two"),
        );
        let owned = HttpRequestParts::from_http(&p, b"{}");
        let r = owned.request_parts();
        assert_eq!(r.method, "POST");
        assert_eq!(r.raw_path, "/kms/xks/v1/keys/k%201/encrypt");
        assert_eq!(r.raw_query, "b=2&a=1");
        assert_eq!(
            r.headers,
            &[
                ("host", "kms.example:8443"),
                ("x-amz-date", "20240101T000000Z"),
                ("x-multi", "one"),
                ("x-multi", "two"),
            ]
        );
        assert_eq!(r.payload_sha256_hex, payload_hash(b"{}"));
        assert_eq!(owned.payload_sha256_hex(), payload_hash(b"{}"));
    }

    #[test]
    fn parts_for_inspection_have_the_same_headers_and_no_payload_hash() {
        let p = parts(
            http::Request::post("https://kms.example/")
                .header("authorization", "AWS4-HMAC-SHA256 Credential=x")
                .header("x-amz-date", "20240101T000000Z"),
        );
        let full = HttpRequestParts::from_http(&p, b"{\"KeyId\":\"k\"}");
        let inspected = HttpRequestParts::for_inspection(&p);
        assert_eq!(
            inspected.request_parts().headers,
            full.request_parts().headers
        );
        assert_eq!(inspected.payload_sha256_hex(), "");
        assert_ne!(full.payload_sha256_hex(), "");
    }

    #[test]
    fn a_host_header_wins_over_the_uri_authority() {
        let p = parts(
            http::Request::post("https://authority.example/").header("host", "header.example"),
        );
        let owned = HttpRequestParts::from_http(&p, b"");
        assert_eq!(owned.request_parts().headers, &[("host", "header.example")]);
    }

    #[test]
    fn http2_authority_only_becomes_the_host_header() {
        let p = parts(
            http::Request::post("https://kms.example:443/")
                .version(http::Version::HTTP_2)
                .header("content-type", "application/x-amz-json-1.1"),
        );
        let owned = HttpRequestParts::from_http(&p, b"");
        let r = owned.request_parts();
        assert_eq!(
            r.headers,
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("host", "kms.example:443"),
            ]
        );
        assert_eq!(r.raw_path, "/");
        assert_eq!(r.raw_query, "");
        assert_eq!(r.payload_sha256_hex, payload_hash(b""));
    }

    #[test]
    fn no_host_and_no_authority_adds_nothing() {
        let p = parts(http::Request::get("/"));
        let owned = HttpRequestParts::from_http(&p, b"");
        assert!(owned.request_parts().headers.is_empty());
        assert_eq!(owned.request_parts().method, "GET");
    }

    #[test]
    fn non_visible_ascii_header_values_are_skipped() {
        let bad = http::HeaderValue::from_bytes(b"caf\xc3\xa9").expect("opaque bytes are allowed");
        let p = parts(
            http::Request::post("/")
                .header("host", "h")
                .header("x-bad", bad)
                .header("x-good", "ok"),
        );
        let owned = HttpRequestParts::from_http(&p, b"");
        assert_eq!(
            owned.request_parts().headers,
            &[("host", "h"), ("x-good", "ok")]
        );
    }
}
