//! The AWS CloudHSM v2 front door: `X-Amz-Target: BaldrApiService.<Op>` on the KMS endpoint
//! (awsJson1.1, SigV4 service `cloudhsm`), answered by [`keyhold_cloudhsm::ClusterService`]
//! (on by default when a PKCS#11 module is present; otherwise a service that answers every
//! operation with what to install or configure). The `None` arm below is only for an
//! `AppState` built without any CloudHSM service (embedders and unit tests).

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use keyhold_kms_model::Exception as KmsException;
use keyhold_sigv4::HttpRequestParts;

use crate::router::AppState;
use crate::wire::{json_response, WireError, CONTENT_TYPE};

/// The target prefix of the CloudHSM v2 API.
pub const PREFIX: &str = "BaldrApiService.";

/// The SigV4 signing name of the CloudHSM v2 API.
pub const SERVICE: &str = "cloudhsm";

/// The name of `op` (after [`PREFIX`]) when it is an operation of the CloudHSM API or one of
/// Keyhold's extensions of it (an audit record is written for each call of one).
pub fn operation_name(op: &str) -> Option<&'static str> {
    keyhold_cloudhsm_model::Operation::from_name(op)
        .map(keyhold_cloudhsm_model::Operation::name)
        .or_else(|| {
            keyhold_cloudhsm::service::KeyholdOperation::from_name(op)
                .map(keyhold_cloudhsm::service::KeyholdOperation::name)
        })
}

/// Handles one CloudHSM request whose body has been read; `call` (when the audit log is on)
/// learns the caller and the loggable request parameters.
pub async fn handle(
    state: &AppState,
    parts: &http::request::Parts,
    op: &str,
    body: &[u8],
    request_id: &str,
    call: &mut Option<crate::audit::Call>,
) -> Result<Response<Full<Bytes>>, WireError> {
    let Some(clusters) = &state.cloudhsm else {
        return Err(WireError::kms(KmsException::UnknownOperation, ""));
    };
    let http_parts = HttpRequestParts::from_http(parts, body);
    let sig_parts = http_parts.request_parts();
    let ctx = crate::auth::authenticate_for(&state.settings, &sig_parts, request_id, SERVICE)?;
    // The model's table for AWS's operations; Keyhold's extensions (passwords!) have none
    // and keep only named identifiers.
    let shape =
        keyhold_cloudhsm_model::Operation::from_name(op).map(keyhold_cloudhsm_model::input_shape);
    let mut unaudited = None;
    let ctx = crate::audit::Call::hold_context(call, &mut unaudited, ctx, shape, body);
    let media_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media_type != CONTENT_TYPE && media_type != "application/json" {
        return Err(WireError::serialization(format!(
            "Unsupported Content-Type; CloudHSM expects {CONTENT_TYPE}."
        )));
    }
    match clusters
        .handle(op, &ctx.account_id, &ctx.region, body)
        .await
    {
        Ok(v) => Ok(json_response(
            StatusCode::OK,
            Bytes::from(v.to_string()),
            request_id,
        )),
        Err(e) => Err(WireError::cloudhsm(e.exception, e.message)),
    }
}
