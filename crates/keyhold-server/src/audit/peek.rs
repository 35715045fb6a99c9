//! [`ResponsePeek`] taken from a typed response as it is serialised, rather than read back
//! from its JSON.
//!
//! Why: the members a record needs (key ARNs, key material ids, `KeyMetadata`, ...) are a few
//! short strings, while the JSON of a response is mostly blobs (a ciphertext, a plaintext
//! data key) that reading it back would scan byte by byte. [`capture`] walks the response's
//! `Serialize` implementation with a serializer that looks only at the top-level members it
//! knows and never asks the others to serialise themselves, so a blob costs nothing and its
//! bytes are never copied. The result equals `ResponsePeek::read` of the response's JSON
//! (tested for every member, `peek_tests.rs`).

use std::borrow::Cow;
use std::fmt;

use serde::ser::{self, Impossible, Serialize, SerializeStruct, Serializer};
use serde_json::Value;

use super::params::ResponsePeek;

/// The peek of `output`, a response about to be serialised; an output that is not a
/// structure (none is) gives an empty peek.
pub fn capture<T: Serialize + ?Sized>(output: &T) -> ResponsePeek<'static> {
    output.serialize(Top).unwrap_or_default()
}

/// Why a value was not captured: it is not of the expected kind. Never shown.
#[derive(Debug)]
pub struct NotCaptured;

impl fmt::Display for NotCaptured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a value the audit record reads")
    }
}

impl std::error::Error for NotCaptured {}

impl ser::Error for NotCaptured {
    fn custom<T: fmt::Display>(_: T) -> Self {
        NotCaptured
    }
}

/// Implements the serializer methods that refuse (the kinds a serializer does not capture).
macro_rules! refuse {
    ($($method:ident($($arg:ty),*);)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<Self::Ok, NotCaptured> {
            Err(NotCaptured)
        })*
    };
}

