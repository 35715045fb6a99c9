//! The example key policies of the AWS KMS Developer Guide, evaluated as AWS describes them.

mod common;

use common::*;
use keyhold_policy::{Allow, Facts};

/// "Default key policy": the account gets full access and delegates to IAM.
const DEFAULT_KEY_POLICY: &str = r#"{
    "Version": "2012-10-17",
    "Id": "key-default-1",
    "Statement": [
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
            "Action": "kms:*",
            "Resource": "*"
        }
    ]
}"#;

#[test]
fn default_key_policy() {
    let p = key_policy(DEFAULT_KEY_POLICY);
    assert_eq!(
        eval(&p, ROOT, "kms:ScheduleKeyDeletion"),
        allow(Allow::Principal)
    );
    assert_eq!(eval(&p, ALICE, "kms:Encrypt"), allow(Allow::Account));
    assert_eq!(
        eval(&p, APP_SESSION, "kms:PutKeyPolicy"),
        allow(Allow::Account)
    );
    assert_eq!(
        eval(&p, "arn:aws:iam::444455556666:user/eve", "kms:Encrypt"),
        allow(Allow::None)
    );
    assert_eq!(
        eval(&p, "arn:aws:iam::444455556666:root", "kms:Encrypt"),
        allow(Allow::None)
    );
    assert_eq!(eval(&p, ALICE, "s3:GetObject"), allow(Allow::None));
}

/// The console's default policy with key administrators and key users.
const CONSOLE_POLICY: &str = r#"{
    "Id": "key-consolepolicy-3",
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
            "Action": "kms:*",
            "Resource": "*"
        },
        {
            "Sid": "Allow access for Key Administrators",
            "Effect": "Allow",
            "Principal": {"AWS": ["arn:aws:iam::111122223333:role/ExampleAdminRole"]},
            "Action": [
                "kms:Create*",
                "kms:Describe*",
                "kms:Enable*",
                "kms:List*",
                "kms:Put*",
                "kms:Update*",
                "kms:Revoke*",
                "kms:Disable*",
                "kms:Get*",
                "kms:Delete*",
                "kms:TagResource",
                "kms:UntagResource",
                "kms:ScheduleKeyDeletion",
                "kms:CancelKeyDeletion",
                "kms:RotateKeyOnDemand"
            ],
            "Resource": "*"
        },
        {
            "Sid": "Allow use of the key",
            "Effect": "Allow",
            "Principal": {"AWS": ["arn:aws:iam::111122223333:role/ExampleUserRole"]},
            "Action": [
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:DescribeKey"
            ],
            "Resource": "*"
        },
        {
            "Sid": "Allow attachment of persistent resources",
            "Effect": "Allow",
            "Principal": {"AWS": ["arn:aws:iam::111122223333:role/ExampleUserRole"]},
            "Action": [
                "kms:CreateGrant",
                "kms:ListGrants",
                "kms:RevokeGrant"
            ],
            "Resource": "*",
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}}
        }
    ]
}"#;

