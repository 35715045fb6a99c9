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

// INTERFACE FIXED BY THE MAIN SESSION. The bodies below are placeholders to be written.

/// Why a policy document could not be parsed. The message is meant for
/// `MalformedPolicyDocumentException` and says which element is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// A parsed policy: statements ready for evaluation (patterns pre-lowered where matching is
/// case-insensitive). Cheap to evaluate many times; `Send + Sync` so it can be cached.
#[derive(Debug, Clone)]
pub struct Policy {
    _private: (),
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
    pub fn parse(_json: &str, _kind: PolicyKind) -> Result<Policy, PolicyError> {
        todo!()
    }

    /// Evaluates the policy for `request`.
    pub fn evaluate(&self, _request: &Request<'_>) -> Evaluation {
        todo!()
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
    _private: (),
}

impl Facts {
    /// No condition keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a single-valued condition key.
    pub fn set(&mut self, _key: &str, _value: impl Into<String>) {
        todo!()
    }

    /// Sets a multivalued condition key (e.g. `kms:EncryptionContextKeys`,
    /// `kms:GrantOperations`, `aws:TagKeys`).
    pub fn set_multi(&mut self, _key: &str, _values: Vec<String>) {
        todo!()
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
pub fn is_known_condition_key(_key: &str) -> bool {
    todo!()
}
