//! The shared fixture of the keys unit tests: `Kms` instances over the in-memory store, with
//! the system clock or a manual one, and requests made in one account and Region.

use std::sync::Arc;

use keyhold_crypto::RootKey;
use keyhold_kms_model::shapes::CreateKeyRequest;

use crate::custom_key_stores::{CustomKeyStoreSettings, UnconfiguredXks};
use crate::ports::clock::ManualClock;
use crate::ports::memory::MemoryStore;
use crate::{Kms, RequestContext};

/// The account the tests' requests are made in.
pub(super) const ACCOUNT: &str = "111122223333";
/// The Region the tests' requests are made in.
pub(super) const REGION: &str = "us-east-1";
/// The manual clock's start, in milliseconds since the Unix epoch.
pub(super) const START_MILLIS: i64 = 1_700_000_000_000;

/// A request context in `ACCOUNT` and `REGION`.
pub(super) fn context() -> RequestContext {
    RequestContext::new(ACCOUNT, REGION, "req-1")
}

/// A fresh in-memory store and a root key, for `Kms` instances sharing them as Keyhold nodes
/// share a database.
pub(super) fn store_and_root() -> (Arc<MemoryStore>, Arc<RootKey>) {
    let store = Arc::new(MemoryStore::new());
    let root = Arc::new(RootKey::new(&[9u8; 32]).expect("root key"));
    (store, root)
}

/// A `Kms` on the system clock over a fresh in-memory store, the store, and a request
/// context (`context()`).
pub(super) fn memory_kms() -> (Kms, Arc<MemoryStore>, RequestContext) {
    let (store, root) = store_and_root();
    let kms = Kms::new(store.clone(), root);
    (kms, store, context())
}

/// A `Kms` over the in-memory store and a manual clock; requests are made as `ctx` (tests of
/// multi-Region keys change its Region).
pub(super) struct Fixture {
    /// The service under test.
    pub(super) kms: Kms,
    /// Its metadata store.
    pub(super) store: Arc<MemoryStore>,
    /// Its clock.
    pub(super) clock: Arc<ManualClock>,
    /// Its root key.
    pub(super) root: Arc<RootKey>,
    /// The context of the tests' requests.
    pub(super) ctx: RequestContext,
}

/// A `Fixture` whose clock starts at `START_MILLIS`.
pub(super) fn fixture() -> Fixture {
    fixture_at(START_MILLIS)
}

/// A `Fixture` whose clock starts at `millis` since the Unix epoch.
pub(super) fn fixture_at(millis: i64) -> Fixture {
    let (store, root) = store_and_root();
    let clock = Arc::new(ManualClock::at_millis(millis));
    let kms = Kms::with_clock(
        store.clone(),
        root.clone(),
        Arc::new(UnconfiguredXks),
        CustomKeyStoreSettings::default(),
        clock.clone(),
    );
    Fixture {
        kms,
        store,
        clock,
        root,
        ctx: context(),
    }
}

/// Creates a symmetric encryption key with the defaults; returns its id.
pub(super) async fn create(kms: &Kms, ctx: &RequestContext) -> String {
    let made = kms.keys.create_key(ctx, CreateKeyRequest::default()).await;
    made.expect("create").key_metadata.expect("metadata").key_id
}
