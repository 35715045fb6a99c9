//! Model-driven input validation with AWS (Coral) `ValidationException` wording.
//!
//! A model crate's generated `constraints` module describes every shape reachable from an
//! operation input as a static [`Shape`] table; [`validate_shape`] walks a request body against
//! it (each model crate's `validate_input(op, body)` picks the operation's input table).
//!
//! Rules, in the order violations are reported (depth first, members in model order):
//! * a structure's missing (or JSON `null`) required member: `Member must not be null`;
//! * strings: length in characters (Unicode scalar values), then pattern (full match), then enum;
//! * blobs: length in decoded bytes; integers/longs: value range;
//! * lists and maps: entry count first, then each element / entry.
//!
//! Paths use Coral's lowerCamelCase member names joined by `.`; list elements are
//! `<list>.<1-based index>.member`. Map entries
//! are reported at `<map>.<key>` for both the key and the value.
//!
//! Values of the wrong JSON type (e.g. a number where a string is expected, or a blob that is not
//! valid base64) are skipped: typed deserialisation reports those as `SerializationException`.
//! Unknown members are ignored. Nothing here panics on any input.

use std::fmt;
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use regex::Regex;
use serde_json::Value;

/// Constraint table of one shape (generated in a model crate's `generated/constraints.rs`).
pub struct Shape {
    /// The model marks the shape `"sensitive": true`: its values are never echoed.
    pub sensitive: bool,
    /// What the shape is, with its constraints.
    pub kind: Kind,
}

/// The type-specific part of a [`Shape`]. Bounds are inclusive.
#[allow(missing_docs)] // Variants and fields mirror the botocore model's shape types.
pub enum Kind {
    Structure(&'static [Member]),
    List {
        member: &'static Shape,
        min: Option<i64>,
        max: Option<i64>,
    },
    Map {
        key: &'static Shape,
        value: &'static Shape,
        min: Option<i64>,
        max: Option<i64>,
    },
    String {
        min: Option<i64>,
        max: Option<i64>,
        pattern: Option<&'static Pattern>,
        /// Empty when the string is not an enum.
        enum_values: &'static [&'static str],
    },
    Blob {
        min: Option<i64>,
        max: Option<i64>,
    },
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    Long {
        min: Option<i64>,
        max: Option<i64>,
    },
    Boolean,
    Timestamp,
}

/// One member of a structure.
pub struct Member {
    /// JSON member name, e.g. `KeyId`.
    pub name: &'static str,
    /// Coral path segment, e.g. `keyId`.
    pub path: &'static str,
    /// The member's shape.
    pub shape: &'static Shape,
    /// The model lists the member as required.
    pub required: bool,
}

/// A model pattern and its `regex` translation, compiled on first use.
pub struct Pattern {
    /// As written in the model (used in messages).
    model: &'static str,
    /// Translated for the `regex` crate, anchored for a full match.
    regex: &'static str,
    compiled: OnceLock<Option<Regex>>,
}

impl Pattern {
    /// A pattern as written in the model and its `regex` translation.
    pub const fn new(model: &'static str, regex: &'static str) -> Self {
        Pattern {
            model,
            regex,
            compiled: OnceLock::new(),
        }
    }

    /// `true` when `s` does not match. `false` when it matches or the regex could not be compiled
    /// (codegen already leaves out patterns that do not compile; this is a second line of defence).
    pub(crate) fn rejects(&self, s: &str) -> bool {
        self.compiled
            .get_or_init(|| Regex::new(self.regex).ok())
            .as_ref()
            .is_some_and(|re| !re.is_match(s))
    }
}

/// How a violating value is shown in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViolationValue {
    /// The member is absent or JSON `null`: `Value null at '<path>' ...`.
    Null,
    /// The shape is sensitive, so the value is elided: `Value at '<path>' ...`.
    Elided,
    /// The value as AWS's Java renders it: `Value '<text>' at '<path>' ...`.
    Text(String),
}

/// One failed constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Coral path, e.g. `keyId` or `tags.1.member.tagKey`.
    pub path: String,
    /// Constraint text, e.g. `Member must have length less than or equal to 2048`.
    pub constraint: String,
    /// The offending value as rendered in the message.
    pub value: ViolationValue,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            ViolationValue::Null => write!(f, "Value null at '{}'", self.path)?,
            ViolationValue::Elided => write!(f, "Value at '{}'", self.path)?,
            ViolationValue::Text(t) => write!(f, "Value '{t}' at '{}'", self.path)?,
        }
        write!(f, " failed to satisfy constraint: {}", self.constraint)
    }
}

/// An input that violates the model's constraints; `message` is the `ValidationException`
/// message AWS sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// E.g. `1 validation error detected: Value '' at 'customKeyStoreName' failed to satisfy
    /// constraint: Member must have length greater than or equal to 1`.
    pub message: String,
    /// The individual violations, in reporting order (never empty).
    pub violations: Vec<Violation>,
}

