//! The `Principal` and `NotPrincipal` elements: parsing the principal list and matching the
//! calling principal against it.

use serde_json::Value;

use crate::{Allow, Caller, PolicyError};

/// One entry of a principal list.
#[derive(Debug, Clone)]
pub(crate) enum Entry {
    /// `"*"` or `{"AWS": "*"}`: every principal.
    Anyone,
    /// An account: `arn:PARTITION:iam::ACCOUNT:root` or the bare 12-digit id (no partition).
    Account {
        partition: Option<Box<str>>,
        account: Box<str>,
    },
    /// Any other AWS principal, matched by exact ARN (or unique id, which matches no caller).
    /// For an IAM role ARN, `role` also matches the role's sessions.
    Arn { arn: Box<str>, role: Option<Role> },
    /// A `Service`, `Federated` or `CanonicalUser` principal: never a Keyhold caller.
    NotAws,
}

/// An IAM role named by `arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`.
#[derive(Debug, Clone)]
pub(crate) struct Role {
    partition: Box<str>,
    account: Box<str>,
    name: Box<str>,
}

/// The caller, taken apart once per evaluation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Who<'a> {
    arn: &'a str,
    account: &'a str,
    partition: &'a str,
    kind: Kind<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind<'a> {
    /// `arn:aws:iam::ACCOUNT:root`.
    Root,
    /// `arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`.
    Session { role: &'a str },
    /// A user, a role used directly, a federated user, ...
    Other,
}

