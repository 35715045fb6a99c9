//! Test doubles for the custom key store unit tests: an in-memory [`MetadataStore`] with the
//! same claim, quota and compare-and-set semantics as the real stores, and a scripted
//! [`XksConnector`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::ports::xks::{
    EkmFleetMember, HealthCheckReason, XksConnector, XksFailure, XksHealth, XksRequestMetadata,
    XksTarget,
};
use crate::ports::{
    MetadataStore, StoreError, StoredCustomKeyStore, StoredKey, StoredKeyMaterial, UniqueClaim,
};

type Key3 = (String, String, String);

#[derive(Default)]
struct State {
    stores: BTreeMap<Key3, StoredCustomKeyStore>,
    keys: BTreeMap<Key3, StoredKey>,
    claims: Vec<(UniqueClaim, String)>,
    leases: HashMap<String, (String, Instant)>,
}

/// An in-memory metadata store.
#[derive(Default)]
pub struct MemStore {
    state: Mutex<State>,
}

fn k3(a: &str, r: &str, i: &str) -> Key3 {
    (a.to_string(), r.to_string(), i.to_string())
}

fn owner(a: &str, r: &str, i: &str) -> String {
    format!("cks/{a}/{r}/{i}")
}

impl State {
    fn check(&self, owner: &str, claims: &[UniqueClaim]) -> Result<(), StoreError> {
        for c in claims {
            let hit = self.claims.iter().any(|(o, who)| {
                who != owner
                    && o.scope == c.scope
                    && o.value == c.value
                    && (c.exclusive || o.exclusive)
            });
            if hit {
                return Err(StoreError::Conflict {
                    scope: c.scope.clone(),
                });
            }
        }
        Ok(())
    }
    fn replace(&mut self, owner: &str, claims: &[UniqueClaim]) {
        self.claims.retain(|(_, who)| who != owner);
        for c in claims {
            self.claims.push((c.clone(), owner.to_string()));
        }
    }
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[async_trait]
impl MetadataStore for MemStore {
    async fn insert_key(
        &self,
        key: &StoredKey,
        _material: Option<&StoredKeyMaterial>,
        _claims: &[UniqueClaim],
    ) -> Result<(), StoreError> {
        let mut s = lock(&self.state);
        s.keys
            .insert(k3(&key.account_id, &key.region, &key.key_id), key.clone());
        Ok(())
    }
    async fn get_key(&self, a: &str, r: &str, id: &str) -> Result<Option<StoredKey>, StoreError> {
        Ok(lock(&self.state).keys.get(&k3(a, r, id)).cloned())
    }
    async fn update_key(&self, _key: &StoredKey) -> Result<(), StoreError> {
        Err(StoreError::NotFound)
    }
    async fn delete_key(&self, a: &str, r: &str, id: &str) -> Result<(), StoreError> {
        lock(&self.state).keys.remove(&k3(a, r, id));
        Ok(())
    }
    async fn list_keys(
        &self,
        _a: &str,
        _r: &str,
        _after: Option<&str>,
        _limit: u32,
    ) -> Result<Vec<StoredKey>, StoreError> {
        Ok(Vec::new())
    }
    async fn insert_key_material(&self, _m: &StoredKeyMaterial) -> Result<(), StoreError> {
        Ok(())
    }
    async fn get_key_material(
        &self,
        _a: &str,
        _r: &str,
        _k: &str,
        _m: &str,
    ) -> Result<Option<StoredKeyMaterial>, StoreError> {
        Ok(None)
    }
    async fn insert_custom_key_store(
        &self,
        store: &StoredCustomKeyStore,
        claims: &[UniqueClaim],
        quota: u32,
    ) -> Result<(), StoreError> {
        let mut s = lock(&self.state);
        let o = owner(&store.account_id, &store.region, &store.id);
        s.check(&o, claims)?;
        let count = s
            .stores
            .values()
            .filter(|x| x.account_id == store.account_id && x.region == store.region)
            .count();
        if count >= quota as usize {
            return Err(StoreError::QuotaExceeded { limit: quota });
        }
        let key = k3(&store.account_id, &store.region, &store.id);
        if s.stores.contains_key(&key) {
            return Err(StoreError::Conflict {
                scope: "custom-key-store-id".into(),
            });
        }
        s.stores.insert(key, store.clone());
        s.replace(&o, claims);
        Ok(())
    }
    async fn get_custom_key_store(
        &self,
        a: &str,
        r: &str,
        id: &str,
    ) -> Result<Option<StoredCustomKeyStore>, StoreError> {
        Ok(lock(&self.state).stores.get(&k3(a, r, id)).cloned())
    }
    async fn update_custom_key_store(
        &self,
        store: &StoredCustomKeyStore,
        claims: Option<&[UniqueClaim]>,
    ) -> Result<(), StoreError> {
        let mut s = lock(&self.state);
        let key = k3(&store.account_id, &store.region, &store.id);
        match s.stores.get(&key) {
            None => return Err(StoreError::NotFound),
            Some(cur) if cur.version != store.version - 1 => {
                return Err(StoreError::VersionMismatch)
            }
            Some(_) => {}
        }
        let o = owner(&store.account_id, &store.region, &store.id);
        if let Some(c) = claims {
            s.check(&o, c)?;
            s.replace(&o, c);
        }
        s.stores.insert(key, store.clone());
        Ok(())
    }
    async fn delete_custom_key_store(
        &self,
        a: &str,
        r: &str,
        id: &str,
        expected_version: i64,
    ) -> Result<(), StoreError> {
        let mut s = lock(&self.state);
        let key = k3(a, r, id);
        match s.stores.get(&key) {
            None => return Err(StoreError::NotFound),
            Some(cur) if cur.version != expected_version => {
                return Err(StoreError::VersionMismatch)
            }
            Some(_) => {}
        }
        if s.keys.values().any(|k| {
            k.account_id == a && k.region == r && k.custom_key_store_id.as_deref() == Some(id)
        }) {
            return Err(StoreError::HasKeys);
        }
        s.stores.remove(&key);
        let o = owner(a, r, id);
        s.replace(&o, &[]);
        Ok(())
    }
    async fn list_custom_key_stores(
        &self,
        a: &str,
        r: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredCustomKeyStore>, StoreError> {
        Ok(lock(&self.state)
            .stores
            .values()
            .filter(|x| x.account_id == a && x.region == r)
            .filter(|x| after.is_none_or(|after| x.id.as_str() > after))
            .take(limit as usize)
            .cloned()
            .collect())
    }
    async fn list_custom_key_stores_in_states(
        &self,
        states: &[&str],
    ) -> Result<Vec<StoredCustomKeyStore>, StoreError> {
        Ok(lock(&self.state)
            .stores
            .values()
            .filter(|x| states.contains(&x.connection_state.as_str()))
            .cloned()
            .collect())
    }
    async fn count_keys_in_custom_key_store(
        &self,
        a: &str,
        r: &str,
        id: &str,
    ) -> Result<u64, StoreError> {
        Ok(lock(&self.state)
            .keys
            .values()
            .filter(|k| {
                k.account_id == a && k.region == r && k.custom_key_store_id.as_deref() == Some(id)
            })
            .count() as u64)
    }
    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut s = lock(&self.state);
        let now = Instant::now();
        let free = match s.leases.get(name) {
            None => true,
            Some((h, exp)) => h == holder || *exp <= now,
        };
        if free {
            let ttl = Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0));
            s.leases
                .insert(name.to_string(), (holder.to_string(), now + ttl));
        }
        Ok(free)
    }
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let mut s = lock(&self.state);
        if s.leases.get(name).is_some_and(|(h, _)| h == holder) {
            s.leases.remove(name);
        }
        Ok(())
    }
    async fn reset(&self) -> Result<(), StoreError> {
        *lock(&self.state) = State::default();
        Ok(())
    }
}

