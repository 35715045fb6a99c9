//! The awsJson1.1 front door: one function turns an HTTP request into a KMS response.
//!
//! Order of checks, as AWS applies them: test-harness paths (only with `--test-mode`, and
//! under `--auth strict` only for an admin access key); method; body size; target
//! (`X-Amz-Target: TrentService.<Op>`); authentication; content type; then the operation.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use zeroize::Zeroizing;

use keyhold_core::Kms;
use keyhold_kms_model::{Exception, Operation};
use keyhold_sigv4::HttpRequestParts;

use crate::config::Settings;
use crate::wire::{json_response, WireError, CONTENT_TYPE};

/// What every request handler shares.
pub struct AppState {
    /// The domain.
    pub kms: Kms,
    /// The audit trail, when `--audit-log` is set: one record per API call, written before
    /// the response is sent.
    pub audit: Option<crate::audit::AuditLog>,
    /// Request metrics, when the admin listener serves them (`--admin-listen`).
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Resolved settings.
    pub settings: Settings,
    /// CloudHSM clusters (`BaldrApiService.*`), when `[cloudhsm] enabled`.
    pub cloudhsm: Option<keyhold_cloudhsm::ClusterService>,
    /// The domain clock in test mode, which [`ADVANCE_CLOCK_PATH`] moves forward.
    pub test_clock: Option<Arc<keyhold_core::ports::clock::OffsetClock>>,
}

/// The path of moto's reset endpoint, answered in test mode.
pub const MOTO_RESET_PATH: &str = "/moto-api/reset";
/// Test mode only: completes every scheduled key deletion now (`POST`; answers
/// `{"deleted": n}`).
pub const COMPLETE_DELETIONS_PATH: &str = "/keyhold-test/complete-pending-deletions";

/// Test mode only: moves the domain clock forward by `{"seconds": n}` (`POST`), then
/// completes what fell due — scheduled deletions, automatic rotations, expiring imported key
/// material — writes recorded key uses, and answers `{"deleted": n, "rotated": m, "expired":
/// k}`. Lets tests see a year pass without waiting for it.
pub const ADVANCE_CLOCK_PATH: &str = "/keyhold-test/advance-clock";

/// Handles one request; never fails (errors become AWS error responses).
pub async fn handle(state: Arc<AppState>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let request_id = crate::ids::request_uuid();
    let started = std::time::Instant::now();
    let target = header(&req, "x-amz-target").unwrap_or_default().to_string();
    let mut outcome = crate::metrics::SUCCESS;
    let mut call = None;
    let mut failure = None;
    let resp = match handle_inner(&state, req, &request_id, &mut call).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(request_id, target, error = e.name, "request failed");
            outcome = e.name;
            if call.is_some() {
                failure = Some(e.message.clone());
            }
            e.into_response(&request_id)
        }
    };
    // The response goes out only once its record has been written.
    if let (Some(audit), Some(call)) = (&state.audit, call) {
        let error = failure.as_deref().map(|message| (outcome, message));
        audit.record(&call, &request_id, error).await;
    }
    if let Some(m) = &state.metrics {
        m.record(&target, outcome, started.elapsed());
    }
    tracing::info!(
        request_id,
        target,
        status = resp.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
        "request"
    );
    resp
}

