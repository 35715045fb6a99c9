//! [`MemoryStore`]: the in-memory [`MetadataStore`], for tests and ephemeral use.
//!
//! It lives in `keyhold-core` (not `keyhold-store`, which depends on this crate) so that the
//! domain's own unit tests can use it: a dev-dependency on `keyhold-store` would link a second
//! copy of this crate, whose `MetadataStore` is another trait. `keyhold-store`'s conformance
//! suite runs it next to SQLite and PostgreSQL, so it behaves as they do: same claims, quota,
//! compare-and-set, paging order, conflict scopes and index semantics.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{
    IndexEntry, IndexHit, IndexOwner, MetadataStore, StoreError, StoredCustomKeyStore,
    StoredDocument, StoredKey, StoredKeyMaterial, UniqueClaim, CUSTOM_KEY_STORE_ID_SCOPE,
    DOCUMENT_ID_SCOPE, KEY_ID_SCOPE, KEY_MATERIAL_ID_SCOPE,
};

/// `(account, Region, id)`.
type Id3 = (String, String, String);
/// `(account, Region, id, sub-id)`: a key material, or a document as `(kind, account, ...)`.
type Id4 = (String, String, String, String);

/// The in-memory [`MetadataStore`]: every operation takes one mutex over all tables, checks
/// and writes, and releases it, so each is atomic and they are serializable like the SQL
/// engines' transactions. Nothing survives the value; clones of an `Arc<MemoryStore>` are
/// the "nodes" sharing it.
///
/// Use it for unit tests and throw-away servers. It is not a cache in front of a database.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-done write: every operation
        // checks everything before it changes anything.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The tables.
#[derive(Debug, Default)]
struct State {
    keys: BTreeMap<Id3, StoredKey>,
    materials: BTreeMap<Id4, StoredKeyMaterial>,
    stores: BTreeMap<Id3, StoredCustomKeyStore>,
    documents: BTreeMap<Id4, StoredDocument>,
    /// `(scope, value)` to the owners claiming it and whether each claim is exclusive.
    claims: BTreeMap<(String, String), BTreeMap<String, bool>>,
    /// `(index, value, owner identity)`, ordered as `list_index` pages, to the owner.
    index: BTreeMap<(String, String, String), IndexOwner>,
    /// Owner identity to its entries (to remove them).
    index_by_owner: HashMap<String, BTreeSet<IndexEntry>>,
    /// Lease name to holder and expiry.
    leases: HashMap<String, (String, Instant)>,
}

/// A backend failure of this engine (misuse of the API).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Misuse(&'static str);

fn id3(a: &str, r: &str, i: &str) -> Id3 {
    (a.to_owned(), r.to_owned(), i.to_owned())
}

fn id4(a: &str, b: &str, c: &str, d: &str) -> Id4 {
    (a.to_owned(), b.to_owned(), c.to_owned(), d.to_owned())
}

fn key_owner(a: &str, r: &str, k: &str) -> IndexOwner {
    IndexOwner::Key {
        account_id: a.to_owned(),
        region: r.to_owned(),
        key_id: k.to_owned(),
    }
}

fn doc_owner(kind: &str, a: &str, r: &str, id: &str) -> IndexOwner {
    IndexOwner::Document {
        kind: kind.to_owned(),
        account_id: a.to_owned(),
        region: r.to_owned(),
        id: id.to_owned(),
    }
}

/// The owner recorded on a custom key store's claims (custom key stores carry no indexes).
fn cks_owner(a: &str, r: &str, id: &str) -> String {
    format!("cks:{a}/{r}/{id}")
}

/// The compare-and-set check: `NotFound` without a row, `VersionMismatch` when the row's
/// version (`current`) is not `expected`.
fn compare_and_set(current: Option<i64>, expected: i64) -> Result<(), StoreError> {
    match current {
        None => Err(StoreError::NotFound),
        Some(v) if v != expected => Err(StoreError::VersionMismatch),
        Some(_) => Ok(()),
    }
}

