//! Test support (feature `oracle`, for the model crates' tests): request bodies made from an
//! input table, and a comparison of [`decode_input`] (the single-pass path) with
//! [`decode_checked`] (the reference path) on each, so that every operation of a model is
//! shown to answer alike on both.
//!
//! The bodies: a valid one (built from the constraints), every member and list element and
//! map value replaced by values of every JSON type and of wrong lengths, each member missing,
//! each member given twice (both orders), member names spelt with escapes, duplicate map
//! keys, unknown members, malformed JSON and bodies that are not objects.

use std::fmt::Debug;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::dispatch::{decode_checked, decode_input, InputError};
use crate::validate::{validate_shape, Kind, Shape};

/// Compares both decoding paths for each listed operation of the model crate `$model`
/// (operation => its input type) and fails unless every operation of the model is listed and
/// decodes at least one body; returns the [`Tally`] of all of them.
#[macro_export]
macro_rules! assert_oracle_for_every_operation {
    ($model:ident; $($op:ident => $input:ident,)*) => {{
        let mut total = $crate::oracle::Tally::default();
        let mut covered = Vec::new();
        $(
            let t = $crate::oracle::assert_same_on::<$model::shapes::$input>(
                $model::Operation::$op.name(),
                $model::input_shape($model::Operation::$op),
            );
            assert!(t.decoded > 0, "{}: no body decoded", stringify!($op));
            total.decoded += t.decoded;
            total.refused += t.refused;
            covered.push($model::Operation::$op);
        )*
        for op in $model::Operation::ALL {
            assert!(covered.contains(op), "{} is not compared", op.name());
        }
        total
    }};
}

/// What [`assert_same_on`] saw: how many bodies decoded, and how many were refused.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// Bodies both paths decoded (to equal inputs).
    pub decoded: usize,
    /// Bodies both paths refused (with equal errors).
    pub refused: usize,
}

/// Runs both paths on every body of [`bodies`]`(shape)` and panics, naming the body, on the
/// first one where they differ.
pub fn assert_same_on<T: DeserializeOwned + PartialEq + Debug>(
    operation: &'static str,
    shape: &Shape,
) -> Tally {
    let mut tally = Tally::default();
    for body in bodies(shape) {
        let fast = decode_input::<T>(operation, shape, &body);
        let reference = decode_checked::<T>(operation, shape, &body);
        let shown = String::from_utf8_lossy(&body);
        match (fast, reference) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b, "{operation}: decoded differently: {shown}");
                tally.decoded += 1;
            }
            (Err(a), Err(b)) => {
                assert!(same_error(&a, &b), "{operation}: {a:?} vs {b:?}: {shown}");
                tally.refused += 1;
            }
            (a, b) => panic!("{operation}: {:?} vs {:?}: {shown}", a.err(), b.err()),
        }
    }
    tally
}

fn same_error(a: &InputError, b: &InputError) -> bool {
    match (a, b) {
        (InputError::Body(a), InputError::Body(b)) => a == b,
        (InputError::Validation(a), InputError::Validation(b)) => a == b,
        (InputError::Decode(a), InputError::Decode(b)) => {
            a.operation == b.operation && a.source.to_string() == b.source.to_string()
        }
        _ => false,
    }
}

/// Stands for raw JSON text spliced into a serialised body.
const HOLE: &str = "@@hole@@";

/// Every test body for the input table `shape` (see the module docs).
pub fn bodies(shape: &Shape) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    // Every member set, and only the required ones (so that leaving out a required member
    // whose type is optional in Rust is tried on an otherwise valid body too).
    for all_members in [true, false] {
        mutations(shape, &valid_value(shape, 0, all_members), &mut out);
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|b| seen.insert(b.clone()));
    let mut bodies: Vec<Vec<u8>> = out.into_iter().map(String::into_bytes).collect();
    for b in NOT_OBJECTS {
        bodies.push(b.to_vec());
    }
    bodies
}

