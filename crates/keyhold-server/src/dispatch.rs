//! KMS operation dispatch: the generated [`keyhold_kms_model::service::dispatch`] (parse,
//! validate, decode, call the `KmsService` method, serialise) with the KMS front door's
//! choices: responses in wiped buffers, and AWS's wire error for each failed step.

use bytes::Bytes;
use serde::Serialize;
use zeroize::Zeroizing;

use keyhold_core::{Kms, KmsError, RequestContext};
use keyhold_kms_model::{BodyError, DispatchError, Operation, OutputWriter};

use crate::wire::WireError;

/// Runs `op` with the request `body` on the domain.
pub async fn dispatch(
    kms: &Kms,
    op: Operation,
    ctx: &RequestContext,
    body: &[u8],
) -> Result<Bytes, WireError> {
    keyhold_kms_model::service::dispatch(kms, ctx, op, body, &WipedJson)
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

/// Serialises outputs into buffers wiped after sending (see [`response_body`]).
struct WipedJson;

impl OutputWriter for WipedJson {
    type Body = Bytes;
    type Error = serde_json::Error;
    fn write<T: Serialize>(&self, output: &T) -> serde_json::Result<Bytes> {
        response_body(output)
    }
}

/// The JSON of a response in a buffer wiped when the HTTP layer is done with it: responses
/// carry plaintext (Decrypt, GenerateDataKey, GenerateRandom). The HTTP and TLS layers'
/// own buffers are beyond reach.
fn response_body<T: Serialize>(value: &T) -> serde_json::Result<Bytes> {
    Ok(Bytes::from_owner(WipedOnDrop(exact_json(value)?)))
}

/// Serialises `value` into a buffer of exactly its length: counted first, so the buffer
/// never grows (growing would leave copies of its contents behind in freed memory).
fn exact_json<T: Serialize>(value: &T) -> serde_json::Result<Zeroizing<Vec<u8>>> {
    let mut counter = ByteCounter(0);
    serde_json::to_writer(&mut counter, value)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(counter.0));
    serde_json::to_writer(&mut *buf, value)?;
    Ok(buf)
}

/// Counts the bytes written to it.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
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

    #[test]
    fn response_bodies_are_exact_sized_and_match_serde_json() {
        let resp = DecryptResponse {
            plaintext: Some(keyhold_kms_model::Blob::new(vec![7u8; 4096])),
            key_id: Some("arn:aws:kms:us-east-1:111122223333:key/k".into()),
            ..Default::default()
        };
        let buf = exact_json(&resp).expect("json");
        assert_eq!(buf.capacity(), buf.len(), "the buffer never grew");
        assert_eq!(buf.as_slice(), serde_json::to_vec(&resp).expect("json"));
        let body = response_body(&resp).expect("body");
        assert_eq!(&body[..], buf.as_slice());
    }
}
