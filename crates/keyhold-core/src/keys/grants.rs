//! Grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant, and the
//! grant check every authorized operation falls back to when no policy allows the caller.
//!
//! A grant is a document of kind [`GRANT_KIND`] in its key's account and Region, with id
//! `<key id>/<grant id>`, so that one ordered listing returns the grants of a key; an index on
//! the retiring principal serves ListRetirableGrants across accounts. Grants go with their
//! key ([`Keys::delete_grants_of`]). Grant rules (which operations a key type allows, how a
//! grant-given CreateGrant is limited) are in `grant_rules`.

use std::collections::BTreeMap;

use keyhold_kms_model::enums::GrantOperation;
use keyhold_kms_model::shapes::GrantConstraints;
use keyhold_kms_model::Exception;
use serde::{Deserialize, Serialize};

use super::{Keys, LoadedKey};
use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};
use crate::ports::{IndexEntry, StoredDocument};

/// The document kind of grants.
pub const GRANT_KIND: &str = "kms-grant";
/// Index of grants by retiring principal (value: the principal as given).
pub const GRANT_RETIRING_INDEX: &str = "grant-retiring";

/// A stored grant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct GrantDoc {
    /// The key's id.
    pub key_id: String,
    /// 64 hex digits.
    pub grant_id: String,
    /// The grant's friendly name.
    #[serde(default)]
    pub name: Option<String>,
    /// Seconds since the epoch.
    pub creation_date: f64,
    /// Who may use the grant.
    pub grantee_principal: String,
    /// Who may retire it besides the grantee (if it allows RetireGrant) and the key's account.
    #[serde(default)]
    pub retiring_principal: Option<String>,
    /// The account that created the grant (the key's account).
    pub issuing_account: String,
    /// The operations the grant allows.
    pub operations: Vec<GrantOperation>,
    /// `EncryptionContextSubset` constraint.
    #[serde(default)]
    pub context_subset: Option<BTreeMap<String, String>>,
    /// `EncryptionContextEquals` constraint.
    #[serde(default)]
    pub context_equals: Option<BTreeMap<String, String>>,
    /// Random; grant tokens carry it, so a token cannot be made up from a grant id.
    pub token_nonce: String,
}

impl GrantDoc {
    /// The document id: `<key id>/<grant id>`.
    pub fn doc_id(&self) -> String {
        format!("{}/{}", self.key_id, self.grant_id)
    }

    /// The constraints in wire form.
    pub fn constraints(&self) -> Option<GrantConstraints> {
        if self.context_subset.is_none() && self.context_equals.is_none() {
            return None;
        }
        Some(GrantConstraints {
            encryption_context_subset: self.context_subset.clone(),
            encryption_context_equals: self.context_equals.clone(),
        })
    }

    /// Whether a request with encryption context `context` meets the constraints. Operations
    /// without an encryption context (`None`) are not constrained. Constraint keys compare
    /// case-insensitively and values case-sensitively, as AWS documents.
    pub fn constraints_met(&self, context: Option<&BTreeMap<String, String>>) -> bool {
        let Some(context) = context else {
            return true;
        };
        let lookup = |k: &str| {
            context
                .iter()
                .find(|(ck, _)| ck.eq_ignore_ascii_case(k))
                .map(|(_, v)| v)
        };
        if let Some(equals) = &self.context_equals {
            if equals.len() != context.len() || !equals.iter().all(|(k, v)| lookup(k) == Some(v)) {
                return false;
            }
        }
        if let Some(subset) = &self.context_subset {
            if !subset.iter().all(|(k, v)| lookup(k) == Some(v)) {
                return false;
            }
        }
        true
    }

    /// Whether the grant's grantee is the caller: its ARN, the role of an assumed-role
    /// session, or its account root when the caller is that root. A grant to an account root
    /// serves the account's other principals only where their IAM policies allow
    /// (`identity_allows`), as a key policy naming the account does.
    pub fn grantee_matches(&self, ctx: &RequestContext, identity_allows: bool) -> bool {
        let g = self.grantee_principal.as_str();
        if g == ctx.principal_arn {
            return true;
        }
        if let Some(role) = crate::authz::facts::session_role_arn(&ctx.principal_arn) {
            if g == role {
                return true;
            }
        }
        let root = format!("arn:aws:iam::{}:root", ctx.account_id);
        (g == root || g == ctx.account_id) && (ctx.is_account_root() || identity_allows)
    }