/// `arn:partition:service:region:account:resource`, split.
fn arn_parts(arn: &str) -> Option<[&str; 6]> {
    let mut it = arn.splitn(6, ':');
    let parts = [
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
    ];
    (parts[0] == "arn").then_some(parts)
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

impl<'a> Who<'a> {
    pub(crate) fn new(caller: &Caller<'a>) -> Who<'a> {
        let mut who = Who {
            arn: caller.arn,
            account: caller.account_id,
            partition: "",
            kind: Kind::Other,
        };
        if let Some([_, partition, service, _, account, resource]) = arn_parts(caller.arn) {
            who.partition = partition;
            if account == caller.account_id {
                if service == "iam" && resource == "root" {
                    who.kind = Kind::Root;
                } else if service == "sts" {
                    let mut it = resource.splitn(3, '/');
                    if let (Some("assumed-role"), Some(role), Some(_)) =
                        (it.next(), it.next(), it.next())
                    {
                        who.kind = Kind::Session { role };
                    }
                }
            }
        }
        who
    }
}

impl Entry {
    fn parse_aws(s: &str, element: &str) -> Result<Entry, PolicyError> {
        if s == "*" {
            return Ok(Entry::Anyone);
        }
        if s.is_empty() {
            return Err(PolicyError(format!("{element}: an empty AWS principal")));
        }
        if s.contains(['*', '?']) {
            return Err(PolicyError(format!(
                "{element}: AWS principal {s:?} has a wildcard; only \"*\" on its own is allowed"
            )));
        }
        if is_account_id(s) {
            return Ok(Entry::Account {
                partition: None,
                account: s.into(),
            });
        }
        let Some([_, partition, service, _, account, resource]) = arn_parts(s) else {
            if s.starts_with("arn:") {
                return Err(PolicyError(format!("{element}: {s:?} is not a valid ARN")));
            }
            // A unique id (AIDA..., AROA...), as AWS shows a deleted principal: valid, but it
            // names no current caller.
            return Ok(Entry::Arn {
                arn: s.into(),
                role: None,
            });
        };
        if service == "iam" && resource == "root" {
            if !is_account_id(account) {
                return Err(PolicyError(format!(
                    "{element}: {s:?} has no valid account id"
                )));
            }
            return Ok(Entry::Account {
                partition: Some(partition.into()),
                account: account.into(),
            });
        }
        let role = match (service, resource.strip_prefix("role/")) {
            ("iam", Some(path_and_name)) => path_and_name.rsplit('/').next().map(|name| Role {
                partition: partition.into(),
                account: account.into(),
                name: name.into(),
            }),
            _ => None,
        };
        Ok(Entry::Arn {
            arn: s.into(),
            role,
        })
    }

    /// How this entry names the caller in a `Principal` element, if it does.
    fn names(&self, who: &Who<'_>) -> Allow {
        match self {
            Entry::Anyone => Allow::Principal,
            Entry::Account { .. } if self.is_account_of(who) => {
                if who.kind == Kind::Root {
                    Allow::Principal
                } else {
                    Allow::Account
                }
            }
            Entry::Arn { arn, .. } if **arn == *who.arn => Allow::Principal,
            Entry::Arn { role: Some(_), .. } if self.is_role_of(who) => Allow::Principal,
            _ => Allow::None,
        }
    }

    fn is_account_of(&self, who: &Who<'_>) -> bool {
        match self {
            Entry::Anyone => true,
            Entry::Account { partition, account } => {
                **account == *who.account && partition.as_deref().is_none_or(|p| p == who.partition)
            }
            _ => false,
        }
    }

    fn is_role_of(&self, who: &Who<'_>) -> bool {
        match (self, who.kind) {
            (Entry::Anyone, _) => true,
            (Entry::Arn { role: Some(r), .. }, Kind::Session { role }) => {
                *r.name == *role && *r.account == *who.account && *r.partition == *who.partition
            }
            _ => false,
        }
    }

    fn is_arn_of(&self, who: &Who<'_>) -> bool {
        match self {
            Entry::Anyone => true,
            Entry::Arn { arn, .. } => **arn == *who.arn,
            _ => false,
        }
    }
}

/// A parsed `Principal` or `NotPrincipal` value.
#[derive(Debug, Clone)]
pub(crate) struct Principals(Vec<Entry>);

impl Principals {
    /// Parses `"*"` or `{"AWS": ..., "Service": ..., "Federated": ..., "CanonicalUser": ...}`
    /// where each value is a string or a non-empty array of strings.
    pub(crate) fn parse(v: &Value, element: &str) -> Result<Principals, PolicyError> {
        let map = match v {
            Value::String(s) if s == "*" => return Ok(Principals(vec![Entry::Anyone])),
            Value::Object(map) if !map.is_empty() => map,
            _ => {
                return Err(PolicyError(format!(
                "{element} must be \"*\" or an object such as {{\"AWS\": \"<ARN or account id>\"}}"
            )))
            }
        };
        let mut entries = Vec::new();
        for (kind, value) in map {
            let aws = match kind.as_str() {
                "AWS" => true,
                "Service" | "Federated" | "CanonicalUser" => false,
                other => {
                    return Err(PolicyError(format!(
                        "{element}: unknown principal type {other:?} (expected AWS, Service, \
                         Federated or CanonicalUser)"
                    )))
                }
            };
            let what = format!("{element}.{kind}");
            for s in crate::parse::strings(value, &what)? {
                if s.is_empty() {
                    return Err(PolicyError(format!("{what}: an empty principal")));
                }
                entries.push(if aws {
                    Entry::parse_aws(s, &what)?
                } else {
                    Entry::NotAws
                });
            }
        }
        Ok(Principals(entries))
    }

    /// `Principal`: the strongest way an entry names the caller.
    pub(crate) fn names(&self, who: &Who<'_>) -> Allow {
        let mut best = Allow::None;
        for e in &self.0 {
            match e.names(who) {
                Allow::Principal => return Allow::Principal,
                Allow::Account => best = Allow::Account,
                Allow::None => {}
            }
        }
        best
    }

    /// `NotPrincipal`: whether the caller is excepted. AWS checks each identity in the
    /// caller's chain — its account, for a role session also the role, and the caller itself
    /// — and the statement applies unless every one of them is listed. So a user is excepted
    /// only with its ARN *and* its account listed, a role session only with the session ARN,
    /// the role ARN and the account, the account root with its account.
    pub(crate) fn excepts(&self, who: &Who<'_>) -> bool {
        let listed = |f: &dyn Fn(&Entry) -> bool| self.0.iter().any(f);
        if !listed(&|e| e.is_account_of(who)) {
            return false;
        }
        match who.kind {
            Kind::Root => true,
            Kind::Session { .. } => listed(&|e| e.is_role_of(who)) && listed(&|e| e.is_arn_of(who)),
            Kind::Other => listed(&|e| e.is_arn_of(who)),
        }
    }
}
