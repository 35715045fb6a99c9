//! Operation dispatch: JSON → validated model shape → domain call → JSON.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;

use keyhold_core::{Kms, KmsResult, RequestContext};
use keyhold_kms_model::Operation;

use crate::wire::WireError;

/// Parses the body of `op`, validates it against the model and runs it.
pub async fn dispatch(
    kms: &Kms,
    op: Operation,
    ctx: &RequestContext,
    body: &[u8],
) -> Result<Bytes, WireError> {
    let input = parse_body(body)?;
    keyhold_kms_model::validate_input(op, &input)?;
    let keys = &kms.keys;
    let cks = &kms.custom_key_stores;
    match op {
        Operation::CreateKey => run(op, input, |r| keys.create_key(ctx, r)).await,
        Operation::DescribeKey => run(op, input, |r| keys.describe_key(ctx, r)).await,
        Operation::ListKeys => run(op, input, |r| keys.list_keys(ctx, r)).await,
        Operation::Encrypt => run(op, input, |r| keys.encrypt(ctx, r)).await,
        Operation::Decrypt => run(op, input, |r| keys.decrypt(ctx, r)).await,
        Operation::GenerateDataKey => run(op, input, |r| keys.generate_data_key(ctx, r)).await,
        Operation::GenerateDataKeyWithoutPlaintext => {
            run(op, input, |r| {
                keys.generate_data_key_without_plaintext(ctx, r)
            })
            .await
        }
        Operation::ReEncrypt => run(op, input, |r| keys.re_encrypt(ctx, r)).await,
        Operation::GenerateRandom => run(op, input, |r| keys.generate_random(ctx, r)).await,
        Operation::ScheduleKeyDeletion => {
            run(op, input, |r| keys.schedule_key_deletion(ctx, r)).await
        }
        Operation::CancelKeyDeletion => run(op, input, |r| keys.cancel_key_deletion(ctx, r)).await,
        Operation::CreateCustomKeyStore => {
            run(op, input, |r| cks.create_custom_key_store(ctx, r)).await
        }
        Operation::DescribeCustomKeyStores => {
            run(op, input, |r| cks.describe_custom_key_stores(ctx, r)).await
        }
        Operation::ConnectCustomKeyStore => {
            run(op, input, |r| cks.connect_custom_key_store(ctx, r)).await
        }
        Operation::DisconnectCustomKeyStore => {
            run(op, input, |r| cks.disconnect_custom_key_store(ctx, r)).await
        }
        Operation::UpdateCustomKeyStore => {
            run(op, input, |r| cks.update_custom_key_store(ctx, r)).await
        }
        Operation::DeleteCustomKeyStore => {
            run(op, input, |r| cks.delete_custom_key_store(ctx, r)).await
        }
        other => Err(WireError::client(
            "UnsupportedOperationException",
            format!(
                "Keyhold does not implement the {} operation yet.",
                other.name()
            ),
        )),
    }
}

/// An empty body counts as `{}` (the awsJson protocol requires servers to accept it); anything
/// that is not a JSON object is a `SerializationException`.
fn parse_body(body: &[u8]) -> Result<serde_json::Value, WireError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        WireError::serialization(format!(
            "Request body is not valid JSON (line {}, column {}).",
            e.line(),
            e.column()
        ))
    })?;
    if !value.is_object() {
        return Err(WireError::serialization(
            "Request body must be a JSON object.",
        ));
    }
    Ok(value)
}

async fn run<Req, Resp, F, Fut>(
    op: Operation,
    input: serde_json::Value,
    f: F,
) -> Result<Bytes, WireError>
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: FnOnce(Req) -> Fut,
    Fut: std::future::Future<Output = KmsResult<Resp>>,
{
    // serde_json's own messages can quote values (possibly secret ones); report only where.
    let req: Req = serde_json::from_value(input).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => "a member has the wrong type or an invalid value",
            _ => "it could not be read",
        };
        WireError::serialization(format!(
            "The request body does not match the {} input shape: {what}.",
            op.name()
        ))
    })?;
    let resp = f(req).await.map_err(WireError::from)?;
    response_body(&resp).map_err(|e| WireError::from(keyhold_core::KmsError::internal(e)))
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