/// `valid` itself and its mutations (see the module docs), appended to `out`.
fn mutations(shape: &Shape, valid: &Value, out: &mut Vec<String>) {
    out.push(valid.to_string());
    let mut pointers = Vec::new();
    collect_pointers(shape, valid, String::new(), 0, &mut pointers);
    for (pointer, is_member) in &pointers {
        for sample in samples() {
            let mut v = valid.clone();
            if let Some(slot) = v.pointer_mut(pointer) {
                *slot = sample;
            }
            out.push(v.to_string());
        }
        for raw in RAW_SAMPLES {
            let mut v = valid.clone();
            if let Some(slot) = v.pointer_mut(pointer) {
                *slot = Value::String(HOLE.to_owned());
            }
            out.push(v.to_string().replace(&format!("\"{HOLE}\""), raw));
        }
        if *is_member {
            if let Some((parent, name)) = pointer.rsplit_once('/') {
                let mut v = valid.clone();
                if let Some(Value::Object(obj)) = v.pointer_mut(parent) {
                    obj.remove(name);
                }
                out.push(v.to_string());
            }
        }
    }
    if let (Kind::Structure(members), Value::Object(obj)) = (&shape.kind, valid) {
        let text = valid.to_string();
        for m in *members {
            for sample in [json!(null), json!(""), json!(7), json!("a"), json!([])] {
                let dup = format!("\"{}\":{sample}", m.name);
                out.push(format!("{{{dup},{}", &text[1..]));
                if obj.is_empty() {
                    out.push(format!("{{{dup},{dup}}}"));
                } else {
                    out.push(format!("{},{dup}}}", &text[..text.len() - 1]));
                }
            }
            if let Some(first) = m.name.chars().next() {
                let escaped = format!("\"\\u{:04x}{}\"", first as u32, &m.name[first.len_utf8()..]);
                out.push(text.replacen(&format!("\"{}\"", m.name), &escaped, 1));
            }
        }
        out.push(format!("{{\"Unknown\":[1,{{}}],{}", &text[1..]));
        out.push(format!("{{\"Unknown\":1,\"Unknown\":2,{}", &text[1..]));
        out.push(format!(" \n{text}\n "));
        out.push(format!("{text}x"));
        out.push(format!("[{text}]"));
    }
}

/// Raw JSON text put where a value goes: duplicate keys, escapes, malformed JSON.
const RAW_SAMPLES: &[&str] = &[
    r#"{"a":"x","a":"y"}"#,
    r#"{"a":"x","b":"y","a":null}"#,
    r#"{"a":"x","b":"y"}"#,
    r#""\u0061lias/x""#,
    r#""aGk\u003d""#,
    r#""\/\/\/\/""#,
    r#""\ud800""#,
    "[1,]",
    "01",
    "-0",
    "1E400",
];

/// Bodies that are not a JSON object, or not JSON.
const NOT_OBJECTS: &[&[u8]] = &[
    b"",
    b"  ",
    b"\x0c{}",
    b"{}",
    b"[]",
    b"1",
    b"\"s\"",
    b"null",
    b"{",
    b"{}x",
    b"[{}]",
    b"{} {}",
    b"\n{}\n",
    b"\xff",
    b"{\"a\":\xff}",
];

/// Values of every JSON type, of lengths and sizes around the usual bounds.
fn samples() -> Vec<Value> {
    vec![
        json!(null),
        json!(true),
        json!(0),
        json!(1),
        json!(-1),
        json!(7),
        json!(2_147_483_648_i64),
        json!(-2_147_483_649_i64),
        json!(u64::MAX),
        json!(1.5),
        json!(1e3),
        json!(""),
        json!("a"),
        json!("alias/x"),
        json!("é".repeat(3000)),
        json!("===="),
        json!("aGk="),
        json!("aGk"),
        json!("AAAA".repeat(1400)),
        json!([]),
        json!([null]),
        json!(["a"]),
        json!([1, "a", {}]),
        json!(vec!["a"; 60]),
        json!({}),
        json!({ "k": "v" }),
        json!({ "k": null }),
        json!({ "": "" }),
    ]
}

