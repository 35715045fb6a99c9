//! Server side: [`inspect`] a request, let the caller find the secret,
//! then [`verify`] it.

use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use crate::auth::{parse_with_date, ParsedAuthorization};
use crate::canonical::{canonical_request, header_value, query_has, string_to_sign};
use crate::date::{format_basic, format_window, parse_basic, parse_http_date};
use crate::sign::signature_hex;
use crate::{RequestParts, SigV4Error};

/// A request whose `Authorization` header and date have been parsed and
/// checked for shape, but whose signature has not been verified yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRequest {
    /// The parsed `Authorization` header.
    pub authorization: ParsedAuthorization,
    /// The request time in ISO-8601 basic format, as it goes into the
    /// string to sign (from `X-Amz-Date`, or `Date` converted).
    pub amz_date: String,
    /// The same request time, for the clock-skew check.
    pub request_time: OffsetDateTime,
}

impl ParsedRequest {
    /// The access key id the client claims to sign with: look its secret
    /// up with this (and answer `UnrecognizedClientException` if unknown).
    pub fn access_key_id(&self) -> &str {
        &self.authorization.access_key_id
    }

    /// Checks the credential scope's region and service against the
    /// server's. **Servers must call this** (or check the fields
    /// themselves): the signing key is derived from whatever region and
    /// service the client put in its scope, so a signature made for
    /// another service verifies fine without it.
    ///
    /// `region: None` accepts any region (useful for a local KMS that
    /// answers on every region's endpoint). Errors are
    /// [`SigV4Error::InvalidSignature`] with AWS's messages, all problems
    /// reported in one message as AWS does.
    pub fn check_scope(&self, region: Option<&str>, service: &str) -> Result<(), SigV4Error> {
        let mut message = String::new();
        if let Some(region) = region {
            if self.authorization.region != region {
                message.push_str(&format!(
                    "Credential should be scoped to a valid region, not '{}'. ",
                    self.authorization.region
                ));
            }
        }
        if self.authorization.service != service {
            message.push_str(&format!(
                "Credential should be scoped to correct service: '{service}'. "
            ));
        }
        if message.is_empty() {
            Ok(())
        } else {
            Err(SigV4Error::InvalidSignature(message.trim_end().to_string()))
        }
    }
}

/// First half of verification: everything that needs no secret and no
/// clock.
///
/// * No `Authorization` header → [`SigV4Error::MissingAuthentication`];
///   if the query has `X-Amz-Algorithm` instead (a presigned URL, not
///   supported) → [`SigV4Error::IncompleteSignature`].
/// * Header problems (see [`crate::parse_authorization`]), no
///   `X-Amz-Date`/`Date` header, or a date not in ISO-8601 basic format
///   (`Date` may also be an HTTP date) → `IncompleteSignature`.
/// * `host` not among the signed headers, or the credential's date not
///   the request's date → [`SigV4Error::InvalidSignature`].
///
/// Then look the secret up from [`ParsedRequest::access_key_id`], call
/// [`ParsedRequest::check_scope`] and finally [`verify`].
pub fn inspect(parts: &RequestParts<'_>) -> Result<ParsedRequest, SigV4Error> {
    let mut authorizations = parts
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("authorization"));
    let Some((_, header)) = authorizations.next() else {
        if query_has(parts.raw_query, "X-Amz-Algorithm") {
            return Err(SigV4Error::IncompleteSignature(
                "Query-string (presigned URL) authentication is not supported by this server; \
                 sign the request with an Authorization header."
                    .to_string(),
            ));
        }
        return Err(SigV4Error::MissingAuthentication);
    };
    if authorizations.next().is_some() {
        return Err(SigV4Error::IncompleteSignature(
            "The request must contain exactly one Authorization header.".to_string(),
        ));
    }

    // X-Amz-Date wins when present, even if malformed (AWS does not fall
    // back to Date then); Date may be basic format or an HTTP date.
    let date_header = match header_value(parts.headers, "x-amz-date") {
        Some(v) => Some((v, false)),
        None => header_value(parts.headers, "date").map(|v| (v, true)),
    };
    let authorization = parse_with_date(header, date_header.is_some())?;
    let Some((raw_date, http_date_allowed)) = date_header else {
        // parse_with_date reports the missing date; this is not reached.
        return Err(SigV4Error::IncompleteSignature(format!(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' \
             header. Authorization={header}"
        )));
    };
    let request_time = parse_basic(&raw_date).or_else(|| {
        if http_date_allowed {
            parse_http_date(&raw_date)
        } else {
            None
        }
    });
    let Some(request_time) = request_time else {
        return Err(SigV4Error::IncompleteSignature(format!(
            "Date must be in ISO-8601 'basic format'. Got '{raw_date}'. \
             See http://en.wikipedia.org/wiki/ISO_8601"
        )));
    };
    let amz_date = format_basic(request_time);

    if !authorization
        .signed_headers
        .iter()
        .any(|h| h.eq_ignore_ascii_case("host"))
    {
        return Err(SigV4Error::InvalidSignature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_string(),
        ));
    }

    let request_day = amz_date.get(..8).unwrap_or_default();
    if authorization.date != request_day {
        return Err(SigV4Error::InvalidSignature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '{}' != '{request_day}', from '{amz_date}'.",
            authorization.date
        )));
    }

    Ok(ParsedRequest {
        authorization,
        amz_date,
        request_time,
    })
}