/// Refuses every compound kind: the captured values are scalars, except `KeyMetadata`,
/// which goes through `serde_json`'s own value serializer.
macro_rules! refuse_compounds {
    () => {
        type SerializeSeq = Impossible<Self::Ok, NotCaptured>;
        type SerializeTuple = Impossible<Self::Ok, NotCaptured>;
        type SerializeTupleStruct = Impossible<Self::Ok, NotCaptured>;
        type SerializeTupleVariant = Impossible<Self::Ok, NotCaptured>;
        type SerializeMap = Impossible<Self::Ok, NotCaptured>;
        type SerializeStructVariant = Impossible<Self::Ok, NotCaptured>;

        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotCaptured> {
            Err(NotCaptured)
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotCaptured> {
            Err(NotCaptured)
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, NotCaptured> {
            Err(NotCaptured)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, NotCaptured> {
            Err(NotCaptured)
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotCaptured> {
            Err(NotCaptured)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, NotCaptured> {
            Err(NotCaptured)
        }
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<Self::Ok, NotCaptured> {
            Err(NotCaptured)
        }
    };
}

/// Looks through an `Option` and a newtype to the value inside.
macro_rules! unwrapped {
    () => {
        fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Self::Ok, NotCaptured> {
            value.serialize(self)
        }

        fn serialize_newtype_struct<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            value: &T,
        ) -> Result<Self::Ok, NotCaptured> {
            value.serialize(self)
        }
    };
}

/// A captured member's value: `None` when absent (`null`, an unset `Option`), the inner value
/// of an `Option` or newtype, and never a structure.
macro_rules! absent_or_unwrapped {
    () => {
        fn serialize_none(self) -> Result<Self::Ok, NotCaptured> {
            Ok(None)
        }

        fn serialize_unit(self) -> Result<Self::Ok, NotCaptured> {
            Ok(None)
        }

        unwrapped!();

        fn serialize_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStruct, NotCaptured> {
            Err(NotCaptured)
        }
    };
}

/// The response itself: a structure whose members are looked at one by one.
struct Top;

impl Serializer for Top {
    type Ok = ResponsePeek<'static>;
    type Error = NotCaptured;
    type SerializeStruct = Members;
    refuse_compounds!();
    refuse! {
        serialize_bool(bool); serialize_i8(i8); serialize_i16(i16); serialize_i32(i32);
        serialize_i64(i64); serialize_u8(u8); serialize_u16(u16); serialize_u32(u32);
        serialize_u64(u64); serialize_f32(f32); serialize_f64(f64); serialize_char(char);
        serialize_str(&str); serialize_bytes(&[u8]); serialize_none(); serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    unwrapped!();

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Members, NotCaptured> {
        Ok(Members(ResponsePeek::default()))
    }
}

/// The members of the response, captured by name; the others are skipped unserialised.
struct Members(ResponsePeek<'static>);

impl SerializeStruct for Members {
    type Ok = ResponsePeek<'static>;
    type Error = NotCaptured;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), NotCaptured> {
        let peek = &mut self.0;
        let text = || value.serialize(Text).map(|s| s.map(Cow::Owned));
        // As `ResponsePeek::read` does, a member of an unexpected kind spoils the whole peek.
        match key {
            "KeyId" => peek.key_id = text()?,
            "SourceKeyId" => peek.source_key_id = text()?,
            "KeyMaterialId" => peek.key_material_id = text()?,
            "SourceKeyMaterialId" => peek.source_key_material_id = text()?,
            "DestinationKeyMaterialId" => peek.destination_key_material_id = text()?,
            "GrantId" => peek.grant_id = text()?,
            "KeyState" => peek.key_state = text()?,
            "CustomKeyStoreId" => peek.custom_key_store_id = text()?,
            "KeyMetadata" => peek.key_metadata = object(value)?,
            "ReplicaKeyMetadata" => peek.replica_key_metadata = object(value)?,
            "DeletionDate" => {
                peek.deletion_date = value.serialize(Number)?.and_then(|n| n.as_f64());
            }
            "PendingWindowInDays" => {
                peek.pending_window_in_days = match value.serialize(Number)? {
                    Some(n) => Some(n.as_i64().ok_or(NotCaptured)?),
                    None => None,
                };
            }
            _ => {}
        }
        Ok(())
    }

    fn end(self) -> Result<Self::Ok, NotCaptured> {
        Ok(self.0)
    }
}

/// A structure member as a JSON object (`KeyMetadata`): rare and small, so `serde_json`'s own
/// value serializer is used.
fn object<T: Serialize + ?Sized>(
    value: &T,
) -> Result<Option<serde_json::Map<String, Value>>, NotCaptured> {
    match serde_json::to_value(value).map_err(|_| NotCaptured)? {
        Value::Object(m) => Ok(Some(m)),
        Value::Null => Ok(None),
        _ => Err(NotCaptured),
    }
}

/// A string member (or an enum, which serialises as its name); `None` when absent.
struct Text;

impl Serializer for Text {
    type Ok = Option<String>;
    type Error = NotCaptured;
    type SerializeStruct = Impossible<Self::Ok, NotCaptured>;
    refuse_compounds!();
    refuse! {
        serialize_bool(bool); serialize_i8(i8); serialize_i16(i16); serialize_i32(i32);
        serialize_i64(i64); serialize_u8(u8); serialize_u16(u16); serialize_u32(u32);
        serialize_u64(u64); serialize_f32(f32); serialize_f64(f64);
        serialize_bytes(&[u8]); serialize_unit_struct(&'static str);
    }

    fn serialize_char(self, c: char) -> Result<Self::Ok, NotCaptured> {
        Ok(Some(c.to_string()))
    }

    fn serialize_str(self, s: &str) -> Result<Self::Ok, NotCaptured> {
        Ok(Some(s.to_owned()))
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Self::Ok, NotCaptured> {
        Ok(Some(variant.to_owned()))
    }
    absent_or_unwrapped!();
}

/// Implements narrower number methods by widening to a wider one.
macro_rules! widen {
    ($($($method:ident($ty:ty)),* => $wide:ident;)*) => {
        $($(fn $method(self, n: $ty) -> Result<Self::Ok, NotCaptured> {
            self.$wide(n.into())
        })*)*
    };
}

/// A number member (a timestamp in epoch seconds, a count); `None` when absent.
struct Number;

impl Serializer for Number {
    type Ok = Option<serde_json::Number>;
    type Error = NotCaptured;
    type SerializeStruct = Impossible<Self::Ok, NotCaptured>;
    refuse_compounds!();
    refuse! {
        serialize_bool(bool); serialize_char(char); serialize_str(&str);
        serialize_bytes(&[u8]); serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }

    widen! {
        serialize_i8(i8), serialize_i16(i16), serialize_i32(i32) => serialize_i64;
        serialize_u8(u8), serialize_u16(u16), serialize_u32(u32) => serialize_u64;
        serialize_f32(f32) => serialize_f64;
    }
    fn serialize_i64(self, n: i64) -> Result<Self::Ok, NotCaptured> {
        Ok(Some(n.into()))
    }
    fn serialize_u64(self, n: u64) -> Result<Self::Ok, NotCaptured> {
        Ok(Some(n.into()))
    }
    fn serialize_f64(self, n: f64) -> Result<Self::Ok, NotCaptured> {
        serde_json::Number::from_f64(n).map(Some).ok_or(NotCaptured)
    }
    absent_or_unwrapped!();
}

#[cfg(test)]
#[path = "peek_tests.rs"]
mod tests;