#[test]
fn console_default_policy_with_administrators_and_users() {
    const ADMIN: &str = "arn:aws:sts::111122223333:assumed-role/ExampleAdminRole/alice";
    const USER: &str = "arn:aws:sts::111122223333:assumed-role/ExampleUserRole/app";
    let p = key_policy(CONSOLE_POLICY);
    for action in [
        "kms:CreateAlias",
        "kms:DescribeKey",
        "kms:EnableKeyRotation",
        "kms:ListResourceTags",
        "kms:PutKeyPolicy",
        "kms:UpdateKeyDescription",
        "kms:RevokeGrant",
        "kms:DisableKey",
        "kms:GetKeyPolicy",
        "kms:DeleteAlias",
        "kms:TagResource",
        "kms:ScheduleKeyDeletion",
        "kms:CancelKeyDeletion",
        "kms:RotateKeyOnDemand",
    ] {
        assert_eq!(
            eval(&p, ADMIN, action),
            allow(Allow::Principal),
            "admin {action}"
        );
    }
    // Administrators cannot use the key through the key policy alone: only the
    // account-level statement (IAM delegation) covers that.
    for action in [
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "kms:Sign",
    ] {
        assert_eq!(
            eval(&p, ADMIN, action),
            allow(Allow::Account),
            "admin {action}"
        );
    }
    for action in [
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:ReEncryptFrom",
        "kms:ReEncryptTo",
        "kms:GenerateDataKey",
        "kms:GenerateDataKeyWithoutPlaintext",
        "kms:GenerateDataKeyPair",
        "kms:DescribeKey",
    ] {
        assert_eq!(
            eval(&p, USER, action),
            allow(Allow::Principal),
            "user {action}"
        );
    }
    for action in [
        "kms:ScheduleKeyDeletion",
        "kms:PutKeyPolicy",
        "kms:DisableKey",
    ] {
        assert_eq!(
            eval(&p, USER, action),
            allow(Allow::Account),
            "user {action}"
        );
    }
    // Grants only for AWS resources (an integrated service calling on the user's behalf).
    let for_aws = facts(&[("kms:GrantIsForAWSResource", F::One("true"))]);
    let not_for_aws = facts(&[("kms:GrantIsForAWSResource", F::One("false"))]);
    for action in ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"] {
        assert_eq!(
            eval_with(&p, USER, action, KEY, &for_aws),
            allow(Allow::Principal),
            "{action}"
        );
        assert_eq!(
            eval_with(&p, USER, action, KEY, &not_for_aws),
            allow(Allow::Account),
            "{action}"
        );
        assert_eq!(
            eval(&p, USER, action),
            allow(Allow::Account),
            "{action} without the key"
        );
    }
    // Everyone else in the account: delegation only; other accounts: nothing.
    assert_eq!(eval(&p, ROOT, "kms:Decrypt"), allow(Allow::Principal));
    assert_eq!(eval(&p, BOB, "kms:Decrypt"), allow(Allow::Account));
    let foreign = "arn:aws:sts::444455556666:assumed-role/ExampleUserRole/app";
    assert_eq!(eval(&p, foreign, "kms:Decrypt"), allow(Allow::None));
}

#[test]
fn via_service_conditions() {
    // kms:ViaService page: the key may be used only through EC2 or RDS in us-west-2.
    let p = key_policy(
        r#"{"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:user/ExampleUser"},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                       "kms:CreateGrant", "kms:ListGrants", "kms:DescribeKey"],
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:ViaService": [
                "ec2.us-west-2.amazonaws.com", "rds.us-west-2.amazonaws.com"]}}
        }]}"#,
    );
    const USER: &str = "arn:aws:iam::111122223333:user/ExampleUser";
    let via = |s: &'static str| facts(&[("kms:ViaService", F::One(s))]);
    let ec2 = via("ec2.us-west-2.amazonaws.com");
    assert_eq!(
        eval_with(&p, USER, "kms:Decrypt", KEY, &ec2),
        allow(Allow::Principal)
    );
    let rds = via("rds.us-west-2.amazonaws.com");
    assert_eq!(
        eval_with(&p, USER, "kms:GenerateDataKey", KEY, &rds),
        allow(Allow::Principal)
    );
    let s3 = via("s3.us-west-2.amazonaws.com");
    assert_eq!(
        eval_with(&p, USER, "kms:Decrypt", KEY, &s3),
        allow(Allow::None)
    );
    assert_eq!(eval(&p, USER, "kms:Decrypt"), allow(Allow::None));

    // kms:ViaService page: deny direct use; only Lambda may call Decrypt for the user.
    let p = key_policy(
        r#"{"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Deny",
             "Principal": {"AWS": "arn:aws:iam::111122223333:user/ExampleUser"},
             "Action": ["kms:Decrypt"],
             "Resource": "*",
             "Condition": {"StringNotEquals": {"kms:ViaService": ["lambda.us-east-2.amazonaws.com"]}}}
        ]}"#,
    );
    assert_eq!(eval(&p, USER, "kms:Decrypt"), deny(Allow::Account));
    let lambda = via("lambda.us-east-2.amazonaws.com");
    assert_eq!(
        eval_with(&p, USER, "kms:Decrypt", KEY, &lambda),
        allow(Allow::Account)
    );
    assert_eq!(eval(&p, USER, "kms:Encrypt"), allow(Allow::Account));

    // The AWS managed key for Amazon EBS: every principal of the account, through EC2 only.
    let p = key_policy(
        r#"{"Version": "2012-10-17", "Id": "auto-ebs-2", "Statement": [
            {"Sid": "Allow access through EBS for all principals in the account that are authorized to use EBS",
             "Effect": "Allow",
             "Principal": {"AWS": "*"},
             "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey"],
             "Resource": "*",
             "Condition": {"StringEquals": {"kms:CallerAccount": "111122223333", "kms:ViaService": "ec2.us-west-2.amazonaws.com"}}},
            {"Sid": "Allow direct access to key metadata to the account",
             "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
             "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
             "Resource": "*"}
        ]}"#,
    );
    let ebs = |account: &'static str| {
        facts(&[
            ("kms:CallerAccount", F::One(account)),
            ("kms:ViaService", F::One("ec2.us-west-2.amazonaws.com")),
        ])
    };
    assert_eq!(
        eval_with(&p, ALICE, "kms:Decrypt", KEY, &ebs("111122223333")),
        allow(Allow::Principal)
    );
    let foreign = "arn:aws:iam::444455556666:user/x";
    assert_eq!(
        eval_with(&p, foreign, "kms:Decrypt", KEY, &ebs("444455556666")),
        allow(Allow::None)
    );
    let direct = facts(&[("kms:CallerAccount", F::One("111122223333"))]);
    assert_eq!(
        eval_with(&p, ALICE, "kms:Decrypt", KEY, &direct),
        allow(Allow::None)
    );
    assert_eq!(
        eval_with(&p, ALICE, "kms:DescribeKey", KEY, &direct),
        allow(Allow::Account)
    );
}

