//! Request authentication: SigV4 in strict mode, identification only in dev mode.

use keyhold_core::RequestContext;
use keyhold_sigv4::{RequestParts, SigV4Error};

use crate::config::{AccessKey, AuthMode, Settings, DEFAULT_REGION};
use crate::wire::WireError;

/// The SigV4 service name of KMS.
pub const SERVICE: &str = "kms";

/// Establishes who calls and in which Region.
///
/// Strict mode: the `Authorization` header must be present and well-formed, the access key
/// configured, the credential scoped to service `kms`, and the signature valid within the
/// clock-skew window. Dev mode: the header (if any) is parsed for the access key id and Region
/// but the signature is not checked; a 12-digit access key id is used as the account id.
pub fn authenticate(
    settings: &Settings,
    parts: &RequestParts<'_>,
    request_id: &str,
) -> Result<RequestContext, WireError> {
    authenticate_for(settings, parts, request_id, SERVICE)
}

/// [`authenticate`] for the SigV4 service `service` (e.g. `cloudhsm` for the CloudHSM API).
pub fn authenticate_for(
    settings: &Settings,
    parts: &RequestParts<'_>,
    request_id: &str,
    service: &str,
) -> Result<RequestContext, WireError> {
    match settings.auth {
        AuthMode::Strict => {
            let parsed = keyhold_sigv4::inspect(parts).map_err(|e| WireError::from(&e))?;
            let key = settings
                .access_keys
                .get(parsed.access_key_id())
                .ok_or_else(|| {
                    WireError::kms(
                        keyhold_kms_model::Exception::UnrecognizedClient,
                        "The security token included in the request is invalid.",
                    )
                })?;
            parsed
                .check_scope(None, service)
                .map_err(|e| WireError::from(&e))?;
            keyhold_sigv4::verify(
                &parsed,
                parts,
                &key.secret_access_key,
                time::OffsetDateTime::now_utc(),
                settings.max_clock_skew,
            )
            .map_err(|e| WireError::from(&e))?;
            Ok(context_for_key(
                key,
                &parsed.authorization.region,
                request_id,
            ))
        }
        AuthMode::Dev => match keyhold_sigv4::inspect(parts) {
            Ok(parsed) => {
                let akid = parsed.access_key_id();
                // A configured access key maps to its principal in dev mode too (signature
                // unchecked), so policies can be tried without strict mode.
                if let Some(key) = settings.access_keys.get(akid) {
                    return Ok(context_for_key(
                        key,
                        &parsed.authorization.region,
                        request_id,
                    ));
                }
                let account = if akid.len() == 12 && akid.bytes().all(|b| b.is_ascii_digit()) {
                    akid.to_string()
                } else {
                    settings.default_account.clone()
                };
                Ok(RequestContext::new(
                    &account,
                    &parsed.authorization.region,
                    request_id,
                ))
            }
            // Unsigned requests (e.g. `aws --no-sign-request`) are welcome in dev mode.
            Err(SigV4Error::MissingAuthentication) => Ok(RequestContext::new(
                &settings.default_account,
                DEFAULT_REGION,
                request_id,
            )),
            Err(e) => Err(WireError::from(&e)),
        },
    }
}

/// Admits a request to a test-mode endpoint (`/moto-api/reset`, `/keyhold-test/*`).
///
/// Dev mode admits every request, as it admits every KMS request. Strict mode needs a valid
/// SigV4 signature (service `kms`) from a configured access key marked `admin = true`;
/// anything else (unsigned, unknown key, bad signature, non-admin key) is refused with
/// `AccessDeniedException` and HTTP 403.
pub fn authorize_test_endpoint(
    settings: &Settings,
    parts: &RequestParts<'_>,
) -> Result<(), WireError> {
    if settings.auth == AuthMode::Dev {
        return Ok(());
    }
    let denied = |why: &str| {
        WireError::kms(
            keyhold_kms_model::Exception::AccessDenied,
            format!(
                "Test-mode endpoints need a request signed by an access key with admin = true: {why}."
            ),
        )
        .with_status(http::StatusCode::FORBIDDEN)
    };
    let parsed = keyhold_sigv4::inspect(parts).map_err(|e| match e {
        SigV4Error::MissingAuthentication => denied("the request is not signed"),
        _ => denied("the request's signature is malformed"),
    })?;
    let key = settings
        .access_keys
        .get(parsed.access_key_id())
        .ok_or_else(|| denied("the access key is not configured"))?;
    parsed
        .check_scope(None, SERVICE)
        .map_err(|_| denied("the credential scope is not for service kms"))?;
    keyhold_sigv4::verify(
        &parsed,
        parts,
        &key.secret_access_key,
        time::OffsetDateTime::now_utc(),
        settings.max_clock_skew,
    )
    .map_err(|_| denied("the signature does not verify"))?;
    if !key.admin {
        return Err(denied("this access key is not an admin"));
    }
    Ok(())
}

/// The context of a request made with a configured access key: its account, its principal
/// (the account root unless configured) and its identity policies.
fn context_for_key(key: &AccessKey, region: &str, request_id: &str) -> RequestContext {
    let mut ctx = RequestContext::new(&key.account_id, region, request_id);
    if let Some(arn) = &key.principal_arn {
        ctx.principal_arn = arn.clone();
    }
    ctx.identity_policies = key.parsed_identity_policies.clone();
    ctx
}
