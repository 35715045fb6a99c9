//! The `Condition` element: operators parsed once into typed tests, evaluated against
//! [`Facts`].

use serde_json::{Map, Value};

use crate::pattern::{ArnPattern, Pattern};
use crate::scalars::{self, Cidr, Instant};
use crate::{Facts, PolicyError};

/// One `"Operator": {"key": values}` pair.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    /// The condition key, lower-cased (key names are case-insensitive).
    key: Box<str>,
    /// Whether Keyhold can supply the key (see `is_known_condition_key`).
    pub(crate) known: bool,
    set: SetOp,
    if_exists: bool,
    /// A `...Not...` operator: true when the request value matches none of the values.
    negated: bool,
    test: Test,
}

impl Condition {
    /// The condition key, lower-cased.
    pub(crate) fn key(&self) -> &str {
        &self.key
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    /// No set operator: a single-valued comparison.
    Single,
    /// `ForAnyValue:`: at least one request value passes; false when the key is absent.
    Any,
    /// `ForAllValues:`: every request value passes; true when the key is absent or empty.
    All,
}

#[derive(Debug, Clone, Copy)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn holds<T: PartialOrd>(self, request: T, policy: T) -> bool {
        match self {
            Cmp::Eq => request == policy,
            Cmp::Lt => request < policy,
            Cmp::Le => request <= policy,
            Cmp::Gt => request > policy,
            Cmp::Ge => request >= policy,
        }
    }
}

/// The positive test of an operator, with the policy's values pre-parsed.
#[derive(Debug, Clone)]
enum Test {
    StringEquals(Vec<Box<str>>),
    /// Values lower-cased.
    StringEqualsIgnoreCase(Vec<Box<str>>),
    StringLike(Vec<Pattern>),
    Numeric(Cmp, Vec<f64>),
    Date(Cmp, Vec<Instant>),
    Bool(Vec<bool>),
    Binary(Vec<Vec<u8>>),
    Ip(Vec<Cidr>),
    Arn(Vec<ArnPattern>),
    /// `Null`: `"true"` accepts an absent key, `"false"` a present one.
    Null {
        absent: bool,
        present: bool,
    },
}

/// What the operator name says, before the values are read.
#[derive(Debug, Clone, Copy)]
enum Kind {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

/// The base operators: name, test, negated.
const OPERATORS: &[(&str, Kind, bool)] = &[
    ("StringEquals", Kind::StringEquals, false),
    ("StringNotEquals", Kind::StringEquals, true),
    (
        "StringEqualsIgnoreCase",
        Kind::StringEqualsIgnoreCase,
        false,
    ),
    (
        "StringNotEqualsIgnoreCase",
        Kind::StringEqualsIgnoreCase,
        true,
    ),
    ("StringLike", Kind::StringLike, false),
    ("StringNotLike", Kind::StringLike, true),
    ("NumericEquals", Kind::Numeric(Cmp::Eq), false),
    ("NumericNotEquals", Kind::Numeric(Cmp::Eq), true),
    ("NumericLessThan", Kind::Numeric(Cmp::Lt), false),
    ("NumericLessThanEquals", Kind::Numeric(Cmp::Le), false),
    ("NumericGreaterThan", Kind::Numeric(Cmp::Gt), false),
    ("NumericGreaterThanEquals", Kind::Numeric(Cmp::Ge), false),
    ("DateEquals", Kind::Date(Cmp::Eq), false),
    ("DateNotEquals", Kind::Date(Cmp::Eq), true),
    ("DateLessThan", Kind::Date(Cmp::Lt), false),
    ("DateLessThanEquals", Kind::Date(Cmp::Le), false),
    ("DateGreaterThan", Kind::Date(Cmp::Gt), false),
    ("DateGreaterThanEquals", Kind::Date(Cmp::Ge), false),
    ("Bool", Kind::Bool, false),
    ("BinaryEquals", Kind::Binary, false),
    ("IpAddress", Kind::Ip, false),
    ("NotIpAddress", Kind::Ip, true),
    ("ArnEquals", Kind::Arn, false),
    ("ArnLike", Kind::Arn, false),
    ("ArnNotEquals", Kind::Arn, true),
    ("ArnNotLike", Kind::Arn, true),
    ("Null", Kind::Null, false),
];

/// Splits `ForAnyValue:StringLikeIfExists` into its set operator, base operator and
/// `IfExists`. Operator names are matched case-insensitively.
fn parse_operator(name: &str) -> Option<(SetOp, Kind, bool, bool)> {
    let strip = |s: &'_ str, prefix: &str| -> Option<usize> {
        s.get(..prefix.len())
            .filter(|head| head.eq_ignore_ascii_case(prefix))
            .map(|_| prefix.len())
    };
    let (set, rest) = if let Some(n) = strip(name, "ForAnyValue:") {
        (SetOp::Any, &name[n..])
    } else if let Some(n) = strip(name, "ForAllValues:") {
        (SetOp::All, &name[n..])
    } else {
        (SetOp::Single, name)
    };
    let (base, if_exists) = match rest.len().checked_sub("IfExists".len()) {
        Some(cut) if rest.is_char_boundary(cut) && rest[cut..].eq_ignore_ascii_case("IfExists") => {
            (&rest[..cut], true)
        }
        _ => (rest, false),
    };
    let &(_, kind, negated) = OPERATORS
        .iter()
        .find(|(op, _, _)| op.eq_ignore_ascii_case(base))?;
    if matches!(kind, Kind::Null) && (if_exists || set != SetOp::Single) {
        return None;
    }
    Some((set, kind, negated, if_exists))
}

