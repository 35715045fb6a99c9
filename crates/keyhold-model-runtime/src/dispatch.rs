//! The protocol steps of the generated dispatch (`service.rs` of each model crate): parsing a
//! request body, decoding it into a typed input, and handing the typed output to a writer.
//! They are written once here so every generated service behaves the same; which wire error
//! each failure becomes is the front door's choice ([`DispatchError`] keeps the cause).
//!
//! [`decode_input`] is the one entry point of the generated dispatch: a valid body is checked
//! against the model and decoded in one pass over its bytes; any other body takes the
//! reference path, [`decode_checked`] (parse into a `serde_json::Value`, validate, decode),
//! which words the errors. Both paths answer every body alike.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::validate::{validate_shape, Shape, ValidationError};

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

/// A failure to turn a request body into an operation's typed input, by the step that failed.
#[derive(Debug)]
pub enum InputError {
    /// The body is not a JSON object.
    Body(BodyError),
    /// The input breaks a constraint of the model.
    Validation(ValidationError),
    /// The input does not decode into the operation's input shape.
    Decode(DecodeError),
}

impl<E, W> From<InputError> for DispatchError<E, W> {
    fn from(e: InputError) -> Self {
        match e {
            InputError::Body(e) => DispatchError::Body(e),
            InputError::Validation(e) => DispatchError::Validation(e),
            InputError::Decode(e) => DispatchError::Decode(e),
        }
    }
}

/// Turns the request `body` of `operation` (whose input table is `shape`) into its typed
/// input: the same answer as [`decode_checked`], for every body. A body that is a clean JSON
/// object (breaks no constraint, no member given twice) is checked and decoded straight from
/// its bytes; anything else is handed to [`decode_checked`].
pub fn decode_input<T: DeserializeOwned>(
    operation: &'static str,
    shape: &Shape,
    body: &[u8],
) -> Result<T, InputError> {
    let starts_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if starts_object && crate::clean::is_clean(shape, body) {
        // Blobs decode straight from the body's text into their (wiped) buffers.
        if let Ok(input) = serde_json::from_slice(body) {
            return Ok(input);
        }
    }
    decode_checked(operation, shape, body)
}

/// The reference path from a request body to a typed input: [`parse_body`], then
/// [`validate_shape`], then [`decode`]; each failure is reported by the first step that fails.
pub fn decode_checked<T: DeserializeOwned>(
    operation: &'static str,
    shape: &Shape,
    body: &[u8],
) -> Result<T, InputError> {
    let input = parse_body(body).map_err(InputError::Body)?;
    validate_shape(shape, &input).map_err(InputError::Validation)?;
    decode(operation, input).map_err(InputError::Decode)
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
