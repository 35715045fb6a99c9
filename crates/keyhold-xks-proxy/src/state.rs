//! The live state built from a [`Config`]: stores with their credentials, allow-lists and rate
//! limiters, backends with their health caches, the rules and the TLS configuration. A reload
//! builds a new [`Runtime`] (reusing backends whose configuration did not change) and swaps it
//! in atomically; requests in flight finish on the one they started with.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::authz::Rules;
use crate::backend::pkcs11::Pkcs11Backend;
use crate::backend::software::SoftwareBackend;
use crate::backend::{BackendError, KeyBackend};
use crate::config::{BackendConfig, Config, ConfigError, ServerConfig};

/// A token bucket.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    /// `rate` tokens per second, at most `burst` saved up.
    pub fn new(rate: f64, burst: f64) -> Self {
        let burst = burst.max(1.0);
        Self {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes one token if there is one.
    pub fn try_acquire(&self) -> bool {
        let Ok(mut s) = self.state.lock() else {
            return true;
        };
        let now = Instant::now();
        let refill = now.duration_since(s.1).as_secs_f64() * self.rate;
        s.0 = (s.0 + refill).min(self.burst);
        s.1 = now;
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Health of one backend as reported in `ekmFleetDetails`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Round trip fine and fast.
    Active,
    /// Round trip fine but slower than `degraded_latency_ms`.
    Degraded,
    /// Round trip failed or timed out.
    Unavailable,
}

impl Health {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Active => "ACTIVE",
            Health::Degraded => "DEGRADED",
            Health::Unavailable => "UNAVAILABLE",
        }
    }
}

/// A backend's cached deep health result; the lock makes concurrent checks single-flight.
#[derive(Debug, Default)]
pub struct HealthCache {
    last: tokio::sync::Mutex<Option<(Instant, Health)>>,
}

impl HealthCache {
    /// The last result, without waiting (`None` when never checked or a check is running).
    pub fn last(&self) -> Option<Health> {
        self.last.try_lock().ok().and_then(|g| g.map(|(_, h)| h))
    }

    /// The cached result if younger than `ttl`, else a fresh round trip on the backend.
    pub async fn get(
        &self,
        backend: &dyn KeyBackend,
        ttl: Duration,
        timeout: Duration,
        degraded_after: Duration,
    ) -> Health {
        let mut last = self.last.lock().await;
        if let Some((at, health)) = *last {
            if at.elapsed() < ttl {
                return health;
            }
        }
        let started = Instant::now();
        let health = match tokio::time::timeout(timeout, backend.health()).await {
            Ok(Ok(())) if started.elapsed() > degraded_after => Health::Degraded,
            Ok(Ok(())) => Health::Active,
            Ok(Err(e)) => {
                tracing::warn!(backend = %backend.instance_id(), error = %e, "health check failed");
                Health::Unavailable
            }
            Err(_) => {
                tracing::warn!(backend = %backend.instance_id(), "health check timed out");
                Health::Unavailable
            }
        };
        *last = Some((Instant::now(), health));
        health
    }
}

/// A backend and its health cache.
#[derive(Clone)]
pub struct BackendSlot {
    /// The configuration it was built from (reused on reload when unchanged).
    pub config: BackendConfig,
    /// The backend.
    pub backend: Arc<dyn KeyBackend>,
    /// Its health cache.
    pub health: Arc<HealthCache>,
}

/// One logical key store.
pub struct Store {
    /// URI prefix (`""` or `/a/b`).
    pub prefix: String,
    /// Its backend instances, the configured `backend` first, then the replicas.
    pub backends: Vec<BackendSlot>,
    /// Allowed key ids; `None` allows every key of the backend.
    pub allowed_keys: Option<BTreeSet<String>>,
    /// Keys disabled by configuration.
    pub disabled_keys: BTreeSet<String>,
    /// Access key id → secret.
    pub credentials: BTreeMap<String, Zeroizing<String>>,
    /// Optional rate limit.
    pub limiter: Option<RateLimiter>,
}

