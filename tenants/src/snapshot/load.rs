//! Reading tenants for the snapshot: four queries (tenants, their latest secrets, their API
//! credentials, their front doors with their live keys), then the CPU work (unwrap each data key,
//! open each secret, parse each key) spread over all cores. Alipay's public key is the same for
//! many tenants, so equal keys share one parsed verifier.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use alipay::{Md5Key, PrivateKey, PublicKey, SignType, Signer, Verifier};
use aws_lc_rs::hmac;
use deadpool_postgres::Pool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::front_door::{self, SealedFrontDoor, SealedWindowKey};
use super::{ApiKey, Change, Loaded, Snapshot, Tenant};
use crate::registry::{RegistryError, TENANT_COLUMNS, TenantRow};
use crate::secret::Secret;
use crate::vault::{Keyring, Purpose, VaultError};

/// Sealed secrets of one tenant: `(purpose, version, sealed)`.
type SealedSecrets = Vec<(Purpose, i32, Vec<u8>)>;

/// One credential as stored.
struct SealedKey {
    key_id: String,
    sealed: Vec<u8>,
    expires_at: Option<OffsetDateTime>,
}

/// Reads tenants from Postgres and turns them into snapshot entries.
#[derive(Clone)]
pub struct Loader {
    pool: Pool,
    keyring: Arc<Keyring>,
}