    pub(super) fn to_document(&self, account: &str, region: &str) -> KmsResult<StoredDocument> {
        Ok(StoredDocument {
            kind: GRANT_KIND.into(),
            account_id: account.into(),
            region: region.into(),
            id: self.doc_id(),
            created_at_ms: (self.creation_date * 1000.0) as i64,
            version: 1,
            doc: serde_json::to_string(self).map_err(KmsError::internal)?,
        })
    }

    pub(super) fn indexes(&self) -> Vec<IndexEntry> {
        self.retiring_principal
            .iter()
            .map(|p| IndexEntry::new(GRANT_RETIRING_INDEX, p.clone()))
            .collect()
    }
}

/// A grant token: `base64url("khg1:<account>:<region>:<key id>:<grant id>:<nonce>")`. Opaque to
/// clients, as AWS's are; the nonce makes it unguessable from the grant id.
pub(crate) fn encode_token(account: &str, region: &str, g: &GrantDoc) -> String {
    use base64::Engine as _;
    let raw = format!(
        "khg1:{account}:{region}:{}:{}:{}",
        g.key_id, g.grant_id, g.token_nonce
    );
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// A decoded grant token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GrantTokenParts {
    pub account: String,
    pub region: String,
    pub key_id: String,
    pub grant_id: String,
    pub nonce: String,
}

/// AWS's `InvalidGrantTokenException` message.
pub(crate) const INVALID_GRANT_TOKEN: &str = "Invalid grant token.";

/// Decodes a grant token Keyhold issued (`InvalidGrantTokenException` otherwise).
pub(crate) fn decode_token(token: &str) -> KmsResult<GrantTokenParts> {
    use base64::Engine as _;
    let invalid = || KmsError::new(Exception::InvalidGrantToken, INVALID_GRANT_TOKEN.into());
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| invalid())?;
    let raw = String::from_utf8(raw).map_err(|_| invalid())?;
    let parts: Vec<&str> = raw.split(':').collect();
    match parts.as_slice() {
        ["khg1", account, region, key_id, grant_id, nonce]
            if !key_id.is_empty() && grant_id.len() == 64 && !nonce.is_empty() =>
        {
            Ok(GrantTokenParts {
                account: account.to_string(),
                region: region.to_string(),
                key_id: key_id.to_string(),
                grant_id: grant_id.to_string(),
                nonce: nonce.to_string(),
            })
        }
        _ => Err(invalid()),
    }
}

/// Checks the `GrantTokens` of a request: each must be a token Keyhold issued. (Grants take
/// effect at once here, so a token adds no permission; it is only validated, as AWS does.)
pub(crate) fn check_grant_tokens(tokens: Option<&Vec<String>>) -> KmsResult<()> {
    for t in tokens.into_iter().flatten() {
        decode_token(t)?;
    }
    Ok(())
}

impl Keys {
    /// The grants of `key`, in grant-id order.
    pub(crate) async fn grants_of(
        &self,
        key: &LoadedKey,
    ) -> KmsResult<Vec<(StoredDocument, GrantDoc)>> {
        let r = &key.row;
        let prefix = format!("{}/", r.key_id);
        let mut out = Vec::new();
        let mut after = prefix.clone();
        loop {
            let page = self
                .store
                .list_documents(GRANT_KIND, &r.account_id, &r.region, Some(&after), 200)
                .await?;
            let full = page.len() == 200;
            for d in page {
                if !d.id.starts_with(&prefix) {
                    return Ok(out);
                }
                after = d.id.clone();
                let g: GrantDoc = serde_json::from_str(&d.doc).map_err(KmsError::internal)?;
                out.push((d, g));
            }
            if !full {
                return Ok(out);
            }
        }
    }

