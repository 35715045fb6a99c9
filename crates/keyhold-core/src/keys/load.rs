//! Loading a key for an operation: resolving the `KeyId` parameter (id, ARN, alias), reading
//! the key record (through the key cache for the cryptographic operations), and authorizing
//! the caller.

use keyhold_kms_model::Exception;

use super::resolve::KeyRef;
use super::{refuse_alias, KeyDoc, Keys, LoadedKey};
use crate::authz::{Access, Authorized};
use crate::context::RequestContext;
use crate::error::{KmsError, KmsResult};
use crate::ports::StoredKey;

impl Keys {
    /// Loads the key `key_ref` names by key id or key ARN only: the operations whose `KeyId`
    /// AWS documents as "key ID or key ARN" (managing a key, as opposed to using it) refuse
    /// an alias with `NotFoundException`, as AWS does ("Invalid keyId alias/x", unquoted, as
    /// moto's test of this case records it; a malformed key id is quoted).
    pub async fn load_key(
        &self,
        ctx: &RequestContext,
        key_ref: &str,
        access: &Access<'_>,
    ) -> KmsResult<LoadedKey> {
        refuse_alias(ctx, key_ref)?;
        self.load(ctx, key_ref, access).await
    }

    /// Loads the key `key_ref` names (id, ARN, alias name or alias ARN) for `access`, which
    /// the caller must be authorized for (key policy, identity policies, grants; see
    /// [`crate::authz`]).
    pub async fn load(
        &self,
        ctx: &RequestContext,
        key_ref: &str,
        access: &Access<'_>,
    ) -> KmsResult<LoadedKey> {
        Ok(self.load_authorized(ctx, key_ref, access).await?.0)
    }

    /// [`Keys::load`], also saying what authorized the request.
    pub(crate) async fn load_authorized(
        &self,
        ctx: &RequestContext,
        key_ref: &str,
        access: &Access<'_>,
    ) -> KmsResult<(LoadedKey, Authorized)> {
        let key = if access.action.uses_key() {
            self.load_for_crypto(ctx, key_ref).await?
        } else {
            self.load_unauthorized(ctx, key_ref).await?
        };
        let alias = match KeyRef::parse(ctx, key_ref)? {
            KeyRef::Alias { name, .. } => Some(name),
            KeyRef::Key { .. } => None,
        };
        let by = self.authorize(ctx, &key, access, alias.as_deref()).await?;
        Ok((key, by))
    }

    /// Loads the key `key_ref` names without authorizing anyone: for background work and
    /// for operations whose permission is decided otherwise (RetireGrant).
    pub(crate) async fn load_unauthorized(
        &self,
        ctx: &RequestContext,
        key_ref: &str,
    ) -> KmsResult<LoadedKey> {
        let r = KeyRef::parse(ctx, key_ref)?;
        let (account, region, key_id) = self.resolve_key_ref(&r).await?;
        let row = self
            .store
            .get_key(&account, &region, &key_id)
            .await?
            .ok_or_else(|| KmsError::new(Exception::NotFound, r.not_found_message()))?;
        let doc: KeyDoc = serde_json::from_str(&row.doc).map_err(KmsError::internal)?;
        self.with_store(row, doc).await
    }

    /// [`Keys::load_unauthorized`] for a cryptographic operation: the key record may come
    /// from the key cache (see `key_cache` for how fresh it is guaranteed to be).
    async fn load_for_crypto(&self, ctx: &RequestContext, key_ref: &str) -> KmsResult<LoadedKey> {
        let r = KeyRef::parse(ctx, key_ref)?;
        let (account, region, key_id) = self.resolve_key_ref(&r).await?;
        let cached = self
            .store
            .get_key_for_use(&account, &region, &key_id, |row| {
                serde_json::from_str::<KeyDoc>(&row.doc).map_err(KmsError::internal)
            })
            .await?
            .ok_or_else(|| KmsError::new(Exception::NotFound, r.not_found_message()))?;
        self.with_store(cached.row.clone(), cached.doc.clone())
            .await
    }

    /// The (account, Region, key id) a parsed `KeyId` names, resolving an alias.
    async fn resolve_key_ref(&self, r: &KeyRef) -> KmsResult<(String, String, String)> {
        Ok(match r {
            KeyRef::Key {
                account_id,
                region,
                key_id,
            } => (account_id.clone(), region.clone(), key_id.clone()),
            KeyRef::Alias {
                account_id,
                region,
                name,
            } => {
                let key_id = self
                    .resolve_alias(account_id, region, name)
                    .await?
                    .ok_or_else(|| KmsError::new(Exception::NotFound, r.not_found_message()))?;
                (account_id.clone(), region.clone(), key_id)
            }
        })
    }

    /// A loaded key from its row and document, with its custom key store if it has one.
    async fn with_store(&self, row: StoredKey, doc: KeyDoc) -> KmsResult<LoadedKey> {
        let store = match &row.custom_key_store_id {
            Some(id) => {
                self.custom_key_stores
                    .find(&row.account_id, &row.region, id)
                    .await?
            }
            None => None,
        };
        Ok(LoadedKey { row, doc, store })
    }
}