impl State {
    /// Fails with the scope of the first claim that conflicts with another owner's claim.
    fn check_claims(&self, owner: &str, claims: &[UniqueClaim]) -> Result<(), StoreError> {
        for c in claims {
            let holders = self.claims.get(&(c.scope.clone(), c.value.clone()));
            let hit = holders.is_some_and(|h| {
                h.iter()
                    .any(|(who, excl)| who != owner && (c.exclusive || *excl))
            });
            if hit {
                return Err(StoreError::Conflict {
                    scope: c.scope.clone(),
                });
            }
        }
        Ok(())
    }

    /// Makes `claims` all of `owner`'s claims (repeated pairs merge, exclusive winning).
    fn replace_claims(&mut self, owner: &str, claims: &[UniqueClaim]) {
        self.claims.retain(|_, holders| {
            holders.remove(owner);
            !holders.is_empty()
        });
        for c in claims {
            let holders = self
                .claims
                .entry((c.scope.clone(), c.value.clone()))
                .or_default();
            *holders.entry(owner.to_owned()).or_insert(false) |= c.exclusive;
        }
    }

    /// Makes `entries` all of `owner`'s index entries.
    fn replace_indexes(&mut self, owner: &IndexOwner, entries: &[IndexEntry]) {
        let identity = owner.identity();
        for e in self.index_by_owner.remove(&identity).unwrap_or_default() {
            self.index.remove(&(e.index, e.value, identity.clone()));
        }
        if entries.is_empty() {
            return;
        }
        let set: BTreeSet<IndexEntry> = entries.iter().cloned().collect();
        for e in &set {
            self.index.insert(
                (e.index.clone(), e.value.clone(), identity.clone()),
                owner.clone(),
            );
        }
        self.index_by_owner.insert(identity, set);
    }

    fn keys_in_store(&self, a: &str, r: &str, id: &str) -> usize {
        self.keys
            .values()
            .filter(|k| {
                k.account_id == a && k.region == r && k.custom_key_store_id.as_deref() == Some(id)
            })
            .count()
    }
}

/// One page of `rows` (ordered by `(scope.., id)`) in `scope`, after `after`.
fn page<K: Ord, V: Clone>(
    rows: &BTreeMap<K, V>,
    in_scope: impl Fn(&V) -> bool,
    id: fn(&V) -> &str,
    after: Option<&str>,
    limit: u32,
) -> Vec<V> {
    rows.values()
        .filter(|v| in_scope(v))
        .filter(|v| after.is_none_or(|a| id(v) > a))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .cloned()
        .collect()
}

#[async_trait]
impl MetadataStore for MemoryStore {
    async fn insert_key(
        &self,
        key: &StoredKey,
        material: Option<&StoredKeyMaterial>,
        claims: &[UniqueClaim],
        indexes: &[IndexEntry],
    ) -> Result<(), StoreError> {
        if key.version != 1 {
            return Err(StoreError::VersionMismatch);
        }
        if let Some(m) = material {
            if m.account_id != key.account_id || m.region != key.region || m.key_id != key.key_id {
                return Err(StoreError::Backend(Box::new(Misuse(
                    "insert_key: the key material belongs to another key",
                ))));
            }
        }
        let owner = key_owner(&key.account_id, &key.region, &key.key_id);
        let mut s = self.state();
        s.check_claims(&owner.identity(), claims)?;
        let id = id3(&key.account_id, &key.region, &key.key_id);
        if s.keys.contains_key(&id) {
            return Err(StoreError::Conflict {
                scope: KEY_ID_SCOPE.into(),
            });
        }
        s.keys.insert(id, key.clone());
        if let Some(m) = material {
            let mid = id4(&m.account_id, &m.region, &m.key_id, &m.material_id);
            s.materials.insert(mid, m.clone());
        }
        s.replace_claims(&owner.identity(), claims);
        s.replace_indexes(&owner, indexes);
        Ok(())
    }

    async fn get_key(
        &self,
        account_id: &str,
        region: &str,
        key_id: &str,
    ) -> Result<Option<StoredKey>, StoreError> {
        Ok(self
            .state()
            .keys
            .get(&id3(account_id, region, key_id))
            .cloned())
    }

