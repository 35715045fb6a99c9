//! The statement elements: Principal / NotPrincipal, Action / NotAction, Resource /
//! NotResource, Effect, and how statements combine.

mod common;

use common::*;
use keyhold_policy::{Allow, Facts, Policy, PolicyKind};

fn with_principal(principal: &str) -> Policy {
    key_policy(&format!(
        r#"{{"Statement": {{"Effect": "Allow", "Principal": {principal}, "Action": "kms:*", "Resource": "*"}}}}"#
    ))
}

#[test]
fn principal_forms() {
    const ROLE_SESSION: &str = "arn:aws:sts::111122223333:assumed-role/app/i-0abc";
    const PATH_SESSION: &str = "arn:aws:sts::111122223333:assumed-role/deploy/ci";
    const FOREIGN_USER: &str = "arn:aws:iam::444455556666:user/alice";
    const FOREIGN_ROOT: &str = "arn:aws:iam::444455556666:root";
    let rows: &[(&str, &str, Allow)] = &[
        (r#""*""#, ALICE, Allow::Principal),
        (r#""*""#, FOREIGN_USER, Allow::Principal),
        (r#"{"AWS": "*"}"#, ROLE_SESSION, Allow::Principal),
        (r#"{"AWS": ["*"]}"#, ROOT, Allow::Principal),
        // The account: the root itself is named; its users and roles get delegation.
        (
            r#"{"AWS": "arn:aws:iam::111122223333:root"}"#,
            ROOT,
            Allow::Principal,
        ),
        (
            r#"{"AWS": "arn:aws:iam::111122223333:root"}"#,
            ALICE,
            Allow::Account,
        ),
        (
            r#"{"AWS": "arn:aws:iam::111122223333:root"}"#,
            ROLE_SESSION,
            Allow::Account,
        ),
        (
            r#"{"AWS": "arn:aws:iam::111122223333:root"}"#,
            FOREIGN_USER,
            Allow::None,
        ),
        (
            r#"{"AWS": "arn:aws:iam::111122223333:root"}"#,
            FOREIGN_ROOT,
            Allow::None,
        ),
        (r#"{"AWS": "111122223333"}"#, ALICE, Allow::Account),
        (r#"{"AWS": "111122223333"}"#, ROOT, Allow::Principal),
        (r#"{"AWS": "444455556666"}"#, ALICE, Allow::None),
        (
            r#"{"AWS": "arn:aws-cn:iam::111122223333:root"}"#,
            ALICE,
            Allow::None,
        ),
        // Users by exact ARN.
        (
            r#"{"AWS": "arn:aws:iam::111122223333:user/alice"}"#,
            ALICE,
            Allow::Principal,
        ),
        (
            r#"{"AWS": "arn:aws:iam::111122223333:user/alice"}"#,
            BOB,
            Allow::None,
        ),
        (
            r#"{"AWS": "arn:aws:iam::111122223333:user/Alice"}"#,
            ALICE,
            Allow::None,
        ),
        (
            r#"{"AWS": "arn:aws:iam::111122223333:user/alice"}"#,
            ROOT,
            Allow::None,
        ),
        (
            r#"{"AWS": "arn:aws:iam::444455556666:user/alice"}"#,
            ALICE,
            Allow::None,
        ),
        // A role names its sessions, whatever its path; a session names only itself.
        (
            r#"{"AWS": "arn:aws:iam::111122223333:role/app"}"#,
            ROLE_SESSION,
            Allow::Principal,
        ),
        (
            r#"{"AWS": "arn:aws:iam::111122223333:role/ci/deploy"}"#,
            PATH_SESSION,
            Allow::Principal,
        ),
        (
            r#"{"AWS": "arn:aws:iam::111122223333:role/a/b/deploy"}"#,
            PATH_SESSION,
            Allow::Principal,
        ),
        (
            r#"{"AWS": "arn:aws:iam::111122223333:role/app"}"#,
            PATH_SESSION,
            Allow::None,
        ),
        (
            r#"{"AWS": "arn:aws:iam::444455556666:role/app"}"#,
            ROLE_SESSION,
            Allow::None,
        ),
        (
            r#"{"AWS": "arn:aws:iam::111122223333:role/app"}"#,
            "arn:aws:iam::111122223333:role/app",
            Allow::Principal,
        ),
        (
            r#"{"AWS": "arn:aws:sts::111122223333:assumed-role/app/i-0abc"}"#,
            ROLE_SESSION,
            Allow::Principal,
        ),
        (
            r#"{"AWS": "arn:aws:sts::111122223333:assumed-role/app/other"}"#,
            ROLE_SESSION,
            Allow::None,
        ),
        (
            r#"{"AWS": "arn:aws:iam::111122223333:user/app"}"#,
            ROLE_SESSION,
            Allow::None,
        ),
        // A unique id (as AWS shows a deleted principal) names nobody.
        (r#"{"AWS": "AIDACKCEVSQ6C2EXAMPLE"}"#, ALICE, Allow::None),
        // Service, federated and canonical-user principals are never a Keyhold caller.
        (r#"{"Service": "ec2.amazonaws.com"}"#, ALICE, Allow::None),
        (
            r#"{"Service": ["ec2.amazonaws.com", "logs.amazonaws.com"]}"#,
            ROOT,
            Allow::None,
        ),
        (
            r#"{"Federated": "cognito-identity.amazonaws.com"}"#,
            ALICE,
            Allow::None,
        ),
        (
            r#"{"CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"}"#,
            ALICE,
            Allow::None,
        ),
        // Lists: the strongest entry wins.
        (
            r#"{"AWS": ["arn:aws:iam::111122223333:root", "arn:aws:iam::111122223333:user/alice"]}"#,
            ALICE,
            Allow::Principal,
        ),
        (
            r#"{"AWS": ["arn:aws:iam::111122223333:user/bob", "111122223333"]}"#,
            ALICE,
            Allow::Account,
        ),
        (
            r#"{"Service": "ec2.amazonaws.com", "AWS": "arn:aws:iam::111122223333:user/alice"}"#,
            ALICE,
            Allow::Principal,
        ),
    ];
    for (principal, caller, want) in rows {
        let got = eval(&with_principal(principal), caller, "kms:Encrypt");
        assert_eq!(got, allow(*want), "{principal} for {caller}");
    }
}

#[test]
fn the_strongest_allow_wins_over_several_statements() {
    let p = key_policy(
        r#"{"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"}, "Action": "kms:Encrypt"},
            {"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "kms:Decrypt"}
        ]}"#,
    );
    assert_eq!(eval(&p, ALICE, "kms:Encrypt"), allow(Allow::Principal));
    assert_eq!(eval(&p, ALICE, "kms:Decrypt"), allow(Allow::Account));
    assert_eq!(eval(&p, BOB, "kms:Encrypt"), allow(Allow::Account));
}

#[test]
fn explicit_deny_is_reported_alongside_the_allow() {
    let p = key_policy(
        r#"{"Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"},
            {"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::111122223333:user/bob"}, "Action": "kms:Decrypt", "Resource": "*"},
            {"Effect": "Deny", "Principal": {"AWS": "444455556666"}, "Action": "kms:*", "Resource": "*"}
        ]}"#,
    );
    assert_eq!(eval(&p, BOB, "kms:Decrypt"), deny(Allow::Principal));
    assert_eq!(eval(&p, BOB, "kms:Encrypt"), allow(Allow::Principal));
    assert_eq!(eval(&p, ALICE, "kms:Decrypt"), allow(Allow::Principal));
    // A Deny naming an account covers every principal of it.
    assert_eq!(
        eval(&p, "arn:aws:iam::444455556666:user/x", "kms:Encrypt"),
        deny(Allow::Principal)
    );
    assert_eq!(
        eval(&p, "arn:aws:iam::444455556666:root", "kms:Encrypt"),
        deny(Allow::Principal)
    );
    // A Deny alone allows nothing.
    let p = key_policy(r#"{"Statement": {"Effect": "Deny", "Principal": "*", "Action": "kms:*"}}"#);
    assert_eq!(eval(&p, ALICE, "kms:Encrypt"), deny(Allow::None));
}

#[test]
fn not_principal_needs_every_identity_of_the_chain_listed() {
    const SESSION: &str = "arn:aws:sts::444455556666:assumed-role/cross-account-read-only-role/cross-account-audit-app";
    let deny_all_but = |list: &str| {
        key_policy(&format!(
            r#"{{"Statement": [
                {{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}},
                {{"Effect": "Deny", "NotPrincipal": {{"AWS": {list}}}, "Action": "kms:*", "Resource": "*"}}
            ]}}"#
        ))
    };
    // AWS's example: the user and its account.
    let p =
        deny_all_but(r#"["arn:aws:iam::111122223333:user/bob", "arn:aws:iam::111122223333:root"]"#);
    assert!(!eval(&p, BOB, "kms:Decrypt").explicit_deny);
    assert!(eval(&p, ALICE, "kms:Decrypt").explicit_deny);
    assert!(!eval(&p, ROOT, "kms:Decrypt").explicit_deny);
    assert!(eval(&p, "arn:aws:iam::444455556666:user/bob", "kms:Decrypt").explicit_deny);
    // The user without its account: the account is denied, so the user is.
    let p = deny_all_but(r#""arn:aws:iam::111122223333:user/bob""#);
    assert!(eval(&p, BOB, "kms:Decrypt").explicit_deny);
    // A bare account id lists the account as well.
    let p = deny_all_but(r#"["arn:aws:iam::111122223333:user/bob", "111122223333"]"#);
    assert!(!eval(&p, BOB, "kms:Decrypt").explicit_deny);
    // AWS's example: an assumed-role session, its role and the role's account.
    let full = r#"[
        "arn:aws:sts::444455556666:assumed-role/cross-account-read-only-role/cross-account-audit-app",
        "arn:aws:iam::444455556666:role/cross-account-read-only-role",
        "arn:aws:iam::444455556666:root"]"#;
    assert!(!eval(&deny_all_but(full), SESSION, "kms:Decrypt").explicit_deny);
    let other_session = "arn:aws:sts::444455556666:assumed-role/cross-account-read-only-role/other";
    assert!(eval(&deny_all_but(full), other_session, "kms:Decrypt").explicit_deny);
    for partial in [
        r#"["arn:aws:iam::444455556666:role/cross-account-read-only-role", "arn:aws:iam::444455556666:root"]"#,
        r#"["arn:aws:sts::444455556666:assumed-role/cross-account-read-only-role/cross-account-audit-app", "arn:aws:iam::444455556666:root"]"#,
        r#"["arn:aws:sts::444455556666:assumed-role/cross-account-read-only-role/cross-account-audit-app", "arn:aws:iam::444455556666:role/cross-account-read-only-role"]"#,
    ] {
        assert!(
            eval(&deny_all_but(partial), SESSION, "kms:Decrypt").explicit_deny,
            "{partial}"
        );
    }
    // `*` excepts everyone; a service principal excepts no AWS caller.
    assert!(!eval(&deny_all_but(r#""*""#), ALICE, "kms:Decrypt").explicit_deny);
    let p = key_policy(
        r#"{"Statement": {"Effect": "Deny", "NotPrincipal": {"Service": "ec2.amazonaws.com"}, "Action": "kms:*"}}"#,
    );
    assert!(eval(&p, ROOT, "kms:Decrypt").explicit_deny);
}

#[test]
fn not_principal_with_allow_covers_everyone_else_as_star_would() {
    let p = key_policy(
        r#"{"Statement": {"Effect": "Allow", "NotPrincipal": {"AWS": ["arn:aws:iam::111122223333:user/bob", "111122223333"]},
            "Action": "kms:Encrypt", "Resource": "*"}}"#,
    );
    assert_eq!(eval(&p, ALICE, "kms:Encrypt"), allow(Allow::Principal));
    assert_eq!(eval(&p, BOB, "kms:Encrypt"), allow(Allow::None));
    assert_eq!(
        eval(&p, "arn:aws:iam::444455556666:user/x", "kms:Encrypt"),
        allow(Allow::Principal)
    );
}

#[test]
fn actions_match_case_insensitively_with_wildcards() {
    let rows: &[(&str, &str, bool)] = &[
        (r#""kms:Encrypt""#, "kms:Encrypt", true),
        (r#""kms:Encrypt""#, "KMS:encrypt", true),
        (r#""KMS:ENCRYPT""#, "kms:Encrypt", true),
        (r#""kms:Encrypt""#, "kms:Decrypt", false),
        (r#""kms:Encrypt""#, "kms:EncryptX", false),
        (r#""kms:*""#, "kms:ScheduleKeyDeletion", true),
        (r#""kms:*""#, "s3:GetObject", false),
        (r#""*""#, "s3:GetObject", true),
        (r#""kms:Encrypt*""#, "kms:Encrypt", true),
        (r#""kms:Re*""#, "kms:ReEncryptFrom", true),
        (r#""kms:Re*""#, "kms:RetireGrant", true),
        (r#""kms:Re*""#, "kms:Decrypt", false),
        (
            r#""kms:GenerateDataKey*""#,
            "kms:GenerateDataKeyPairWithoutPlaintext",
            true,
        ),
        (r#""kms:*Grant*""#, "kms:ListRetirableGrants", true),
        (r#""kms:*Grant""#, "kms:ListGrants", false),
        (r#""kms:?ncrypt""#, "kms:Encrypt", true),
        (r#""kms:?ncrypt""#, "kms:Decrypt", false),
        (r#"["kms:Decrypt", "kms:Encrypt"]"#, "kms:encrypt", true),
        (r#"["kms:Decrypt", "kms:Sign"]"#, "kms:Encrypt", false),
    ];
    for (actions, action, want) in rows {
        let p = key_policy(&format!(
            r#"{{"Statement": {{"Effect": "Allow", "Principal": "*", "Action": {actions}, "Resource": "*"}}}}"#
        ));
        let want_allow = if *want { Allow::Principal } else { Allow::None };
        assert_eq!(
            eval(&p, ALICE, action).allow,
            want_allow,
            "{actions} vs {action}"
        );
        let p = key_policy(&format!(
            r#"{{"Statement": {{"Effect": "Allow", "Principal": "*", "NotAction": {actions}, "Resource": "*"}}}}"#
        ));
        let want_allow = if *want { Allow::None } else { Allow::Principal };
        assert_eq!(
            eval(&p, ALICE, action).allow,
            want_allow,
            "NotAction {actions} vs {action}"
        );
    }
}

#[test]
fn resources_match_case_sensitively_with_wildcards() {
    let exact = format!("{KEY:?}");
    let rows: &[(&str, bool)] = &[
        (r#""*""#, true),
        (&exact, true),
        (r#""arn:aws:kms:us-east-1:111122223333:key/*""#, true),
        (r#""arn:aws:kms:*:111122223333:key/*""#, true),
        (r#""arn:aws:kms:us-east-1:111122223333:KEY/*""#, false),
        (r#""arn:aws:kms:us-east-1:444455556666:key/*""#, false),
        (r#""arn:aws:kms:us-east-?:111122223333:key/*""#, true),
        (r#""arn:aws:kms:us-east-1:111122223333:alias/*""#, false),
        (
            r#"["arn:aws:kms:us-east-1:111122223333:alias/*", "arn:aws:kms:*"]"#,
            true,
        ),
        (
            r#"["arn:aws:kms:us-east-1:111122223333:alias/*", "arn:aws:s3:::*"]"#,
            false,
        ),
    ];
    for (resources, want) in rows {
        let p = identity_policy(&format!(
            r#"{{"Statement": {{"Effect": "Allow", "Action": "kms:*", "Resource": {resources}}}}}"#
        ));
        let want_allow = if *want { Allow::Principal } else { Allow::None };
        assert_eq!(
            eval(&p, ALICE, "kms:Encrypt").allow,
            want_allow,
            "{resources}"
        );
        let p = identity_policy(&format!(
            r#"{{"Statement": {{"Effect": "Allow", "Action": "kms:*", "NotResource": {resources}}}}}"#
        ));
        let want_allow = if *want { Allow::None } else { Allow::Principal };
        assert_eq!(
            eval(&p, ALICE, "kms:Encrypt").allow,
            want_allow,
            "NotResource {resources}"
        );
    }
}

#[test]
fn identity_policies_apply_to_their_holder() {
    let p = identity_policy(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Sid": "UseKeys", "Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "arn:aws:kms:*:111122223333:key/*"},
            {"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
        ]}"#,
    );
    // Any caller: the identity policy belongs to whoever it is attached to.
    assert_eq!(eval(&p, ALICE, "kms:Encrypt"), allow(Allow::Principal));
    assert_eq!(
        eval(&p, "arn:aws:iam::444455556666:user/x", "kms:Encrypt"),
        allow(Allow::Principal)
    );
    assert_eq!(eval(&p, ALICE, "kms:Sign"), allow(Allow::None));
    let plain = facts(&[("aws:SecureTransport", F::One("false"))]);
    assert_eq!(
        eval_with(&p, ALICE, "kms:Decrypt", KEY, &plain),
        deny(Allow::Principal)
    );
    assert_eq!(eval(&p, ALICE, "kms:Decrypt"), allow(Allow::Principal));
}

#[test]
fn key_policy_statements_without_resource_mean_every_resource() {
    let p = key_policy(
        r#"{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "kms:DescribeKey"}}"#,
    );
    assert_eq!(eval(&p, ALICE, "kms:DescribeKey"), allow(Allow::Principal));
    assert_eq!(
        eval_with(
            &p,
            ALICE,
            "kms:DescribeKey",
            "arn:aws:kms:eu-west-1:1:key/x",
            &Facts::new()
        ),
        allow(Allow::Principal)
    );
}

#[test]
fn versions_ids_and_single_statements() {
    for doc in [
        r#"{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "kms:*"}}"#,
        r#"{"Version": "2008-10-17", "Id": "x", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:*"}]}"#,
        r#"{"Version": "2012-10-17", "Statement": [{"Sid": "", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["kms:*"], "Resource": ["*"]}]}"#,
    ] {
        assert_eq!(
            eval(&key_policy(doc), ALICE, "kms:Encrypt"),
            allow(Allow::Principal),
            "{doc}"
        );
    }
}

#[test]
fn policies_are_send_sync_and_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Policy>();
    check::<Facts>();
    let p = Policy::parse(
        r#"{"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}"#,
        PolicyKind::Identity,
    )
    .expect("valid");
    let q = p.clone();
    assert_eq!(eval(&q, ALICE, "kms:Encrypt"), allow(Allow::Principal));
}

#[test]
fn policies_say_which_condition_keys_they_use() {
    let p = keyhold_policy::Policy::parse(
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:Encrypt","Resource":"*",
            "Condition":{"ForAnyValue:StringLike":{"KMS:resourcealiases":"alias/a*"}}}]}"#,
        keyhold_policy::PolicyKind::Key,
    )
    .expect("parses");
    assert!(p.uses_condition_key("kms:ResourceAliases"));
    assert!(!p.uses_condition_key("kms:RequestAlias"));
}