/// Second half of verification, once the secret for
/// [`ParsedRequest::access_key_id`] is known.
///
/// 1. The request time must lie within `max_skew` of `now` (inclusive),
///    else [`SigV4Error::RequestExpired`] (KMS uses 15 minutes; the XKS
///    proxy spec 5).
/// 2. The canonical request is rebuilt from `parts` with exactly the
///    client's `SignedHeaders`, signed with `secret`, and the result is
///    compared with the client's signature in constant time; a difference
///    is [`SigV4Error::SignatureMismatch`].
///
/// `parts` must be the same request that was given to [`inspect`].
pub fn verify(
    parsed: &ParsedRequest,
    parts: &RequestParts<'_>,
    secret: &str,
    now: OffsetDateTime,
    max_skew: Duration,
) -> Result<(), SigV4Error> {
    check_clock(parsed.request_time, now, max_skew)?;

    let auth = &parsed.authorization;
    let canonical = canonical_request(parts, &auth.signed_headers);
    let to_sign = string_to_sign(&parsed.amz_date, &auth.scope(), &canonical);
    let expected = signature_hex(secret, auth, &to_sign);

    if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        Ok(())
    } else {
        Err(SigV4Error::SignatureMismatch {
            canonical_request: canonical,
            string_to_sign: to_sign,
        })
    }
}

/// The clock-skew window check with AWS's messages.
fn check_clock(
    request_time: OffsetDateTime,
    now: OffsetDateTime,
    max_skew: Duration,
) -> Result<(), SigV4Error> {
    let window = max_skew.abs();
    // Out-of-range arithmetic (absurd windows) means "no bound that side".
    if let Some(earliest) = now.checked_sub(window) {
        if request_time < earliest {
            return Err(SigV4Error::RequestExpired {
                request_time: format_basic(request_time),
                limit: format_basic(earliest),
                server_time: format_basic(now),
                window: format_window(window),
                not_yet_current: false,
            });
        }
    }
    if let Some(latest) = now.checked_add(window) {
        if request_time > latest {
            return Err(SigV4Error::RequestExpired {
                request_time: format_basic(request_time),
                limit: format_basic(latest),
                server_time: format_basic(now),
                window: format_window(window),
                not_yet_current: true,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn clock_window_is_inclusive() {
        let now = datetime!(2013-05-24 00:25:00 UTC);
        let w = Duration::minutes(15);
        assert!(check_clock(datetime!(2013-05-24 00:10:00 UTC), now, w).is_ok());
        assert!(check_clock(datetime!(2013-05-24 00:40:00 UTC), now, w).is_ok());
        let err = check_clock(datetime!(2013-05-24 00:00:00 UTC), now, w).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Signature expired: 20130524T000000Z is now earlier than 20130524T001000Z \
             (20130524T002500Z - 15 min.)"
        );
        let err = check_clock(datetime!(2013-05-24 00:40:01 UTC), now, w).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Signature not yet current: 20130524T004001Z is still later than 20130524T004000Z \
             (20130524T002500Z + 15 min.)"
        );
    }

    #[test]
    fn absurd_windows_do_not_panic() {
        let now = datetime!(2013-05-24 00:25:00 UTC);
        for w in [Duration::MAX, Duration::MIN, Duration::ZERO] {
            let _ = check_clock(now, now, w);
            let _ = check_clock(datetime!(-9999-01-01 00:00:00 UTC), now, w);
        }
    }
}
