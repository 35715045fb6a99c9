//! The byte scanner against the serde walk: the same kept parameters for every body.

use super::*;
use crate::audit::keep::kept_by_serde;
use crate::audit::params::{request_parameters, RequestParameters};
use keyhold_kms_model::Operation;
use serde_json::{json, Value};

/// The scanner's answer for `body` as a value, after checking its text: written as serde_json
/// writes it (so no member twice), with the facts the text holds; `Err` where it falls back.
fn scanned(shape: &'static Shape, body: &[u8]) -> Result<Option<Value>, Fallback> {
    let mut json = Vec::new();
    let Some(facts) = kept(shape, body, &mut json)? else {
        assert!(json.is_empty(), "{}", String::from_utf8_lossy(&json));
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&json).into_owned();
    let value: Value = serde_json::from_slice(&json).expect("the scanner writes JSON");
    let again = serde_json::to_vec(&value).expect("json");
    assert_eq!(
        again.len(),
        json.len(),
        "written as serde_json would: {text}"
    );
    let params = RequestParameters { json, facts };
    for (slot, name) in crate::audit::params::KEY_REF_MEMBERS.iter().enumerate() {
        assert_eq!(
            params.key_ref(slot).as_deref(),
            value.get(name).and_then(Value::as_str),
            "{name} in {text}"
        );
    }
    assert_eq!(
        params.has_encryption_algorithm(),
        value.get("encryptionAlgorithm").is_some(),
        "{text}"
    );
    Ok(Some(value))
}

/// What [`request_parameters`] answers, as a value.
fn answer(shape: &'static Shape, body: &[u8]) -> Option<Value> {
    request_parameters(shape, body).map(|p| p.to_value())
}

/// A small deterministic generator (xorshift64*), so a failure names a reproducible case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Whitespace as a client might put it between tokens.
fn ws(rng: &mut Rng, out: &mut String) {
    out.push_str(rng.pick(&["", "", "", " ", "\n  ", "\t", "\r\n"]));
}

/// A JSON string literal: plain, with every kind of escape, or with raw non-ASCII text.
fn string(rng: &mut Rng, out: &mut String) {
    let parts = [
        "plain",
        "alias/example",
        "arn:aws:kms:us-east-1:111122223333:key/1234abcd",
        "\\\"quoted\\\"",
        "back\\\\slash",
        "\\/",
        "\\b\\f\\n\\r\\t",
        "\\u00e9\\u0041",
        "\\ud83d\\ude00",
        "é ünïcode ✓",
        "",
        "GrantTokens",
        "KeyId",
    ];
    out.push('"');
    for _ in 0..rng.below(4) {
        out.push_str(rng.pick(&parts));
    }
    if rng.chance(20) {
        // A long base64-like run, as a blob would be.
        for _ in 0..rng.below(300) {
            out.push_str("QUJD");
        }
    }
    out.push('"');
}

fn number(rng: &mut Rng, out: &mut String) {
    out.push_str(rng.pick(&[
        "0",
        "-0",
        "7",
        "-42",
        "1700000000",
        "1700000000.5",
        "1.7e9",
        "2E-3",
        "18446744073709551615",
        "-9223372036854775808",
        "123456789012345678901234567890",
        "0.000001",
    ]));
}

/// Any JSON value, ignoring the model (for wrong types and unknown members).
fn any(rng: &mut Rng, depth: usize, out: &mut String) {
    match rng.below(if depth > 3 { 5 } else { 7 }) {
        0 => string(rng, out),
        1 => number(rng, out),
        2 => out.push_str(rng.pick(&["true", "false"])),
        3 => out.push_str("null"),
        4 => string(rng, out),
        5 => {
            out.push('[');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push(',');
                }
                ws(rng, out);
                any(rng, depth + 1, out);
            }
            out.push(']');
        }
        _ => {
            out.push('{');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push(',');
                }
                string(rng, out);
                out.push(':');
                ws(rng, out);
                any(rng, depth + 1, out);
            }
            out.push('}');
        }
    }
}

