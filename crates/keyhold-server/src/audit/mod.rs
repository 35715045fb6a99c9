//! The audit trail (`--audit-log PATH`): one CloudTrail-shaped JSON record per KMS and
//! CloudHSM API call, so "who used which key, when, from where, and did it work" can be
//! answered with the tools people already point at CloudTrail.
//!
//! * [`record`]: the event shape (`eventVersion`, `userIdentity`, `requestParameters`, ...).
//! * [`params`]: what of a request or response may appear — decided by the model's member
//!   types; plaintext, ciphertext, key material, passwords and XKS secrets never do.
//! * [`writer`]: appends to a size-rotated file (or standard output); a response is sent
//!   only after its record has been written to the kernel.
//!
//! The router gathers a [`Call`] while it handles a request (only when the log is on) and
//! hands it to [`AuditLog::record`] once the outcome is known.

mod keep;
mod keep_scan;
pub mod params;
pub mod peek;
pub mod record;
pub mod writer;

use std::net::IpAddr;

use keyhold_core::RequestContext;

pub use writer::{AuditOpenError, AuditTarget, AuditWriter};

/// Which API a call was made to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `TrentService.*`.
    Kms,
    /// `BaldrApiService.*`.
    CloudHsm,
}

impl Source {
    /// CloudTrail's `eventSource`.
    pub fn event_source(self) -> &'static str {
        match self {
            Source::Kms => "kms.amazonaws.com",
            Source::CloudHsm => "cloudhsm.amazonaws.com",
        }
    }
}

/// What the router learnt about one API call, filled in step by step as the request is
/// handled (a call that fails authentication has no context, and so on).
///
/// It holds what the request already has rather than copies: the headers it needs are shared
/// `HeaderValue`s, and the authenticated [`RequestContext`] is moved here and lent back to
/// the handler ([`Call::authenticated`]), since every audited request builds one.
#[derive(Debug)]
pub struct Call {
    /// The API.
    pub source: Source,
    /// The operation name.
    pub event_name: &'static str,
    /// The `Authorization` header: the access key id, and the Region until the request is
    /// authenticated, are read from its credential scope when the record is written.
    pub authorization: Option<http::HeaderValue>,
    /// The authenticated request's context (caller, account, Region).
    pub context: Option<RequestContext>,
    /// The `User-Agent` header (cut to 1024 characters when written).
    pub user_agent: Option<http::HeaderValue>,
    /// The client's address.
    pub source_ip: Option<IpAddr>,
    /// See [`params::request_parameters`]; set once the caller is authenticated.
    pub request_parameters: Option<params::RequestParameters>,
    /// What the record shows of the successful response (KMS only), taken from it as it
    /// was serialised (see [`peek`]).
    pub response: Option<params::ResponsePeek<'static>>,
}

impl Call {
    /// A call to `event_name` of `source`, as the request's headers describe it.
    pub fn new(
        source: Source,
        event_name: &'static str,
        headers: &http::HeaderMap,
        source_ip: Option<IpAddr>,
    ) -> Self {
        Call {
            source,
            event_name,
            authorization: headers.get(http::header::AUTHORIZATION).cloned(),
            context: None,
            user_agent: headers.get(http::header::USER_AGENT).cloned(),
            source_ip,
            request_parameters: None,
            response: None,
        }
    }

    /// Records the authenticated context and the loggable part of the request `body`, read
    /// along the model table `shape` (`None` for an operation without one), and lends the
    /// context back for handling the request.
    pub fn authenticated(
        &mut self,
        ctx: RequestContext,
        shape: Option<&'static keyhold_model_runtime::validate::Shape>,
        body: &[u8],
    ) -> &RequestContext {
        self.request_parameters = match shape {
            Some(shape) => params::request_parameters(shape, body),
            None => params::extension_parameters(body)
                .map(|v| params::RequestParameters::from_value(&v)),
        };
        self.context.insert(ctx)
    }