#[test]
fn encryption_context_conditions() {
    const APP: &str = "arn:aws:sts::111122223333:assumed-role/RoleForExampleApp/s";
    // kms:EncryptionContext:context-key: both pairs required.
    let p = key_policy(
        r#"{"Statement": {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:role/RoleForExampleApp"},
            "Action": "kms:GenerateDataKey",
            "Resource": "*",
            "Condition": {"StringEquals": {
                "kms:EncryptionContext:AppName": "ExampleApp",
                "kms:EncryptionContext:FilePath": "/var/opt/secrets/"}}}}"#,
    );
    let both = facts(&[
        ("kms:EncryptionContext:AppName", F::One("ExampleApp")),
        (
            "kms:EncryptionContext:FilePath",
            F::One("/var/opt/secrets/"),
        ),
        (
            "kms:EncryptionContextKeys",
            F::Many(&["AppName", "FilePath"]),
        ),
    ]);
    assert_eq!(
        eval_with(&p, APP, "kms:GenerateDataKey", KEY, &both),
        allow(Allow::Principal)
    );
    let one = facts(&[("kms:EncryptionContext:AppName", F::One("ExampleApp"))]);
    assert_eq!(
        eval_with(&p, APP, "kms:GenerateDataKey", KEY, &one),
        allow(Allow::None)
    );
    // The key part is case-insensitive; the value's case follows the operator.
    let cased = facts(&[
        ("kms:EncryptionContext:appname", F::One("ExampleApp")),
        (
            "kms:EncryptionContext:FILEPATH",
            F::One("/var/opt/secrets/"),
        ),
    ]);
    assert_eq!(
        eval_with(&p, APP, "kms:GenerateDataKey", KEY, &cased),
        allow(Allow::Principal)
    );
    let wrong_value_case = facts(&[
        ("kms:EncryptionContext:AppName", F::One("exampleapp")),
        (
            "kms:EncryptionContext:FilePath",
            F::One("/var/opt/secrets/"),
        ),
    ]);
    assert_eq!(
        eval_with(&p, APP, "kms:GenerateDataKey", KEY, &wrong_value_case),
        allow(Allow::None)
    );

    // kms:EncryptionContextKeys: an encryption context with Department, and only the
    // listed keys; a Null check makes an empty context fail.
    let p = key_policy(
        r#"{"Statement": [
            {"Sid": "Require Department",
             "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::111122223333:role/RoleForExampleApp"},
             "Action": ["kms:Encrypt", "kms:GenerateDataKey*"],
             "Resource": "*",
             "Condition": {"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "Department"}}},
            {"Sid": "Only these keys",
             "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::111122223333:role/RoleForExampleApp"},
             "Action": "kms:Decrypt",
             "Resource": "*",
             "Condition": {
                "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["Department", "Project"]},
                "Null": {"kms:EncryptionContextKeys": "false"}}}
        ]}"#,
    );
    let keys = |ks: &'static [&'static str]| facts(&[("kms:EncryptionContextKeys", F::Many(ks))]);
    assert_eq!(
        eval_with(&p, APP, "kms:Encrypt", KEY, &keys(&["Department", "x"])),
        allow(Allow::Principal)
    );
    assert_eq!(
        eval_with(&p, APP, "kms:Encrypt", KEY, &keys(&["Project"])),
        allow(Allow::None)
    );
    assert_eq!(
        eval_with(&p, APP, "kms:Encrypt", KEY, &Facts::new()),
        allow(Allow::None)
    );
    assert_eq!(
        eval_with(&p, APP, "kms:Decrypt", KEY, &keys(&["Department"])),
        allow(Allow::Principal)
    );
    assert_eq!(
        eval_with(
            &p,
            APP,
            "kms:Decrypt",
            KEY,
            &keys(&["Project", "Department"])
        ),
        allow(Allow::Principal)
    );
    assert_eq!(
        eval_with(
            &p,
            APP,
            "kms:Decrypt",
            KEY,
            &keys(&["Department", "Secret"])
        ),
        allow(Allow::None)
    );
    assert_eq!(
        eval_with(&p, APP, "kms:Decrypt", KEY, &keys(&[])),
        allow(Allow::None)
    );
    assert_eq!(
        eval_with(&p, APP, "kms:Decrypt", KEY, &Facts::new()),
        allow(Allow::None)
    );
}

