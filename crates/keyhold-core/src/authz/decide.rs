//! Combining the key policy, identity policies and grants into one decision.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keyhold_kms_model::Exception;
use keyhold_policy::{Allow, Caller, Evaluation, Facts, Policy, PolicyKind, Request};

use super::facts::{key_facts, principal_facts};
use super::{access_denied, Access, DenyReason};
use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};
use crate::keys::{GrantDoc, Keys, LoadedKey};

/// Most parsed key policies kept; the cache is emptied when it is full (policies are few and
/// shared by many keys — the default policy of an account is one entry).
const POLICY_CACHE_LIMIT: usize = 4096;

/// Parsed key policies by their text, so that a request evaluates a policy without parsing
/// JSON. Keyed by the exact text: a changed policy is a new entry, never a stale one.
#[derive(Debug, Default)]
pub struct PolicyCache {
    parsed: Mutex<HashMap<String, Arc<Policy>>>,
}

impl PolicyCache {
    /// The parsed form of the key policy `text`. A stored policy that does not parse (it was
    /// checked when it was put, so this means a grammar Keyhold accepts but cannot evaluate)
    /// allows nothing.
    pub fn key_policy(&self, text: &str) -> Option<Arc<Policy>> {
        if let Ok(map) = self.parsed.lock() {
            if let Some(p) = map.get(text) {
                return Some(p.clone());
            }
        }
        let policy = Arc::new(Policy::parse(text, PolicyKind::Key).ok()?);
        if let Ok(mut map) = self.parsed.lock() {
            if map.len() >= POLICY_CACHE_LIMIT {
                map.clear();
            }
            map.insert(text.to_string(), policy.clone());
        }
        Some(policy)
    }
}

/// What let an authorized request through.
#[derive(Debug, Clone)]
pub(crate) enum Authorized {
    /// The key policy (with the identity policies where it delegates to them).
    ByPolicy,
    /// A grant; CreateGrant limits what a grant-given CreateGrant may create.
    ByGrant(Box<GrantDoc>),
}

/// What the caller's identity policies say. The account root is not limited by IAM policies:
/// it is allowed and never denied by them.
fn identity_evaluation(ctx: &RequestContext, request: &Request<'_>) -> Evaluation {
    if ctx.is_account_root() {
        return Evaluation {
            explicit_deny: false,
            allow: Allow::Principal,
        };
    }
    let mut out = Evaluation::default();
    for p in ctx.identity_policies.0.iter() {
        let e = p.evaluate(request);
        out.explicit_deny |= e.explicit_deny;
        if e.allow != Allow::None {
            out.allow = Allow::Principal;
        }
    }
    out
}

fn caller(ctx: &RequestContext) -> Caller<'_> {
    Caller {
        arn: &ctx.principal_arn,
        account_id: &ctx.account_id,
    }
}

