//! Aliases: `CreateAlias`, `UpdateAlias`, `DeleteAlias`, `ListAliases`, and resolving an alias
//! name or alias ARN wherever AWS accepts a key identifier ([`Keys::resolve_alias`]).
//!
//! An alias is a metadata-store document of kind [`ALIAS_KIND`] whose id is the alias name, so
//! "one alias per name per account and Region" is the store's own document-id uniqueness,
//! atomic across nodes sharing PostgreSQL. Each alias carries one [`ALIAS_BY_KEY_INDEX`] entry
//! naming its key, written in the alias's own transaction: ListAliases by key and the removal
//! of a deleted key's aliases read it.

use keyhold_kms_model::shapes::{
    AliasListEntry, CreateAliasRequest, DeleteAliasRequest, ListAliasesRequest,
    ListAliasesResponse, UpdateAliasRequest,
};
use keyhold_kms_model::{Exception, Timestamp};
use serde::{Deserialize, Serialize};

use super::resolve::KeyRef;
use super::states::KeyOperationFamily;
use super::{Keys, LoadedKey};
use crate::arn::alias_arn;
use crate::authz::{Access, KeyAction};
use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};
use crate::paging::Paging;
use crate::ports::{
    IndexEntry, IndexHit, IndexOwner, StoreError, StoredDocument, DOCUMENT_ID_SCOPE,
};

/// The document kind of aliases.
pub const ALIAS_KIND: &str = "kms-alias";
/// The index of aliases by key: `<account>/<region>/<key id>`.
pub const ALIAS_BY_KEY_INDEX: &str = "alias-by-key";
/// The prefix every alias name has.
const PREFIX: &str = "alias/";
/// The prefix reserved for AWS managed keys.
const RESERVED_PREFIX: &str = "alias/aws/";

/// ListAliases pages by alias name (AWS: `Limit` 1–100, default 50).
const LIST_ALIASES_PAGING: Paging = Paging {
    kind: "a1",
    default_limit: 50,
    max_limit: 100,
};

/// The stored form of an alias.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AliasDoc {
    /// The key id (not ARN) the alias points at.
    pub target_key_id: String,
    /// Creation time, seconds since the epoch.
    pub creation_date: f64,
    /// Last CreateAlias/UpdateAlias time.
    pub last_updated_date: f64,
}

/// One ListAliases entry before it is rendered: a stored alias, or a predefined alias of an
/// AWS managed key that does not exist yet.
enum Listed {
    Stored(StoredDocument),
    Predefined(String),
}

impl Listed {
    fn name(&self) -> &str {
        match self {
            Listed::Stored(r) => &r.id,
            Listed::Predefined(n) => n,
        }
    }
}

fn by_key(account: &str, region: &str, key_id: &str) -> String {
    format!("{account}/{region}/{key_id}")
}

/// A new alias `name` of the caller's account and Region pointing at `key_id`, created at
/// `now`: its document and its alias-by-key index entry, ready for `insert_document` (whose
/// document-id uniqueness makes the name unique).
pub(super) fn new_alias(
    ctx: &RequestContext,
    name: &str,
    key_id: &str,
    now: f64,
) -> KmsResult<(StoredDocument, IndexEntry)> {
    let doc = AliasDoc {
        target_key_id: key_id.to_owned(),
        creation_date: now,
        last_updated_date: now,
    };
    let row = StoredDocument {
        kind: ALIAS_KIND.into(),
        account_id: ctx.account_id.clone(),
        region: ctx.region.clone(),
        id: name.to_owned(),
        created_at_ms: (now * 1000.0) as i64,
        version: 1,
        doc: serde_json::to_string(&doc).map_err(KmsError::internal)?,
    };
    let entry = IndexEntry::new(
        ALIAS_BY_KEY_INDEX,
        by_key(&ctx.account_id, &ctx.region, key_id),
    );
    Ok((row, entry))
}

fn not_found(ctx: &RequestContext, name: &str) -> KmsError {
    KmsError::new(
        Exception::NotFound,
        format!(
            "Alias {} is not found.",
            alias_arn(&ctx.region, &ctx.account_id, name)
        ),
    )
}

