//! The snapshot the services read: every live tenant in memory with its signer and verifier
//! already parsed, found by partner API key id, by slug or by id. No database read and no key
//! parsing on the request path. A tenant with a front door is also found by its front door's id
//! ([`Snapshot::by_front_door`]).
//!
//! It is refreshed on change through Postgres LISTEN/NOTIFY (a tenant's version bump notifies its
//! id), with a periodic version comparison as the safety net and after every reconnect.
//! Suspended tenants stay in it, flagged, so the reconciler can still settle their open trades;
//! deleted ones leave it.
//!
//! # Layout
//! - [`mod@self`]: [`Tenant`], [`ApiKey`], [`Snapshot`] and the shared handle [`Snapshots`].
//! - [`front_door`]: [`FrontDoor`], the keys of a tenant's Alipay-compatible gateway.do.
//! - [`load`]: reading, decrypting and parsing tenants from Postgres.
//! - [`refresh`]: the LISTEN loop and the periodic safety net.

pub mod front_door;
pub mod load;
pub mod refresh;

use std::collections::HashMap;
use std::sync::Arc;

use alipay::{Signer, Verifier};
use arc_swap::ArcSwap;
use aws_lc_rs::hmac;
use time::OffsetDateTime;
use tokio::sync::watch;
use uuid::Uuid;

use crate::model::{Dialect, Status};
use crate::registry::Settings;
use crate::secret::Secret;

pub use front_door::{FrontDoor, PlatformKey, PosKey};
pub use load::Loader;
pub use refresh::{RefreshConfig, start};

/// A tenant as the services use it: its settings with its keys parsed.
#[derive(Debug)]
pub struct Tenant {
    pub settings: Settings,
    /// The `gateway.do` its calls go to.
    pub gateway_url: String,
    /// Signs requests to Alipay: the app private key, or the MD5 key. `None` until set.
    pub signer: Option<Signer>,
    /// Checks Alipay's answers and notifications: Alipay's public key, or the MD5 key.
    pub alipay_verifier: Option<Arc<Verifier>>,
    /// Signs the webhooks sent to the merchant.
    pub webhook_secret: Option<Secret>,
    /// The Alipay-compatible gateway.do its POS software may call, if enabled.
    pub front_door: Option<FrontDoor>,
}

impl std::ops::Deref for Tenant {
    type Target = Settings;
    fn deref(&self) -> &Settings {
        &self.settings
    }
}

impl Tenant {
    /// The tenant's dialect, as the protocol crate names it.
    pub fn alipay_dialect(&self) -> alipay::unified::Dialect {
        match self.dialect {
            crate::model::Dialect::Openapi => alipay::unified::Dialect::OpenApi,
            crate::model::Dialect::Mapi => alipay::unified::Dialect::Mapi,
        }
    }

    /// MAPI `extend_info`: the secondary merchant, and the store when the tenant knows it.
    pub fn extend_info(&self, store_id: Option<&str>) -> Option<String> {
        let merchant = self.secondary_merchant.as_ref()?;
        let mut info = serde_json::json!({
            "secondary_merchant_id": merchant.merchant_id,
            "secondary_merchant_name": merchant.name,
            "secondary_merchant_industry": merchant.mcc,
        });
        if let Some(id) = store_id {
            info["store_id"] = serde_json::json!(id);
            if let Some(store) = merchant.stores.iter().find(|s| s.id == id) {
                info["store_name"] = serde_json::json!(store.name);
            }
        }
        Some(info.to_string())
    }

    /// The tenant as the one calling Alipay; `None` until its keys are set.
    pub fn merchant<'a>(
        &'a self,
        notify_url: Option<&'a str>,
        extend_info: Option<&'a str>,
    ) -> Option<alipay::unified::Merchant<'a>> {
        Some(alipay::unified::Merchant {
            dialect: self.alipay_dialect(),
            id: &self.alipay_id,
            seller_id: self.seller_id.as_deref(),
            signer: self.signer.as_ref()?,
            notify_url,
            extend_info,
        })
    }

    /// Whether the tenant can call Alipay (it has its signer and verifier).
    pub fn is_ready(&self) -> bool {
        self.signer.is_some() && self.alipay_verifier.is_some()
    }

    pub fn is_active(&self) -> bool {
        self.status == Status::Active
    }
}

/// A partner API credential.
#[derive(Debug)]
pub struct ApiKey {
    pub key_id: String,
    pub tenant_id: Uuid,
    /// The secret, as the HMAC-SHA256 key its requests are checked with (set up once, here).
    pub hmac: hmac::Key,
    /// Set once the credential was rotated out: it stops working then.
    pub expires_at: Option<OffsetDateTime>,
}

impl ApiKey {
    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_none_or(|end| now < end)
    }
}

/// A tenant as loaded, with its API credentials.
pub type Loaded = (Tenant, Vec<ApiKey>);

/// One tenant's new state: loaded, or gone (`None`).
pub type Change = (Uuid, Option<Loaded>);

/// One consistent view of all tenants.
#[derive(Debug, Default)]
pub struct Snapshot {
    tenants: HashMap<Uuid, Arc<Tenant>>,
    by_slug: HashMap<String, Uuid>,
    keys: HashMap<String, Arc<ApiKey>>,
    keys_of: HashMap<Uuid, Vec<String>>,
    /// How many tenants each Alipay account has ([`crate::registry::Settings::alipay_account`]).
    accounts: HashMap<String, usize>,
    /// Tenants by front door id, one map per dialect (looked up by `&str`, no allocation).
    openapi_doors: HashMap<String, Uuid>,
    mapi_doors: HashMap<String, Uuid>,
}