fn header<'a, B>(req: &'a Request<B>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Handles the request; when the audit log is on and the request names an operation, `call`
/// is filled in for its record as far as the request got.
async fn handle_inner(
    state: &AppState,
    req: Request<Incoming>,
    request_id: &str,
    call: &mut Option<crate::audit::Call>,
) -> Result<Response<Full<Bytes>>, WireError> {
    let settings = &state.settings;
    if settings.test_mode && is_test_path(req.uri().path()) {
        return test_endpoint(state, req, request_id).await;
    }
    if req.method() != http::Method::POST {
        return Err(WireError::kms(
            Exception::UnknownOperation,
            "KMS accepts only POST requests.",
        )
        .with_status(StatusCode::METHOD_NOT_ALLOWED));
    }
    let (parts, body) = req.into_parts();
    let body = read_body(body, settings.max_body_bytes, &parts.headers).await?;
    let connection = parts
        .extensions
        .get::<crate::listener::ConnectionInfo>()
        .copied();

    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    let source_ip = connection.map(|c| c.peer.ip());
    let new_call = |source, name: &'static str| {
        state
            .audit
            .as_ref()
            .map(|_| crate::audit::Call::new(source, name, &parts.headers, source_ip))
    };
    if let Some(op) = target.and_then(|t| t.strip_prefix(crate::cloudhsm_dispatch::PREFIX)) {
        if let Some(name) = crate::cloudhsm_dispatch::operation_name(op) {
            *call = new_call(crate::audit::Source::CloudHsm, name);
        }
        return crate::cloudhsm_dispatch::handle(state, &parts, op, &body, request_id, call).await;
    }
    let op = target
        .and_then(Operation::from_target)
        .ok_or_else(|| WireError::kms(Exception::UnknownOperation, ""))?;
    *call = new_call(crate::audit::Source::Kms, op.name());

    // Dev mode only reads the Authorization header: no need to hash the body.
    let http_parts = match settings.auth {
        crate::config::AuthMode::Strict => HttpRequestParts::from_http(&parts, &body),
        crate::config::AuthMode::Dev => HttpRequestParts::for_inspection(&parts),
    };
    let sig_parts = http_parts.request_parts();
    let mut ctx = crate::auth::authenticate(settings, &sig_parts, request_id)?;
    if let Some(c) = connection {
        ctx.source_ip = Some(c.peer.ip());
        ctx.secure_transport = c.tls;
    }
    let peek = std::sync::OnceLock::new();
    let audited = call.is_some().then_some(&peek);
    let mut unaudited = None;
    let shape = Some(keyhold_kms_model::input_shape(op));
    let ctx = crate::audit::Call::hold_context(call, &mut unaudited, ctx, shape, &body);

    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case(CONTENT_TYPE)
        && !media_type.eq_ignore_ascii_case("application/json")
    {
        return Err(WireError::serialization(format!(
            "Unsupported Content-Type '{}'; KMS expects {CONTENT_TYPE}.",
            media_type.chars().take(100).collect::<String>()
        )));
    }

    let out = crate::dispatch::dispatch(&state.kms, op, ctx, &body, audited).await?;
    if let Some(call) = call.as_mut() {
        call.response = peek.into_inner();
    }
    Ok(json_response(StatusCode::OK, out, request_id))
}

/// True for the paths that exist only in test mode.
fn is_test_path(path: &str) -> bool {
    path == MOTO_RESET_PATH || path.starts_with(TEST_PATH_PREFIX)
}

/// The prefix of Keyhold's own test-mode endpoints.
const TEST_PATH_PREFIX: &str = "/keyhold-test/";

/// Largest body of a test-mode request.
const TEST_BODY_LIMIT: usize = 4096;

/// A request to a test-mode path (test mode is on): admitted by
/// [`crate::auth::authorize_test_endpoint`] before anything else happens.
async fn test_endpoint(
    state: &AppState,
    req: Request<Incoming>,
    request_id: &str,
) -> Result<Response<Full<Bytes>>, WireError> {
    let (parts, body) = req.into_parts();
    // The body is part of the signature, so it is read (bounded) first.
    let body = read_body(body, TEST_BODY_LIMIT, &parts.headers).await?;
    let http_parts = HttpRequestParts::from_http(&parts, &body);
    crate::auth::authorize_test_endpoint(&state.settings, &http_parts.request_parts())?;
    let path = parts.uri.path();
    if path == MOTO_RESET_PATH {
        if parts.method != http::Method::POST {
            return Err(WireError::kms(Exception::MethodNotAllowed, "Use POST."));
        }
        state.kms.reset().await.map_err(WireError::from)?;
        return Ok(json_response(
            StatusCode::OK,
            Bytes::from_static(b"{\"status\": \"ok\"}"),
            request_id,
        ));
    }
    if parts.method != http::Method::POST {
        return Err(WireError::kms(Exception::UnknownOperation, "Use POST.")
            .with_status(StatusCode::METHOD_NOT_ALLOWED));
    }
    match path {
        COMPLETE_DELETIONS_PATH => {
            let n = state
                .kms
                .keys
                .complete_pending_deletions(true)
                .await
                .map_err(WireError::from)?;
            Ok(json_response(
                StatusCode::OK,
                Bytes::from(format!("{{\"deleted\": {n}}}")),
                request_id,
            ))
        }
        ADVANCE_CLOCK_PATH => advance_clock(state, &body, request_id).await,
        _ => Err(
            WireError::kms(Exception::UnknownOperation, "No such test-mode endpoint.")
                .with_status(StatusCode::NOT_FOUND),
        ),
    }
}