/// A condition value as text: strings as they are, numbers and booleans as JSON writes them.
fn value_text(v: &Value, what: &str) -> Result<String, PolicyError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(PolicyError(format!(
            "{what}: a condition value must be a string, number or boolean (or an array of them)"
        ))),
    }
}

fn value_texts(v: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::Array(items) if items.is_empty() => {
            Err(PolicyError(format!("{what}: an empty array of values")))
        }
        Value::Array(items) => items.iter().map(|i| value_text(i, what)).collect(),
        single => Ok(vec![value_text(single, what)?]),
    }
}

fn each<T>(
    texts: &[String],
    what: &str,
    expected: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, PolicyError> {
    texts
        .iter()
        .map(|t| parse(t).ok_or_else(|| PolicyError(format!("{what}: {t:?} is not {expected}"))))
        .collect()
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

impl Test {
    fn parse(kind: Kind, texts: Vec<String>, what: &str) -> Result<Test, PolicyError> {
        Ok(match kind {
            Kind::StringEquals => Test::StringEquals(texts.into_iter().map(Into::into).collect()),
            Kind::StringEqualsIgnoreCase => Test::StringEqualsIgnoreCase(
                texts.iter().map(|t| crate::fold_case(t).into()).collect(),
            ),
            Kind::StringLike => Test::StringLike(texts.iter().map(|t| Pattern::new(t)).collect()),
            Kind::Numeric(cmp) => {
                Test::Numeric(cmp, each(&texts, what, "a number", scalars::parse_number)?)
            }
            Kind::Date(cmp) => Test::Date(
                cmp,
                each(
                    &texts,
                    what,
                    "a date (ISO 8601 or epoch seconds)",
                    scalars::parse_date,
                )?,
            ),
            Kind::Bool => Test::Bool(each(&texts, what, "true or false", parse_bool)?),
            Kind::Binary => Test::Binary(each(&texts, what, "base64", scalars::base64_bytes)?),
            Kind::Ip => Test::Ip(each(
                &texts,
                what,
                "an IP address or CIDR range",
                Cidr::parse,
            )?),
            Kind::Arn => Test::Arn(texts.iter().map(|t| ArnPattern::new(t)).collect()),
            Kind::Null => {
                let flags = each(&texts, what, "true or false", parse_bool)?;
                Test::Null {
                    absent: flags.contains(&true),
                    present: flags.contains(&false),
                }
            }
        })
    }

    /// Whether one request value matches any of the policy's values.
    fn any(&self, v: &str) -> bool {
        match self {
            Test::StringEquals(ps) => ps.iter().any(|p| **p == *v),
            Test::StringEqualsIgnoreCase(ps) => ps
                .iter()
                .any(|p| v.chars().flat_map(char::to_lowercase).eq(p.chars())),
            Test::StringLike(ps) => ps.iter().any(|p| p.matches(v, false)),
            Test::Numeric(cmp, ps) => match scalars::parse_number(v) {
                Some(n) => ps.iter().any(|&p| cmp.holds(n, p)),
                None => false,
            },
            Test::Date(cmp, ps) => match scalars::parse_date(v) {
                Some(d) => ps.iter().any(|&p| cmp.holds(d, p)),
                None => false,
            },
            Test::Bool(ps) => match parse_bool(v) {
                Some(b) => ps.contains(&b),
                None => false,
            },
            Test::Binary(ps) => ps.iter().any(|p| scalars::base64_equals(v, p)),
            Test::Ip(ps) => ps.iter().any(|p| p.contains(v)),
            Test::Arn(ps) => ps.iter().any(|p| p.matches(v)),
            // Handled before values are looked at.
            Test::Null { .. } => false,
        }
    }
}

impl Condition {
    /// Parses the `Condition` element: `{"Operator": {"key": value or [values]}}`.
    pub(crate) fn parse_block(v: &Value, element: &str) -> Result<Vec<Condition>, PolicyError> {
        let Value::Object(ops) = v else {
            return Err(PolicyError(format!(
                "{element}: Condition must be an object"
            )));
        };
        let mut out = Vec::new();
        for (op, keys) in ops {
            let what = format!("{element}: Condition operator {op:?}");
            let Some((set, kind, negated, if_exists)) = parse_operator(op) else {
                return Err(PolicyError(format!(
                    "{what} is not a valid condition operator"
                )));
            };
            let keys: &Map<String, Value> = match keys {
                Value::Object(keys) if !keys.is_empty() => keys,
                _ => {
                    return Err(PolicyError(format!(
                        "{what} must map condition keys to values, e.g. {{\"kms:CallerAccount\": \"111122223333\"}}"
                    )))
                }
            };
            for (key, values) in keys {
                let what = format!("{what}, key {key:?}");
                if key.is_empty() {
                    return Err(PolicyError(format!("{what}: an empty condition key")));
                }
                let lower = crate::fold_case(key);
                let texts = value_texts(values, &what)?;
                out.push(Condition {
                    known: crate::keys::is_known_lower(&lower),
                    key: lower.into(),
                    set,
                    if_exists,
                    negated,
                    test: Test::parse(kind, texts, &what)?,
                });
            }
        }
        Ok(out)
    }

    /// Whether the condition holds. A key Keyhold does not know is treated as absent (only
    /// `Deny` statements get this far with one).
    pub(crate) fn holds(&self, facts: &Facts) -> bool {
        let values = if self.known {
            facts.get(&self.key)
        } else {
            None
        };
        if let Test::Null { absent, present } = self.test {
            return if values.is_some() { present } else { absent };
        }
        let Some(values) = values else {
            return self.if_exists
                || match self.set {
                    SetOp::All => true,
                    SetOp::Any => false,
                    // AWS: a negated operator on an absent key is true.
                    SetOp::Single => self.negated,
                };
        };
        match self.set {
            SetOp::All => values.iter().all(|v| self.test.any(v) != self.negated),
            SetOp::Any => values.iter().any(|v| self.test.any(v) != self.negated),
            // A multivalued key without a set operator: true when any of its values matches
            // (for a negated operator, when none does).
            SetOp::Single => values.iter().any(|v| self.test.any(v)) != self.negated,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_names() {
        let (set, _, negated, if_exists) =
            parse_operator("ForAnyValue:StringNotLikeIfExists").expect("valid");
        assert_eq!(set, SetOp::Any);
        assert!(negated && if_exists);
        let (set, _, negated, if_exists) = parse_operator("stringequals").expect("valid");
        assert_eq!(set, SetOp::Single);
        assert!(!negated && !if_exists);
        assert!(parse_operator("ForAllValues:ArnLike").is_some());
        assert!(parse_operator("BoolIfExists").is_some());
        for bad in [
            "",
            "IfExists",
            "StringEqualz",
            "NullIfExists",
            "ForAnyValue:Null",
            "ForSomeValues:StringEquals",
            "ForAnyValue:",
            "StringEquals ",
            "ForAnyValue:ForAllValues:StringEquals",
        ] {
            assert!(parse_operator(bad).is_none(), "{bad:?}");
        }
    }
}
