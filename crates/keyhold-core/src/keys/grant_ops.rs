//! The grant operations: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant,
//! RevokeGrant.

use keyhold_kms_model::shapes::{
    CreateGrantRequest, CreateGrantResponse, GrantListEntry, ListGrantsRequest, ListGrantsResponse,
    ListRetirableGrantsRequest, RetireGrantRequest, RevokeGrantRequest,
};
use keyhold_kms_model::{Exception, Timestamp};

use super::crypto_ops::dry_run;
use super::grant_rules::{check_grant_for_key, check_principal, within_parent};
use super::grants::{
    check_grant_tokens, decode_token, encode_token, GrantDoc, GRANT_KIND, GRANT_RETIRING_INDEX,
};
use super::manage::require_state;
use super::states::KeyOperationFamily;
use super::{Keys, LoadedKey};
use crate::authz::{authorize_account_action, not_authorized_plain, Access, Authorized, KeyAction};
use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};
use crate::paging::Paging;
use crate::ports::StoreError;

/// AWS's quota of grants per KMS key.
pub const MAX_GRANTS_PER_KEY: usize = 50_000;

/// ListGrants and ListRetirableGrants paging: AWS's default 50, maximum 100.
const LIST_GRANTS_PAGING: Paging = Paging {
    kind: "g1",
    default_limit: 50,
    max_limit: 100,
};
const LIST_RETIRABLE_PAGING: Paging = Paging {
    kind: "r1",
    default_limit: 50,
    max_limit: 100,
};

fn grant_not_found(grant_id: &str) -> KmsError {
    KmsError::new(
        Exception::NotFound,
        format!("Grant ID {grant_id} not found"),
    )
}

fn entry(account: &str, region: &str, g: &GrantDoc) -> GrantListEntry {
    GrantListEntry {
        key_id: Some(crate::arn::key_arn(region, account, &g.key_id)),
        grant_id: Some(g.grant_id.clone()),
        name: g.name.clone(),
        creation_date: Some(Timestamp(g.creation_date)),
        grantee_principal: Some(g.grantee_principal.clone()),
        retiring_principal: g.retiring_principal.clone(),
        issuing_account: Some(g.issuing_account.clone()),
        operations: Some(g.operations.clone()),
        constraints: g.constraints(),
    }
}

/// Whether two grants have the same parameters (CreateGrant's `Name` idempotency).
fn same_parameters(a: &GrantDoc, b: &GrantDoc) -> bool {
    let ops = |g: &GrantDoc| {
        let mut v: Vec<&str> = g.operations.iter().map(|o| o.as_str()).collect();
        v.sort_unstable();
        v
    };
    a.grantee_principal == b.grantee_principal
        && a.retiring_principal == b.retiring_principal
        && ops(a) == ops(b)
        && a.context_subset == b.context_subset
        && a.context_equals == b.context_equals
}

