//! Every condition operator, table-driven: match, non-match, absent key, `IfExists`, set
//! operators, negation, case rules and unknown keys.

mod common;

use common::{eval_with, facts, identity_policy, ALICE, F, KEY};
use keyhold_policy::{is_known_condition_key, Allow};

/// `(condition element, facts, whether an Allow statement with it applies)`.
type Row = (&'static str, &'static [(&'static str, F)], bool);

const NONE: &[(&str, F)] = &[];

fn allow_policy(condition: &str) -> String {
    format!(
        r#"{{"Version": "2012-10-17", "Statement": {{"Effect": "Allow", "Action": "kms:Encrypt",
            "Resource": "*", "Condition": {condition}}}}}"#
    )
}

fn deny_policy(condition: &str) -> String {
    format!(
        r#"{{"Statement": [{{"Effect": "Allow", "Action": "*", "Resource": "*"}},
            {{"Effect": "Deny", "Action": "kms:Encrypt", "Resource": "*", "Condition": {condition}}}]}}"#
    )
}

fn run(rows: &[Row]) {
    for (i, (condition, f, want)) in rows.iter().enumerate() {
        let f = facts(f);
        let got = eval_with(
            &identity_policy(&allow_policy(condition)),
            ALICE,
            "kms:Encrypt",
            KEY,
            &f,
        );
        let want_allow = if *want { Allow::Principal } else { Allow::None };
        assert_eq!(
            got.allow, want_allow,
            "row {i} (Allow): {condition} with {f:?}"
        );
        assert!(!got.explicit_deny);
        // The same condition in a Deny statement applies exactly when it holds.
        let got = eval_with(
            &identity_policy(&deny_policy(condition)),
            ALICE,
            "kms:Encrypt",
            KEY,
            &f,
        );
        assert_eq!(
            got.explicit_deny, *want,
            "row {i} (Deny): {condition} with {f:?}"
        );
        assert_eq!(got.allow, Allow::Principal);
    }
}

const ACCT: &str = "kms:CallerAccount";

