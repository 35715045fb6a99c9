//! Managing a key's metadata: `EnableKey`, `DisableKey`, `UpdateKeyDescription`, the tag
//! operations (`TagResource`, `UntagResource`, `ListResourceTags`), reading its key policy
//! (`GetKeyPolicy`, `ListKeyPolicies`).
//!
//! Every change is a read-modify-write of the key's document under compare-and-set on the row
//! version, retried when another request changed the key in between, so concurrent changes
//! (two TagResource calls, say) are all kept.

use keyhold_kms_model::enums::{KeyManagerType, KeyState};
use keyhold_kms_model::shapes::{
    DisableKeyRequest, EnableKeyRequest, GetKeyPolicyRequest, GetKeyPolicyResponse,
    ListKeyPoliciesRequest, ListKeyPoliciesResponse, ListResourceTagsRequest,
    ListResourceTagsResponse, Tag, TagResourceRequest, UntagResourceRequest,
    UpdateKeyDescriptionRequest,
};
use keyhold_kms_model::Exception;

use super::crypto_ops::describe_state;
use super::states::{state_check, KeyOperationFamily, StateCheck};
use super::{KeyDoc, Keys, LoadedKey};
use crate::authz::{Access, KeyAction};
use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};
use crate::paging::Paging;
use crate::ports::{StoreError, StoredKeyMaterial};

/// The only key policy name KMS has.
pub const DEFAULT_POLICY_NAME: &str = "default";
/// Most tags a key may carry (AWS's quota).
pub const MAX_TAGS: usize = 50;
/// How often a change is retried when the key changed under it.
const WRITE_ATTEMPTS: usize = 8;

/// ListResourceTags pages by tag key.
const LIST_TAGS_PAGING: Paging = Paging {
    kind: "t1",
    default_limit: 50,
    max_limit: 50,
};

/// Checks tags as CreateKey and TagResource accept them: no reserved `aws:` prefix, each key
/// once. (Lengths are the model's constraints, checked before this.)
pub(crate) fn check_tags(tags: &[Tag]) -> KmsResult<()> {
    for (i, t) in tags.iter().enumerate() {
        if t.tag_key.starts_with("aws:") {
            return Err(KmsError::new(
                Exception::Tag,
                "Tags beginning with aws: are reserved".into(),
            ));
        }
        if tags[..i].iter().any(|o| o.tag_key == t.tag_key) {
            return Err(KmsError::new(
                Exception::Tag,
                format!("Duplicate tag key {}", t.tag_key),
            ));
        }
    }
    Ok(())
}

/// A change of a key's material rows, written with its document by
/// [`Keys::change_materials`].
#[derive(Default)]
pub(super) struct MaterialChange {
    /// A material row to add.
    pub add: Option<StoredKeyMaterial>,
    /// Ids of material rows to remove.
    pub remove: Vec<String>,
}

impl Keys {
    /// Loads `key_ref`, refuses it as `family` refuses its state, applies `change` to its
    /// document and writes it with compare-and-set, retrying when the key changed meanwhile.
    /// Returns the key as written.
    pub(super) async fn change_key(
        &self,
        ctx: &RequestContext,
        key_ref: &str,
        access: &Access<'_>,
        family: KeyOperationFamily,
        change: impl Fn(&LoadedKey, &mut KeyDoc) -> KmsResult<()>,
    ) -> KmsResult<LoadedKey> {
        self.change_materials(ctx, key_ref, Some(access), family, |key, doc| {
            change(key, doc).map(|()| MaterialChange::default())
        })
        .await
    }

