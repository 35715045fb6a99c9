//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`) as pure functions.
//!
//! Keyhold uses this crate to *verify* requests from AWS SDKs, the AWS
//! CLI and `curl --aws-sigv4` (the KMS server; later an XKS proxy) and to
//! *sign* requests (the XKS client, service `kms-xks-proxy`). It does no
//! I/O: requests come in as [`RequestParts`] of plain strings, which makes
//! it usable from any server stack and easy to test against AWS's published
//! vectors. The one concession to an HTTP crate is [`HttpRequestParts`],
//! which builds those strings from an `http::request::Parts` the same way
//! for every Keyhold front door (the `http` crate is types only).
//!
//! # Verifying
//!
//! Two steps, so the caller can look the secret up in between:
//!
//! ```text
//! let owned = keyhold_sigv4::HttpRequestParts::from_http(&http_parts, &body);
//! let parts = owned.request_parts();
//! let parsed = keyhold_sigv4::inspect(&parts)?;            // shape, date, host signed
//! let secret = lookup(parsed.access_key_id())              // unknown -> UnrecognizedClientException
//! parsed.check_scope(Some("us-east-1"), "kms")?;           // region / service of the scope
//! keyhold_sigv4::verify(&parsed, &parts, secret, now, Duration::minutes(15))?;
//! ```
//!
//! Every failure is a [`SigV4Error`] whose `Display` is AWS's message and
//! whose [`SigV4Error::wire_name`] is AWS's exception name.
//!
//! # Signing
//!
//! [`sign`] returns the `Authorization` and `X-Amz-Date` (and optionally
//! `X-Amz-Content-SHA256`) header values to add to a request.
//!
//! # Building blocks
//!
//! [`parse_authorization`], [`canonical_request`], [`string_to_sign`],
//! [`signing_key`] and [`payload_hash`] are the individual SigV4 steps,
//! public so they can be checked step by step against AWS's test suite
//! and reused (e.g. to log the canonical request while debugging).
//!
//! # Not supported
//!
//! Presigned URLs (query-string authentication) are refused with
//! [`SigV4Error::IncompleteSignature`]; S3-specific rules (single URI
//! encoding, no path normalisation, chunked payloads) are not implemented;
//! `X-Amz-Security-Token` is just another header here (the caller decides
//! what session tokens mean).
#![warn(missing_docs)]

mod auth;
mod canonical;
mod date;
mod error;
mod http_parts;
mod key_cache;
mod sign;
mod verify;

pub use auth::{parse_authorization, ParsedAuthorization};
pub use canonical::{canonical_request, payload_hash, string_to_sign, ALGORITHM, TERMINATOR};
pub use error::SigV4Error;
pub use http_parts::HttpRequestParts;
pub use sign::{sign, signing_key, SigningOutput};
pub use verify::{inspect, verify, ParsedRequest};

/// A request as received on (or about to go onto) the wire, borrowed.
///
/// Nothing here is decoded or normalised by the caller: canonicalisation
/// happens inside the crate so it matches what the signer did.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// HTTP method, upper-case as sent (`GET`, `POST`).
    pub method: &'a str,
    /// The path exactly as on the wire, still percent-encoded, e.g. `/`
    /// or `/kms/xks/v1/keys/k%201/encrypt`. Empty means `/`.
    pub raw_path: &'a str,
    /// The raw query string without the `?`; `""` when there is none.
    pub raw_query: &'a str,
    /// All headers as (name, value) pairs: names case-insensitive, repeated
    /// names allowed (their values are joined in this order).
    ///
    /// Must include `host`. Over HTTP/2 there is no `Host` header; the
    /// server must add `("host", <:authority>)` itself, because that is
    /// what clients sign.
    pub headers: &'a [(&'a str, &'a str)],
    /// Lower-case hex SHA-256 of the body ([`payload_hash`]). A server
    /// computes it from the bytes it received; if `x-amz-content-sha256`
    /// is signed and is not `UNSIGNED-PAYLOAD`, the server should also
    /// check that header against the body.
    pub payload_sha256_hex: &'a str,
}