/// A value for `shape`, mostly of the right JSON type.
fn value(rng: &mut Rng, shape: &Shape, depth: usize, out: &mut String) {
    if rng.chance(12) || depth > 4 {
        return any(rng, depth, out);
    }
    match &shape.kind {
        Kind::Structure(members) => object(rng, members, depth, out),
        Kind::Map { value: v, .. } => {
            out.push('{');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push(',');
                }
                ws(rng, out);
                string(rng, out);
                out.push(':');
                value(rng, v, depth + 1, out);
            }
            out.push('}');
        }
        Kind::List { member, .. } => {
            out.push('[');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push(',');
                }
                value(rng, member, depth + 1, out);
                ws(rng, out);
            }
            out.push(']');
        }
        Kind::String { enum_values, .. } if !enum_values.is_empty() && rng.chance(50) => {
            out.push('"');
            out.push_str(rng.pick(enum_values));
            out.push('"');
        }
        Kind::String { .. } | Kind::Blob { .. } => string(rng, out),
        Kind::Integer { .. } | Kind::Long { .. } | Kind::Timestamp => number(rng, out),
        Kind::Boolean => out.push_str(rng.pick(&["true", "false"])),
    }
}

/// A structure: some of its members (sometimes twice), unknown and dropped names among them.
fn object(
    rng: &mut Rng,
    members: &[keyhold_model_runtime::validate::Member],
    depth: usize,
    out: &mut String,
) {
    out.push('{');
    ws(rng, out);
    for i in 0..rng.below(members.len() + 3) {
        if i > 0 {
            out.push(',');
            ws(rng, out);
        }
        if members.is_empty() || rng.chance(10) {
            let name = rng.pick(&["Unknown", "GrantTokens", "GrantToken", "keyId", "é"]);
            out.push_str(&format!("\"{name}\":"));
            any(rng, depth + 1, out);
        } else {
            let m = &members[rng.below(members.len())];
            out.push_str(&format!("\"{}\"", m.name));
            ws(rng, out);
            out.push(':');
            ws(rng, out);
            value(rng, m.shape, depth + 1, out);
        }
    }
    ws(rng, out);
    out.push('}');
}

#[test]
fn the_scanner_agrees_with_the_serde_walk_on_generated_bodies() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut read = 0;
    let mut total = 0;
    for round in 0..60 {
        for &op in Operation::ALL {
            let shape = keyhold_kms_model::input_shape(op);
            let Kind::Structure(members) = &shape.kind else {
                panic!("{op:?}: input is not a structure");
            };
            let mut body = String::new();
            ws(&mut rng, &mut body);
            object(&mut rng, members, 0, &mut body);
            ws(&mut rng, &mut body);
            let reference = kept_by_serde(shape, body.as_bytes());
            // Every generated body is JSON; the scanner must read (nearly) all of them itself.
            assert!(
                serde_json::from_str::<serde_json::Value>(&body).is_ok(),
                "generator made invalid JSON: {body}"
            );
            total += 1;
            if let Ok(fast) = scanned(shape, body.as_bytes()) {
                read += 1;
                assert_eq!(fast, reference, "round {round}, {op:?}: {body}");
            }
            assert_eq!(answer(shape, body.as_bytes()), reference);
        }
    }
    assert!(read * 10 >= total * 9, "{read} of {total} scanned");
}

#[test]
fn what_the_scanner_does_not_read_goes_to_the_serde_walk() {
    let shape = keyhold_kms_model::input_shape(Operation::Encrypt);
    for body in [
        &b""[..],
        b"[]",
        b"\"KeyId\"",
        b"{\"KeyId\":\"k\",}",
        b"{\"KeyId\":\"k\"} x",
        b"{\"KeyId\":\"a\x01b\"}",
        b"{\"KeyId\":\"\xff\"}",
        b"{\"KeyId\":\"k\",\"Plaintext\":\"\\x\"}",
        b"{\"KeyId\":\"k\",\"DryRun\":tru}",
        b"{\"KeyId\":\"k\",\"Unknown\":01}",
        b"{\"KeyId\":\"k\",\"Unknown\":1.}",
        b"{\"KeyId\":\"k\",\"Unknown\":-}",
        b"{\"KeyId\":\"k\",\"Plaintext\":\"unterminated",
    ] {
        assert_eq!(
            kept(shape, body, &mut Vec::new()),
            Err(Fallback),
            "{}",
            String::from_utf8_lossy(body)
        );
        // And the answer is the serde walk's: nothing, for a body that is not JSON.
        assert_eq!(request_parameters(shape, body), None);
    }
    // An escaped member name: the serde walk reads it.
    let escaped = b"{\"Key\\u0049d\":\"k\"}";
    assert_eq!(kept(shape, escaped, &mut Vec::new()), Err(Fallback));
    assert_eq!(answer(shape, escaped), Some(json!({"keyId": "k"})));
    // As are a structure or map larger than the scanner's fixed tables.
    let many: Vec<String> = (0..=MAX_ENTRIES)
        .map(|i| format!("\"k{i}\":\"v\""))
        .collect();
    let big = format!("{{\"EncryptionContext\":{{{}}}}}", many.join(","));
    assert_eq!(kept(shape, big.as_bytes(), &mut Vec::new()), Err(Fallback));
    let kept_context = answer(shape, big.as_bytes()).expect("kept");
    assert_eq!(
        kept_context["encryptionContext"]
            .as_object()
            .map(|m| m.len()),
        Some(MAX_ENTRIES + 1)
    );
    let deep = format!(
        "{{\"EncryptionContext\":{}1{}}}",
        "[".repeat(70),
        "]".repeat(70)
    );
    assert_eq!(kept(shape, deep.as_bytes(), &mut Vec::new()), Err(Fallback));
}