    /// Loads `key_ref`, refuses it as `family` refuses its state, applies `change` to its
    /// document and writes the document with the material rows `change` adds and removes in
    /// one compare-and-set, retrying when the key changed meanwhile. Returns the key as
    /// written.
    pub(super) async fn change_materials(
        &self,
        ctx: &RequestContext,
        key_ref: &str,
        access: Option<&Access<'_>>,
        family: KeyOperationFamily,
        mut change: impl FnMut(&LoadedKey, &mut KeyDoc) -> KmsResult<MaterialChange>,
    ) -> KmsResult<LoadedKey> {
        for _ in 0..WRITE_ATTEMPTS {
            // `None`: background work (e.g. the expiry sweep), which no caller authorizes.
            let key = match access {
                Some(access) => self.load_key(ctx, key_ref, access).await?,
                None => {
                    super::refuse_alias(ctx, key_ref)?;
                    self.load_unauthorized(ctx, key_ref).await?
                }
            };
            require_state(&key, family)?;
            let mut doc = key.doc.clone();
            let materials = change(&key, &mut doc)?;
            super::multi_region_sync::note_shared_change(&key.doc, &mut doc);
            let mut row = key.row.clone();
            row.version += 1;
            row.doc = serde_json::to_string(&doc).map_err(KmsError::internal)?;
            match self
                .store
                .update_key_and_materials(
                    &row,
                    Some(&super::indexes_of(&doc)),
                    materials.add.as_ref(),
                    &materials.remove,
                )
                .await
            {
                Ok(()) => {
                    return Ok(LoadedKey {
                        row,
                        doc,
                        store: key.store,
                    })
                }
                Err(StoreError::VersionMismatch) => continue,
                Err(StoreError::NotFound) => {
                    return Err(KmsError::new(
                        Exception::NotFound,
                        format!("Key '{}' does not exist", key.arn()),
                    ))
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(KmsError::internal(std::io::Error::other(
            "the key kept changing while its key material was being changed",
        )))
    }

    /// `EnableKey`.
    pub async fn enable_key(&self, ctx: &RequestContext, req: EnableKeyRequest) -> KmsResult<()> {
        self.set_enabled(ctx, &req.key_id, KeyState::Enabled).await
    }

    /// `DisableKey`.
    pub async fn disable_key(&self, ctx: &RequestContext, req: DisableKeyRequest) -> KmsResult<()> {
        self.set_enabled(ctx, &req.key_id, KeyState::Disabled).await
    }

    async fn set_enabled(
        &self,
        ctx: &RequestContext,
        key_ref: &str,
        to: KeyState,
    ) -> KmsResult<()> {
        let action = if to == KeyState::Enabled {
            KeyAction::EnableKey
        } else {
            KeyAction::DisableKey
        };
        self.change_key(
            ctx,
            key_ref,
            &Access::new(action),
            KeyOperationFamily::EnableDisable,
            |key, doc| {
                require_customer_managed(key)?;
                doc.key_state = to;
                Ok(())
            },
        )
        .await?;
        Ok(())
    }

    /// `UpdateKeyDescription`.
    pub async fn update_key_description(
        &self,
        ctx: &RequestContext,
        req: UpdateKeyDescriptionRequest,
    ) -> KmsResult<()> {
        self.change_key(
            ctx,
            &req.key_id,
            &Access::new(KeyAction::UpdateKeyDescription),
            KeyOperationFamily::ManageMetadata,
            |key, doc| {
                require_customer_managed(key)?;
                doc.description.clone_from(&req.description);
                Ok(())
            },
        )
        .await?;
        Ok(())
    }

    /// `TagResource`: adds tags, replacing the value of a key that is already there.
    pub async fn tag_resource(
        &self,
        ctx: &RequestContext,
        req: TagResourceRequest,
    ) -> KmsResult<()> {
        check_tags(&req.tags)?;
        let access = Access::new(KeyAction::TagResource).with_multi_fact(
            "aws:TagKeys",
            req.tags.iter().map(|t| t.tag_key.clone()).collect(),
        );
        let family = KeyOperationFamily::ManageMetadata;
        self.change_key(ctx, &req.key_id, &access, family, |key, doc| {
            require_customer_managed(key)?;
            let mut tags = doc.tags.clone();
            for t in &req.tags {
                match tags.iter_mut().find(|(k, _)| *k == t.tag_key) {
                    Some(slot) => slot.1.clone_from(&t.tag_value),
                    None => tags.push((t.tag_key.clone(), t.tag_value.clone())),
                }
            }
            if tags.len() > MAX_TAGS {
                return Err(KmsError::new(
                    Exception::Tag,
                    format!("A KMS key can have at most {MAX_TAGS} tags; {} has {} and the request would make it {}.", key.arn(), doc.tags.len(), tags.len()),
                ));
            }
            doc.tags = tags;
            Ok(())
        })
        .await?;
        Ok(())
    }

    /// `UntagResource`: removes the tags with these keys; keys that are not there are ignored.
    pub async fn untag_resource(
        &self,
        ctx: &RequestContext,
        req: UntagResourceRequest,
    ) -> KmsResult<()> {
        if req.tag_keys.iter().any(|k| k.starts_with("aws:")) {
            return Err(KmsError::new(
                Exception::Tag,
                "Tags beginning with aws: are reserved".into(),
            ));
        }
        self.change_key(
            ctx,
            &req.key_id,
            &Access::new(KeyAction::UntagResource)
                .with_multi_fact("aws:TagKeys", req.tag_keys.clone()),
            KeyOperationFamily::ManageMetadata,
            |key, doc| {
                require_customer_managed(key)?;
                doc.tags.retain(|(k, _)| !req.tag_keys.contains(k));
                Ok(())
            },
        )
        .await?;
        Ok(())
    }

    /// `ListResourceTags`, in the order the tags were added, paged by tag key.
    pub async fn list_resource_tags(
        &self,
        ctx: &RequestContext,
        req: ListResourceTagsRequest,
    ) -> KmsResult<ListResourceTagsResponse> {
        let size = LIST_TAGS_PAGING.page_size(req.limit);
        let after = LIST_TAGS_PAGING.decode(req.marker.as_deref())?;
        let access = Access::new(KeyAction::ListResourceTags);
        let key = self.load_key(ctx, &req.key_id, &access).await?;
        let start = match after {
            None => 0,
            Some(last) => match key.doc.tags.iter().position(|(k, _)| *k == last) {
                Some(i) => i + 1,
                None => return Err(crate::paging::invalid_marker()),
            },
        };
        let rest: Vec<&(String, String)> = key.doc.tags.iter().skip(start).collect();
        let page = LIST_TAGS_PAGING.page(rest, size, |(k, _)| k.as_str());
        Ok(ListResourceTagsResponse {
            tags: Some(
                page.items
                    .into_iter()
                    .map(|(k, v)| Tag {
                        tag_key: k.clone(),
                        tag_value: v.clone(),
                    })
                    .collect(),
            ),
            next_marker: page.next_marker,
            truncated: Some(page.truncated),
        })
    }

    /// `GetKeyPolicy`: the key's policy document (AWS's default policy unless one was given).
    pub async fn get_key_policy(
        &self,
        ctx: &RequestContext,
        req: GetKeyPolicyRequest,
    ) -> KmsResult<GetKeyPolicyResponse> {
        let access = Access::new(KeyAction::GetKeyPolicy);
        let key = self.load_key(ctx, &req.key_id, &access).await?;
        require_default_policy_name(req.policy_name.as_deref())?;
        Ok(GetKeyPolicyResponse {
            policy: Some(key.doc.policy.clone()),
            policy_name: Some(DEFAULT_POLICY_NAME.to_owned()),
        })
    }

    /// `ListKeyPolicies`: every key has exactly one policy, `default`.
    pub async fn list_key_policies(
        &self,
        ctx: &RequestContext,
        req: ListKeyPoliciesRequest,
    ) -> KmsResult<ListKeyPoliciesResponse> {
        let access = Access::new(KeyAction::ListKeyPolicies);
        self.load_key(ctx, &req.key_id, &access).await?;
        Ok(ListKeyPoliciesResponse {
            policy_names: Some(vec![DEFAULT_POLICY_NAME.to_owned()]),
            next_marker: None,
            truncated: Some(false),
        })
    }
}

/// Refuses a `PolicyName` other than `default` (absent means `default`): KMS keys have no
/// other policy.
pub(super) fn require_default_policy_name(name: Option<&str>) -> KmsResult<()> {
    match name.unwrap_or(DEFAULT_POLICY_NAME) {
        DEFAULT_POLICY_NAME => Ok(()),
        other => Err(KmsError::new(
            Exception::NotFound,
            format!("No such policy exists: {other}. The only valid policy name is default."),
        )),
    }
}

/// The key-state check of `family`, with AWS's "<arn> is <state>." message.
pub(super) fn require_state(key: &LoadedKey, family: KeyOperationFamily) -> KmsResult<()> {
    let state = key.key_state();
    match state_check(family, state) {
        StateCheck::Allowed => Ok(()),
        StateCheck::Refused(e) => Err(KmsError::new(
            e,
            format!("{} is {}.", key.arn(), describe_state(state)),
        )),
    }
}

/// AWS managed keys are managed by AWS: their state, description and tags cannot be changed.
pub(super) fn require_customer_managed(key: &LoadedKey) -> KmsResult<()> {
    if key.doc.key_manager == KeyManagerType::Aws {
        return Err(KmsError::new(
            Exception::UnsupportedOperation,
            format!("{} is an AWS managed key.", key.arn()),
        ));
    }
    Ok(())
}
