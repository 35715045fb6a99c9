//! Policy documents from JSON: the elements IAM defines, checked as strictly as IAM checks
//! them, turned into [`Statement`]s that need no JSON at evaluation time.

use serde_json::{Map, Value};

use crate::conditions::Condition;
use crate::pattern::Pattern;
use crate::principal::Principals;
use crate::statement::{Effect, Patterns, Statement, Subject};
use crate::{PolicyError, PolicyKind};

/// `element` as a string or a non-empty array of strings.
pub(crate) fn strings<'v>(v: &'v Value, element: &str) -> Result<Vec<&'v str>, PolicyError> {
    let bad = || {
        PolicyError(format!(
            "{element} must be a string or a non-empty array of strings"
        ))
    };
    match v {
        Value::String(s) => Ok(vec![s.as_str()]),
        Value::Array(items) if !items.is_empty() => {
            items.iter().map(|i| i.as_str().ok_or_else(bad)).collect()
        }
        _ => Err(bad()),
    }
}

/// Parses a whole policy document.
pub(crate) fn document(json: &str, kind: PolicyKind) -> Result<Vec<Statement>, PolicyError> {
    let doc: Value = serde_json::from_str(json)
        .map_err(|e| PolicyError(format!("the policy is not valid JSON: {e}")))?;
    let Value::Object(doc) = doc else {
        return Err(PolicyError("the policy must be a JSON object".into()));
    };
    for (name, value) in &doc {
        match name.as_str() {
            "Version" => match value.as_str() {
                Some("2012-10-17" | "2008-10-17") => {}
                _ => {
                    return Err(PolicyError(format!(
                        "Version must be \"2012-10-17\" or \"2008-10-17\", not {value}"
                    )))
                }
            },
            "Id" => {
                if !value.is_string() {
                    return Err(PolicyError("Id must be a string".into()));
                }
            }
            "Statement" => {}
            other => {
                return Err(PolicyError(format!(
                    "unknown top-level policy element {other:?} (expected Version, Id, Statement)"
                )))
            }
        }
    }
    let statements: Vec<&Map<String, Value>> = match doc.get("Statement") {
        None => return Err(PolicyError("the policy has no Statement".into())),
        Some(Value::Object(one)) => vec![one],
        Some(Value::Array(many)) if !many.is_empty() => many
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.as_object().ok_or_else(|| {
                    PolicyError(format!(
                        "Statement {}: a statement must be an object",
                        i + 1
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(PolicyError(
                "Statement must be an object or a non-empty array of objects".into(),
            ))
        }
    };
    statements
        .iter()
        .enumerate()
        .map(|(i, s)| statement(s, i + 1, kind))
        .collect()
}

/// Exactly one of `a` and `b`, or neither when `optional`.
fn one_of<'v>(
    s: &'v Map<String, Value>,
    a: &str,
    b: &str,
    optional: bool,
    at: &str,
) -> Result<Option<(&'v Value, bool)>, PolicyError> {
    match (s.get(a), s.get(b)) {
        (Some(v), None) => Ok(Some((v, false))),
        (None, Some(v)) => Ok(Some((v, true))),
        (Some(_), Some(_)) => Err(PolicyError(format!("{at}: has both {a} and {b}"))),
        (None, None) if optional => Ok(None),
        (None, None) => Err(PolicyError(format!("{at}: needs {a} or {b}"))),
    }
}

fn statement(
    s: &Map<String, Value>,
    index: usize,
    kind: PolicyKind,
) -> Result<Statement, PolicyError> {
    let at = match s.get("Sid") {
        None => format!("Statement {index}"),
        Some(Value::String(sid)) => format!("Statement {index} ({sid:?})"),
        Some(_) => {
            return Err(PolicyError(format!(
                "Statement {index}: Sid must be a string"
            )))
        }
    };
    for name in s.keys() {
        if !matches!(
            name.as_str(),
            "Sid"
                | "Effect"
                | "Principal"
                | "NotPrincipal"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Condition"
        ) {
            return Err(PolicyError(format!("{at}: unknown element {name:?}")));
        }
    }

    let effect = match s.get("Effect") {
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(other) => {
            return Err(PolicyError(format!(
                "{at}: Effect must be \"Allow\" or \"Deny\", not {other}"
            )))
        }
        None => return Err(PolicyError(format!("{at}: has no Effect"))),
    };

    let subject = match (kind, one_of(s, "Principal", "NotPrincipal", true, &at)?) {
        (PolicyKind::Identity, None) => Subject::Holder,
        (PolicyKind::Identity, Some((_, not))) => {
            let name = if not { "NotPrincipal" } else { "Principal" };
            return Err(PolicyError(format!(
                "{at}: {name} is not allowed in an identity-based policy"
            )));
        }
        (PolicyKind::Key, None) => {
            return Err(PolicyError(format!(
                "{at}: a key policy statement needs a Principal or NotPrincipal"
            )))
        }
        (PolicyKind::Key, Some((v, false))) => {
            Subject::Principal(Principals::parse(v, &format!("{at}: Principal"))?)
        }
        (PolicyKind::Key, Some((v, true))) => {
            Subject::NotPrincipal(Principals::parse(v, &format!("{at}: NotPrincipal"))?)
        }
    };

    let actions = match one_of(s, "Action", "NotAction", false, &at)? {
        Some((v, not)) => {
            let name = if not { "NotAction" } else { "Action" };
            let mut patterns = Vec::new();
            for a in strings(v, &format!("{at}: {name}"))? {
                if a != "*"
                    && !a
                        .split_once(':')
                        .is_some_and(|(svc, act)| !svc.is_empty() && !act.is_empty())
                {
                    return Err(PolicyError(format!(
                        "{at}: {name} {a:?} is not \"*\" or \"service:action\" (e.g. \"kms:Encrypt\")"
                    )));
                }
                patterns.push(Pattern::new(&a.to_ascii_lowercase()));
            }
            Patterns {
                patterns,
                not,
                fold: true,
            }
        }
        None => return Err(PolicyError(format!("{at}: needs Action or NotAction"))),
    };

    // A key policy's Resource is the key itself, so leaving it out means "*".
    let resources = match one_of(s, "Resource", "NotResource", kind == PolicyKind::Key, &at)? {
        Some((v, not)) => {
            let name = if not { "NotResource" } else { "Resource" };
            let mut patterns = Vec::new();
            for r in strings(v, &format!("{at}: {name}"))? {
                if r.is_empty() {
                    return Err(PolicyError(format!("{at}: {name} has an empty resource")));
                }
                patterns.push(Pattern::new(r));
            }
            Patterns {
                patterns,
                not,
                fold: false,
            }
        }
        None => Patterns {
            patterns: vec![Pattern::Any],
            not: false,
            fold: false,
        },
    };

    let conditions = match s.get("Condition") {
        Some(v) => Condition::parse_block(v, &at)?,
        None => Vec::new(),
    };

    Ok(Statement {
        effect,
        subject,
        actions,
        resources,
        conditions,
    })
}
