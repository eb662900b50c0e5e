//! The tenant registry: every ops operation, shared by the CLI and the admin API. Each one validates
//! everything first, then writes in one transaction with its audit row (never a secret).
//!
//! # Layout
//! - [`mod@self`]: errors, [`Settings`], [`TenantView`], reads ([`Registry::list`], [`Registry::show`]).
//! - `write`: create, update, status, keys, master key rotation, delete.
//! - `keys`: the tenant's own Alipay keys as ops give them.
//! - `credentials`: partner API credentials (issue, rotate with an overlap, revoke).
//! - `import`: create, or bring to what a list says (a chain's onboarding, line by line).
//! - [`front_door`]: the Alipay-compatible gateway.do a tenant's POS may call, and its keys.

mod credentials;
pub mod front_door;
mod import;
mod keys;
mod write;

use std::sync::Arc;

use alipay::SignType;
use deadpool_postgres::{GenericClient, Pool};
use serde::Serialize;
use time::OffsetDateTime;
use tokio_postgres::Row;
use uuid::Uuid;

pub use credentials::{IssuedCredential, MAX_OVERLAP, Revoked, parse_overlap};
pub use front_door::{FrontDoorInput, FrontDoorIssued, FrontDoorView, PlatformKeyView, PosKeySource, PosKeyView};
pub use import::Imported;
pub use keys::{AppKeySource, KeyInput};
pub use write::{Created, MasterKeyRotation};

use crate::model::{Dialect, Environment, Invalid, Limits, SecondaryMerchant, Status};
use crate::vault::{Keyring, VaultError};

/// Who is at fault when an operation fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request is wrong (bad input, unknown tenant, a conflict): do not retry as is.
    Caller,
    /// We could not do it (database, configuration): a retry may succeed.
    Ours,
}

/// An operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error("no tenant `{0}`")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("tenant `{slug}` has no live API key `{key_id}`")]
    NoApiKey { slug: String, key_id: String },
    #[error("tenant `{0}` has no front door")]
    NoFrontDoor(String),
    #[error("key vault: {0}")]
    Vault(#[from] VaultError),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("database: {0}")]
    Connect(#[from] pgtls::Error),
    #[error("database pool: {0}")]
    Pool(String),
}

impl RegistryError {
    pub fn fault(&self) -> Fault {
        match self {
            RegistryError::Invalid(_)
            | RegistryError::NotFound(_)
            | RegistryError::NoApiKey { .. }
            | RegistryError::NoFrontDoor(_)
            | RegistryError::Conflict(_) => Fault::Caller,
            RegistryError::Vault(_) | RegistryError::Db(_) | RegistryError::Connect(_) | RegistryError::Pool(_) => {
                Fault::Ours
            }
        }
    }
}

impl From<deadpool_postgres::PoolError> for RegistryError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        RegistryError::Pool(error.to_string())
    }
}

/// What the keys of a tenant are (fingerprints of public keys; never a secret).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeyStatus {
    /// SHA-256 of the app public key, if an app private key is set.
    pub app_key: Option<String>,
    /// SHA-256 of Alipay's public key, if set.
    pub alipay_public_key: Option<String>,
    pub md5_key: bool,
}

/// One partner API credential (its id; the secret is shown once, at issue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialView {
    pub key_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the credential stops working (set when it was rotated out).
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// What a tenant is configured as: everything but its secrets and key material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub status: Status,
    pub dialect: Dialect,
    /// `app_id` (OpenAPI) or `partner` (MAPI).
    pub alipay_id: String,
    /// MAPI `alipay_seller_id`, when it is not the partner.
    pub seller_id: Option<String>,
    #[serde(serialize_with = "sign_type_text")]
    pub sign_type: SignType,
    pub environment: Environment,
    pub limits: Limits,
    pub webhook_url: Option<String>,
    pub secondary_merchant: Option<SecondaryMerchant>,
    /// Bumped by every change; the snapshots compare it.
    pub version: i64,
}

impl Settings {
    /// The `gateway.do` its calls go to.
    pub fn gateway_url(&self) -> &str {
        self.environment.gateway_url(self.dialect)
    }

    /// The Alipay account its trade numbers live in (`openapi:<app_id>`, `mapi:<partner>`):
    /// Alipay knows a trade by this and its `out_trade_no`, so several tenants on one account
    /// share one space of numbers.
    pub fn alipay_account(&self) -> String {
        alipay_account(self.dialect, &self.alipay_id)
    }
}

