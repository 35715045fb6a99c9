//! One parsed statement and how it applies to a request.

use crate::conditions::Condition;
use crate::pattern::Pattern;
use crate::principal::{Principals, Who};
use crate::{Allow, Request};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    Allow,
    Deny,
}

/// Whom a statement is about.
#[derive(Debug, Clone)]
pub(crate) enum Subject {
    /// An identity policy: the identity the policy is attached to.
    Holder,
    Principal(Principals),
    NotPrincipal(Principals),
}

/// A list of patterns, or its negation (`NotAction`, `NotResource`).
#[derive(Debug, Clone)]
pub(crate) struct Patterns {
    pub(crate) patterns: Vec<Pattern>,
    pub(crate) not: bool,
    /// Match ASCII case-insensitively (actions); the patterns are lower-case then.
    pub(crate) fold: bool,
}

impl Patterns {
    fn matches(&self, text: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(text, self.fold)) != self.not
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Statement {
    pub(crate) effect: Effect,
    pub(crate) subject: Subject,
    pub(crate) actions: Patterns,
    pub(crate) resources: Patterns,
    pub(crate) conditions: Vec<Condition>,
}

/// `Allow`'s strength, for "the strongest match".
pub(crate) fn rank(a: Allow) -> u8 {
    match a {
        Allow::None => 0,
        Allow::Account => 1,
        Allow::Principal => 2,
    }
}

impl Statement {
    /// An `Allow` statement with a condition key Keyhold cannot supply never applies.
    pub(crate) fn is_inert(&self) -> bool {
        self.effect == Effect::Allow && self.conditions.iter().any(|c| !c.known)
    }

    /// How the statement's principal element covers the caller (`Allow::None`: not at all).
    fn subject_match(&self, who: &Who<'_>) -> Allow {
        match &self.subject {
            Subject::Holder => Allow::Principal,
            Subject::Principal(list) => list.names(who),
            // A statement for "everyone but ..." covers the caller as `*` would.
            Subject::NotPrincipal(list) if list.excepts(who) => Allow::None,
            Subject::NotPrincipal(_) => Allow::Principal,
        }
    }

    /// Whether the statement applies to `request` and, if so, how its principal matched;
    /// `Allow::None` when it does not apply. Statements weaker than `at_least` are skipped.
    pub(crate) fn applies(&self, request: &Request<'_>, who: &Who<'_>, at_least: u8) -> Allow {
        if !self.actions.matches(request.action) {
            return Allow::None;
        }
        let subject = self.subject_match(who);
        if rank(subject) < at_least.max(1) {
            return Allow::None;
        }
        if !self.resources.matches(request.resource) {
            return Allow::None;
        }
        if !self.conditions.iter().all(|c| c.holds(request.facts)) {
            return Allow::None;
        }
        subject
    }
}
