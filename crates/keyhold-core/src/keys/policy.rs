//! Key policies as documents: `PutKeyPolicy`, and the checks CreateKey and PutKeyPolicy make
//! before a policy is stored — its size, its JSON and grammar, and AWS's *policy lockout
//! safety check*. Evaluating policies on each request is a separate concern (not here); this
//! module stores exactly the text that was put.

use keyhold_kms_model::shapes::PutKeyPolicyRequest;
use keyhold_kms_model::Exception;
use serde_json::Value;

use super::manage::{require_customer_managed, require_default_policy_name};
use super::states::KeyOperationFamily;
use super::Keys;
use crate::authz::{Access, KeyAction};
use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};

/// AWS's key policy size quota, in bytes.
pub const MAX_POLICY_BYTES: usize = 32_768;

/// AWS's message when a policy would lock the caller out of the key.
pub const LOCKOUT_MESSAGE: &str =
    "The new key policy will not allow you to update the key policy in the future.";

fn malformed(message: impl Into<String>) -> KmsError {
    KmsError::new(Exception::MalformedPolicyDocument, message.into())
}

/// Checks `policy` as KMS does before storing it: within the size quota, a JSON object with a
/// known `Version`, and a `Statement` (one or a list) whose every entry has an `Effect` of
/// Allow or Deny, a principal and an action; principals name `*`, an account or an ARN.
/// Unless `bypass_lockout` is set, the policy must also let the caller (or the caller's
/// account, which can then delegate by IAM) call `kms:PutKeyPolicy` again.
pub fn check_policy(ctx: &RequestContext, policy: &str, bypass_lockout: bool) -> KmsResult<()> {
    if policy.len() > MAX_POLICY_BYTES {
        return Err(malformed(format!(
            "The key policy is {} bytes; the key policy size quota is {MAX_POLICY_BYTES} bytes.",
            policy.len()
        )));
    }
    let doc: Value = serde_json::from_str(policy)
        .map_err(|e| malformed(format!("The key policy is not valid JSON: {e}.")))?;
    let Some(doc) = doc.as_object() else {
        return Err(malformed("The key policy must be a JSON object."));
    };
    if let Some(v) = doc.get("Version") {
        if !matches!(v.as_str(), Some("2012-10-17" | "2008-10-17")) {
            return Err(malformed(
                "The policy Version must be 2012-10-17 or 2008-10-17.",
            ));
        }
    }
    let statements: Vec<&Value> = match doc.get("Statement") {
        Some(Value::Array(list)) if !list.is_empty() => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return Err(malformed("Policy is missing required element - Statement")),
    };
    for st in &statements {
        check_statement(st)?;
    }
    // The evaluator's parse is the full grammar (condition operators and their values): a
    // policy it cannot parse would allow nothing, so it is refused here, with its reason.
    let parsed = keyhold_policy::Policy::parse(policy, keyhold_policy::PolicyKind::Key)
        .map_err(|e| malformed(e.to_string()))?;
    let resource = crate::arn::key_arn(&ctx.region, &ctx.account_id, "*");
    if !bypass_lockout && !crate::authz::could_put_key_policy(ctx, &parsed, &resource) {
        return Err(malformed(LOCKOUT_MESSAGE));
    }
    Ok(())
}

fn check_statement(st: &Value) -> KmsResult<()> {
    let Some(st) = st.as_object() else {
        return Err(malformed("Each policy statement must be a JSON object."));
    };
    match st.get("Effect").and_then(Value::as_str) {
        Some("Allow" | "Deny") => {}
        Some(other) => {
            return Err(malformed(format!(
                "Invalid effect: {other}. The Effect of a statement must be Allow or Deny."
            )))
        }
        None => {
            return Err(malformed(
                "Policy statement is missing required element - Effect",
            ))
        }
    }
    let principal = st.get("Principal").or_else(|| st.get("NotPrincipal"));
    match principal {
        Some(p) if valid_principal(p) => {}
        Some(_) => {
            return Err(malformed(
                "Policy contains a statement with one or more invalid principals.",
            ))
        }
        None => {
            return Err(malformed(
                "Policy statement is missing required element - Principal",
            ))
        }
    }
    if !st.contains_key("Action") && !st.contains_key("NotAction") {
        return Err(malformed(
            "Policy statement is missing required element - Action",
        ));
    }
    Ok(())
}

