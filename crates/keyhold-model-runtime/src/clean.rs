//! The single-pass check behind [`crate::dispatch::decode_input`]'s fast path: does a request
//! body satisfy every constraint of its input shape? Walked straight over the body's bytes
//! (strings borrowed, nothing decoded), so the common case, a valid request, costs one scan
//! for this and one typed decode, with no `serde_json::Value` in between.
//!
//! The check answers only "clean" or "not clean"; it never renders a violation. It is at least
//! as strict as [`crate::validate::validate_shape`] on the parsed body: whatever that reports,
//! this refuses, and it also refuses what it does not want to reason about (a structure
//! member or map key given twice, a structure of more than 64 members). A refused body takes
//! the reference path (parse, validate, decode), which words the errors; so the answer to any
//! body is exactly the reference path's.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;

use crate::validate::{Kind, Shape};

/// `true` when `body` is one JSON value that breaks none of `shape`'s constraints (the caller
/// checks that it is an object). Values of the wrong JSON type are not this check's business,
/// as they are not the validator's: typed decoding refuses them.
pub(crate) fn is_clean(shape: &Shape, body: &[u8]) -> bool {
    let mut de = serde_json::Deserializer::from_slice(body);
    Check { shape }.deserialize(&mut de).is_ok() && de.end().is_ok()
}

/// Why the walk stopped early (never shown: the reference path words the real error).
fn refuse<E: de::Error>() -> E {
    E::custom("not clean")
}

/// Checks one value against `shape`; answers whether the value was present (not JSON `null`).
#[derive(Clone, Copy)]
struct Check<'s> {
    shape: &'s Shape,
}

impl<'de> DeserializeSeed<'de> for Check<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl Check<'_> {
    /// Length in characters, pattern, enum: as `validate_shape` checks strings.
    fn string<E: de::Error>(&self, s: &str) -> Result<bool, E> {
        match &self.shape.kind {
            Kind::String {
                min,
                max,
                pattern,
                enum_values,
            } => {
                let len = i64::try_from(s.chars().count()).unwrap_or(i64::MAX);
                let refused = !within(len, *min, *max)
                    || pattern.is_some_and(|p| p.rejects(s))
                    || (!enum_values.is_empty() && !enum_values.contains(&s));
                if refused {
                    return Err(refuse());
                }
            }
            Kind::Blob { min, max } => {
                let len = decoded_len(s).ok_or_else(refuse)?;
                if !within(len, *min, *max) {
                    return Err(refuse());
                }
            }
            _ => {}
        }
        Ok(true)
    }

    /// Value range of integers and longs, as `validate_shape` checks them.
    fn integer<E: de::Error>(&self, n: i64) -> Result<bool, E> {
        let refused = match &self.shape.kind {
            Kind::Integer { min, max } => i32::try_from(n).is_ok() && !within(n, *min, *max),
            Kind::Long { min, max } => !within(n, *min, *max),
            _ => false,
        };
        if refused {
            Err(refuse())
        } else {
            Ok(true)
        }
    }
}

/// `true` when `n` is within the inclusive bounds.
fn within(n: i64, min: Option<i64>, max: Option<i64>) -> bool {
    min.is_none_or(|m| n >= m) && max.is_none_or(|m| n <= m)
}

/// The number of bytes that padded standard base64 `s` decodes to, without decoding it (so
/// no copy of a secret is made). `None` when the length cannot be that of padded base64.
/// Exact for valid base64; for invalid base64 the validator reports no length violation at
/// all, so whatever this answers is at least as strict (and the typed decoder refuses it).
fn decoded_len(s: &str) -> Option<i64> {
    let bytes = s.as_bytes();
    // Not `is_multiple_of`: the workspace's rust-version (1.85) predates it.
    if bytes.len() & 3 != 0 {
        return None;
    }
    let padding = bytes.iter().rev().take(2).filter(|&&b| b == b'=').count();
    i64::try_from(bytes.len() / 4 * 3 - padding).ok()
}

impl<'de> Visitor<'de> for Check<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(true)
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<bool, E> {
        self.integer(n)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<bool, E> {
        match i64::try_from(n) {
            Ok(n) => self.integer(n),
            // Beyond i64: the validator skips it, the typed decoder refuses it.
            Err(_) => Ok(true),
        }
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(true)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<bool, E> {
        self.string(s)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let Kind::List { member, min, max } = &self.shape.kind else {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(true);
        };
        let mut count: i64 = 0;
        while seq.next_element_seed(Check { shape: member })?.is_some() {
            count = count.saturating_add(1);
        }
        if within(count, *min, *max) {
            Ok(true)
        } else {
            Err(refuse())
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        match &self.shape.kind {
            Kind::Structure(members) => {
                if members.len() > 64 {
                    return Err(refuse());
                }
                let (mut seen, mut present) = (0u64, 0u64);
                while let Some(name) = map.next_key_seed(KeySeed)? {
                    let Some(i) = members.iter().position(|m| m.name == name) else {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    };
                    let bit = 1u64 << i;
                    if seen & bit != 0 {
                        // The validator sees the last of duplicates; let it decide.
                        return Err(refuse());
                    }
                    seen |= bit;
                    if map.next_value_seed(Check {
                        shape: members[i].shape,
                    })? {
                        present |= bit;
                    }
                }
                let missing = members
                    .iter()
                    .enumerate()
                    .any(|(i, m)| m.required && present & (1u64 << i) == 0);
                if missing {
                    return Err(refuse());
                }
                Ok(true)
            }
            Kind::Map {
                key,
                value,
                min,
                max,
            } => {
                let mut keys = BTreeSet::new();
                while let Some(k) = map.next_key_seed(KeySeed)? {
                    Check { shape: key }.string::<A::Error>(&k)?;
                    if !keys.insert(k) {
                        return Err(refuse());
                    }
                    map.next_value_seed(Check { shape: value })?;
                }
                let count = i64::try_from(keys.len()).unwrap_or(i64::MAX);
                if within(count, *min, *max) {
                    Ok(true)
                } else {
                    Err(refuse())
                }
            }
            _ => {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(true)
            }
        }
    }
}

/// An object key, borrowed from the body when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(s))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(s.to_owned()))
    }
}
