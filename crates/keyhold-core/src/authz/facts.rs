//! The condition keys of a request: who calls, from where, on which key, with what.

use keyhold_policy::Facts;

use super::Access;
use crate::context::RequestContext;
use crate::keys::LoadedKey;

/// The condition keys that describe the caller and the request itself (`aws:Principal*`,
/// `aws:SourceIp`, `aws:SecureTransport`, times, `kms:CallerAccount`), independent of any key.
pub(crate) fn principal_facts(ctx: &RequestContext, now_seconds: f64) -> Facts {
    let mut f = Facts::new();
    f.set("kms:CallerAccount", ctx.account_id.clone());
    f.set("aws:PrincipalAccount", ctx.account_id.clone());
    f.set(
        "aws:PrincipalArn",
        principal_arn_for_conditions(&ctx.principal_arn),
    );
    let resource = ctx.principal_arn.rsplit(':').next().unwrap_or_default();
    let (kind, name) = resource.split_once('/').unwrap_or((resource, ""));
    match kind {
        "root" => f.set("aws:PrincipalType", "Account"),
        "user" => {
            f.set("aws:PrincipalType", "User");
            f.set("aws:username", name.rsplit('/').next().unwrap_or(name));
        }
        "assumed-role" => f.set("aws:PrincipalType", "AssumedRole"),
        _ => {}
    }
    f.set("aws:PrincipalIsAWSService", "false");
    f.set("aws:ViaAWSService", "false");
    f.set("aws:RequestedRegion", ctx.region.clone());
    f.set(
        "aws:SecureTransport",
        if ctx.secure_transport {
            "true"
        } else {
            "false"
        },
    );
    if let Some(ip) = ctx.source_ip {
        f.set("aws:SourceIp", ip.to_string());
    }
    let secs = now_seconds.max(0.0) as i64;
    f.set("aws:EpochTime", secs.to_string());
    if let Ok(t) = time::OffsetDateTime::from_unix_timestamp(secs) {
        if let Ok(s) = t.format(&time::format_description::well_known::Rfc3339) {
            f.set("aws:CurrentTime", s);
        }
    }
    f
}

/// The role ARN of an assumed-role session ARN
/// (`arn:<partition>:sts::<account>:assumed-role/<role>/<session>` →
/// `arn:<partition>:iam::<account>:role/<role>`); `None` for any other principal. Both
/// `aws:PrincipalArn` and grantee matching use it, as IAM documents for sessions.
pub(crate) fn session_role_arn(arn: &str) -> Option<String> {
    let rest = arn.strip_prefix("arn:")?;
    let (partition, rest) = rest.split_once(':')?;
    let rest = rest.strip_prefix("sts::")?;
    let (account, res) = rest.split_once(':')?;
    let (role, _session) = res.strip_prefix("assumed-role/")?.rsplit_once('/')?;
    Some(format!("arn:{partition}:iam::{account}:role/{role}"))
}

/// `aws:PrincipalArn` of an assumed-role session is the role's ARN, as IAM documents.
fn principal_arn_for_conditions(arn: &str) -> String {
    session_role_arn(arn).unwrap_or_else(|| arn.to_string())
}

/// The full condition-key set of a request on `key`.
pub(crate) fn key_facts(
    ctx: &RequestContext,
    key: &LoadedKey,
    access: &Access<'_>,
    request_alias: Option<&str>,
    now_seconds: f64,
) -> Facts {
    let mut f = principal_facts(ctx, now_seconds);
    let doc = &key.doc;
    f.set("kms:KeySpec", doc.key_spec.as_str());
    f.set("kms:CustomerMasterKeySpec", doc.key_spec.as_str());
    f.set("kms:KeyUsage", doc.key_usage.as_str());
    f.set("kms:CustomerMasterKeyUsage", doc.key_usage.as_str());
    f.set("kms:KeyOrigin", doc.origin.as_str());
    f.set(
        "kms:MultiRegion",
        if doc.multi_region { "true" } else { "false" },
    );
    for (k, v) in &doc.tags {
        f.set(&format!("aws:ResourceTag/{k}"), v.clone());
    }
    if let Some(alias) = request_alias {
        f.set("kms:RequestAlias", alias.to_string());
    }
    if let Some(ec) = access.encryption_context {
        for (k, v) in ec {
            f.set(&format!("kms:EncryptionContext:{k}"), v.clone());
        }
        f.set_multi("kms:EncryptionContextKeys", ec.keys().cloned().collect());
    }
    for (k, v) in &access.facts {
        f.set(k, v.clone());
    }
    for (k, v) in &access.multi_facts {
        f.set_multi(k, v.clone());
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assumed_role_sessions_are_their_role() {
        assert_eq!(
            principal_arn_for_conditions("arn:aws:sts::111122223333:assumed-role/app/s1"),
            "arn:aws:iam::111122223333:role/app"
        );
        assert_eq!(
            principal_arn_for_conditions("arn:aws:iam::111122223333:user/alice"),
            "arn:aws:iam::111122223333:user/alice"
        );
        // Other partitions keep theirs.
        assert_eq!(
            session_role_arn("arn:aws-cn:sts::111122223333:assumed-role/app/s1").as_deref(),
            Some("arn:aws-cn:iam::111122223333:role/app")
        );
        assert_eq!(
            session_role_arn("arn:aws:sts::111122223333:federated-user/bob"),
            None
        );
    }
}
