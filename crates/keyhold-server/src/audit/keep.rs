//! Reads the loggable part of a request body straight from its JSON text, along the
//! operation's model table, without building the whole body first.
//!
//! Why not parse into a `serde_json::Value` and filter that: the values that are dropped are
//! the large ones (a 4 KiB plaintext in base64, a ciphertext blob), and building them would
//! copy every byte only to overwrite it again (it may be plaintext) and free it. Here a value
//! that is not kept is skipped by the parser without being copied anywhere, so a record's
//! cost no longer grows with the payload.
//!
//! What is kept is exactly what the rules in [`super::params`] say: strings, enums, numbers,
//! booleans and timestamps, and lists, maps and structures of them, unless the shape is
//! sensitive or the member is a grant token ([`DROPPED_MEMBERS`]); a structure whose every
//! member was dropped is dropped too; anything the model does not know, or of the wrong JSON
//! type, is dropped.
//!
//! Two walks apply these rules: [`super::keep_scan`], over the bytes, reads nearly every body;
//! the serde walk here is the reference it is tested against, and reads what it hands back.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize as _;
use serde_json::{Map, Number, Value};

use keyhold_model_runtime::validate::{Kind, Member, Shape};

/// Members never shown although their type is a plain string: grant tokens. A grant token
/// is a bearer credential (whoever presents it may use the grant before the grant is
/// consistent everywhere), the model does not mark it sensitive, and AWS's CloudTrail
/// examples show none (RetireGrant called with a token logs `requestParameters: null`).
pub(super) const DROPPED_MEMBERS: &[&str] = &["GrantToken", "GrantTokens"];

/// The reference walk, through serde_json: what [`super::keep_scan`] must agree with, and
/// what decides for the bodies it hands back.
pub(crate) fn kept_by_serde(shape: &'static Shape, body: &[u8]) -> Option<Value> {
    // A body that is not an object meets a structure shape and is dropped whole.
    let mut de = serde_json::Deserializer::from_slice(body);
    let kept = Keep(shape).deserialize(&mut de).ok()?;
    de.end().ok()?;
    kept
}

/// A value of `shape`: kept (`Some`) or skipped (`None`).
#[derive(Clone, Copy)]
struct Keep(&'static Shape);

impl<'de> DeserializeSeed<'de> for Keep {
    type Value = Option<Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        if self.0.sensitive || matches!(self.0.kind, Kind::Blob { .. }) {
            IgnoredAny::deserialize(d)?;
            return Ok(None);
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Keep {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(matches!(self.0.kind, Kind::Boolean).then_some(Value::Bool(b)))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(self.number(Number::from(n)))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(self.number(Number::from(n)))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
        Ok(Number::from_f64(n).and_then(|n| self.number(n)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(matches!(self.0.kind, Kind::String { .. }).then(|| Value::String(s.to_owned())))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let Kind::List { member, .. } = &self.0.kind else {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(None);
        };
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Keep(member))? {
            items.extend(item);
        }
        Ok(Some(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        match &self.0.kind {
            Kind::Structure(members) => {
                let mut out = Map::new();
                let mut any = false;
                while let Some(member) = map.next_key_seed(MemberName(members))? {
                    any = true;
                    let kept = match member {
                        Some(m) => map.next_value_seed(Keep(m.shape))?,
                        None => {
                            map.next_value::<IgnoredAny>()?;
                            None
                        }
                    };
                    match (member, kept) {
                        (Some(m), Some(v)) => {
                            out.insert(m.path.to_owned(), v);
                        }
                        // A later duplicate that is dropped drops the earlier one too, as a
                        // parser keeping the last of duplicate members would.
                        (Some(m), None) => {
                            out.remove(m.path);
                        }
                        (None, _) => {}
                    }
                }
                // A structure whose every member was dropped is dropped too.
                Ok((!out.is_empty() || !any).then_some(Value::Object(out)))
            }
            Kind::Map { key, value, .. } if !key.sensitive => {
                let mut out = Map::new();
                while let Some(k) = map.next_key::<String>()? {
                    match map.next_value_seed(Keep(value))? {
                        Some(v) => {
                            out.insert(k, v);
                        }
                        None => {
                            out.remove(&k);
                        }
                    }
                }
                Ok(Some(Value::Object(out)))
            }
            _ => {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(None)
            }
        }
    }
}

impl Keep {
    /// `n`, kept when the shape is numeric (timestamps are seconds since the epoch).
    fn number(self, n: Number) -> Option<Value> {
        matches!(
            self.0.kind,
            Kind::Integer { .. } | Kind::Long { .. } | Kind::Timestamp
        )
        .then_some(Value::Number(n))
    }
}

/// A member name of a structure, looked up among `members` without copying it (`None` for a
/// name the model does not know).
struct MemberName(&'static [Member]);

impl<'de> DeserializeSeed<'de> for MemberName {
    type Value = Option<&'static Member>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for MemberName {
    type Value = Option<&'static Member>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(self
            .0
            .iter()
            .find(|m| m.name == s && !DROPPED_MEMBERS.contains(&m.name)))
    }
}
