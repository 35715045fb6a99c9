//! The protocol steps of the generated dispatch (`service.rs` of each model crate): parsing a
//! request body, decoding it into a typed input, and handing the typed output to a writer.
//! They are written once here so every generated service behaves the same; which wire error
//! each failure becomes is the front door's choice ([`DispatchError`] keeps the cause).

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::validate::ValidationError;

/// Why a request body is not a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON at all; where the parser gave up (never the content, which may be secret).
    NotJson {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// JSON, but not an object.
    NotObject,
}

/// A body that does not fit the operation's input shape (a member of the wrong type, an
/// unknown enum value). The cause is kept for the front door; its text can quote values, so a
/// front door that must not echo them reports only [`serde_json::Error::classify`].
#[derive(Debug)]
pub struct DecodeError {
    /// The operation whose input was decoded.
    pub operation: &'static str,
    /// serde's account of what did not fit.
    pub source: serde_json::Error,
}

/// A failure of one dispatched request, by the step that failed.
#[derive(Debug)]
pub enum DispatchError<E, W> {
    /// The body is not a JSON object.
    Body(BodyError),
    /// The input breaks a constraint of the model (AWS's `ValidationException` wording).
    Validation(ValidationError),
    /// The input does not decode into the operation's input shape.
    Decode(DecodeError),
    /// The operation itself failed.
    Service(E),
    /// The output could not be serialised.
    Output(W),
}

/// Serialises an operation's output into a response body. The front door chooses the buffer
/// (Keyhold's KMS front door wipes it after sending, since outputs carry plaintext).
pub trait OutputWriter: Sync {
    /// The serialised body.
    type Body;
    /// Why serialisation failed.
    type Error;
    /// Serialises `output`.
    fn write<T: Serialize>(&self, output: &T) -> Result<Self::Body, Self::Error>;
}

/// The output of an operation whose model declares none: an empty JSON object.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct NoOutput {}

/// Parses a request body into a JSON object. An empty (or all-whitespace) body counts as `{}`,
/// as the awsJson protocol requires servers to accept it.
pub fn parse_body(body: &[u8]) -> Result<Value, BodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| BodyError::NotJson {
        line: e.line(),
        column: e.column(),
    })?;
    if !value.is_object() {
        return Err(BodyError::NotObject);
    }
    Ok(value)
}

/// Decodes a (validated) input of `operation` into its typed shape.
pub fn decode<T: DeserializeOwned>(
    operation: &'static str,
    input: Value,
) -> Result<T, DecodeError> {
    serde_json::from_value(input).map_err(|source| DecodeError { operation, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_whitespace_bodies_are_empty_objects() {
        assert_eq!(parse_body(b"").unwrap(), serde_json::json!({}));
        assert_eq!(parse_body(b" \n\t").unwrap(), serde_json::json!({}));
    }

    #[test]
    fn non_objects_and_non_json_are_refused_with_position() {
        assert_eq!(parse_body(b"[1]"), Err(BodyError::NotObject));
        assert_eq!(parse_body(b"\"s\""), Err(BodyError::NotObject));
        assert_eq!(
            parse_body(b"{\n  \"a\": }"),
            Err(BodyError::NotJson { line: 2, column: 8 })
        );
    }

    #[test]
    fn decode_keeps_the_operation_and_cause() {
        #[derive(serde::Deserialize, Debug)]
        struct In {
            #[allow(dead_code)]
            n: u8,
        }
        let e = decode::<In>("Op", serde_json::json!({ "n": "x" })).unwrap_err();
        assert_eq!(e.operation, "Op");
        assert_eq!(e.source.classify(), serde_json::error::Category::Data);
    }

    #[test]
    fn no_output_is_an_empty_object() {
        assert_eq!(serde_json::to_string(&NoOutput {}).unwrap(), "{}");
    }
}