/// `*`, or an object of principal kinds, each a string or a non-empty list of strings; AWS
/// principals must be `*`, a 12-digit account id or an ARN.
fn valid_principal(p: &Value) -> bool {
    if p.as_str() == Some("*") {
        return true;
    }
    let Some(kinds) = p.as_object() else {
        return false;
    };
    !kinds.is_empty()
        && kinds.iter().all(|(kind, v)| {
            let values = strings(v);
            !values.is_empty()
                && match kind.as_str() {
                    "AWS" => values.iter().all(|s| valid_aws_principal(s)),
                    "Service" | "Federated" | "CanonicalUser" => {
                        values.iter().all(|s| !s.is_empty())
                    }
                    _ => false,
                }
        })
}

fn valid_aws_principal(s: &str) -> bool {
    s == "*"
        || (s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()))
        || (s.starts_with("arn:aws") && s.split(':').count() >= 6)
}

/// A string or a list of strings as a list (anything else as none).
fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

impl Keys {
    /// `PutKeyPolicy`: checks the policy and stores exactly its text.
    pub async fn put_key_policy(
        &self,
        ctx: &RequestContext,
        req: PutKeyPolicyRequest,
    ) -> KmsResult<()> {
        require_default_policy_name(req.policy_name.as_deref())?;
        let bypass = req.bypass_policy_lockout_safety_check == Some(true);
        check_policy(ctx, &req.policy, bypass)?;
        self.change_key(
            ctx,
            &req.key_id,
            &Access::new(KeyAction::PutKeyPolicy).with_fact(
                "kms:BypassPolicyLockoutSafetyCheck",
                if bypass { "true" } else { "false" },
            ),
            KeyOperationFamily::ManagePolicy,
            |key, doc| {
                require_customer_managed(key)?;
                doc.policy.clone_from(&req.policy);
                Ok(())
            },
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RequestContext {
        RequestContext::new("111122223333", "us-east-1", "req-1")
    }

    #[test]
    fn a_policy_the_evaluator_cannot_read_is_malformed() {
        let bad_operator = r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringFancy":{"kms:CallerAccount":"1"}}}}"#;
        let e = check_policy(&ctx(), bad_operator, true).unwrap_err();
        assert!(e.is(Exception::MalformedPolicyDocument), "{e}");
        // A user of the account, named only through the account, is not locked out if IAM
        // could allow it; a user the policy denies is.
        let mut user = ctx();
        user.principal_arn = "arn:aws:iam::111122223333:user/alice".into();
        let deny_alice = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:*","Resource":"*"},{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:PutKeyPolicy","Resource":"*"}]}"#;
        let e = check_policy(&user, deny_alice, false).unwrap_err();
        assert_eq!(e.to_string(), LOCKOUT_MESSAGE);
    }

    #[test]
    fn the_default_policy_passes_every_check() {
        let p = super::super::default_key_policy("111122223333");
        check_policy(&ctx(), &p, false).unwrap();
    }

    #[test]
    fn malformed_policies_are_refused() {
        for bad in [
            "not json",
            "[]",
            r#"{"Version":"2012-10-17"}"#,
            r#"{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"kms:*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Action":"kms:*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"kms:*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*"}]}"#,
            r#"{"Version":"2020-01-01","Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*"}]}"#,
        ] {
            let e = check_policy(&ctx(), bad, true).unwrap_err();
            assert!(e.is(Exception::MalformedPolicyDocument), "{bad}: {e:?}");
        }
        let big = format!(
            "{{\"Statement\":[], \"pad\": \"{}\"}}",
            "x".repeat(MAX_POLICY_BYTES)
        );
        assert!(check_policy(&ctx(), &big, true)
            .unwrap_err()
            .is(Exception::MalformedPolicyDocument));
    }

    #[test]
    fn lockout_check_needs_put_key_policy_for_the_caller() {
        let other = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999999999999:root"},"Action":"kms:*","Resource":"*"}]}"#;
        let e = check_policy(&ctx(), other, false).unwrap_err();
        assert!(e.is(Exception::MalformedPolicyDocument));
        assert_eq!(e.to_string(), LOCKOUT_MESSAGE);
        check_policy(&ctx(), other, true).unwrap();
        let narrow = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":["kms:Encrypt","kms:Put*"],"Resource":"*"}}"#;
        check_policy(&ctx(), narrow, false).unwrap();
        let deny_only =
            r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*"}}"#;
        assert!(check_policy(&ctx(), deny_only, false).is_err());
    }
}