impl Keys {
    /// CreateGrant.
    pub async fn create_grant(
        &self,
        ctx: &RequestContext,
        req: CreateGrantRequest,
    ) -> KmsResult<CreateGrantResponse> {
        check_grant_tokens(req.grant_tokens.as_ref())?;
        check_principal("GranteePrincipal", &req.grantee_principal)?;
        if let Some(r) = &req.retiring_principal {
            check_principal("RetiringPrincipal", r)?;
        }
        let (subset, equals) = match &req.constraints {
            Some(c) => (
                c.encryption_context_subset.clone(),
                c.encryption_context_equals.clone(),
            ),
            None => (None, None),
        };
        let constraint_types: Vec<String> = [
            subset
                .as_ref()
                .map(|_| "EncryptionContextSubset".to_string()),
            equals
                .as_ref()
                .map(|_| "EncryptionContextEquals".to_string()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut access = Access::new(KeyAction::CreateGrant)
            .with_fact("kms:GranteePrincipal", req.grantee_principal.clone())
            .with_fact("kms:GrantIsForAWSResource", "false")
            .with_multi_fact(
                "kms:GrantOperations",
                req.operations
                    .iter()
                    .map(|o| o.as_str().to_string())
                    .collect(),
            );
        if let Some(r) = &req.retiring_principal {
            access = access.with_fact("kms:RetiringPrincipal", r.clone());
        }
        if !constraint_types.is_empty() {
            access = access.with_multi_fact("kms:GrantConstraintType", constraint_types);
        }
        let (key, by) = self.load_authorized(ctx, &req.key_id, &access).await?;
        require_state(&key, KeyOperationFamily::ManageMetadata)?;
        check_grant_for_key(
            &key.arn(),
            key.doc.key_spec,
            key.doc.key_usage,
            &req.operations,
            subset.is_some() || equals.is_some(),
        )?;
        if let Authorized::ByGrant(parent) = &by {
            if !within_parent(parent, &req.operations, subset.as_ref(), equals.as_ref()) {
                return Err(crate::authz::not_authorized_plain(
                    ctx,
                    "kms:CreateGrant",
                    &key.arn(),
                ));
            }
        }
        if req.dry_run == Some(true) {
            return Err(dry_run());
        }
        let new = GrantDoc {
            key_id: key.row.key_id.clone(),
            grant_id: hex64(),
            name: req.name.clone(),
            creation_date: self.now_seconds(),
            grantee_principal: req.grantee_principal.clone(),
            retiring_principal: req.retiring_principal.clone(),
            issuing_account: format!("arn:aws:iam::{}:root", key.row.account_id),
            operations: req.operations.clone(),
            context_subset: subset,
            context_equals: equals,
            token_nonce: hex64()[..32].to_string(),
        };
        let existing = self.grants_of(&key).await?;
        if new.name.is_some() {
            if let Some((_, g)) = existing
                .iter()
                .find(|(_, g)| g.name == new.name && same_parameters(g, &new))
            {
                return Ok(self.grant_response(&key, g));
            }
        }
        if existing.len() >= MAX_GRANTS_PER_KEY {
            return Err(KmsError::new(
                Exception::LimitExceeded,
                format!(
                    "The request was rejected because the KMS key {} has reached its limit of {MAX_GRANTS_PER_KEY} grants.",
                    key.arn()
                ),
            ));
        }
        let doc = new.to_document(&key.row.account_id, &key.row.region)?;
        self.store
            .insert_document(&doc, &[], &new.indexes())
            .await?;
        tracing::info!(key_arn = %key.arn(), grant_id = %new.grant_id, grantee = %new.grantee_principal, "grant created");
        Ok(self.grant_response(&key, &new))
    }

    fn grant_response(&self, key: &LoadedKey, g: &GrantDoc) -> CreateGrantResponse {
        CreateGrantResponse {
            grant_token: Some(encode_token(&key.row.account_id, &key.row.region, g)),
            grant_id: Some(g.grant_id.clone()),
        }
    }

    /// ListGrants.
    pub async fn list_grants(
        &self,
        ctx: &RequestContext,
        req: ListGrantsRequest,
    ) -> KmsResult<ListGrantsResponse> {
        let size = LIST_GRANTS_PAGING.page_size(req.limit);
        let after = LIST_GRANTS_PAGING.decode(req.marker.as_deref())?;
        let key = self
            .load(ctx, &req.key_id, &Access::new(KeyAction::ListGrants))
            .await?;
        let (account, region) = (&key.row.account_id, &key.row.region);
        let rows: Vec<GrantDoc> = self
            .grants_of(&key)
            .await?
            .into_iter()
            .map(|(_, g)| g)
            .filter(|g| after.as_deref().is_none_or(|a| g.grant_id.as_str() > a))
            .filter(|g| req.grant_id.as_deref().is_none_or(|id| g.grant_id == id))
            .filter(|g| {
                req.grantee_principal
                    .as_deref()
                    .is_none_or(|p| g.grantee_principal == p)
            })
            .take(size as usize + 1)
            .collect();
        let page = LIST_GRANTS_PAGING.page(rows, size, |g| &g.grant_id);
        Ok(ListGrantsResponse {
            grants: Some(
                page.items
                    .iter()
                    .map(|g| entry(account, region, g))
                    .collect(),
            ),
            next_marker: page.next_marker,
            truncated: Some(page.truncated),
        })
    }

    /// ListRetirableGrants: the grants, on keys of any account, whose retiring principal is
    /// the given one. Authorized by the caller's identity policies only, as in AWS.
    pub async fn list_retirable_grants(
        &self,
        ctx: &RequestContext,
        req: ListRetirableGrantsRequest,
    ) -> KmsResult<ListGrantsResponse> {
        authorize_account_action(ctx, "kms:ListRetirableGrants", self.now_seconds(), &[])?;
        let size = LIST_RETIRABLE_PAGING.page_size(req.limit);
        let after = LIST_RETIRABLE_PAGING.decode(req.marker.as_deref())?;
        let hits = self
            .store
            .list_index(
                GRANT_RETIRING_INDEX,
                &req.retiring_principal,
                Some(&req.retiring_principal),
                None,
                u32::MAX,
            )
            .await?;
        let mut rows = Vec::new();
        for hit in hits {
            let crate::ports::IndexOwner::Document {
                kind,
                account_id,
                region,
                id,
            } = &hit.owner
            else {
                continue;
            };
            let marker_id = format!("{account_id}/{region}/{id}");
            if after.as_deref().is_some_and(|a| marker_id.as_str() <= a) {
                continue;
            }
            if let Some(d) = self
                .store
                .get_document(kind, account_id, region, id)
                .await?
            {
                let g: GrantDoc = serde_json::from_str(&d.doc).map_err(KmsError::internal)?;
                rows.push((marker_id, entry(account_id, region, &g)));
            }
            if rows.len() > size as usize {
                break;
            }
        }
        let page = LIST_RETIRABLE_PAGING.page(rows, size, |(id, _)| id);
        Ok(ListGrantsResponse {
            grants: Some(page.items.into_iter().map(|(_, e)| e).collect()),
            next_marker: page.next_marker,
            truncated: Some(page.truncated),
        })
    }

    /// RetireGrant: by grant token, or by key and grant id. Allowed to the retiring
    /// principal, to the grantee when the grant includes RetireGrant, and to the key's
    /// account (its root, or its principals whose IAM policies allow `kms:RetireGrant`).
    pub async fn retire_grant(
        &self,
        ctx: &RequestContext,
        req: RetireGrantRequest,
    ) -> KmsResult<()> {
        let (key_ref, grant_id, nonce) = match (&req.grant_token, &req.key_id, &req.grant_id) {
            (Some(token), _, _) => {
                let t = decode_token(token)?;
                let arn = crate::arn::key_arn(&t.region, &t.account, &t.key_id);
                (arn, t.grant_id, Some(t.nonce))
            }
            (None, Some(key_id), Some(grant_id)) => (key_id.clone(), grant_id.clone(), None),
            _ => {
                return Err(KmsError::new(
                    Exception::Validation,
                    "Either GrantToken or both KeyId and GrantId must be specified.".into(),
                ))
            }
        };
        let key = self.load_unauthorized(ctx, &key_ref).await?;
        let Some((doc, grant)) = self.grant_of(&key, &grant_id).await? else {
            return Err(grant_not_found(&grant_id));
        };
        if nonce.is_some_and(|n| n != grant.token_nonce) {
            return Err(KmsError::new(
                Exception::InvalidGrantToken,
                super::grants::INVALID_GRANT_TOKEN.into(),
            ));
        }
        let is_retiring = grant.retiring_principal.as_deref() == Some(ctx.principal_arn.as_str());
        let is_grantee = grant
            .operations
            .contains(&keyhold_kms_model::enums::GrantOperation::RetireGrant)
            && grant.grantee_matches(ctx, false);
        let key_account = ctx.account_id == key.row.account_id
            && self
                .authorize_identity_on(ctx, "kms:RetireGrant", &key.arn())
                .is_ok();
        if !(is_retiring || is_grantee || key_account) {
            return Err(not_authorized_plain(ctx, "kms:RetireGrant", &key.arn()));
        }
        if req.dry_run == Some(true) {
            return Err(dry_run());
        }
        self.delete_grant_doc(&doc).await?;
        tracing::info!(key_arn = %key.arn(), grant_id = %grant.grant_id, "grant retired");
        Ok(())
    }

    /// RevokeGrant: needs `kms:RevokeGrant` on the key.
    pub async fn revoke_grant(
        &self,
        ctx: &RequestContext,
        req: RevokeGrantRequest,
    ) -> KmsResult<()> {
        let key = self
            .load(ctx, &req.key_id, &Access::new(KeyAction::RevokeGrant))
            .await?;
        let Some((doc, grant)) = self.grant_of(&key, &req.grant_id).await? else {
            return Err(grant_not_found(&req.grant_id));
        };
        if req.dry_run == Some(true) {
            return Err(dry_run());
        }
        self.delete_grant_doc(&doc).await?;
        tracing::info!(key_arn = %key.arn(), grant_id = %grant.grant_id, "grant revoked");
        Ok(())
    }

    async fn delete_grant_doc(&self, doc: &crate::ports::StoredDocument) -> KmsResult<()> {
        match self
            .store
            .delete_document(
                GRANT_KIND,
                &doc.account_id,
                &doc.region,
                &doc.id,
                doc.version,
            )
            .await
        {
            // Retired or revoked concurrently: the grant is gone either way.
            Ok(()) | Err(StoreError::NotFound) | Err(StoreError::VersionMismatch) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// 64 random hex digits (a grant id, as AWS's look).
fn hex64() -> String {
    rand::random::<[u8; 32]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
