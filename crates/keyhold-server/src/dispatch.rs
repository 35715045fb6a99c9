//! KMS operation dispatch: the generated [`keyhold_kms_model::service::dispatch`] (parse,
//! validate, decode, call the `KmsService` method, serialise) with the KMS front door's
//! choices: responses in wiped buffers, and AWS's wire error for each failed step.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use bytes::Bytes;
use serde::Serialize;
use zeroize::Zeroizing;

use keyhold_core::{Kms, KmsError, RequestContext};
use keyhold_kms_model::{BodyError, DispatchError, Operation, OutputWriter};

use crate::audit::params::ResponsePeek;
use crate::wire::WireError;

/// Runs `op` with the request `body` on the domain. With `peek` (the audit log is on), what
/// the audit record shows of the response is taken from it as it is serialised.
pub async fn dispatch(
    kms: &Kms,
    op: Operation,
    ctx: &RequestContext,
    body: &[u8],
    peek: Option<&OnceLock<ResponsePeek<'static>>>,
) -> Result<Bytes, WireError> {
    keyhold_kms_model::service::dispatch(kms, ctx, op, body, &WipedJson { op, peek })
        .await
        .map_err(dispatch_error)
}

/// The wire error of a failed dispatch step.
fn dispatch_error(e: DispatchError<KmsError, serde_json::Error>) -> WireError {
    match e {
        DispatchError::Body(BodyError::NotJson { line, column }) => WireError::serialization(
            format!("Request body is not valid JSON (line {line}, column {column})."),
        ),
        DispatchError::Body(BodyError::NotObject) => {
            WireError::serialization("Request body must be a JSON object.")
        }
        DispatchError::Validation(v) => WireError::from(v),
        DispatchError::Decode(d) => {
            // serde_json's own messages can quote values (possibly secret ones); report only where.
            let what = match d.source.classify() {
                serde_json::error::Category::Data => {
                    "a member has the wrong type or an invalid value"
                }
                _ => "it could not be read",
            };
            WireError::serialization(format!(
                "The request body does not match the {} input shape: {what}.",
                d.operation
            ))
        }
        DispatchError::Service(e) => WireError::from(e),
        DispatchError::Output(e) => WireError::from(KmsError::internal(e)),
    }
}

/// Serialises outputs into buffers wiped after sending (see [`response_body`]), sized from
/// the last response of the same operation.
struct WipedJson<'a> {
    op: Operation,
    peek: Option<&'a OnceLock<ResponsePeek<'static>>>,
}

impl OutputWriter for WipedJson<'_> {
    type Body = Bytes;
    type Error = serde_json::Error;
    fn write<T: Serialize>(&self, output: &T) -> serde_json::Result<Bytes> {
        let hint = SIZE_HINTS.get(self.op as usize);
        let capacity = hint.map_or(0, |h| h.load(Ordering::Relaxed));
        let body = response_body(output, capacity)?;
        if let Some(peek) = self.peek {
            // The output is written once; a second write would keep the first peek.
            let _ = peek.set(crate::audit::peek::capture(output));
        }
        if let Some(h) = hint {
            h.store(body.len().saturating_add(HINT_SLACK), Ordering::Relaxed);
        }
        Ok(body)
    }
}

/// Per operation, the capacity to start its next response buffer with: the length of its
/// last response plus [`HINT_SLACK`] (lengths only, which the wire shows anyway). A response
/// that outgrows it costs one copy (the smaller buffer wiped); an oversized one, only a
/// longer wipe.
static SIZE_HINTS: [AtomicUsize; Operation::ALL.len()] =
    [const { AtomicUsize::new(0) }; Operation::ALL.len()];

/// Room left over the last response's length, for responses that vary a little (key ids,
/// numbers).
const HINT_SLACK: usize = 64;

/// The smallest buffer a response starts with.
const MIN_CAPACITY: usize = 128;

/// The JSON of a response in a buffer wiped when the HTTP layer is done with it: responses
/// carry plaintext (Decrypt, GenerateDataKey, GenerateRandom). The HTTP and TLS layers'
/// own buffers are beyond reach.
fn response_body<T: Serialize>(value: &T, capacity: usize) -> serde_json::Result<Bytes> {
    let mut buf = WipingBuf(Zeroizing::new(Vec::with_capacity(
        capacity.max(MIN_CAPACITY),
    )));
    serde_json::to_writer(&mut buf, value)?;
    Ok(Bytes::from_owner(WipedOnDrop(buf.0)))
}

/// A buffer that never leaves a copy of its contents in freed memory: when it must grow, the
/// contents move to a bigger buffer and the old one is wiped (`Vec`'s own growth would free it
/// as is). Serialising into it is one pass, whatever the output's size.
struct WipingBuf(Zeroizing<Vec<u8>>);

impl std::io::Write for WipingBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let needed = self
            .0
            .len()
            .checked_add(data.len())
            .ok_or(std::io::ErrorKind::OutOfMemory)?;
        if needed > self.0.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(
                needed.max(self.0.capacity().saturating_mul(2)),
            ));
            bigger.extend_from_slice(&self.0);
            // The old buffer is wiped as it is dropped here.
            self.0 = bigger;
        }
        self.0.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Owner of a response body's bytes (see [`Bytes::from_owner`]); wipes them on drop.
struct WipedOnDrop(Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for WipedOnDrop {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyhold_kms_model::shapes::DecryptResponse;
    use std::io::Write as _;

    fn decrypt_response(n: usize) -> DecryptResponse {
        DecryptResponse {
            plaintext: Some(keyhold_kms_model::Blob::new(vec![7u8; n])),
            key_id: Some("arn:aws:kms:us-east-1:111122223333:key/k".into()),
            ..Default::default()
        }
    }

    #[test]
    fn response_bodies_match_serde_json_whatever_the_starting_capacity() {
        for capacity in [0, 1, 100, 5000, 20000] {
            let resp = decrypt_response(4096);
            let body = response_body(&resp, capacity).expect("body");
            assert_eq!(&body[..], serde_json::to_vec(&resp).expect("json"));
        }
    }

    #[test]
    fn a_growing_buffer_moves_its_contents_and_stays_in_one_allocation() {
        let mut buf = WipingBuf(Zeroizing::new(Vec::with_capacity(4)));
        buf.write_all(b"abc").expect("write");
        buf.write_all(b"defgh").expect("write");
        buf.write_all(&[b'i'; 100]).expect("write");
        assert_eq!(&buf.0[..8], b"abcdefgh");
        assert_eq!(buf.0.len(), 108);
        assert!(buf.0.capacity() >= 108);
    }

    #[test]
    fn the_size_hint_follows_the_last_response_of_the_operation() {
        // An operation no other test answers, so the hint is this test's alone.
        let op = Operation::UpdatePrimaryRegion;
        let body = WipedJson { op, peek: None }
            .write(&decrypt_response(3000))
            .expect("body");
        let hint = SIZE_HINTS[op as usize].load(Ordering::Relaxed);
        assert_eq!(hint, body.len() + HINT_SLACK);
    }
}