    /// The context an authenticated request is handled with: moved into the request's `call`
    /// when it is audited (its record shows it) and lent back, else kept in `unaudited`.
    pub fn hold_context<'a>(
        call: &'a mut Option<Call>,
        unaudited: &'a mut Option<RequestContext>,
        ctx: RequestContext,
        shape: Option<&'static keyhold_model_runtime::validate::Shape>,
        body: &[u8],
    ) -> &'a RequestContext {
        match call {
            Some(call) => call.authenticated(ctx, shape, body),
            None => unaudited.insert(ctx),
        }
    }

    /// The access key id the request presented, and the Region of the call: the
    /// authenticated context's, else the credential scope's, else Keyhold's default.
    pub fn scope(&self) -> (Option<&str>, &str) {
        let credential = self
            .authorization
            .as_ref()
            .and_then(|h| credential_scope(h.as_bytes()));
        let region = match (&self.context, credential) {
            (Some(ctx), _) => ctx.region.as_str(),
            (None, Some((_, region))) => region,
            (None, None) => crate::config::DEFAULT_REGION,
        };
        (credential.map(|(akid, _)| akid), region)
    }
}

/// (access key id, Region) of a SigV4 `Authorization` header's credential, unverified.
///
/// Read from the header's bytes: checking the whole header is text first cost more than the
/// rest of this, and only the two parts returned need to be.
fn credential_scope(authorization: &[u8]) -> Option<(&str, &str)> {
    const CREDENTIAL: &[u8] = b"Credential=";
    // SigV4 puts `Credential=` right after the algorithm; any other place is searched for.
    let after_algorithm = memchr::memchr(b' ', authorization)
        .map(|space| authorization[space + 1..].trim_ascii_start());
    let rest = match after_algorithm.and_then(|r| r.strip_prefix(CREDENTIAL)) {
        Some(rest) => rest,
        None => {
            let at = memchr::memmem::find(authorization, CREDENTIAL)?;
            &authorization[at + CREDENTIAL.len()..]
        }
    };
    let end = memchr::memchr2(b',', b' ', rest).unwrap_or(rest.len());
    let mut parts = rest[..end].split(|&b| b == b'/');
    let akid = parts.next().filter(|a| !a.is_empty() && a.len() <= 128)?;
    let _date = parts.next()?;
    let region = parts.next().filter(|r| !r.is_empty() && r.len() <= 64)?;
    Some((
        std::str::from_utf8(akid).ok()?,
        std::str::from_utf8(region).ok()?,
    ))
}

/// The audit log of a running server.
#[derive(Debug)]
pub struct AuditLog {
    writer: AuditWriter,
}

impl AuditLog {
    /// Opens `target` and starts its writer.
    pub fn open(target: &AuditTarget) -> Result<Self, AuditOpenError> {
        Ok(Self {
            writer: AuditWriter::open(target)?,
        })
    }

    /// Writes the record of a finished call and returns once it is in the kernel's hands;
    /// `error` is the (exception name, message) the response carries.
    pub async fn record(&self, call: &Call, request_id: &str, error: Option<(&str, &str)>) {
        // One buffer per thread, reused: the record is written from borrowed parts of the
        // call into it and copied to the writer's queue, so a record costs no allocation of
        // its own once the buffer has grown.
        thread_local! {
            static LINE: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let ticket = LINE.with_borrow_mut(|line| {
            line.clear();
            record::write_event(line, call, request_id, error);
            let ticket = self.writer.enqueue(line);
            // A rare huge record does not pin its memory.
            if line.capacity() > 64 * 1024 {
                *line = Vec::new();
            }
            ticket
        });
        self.writer.written(ticket).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_scope_of_a_sigv4_header() {
        let h = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261204/eu-west-1/kms/aws4_request, \
                 SignedHeaders=host;x-amz-date, Signature=abc";
        assert_eq!(
            credential_scope(h.as_bytes()),
            Some(("AKIDEXAMPLE", "eu-west-1"))
        );
        assert_eq!(credential_scope(b""), None);
        assert_eq!(credential_scope(b"Credential=/x/y"), None);
        assert_eq!(credential_scope(b"Credential=A"), None);
        // Anywhere in the header, as a client might put it.
        assert_eq!(
            credential_scope(b"X SignedHeaders=host, Credential=AK/d/ap-south-1/kms/aws4_request"),
            Some(("AK", "ap-south-1"))
        );
        // Only the parts returned need to be text.
        assert_eq!(
            credential_scope(b"AWS4-HMAC-SHA256  Credential=AK/d/eu-north-1/kms, Signature=\xff"),
            Some(("AK", "eu-north-1"))
        );
        assert_eq!(credential_scope(b"Credential=A\xff/d/eu-north-1/kms"), None);
    }
}