    async fn update_key(
        &self,
        key: &StoredKey,
        indexes: Option<&[IndexEntry]>,
    ) -> Result<(), StoreError> {
        self.update_key_and_materials(key, indexes, None, &[]).await
    }

    async fn update_key_and_materials(
        &self,
        key: &StoredKey,
        indexes: Option<&[IndexEntry]>,
        add: Option<&StoredKeyMaterial>,
        remove: &[String],
    ) -> Result<(), StoreError> {
        let mut s = self.state();
        let id = id3(&key.account_id, &key.region, &key.key_id);
        let current = s.keys.get(&id).map(|k| k.version);
        compare_and_set(current, key.version.wrapping_sub(1))?;
        let mid = |m: &str| id4(&key.account_id, &key.region, &key.key_id, m);
        if let Some(m) = add {
            if (m.account_id.as_str(), m.region.as_str(), m.key_id.as_str())
                != (
                    key.account_id.as_str(),
                    key.region.as_str(),
                    key.key_id.as_str(),
                )
            {
                return Err(StoreError::Backend(Box::new(Misuse(
                    "update_key_and_materials: the key material belongs to another key",
                ))));
            }
            // The removals happen first, so a material removed and added again is no conflict.
            if s.materials.contains_key(&mid(&m.material_id)) && !remove.contains(&m.material_id) {
                return Err(StoreError::Conflict {
                    scope: KEY_MATERIAL_ID_SCOPE.into(),
                });
            }
        }
        for m in remove {
            s.materials.remove(&mid(m));
        }
        if let Some(m) = add {
            s.materials.insert(mid(&m.material_id), m.clone());
        }
        if let Some(row) = s.keys.get_mut(&id) {
            row.custom_key_store_id = key.custom_key_store_id.clone();
            row.doc = key.doc.clone();
            row.version = key.version;
        }
        if let Some(entries) = indexes {
            let owner = key_owner(&key.account_id, &key.region, &key.key_id);
            s.replace_indexes(&owner, entries);
        }
        Ok(())
    }

    async fn delete_key(
        &self,
        account_id: &str,
        region: &str,
        key_id: &str,
    ) -> Result<(), StoreError> {
        let mut s = self.state();
        if s.keys.remove(&id3(account_id, region, key_id)).is_none() {
            return Err(StoreError::NotFound);
        }
        s.materials.retain(|(a, r, k, _), _| {
            (a.as_str(), r.as_str(), k.as_str()) != (account_id, region, key_id)
        });
        let owner = key_owner(account_id, region, key_id);
        s.replace_claims(&owner.identity(), &[]);
        s.replace_indexes(&owner, &[]);
        Ok(())
    }