#[test]
fn a_dropped_value_is_skipped_without_reading_it() {
    let shape = keyhold_kms_model::input_shape(Operation::Encrypt);
    // A raw control character inside the plaintext: serde_json refuses the body, the scanner
    // does not look (the request itself is refused as not JSON before anything runs).
    let body = b"{\"KeyId\":\"k\",\"Plaintext\":\"QUJD\x01RA==\"}";
    assert_eq!(scanned(shape, body), Ok(Some(json!({"keyId": "k"}))));
    assert_eq!(kept_by_serde(shape, body), None);
    // Nor the name of a member the model does not know.
    let body = b"{\"KeyId\":\"k\",\"\xff\x01\":1}";
    assert_eq!(scanned(shape, body), Ok(Some(json!({"keyId": "k"}))));
    assert_eq!(kept_by_serde(shape, body), None);
}

#[test]
fn a_repeated_member_or_key_keeps_its_last_value_once() {
    let shape = keyhold_kms_model::input_shape(Operation::Encrypt);
    let body = br#"{"KeyId":"first","EncryptionContext":{"a":"1","b":"2","a":"3","\u0062":"4"},
        "KeyId":"last","GrantTokens":["t"],"Plaintext":"QUJD","EncryptionContext":{"a":"1","b":"2","a":"3","\u0062":"4"}}"#;
    let want = json!({"keyId": "last", "encryptionContext": {"a": "3", "b": "4"}});
    assert_eq!(scanned(shape, body), Ok(Some(want.clone())));
    assert_eq!(kept_by_serde(shape, body), Some(want));
    // A later value that is dropped drops the earlier one.
    let body =
        br#"{"KeyId":"k","EncryptionAlgorithm":"SYMMETRIC_DEFAULT","EncryptionAlgorithm":7}"#;
    assert_eq!(scanned(shape, body), Ok(Some(json!({"keyId": "k"}))));
    // The key id is found where the text was moved to.
    let params = request_parameters(shape, body).expect("kept");
    assert_eq!(params.key_ref(0).as_deref(), Some("k"));
    assert!(!params.has_encryption_algorithm());
}

#[test]
fn strings_and_numbers_are_written_as_serde_json_writes_them() {
    let shape = keyhold_kms_model::input_shape(Operation::ScheduleKeyDeletion);
    let mut json = Vec::new();
    let body = br#"{"KeyId":"a\u0041\/\"\u00e9","PendingWindowInDays":7.0e0}"#;
    kept(shape, body, &mut json)
        .expect("scanned")
        .expect("kept");
    assert_eq!(
        String::from_utf8(json).expect("utf-8"),
        r#"{"keyId":"aA/\"é","pendingWindowInDays":7.0}"#
    );
    let mut json = Vec::new();
    let body = br#"{"KeyId":"k","PendingWindowInDays":1234567890123456789}"#;
    kept(shape, body, &mut json)
        .expect("scanned")
        .expect("kept");
    assert_eq!(
        json,
        br#"{"keyId":"k","pendingWindowInDays":1234567890123456789}"#
    );
    let params = request_parameters(shape, br#"{"KeyId":"a\u0041"}"#).expect("kept");
    assert_eq!(params.key_ref(0).as_deref(), Some("aA"));
}