#[test]
#[rustfmt::skip]
fn string_operators() {
    run(&[
        (r#"{"StringEquals": {"kms:CallerAccount": "111122223333"}}"#, &[(ACCT, F::One("111122223333"))], true),
        (r#"{"StringEquals": {"kms:CallerAccount": "111122223333"}}"#, &[(ACCT, F::One("444455556666"))], false),
        (r#"{"StringEquals": {"kms:CallerAccount": "111122223333"}}"#, NONE, false),
        (r#"{"StringEquals": {"kms:CallerAccount": ["1", "2"]}}"#, &[(ACCT, F::One("2"))], true),
        (r#"{"StringEquals": {"kms:CallerAccount": ["1", "2"]}}"#, &[(ACCT, F::One("3"))], false),
        (r#"{"StringEquals": {"kms:KeySpec": "RSA_2048"}}"#, &[("kms:KeySpec", F::One("rsa_2048"))], false),
        (r#"{"StringEquals": {"kms:KeySpec": ""}}"#, &[("kms:KeySpec", F::One(""))], true),
        // Numbers and booleans in the policy compare as their text.
        (r#"{"StringEquals": {"kms:RotationPeriodInDays": 90}}"#, &[("kms:RotationPeriodInDays", F::One("90"))], true),
        (r#"{"StringEquals": {"kms:MultiRegion": true}}"#, &[("kms:MultiRegion", F::One("true"))], true),
        // Negated: the value must match none of the policy's values; absent is true.
        (r#"{"StringNotEquals": {"kms:CallerAccount": ["1", "2"]}}"#, &[(ACCT, F::One("3"))], true),
        (r#"{"StringNotEquals": {"kms:CallerAccount": ["1", "2"]}}"#, &[(ACCT, F::One("2"))], false),
        (r#"{"StringNotEquals": {"kms:CallerAccount": ["1", "2"]}}"#, NONE, true),
        (r#"{"StringEqualsIgnoreCase": {"kms:KeySpec": "RSA_2048"}}"#, &[("kms:KeySpec", F::One("rsa_2048"))], true),
        (r#"{"StringEqualsIgnoreCase": {"kms:KeySpec": "RSA_2048"}}"#, &[("kms:KeySpec", F::One("rsa_3072"))], false),
        (r#"{"StringEqualsIgnoreCase": {"kms:KeySpec": "RSA_2048"}}"#, NONE, false),
        (r#"{"StringEqualsIgnoreCase": {"kms:EncryptionContext:city": "ÅRHUS"}}"#, &[("kms:EncryptionContext:city", F::One("århus"))], true),
        (r#"{"StringEqualsIgnoreCase": {"kms:EncryptionContext:w": "ΟΔΟΣ"}}"#, &[("kms:EncryptionContext:w", F::One("οδοσ"))], true),
        (r#"{"StringNotEqualsIgnoreCase": {"kms:KeySpec": "RSA_2048"}}"#, &[("kms:KeySpec", F::One("Rsa_2048"))], false),
        (r#"{"StringNotEqualsIgnoreCase": {"kms:KeySpec": "RSA_2048"}}"#, &[("kms:KeySpec", F::One("RSA_4096"))], true),
        (r#"{"StringNotEqualsIgnoreCase": {"kms:KeySpec": "RSA_2048"}}"#, NONE, true),
        (r#"{"StringLike": {"kms:RequestAlias": "alias/app-*"}}"#, &[("kms:RequestAlias", F::One("alias/app-prod"))], true),
        (r#"{"StringLike": {"kms:RequestAlias": "alias/app-*"}}"#, &[("kms:RequestAlias", F::One("alias/App-prod"))], false),
        (r#"{"StringLike": {"kms:RequestAlias": "alias/app-?"}}"#, &[("kms:RequestAlias", F::One("alias/app-1"))], true),
        (r#"{"StringLike": {"kms:RequestAlias": "alias/app-?"}}"#, &[("kms:RequestAlias", F::One("alias/app-12"))], false),
        (r#"{"StringLike": {"kms:RequestAlias": ["alias/a*", "alias/b*"]}}"#, &[("kms:RequestAlias", F::One("alias/b1"))], true),
        (r#"{"StringLike": {"kms:RequestAlias": "alias/*"}}"#, NONE, false),
        (r#"{"StringNotLike": {"kms:RequestAlias": ["alias/prod-*", "alias/live-*"]}}"#, &[("kms:RequestAlias", F::One("alias/prod-1"))], false),
        (r#"{"StringNotLike": {"kms:RequestAlias": ["alias/prod-*", "alias/live-*"]}}"#, &[("kms:RequestAlias", F::One("alias/dev-1"))], true),
        (r#"{"StringNotLike": {"kms:RequestAlias": "alias/prod-*"}}"#, NONE, true),
    ]);
}

#[test]
#[rustfmt::skip]
fn numeric_operators() {
    const W: &str = "kms:ScheduleKeyDeletionPendingWindowInDays";
    run(&[
        (r#"{"NumericEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": 30}}"#, &[(W, F::One("30"))], true),
        (r#"{"NumericEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": "30"}}"#, &[(W, F::One("30.0"))], true),
        (r#"{"NumericEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": 30}}"#, &[(W, F::One("7"))], false),
        (r#"{"NumericEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": 30}}"#, &[(W, F::One("thirty"))], false),
        (r#"{"NumericEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": 30}}"#, NONE, false),
        (r#"{"NumericNotEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": [7, 30]}}"#, &[(W, F::One("14"))], true),
        (r#"{"NumericNotEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": [7, 30]}}"#, &[(W, F::One("30"))], false),
        (r#"{"NumericNotEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": 30}}"#, NONE, true),
        (r#"{"NumericLessThan": {"kms:ScheduleKeyDeletionPendingWindowInDays": 30}}"#, &[(W, F::One("7"))], true),
        (r#"{"NumericLessThan": {"kms:ScheduleKeyDeletionPendingWindowInDays": 30}}"#, &[(W, F::One("30"))], false),
        (r#"{"NumericLessThan": {"kms:ScheduleKeyDeletionPendingWindowInDays": 2}}"#, &[(W, F::One("1.5"))], true),
        (r#"{"NumericLessThan": {"kms:ScheduleKeyDeletionPendingWindowInDays": 30}}"#, NONE, false),
        (r#"{"NumericLessThanEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": 30}}"#, &[(W, F::One("30"))], true),
        (r#"{"NumericLessThanEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": 30}}"#, &[(W, F::One("31"))], false),
        (r#"{"NumericGreaterThan": {"kms:ScheduleKeyDeletionPendingWindowInDays": 7}}"#, &[(W, F::One("30"))], true),
        (r#"{"NumericGreaterThan": {"kms:ScheduleKeyDeletionPendingWindowInDays": 7}}"#, &[(W, F::One("7"))], false),
        (r#"{"NumericGreaterThanEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": 7}}"#, &[(W, F::One("7"))], true),
        (r#"{"NumericGreaterThanEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": 7}}"#, &[(W, F::One("6"))], false),
        (r#"{"NumericGreaterThanEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": [7, 100]}}"#, &[(W, F::One("8"))], true),
    ]);
}

#[test]
#[rustfmt::skip]
fn date_operators() {
    const T: &str = "aws:CurrentTime";
    run(&[
        (r#"{"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}"#, &[(T, F::One("2024-05-01T12:00:00Z"))], true),
        (r#"{"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}"#, &[(T, F::One("2031-05-01T12:00:00Z"))], false),
        (r#"{"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}"#, &[(T, F::One("tomorrow"))], false),
        (r#"{"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}"#, NONE, false),
        (r#"{"DateLessThanEquals": {"aws:CurrentTime": "2030-01-01"}}"#, &[(T, F::One("2030-01-01T00:00:00Z"))], true),
        (r#"{"DateGreaterThan": {"aws:CurrentTime": "2020-01-01"}}"#, &[(T, F::One("2024-05-01T12:00:00Z"))], true),
        (r#"{"DateGreaterThan": {"aws:CurrentTime": "2020-01-01"}}"#, &[(T, F::One("2019-12-31T23:59:59Z"))], false),
        (r#"{"DateGreaterThanEquals": {"aws:CurrentTime": "2020-01-01T01:00:00+01:00"}}"#, &[(T, F::One("2020-01-01T00:00:00Z"))], true),
        // ISO 8601 and epoch seconds compare with each other.
        (r#"{"DateEquals": {"aws:CurrentTime": "1577836800"}}"#, &[(T, F::One("2020-01-01T00:00:00Z"))], true),
        (r#"{"DateEquals": {"aws:EpochTime": "2020-01-01T00:00:00Z"}}"#, &[("aws:EpochTime", F::One("1577836800"))], true),
        (r#"{"DateEquals": {"aws:CurrentTime": 1577836800}}"#, &[(T, F::One("2020-01-01T00:00:01Z"))], false),
        (r#"{"DateNotEquals": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}"#, &[(T, F::One("2020-01-01T00:00:00Z"))], false),
        (r#"{"DateNotEquals": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}"#, &[(T, F::One("2021-01-01T00:00:00Z"))], true),
        (r#"{"DateNotEquals": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}"#, NONE, true),
        (r#"{"DateGreaterThan": {"kms:ValidTo": "2030-01-01T00:00:00Z"}}"#, &[("kms:ValidTo", F::One("1900000000"))], true),
    ]);
}

#[test]
#[rustfmt::skip]
fn bool_binary_ip_operators() {
    const G: &str = "kms:GrantIsForAWSResource";
    const IP: &str = "aws:SourceIp";
    run(&[
        (r#"{"Bool": {"kms:GrantIsForAWSResource": "true"}}"#, &[(G, F::One("true"))], true),
        (r#"{"Bool": {"kms:GrantIsForAWSResource": true}}"#, &[(G, F::One("TRUE"))], true),
        (r#"{"Bool": {"kms:GrantIsForAWSResource": "true"}}"#, &[(G, F::One("false"))], false),
        (r#"{"Bool": {"kms:GrantIsForAWSResource": "true"}}"#, &[(G, F::One("yes"))], false),
        (r#"{"Bool": {"kms:GrantIsForAWSResource": "true"}}"#, NONE, false),
        (r#"{"Bool": {"aws:SecureTransport": "false"}}"#, &[("aws:SecureTransport", F::One("false"))], true),
        (r#"{"BinaryEquals": {"kms:EncryptionContext:blob": "aGVsbG8="}}"#, &[("kms:EncryptionContext:blob", F::One("aGVsbG8="))], true),
        (r#"{"BinaryEquals": {"kms:EncryptionContext:blob": "aGVsbG8="}}"#, &[("kms:EncryptionContext:blob", F::One("aGVsbG8"))], true),
        (r#"{"BinaryEquals": {"kms:EncryptionContext:blob": "aGVsbG8="}}"#, &[("kms:EncryptionContext:blob", F::One("aGVsbA=="))], false),
        (r#"{"BinaryEquals": {"kms:EncryptionContext:blob": "aGVsbG8="}}"#, &[("kms:EncryptionContext:blob", F::One("hello"))], false),
        (r#"{"BinaryEquals": {"kms:EncryptionContext:blob": "aGVsbG8="}}"#, NONE, false),
        (r#"{"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}"#, &[(IP, F::One("203.0.113.7"))], true),
        (r#"{"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}"#, &[(IP, F::One("198.51.100.1"))], false),
        (r#"{"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}"#, &[(IP, F::One("not-an-ip"))], false),
        (r#"{"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}"#, NONE, false),
        (r#"{"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32"]}}"#, &[(IP, F::One("2001:db8:5::1"))], true),
        (r#"{"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}"#, &[(IP, F::One("2001:db9::1"))], false),
        (r#"{"IpAddress": {"aws:SourceIp": "192.0.2.10"}}"#, &[(IP, F::One("192.0.2.10"))], true),
        (r#"{"NotIpAddress": {"aws:SourceIp": ["203.0.113.0/24", "198.51.100.0/24"]}}"#, &[(IP, F::One("192.0.2.1"))], true),
        (r#"{"NotIpAddress": {"aws:SourceIp": ["203.0.113.0/24", "198.51.100.0/24"]}}"#, &[(IP, F::One("198.51.100.1"))], false),
        (r#"{"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}"#, NONE, true),
    ]);
}

#[test]
#[rustfmt::skip]
fn arn_operators() {
    const P: &str = "aws:PrincipalArn";
    const ADMIN: F = F::One("arn:aws:iam::111122223333:role/admin");
    run(&[
        (r#"{"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/admin"}}"#, &[(P, ADMIN)], true),
        (r#"{"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/Admin"}}"#, &[(P, ADMIN)], false),
        (r#"{"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::*:role/admin"}}"#, &[(P, ADMIN)], true),
        (r#"{"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/admin"}}"#, NONE, false),
        (r#"{"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/app-*"}}"#, &[(P, F::One("arn:aws:iam::111122223333:role/app-web"))], true),
        (r#"{"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/app-*"}}"#, &[(P, ADMIN)], false),
        (r#"{"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/*"}}"#, &[(P, F::One("role/admin"))], false),
        (r#"{"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::?11122223333:*"}}"#, &[(P, ADMIN)], true),
        (r#"{"ArnLike": {"aws:PrincipalArn": ["arn:aws:iam::1:role/x", "arn:aws:iam::*:role/adm*"]}}"#, &[(P, ADMIN)], true),
        (r#"{"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/admin"}}"#, &[(P, ADMIN)], false),
        (r#"{"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/admin"}}"#, &[(P, F::One("arn:aws:iam::111122223333:role/other"))], true),
        (r#"{"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:role/admin"}}"#, NONE, true),
        (r#"{"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/adm*"}}"#, &[(P, ADMIN)], false),
        (r#"{"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/adm*"}}"#, &[(P, F::One("arn:aws:iam::1:user/x"))], true),
        (r#"{"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/adm*"}}"#, NONE, true),
    ]);
}

#[test]
#[rustfmt::skip]
fn null_and_if_exists() {
    const B: &str = "kms:BypassPolicyLockoutSafetyCheck";
    const VIA: &str = "kms:ViaService";
    run(&[
        (r#"{"Null": {"kms:BypassPolicyLockoutSafetyCheck": "true"}}"#, NONE, true),
        (r#"{"Null": {"kms:BypassPolicyLockoutSafetyCheck": true}}"#, &[(B, F::One("false"))], false),
        (r#"{"Null": {"kms:BypassPolicyLockoutSafetyCheck": "false"}}"#, &[(B, F::One("false"))], true),
        (r#"{"Null": {"kms:BypassPolicyLockoutSafetyCheck": "false"}}"#, NONE, false),
        (r#"{"Null": {"kms:EncryptionContextKeys": "true"}}"#, &[("kms:EncryptionContextKeys", F::Many(&[]))], true),
        (r#"{"Null": {"kms:EncryptionContextKeys": "false"}}"#, &[("kms:EncryptionContextKeys", F::Many(&["a"]))], true),
        (r#"{"Null": {"kms:ViaService": "false", "kms:CallerAccount": "true"}}"#, &[(VIA, F::One("x"))], true),
        (r#"{"StringEqualsIfExists": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}}"#, NONE, true),
        (r#"{"StringEqualsIfExists": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}}"#, &[(VIA, F::One("ec2.us-east-1.amazonaws.com"))], true),
        (r#"{"StringEqualsIfExists": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}}"#, &[(VIA, F::One("rds.us-east-1.amazonaws.com"))], false),
        (r#"{"StringNotEqualsIfExists": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}}"#, NONE, true),
        (r#"{"StringNotEqualsIfExists": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}}"#, &[(VIA, F::One("ec2.us-east-1.amazonaws.com"))], false),
        (r#"{"NumericLessThanIfExists": {"kms:RotationPeriodInDays": 365}}"#, NONE, true),
        (r#"{"NumericLessThanIfExists": {"kms:RotationPeriodInDays": 365}}"#, &[("kms:RotationPeriodInDays", F::One("400"))], false),
        (r#"{"DateLessThanIfExists": {"kms:ValidTo": "2030-01-01"}}"#, NONE, true),
        (r#"{"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}"#, NONE, true),
        (r#"{"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}"#, &[("aws:MultiFactorAuthPresent", F::One("true"))], false),
        (r#"{"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}"#, NONE, true),
        (r#"{"ArnLikeIfExists": {"aws:PrincipalArn": "arn:aws:iam::*:role/x"}}"#, NONE, true),
        (r#"{"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": "a"}}"#, NONE, true),
        (r#"{"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": "a"}}"#, &[("aws:TagKeys", F::Many(&["b"]))], false),
    ]);
}

#[test]
#[rustfmt::skip]
fn set_operators() {
    const K: &str = "kms:EncryptionContextKeys";
    const T: &str = "aws:TagKeys";
    run(&[
        (r#"{"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["Department", "Project"]}}"#, &[(K, F::Many(&["Department"]))], true),
        (r#"{"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["Department", "Project"]}}"#, &[(K, F::Many(&["Project", "Department"]))], true),
        (r#"{"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["Department", "Project"]}}"#, &[(K, F::Many(&["Department", "Other"]))], false),
        (r#"{"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["Department", "Project"]}}"#, &[(K, F::Many(&["department"]))], false),
        (r#"{"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["Department", "Project"]}}"#, NONE, true),
        (r#"{"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["Department", "Project"]}}"#, &[(K, F::Many(&[]))], true),
        (r#"{"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["Department", "Project"]}}"#, &[(K, F::Many(&["Other", "Project"]))], true),
        (r#"{"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["Department", "Project"]}}"#, &[(K, F::Many(&["Other"]))], false),
        (r#"{"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["Department", "Project"]}}"#, NONE, false),
        (r#"{"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["Department", "Project"]}}"#, &[(K, F::Many(&[]))], false),
        // A single-valued fact is a set of one.
        (r#"{"ForAnyValue:StringEquals": {"kms:CallerAccount": "1"}}"#, &[("kms:CallerAccount", F::One("1"))], true),
        // Negated operators inside set operators (IAM's tables for aws:TagKeys).
        (r#"{"ForAllValues:StringNotEquals": {"aws:TagKeys": ["DataClass", "Owner"]}}"#, NONE, true),
        (r#"{"ForAllValues:StringNotEquals": {"aws:TagKeys": ["DataClass", "Owner"]}}"#, &[(T, F::Many(&["DataClass", "Owner"]))], false),
        (r#"{"ForAllValues:StringNotEquals": {"aws:TagKeys": ["DataClass", "Owner"]}}"#, &[(T, F::Many(&["DataClass", "Dept"]))], false),
        (r#"{"ForAllValues:StringNotEquals": {"aws:TagKeys": ["DataClass", "Owner"]}}"#, &[(T, F::Many(&["Dept", "SIC"]))], true),
        (r#"{"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["DataClass", "Owner"]}}"#, NONE, false),
        (r#"{"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["DataClass", "Owner"]}}"#, &[(T, F::Many(&["DataClass", "Owner"]))], false),
        (r#"{"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["DataClass", "Owner"]}}"#, &[(T, F::Many(&["Dept", "DataClass"]))], true),
        (r#"{"ForAllValues:StringLike": {"aws:TagKeys": "Created*"}}"#, &[(T, F::Many(&["CreatedBy", "CreatedAt"]))], true),
        (r#"{"ForAllValues:StringLike": {"aws:TagKeys": "Created*"}}"#, &[(T, F::Many(&["CreatedBy", "Owner"]))], false),
        (r#"{"ForAnyValue:StringLike": {"aws:TagKeys": ["Cost*", "Owner"]}}"#, &[(T, F::Many(&["a", "CostCenter"]))], true),
        (r#"{"ForAnyValue:StringNotLike": {"aws:TagKeys": "Created*"}}"#, &[(T, F::Many(&["CreatedBy", "Owner"]))], true),
        (r#"{"ForAllValues:StringNotLike": {"aws:TagKeys": "Created*"}}"#, &[(T, F::Many(&["CreatedBy", "Owner"]))], false),
        (r#"{"ForAllValues:StringEqualsIgnoreCase": {"kms:GrantOperations": ["decrypt", "encrypt"]}}"#, &[("kms:GrantOperations", F::Many(&["Decrypt", "Encrypt"]))], true),
        (r#"{"ForAnyValue:ArnLike": {"kms:ResourceAliases": "arn:aws:kms:*:*:alias/finance-*"}}"#, &[( "kms:ResourceAliases", F::Many(&["arn:aws:kms:us-east-1:111122223333:alias/finance-key"]), )], true),
        // A multivalued key without a set operator: any value may match; negated, none may.
        (r#"{"StringEquals": {"kms:EncryptionContextKeys": "Project"}}"#, &[(K, F::Many(&["Department", "Project"]))], true),
        (r#"{"StringEquals": {"kms:EncryptionContextKeys": "Project"}}"#, &[(K, F::Many(&["Department"]))], false),
        (r#"{"StringNotEquals": {"kms:EncryptionContextKeys": "Project"}}"#, &[(K, F::Many(&["Department", "Project"]))], false),
        (r#"{"StringNotEquals": {"kms:EncryptionContextKeys": "Project"}}"#, &[(K, F::Many(&["Department"]))], true),
        (r#"{"StringNotEquals": {"kms:EncryptionContextKeys": "Project"}}"#, &[(K, F::Many(&[]))], true),
    ]);
}

#[test]
fn combining_operators_keys_and_values() {
    const A: &str = "kms:CallerAccount";
    const VIA: &str = "kms:ViaService";
    const BOTH: &str =
        r#"{"StringEquals": {"kms:CallerAccount": "1", "kms:ViaService": ["ec2.x", "rds.x"]}}"#;
    const TWO_OPS: &str = r#"{"StringEquals": {"kms:CallerAccount": "1"}, "StringLike": {"kms:ViaService": "ec2.*"}}"#;
    run(&[
        (BOTH, &[(A, F::One("1")), (VIA, F::One("rds.x"))], true),
        (BOTH, &[(A, F::One("1")), (VIA, F::One("s3.x"))], false),
        (BOTH, &[(A, F::One("2")), (VIA, F::One("ec2.x"))], false),
        (BOTH, &[(A, F::One("1"))], false),
        (
            TWO_OPS,
            &[
                (A, F::One("1")),
                (VIA, F::One("ec2.us-east-1.amazonaws.com")),
            ],
            true,
        ),
        (
            TWO_OPS,
            &[
                (A, F::One("1")),
                (VIA, F::One("rds.us-east-1.amazonaws.com")),
            ],
            false,
        ),
        (
            TWO_OPS,
            &[
                (A, F::One("2")),
                (VIA, F::One("ec2.us-east-1.amazonaws.com")),
            ],
            false,
        ),
        // An empty Condition object is no condition.
        ("{}", NONE, true),
    ]);
}

#[test]
#[rustfmt::skip]
fn condition_key_names_are_case_insensitive_values_per_operator() {
    run(&[
        (r#"{"StringEquals": {"KMS:CALLERACCOUNT": "1"}}"#, &[("kms:calleraccount", F::One("1"))], true),
        (r#"{"StringEquals": {"kms:CallerAccount": "1"}}"#, &[("Kms:CallerACCOUNT", F::One("1"))], true),
        // The <context-key> part too (KMS guide: the whole condition key is not case sensitive).
        (r#"{"StringEquals": {"kms:EncryptionContext:Department": "IT"}}"#, &[("kms:encryptioncontext:DEPARTMENT", F::One("IT"))], true),
        (r#"{"StringEquals": {"kms:EncryptionContext:Department": "IT"}}"#, &[("kms:EncryptionContext:Department", F::One("it"))], false),
        (r#"{"StringEqualsIgnoreCase": {"kms:EncryptionContext:Department": "IT"}}"#, &[("kms:EncryptionContext:department", F::One("it"))], true),
        (r#"{"StringEquals": {"aws:ResourceTag/Project": "Alpha"}}"#, &[("aws:resourcetag/project", F::One("Alpha"))], true),
        // Operator names are read case-insensitively.
        (r#"{"stringequals": {"kms:CallerAccount": "1"}}"#, &[("kms:CallerAccount", F::One("1"))], true),
    ]);
}

#[test]
fn facts_set_again_replace_the_value() {
    let mut f = facts(&[("kms:CallerAccount", F::One("1"))]);
    f.set("KMS:CallerAccount", "2");
    let p = identity_policy(&allow_policy(
        r#"{"StringEquals": {"kms:CallerAccount": "2"}}"#,
    ));
    assert_eq!(
        eval_with(&p, ALICE, "kms:Encrypt", KEY, &f).allow,
        Allow::Principal
    );
    f.set_multi("kms:calleraccount", vec!["3".into(), "4".into()]);
    assert_eq!(
        eval_with(&p, ALICE, "kms:Encrypt", KEY, &f).allow,
        Allow::None
    );
}

#[test]
fn unknown_keys_never_allow_and_read_as_absent_in_a_deny() {
    // Allow: never applies, even when the request carries the key or the operator would be
    // true for an absent key.
    for condition in [
        r#"{"StringEquals": {"aws:SourceArn": "arn:aws:s3:::b"}}"#,
        r#"{"StringNotEquals": {"s3:prefix": "x"}}"#,
        r#"{"ForAllValues:StringEquals": {"iam:PassedToService": "x"}}"#,
        r#"{"StringEquals": {"kms:CallerAccount": "1", "aws:SourceAccount": "1"}}"#,
        r#"{"Null": {"kms:NoSuchKey": "true"}}"#,
    ] {
        let f = facts(&[
            ("aws:SourceArn", F::One("arn:aws:s3:::b")),
            ("kms:CallerAccount", F::One("1")),
            ("aws:SourceAccount", F::One("1")),
        ]);
        let p = identity_policy(&allow_policy(condition));
        assert_eq!(
            eval_with(&p, ALICE, "kms:Encrypt", KEY, &f).allow,
            Allow::None,
            "{condition}"
        );
    }
    // Deny: the key is absent whatever the facts say, so denies are never weakened.
    let f = facts(&[("aws:SourceArn", F::One("arn:aws:s3:::b"))]);
    for (condition, applies) in [
        (
            r#"{"StringNotEquals": {"aws:SourceArn": "arn:aws:s3:::b"}}"#,
            true,
        ),
        (
            r#"{"StringEquals": {"aws:SourceArn": "arn:aws:s3:::b"}}"#,
            false,
        ),
        (
            r#"{"ArnNotLike": {"aws:SourceArn": "arn:aws:s3:::*"}}"#,
            true,
        ),
        (r#"{"Null": {"aws:SourceArn": "true"}}"#, true),
        (
            r#"{"ForAllValues:StringEquals": {"aws:SourceArn": "x"}}"#,
            true,
        ),
    ] {
        let p = identity_policy(&deny_policy(condition));
        let got = eval_with(&p, ALICE, "kms:Encrypt", KEY, &f);
        assert_eq!(got.explicit_deny, applies, "{condition}");
    }
}

#[test]
fn known_condition_keys() {
    for key in [
        "aws:PrincipalArn",
        "AWS:PRINCIPALARN",
        "aws:SourceIp",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:PrincipalTag/team",
        "aws:ResourceTag/Project",
        "aws:RequestTag/x",
        "aws:TagKeys",
        "aws:CalledVia",
        "aws:SourceVpce",
        "kms:CallerAccount",
        "kms:ViaService",
        "kms:EncryptionContext:Department",
        "KMS:ENCRYPTIONCONTEXT:department",
        "kms:EncryptionContextKeys",
        "kms:GrantIsForAWSResource",
        "kms:KeyAgreementAlgorithm",
        "kms:RotationPeriodInDays",
        "kms:ScheduleKeyDeletionPendingWindowInDays",
        "kms:RecipientAttestation:ImageSha384",
        "kms:RecipientAttestation:PCR8",
        "kms:RecipientAttestation:NitroTPMPCR4",
        "kms:WrappingKeySpec",
    ] {
        assert!(is_known_condition_key(key), "{key}");
    }
    for key in [
        "",
        "aws:SourceArn",
        "aws:SourceAccount",
        "aws:PrincipalTag/",
        "kms:EncryptionContext:",
        "kms:EncryptionContext",
        "kms:Foo",
        "s3:prefix",
        "kms:CallerAccount ",
    ] {
        assert!(!is_known_condition_key(key), "{key}");
    }
}