/// Strings tried, in order, for a string member without an enum: the first the member's
/// constraints accept is used.
const CANDIDATES: &[&str] = &[
    "alias/test-1",
    "1234abcd-12ab-34cd-56ef-1234567890ab",
    "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "cks-1234567890abcdef0",
    "us-east-1",
    "a",
    "Abc123",
    "{\"Version\":\"2012-10-17\"}",
    "cluster-abcdefghijkl",
    "backup-abcdefghijkl",
    "hsm-abcdefghijkl",
    "subnet-0123abcd",
    "eni-0123abcd",
    "10.0.0.1",
    "us-east-1a",
    "hsm1.medium",
    "arn:aws:cloudhsm:us-east-1:111122223333:backup/backup-abcdefghijkl",
    "/kms/xks/v1",
    "https://xks.example.com",
    "com.amazonaws.vpce.us-east-1.vpce-svc-0123abcd",
    "111122223333",
    "abcdef0123",
    "ABCDEFGH234567",
];

/// A value of `shape` meant to pass its constraints (best effort: patterns are met only when
/// one of the candidates fits); structures with all their members, or only the required ones.
fn valid_value(shape: &Shape, depth: usize, all: bool) -> Value {
    match &shape.kind {
        Kind::Structure(members) if depth < 4 => Value::Object(
            members
                .iter()
                .filter(|m| all || m.required)
                .map(|m| (m.name.to_owned(), valid_value(m.shape, depth + 1, all)))
                .collect(),
        ),
        Kind::Structure(_) => json!({}),
        Kind::List { member, min, .. } => {
            let n = min.unwrap_or(1).clamp(1, 3);
            Value::Array(
                (0..n)
                    .map(|_| valid_value(member, depth + 1, all))
                    .collect(),
            )
        }
        Kind::Map { key, value, .. } => {
            let k = match valid_value(key, depth + 1, all) {
                Value::String(s) => s,
                _ => "k".to_owned(),
            };
            Value::Object(
                [(k, valid_value(value, depth + 1, all))]
                    .into_iter()
                    .collect(),
            )
        }
        Kind::String { enum_values, .. } => {
            if let Some(first) = enum_values.first() {
                return json!(first);
            }
            let fits = |c: &&str| validate_shape(shape, &json!(c)).is_ok();
            json!(CANDIDATES.iter().copied().find(fits).unwrap_or("a"))
        }
        Kind::Blob { min, max } => {
            let n = min.unwrap_or(1).max(1).min(max.unwrap_or(i64::MAX));
            json!(STANDARD.encode(vec![0x5a_u8; usize::try_from(n).unwrap_or(1)]))
        }
        Kind::Integer { min, max } | Kind::Long { min, max } => {
            json!(min.unwrap_or(1).max(1).min(max.unwrap_or(i64::MAX)))
        }
        Kind::Boolean => json!(true),
        Kind::Timestamp => json!(1_700_000_000),
    }
}

/// JSON pointers to every member, list element and map value of `value` (walked along
/// `shape`), each with whether it is a structure member (which can also be left out).
fn collect_pointers(
    shape: &Shape,
    value: &Value,
    at: String,
    depth: usize,
    out: &mut Vec<(String, bool)>,
) {
    if depth > 4 {
        return;
    }
    match (&shape.kind, value) {
        (Kind::Structure(members), Value::Object(_)) => {
            for m in *members {
                let p = format!("{at}/{}", m.name);
                if let Some(v) = value.get(m.name) {
                    collect_pointers(m.shape, v, p.clone(), depth + 1, out);
                }
                out.push((p, true));
            }
        }
        (Kind::List { member, .. }, Value::Array(items)) => {
            if let Some(first) = items.first() {
                collect_pointers(member, first, format!("{at}/0"), depth + 1, out);
                out.push((format!("{at}/0"), false));
            }
        }
        (Kind::Map { value: v_shape, .. }, Value::Object(entries)) => {
            if let Some((k, v)) = entries.iter().next() {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                collect_pointers(v_shape, v, p.clone(), depth + 1, out);
                out.push((p, false));
            }
        }
        _ => {}
    }
}