#[test]
fn cross_account_access() {
    // In account 111122223333's key policy: account 444455556666 (delegated to its IAM
    // policies) and one of its roles by name.
    let p = key_policy(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "Allow an external account to use this KMS key", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
             "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
             "Resource": "*"},
            {"Sid": "Allow an external role to use this KMS key", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::444455556666:role/service/ExampleRole"},
             "Action": ["kms:Encrypt", "kms:Decrypt"],
             "Resource": "*"}
        ]}"#,
    );
    let external_user = "arn:aws:iam::444455556666:user/ExampleUser";
    let external_role = "arn:aws:sts::444455556666:assumed-role/ExampleRole/job-7";
    let external_root = "arn:aws:iam::444455556666:root";
    assert_eq!(
        eval(&p, external_user, "kms:Decrypt"),
        allow(Allow::Account)
    );
    assert_eq!(
        eval(&p, external_user, "kms:DescribeKey"),
        allow(Allow::Account)
    );
    assert_eq!(
        eval(&p, external_user, "kms:ScheduleKeyDeletion"),
        allow(Allow::None)
    );
    assert_eq!(
        eval(&p, external_role, "kms:Decrypt"),
        allow(Allow::Principal)
    );
    assert_eq!(
        eval(&p, external_role, "kms:GenerateDataKey"),
        allow(Allow::Account)
    );
    assert_eq!(
        eval(&p, external_root, "kms:Decrypt"),
        allow(Allow::Principal)
    );
    assert_eq!(
        eval(&p, ALICE, "kms:ScheduleKeyDeletion"),
        allow(Allow::Account)
    );
    assert_eq!(
        eval(&p, "arn:aws:iam::999988887777:user/x", "kms:Decrypt"),
        allow(Allow::None)
    );
    let same_name_elsewhere = "arn:aws:sts::999988887777:assumed-role/ExampleRole/job-7";
    assert_eq!(
        eval(&p, same_name_elsewhere, "kms:Decrypt"),
        allow(Allow::None)
    );
}

#[test]
fn bypass_policy_lockout_safety_check() {
    // IAM policy denying CreateKey with the bypass flag set (JSON boolean value).
    let p = identity_policy(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "kms:CreateKey", "Resource": "*",
             "Condition": {"Bool": {"kms:BypassPolicyLockoutSafetyCheck": true}}}]}"#,
    );
    let set = facts(&[("kms:BypassPolicyLockoutSafetyCheck", F::One("true"))]);
    assert_eq!(
        eval_with(&p, ALICE, "kms:CreateKey", "*", &set),
        deny(Allow::Principal)
    );
    assert_eq!(
        eval_with(&p, ALICE, "kms:CreateKey", "*", &Facts::new()),
        allow(Allow::Principal)
    );
    // Key policy allowing PutKeyPolicy only without the parameter.
    let p = key_policy(
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:user/alice"},
            "Action": "kms:PutKeyPolicy", "Resource": "*",
            "Condition": {"Null": {"kms:BypassPolicyLockoutSafetyCheck": true}}}}"#,
    );
    assert_eq!(eval(&p, ALICE, "kms:PutKeyPolicy"), allow(Allow::Principal));
    assert_eq!(
        eval_with(&p, ALICE, "kms:PutKeyPolicy", KEY, &set),
        allow(Allow::None)
    );
}