/// [`Settings::alipay_account`] of a dialect and id (as the ledger's migration writes it too).
pub fn alipay_account(dialect: Dialect, alipay_id: &str) -> String {
    format!("{}:{alipay_id}", dialect.as_str())
}

fn sign_type_text<S: serde::Serializer>(sign_type: &SignType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(sign_type.as_str())
}

/// A tenant as ops see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantView {
    #[serde(flatten)]
    pub settings: Settings,
    pub gateway_url: String,
    pub keys: KeyStatus,
    /// Whether the tenant has every key it needs to call Alipay.
    pub ready: bool,
    pub credentials: Vec<CredentialView>,
    /// The Alipay-compatible gateway.do its POS software may call, if enabled.
    pub front_door: Option<FrontDoorView>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl std::ops::Deref for TenantView {
    type Target = Settings;
    fn deref(&self) -> &Settings {
        &self.settings
    }
}

/// The columns every tenant read selects, in [`TenantRow::from_row`] order.
pub(crate) const TENANT_COLUMNS: &str = "id, slug, display_name, status, dialect, alipay_id, seller_id, sign_type, \
    environment, upstream_url, pay_rate, pay_burst, other_rate, webhook_url, secondary_merchant, master_key_id, \
    wrapped_data_key, version, created_at, updated_at";

/// A tenant row (live: not deleted).
#[derive(Debug, Clone)]
pub(crate) struct TenantRow {
    pub settings: Settings,
    pub master_key_id: String,
    pub wrapped_data_key: Vec<u8>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl std::ops::Deref for TenantRow {
    type Target = Settings;
    fn deref(&self) -> &Settings {
        &self.settings
    }
}

impl std::ops::DerefMut for TenantRow {
    fn deref_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }
}

fn corrupt(what: &str) -> RegistryError {
    RegistryError::Invalid(Invalid(format!("stored tenant has an invalid {what}")))
}

fn rate(row: &Row, column: &str) -> Result<u32, RegistryError> {
    u32::try_from(row.try_get::<_, i32>(column)?).map_err(|_| corrupt(column))
}

