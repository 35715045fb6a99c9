//! The byte scanner against the serde walk: the same kept parameters for every body.

use super::*;
use crate::audit::keep::kept_by_serde;
use keyhold_kms_model::Operation;

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
    let mut scanned = 0;
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
            if let Ok(fast) = kept(shape, body.as_bytes()) {
                scanned += 1;
                assert_eq!(fast, reference, "round {round}, {op:?}: {body}");
            }
            assert_eq!(
                crate::audit::keep::kept_parameters(shape, body.as_bytes()),
                reference
            );
        }
    }
    assert!(scanned * 10 >= total * 9, "{scanned} of {total} scanned");
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
            kept(shape, body),
            Err(Fallback),
            "{}",
            String::from_utf8_lossy(body)
        );
        // And the answer is the serde walk's: nothing, for a body that is not JSON.
        assert_eq!(crate::audit::keep::kept_parameters(shape, body), None);
    }
    // An escaped member name: the serde walk reads it.
    let escaped = b"{\"Key\\u0049d\":\"k\"}";
    assert_eq!(kept(shape, escaped), Err(Fallback));
    assert_eq!(
        crate::audit::keep::kept_parameters(shape, escaped),
        Some(serde_json::json!({"keyId": "k"}))
    );
    let deep = format!(
        "{{\"EncryptionContext\":{}1{}}}",
        "[".repeat(70),
        "]".repeat(70)
    );
    assert_eq!(kept(shape, deep.as_bytes()), Err(Fallback));
}

#[test]
fn a_dropped_value_is_skipped_without_reading_it() {
    let shape = keyhold_kms_model::input_shape(Operation::Encrypt);
    // A raw control character inside the plaintext: serde_json refuses the body, the scanner
    // does not look (the request itself is refused as not JSON before anything runs).
    let body = b"{\"KeyId\":\"k\",\"Plaintext\":\"QUJD\x01RA==\"}";
    assert_eq!(
        kept(shape, body),
        Ok(Some(serde_json::json!({"keyId": "k"})))
    );
    assert_eq!(kept_by_serde(shape, body), None);
}
