//! Malformed policies are `PolicyError`s whose message names the element at fault.

use keyhold_policy::{Policy, PolicyKind};

fn key_stmt(body: &str) -> String {
    format!(r#"{{"Version": "2012-10-17", "Statement": [{{"Sid": "S1", {body}}}]}}"#)
}

fn err(json: &str, kind: PolicyKind) -> String {
    match Policy::parse(json, kind) {
        Ok(p) => panic!("parsed, expected an error: {json}\n{p:?}"),
        Err(e) => e.0,
    }
}

#[test]
fn document_errors() {
    let rows: &[(&str, &str)] = &[
        ("", "not valid JSON"),
        ("{", "not valid JSON"),
        ("[]", "must be a JSON object"),
        (r#""x""#, "must be a JSON object"),
        ("{}", "no Statement"),
        (r#"{"Version": "2012-10-17"}"#, "no Statement"),
        (r#"{"Statement": []}"#, "Statement must be"),
        (r#"{"Statement": "x"}"#, "Statement must be"),
        (r#"{"Statement": [1]}"#, "Statement 1"),
        (r#"{"Version": "2012-10-18", "Statement": []}"#, "Version"),
        (r#"{"Version": 2012, "Statement": []}"#, "Version"),
        (r#"{"Id": 5, "Statement": {}}"#, "Id"),
        (r#"{"Statements": []}"#, "\"Statements\""),
    ];
    for (json, needle) in rows {
        let e = err(json, PolicyKind::Key);
        assert!(
            e.contains(needle),
            "{json}: {e:?} should mention {needle:?}"
        );
    }
}

#[test]
fn statement_errors() {
    let p = r#""Principal": {"AWS": "arn:aws:iam::111122223333:root"}"#;
    let rows: Vec<(String, &str)> = vec![
        (
            key_stmt(&format!(r#"{p}, "Action": "kms:*""#)),
            "has no Effect",
        ),
        (
            key_stmt(&format!(r#""Effect": "allow", {p}, "Action": "kms:*""#)),
            "Effect must be",
        ),
        (
            key_stmt(&format!(r#""Effect": "Permit", {p}, "Action": "kms:*""#)),
            "\"Permit\"",
        ),
        (
            key_stmt(&format!(r#""Effect": true, {p}, "Action": "kms:*""#)),
            "Effect must be",
        ),
        (
            key_stmt(r#""Effect": "Allow", "Action": "kms:*""#),
            "needs a Principal or NotPrincipal",
        ),
        (
            key_stmt(&format!(
                r#""Effect": "Allow", {p}, "NotPrincipal": "*", "Action": "kms:*""#
            )),
            "both Principal and NotPrincipal",
        ),
        (
            key_stmt(&format!(r#""Effect": "Allow", {p}"#)),
            "needs Action or NotAction",
        ),
        (
            key_stmt(&format!(
                r#""Effect": "Allow", {p}, "Action": "kms:*", "NotAction": "kms:Encrypt""#
            )),
            "both Action and NotAction",
        ),
        (
            key_stmt(&format!(r#""Effect": "Allow", {p}, "Action": """#)),
            "Action \"\"",
        ),
        (
            key_stmt(&format!(r#""Effect": "Allow", {p}, "Action": "Encrypt""#)),
            "\"service:action\"",
        ),
        (
            key_stmt(&format!(r#""Effect": "Allow", {p}, "Action": "kms:""#)),
            "\"service:action\"",
        ),
        (
            key_stmt(&format!(r#""Effect": "Allow", {p}, "Action": []"#)),
            "Action must be",
        ),
        (
            key_stmt(&format!(
                r#""Effect": "Allow", {p}, "Action": ["kms:Encrypt", 5]"#
            )),
            "Action must be",
        ),
        (
            key_stmt(&format!(r#""Effect": "Allow", {p}, "NotAction": {{}}"#)),
            "NotAction must be",
        ),
        (
            key_stmt(&format!(
                r#""Effect": "Allow", {p}, "Action": "kms:*", "Resource": """#
            )),
            "Resource",
        ),
        (
            key_stmt(&format!(
                r#""Effect": "Allow", {p}, "Action": "kms:*", "Resource": []"#
            )),
            "Resource must be",
        ),
        (
            key_stmt(&format!(
                r#""Effect": "Allow", {p}, "Action": "kms:*", "Resource": "*", "NotResource": "*""#
            )),
            "both Resource and NotResource",
        ),
        (
            key_stmt(&format!(r#""Effect": "Allow", {p}, "Actions": "kms:*""#)),
            "unknown element \"Actions\"",
        ),
        (
            key_stmt(&format!(
                r#""Effect": "Allow", {p}, "Action": "kms:*", "Condition": []"#
            )),
            "Condition must be an object",
        ),
        (
            r#"{"Statement": {"Sid": 1, "Effect": "Allow", "Principal": "*", "Action": "*"}}"#
                .into(),
            "Sid must be a string",
        ),
        // Principals.
        (
            key_stmt(r#""Effect": "Allow", "Principal": "someone", "Action": "kms:*""#),
            "Principal must be",
        ),
        (
            key_stmt(r#""Effect": "Allow", "Principal": {}, "Action": "kms:*""#),
            "Principal must be",
        ),
        (
            key_stmt(r#""Effect": "Allow", "Principal": ["*"], "Action": "kms:*""#),
            "Principal must be",
        ),
        (
            key_stmt(r#""Effect": "Allow", "Principal": {"Users": "x"}, "Action": "kms:*""#),
            "unknown principal type \"Users\"",
        ),
        (
            key_stmt(r#""Effect": "Allow", "Principal": {"AWS": []}, "Action": "kms:*""#),
            "Principal.AWS must be",
        ),
        (
            key_stmt(r#""Effect": "Allow", "Principal": {"AWS": ""}, "Action": "kms:*""#),
            "empty",
        ),
        (
            key_stmt(r#""Effect": "Allow", "Principal": {"AWS": 111122223333}, "Action": "kms:*""#),
            "Principal.AWS must be",
        ),
        (
            key_stmt(
                r#""Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/*"}, "Action": "kms:*""#,
            ),
            "wildcard",
        ),
        (
            key_stmt(
                r#""Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::*:root"}, "Action": "kms:*""#,
            ),
            "wildcard",
        ),
        (
            key_stmt(
                r#""Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::12:root"}, "Action": "kms:*""#,
            ),
            "account id",
        ),
        (
            key_stmt(
                r#""Effect": "Allow", "Principal": {"AWS": "arn:aws:iam"}, "Action": "kms:*""#,
            ),
            "not a valid ARN",
        ),
        (
            key_stmt(r#""Effect": "Deny", "NotPrincipal": {"Service": [""]}, "Action": "kms:*""#),
            "empty principal",
        ),
    ];
    for (json, needle) in &rows {
        let e = err(json, PolicyKind::Key);
        assert!(
            e.contains(needle),
            "{json}: {e:?} should mention {needle:?}"
        );
        assert!(
            e.starts_with("Statement") || e.contains("Statement 1"),
            "{e:?} should name the statement"
        );
    }
}

#[test]
fn identity_policy_errors() {
    let rows: &[(&str, &str)] = &[
        (
            r#"{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}}"#,
            "Principal is not allowed in an identity-based policy",
        ),
        (
            r#"{"Statement": {"Effect": "Deny", "NotPrincipal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}}"#,
            "NotPrincipal is not allowed",
        ),
        (
            r#"{"Statement": {"Effect": "Allow", "Action": "kms:*"}}"#,
            "needs Resource or NotResource",
        ),
    ];
    for (json, needle) in rows {
        let e = err(json, PolicyKind::Identity);
        assert!(
            e.contains(needle),
            "{json}: {e:?} should mention {needle:?}"
        );
    }
}

#[test]
fn condition_errors() {
    let rows: &[(&str, &str)] = &[
        (
            r#"{"StringEqualz": {"kms:CallerAccount": "1"}}"#,
            "\"StringEqualz\" is not a valid condition operator",
        ),
        (
            r#"{"ForSomeValues:StringEquals": {"aws:TagKeys": "a"}}"#,
            "not a valid condition operator",
        ),
        (
            r#"{"NullIfExists": {"kms:CallerAccount": "true"}}"#,
            "not a valid condition operator",
        ),
        (
            r#"{"StringEquals": {}}"#,
            "must map condition keys to values",
        ),
        (
            r#"{"StringEquals": "kms:CallerAccount"}"#,
            "must map condition keys to values",
        ),
        (r#"{"StringEquals": {"": "1"}}"#, "empty condition key"),
        (
            r#"{"StringEquals": {"kms:CallerAccount": null}}"#,
            "key \"kms:CallerAccount\"",
        ),
        (
            r#"{"StringEquals": {"kms:CallerAccount": {"a": 1}}}"#,
            "must be a string, number or boolean",
        ),
        (
            r#"{"StringEquals": {"kms:CallerAccount": []}}"#,
            "empty array",
        ),
        (
            r#"{"StringEquals": {"kms:CallerAccount": [["1"]]}}"#,
            "must be a string, number or boolean",
        ),
        (
            r#"{"NumericLessThan": {"kms:RotationPeriodInDays": "ninety"}}"#,
            "\"ninety\" is not a number",
        ),
        (
            r#"{"DateLessThan": {"aws:CurrentTime": "soon"}}"#,
            "\"soon\" is not a date",
        ),
        (
            r#"{"DateLessThan": {"aws:CurrentTime": "2024-02-30"}}"#,
            "is not a date",
        ),
        (
            r#"{"IpAddress": {"aws:SourceIp": "300.1.1.1/8"}}"#,
            "not an IP address or CIDR range",
        ),
        (
            r#"{"NotIpAddress": {"aws:SourceIp": "10.0.0.0/33"}}"#,
            "not an IP address or CIDR range",
        ),
        (
            r#"{"BinaryEquals": {"kms:EncryptionContext:b": "!!"}}"#,
            "not base64",
        ),
        (
            r#"{"Bool": {"aws:SecureTransport": "yes"}}"#,
            "not true or false",
        ),
        (
            r#"{"Null": {"kms:CallerAccount": "maybe"}}"#,
            "not true or false",
        ),
    ];
    for (condition, needle) in rows {
        let json = format!(
            r#"{{"Statement": {{"Sid": "C", "Effect": "Allow", "Principal": "*", "Action": "kms:*", "Condition": {condition}}}}}"#
        );
        let e = err(&json, PolicyKind::Key);
        assert!(
            e.contains(needle),
            "{condition}: {e:?} should mention {needle:?}"
        );
        assert!(e.starts_with("Statement 1 (\"C\")"), "{e:?}");
    }
}

#[test]
fn odd_but_valid_input_does_not_panic() {
    // Deeply nested, huge or strange values: errors or policies, never panics.
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let _ = Policy::parse(&deep, PolicyKind::Key);
    let long_action = format!(
        r#"{{"Statement": {{"Effect": "Allow", "Principal": "*", "Action": "kms:{}*?*"}}}}"#,
        "*?".repeat(2000)
    );
    assert!(Policy::parse(&long_action, PolicyKind::Key).is_ok());
    for json in [
        r#"{"Statement": {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:role/"}, "Action": "kms:*"}}"#,
        r#"{"Statement": {"Effect": "Allow", "Principal": {"AWS": "arn:::::"}, "Action": "kms:*"}}"#,
        r#"{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "é:ü", "Condition": {"StringLike": {"kms:EncryptionContext:ß": "?*é"}}}}"#,
        r#"{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Condition": {"NumericEquals": {"kms:KeySpec": 1e308}}}}"#,
        r#"{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Condition": {"DateEquals": {"aws:CurrentTime": "-99999999999999999"}}}}"#,
    ] {
        assert!(Policy::parse(json, PolicyKind::Key).is_ok(), "{json}");
    }
}