/// The [`ADVANCE_CLOCK_PATH`] hook.
async fn advance_clock(
    state: &AppState,
    body: &[u8],
    request_id: &str,
) -> Result<Response<Full<Bytes>>, WireError> {
    #[derive(serde::Deserialize)]
    struct Advance {
        seconds: u64,
    }
    let advance: Advance = serde_json::from_slice(body)
        .map_err(|e| WireError::serialization(format!("Expected {{\"seconds\": n}}: {e}")))?;
    let Some(clock) = &state.test_clock else {
        return Err(WireError::kms(
            Exception::UnsupportedOperation,
            "This server's clock cannot be moved.",
        ));
    };
    clock.advance(std::time::Duration::from_secs(advance.seconds));
    let keys = &state.kms.keys;
    let deleted = keys
        .complete_pending_deletions(false)
        .await
        .map_err(WireError::from)?;
    let rotated = keys
        .complete_due_rotations()
        .await
        .map_err(WireError::from)?;
    let expired = keys
        .complete_material_expirations()
        .await
        .map_err(WireError::from)?;
    keys.complete_replica_syncs()
        .await
        .map_err(WireError::from)?;
    // Recorded key uses are written too, so a test can restart right after.
    keys.flush_key_usage().await.map_err(WireError::from)?;
    Ok(json_response(
        StatusCode::OK,
        Bytes::from(format!(
            "{{\"deleted\": {deleted}, \"rotated\": {rotated}, \"expired\": {expired}}}"
        )),
        request_id,
    ))
}

/// Oversized bodies up to this size are read and discarded before the 413 answer, so the client
/// finishes sending and reads the answer instead of meeting a reset connection; larger ones
/// are cut off at once.
const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

/// Reads the request body (it may carry plaintext, in base64) into one buffer sized from
/// `Content-Length` up front, so growing it leaves no stray copies, and wiped when dropped.
async fn read_body(
    mut body: Incoming,
    limit: usize,
    headers: &http::HeaderMap,
) -> Result<Zeroizing<Vec<u8>>, WireError> {
    let too_large = || {
        WireError::kms(
            Exception::RequestEntityTooLarge,
            format!("Request body must not exceed {limit} bytes."),
        )
    };
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT) {
        return Err(too_large());
    }
    let mut over = declared.is_some_and(|n| n > limit as u64);
    let mut received: u64 = 0;
    let expected = declared.map_or(0, |n| usize::try_from(n).unwrap_or(limit).min(limit));
    let mut buf = Zeroizing::new(Vec::with_capacity(expected));
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|_| WireError::serialization("The request body could not be read."))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        received += data.len() as u64;
        if received > limit as u64 {
            over = true;
        }
        if over {
            if received > DRAIN_LIMIT {
                break;
            }
            continue;
        }
        if buf.len() + data.len() > buf.capacity() {
            // No (or a wrong) Content-Length: grow by hand, wiping the old buffer.
            let mut bigger = Zeroizing::new(Vec::with_capacity(
                (buf.len() + data.len()).max(2 * buf.capacity()).min(limit),
            ));
            bigger.extend_from_slice(&buf);
            buf = bigger;
        }
        buf.extend_from_slice(&data);
    }
    if over {
        return Err(too_large());
    }
    Ok(buf)
}
