//! The IAM policy language as AWS KMS evaluates it.
//!
//! A policy (a KMS key policy, or an IAM identity policy from Keyhold's configuration) is
//! parsed once into a [`Policy`] and then evaluated per request against a [`Request`]: who
//! calls ([`Caller`]), which action (`kms:Encrypt`), on which resource (a key ARN), and the
//! request's condition keys ([`Facts`]). Evaluation answers an [`Evaluation`]: whether a
//! statement explicitly denies, and whether (and how) one allows. Combining the key policy,
//! identity policies and grants into a decision is the caller's job (`keyhold-core`), because
//! that depends on accounts and grants, which this crate knows nothing of.
//!
//! Pure functions over data; no I/O, no async, no dependency on the rest of Keyhold.
//!
//! # Semantics
//!
//! AWS's documentation is the specification; where it leaves room, this crate decides as
//! follows.
//!
//! - **Parsing** is as strict as IAM: unknown elements, a bad `Effect`, an unknown condition
//!   operator, a value an operator cannot read (a number for `NumericLessThan`, a date, a
//!   CIDR range, base64, `true`/`false` for `Bool` and `Null`) and partial wildcards in an
//!   AWS principal are [`PolicyError`]s. Operator names match case-insensitively; element
//!   names and `Allow`/`Deny` do not. Policy variables (`${aws:username}`) are not expanded.
//! - **Principals** are matched exactly, never with wildcards. A role ARN (with or without a
//!   path) also names every session of that role. `NotPrincipal` excepts a caller only when
//!   every identity in its chain is listed: its account, for a role session also the role,
//!   and the caller's own ARN (AWS's "NotPrincipal" page: an assumed-role session must list
//!   the session, the role and the account). A `NotPrincipal` statement covers everyone else
//!   as `*` would, so an `Allow` with one matches as [`Allow::Principal`].
//! - **Condition keys** are case-insensitive, including the `<k>` of
//!   `kms:EncryptionContext:<k>` (the KMS guide: the whole condition key is not case
//!   sensitive; only the value's case follows the operator).
//! - **Absent keys**: a positive operator is false, a negated one (`StringNotEquals`,
//!   `NotIpAddress`, ...) true, `...IfExists` true, `ForAnyValue:` false, `ForAllValues:`
//!   true. A multivalued key with no values counts as absent (also for `Null`).
//! - **Set operators** apply the operator to each request value: `ForAllValues:` needs every
//!   value to pass, `ForAnyValue:` one. With a negated operator a value passes when it
//!   matches none of the policy's values (so `ForAnyValue:StringNotEquals` is "some value is
//!   not listed").
//! - **A multivalued key without a set operator** (which AWS says not to write) is true when
//!   any request value matches; for a negated operator, when none does.
//! - **Unknown condition keys** (see [`is_known_condition_key`]): an `Allow` statement using
//!   one never applies; in a `Deny` statement the key is absent, whatever [`Facts`] holds.
//! - **ARN operators**: `ArnEquals` and `ArnLike` are the same test, matching the six
//!   colon-separated parts one by one with `*`/`?`; a pattern that is not ARN-shaped is
//!   matched against the whole value.

#![warn(missing_docs)]

mod conditions;
mod keys;
mod parse;
mod pattern;
mod principal;
mod scalars;
mod statement;

/// Why a policy document could not be parsed. The message is meant for
/// `MalformedPolicyDocumentException` and says which element is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// A parsed policy: statements ready for evaluation (patterns pre-lowered where matching is
/// case-insensitive). Cheap to evaluate many times; `Send + Sync` so it can be cached.
#[derive(Debug, Clone)]
pub struct Policy {
    statements: Vec<statement::Statement>,
}

/// Which kind of policy is parsed: key policies must give every statement a `Principal` or
/// `NotPrincipal`; identity policies must not have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// A resource-based policy (a KMS key policy).
    Key,
    /// An identity-based policy (IAM user/role policy).
    Identity,
}

impl Policy {
    /// Parses `json` as a policy of `kind`.
    pub fn parse(json: &str, kind: PolicyKind) -> Result<Policy, PolicyError> {
        let statements = parse::document(json, kind)?
            .into_iter()
            // An `Allow` with a condition key Keyhold cannot supply never applies.
            .filter(|s| !s.is_inert())
            .collect();
        Ok(Policy { statements })
    }

    /// Whether any statement has a condition: a policy without one never reads the request's
    /// facts, so a caller may skip building them.
    pub fn has_conditions(&self) -> bool {
        self.statements.iter().any(|st| !st.conditions.is_empty())
    }

    /// Whether a condition of the policy uses the condition key `key` (case-insensitive).
    /// Lets a caller compute an expensive key (e.g. `kms:ResourceAliases`, which needs a
    /// lookup) only for the policies that use it.
    pub fn uses_condition_key(&self, key: &str) -> bool {
        self.statements.iter().any(|st| {
            st.conditions
                .iter()
                .any(|c| c.key().eq_ignore_ascii_case(key))
        })
    }