/// Why one tenant could not be loaded (it is left out, and logged).
#[derive(Debug, thiserror::Error)]
pub enum TenantLoadError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("stored {0} does not parse: {1}")]
    Key(&'static str, alipay::KeyError),
    #[error("stored {0} is invalid")]
    Corrupt(&'static str),
}

impl Loader {
    pub fn new(pool: Pool, keyring: Arc<Keyring>) -> Self {
        Loader { pool, keyring }
    }

    /// Every live tenant.
    pub async fn load_all(&self) -> Result<Snapshot, RegistryError> {
        let mut snapshot = Snapshot::default();
        for (_, loaded) in self.load(None).await? {
            if let Some((tenant, keys)) = loaded {
                snapshot.insert(tenant, keys);
            }
        }
        Ok(snapshot)
    }

    /// The tenants `ids` as they are now: `None` for each one deleted or unloadable.
    pub async fn load_some(&self, ids: &[Uuid]) -> Result<Vec<Change>, RegistryError> {
        let mut found = self.load(Some(ids)).await?;
        let present: std::collections::HashSet<Uuid> = found.iter().map(|(id, _)| *id).collect();
        found.extend(ids.iter().filter(|id| !present.contains(id)).map(|id| (*id, None)));
        Ok(found)
    }

    /// `(id, version)` of every live tenant.
    pub async fn versions(&self) -> Result<HashMap<Uuid, i64>, RegistryError> {
        let client = self.pool.get().await?;
        let rows = client.query("SELECT id, version FROM tenants WHERE status <> 'deleted'", &[]).await?;
        rows.iter().map(|row| Ok((row.try_get("id")?, row.try_get("version")?))).collect()
    }

    async fn load(&self, ids: Option<&[Uuid]>) -> Result<Vec<Change>, RegistryError> {
        let client = self.pool.get().await?;
        let ids: Vec<Uuid> = ids.map(<[Uuid]>::to_vec).unwrap_or_default();
        let all = ids.is_empty();
        let filter = if all { "" } else { " AND id = ANY($1)" };
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE status <> 'deleted'{filter}");
        let tenant_rows = if all { client.query(&sql, &[]).await? } else { client.query(&sql, &[&ids]).await? };
        let secret_sql = format!(
            "SELECT DISTINCT ON (tenant_id, purpose) tenant_id, purpose, version, sealed FROM tenant_secrets \
             WHERE purpose NOT IN ('front_door_pos_key', 'front_door_platform_key'){} \
             ORDER BY tenant_id, purpose, version DESC",
            if all { "" } else { " AND tenant_id = ANY($1)" }
        );
        let secret_rows =
            if all { client.query(&secret_sql, &[]).await? } else { client.query(&secret_sql, &[&ids]).await? };
        let key_sql = format!(
            "SELECT key_id, tenant_id, sealed_secret, expires_at FROM api_credentials \
             WHERE (expires_at IS NULL OR expires_at > now()){}",
            if all { "" } else { " AND tenant_id = ANY($1)" }
        );
        let key_rows = if all { client.query(&key_sql, &[]).await? } else { client.query(&key_sql, &[&ids]).await? };
        let door_sql = format!(
            "SELECT f.tenant_id, f.front_door_id, f.sign_type, s.purpose, s.version, s.sealed, s.valid_from, \
             s.valid_until FROM front_doors f LEFT JOIN tenant_secrets s ON s.tenant_id = f.tenant_id \
             AND s.purpose IN ('front_door_pos_key', 'front_door_platform_key') \
             AND (s.valid_until IS NULL OR s.valid_until > now()){}",
            if all { "" } else { " WHERE f.tenant_id = ANY($1)" }
        );
        let door_rows =
            if all { client.query(&door_sql, &[]).await? } else { client.query(&door_sql, &[&ids]).await? };
        drop(client);

        let mut secrets: HashMap<Uuid, SealedSecrets> = HashMap::new();
        for row in &secret_rows {
            let Some(purpose) = Purpose::parse(row.try_get("purpose")?) else { continue };
            secrets.entry(row.try_get("tenant_id")?).or_default().push((
                purpose,
                row.try_get("version")?,
                row.try_get("sealed")?,
            ));
        }
        let mut keys: HashMap<Uuid, Vec<SealedKey>> = HashMap::new();
        for row in &key_rows {
            keys.entry(row.try_get("tenant_id")?).or_default().push(SealedKey {
                key_id: row.try_get("key_id")?,
                sealed: row.try_get("sealed_secret")?,
                expires_at: row.try_get("expires_at")?,
            });
        }
        let mut doors = front_doors(&door_rows)?;
        let mut work = Vec::with_capacity(tenant_rows.len());
        for row in &tenant_rows {
            let tenant = TenantRow::from_row(row)?;
            let sealed = secrets.remove(&tenant.id).unwrap_or_default();
            let credentials = keys.remove(&tenant.id).unwrap_or_default();
            let door = doors.remove(&tenant.id);
            work.push(Work { row: tenant, sealed, credentials, door });
        }
        let keyring = self.keyring.clone();
        tokio::task::spawn_blocking(move || build_all(&keyring, work))
            .await
            .map_err(|e| RegistryError::Pool(format!("snapshot build task failed: {e}")))
    }
}

/// Front doors by tenant, from the rows of the front-door query (one per key).
fn front_doors(rows: &[tokio_postgres::Row]) -> Result<HashMap<Uuid, SealedFrontDoor>, RegistryError> {
    let mut doors: HashMap<Uuid, SealedFrontDoor> = HashMap::new();
    for row in rows {
        let door = doors.entry(row.try_get("tenant_id")?).or_insert(SealedFrontDoor {
            id: row.try_get("front_door_id")?,
            sign_type: row.try_get("sign_type")?,
            keys: Vec::new(),
        });
        let Some(purpose) = row.try_get::<_, Option<&str>>("purpose")?.and_then(Purpose::parse) else { continue };
        door.keys.push(SealedWindowKey {
            purpose,
            version: row.try_get("version")?,
            sealed: row.try_get("sealed")?,
            valid_from: row.try_get("valid_from")?,
            valid_until: row.try_get("valid_until")?,
        });
    }
    Ok(doors)
}

/// One tenant to build: its row, its latest secrets, its credentials and its front door.
struct Work {
    row: TenantRow,
    sealed: SealedSecrets,
    credentials: Vec<SealedKey>,
    door: Option<SealedFrontDoor>,
}

/// Parsed Alipay public keys by sign type and key, shared between tenants.
type VerifierCache = Mutex<HashMap<(SignType, Vec<u8>), Arc<Verifier>>>;

/// Builds every tenant, spread over the available cores.
fn build_all(keyring: &Keyring, work: Vec<Work>) -> Vec<Change> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(work.len().max(1));
    let verifiers = VerifierCache::default();
    let chunk = work.len().div_ceil(threads).max(1);
    let mut chunks: Vec<Vec<Work>> = Vec::new();
    let mut work = work.into_iter().peekable();
    while work.peek().is_some() {
        chunks.push(work.by_ref().take(chunk).collect());
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let verifiers = &verifiers;
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|work| {
                            let id = work.row.id;
                            let slug = work.row.slug.clone();
                            match build(keyring, verifiers, work) {
                                Ok(built) => (id, Some(built)),
                                Err(error) => {
                                    tracing::error!(tenant = %slug, %error, "tenant left out of the snapshot");
                                    (id, None)
                                }
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    })
}

fn shared_verifier(
    cache: &VerifierCache,
    sign_type: SignType,
    key: &PublicKey,
) -> Result<Arc<Verifier>, TenantLoadError> {
    let cache_key = (sign_type, key.spki_der().to_vec());
    if let Some(found) = cache.lock().ok().and_then(|c| c.get(&cache_key).cloned()) {
        return Ok(found);
    }
    let verifier = Arc::new(Verifier::rsa(sign_type, key).map_err(|e| TenantLoadError::Key("Alipay public key", e))?);
    if let Ok(mut cache) = cache.lock() {
        cache.insert(cache_key, verifier.clone());
    }
    Ok(verifier)
}

fn build(keyring: &Keyring, verifiers: &VerifierCache, work: Work) -> Result<Loaded, TenantLoadError> {
    let Work { row, sealed, credentials, door } = work;
    let data_key = keyring.unwrap(row.id, &row.master_key_id, &row.wrapped_data_key)?;
    let mut signer = None;
    let mut alipay_verifier = None;
    let mut webhook_secret = None;
    for (purpose, version, bytes) in sealed {
        let plain = data_key.open(row.id, purpose, &version.to_string(), &bytes)?;
        let text = std::str::from_utf8(&plain).map_err(|_| VaultError::DoesNotOpen)?;
        match purpose {
            Purpose::AppPrivateKey if row.sign_type != SignType::Md5 => {
                let key = PrivateKey::parse(text).map_err(|e| TenantLoadError::Key("app private key", e))?;
                let built = match row.sign_type {
                    SignType::Rsa => Signer::rsa(&key),
                    _ => Signer::rsa2(Arc::new(key)),
                };
                signer = Some(built.map_err(|e| TenantLoadError::Key("app private key", e))?);
            }
            Purpose::AlipayPublicKey if row.sign_type != SignType::Md5 => {
                let key = PublicKey::parse(text).map_err(|e| TenantLoadError::Key("Alipay public key", e))?;
                alipay_verifier = Some(shared_verifier(verifiers, row.sign_type, &key)?);
            }
            Purpose::Md5Key if row.sign_type == SignType::Md5 => {
                let key = Md5Key::new(text).map_err(|e| TenantLoadError::Key("MD5 key", e))?;
                signer = Some(Signer::md5(key.clone()));
                alipay_verifier = Some(Arc::new(Verifier::md5(key)));
            }
            Purpose::WebhookSecret => webhook_secret = Some(Secret::new(text.to_owned())),
            _ => {}
        }
    }
    let mut keys = Vec::with_capacity(credentials.len());
    for credential in credentials {
        let plain = data_key.open(row.id, Purpose::ApiSecret, &credential.key_id, &credential.sealed)?;
        keys.push(ApiKey {
            key_id: credential.key_id,
            tenant_id: row.id,
            hmac: hmac::Key::new(hmac::HMAC_SHA256, &plain),
            expires_at: credential.expires_at,
        });
    }
    let front_door = door.map(|door| front_door::build(&data_key, row.id, door)).transpose()?;
    let tenant = Tenant {
        gateway_url: row.gateway_url().to_owned(),
        settings: row.settings,
        signer,
        alipay_verifier,
        webhook_secret,
        front_door,
    };
    Ok((tenant, keys))
}