    async fn list_keys(
        &self,
        account_id: &str,
        region: &str,
        after_key_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredKey>, StoreError> {
        let s = self.state();
        let in_scope = |k: &StoredKey| k.account_id == account_id && k.region == region;
        Ok(page(&s.keys, in_scope, |k| &k.key_id, after_key_id, limit))
    }

    async fn insert_key_material(&self, material: &StoredKeyMaterial) -> Result<(), StoreError> {
        let m = material;
        let mut s = self.state();
        if !s
            .keys
            .contains_key(&id3(&m.account_id, &m.region, &m.key_id))
        {
            return Err(StoreError::NotFound);
        }
        let mid = id4(&m.account_id, &m.region, &m.key_id, &m.material_id);
        if s.materials.contains_key(&mid) {
            return Err(StoreError::Conflict {
                scope: KEY_MATERIAL_ID_SCOPE.into(),
            });
        }
        s.materials.insert(mid, m.clone());
        Ok(())
    }

    async fn get_key_material(
        &self,
        account_id: &str,
        region: &str,
        key_id: &str,
        material_id: &str,
    ) -> Result<Option<StoredKeyMaterial>, StoreError> {
        let mid = id4(account_id, region, key_id, material_id);
        Ok(self.state().materials.get(&mid).cloned())
    }

    async fn insert_custom_key_store(
        &self,
        store: &StoredCustomKeyStore,
        claims: &[UniqueClaim],
        quota: u32,
    ) -> Result<(), StoreError> {
        let owner = cks_owner(&store.account_id, &store.region, &store.id);
        let mut s = self.state();
        s.check_claims(&owner, claims)?;
        let count = s
            .stores
            .values()
            .filter(|x| x.account_id == store.account_id && x.region == store.region)
            .count();
        if u64::try_from(count).unwrap_or(u64::MAX) >= u64::from(quota) {
            return Err(StoreError::QuotaExceeded { limit: quota });
        }
        let id = id3(&store.account_id, &store.region, &store.id);
        if s.stores.contains_key(&id) {
            return Err(StoreError::Conflict {
                scope: CUSTOM_KEY_STORE_ID_SCOPE.into(),
            });
        }
        s.stores.insert(id, store.clone());
        s.replace_claims(&owner, claims);
        Ok(())
    }

    async fn get_custom_key_store(
        &self,
        account_id: &str,
        region: &str,
        id: &str,
    ) -> Result<Option<StoredCustomKeyStore>, StoreError> {
        Ok(self
            .state()
            .stores
            .get(&id3(account_id, region, id))
            .cloned())
    }

    async fn update_custom_key_store(
        &self,
        store: &StoredCustomKeyStore,
        claims: Option<&[UniqueClaim]>,
    ) -> Result<(), StoreError> {
        let owner = cks_owner(&store.account_id, &store.region, &store.id);
        let mut s = self.state();
        let id = id3(&store.account_id, &store.region, &store.id);
        let current = s.stores.get(&id).map(|x| x.version);
        compare_and_set(current, store.version.wrapping_sub(1))?;
        if let Some(claims) = claims {
            s.check_claims(&owner, claims)?;
            s.replace_claims(&owner, claims);
        }
        if let Some(row) = s.stores.get_mut(&id) {
            // The key columns and `created_at_ms` stay as inserted, as in the SQL engines.
            row.name = store.name.clone();
            row.store_type = store.store_type.clone();
            row.connection_state = store.connection_state.clone();
            row.doc = store.doc.clone();
            row.version = store.version;
        }
        Ok(())
    }

    async fn delete_custom_key_store(
        &self,
        account_id: &str,
        region: &str,
        id: &str,
        expected_version: i64,
    ) -> Result<(), StoreError> {
        let mut s = self.state();
        let row = id3(account_id, region, id);
        compare_and_set(s.stores.get(&row).map(|x| x.version), expected_version)?;
        if s.keys_in_store(account_id, region, id) > 0 {
            return Err(StoreError::HasKeys);
        }
        s.stores.remove(&row);
        s.replace_claims(&cks_owner(account_id, region, id), &[]);
        Ok(())
    }

    async fn list_custom_key_stores(
        &self,
        account_id: &str,
        region: &str,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredCustomKeyStore>, StoreError> {
        let s = self.state();
        let in_scope = |x: &StoredCustomKeyStore| x.account_id == account_id && x.region == region;
        Ok(page(&s.stores, in_scope, |x| &x.id, after_id, limit))
    }

    async fn list_custom_key_stores_in_states(
        &self,
        states: &[&str],
    ) -> Result<Vec<StoredCustomKeyStore>, StoreError> {
        Ok(self
            .state()
            .stores
            .values()
            .filter(|x| states.contains(&x.connection_state.as_str()))
            .cloned()
            .collect())
    }

    async fn count_keys_in_custom_key_store(
        &self,
        account_id: &str,
        region: &str,
        id: &str,
    ) -> Result<u64, StoreError> {
        let n = self.state().keys_in_store(account_id, region, id);
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut s = self.state();
        let now = Instant::now();
        let free = match s.leases.get(name) {
            None => true,
            Some((h, expires)) => h == holder || *expires <= now,
        };
        if free {
            let ttl = Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0));
            let expires = now.checked_add(ttl).unwrap_or(now);
            s.leases
                .insert(name.to_owned(), (holder.to_owned(), expires));
        }
        Ok(free)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let mut s = self.state();
        if s.leases.get(name).is_some_and(|(h, _)| h == holder) {
            s.leases.remove(name);
        }
        Ok(())
    }