impl Snapshot {
    pub fn len(&self) -> usize {
        self.tenants.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty()
    }

    pub fn by_id(&self, id: &Uuid) -> Option<&Arc<Tenant>> {
        self.tenants.get(id)
    }

    pub fn by_slug(&self, slug: &str) -> Option<&Arc<Tenant>> {
        self.by_slug.get(slug).and_then(|id| self.tenants.get(id))
    }

    /// The tenant whose front door in `dialect` has `id` (its app id or partner), suspended or
    /// not (check [`Tenant::is_active`]).
    pub fn by_front_door(&self, dialect: Dialect, id: &str) -> Option<&Arc<Tenant>> {
        self.doors(dialect).get(id).and_then(|tenant| self.tenants.get(tenant))
    }

    fn doors(&self, dialect: Dialect) -> &HashMap<String, Uuid> {
        match dialect {
            Dialect::Openapi => &self.openapi_doors,
            Dialect::Mapi => &self.mapi_doors,
        }
    }

    fn doors_mut(&mut self, dialect: Dialect) -> &mut HashMap<String, Uuid> {
        match dialect {
            Dialect::Openapi => &mut self.openapi_doors,
            Dialect::Mapi => &mut self.mapi_doors,
        }
    }

    /// The credential `key_id` and its tenant, if the credential is still valid at `now`.
    pub fn authenticate(&self, key_id: &str, now: OffsetDateTime) -> Option<(&Arc<Tenant>, &ApiKey)> {
        let key = self.keys.get(key_id).filter(|k| k.is_valid_at(now))?;
        Some((self.tenants.get(&key.tenant_id)?, key))
    }

    /// Whether another tenant shares `tenant`'s Alipay account (its trade numbers' space).
    pub fn shares_account(&self, tenant: &Tenant) -> bool {
        self.accounts.get(&tenant.alipay_account()).is_some_and(|n| *n > 1)
    }

    pub fn tenants(&self) -> impl Iterator<Item = &Arc<Tenant>> {
        self.tenants.values()
    }

    /// `(id, version)` of every tenant, for the safety-net comparison.
    pub fn versions(&self) -> HashMap<Uuid, i64> {
        self.tenants.iter().map(|(id, t)| (*id, t.version)).collect()
    }

    /// A copy with `updates` applied: `Some` replaces or adds a tenant with its keys, `None` drops it.
    pub fn with_changes(&self, updates: Vec<Change>) -> Snapshot {
        let mut next = Snapshot {
            tenants: self.tenants.clone(),
            by_slug: self.by_slug.clone(),
            keys: self.keys.clone(),
            keys_of: self.keys_of.clone(),
            accounts: self.accounts.clone(),
            openapi_doors: self.openapi_doors.clone(),
            mapi_doors: self.mapi_doors.clone(),
        };
        for (id, update) in updates {
            next.remove(&id);
            if let Some((tenant, keys)) = update {
                next.insert(tenant, keys);
            }
        }
        next
    }

    fn remove(&mut self, id: &Uuid) {
        if let Some(old) = self.tenants.remove(id) {
            self.by_slug.remove(&old.slug);
            if let Some(door) = &old.front_door {
                // Only its own entry: a tenant loaded in the same batch may hold the id now.
                let doors = self.doors_mut(old.dialect);
                if doors.get(&door.id) == Some(id) {
                    doors.remove(&door.id);
                }
            }
            let account = old.alipay_account();
            if let Some(n) = self.accounts.get_mut(&account) {
                *n -= 1;
                if *n == 0 {
                    self.accounts.remove(&account);
                }
            }
        }
        for key_id in self.keys_of.remove(id).unwrap_or_default() {
            self.keys.remove(&key_id);
        }
    }

    pub(crate) fn insert(&mut self, tenant: Tenant, keys: Vec<ApiKey>) {
        let id = tenant.id;
        self.by_slug.insert(tenant.slug.clone(), id);
        if let Some(door) = &tenant.front_door {
            let door_id = door.id.clone();
            self.doors_mut(tenant.dialect).insert(door_id, id);
        }
        *self.accounts.entry(tenant.alipay_account()).or_default() += 1;
        self.tenants.insert(id, Arc::new(tenant));
        let ids = keys.iter().map(|k| k.key_id.clone()).collect();
        for key in keys {
            self.keys.insert(key.key_id.clone(), Arc::new(key));
        }
        self.keys_of.insert(id, ids);
    }
}

/// The current snapshot, swapped atomically on every change.
pub struct Snapshots {
    current: ArcSwap<Snapshot>,
    generation: watch::Sender<u64>,
}

impl Snapshots {
    pub fn new(initial: Snapshot) -> Self {
        Snapshots { current: ArcSwap::from_pointee(initial), generation: watch::Sender::new(0) }
    }

    /// The snapshot now (cheap: one atomic load).
    pub fn current(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Changes when a new snapshot is published (for tests and metrics).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    pub(crate) fn publish(&self, next: Snapshot) {
        self.current.store(Arc::new(next));
        self.generation.send_modify(|g| *g += 1);
    }
}