/// Authorizes an action that has no key resource (CreateKey, ListKeys, GenerateRandom,
/// the custom key store operations, ...) by the caller's identity policies alone, on resource
/// `*` as IAM evaluates these actions.
pub fn authorize_account_action(
    ctx: &RequestContext,
    action: &str,
    now_seconds: f64,
    extra: &[(&'static str, String)],
) -> KmsResult<()> {
    if ctx.is_account_root() {
        return Ok(());
    }
    let mut facts: Facts = principal_facts(ctx, now_seconds);
    for (k, v) in extra {
        facts.set(k, v.clone());
    }
    identity_only(ctx, action, "*", &facts)
}

/// The decision of the caller's identity policies alone for `action` on `resource`.
fn identity_only(
    ctx: &RequestContext,
    action: &str,
    resource: &str,
    facts: &Facts,
) -> KmsResult<()> {
    let request = Request {
        caller: caller(ctx),
        action,
        resource,
        facts,
    };
    let e = identity_evaluation(ctx, &request);
    let reason = if e.explicit_deny {
        DenyReason::ExplicitIdentityDeny
    } else if e.allow == Allow::None {
        DenyReason::NoIdentityPolicy
    } else {
        return Ok(());
    };
    Err(access_denied(ctx, action, resource, reason))
}

impl Keys {
    /// Decides whether the caller may perform `access` on `key` (reached through
    /// `request_alias`, if an alias named it): explicit denies first, then the key policy
    /// (with IAM delegation and the cross-account rule), then the key's grants.
    pub(crate) async fn authorize(
        &self,
        ctx: &RequestContext,
        key: &LoadedKey,
        access: &Access<'_>,
        request_alias: Option<&str>,
    ) -> KmsResult<Authorized> {
        let arn = key.arn();
        let action = access.action.iam_name();
        let policy = self.policies.key_policy(&key.doc.policy);
        // Facts are read only by conditions: a request under policies without any (the
        // default policy, most identity policies) skips building them.
        let needs_facts = policy.as_ref().is_some_and(|p| p.has_conditions())
            || ctx.identity_policies.0.iter().any(Policy::has_conditions);
        let mut facts = if needs_facts {
            key_facts(ctx, key, access, request_alias, self.now_seconds())
        } else {
            Facts::new()
        };
        // kms:ResourceAliases needs a lookup: made only for policies that use it.
        const RESOURCE_ALIASES: &str = "kms:ResourceAliases";
        if policy
            .as_ref()
            .is_some_and(|p| p.uses_condition_key(RESOURCE_ALIASES))
            || ctx
                .identity_policies
                .0
                .iter()
                .any(|p| p.uses_condition_key(RESOURCE_ALIASES))
        {
            facts.set_multi(RESOURCE_ALIASES, self.alias_names_of(key).await?);
        }
        let request = Request {
            caller: caller(ctx),
            action,
            resource: &arn,
            facts: &facts,
        };
        let key_policy = policy.map(|p| p.evaluate(&request)).unwrap_or_default();
        if key_policy.explicit_deny {
            return Err(access_denied(
                ctx,
                action,
                &arn,
                DenyReason::ExplicitResourceDeny,
            ));
        }
        let identity = identity_evaluation(ctx, &request);
        if identity.explicit_deny {
            return Err(access_denied(
                ctx,
                action,
                &arn,
                DenyReason::ExplicitIdentityDeny,
            ));
        }
        let same_account = ctx.account_id == key.row.account_id;
        let identity_allows = identity.allow != Allow::None;
        let allowed = match key_policy.allow {
            Allow::Principal => same_account || identity_allows,
            Allow::Account => identity_allows,
            Allow::None => false,
        };
        if allowed {
            return Ok(Authorized::ByPolicy);
        }
        if let Some(op) = access.action.grant_operation() {
            if let Some(grant) = self
                .grant_allows(ctx, key, op, access.encryption_context, identity_allows)
                .await?
            {
                return Ok(Authorized::ByGrant(Box::new(grant)));
            }
        }
        let reason = if key_policy.allow == Allow::None {
            DenyReason::NoResourcePolicy
        } else {
            DenyReason::NoIdentityPolicy
        };
        Err(access_denied(ctx, action, &arn, reason))
    }

    /// Whether the caller's identity policies allow `action` on `resource` (an alias ARN for
    /// CreateAlias and friends, which IAM authorizes on the alias as well as the key).
    pub(crate) fn authorize_identity_on(
        &self,
        ctx: &RequestContext,
        action: &str,
        resource: &str,
    ) -> KmsResult<()> {
        if ctx.is_account_root() {
            return Ok(());
        }
        identity_only(
            ctx,
            action,
            resource,
            &principal_facts(ctx, self.now_seconds()),
        )
    }
}

/// `AccessDeniedException` for an operation that only the grant's parties may call
/// (RetireGrant).
pub(crate) fn not_authorized_plain(ctx: &RequestContext, action: &str, resource: &str) -> KmsError {
    KmsError::new(
        Exception::AccessDenied,
        format!(
            "User: {} is not authorized to perform: {action} on resource: {resource}",
            ctx.principal_arn
        ),
    )
}

/// AWS's policy lockout safety check: whether `policy` would let the caller call
/// `kms:PutKeyPolicy` on the key again — named directly, or through its account with IAM
/// policies that allow it (the account root always may), and not explicitly denied.
pub(crate) fn could_put_key_policy(ctx: &RequestContext, policy: &Policy, resource: &str) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    let facts = principal_facts(ctx, now);
    let request = Request {
        caller: caller(ctx),
        action: "kms:PutKeyPolicy",
        resource,
        facts: &facts,
    };
    let key_policy = policy.evaluate(&request);
    let identity = identity_evaluation(ctx, &request);
    if key_policy.explicit_deny || identity.explicit_deny {
        return false;
    }
    match key_policy.allow {
        Allow::Principal => true,
        Allow::Account => identity.allow != Allow::None,
        Allow::None => false,
    }
}