    /// Reads one grant of `key`.
    pub(crate) async fn grant_of(
        &self,
        key: &LoadedKey,
        grant_id: &str,
    ) -> KmsResult<Option<(StoredDocument, GrantDoc)>> {
        let r = &key.row;
        let id = format!("{}/{grant_id}", r.key_id);
        let Some(d) = self
            .store
            .get_document(GRANT_KIND, &r.account_id, &r.region, &id)
            .await?
        else {
            return Ok(None);
        };
        let g: GrantDoc = serde_json::from_str(&d.doc).map_err(KmsError::internal)?;
        Ok(Some((d, g)))
    }

    /// The first grant of `key` that lets the caller perform `op` with encryption context
    /// `context` (constraints apply only to operations that take one).
    pub(crate) async fn grant_allows(
        &self,
        ctx: &RequestContext,
        key: &LoadedKey,
        op: GrantOperation,
        context: Option<&BTreeMap<String, String>>,
        identity_allows: bool,
    ) -> KmsResult<Option<GrantDoc>> {
        Ok(self
            .grants_of(key)
            .await?
            .into_iter()
            .map(|(_, g)| g)
            .find(|g| {
                g.operations.contains(&op)
                    && g.grantee_matches(ctx, identity_allows)
                    && g.constraints_met(context)
            }))
    }

    /// Deletes every grant of a deleted key (best effort: a failure is logged).
    pub(super) async fn delete_grants_of(&self, key: &LoadedKey) {
        let grants = match self.grants_of(key).await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(key_arn = %key.arn(), error = %e, "listing the grants of a deleted key failed");
                return;
            }
        };
        for (d, _) in grants {
            if let Err(e) = self
                .store
                .delete_document(GRANT_KIND, &d.account_id, &d.region, &d.id, d.version)
                .await
            {
                tracing::warn!(key_arn = %key.arn(), grant = %d.id, error = %e, "deleting a grant of a deleted key failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> GrantDoc {
        GrantDoc {
            key_id: "k".into(),
            grant_id: "a".repeat(64),
            name: None,
            creation_date: 0.0,
            grantee_principal: "arn:aws:iam::111122223333:role/app".into(),
            retiring_principal: None,
            issuing_account: "arn:aws:iam::111122223333:root".into(),
            operations: vec![GrantOperation::Decrypt],
            context_subset: None,
            context_equals: None,
            token_nonce: "n".into(),
        }
    }

    fn ec(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn constraints_compare_keys_without_case_and_values_with_case() {
        let mut g = grant();
        g.context_subset = Some(ec(&[("Dept", "IT")]));
        assert!(g.constraints_met(Some(&ec(&[("dept", "IT"), ("x", "y")]))));
        assert!(!g.constraints_met(Some(&ec(&[("dept", "it")]))));
        assert!(!g.constraints_met(Some(&ec(&[]))));
        assert!(g.constraints_met(None), "operations without a context");
        let mut g = grant();
        g.context_equals = Some(ec(&[("Dept", "IT")]));
        assert!(g.constraints_met(Some(&ec(&[("DEPT", "IT")]))));
        assert!(!g.constraints_met(Some(&ec(&[("Dept", "IT"), ("x", "y")]))));
    }

    #[test]
    fn grantees_match_by_arn_role_or_account() {
        let g = grant();
        let mut ctx = RequestContext::new("111122223333", "us-east-1", "r");
        assert!(!g.grantee_matches(&ctx, true), "the root is not the role");
        ctx.principal_arn = "arn:aws:sts::111122223333:assumed-role/app/s1".into();
        assert!(g.grantee_matches(&ctx, false));
        let mut g2 = grant();
        g2.grantee_principal = "arn:aws:iam::111122223333:root".into();
        ctx.principal_arn = "arn:aws:iam::111122223333:user/bob".into();
        assert!(!g2.grantee_matches(&ctx, false));
        assert!(g2.grantee_matches(&ctx, true));
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_invalid() {
        let g = grant();
        let t = encode_token("111122223333", "us-east-1", &g);
        let p = decode_token(&t).unwrap();
        assert_eq!(p.grant_id, g.grant_id);
        assert_eq!(p.key_id, "k");
        assert!(decode_token("garbage!")
            .unwrap_err()
            .is(Exception::InvalidGrantToken));
    }
}
