//! Client side: derive the signing key and sign a request.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::auth::ParsedAuthorization;
use crate::canonical::{canonical_request, string_to_sign, ALGORITHM, TERMINATOR};
use crate::date::format_basic;
use crate::key_cache::{cached_signing_key, Scope};
use crate::{RequestParts, SigV4Error};

type HmacSha256 = Hmac<Sha256>;

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC is defined for keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC-SHA256 accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Derives the SigV4 signing key:
/// `kDate = HMAC("AWS4" + secret, date)`, `kRegion = HMAC(kDate, region)`,
/// `kService = HMAC(kRegion, service)`, `kSigning = HMAC(kService, "aws4_request")`.
///
/// `date` is the scope date `yyyymmdd`. [`sign`] and [`crate::verify`] keep the keys they
/// derive (see `key_cache`), as the key only changes daily.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_secret = Zeroizing::new(format!("AWS4{secret}"));
    let k_date = Zeroizing::new(hmac_sha256(k_secret.as_bytes(), date.as_bytes()));
    let k_region = Zeroizing::new(hmac_sha256(&*k_date, region.as_bytes()));
    let k_service = Zeroizing::new(hmac_sha256(&*k_region, service.as_bytes()));
    hmac_sha256(&*k_service, TERMINATOR.as_bytes())
}

/// Lower-case hex HMAC of `string_to_sign` under the key for `auth`'s scope.
pub(crate) fn signature_hex(
    secret: &str,
    auth: &ParsedAuthorization,
    string_to_sign: &str,
) -> String {
    let scope = Scope {
        access_key_id: &auth.access_key_id,
        date: &auth.date,
        region: &auth.region,
        service: &auth.service,
    };
    let key = cached_signing_key(&scope, secret);
    hex::encode(hmac_sha256(&*key, string_to_sign.as_bytes()))
}

/// What [`sign`] produces: the headers to add to the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningOutput {
    /// Value for the `Authorization` header.
    pub authorization: String,
    /// Value for the `X-Amz-Date` header (replacing any the request had).
    pub amz_date: String,
    /// Value for `X-Amz-Content-SHA256`, when it was asked to be signed and
    /// the request did not already carry one.
    pub content_sha256: Option<String>,
    /// The bare signature (lower-case hex), e.g. for logging.
    pub signature: String,
}

impl SigningOutput {
    /// The headers to set on the outgoing request, as (name, value) pairs.
    pub fn headers(&self) -> Vec<(&'static str, &str)> {
        let mut out = vec![
            ("authorization", self.authorization.as_str()),
            ("x-amz-date", self.amz_date.as_str()),
        ];
        if let Some(hash) = &self.content_sha256 {
            out.push(("x-amz-content-sha256", hash.as_str()));
        }
        out
    }
}

/// Signs a request (for outgoing calls such as the XKS client's).
///
/// * `parts.headers` must already hold every header named in
///   `signed_headers` (in particular `host`, which must be signed), except
///   two that `sign` supplies itself: `x-amz-date` (always generated from
///   `now`; a value already in `parts` is ignored and must be replaced by
///   [`SigningOutput::amz_date`]) and `x-amz-content-sha256` (set to
///   `parts.payload_sha256_hex` when signed but absent).
/// * `signed_headers` may be in any order or case; it is lower-cased,
///   sorted and de-duplicated.
///
/// Errors are [`SigV4Error::InvalidSigningInput`]: a missing signed header,
/// `host` not signed, or an access key id/region/service that would not
/// survive the `Credential=` syntax (empty, or containing `/`, `,`, `=`
/// or whitespace).
pub fn sign(
    parts: &RequestParts<'_>,
    access_key_id: &str,
    secret: &str,
    region: &str,
    service: &str,
    now: OffsetDateTime,
    signed_headers: &[&str],
) -> Result<SigningOutput, SigV4Error> {
    for (what, value) in [
        ("access key id", access_key_id),
        ("region", region),
        ("service", service),
    ] {
        if value.is_empty()
            || value
                .chars()
                .any(|c| matches!(c, '/' | ',' | '=') || c.is_whitespace())
        {
            return Err(SigV4Error::InvalidSigningInput(format!(
                "{what} {value:?} cannot appear in a credential scope"
            )));
        }
    }

    let mut names: Vec<String> = signed_headers
        .iter()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    if let Some(bad) = names.iter().find(|n| {
        n.is_empty()
            || n.chars()
                .any(|c| matches!(c, ';' | ',' | ':' | '=') || c.is_whitespace())
    }) {
        return Err(SigV4Error::InvalidSigningInput(format!(
            "{bad:?} is not a header name"
        )));
    }
    if !names.iter().any(|n| n == "host") {
        return Err(SigV4Error::InvalidSigningInput(
            "'host' must be among the signed headers".to_string(),
        ));
    }

    let amz_date = format_basic(now);
    let has = |name: &str| {
        parts
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    let content_sha256 = (names.iter().any(|n| n == "x-amz-content-sha256")
        && !has("x-amz-content-sha256"))
    .then(|| parts.payload_sha256_hex.to_string());

    let mut headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("x-amz-date"))
        .copied()
        .collect();
    headers.push(("x-amz-date", &amz_date));
    if let Some(hash) = &content_sha256 {
        headers.push(("x-amz-content-sha256", hash));
    }
    if let Some(missing) = names
        .iter()
        .find(|n| !headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n)))
    {
        return Err(SigV4Error::InvalidSigningInput(format!(
            "signed header '{missing}' is not present in the request"
        )));
    }

    let signing_parts = RequestParts {
        headers: &headers,
        ..*parts
    };
    let auth = ParsedAuthorization {
        access_key_id: access_key_id.to_string(),
        date: amz_date.get(..8).unwrap_or_default().to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers: names,
        signature: String::new(),
    };
    let scope = auth.scope();
    let canonical = canonical_request(&signing_parts, &auth.signed_headers);
    let to_sign = string_to_sign(&amz_date, &scope, &canonical);
    let signature = signature_hex(secret, &auth, &to_sign);
    let authorization = format!(
        "{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={}, Signature={signature}",
        auth.signed_headers.join(";")
    );

    Ok(SigningOutput {
        authorization,
        amz_date,
        content_sha256,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented derivation for the IAM example
    /// (secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20150830, us-east-1, iam).
    #[test]
    fn signing_key_matches_aws_documentation() {
        let key = signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830",
            "us-east-1",
            "iam",
        );
        assert_eq!(
            hex::encode(key),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }
}
