//! Parsing the `Authorization` header.

use crate::canonical::{ALGORITHM, TERMINATOR};
use crate::SigV4Error;

/// The pieces of an `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
/// Signature=...` header, unverified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization {
    /// First element of the credential: who claims to have signed.
    pub access_key_id: String,
    /// Second element of the credential: the scope date, `yyyymmdd` as
    /// sent (checked against the request date by [`crate::inspect`]).
    pub date: String,
    /// Third element of the credential: the region the key was derived for.
    pub region: String,
    /// Fourth element of the credential: the service the key was derived for.
    pub service: String,
    /// The `SignedHeaders` list exactly as the client sent it, split on `;`.
    pub signed_headers: Vec<String>,
    /// The `Signature` value as sent (normally 64 lower-case hex digits).
    pub signature: String,
}

impl ParsedAuthorization {
    /// The credential scope `date/region/service/aws4_request`, the third
    /// line of the string to sign.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/{TERMINATOR}",
            self.date, self.region, self.service
        )
    }
}

/// Parses an `Authorization` header value.
///
/// Errors, with AWS's wording:
/// * missing `Credential`, `SignedHeaders` or `Signature` (also the answer
///   for non-AWS schemes such as `Bearer ...`), a `Credential` without
///   exactly five `/`-separated elements, an `AWS4-*` algorithm other
///   than `AWS4-HMAC-SHA256`, a parameter without `=` or given twice →
///   [`SigV4Error::IncompleteSignature`];
/// * a credential whose last element is not `aws4_request` →
///   [`SigV4Error::InvalidSignature`].
///
/// Never panics, whatever the input.
pub fn parse_authorization(header: &str) -> Result<ParsedAuthorization, SigV4Error> {
    parse_with_date(header, true)
}