/// A connector whose answer the test sets, recording every call's reason and access key id.
pub struct StubXks {
    /// The next answers: `None` means healthy.
    pub failure: Mutex<Option<XksFailure>>,
    /// Calls made: (reason, access key id, uri path).
    pub calls: Mutex<Vec<(HealthCheckReason, String, String)>>,
    /// Delay before answering.
    pub delay: Mutex<Duration>,
}

impl Default for StubXks {
    fn default() -> Self {
        Self {
            failure: Mutex::new(None),
            calls: Mutex::new(Vec::new()),
            delay: Mutex::new(Duration::ZERO),
        }
    }
}

impl StubXks {
    /// Sets the answer of later calls.
    pub fn set(&self, failure: Option<XksFailure>) {
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = failure;
    }
    /// The calls made so far.
    pub fn calls(&self) -> Vec<(HealthCheckReason, String, String)> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl XksConnector for StubXks {
    async fn get_health_status(
        &self,
        target: &XksTarget,
        reason: HealthCheckReason,
        _metadata: &XksRequestMetadata,
    ) -> Result<XksHealth, XksFailure> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).push((
            reason,
            target.access_key_id.clone(),
            target.uri_path.clone(),
        ));
        let delay = *self.delay.lock().unwrap_or_else(|p| p.into_inner());
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if let Some(f) = self
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Err(f);
        }
        Ok(XksHealth {
            xks_proxy_fleet_size: 1,
            xks_proxy_vendor: "stub".into(),
            xks_proxy_model: "stub".into(),
            ekm_vendor: "stub".into(),
            ekm_fleet_details: vec![EkmFleetMember {
                id: "ekm-1".into(),
                model: "stub".into(),
                health_status: "ACTIVE".into(),
            }],
        })
    }
}