    async fn reset(&self) -> Result<(), StoreError> {
        *self.state() = State::default();
        Ok(())
    }

    async fn insert_document(
        &self,
        doc: &StoredDocument,
        claims: &[UniqueClaim],
        indexes: &[IndexEntry],
    ) -> Result<(), StoreError> {
        if doc.version != 1 {
            return Err(StoreError::VersionMismatch);
        }
        let owner = doc_owner(&doc.kind, &doc.account_id, &doc.region, &doc.id);
        let mut s = self.state();
        s.check_claims(&owner.identity(), claims)?;
        let id = id4(&doc.kind, &doc.account_id, &doc.region, &doc.id);
        if s.documents.contains_key(&id) {
            return Err(StoreError::Conflict {
                scope: DOCUMENT_ID_SCOPE.into(),
            });
        }
        s.documents.insert(id, doc.clone());
        s.replace_claims(&owner.identity(), claims);
        s.replace_indexes(&owner, indexes);
        Ok(())
    }

    async fn get_document(
        &self,
        kind: &str,
        account_id: &str,
        region: &str,
        id: &str,
    ) -> Result<Option<StoredDocument>, StoreError> {
        let id = id4(kind, account_id, region, id);
        Ok(self.state().documents.get(&id).cloned())
    }

    async fn list_documents(
        &self,
        kind: &str,
        account_id: &str,
        region: &str,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredDocument>, StoreError> {
        let s = self.state();
        let in_scope =
            |d: &StoredDocument| d.kind == kind && d.account_id == account_id && d.region == region;
        Ok(page(&s.documents, in_scope, |d| &d.id, after_id, limit))
    }

    async fn update_document(
        &self,
        doc: &StoredDocument,
        claims: Option<&[UniqueClaim]>,
        indexes: Option<&[IndexEntry]>,
    ) -> Result<(), StoreError> {
        let owner = doc_owner(&doc.kind, &doc.account_id, &doc.region, &doc.id);
        let mut s = self.state();
        let id = id4(&doc.kind, &doc.account_id, &doc.region, &doc.id);
        let current = s.documents.get(&id).map(|d| d.version);
        compare_and_set(current, doc.version.wrapping_sub(1))?;
        if let Some(claims) = claims {
            s.check_claims(&owner.identity(), claims)?;
            s.replace_claims(&owner.identity(), claims);
        }
        if let Some(entries) = indexes {
            s.replace_indexes(&owner, entries);
        }
        if let Some(row) = s.documents.get_mut(&id) {
            row.doc = doc.doc.clone();
            row.version = doc.version;
        }
        Ok(())
    }

    async fn delete_document(
        &self,
        kind: &str,
        account_id: &str,
        region: &str,
        id: &str,
        expected_version: i64,
    ) -> Result<(), StoreError> {
        let mut s = self.state();
        let row = id4(kind, account_id, region, id);
        compare_and_set(s.documents.get(&row).map(|d| d.version), expected_version)?;
        s.documents.remove(&row);
        let owner = doc_owner(kind, account_id, region, id);
        s.replace_claims(&owner.identity(), &[]);
        s.replace_indexes(&owner, &[]);
        Ok(())
    }

    async fn list_index(
        &self,
        index: &str,
        min_value: &str,
        max_value: Option<&str>,
        after: Option<&IndexHit>,
        limit: u32,
    ) -> Result<Vec<IndexHit>, StoreError> {
        let s = self.state();
        let start = (index.to_owned(), min_value.to_owned(), String::new());
        let after = after.map(|h| (h.value.as_str(), h.owner.identity()));
        Ok(s.index
            .range(start..)
            .take_while(|((i, v, _), _)| i == index && max_value.is_none_or(|m| v.as_str() <= m))
            .filter(|((_, v, who), _)| {
                after
                    .as_ref()
                    .is_none_or(|(av, aw)| (v.as_str(), who) > (*av, aw))
            })
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|((_, v, _), owner)| IndexHit {
                value: v.clone(),
                owner: owner.clone(),
            })
            .collect())
    }
}