/// Everything a request needs, swapped whole on reload.
pub struct Runtime {
    /// `[server]`.
    pub settings: ServerConfig,
    /// Stores by prefix.
    pub stores: BTreeMap<String, Arc<Store>>,
    /// Backends by name.
    pub backends: BTreeMap<String, BackendSlot>,
    /// Secondary authorization, when configured.
    pub rules: Option<Rules>,
    /// TLS configuration for new connections.
    pub tls: Arc<rustls::ServerConfig>,
}

/// Opens a backend from its configuration.
pub fn open_backend(
    name: &str,
    config: &BackendConfig,
) -> Result<Arc<dyn KeyBackend>, ConfigError> {
    match config {
        BackendConfig::Software(c) => SoftwareBackend::open(name, c)
            .map(|b| Arc::new(b) as Arc<dyn KeyBackend>)
            .map_err(|e: BackendError| ConfigError::Invalid(format!("backend {name}: {e}"))),
        BackendConfig::Pkcs11(c) => Pkcs11Backend::new(name, c)
            .map(|b| Arc::new(b) as Arc<dyn KeyBackend>)
            .map_err(|e| ConfigError::Invalid(format!("backend {name}: {e}"))),
    }
}

impl Runtime {
    /// Builds a runtime; backends of `previous` with an unchanged configuration are reused.
    pub fn build(config: &Config, previous: Option<&Runtime>) -> Result<Self, ConfigError> {
        let tls = Arc::new(crate::tls::server_config(&config.server)?);
        let rules = match &config.server.authorization_rules {
            Some(path) => Some(Rules::load(path)?),
            None => None,
        };
        let mut backends = BTreeMap::new();
        for (name, bc) in &config.backends {
            let reused = previous
                .and_then(|p| p.backends.get(name))
                .filter(|slot| &slot.config == bc)
                .cloned();
            let slot = match reused {
                Some(slot) => slot,
                None => BackendSlot {
                    config: bc.clone(),
                    backend: open_backend(name, bc)?,
                    health: Arc::new(HealthCache::default()),
                },
            };
            backends.insert(name.clone(), slot);
        }
        let mut stores = BTreeMap::new();
        for sc in &config.stores {
            let mut instances = Vec::new();
            for name in std::iter::once(&sc.backend).chain(&sc.replicas) {
                instances.push(
                    backends
                        .get(name)
                        .cloned()
                        .ok_or_else(|| ConfigError::Invalid(format!("unknown backend {name}")))?,
                );
            }
            let mut credentials = BTreeMap::new();
            for c in &sc.credentials {
                credentials.insert(c.access_key_id.clone(), Zeroizing::new(c.resolve_secret()?));
            }
            let limiter = sc
                .rate_limit_rps
                .map(|rps| RateLimiter::new(rps, sc.rate_limit_burst.unwrap_or(rps)));
            stores.insert(
                sc.prefix.clone(),
                Arc::new(Store {
                    prefix: sc.prefix.clone(),
                    backends: instances,
                    allowed_keys: sc
                        .allowed_keys
                        .as_ref()
                        .map(|k| k.iter().cloned().collect()),
                    disabled_keys: sc.disabled_keys.iter().cloned().collect(),
                    credentials,
                    limiter,
                }),
            );
        }
        Ok(Self {
            settings: config.server.clone(),
            stores,
            backends,
            rules,
            tls,
        })
    }
}

/// The runtime currently in force.
pub struct Shared {
    current: RwLock<Arc<Runtime>>,
}

impl Shared {
    /// Wraps a first runtime.
    pub fn new(runtime: Runtime) -> Self {
        Self {
            current: RwLock::new(Arc::new(runtime)),
        }
    }

    /// The runtime for a new request or connection.
    pub fn current(&self) -> Arc<Runtime> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the runtime.
    pub fn replace(&self, runtime: Runtime) {
        match self.current.write() {
            Ok(mut g) => *g = Arc::new(runtime),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(runtime),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refuses() {
        let l = RateLimiter::new(1.0, 3.0);
        assert!(l.try_acquire() && l.try_acquire() && l.try_acquire());
        assert!(!l.try_acquire());
    }
}