    /// Evaluates the policy for `request`.
    pub fn evaluate(&self, request: &Request<'_>) -> Evaluation {
        let who = principal::Who::new(&request.caller);
        let mut out = Evaluation::default();
        for s in &self.statements {
            match s.effect {
                statement::Effect::Deny => {
                    if !out.explicit_deny && s.applies(request, &who, 1) != Allow::None {
                        out.explicit_deny = true;
                    }
                }
                statement::Effect::Allow => {
                    let best = statement::rank(out.allow);
                    if best < statement::rank(Allow::Principal) {
                        let found = s.applies(request, &who, best + 1);
                        if found != Allow::None {
                            out.allow = found;
                        }
                    }
                }
            }
        }
        out
    }
}

/// The calling principal.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The principal's ARN: `arn:aws:iam::111122223333:root`, `...:user/alice`,
    /// `...:role/app`, or an assumed-role session `arn:aws:sts::111122223333:assumed-role/app/s1`.
    pub arn: &'a str,
    /// The principal's 12-digit account id.
    pub account_id: &'a str,
}

/// One request as a policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Who calls.
    pub caller: Caller<'a>,
    /// The action, e.g. `kms:Encrypt` (matched case-insensitively).
    pub action: &'a str,
    /// The resource ARN, e.g. the key ARN (matched case-sensitively, with wildcards).
    pub resource: &'a str,
    /// The request's condition keys and their values.
    pub facts: &'a Facts,
}

/// The condition keys of one request (`kms:CallerAccount`, `kms:EncryptionContext:app`,
/// `aws:SourceIp`, ...) with their values, all kept as strings as IAM compares them
/// (booleans as `"true"`/`"false"`, numbers in decimal, dates in ISO 8601, IPs as text).
/// Key names are case-insensitive.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// `(lower-cased key, values)`; few entries, so a linear search beats hashing.
    entries: Vec<(Box<str>, FactValues)>,
}

#[derive(Debug, Clone)]
enum FactValues {
    One(String),
    Many(Vec<String>),
}

impl Facts {
    /// No condition keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a single-valued condition key.
    ///
    /// Setting a key again (in any case) replaces its values.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.put(key, FactValues::One(value.into()));
    }

    /// Sets a multivalued condition key (e.g. `kms:EncryptionContextKeys`,
    /// `kms:GrantOperations`, `aws:TagKeys`).
    ///
    /// An empty list counts as an absent key (`ForAllValues:` is then true, `ForAnyValue:`
    /// false, `Null` true).
    pub fn set_multi(&mut self, key: &str, values: Vec<String>) {
        self.put(key, FactValues::Many(values));
    }

    fn put(&mut self, key: &str, values: FactValues) {
        let key = fold_case(key);
        match self.entries.iter_mut().find(|(k, _)| **k == *key) {
            Some(entry) => entry.1 = values,
            None => self.entries.push((key.into(), values)),
        }
    }

    /// The values of `key` (lower-cased already); `None` when absent or empty.
    pub(crate) fn get(&self, key: &str) -> Option<&[String]> {
        let (_, values) = self.entries.iter().find(|(k, _)| **k == *key)?;
        match values {
            FactValues::One(v) => Some(std::slice::from_ref(v)),
            FactValues::Many(vs) if vs.is_empty() => None,
            FactValues::Many(vs) => Some(vs),
        }
    }
}

/// What a policy says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Evaluation {
    /// A `Deny` statement applies.
    pub explicit_deny: bool,
    /// Whether an `Allow` statement applies, and how the caller matched its principal.
    pub allow: Allow,
}

/// How an `Allow` statement matched (the strongest match among the statements that apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Allow {
    /// No `Allow` statement applies.
    #[default]
    None,
    /// An allowing statement names the caller's account (its root, `arn:aws:iam::ACCOUNT:root`
    /// or the bare account id) and the caller is not that root: in a key policy this
    /// *delegates* to the account's identity policies, which must allow too.
    Account,
    /// An allowing statement names the caller itself (its ARN, its role for an assumed-role
    /// session, `*`, or the account root when the caller is the root), or — in an identity
    /// policy, which has no principal — simply applies.
    Principal,
}

/// Whether `key` is a condition key Keyhold knows how to supply (global `aws:` keys and
/// KMS's `kms:` keys, including the prefixed families `kms:EncryptionContext:<k>`,
/// `aws:ResourceTag/<k>`, `aws:RequestTag/<k>`, `aws:PrincipalTag/<k>`). An `Allow` statement
/// whose condition uses an unknown key never applies.
pub fn is_known_condition_key(key: &str) -> bool {
    keys::is_known_lower(&fold_case(key))
}

/// Lower-cases `s` character by character, the same way on the policy's side and the
/// request's (so `str::to_lowercase`'s context-dependent final sigma cannot make them differ).
pub(crate) fn fold_case(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}