/// AWS's checks of an alias name a caller creates, updates or deletes (the model's length and
/// pattern were checked before): the `alias/` prefix, a name after it, the characters AWS
/// accepts (it refuses `:` although the model's pattern allows it), and the reserved
/// `alias/aws/` prefix.
pub(crate) fn check_alias_name(name: &str) -> KmsResult<()> {
    let Some(rest) = name.strip_prefix(PREFIX).filter(|r| !r.is_empty()) else {
        return Err(KmsError::new(
            Exception::Validation,
            "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html".into(),
        ));
    };
    if !rest
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'))
    {
        return Err(KmsError::new(
            Exception::Validation,
            format!("{name} contains invalid characters for an alias"),
        ));
    }
    if name.starts_with(RESERVED_PREFIX) {
        return Err(KmsError::new(
            Exception::InvalidAliasName,
            format!("Alias names beginning with {RESERVED_PREFIX} are reserved for AWS managed keys: {name}"),
        ));
    }
    Ok(())
}

impl Keys {
    /// The key id an alias of `account` in `region` points at (`None` when there is no such
    /// alias).
    pub(crate) async fn resolve_alias(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> KmsResult<Option<String>> {
        let Some(row) = self
            .store
            .get_document(ALIAS_KIND, account, region, name)
            .await?
        else {
            return Ok(None);
        };
        let doc: AliasDoc = serde_json::from_str(&row.doc).map_err(KmsError::internal)?;
        Ok(Some(doc.target_key_id))
    }

    /// The key an alias may point at: named by key id or key ARN (not by another alias), in
    /// the caller's account, customer managed, and in a state that allows it.
    async fn alias_target(
        &self,
        ctx: &RequestContext,
        target: &str,
        action: KeyAction,
    ) -> KmsResult<LoadedKey> {
        if let KeyRef::Alias { .. } = KeyRef::parse(ctx, target)? {
            return Err(KmsError::new(
                Exception::Validation,
                format!(
                    "TargetKeyId {target} is an alias; specify the key ID or key ARN of a KMS key."
                ),
            ));
        }
        let key = self.load(ctx, target, &Access::new(action)).await?;
        super::manage::require_state(&key, KeyOperationFamily::ManageMetadata)?;
        super::manage::require_customer_managed(&key)?;
        Ok(key)
    }

    /// `CreateAlias`.
    pub async fn create_alias(
        &self,
        ctx: &RequestContext,
        req: CreateAliasRequest,
    ) -> KmsResult<()> {
        check_alias_name(&req.alias_name)?;
        let alias = alias_arn(&ctx.region, &ctx.account_id, &req.alias_name);
        self.authorize_identity_on(ctx, "kms:CreateAlias", &alias)?;
        let key = self
            .alias_target(ctx, &req.target_key_id, KeyAction::CreateAlias)
            .await?;
        let (row, entry) = new_alias(ctx, &req.alias_name, &key.row.key_id, self.now_seconds())?;
        match self.store.insert_document(&row, &[], &[entry]).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict { scope }) if scope == DOCUMENT_ID_SCOPE => {
                Err(KmsError::new(
                    Exception::AlreadyExists,
                    format!(
                        "An alias with the name {} already exists",
                        alias_arn(&ctx.region, &ctx.account_id, &req.alias_name)
                    ),
                ))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `UpdateAlias`: points an existing alias at another key of the same key usage and spec.
    pub async fn update_alias(
        &self,
        ctx: &RequestContext,
        req: UpdateAliasRequest,
    ) -> KmsResult<()> {
        check_alias_name(&req.alias_name)?;
        let alias = alias_arn(&ctx.region, &ctx.account_id, &req.alias_name);
        self.authorize_identity_on(ctx, "kms:UpdateAlias", &alias)?;
        let key = self
            .alias_target(ctx, &req.target_key_id, KeyAction::UpdateAlias)
            .await?;
        let Some(row) = self
            .store
            .get_document(ALIAS_KIND, &ctx.account_id, &ctx.region, &req.alias_name)
            .await?
        else {
            return Err(not_found(ctx, &req.alias_name));
        };
        let mut doc: AliasDoc = serde_json::from_str(&row.doc).map_err(KmsError::internal)?;
        if let Some(old) = self
            .store
            .get_key(&ctx.account_id, &ctx.region, &doc.target_key_id)
            .await?
        {
            let old: super::KeyDoc = serde_json::from_str(&old.doc).map_err(KmsError::internal)?;
            if old.key_usage != key.doc.key_usage || old.key_spec != key.doc.key_spec {
                return Err(KmsError::new(
                    Exception::Validation,
                    format!(
                        "{} must have the same key spec and key usage as the KMS key the alias points to now ({} {}).",
                        key.arn(),
                        old.key_spec,
                        old.key_usage
                    ),
                ));
            }
        }
        doc.target_key_id.clone_from(&key.row.key_id);
        doc.last_updated_date = self.now_seconds();
        let mut next = row.clone();
        next.version += 1;
        next.doc = serde_json::to_string(&doc).map_err(KmsError::internal)?;
        let entry = IndexEntry::new(
            ALIAS_BY_KEY_INDEX,
            by_key(&ctx.account_id, &ctx.region, &key.row.key_id),
        );
        match self
            .store
            .update_document(&next, None, Some(&[entry]))
            .await
        {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound) => Err(not_found(ctx, &req.alias_name)),
            Err(StoreError::VersionMismatch) => Err(KmsError::new(
                Exception::Conflict,
                format!(
                    "Alias {} was changed by another request; retry.",
                    req.alias_name
                ),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// `DeleteAlias`.
    pub async fn delete_alias(
        &self,
        ctx: &RequestContext,
        req: DeleteAliasRequest,
    ) -> KmsResult<()> {
        check_alias_name(&req.alias_name)?;
        let Some(row) = self
            .store
            .get_document(ALIAS_KIND, &ctx.account_id, &ctx.region, &req.alias_name)
            .await?
        else {
            return Err(not_found(ctx, &req.alias_name));
        };
        // kms:DeleteAlias is needed on the alias (IAM) and on its key (key policy).
        let alias = alias_arn(&ctx.region, &ctx.account_id, &req.alias_name);
        self.authorize_identity_on(ctx, "kms:DeleteAlias", &alias)?;
        let target: AliasDoc = serde_json::from_str(&row.doc).map_err(KmsError::internal)?;
        let access = Access::new(KeyAction::DeleteAlias);
        match self.load(ctx, &target.target_key_id, &access).await {
            Ok(_) => {}
            Err(e) if e.is(Exception::NotFound) => {}
            Err(e) => return Err(e),
        }
        match self
            .store
            .delete_document(
                ALIAS_KIND,
                &ctx.account_id,
                &ctx.region,
                &req.alias_name,
                row.version,
            )
            .await
        {
            Ok(()) | Err(StoreError::NotFound) => Ok(()),
            Err(StoreError::VersionMismatch) => Err(KmsError::new(
                Exception::Conflict,
                format!(
                    "Alias {} was changed by another request; retry.",
                    req.alias_name
                ),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// `ListAliases`: the aliases of the account and Region, or of one key, by name.
    pub async fn list_aliases(
        &self,
        ctx: &RequestContext,
        req: ListAliasesRequest,
    ) -> KmsResult<ListAliasesResponse> {
        let size = LIST_ALIASES_PAGING.page_size(req.limit);
        let after = LIST_ALIASES_PAGING.decode(req.marker.as_deref())?;
        let rows = match &req.key_id {
            None => {
                self.store
                    .list_documents(
                        ALIAS_KIND,
                        &ctx.account_id,
                        &ctx.region,
                        after.as_deref(),
                        size + 1,
                    )
                    .await?
            }
            Some(key_ref) => {
                // ListAliases is authorized by IAM alone, even with a KeyId.
                super::refuse_alias(ctx, key_ref)?;
                let key = self.load_unauthorized(ctx, key_ref).await?;
                self.aliases_of(&key, after.as_deref(), size + 1).await?
            }
        };
        // Without a key, the predefined aliases of AWS managed keys that have no key yet are
        // listed too, without a TargetKeyId, as AWS lists them.
        let rows: Vec<Listed> = match &req.key_id {
            Some(_) => rows.into_iter().map(Listed::Stored).collect(),
            None => {
                self.with_predefined(ctx, rows, after.as_deref(), size + 1)
                    .await?
            }
        };
        let page = LIST_ALIASES_PAGING.page(rows, size, Listed::name);
        let mut aliases = Vec::with_capacity(page.items.len());
        for listed in page.items {
            let r = match listed {
                Listed::Stored(r) => r,
                Listed::Predefined(name) => {
                    aliases.push(AliasListEntry {
                        alias_arn: Some(alias_arn(&ctx.region, &ctx.account_id, &name)),
                        alias_name: Some(name),
                        ..Default::default()
                    });
                    continue;
                }
            };
            let doc: AliasDoc = serde_json::from_str(&r.doc).map_err(KmsError::internal)?;
            aliases.push(AliasListEntry {
                alias_arn: Some(alias_arn(&r.region, &r.account_id, &r.id)),
                alias_name: Some(r.id),
                target_key_id: Some(doc.target_key_id),
                creation_date: Some(Timestamp(doc.creation_date)),
                last_updated_date: Some(Timestamp(doc.last_updated_date)),
            });
        }
        Ok(ListAliasesResponse {
            aliases: Some(aliases),
            next_marker: page.next_marker,
            truncated: Some(page.truncated),
        })
    }

    /// Merges the stored aliases `rows` (a page by name after `after`) with the predefined
    /// aliases after `after` that have no stored alias yet, by name, at most `limit`.
    async fn with_predefined(
        &self,
        ctx: &RequestContext,
        rows: Vec<StoredDocument>,
        after: Option<&str>,
        limit: u32,
    ) -> KmsResult<Vec<Listed>> {
        let full_page = rows.len() >= limit as usize;
        let last_stored = rows.last().map(|r| r.id.clone());
        let mut merged: Vec<Listed> = rows.into_iter().map(Listed::Stored).collect();
        for service in super::aws_managed::AWS_MANAGED_SERVICES {
            let name = format!("{RESERVED_PREFIX}{service}");
            if after.is_some_and(|a| name.as_str() <= a) {
                continue;
            }
            if merged.iter().any(|l| l.name() == name) {
                continue;
            }
            // A name inside the stored page's range that is not in it has no stored alias;
            // past the end of a full page it might, so look.
            let beyond = full_page && last_stored.as_deref().is_some_and(|l| name.as_str() > l);
            if beyond
                && self
                    .store
                    .get_document(ALIAS_KIND, &ctx.account_id, &ctx.region, &name)
                    .await?
                    .is_some()
            {
                continue;
            }
            merged.push(Listed::Predefined(name));
        }
        merged.sort_by(|a, b| a.name().cmp(b.name()));
        merged.truncate(limit as usize);
        Ok(merged)
    }

    /// The alias documents of `key`, by name, after `after`, at most `limit`.
    /// The names of the aliases of `key` (AWS allows at most 50 per key), for the
    /// `kms:ResourceAliases` condition key.
    pub(crate) async fn alias_names_of(&self, key: &LoadedKey) -> KmsResult<Vec<String>> {
        Ok(self
            .aliases_of(key, None, 100)
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect())
    }

    async fn aliases_of(
        &self,
        key: &LoadedKey,
        after: Option<&str>,
        limit: u32,
    ) -> KmsResult<Vec<StoredDocument>> {
        let r = &key.row;
        let value = by_key(&r.account_id, &r.region, &r.key_id);
        let after = after.map(|name| IndexHit {
            value: value.clone(),
            owner: IndexOwner::Document {
                kind: ALIAS_KIND.into(),
                account_id: r.account_id.clone(),
                region: r.region.clone(),
                id: name.to_owned(),
            },
        });
        let hits = self
            .store
            .list_index(
                ALIAS_BY_KEY_INDEX,
                &value,
                Some(&value),
                after.as_ref(),
                limit,
            )
            .await?;
        let mut out = Vec::with_capacity(hits.len());
        for hit in hits {
            if let IndexOwner::Document {
                kind,
                account_id,
                region,
                id,
            } = hit.owner
            {
                if let Some(doc) = self
                    .store
                    .get_document(&kind, &account_id, &region, &id)
                    .await?
                {
                    out.push(doc);
                }
            }
        }
        Ok(out)
    }

    /// Deletes the aliases of a key whose deletion completed (best effort, as AWS: a failure is
    /// logged; the key is gone either way).
    pub(super) async fn delete_aliases_of(&self, key: &LoadedKey) {
        let docs = match self.aliases_of(key, None, 1000).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(key_arn = %key.arn(), error = %e, "listing the aliases of a deleted key failed");
                return;
            }
        };
        for d in docs {
            if let Err(e) = self
                .store
                .delete_document(ALIAS_KIND, &d.account_id, &d.region, &d.id, d.version)
                .await
            {
                tracing::warn!(alias = %d.id, error = %e, "deleting an alias of a deleted key failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_names_as_aws_checks_them() {
        assert!(check_alias_name("alias/my-key_1/x").is_ok());
        for (name, exception) in [
            ("my-key", Exception::Validation),
            ("alias/", Exception::Validation),
            ("alias/a:b", Exception::Validation),
            ("alias/aws/s3", Exception::InvalidAliasName),
        ] {
            assert_eq!(
                check_alias_name(name).unwrap_err().exception(),
                exception,
                "{name}"
            );
        }
    }
}
