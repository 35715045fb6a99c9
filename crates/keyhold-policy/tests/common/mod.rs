//! Shared helpers of the integration tests.
#![allow(dead_code)]

use keyhold_policy::{Allow, Caller, Evaluation, Facts, Policy, PolicyKind, Request};

/// The account that owns the keys in the examples.
pub const ACCOUNT: &str = "111122223333";
/// Another account.
pub const OTHER: &str = "444455556666";
pub const ROOT: &str = "arn:aws:iam::111122223333:root";
pub const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
pub const BOB: &str = "arn:aws:iam::111122223333:user/bob";
pub const APP_SESSION: &str = "arn:aws:sts::111122223333:assumed-role/app/i-0abc";
pub const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// A condition key's value in a test case.
#[derive(Debug, Clone, Copy)]
pub enum F {
    One(&'static str),
    Many(&'static [&'static str]),
}

pub fn facts(list: &[(&str, F)]) -> Facts {
    let mut f = Facts::new();
    for (k, v) in list {
        match v {
            F::One(s) => f.set(k, *s),
            F::Many(vs) => f.set_multi(k, vs.iter().map(|s| s.to_string()).collect()),
        }
    }
    f
}

pub fn key_policy(json: &str) -> Policy {
    Policy::parse(json, PolicyKind::Key).unwrap_or_else(|e| panic!("{e}: {json}"))
}

pub fn identity_policy(json: &str) -> Policy {
    Policy::parse(json, PolicyKind::Identity).unwrap_or_else(|e| panic!("{e}: {json}"))
}

/// The account id in an ARN (the fifth field).
pub fn account_of(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or("")
}

pub fn eval_with(
    policy: &Policy,
    caller: &str,
    action: &str,
    resource: &str,
    f: &Facts,
) -> Evaluation {
    policy.evaluate(&Request {
        caller: Caller {
            arn: caller,
            account_id: account_of(caller),
        },
        action,
        resource,
        facts: f,
    })
}

pub fn eval(policy: &Policy, caller: &str, action: &str) -> Evaluation {
    eval_with(policy, caller, action, KEY, &Facts::new())
}

pub fn allow(a: Allow) -> Evaluation {
    Evaluation {
        explicit_deny: false,
        allow: a,
    }
}

pub fn deny(a: Allow) -> Evaluation {
    Evaluation {
        explicit_deny: true,
        allow: a,
    }
}