/// [`parse_authorization`], folding AWS's "requires existence of either a
/// 'X-Amz-Date' or a 'Date' header" sentence into the same message when
/// `has_date` is false, as AWS does.
pub(crate) fn parse_with_date(
    header: &str,
    has_date: bool,
) -> Result<ParsedAuthorization, SigV4Error> {
    let trimmed = header.trim_matches(|c: char| c.is_ascii_whitespace());
    let (algorithm, rest) = trimmed
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((trimmed, ""));

    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;

    if algorithm == ALGORITHM {
        // AWS tokenises on commas *and* whitespace: a stray space inside the
        // credential yields its "missing equal-sign" error for the tail.
        for piece in rest.split(|c: char| c == ',' || c.is_ascii_whitespace()) {
            if piece.is_empty() {
                continue;
            }
            let Some((key, value)) = piece.split_once('=') else {
                return Err(SigV4Error::IncompleteSignature(format!(
                    "'{piece}' not a valid key=value pair (missing equal-sign) in \
                     Authorization header: '{header}'."
                )));
            };
            let slot = match key {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed_headers,
                "Signature" => &mut signature,
                _ => continue,
            };
            if slot.is_some() {
                return Err(SigV4Error::IncompleteSignature(format!(
                    "Authorization header has a duplicate '{key}' parameter. Authorization={header}"
                )));
            }
            *slot = Some(value);
        }
    } else if algorithm.starts_with("AWS4-") {
        return Err(SigV4Error::IncompleteSignature(format!(
            "Unsupported AWS 'algorithm': '{algorithm}' (only {ALGORITHM} for now). "
        )));
    }
    // Any other scheme leaves all three parameters missing, which is how
    // AWS answers e.g. a bearer token sent to a SigV4 endpoint.

    let (Some(credential), Some(signed_headers), Some(signature), true) =
        (credential, signed_headers, signature, has_date)
    else {
        let mut message = String::new();
        for (name, present) in [
            ("Credential", credential.is_some()),
            ("Signature", signature.is_some()),
            ("SignedHeaders", signed_headers.is_some()),
        ] {
            if !present {
                message.push_str(&format!(
                    "Authorization header requires '{name}' parameter. "
                ));
            }
        }
        if !has_date {
            message.push_str(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
            );
        }
        message.push_str("Authorization=");
        message.push_str(header);
        return Err(SigV4Error::IncompleteSignature(message));
    };

    let elements: Vec<&str> = credential.trim_end_matches('/').split('/').collect();
    let [access_key_id, date, region, service, terminator] = elements[..] else {
        return Err(SigV4Error::IncompleteSignature(format!(
            "Credential must have exactly 5 slash-delimited elements, \
             e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };
    if terminator != TERMINATOR {
        return Err(SigV4Error::InvalidSignature(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'."
        )));
    }

    Ok(ParsedAuthorization {
        access_key_id: access_key_id.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers: if signed_headers.is_empty() {
            Vec::new()
        } else {
            signed_headers.split(';').map(str::to_string).collect()
        },
        signature: signature.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

    fn incomplete(header: &str) -> String {
        match parse_authorization(header) {
            Err(SigV4Error::IncompleteSignature(m)) => m,
            other => panic!("expected IncompleteSignature for {header:?}, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_sdk_form() {
        let p = parse_authorization(GOOD).expect("valid");
        assert_eq!(p.access_key_id, "AKIDEXAMPLE");
        assert_eq!(p.date, "20150830");
        assert_eq!(p.region, "us-east-1");
        assert_eq!(p.service, "service");
        assert_eq!(p.signed_headers, ["host", "x-amz-date"]);
        assert_eq!(
            p.signature,
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
        assert_eq!(p.scope(), "20150830/us-east-1/service/aws4_request");
    }

    #[test]
    fn tolerates_spacing_order_and_trailing_slash() {
        let p = parse_authorization(
            "  AWS4-HMAC-SHA256   Signature=ab ,SignedHeaders=host,Credential=K/20150830/r/s/aws4_request/,Extra=1 ",
        )
        .expect("valid");
        assert_eq!(p.access_key_id, "K");
        assert_eq!(p.signature, "ab");
        assert_eq!(p.signed_headers, ["host"]);
    }

    #[test]
    fn missing_parameters_use_aws_wording() {
        assert_eq!(
            incomplete("AWS4-HMAC-SHA256 Credential=K/20150830/r/s/aws4_request"),
            "Authorization header requires 'Signature' parameter. Authorization header requires \
             'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 Credential=K/20150830/r/s/aws4_request"
        );
        assert_eq!(
            incomplete("Bearer abc"),
            "Authorization header requires 'Credential' parameter. Authorization header requires \
             'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. \
             Authorization=Bearer abc"
        );
        let with_date = parse_with_date("Bearer abc", false);
        let Err(SigV4Error::IncompleteSignature(m)) = with_date else {
            panic!("expected IncompleteSignature");
        };
        assert!(m.ends_with(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. \
             Authorization=Bearer abc"
        ));
    }

    #[test]
    fn malformed_pieces() {
        assert_eq!(
            incomplete("AWS4-HMAC-SHA256 Credential=K /20150830/r/s/aws4_request, SignedHeaders=host, Signature=ab"),
            "'/20150830/r/s/aws4_request' not a valid key=value pair (missing equal-sign) in \
             Authorization header: 'AWS4-HMAC-SHA256 Credential=K /20150830/r/s/aws4_request, \
             SignedHeaders=host, Signature=ab'."
        );
        assert!(incomplete(
            "AWS4-HMAC-SHA256 Credential= K/20150830/r/s/aws4_request, SignedHeaders=host, Signature=ab"
        )
        .starts_with("'K/20150830/r/s/aws4_request' not a valid key=value pair"));
        assert_eq!(
            incomplete("AWS4-HMAC-SHA256 Credential=a/b/c/d, SignedHeaders=host, Signature=ab"),
            "Credential must have exactly 5 slash-delimited elements, e.g. \
             keyid/date/region/service/term, got 'a/b/c/d'"
        );
        assert_eq!(
            incomplete("AWS4-HMAC-SHA512 Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=ab"),
            "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512' (only AWS4-HMAC-SHA256 for now). "
        );
        assert!(incomplete(
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, Signature=x, SignedHeaders=host, Signature=ab"
        )
        .contains("duplicate 'Signature'"));
        assert!(incomplete("").starts_with("Authorization header requires 'Credential'"));
        assert!(incomplete("AWS4-HMAC-SHA256").contains("requires 'Credential'"));
    }

    #[test]
    fn wrong_terminator_is_invalid_signature() {
        assert_eq!(
            parse_authorization(
                "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws5_request, SignedHeaders=host, Signature=ab"
            ),
            Err(SigV4Error::InvalidSignature(
                "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'."
                    .into()
            ))
        );
    }

    #[test]
    fn empty_signed_headers_is_an_empty_list() {
        let p = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, SignedHeaders=, Signature=ab",
        )
        .expect("parses; inspect() rejects it for not signing host");
        assert!(p.signed_headers.is_empty());
    }
}