impl ValidationError {
    fn new(violations: Vec<Violation>) -> Self {
        let n = violations.len();
        let mut message = if n == 1 {
            "1 validation error detected: ".to_owned()
        } else {
            format!("{n} validation errors detected: ")
        };
        for (i, v) in violations.iter().enumerate() {
            if i > 0 {
                message.push_str("; ");
            }
            message.push_str(&v.to_string());
        }
        ValidationError {
            message,
            violations,
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ValidationError {}

/// Checks `input` against the constraint table `shape` (see the module docs for the rules).
/// A body that is not a JSON object is not checked here (deserialisation reports it).
pub fn validate_shape(shape: &Shape, input: &Value) -> Result<(), ValidationError> {
    let mut out = Vec::new();
    check(shape, input, "", &mut out);
    if out.is_empty() {
        Ok(())
    } else {
        Err(ValidationError::new(out))
    }
}

fn join(parent: &str, segment: &str) -> String {
    if parent.is_empty() {
        segment.to_owned()
    } else {
        format!("{parent}.{segment}")
    }
}

/// The decoded length of blob text `s`, `None` when it is not base64. The decoded bytes may be
/// plaintext: they are wiped before they are freed.
fn blob_len(s: &str) -> Option<usize> {
    STANDARD
        .decode(s)
        .ok()
        .map(|bytes| zeroize::Zeroizing::new(bytes).len())
}

/// Java's rendering of a non-sensitive value (`String.valueOf` of the deserialised object).
fn render(shape: &Shape, v: &Value) -> String {
    match (&shape.kind, v) {
        (_, Value::String(s)) if !matches!(shape.kind, Kind::Blob { .. }) => s.clone(),
        (Kind::Blob { .. }, Value::String(s)) => {
            let len = blob_len(s).unwrap_or(0);
            format!("java.nio.HeapByteBuffer[pos=0 lim={len} cap={len}]")
        }
        (Kind::List { member, .. }, Value::Array(items)) => {
            let parts: Vec<String> = items.iter().map(|i| render(member, i)).collect();
            format!("[{}]", parts.join(", "))
        }
        (Kind::Map { value, .. }, Value::Object(entries)) => {
            let parts: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{k}={}", render(value, v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        (_, other) => other.to_string(),
    }
}

struct Ctx<'a> {
    shape: &'a Shape,
    value: &'a Value,
    path: &'a str,
}

impl Ctx<'_> {
    fn push(&self, out: &mut Vec<Violation>, constraint: String) {
        let value = if self.shape.sensitive {
            ViolationValue::Elided
        } else {
            ViolationValue::Text(render(self.shape, self.value))
        };
        out.push(Violation {
            path: self.path.to_owned(),
            constraint,
            value,
        });
    }

    fn length(&self, out: &mut Vec<Violation>, len: usize, min: Option<i64>, max: Option<i64>) {
        let len = i64::try_from(len).unwrap_or(i64::MAX);
        if let Some(max) = max.filter(|&m| len > m) {
            self.push(
                out,
                format!("Member must have length less than or equal to {max}"),
            );
        }
        if let Some(min) = min.filter(|&m| len < m) {
            self.push(
                out,
                format!("Member must have length greater than or equal to {min}"),
            );
        }
    }

    fn range(&self, out: &mut Vec<Violation>, n: i64, min: Option<i64>, max: Option<i64>) {
        if let Some(max) = max.filter(|&m| n > m) {
            self.push(
                out,
                format!("Member must have value less than or equal to {max}"),
            );
        }
        if let Some(min) = min.filter(|&m| n < m) {
            self.push(
                out,
                format!("Member must have value greater than or equal to {min}"),
            );
        }
    }
}

fn check(shape: &Shape, value: &Value, path: &str, out: &mut Vec<Violation>) {
    let ctx = Ctx { shape, value, path };
    match (&shape.kind, value) {
        (Kind::Structure(members), Value::Object(obj)) => {
            for m in *members {
                let member_path = join(path, m.path);
                match obj.get(m.name) {
                    None | Some(Value::Null) => {
                        if m.required {
                            out.push(Violation {
                                path: member_path,
                                constraint: "Member must not be null".to_owned(),
                                value: ViolationValue::Null,
                            });
                        }
                    }
                    Some(v) => check(m.shape, v, &member_path, out),
                }
            }
        }
        (Kind::List { member, min, max }, Value::Array(items)) => {
            ctx.length(out, items.len(), *min, *max);
            for (i, item) in items.iter().enumerate() {
                if !item.is_null() {
                    check(member, item, &format!("{path}.{}.member", i + 1), out);
                }
            }
        }
        (
            Kind::Map {
                key,
                value: value_shape,
                min,
                max,
            },
            Value::Object(entries),
        ) => {
            ctx.length(out, entries.len(), *min, *max);
            for (k, v) in entries {
                let entry_path = join(path, k);
                check(key, &Value::String(k.clone()), &entry_path, out);
                if !v.is_null() {
                    check(value_shape, v, &entry_path, out);
                }
            }
        }
        (
            Kind::String {
                min,
                max,
                pattern,
                enum_values,
            },
            Value::String(s),
        ) => {
            ctx.length(out, s.chars().count(), *min, *max);
            if let Some(p) = pattern.filter(|p| p.rejects(s)) {
                ctx.push(
                    out,
                    format!(
                        "Member must satisfy regular expression pattern: {}",
                        p.model
                    ),
                );
            }
            if !enum_values.is_empty() && !enum_values.contains(&s.as_str()) {
                ctx.push(
                    out,
                    format!(
                        "Member must satisfy enum value set: [{}]",
                        enum_values.join(", ")
                    ),
                );
            }
        }
        (Kind::Blob { min, max }, Value::String(s)) => {
            if let Some(len) = blob_len(s) {
                ctx.length(out, len, *min, *max);
            }
        }
        (Kind::Integer { min, max }, Value::Number(n)) => {
            if let Some(n) = n.as_i64().filter(|n| i32::try_from(*n).is_ok()) {
                ctx.range(out, n, *min, *max);
            }
        }
        (Kind::Long { min, max }, Value::Number(n)) => {
            if let Some(n) = n.as_i64() {
                ctx.range(out, n, *min, *max);
            }
        }
        // Booleans and timestamps carry no constraints; anything else is a type mismatch,
        // left to deserialisation.
        _ => {}
    }
}