impl TenantRow {
    pub(crate) fn from_row(row: &Row) -> Result<Self, RegistryError> {
        let status = match row.try_get::<_, &str>("status")? {
            "active" => Status::Active,
            "suspended" => Status::Suspended,
            _ => return Err(corrupt("status")),
        };
        let dialect: Dialect = row.try_get::<_, &str>("dialect")?.parse().map_err(|_| corrupt("dialect"))?;
        let sign_type: SignType = row.try_get::<_, &str>("sign_type")?.parse().map_err(|_| corrupt("sign type"))?;
        let environment = Environment::from_parts(row.try_get("environment")?, row.try_get("upstream_url")?)
            .map_err(|_| corrupt("environment"))?;
        let secondary_merchant = row
            .try_get::<_, Option<serde_json::Value>>("secondary_merchant")?
            .map(serde_json::from_value)
            .transpose()
            .map_err(|_| corrupt("secondary merchant"))?;
        let settings = Settings {
            id: row.try_get("id")?,
            slug: row.try_get("slug")?,
            name: row.try_get("display_name")?,
            status,
            dialect,
            alipay_id: row.try_get("alipay_id")?,
            seller_id: row.try_get("seller_id")?,
            sign_type,
            environment,
            limits: Limits {
                pay_rate: rate(row, "pay_rate")?,
                pay_burst: rate(row, "pay_burst")?,
                other_rate: rate(row, "other_rate")?,
            },
            webhook_url: row.try_get("webhook_url")?,
            secondary_merchant,
            version: row.try_get("version")?,
        };
        Ok(TenantRow {
            settings,
            master_key_id: row
                .try_get::<_, Option<String>>("master_key_id")?
                .ok_or_else(|| corrupt("master key id"))?,
            wrapped_data_key: row
                .try_get::<_, Option<Vec<u8>>>("wrapped_data_key")?
                .ok_or_else(|| corrupt("data key"))?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// The registry: a pool and the master key ring (reads need no master key; changes do).
#[derive(Clone)]
pub struct Registry {
    pool: Pool,
    keyring: Option<Arc<Keyring>>,
}

impl Registry {
    pub fn new(pool: Pool, keyring: Option<Arc<Keyring>>) -> Self {
        Registry { pool, keyring }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub(crate) fn keyring(&self) -> Result<&Keyring, RegistryError> {
        self.keyring.as_deref().ok_or_else(|| {
            VaultError::Keyring("no master key configured (ACQ_MASTER_KEYS or --master-key-file)".into()).into()
        })
    }

    /// Every live tenant, by slug.
    pub async fn list(&self) -> Result<Vec<TenantView>, RegistryError> {
        let client = self.pool.get().await?;
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE status <> 'deleted' ORDER BY slug");
        let rows = client.query(&sql, &[]).await?;
        let tenants = rows.iter().map(TenantRow::from_row).collect::<Result<Vec<_>, _>>()?;
        views(&client, tenants).await
    }

    /// One live tenant.
    pub async fn show(&self, slug: &str) -> Result<TenantView, RegistryError> {
        let client = self.pool.get().await?;
        let tenant = find(&client, slug, false).await?;
        view(&client, tenant).await
    }
}

/// Reads a live tenant by slug (locking it for the transaction if `for_update`).
pub(crate) async fn find(
    client: &impl GenericClient,
    slug: &str,
    for_update: bool,
) -> Result<TenantRow, RegistryError> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE slug = $1 AND status <> 'deleted'{lock}");
    let row = client.query_opt(&sql, &[&slug]).await?.ok_or_else(|| RegistryError::NotFound(slug.to_owned()))?;
    TenantRow::from_row(&row)
}

pub(crate) async fn view(client: &impl GenericClient, tenant: TenantRow) -> Result<TenantView, RegistryError> {
    let slug = tenant.slug.clone();
    views(client, vec![tenant]).await?.pop().ok_or(RegistryError::NotFound(slug))
}

/// The views of `tenants`, with three more queries in all (not three per tenant).
pub(crate) async fn views(
    client: &impl GenericClient,
    tenants: Vec<TenantRow>,
) -> Result<Vec<TenantView>, RegistryError> {
    let ids: Vec<Uuid> = tenants.iter().map(|t| t.id).collect();
    let secrets = client
        .query(
            "SELECT DISTINCT ON (tenant_id, purpose) tenant_id, purpose, fingerprint FROM tenant_secrets \
             WHERE tenant_id = ANY($1) AND purpose NOT IN ('front_door_pos_key', 'front_door_platform_key') \
             ORDER BY tenant_id, purpose, version DESC",
            &[&ids],
        )
        .await?;
    let mut keys: std::collections::HashMap<Uuid, KeyStatus> = std::collections::HashMap::new();
    for row in &secrets {
        let status = keys.entry(row.try_get("tenant_id")?).or_default();
        let fingerprint: Option<String> = row.try_get("fingerprint")?;
        match row.try_get::<_, &str>("purpose")? {
            "app_private_key" => status.app_key = fingerprint,
            "alipay_public_key" => status.alipay_public_key = fingerprint,
            "md5_key" => status.md5_key = true,
            _ => {}
        }
    }
    let rows = client
        .query(
            "SELECT tenant_id, key_id, created_at, expires_at FROM api_credentials WHERE tenant_id = ANY($1) \
             AND (expires_at IS NULL OR expires_at > now()) ORDER BY created_at",
            &[&ids],
        )
        .await?;
    let mut credentials: std::collections::HashMap<Uuid, Vec<CredentialView>> = std::collections::HashMap::new();
    for row in &rows {
        credentials.entry(row.try_get("tenant_id")?).or_default().push(CredentialView {
            key_id: row.try_get("key_id")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
        });
    }
    let mut doors = front_door::front_door_views(client, &ids).await?;
    Ok(tenants
        .into_iter()
        .map(|tenant| {
            let keys = keys.remove(&tenant.id).unwrap_or_default();
            let ready = match tenant.sign_type {
                SignType::Md5 => keys.md5_key,
                _ => keys.app_key.is_some() && keys.alipay_public_key.is_some(),
            };
            TenantView {
                gateway_url: tenant.gateway_url().to_owned(),
                credentials: credentials.remove(&tenant.id).unwrap_or_default(),
                front_door: doors.remove(&tenant.id),
                settings: tenant.settings,
                keys,
                ready,
                created_at: tenant.created_at,
                updated_at: tenant.updated_at,
            }
        })
        .collect())
}
