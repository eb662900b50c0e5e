//! The registry's changes. Each validates everything before it writes, then writes the change, the
//! version bump the snapshots listen for, and the audit row in one transaction.

use alipay::PublicKey;
use deadpool_postgres::{GenericClient, Transaction};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::credentials::{IssuedCredential, issue_credential};
use super::keys::{self, AppKeySource, KeyInput, ValidKeys};
use super::{Registry, RegistryError, TenantRow, TenantView, find, view};
use crate::model::{AlipayIdentity, Dialect, Environment, Invalid, NewTenant, Status, TenantUpdate, http_url};
use crate::secret::Secret;
use crate::url_policy::{self, UrlPolicy};
use crate::vault::{DataKey, Purpose, VaultError};

pub(super) fn reveal<S: serde::Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose())
}

/// A new tenant, with the secrets shown once.
#[derive(Debug, Serialize)]
pub struct Created {
    pub tenant: TenantView,
    pub credential: IssuedCredential,
    /// Signs the webhooks sent to the merchant (design §3).
    #[serde(serialize_with = "reveal")]
    pub webhook_secret: Secret,
    /// The app public key to upload to Alipay, when the private key was generated.
    pub app_public_key: Option<String>,
}

/// What `rotate-master-key` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MasterKeyRotation {
    pub rewrapped: usize,
    pub already_current: usize,
}

pub(super) fn random_failure(_: aws_lc_rs::error::Unspecified) -> RegistryError {
    RegistryError::Vault(VaultError::Crypto)
}

pub(super) fn check_actor(actor: &str) -> Result<(), RegistryError> {
    if actor.is_empty() || actor.len() > 128 || actor.chars().any(char::is_control) {
        return Err(Invalid("actor must be 1 to 128 printable characters".into()).into());
    }
    Ok(())
}

/// A webhook URL is refused for a production tenant unless it is https to public addresses only.
async fn webhook_allowed(url: &str, environment: &Environment) -> Result<(), Invalid> {
    url_policy::check_resolving(url, UrlPolicy::for_environment(environment))
        .await
        .map_err(|refused| Invalid(format!("webhook URL: {refused}")))
}

pub(super) async fn audit(
    tx: &Transaction<'_>,
    actor: &str,
    action: &str,
    tenant: Option<(Uuid, &str)>,
    detail: serde_json::Value,
) -> Result<(), RegistryError> {
    tx.execute(
        "INSERT INTO tenant_audit (actor, action, tenant_id, tenant_slug, detail) VALUES ($1, $2, $3, $4, $5)",
        &[&actor, &action, &tenant.map(|t| t.0), &tenant.map(|t| t.1), &detail],
    )
    .await?;
    Ok(())
}

pub(super) async fn bump(tx: &Transaction<'_>, tenant: Uuid) -> Result<(), RegistryError> {
    tx.execute("UPDATE tenants SET version = version + 1, updated_at = now() WHERE id = $1", &[&tenant]).await?;
    Ok(())
}

/// Seals `plaintext` as the next version of `purpose`, dropping older versions.
async fn put_secret(
    tx: &Transaction<'_>,
    data_key: &DataKey,
    tenant: Uuid,
    purpose: Purpose,
    plaintext: &[u8],
    fingerprint: Option<String>,
) -> Result<(), RegistryError> {
    let row = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM tenant_secrets WHERE tenant_id = $1 AND purpose = $2",
            &[&tenant, &purpose.as_str()],
        )
        .await?;
    let version: i32 = row.try_get(0)?;
    let sealed = data_key.seal(tenant, purpose, &version.to_string(), plaintext)?;
    tx.execute(
        "INSERT INTO tenant_secrets (tenant_id, purpose, version, sealed, fingerprint) VALUES ($1, $2, $3, $4, $5)",
        &[&tenant, &purpose.as_str(), &version, &sealed, &fingerprint],
    )
    .await?;
    tx.execute(
        "DELETE FROM tenant_secrets WHERE tenant_id = $1 AND purpose = $2 AND version < $3",
        &[&tenant, &purpose.as_str(), &version],
    )
    .await?;
    Ok(())
}

async fn put_keys(
    tx: &Transaction<'_>,
    data_key: &DataKey,
    tenant: Uuid,
    keys: &ValidKeys,
) -> Result<Vec<&'static str>, RegistryError> {
    let mut set = Vec::new();
    if let Some((pem, public)) = &keys.app_private_key {
        put_secret(tx, data_key, tenant, Purpose::AppPrivateKey, pem.as_bytes(), Some(public.fingerprint())).await?;
        set.push("app_private_key");
    }
    if let Some(public) = &keys.alipay_public_key {
        put_secret(
            tx,
            data_key,
            tenant,
            Purpose::AlipayPublicKey,
            public.to_pem().as_bytes(),
            Some(public.fingerprint()),
        )
        .await?;
        set.push("alipay_public_key");
    }
    if let Some(md5) = &keys.md5_key {
        put_secret(tx, data_key, tenant, Purpose::Md5Key, md5.as_bytes(), None).await?;
        set.push("md5_key");
    }
    Ok(set)
}

fn is_unique_violation(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

fn public_pem(keys: &ValidKeys) -> Option<String> {
    keys.app_private_key.as_ref().filter(|_| keys.generated).map(|(_, public)| public.to_pem())
}

impl Registry {
    pub(super) fn data_key(&self, tenant: &TenantRow) -> Result<DataKey, RegistryError> {
        Ok(self.keyring()?.unwrap(tenant.id, &tenant.master_key_id, &tenant.wrapped_data_key)?)
    }

    /// Creates a tenant with a partner API credential and a webhook secret (and any keys given).
    pub async fn create(&self, actor: &str, new: NewTenant, keys: KeyInput) -> Result<Created, RegistryError> {
        check_actor(actor)?;
        let new = new.validate()?;
        if let Some(url) = &new.webhook_url {
            webhook_allowed(url, &new.environment).await?;
        }
        let keys = keys::validate(new.identity.sign_type, keys)?;
        let id = Uuid::new_v4();
        let data_key = DataKey::generate()?;
        let (master_id, wrapped) = self.keyring()?.wrap(id, &data_key)?;
        let secondary = new
            .secondary_merchant
            .as_ref()
            .map(serde_json::to_value)
            .transpose()
            .map_err(|_| RegistryError::Invalid(Invalid("secondary merchant cannot be stored".into())))?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let limits = new.limits;
        let inserted = tx
            .execute(
                "INSERT INTO tenants (id, slug, display_name, status, dialect, alipay_id, seller_id, sign_type, \
                 environment, upstream_url, pay_rate, pay_burst, other_rate, webhook_url, secondary_merchant, \
                 master_key_id, wrapped_data_key) \
                 VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
                &[
                    &id,
                    &new.slug.as_str(),
                    &new.name,
                    &new.identity.dialect.as_str(),
                    &new.identity.alipay_id,
                    &new.identity.seller_id,
                    &new.identity.sign_type.as_str(),
                    &new.environment.kind(),
                    &new.environment.custom_url(),
                    &(limits.pay_rate as i32),
                    &(limits.pay_burst as i32),
                    &(limits.other_rate as i32),
                    &new.webhook_url,
                    &secondary,
                    &master_id,
                    &wrapped,
                ],
            )
            .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(RegistryError::Conflict(format!("slug `{}` is taken", new.slug)));
            }
            other => other?,
        };
        let webhook_secret = Secret::generate().map_err(random_failure)?;
        put_secret(&tx, &data_key, id, Purpose::WebhookSecret, webhook_secret.expose().as_bytes(), None).await?;
        let keys_set = put_keys(&tx, &data_key, id, &keys).await?;
        let credential = issue_credential(&tx, &data_key, id).await?;
        let detail = json!({
            "dialect": new.identity.dialect.as_str(),
            "alipay_id": new.identity.alipay_id,
            "sign_type": new.identity.sign_type.as_str(),
            "environment": new.environment.kind(),
            "keys": keys_set,
            "api_key_id": credential.key_id,
        });
        audit(&tx, actor, "create", Some((id, new.slug.as_str())), detail).await?;
        let tenant = view(&tx, find(&tx, new.slug.as_str(), false).await?).await?;
        tx.commit().await?;
        Ok(Created { tenant, credential, webhook_secret, app_public_key: public_pem(&keys) })
    }

    /// Changes settings (and, in the same transaction, keys: moving to production changes the
    /// gateway, the id and the keys at once).
    pub async fn update(
        &self,
        actor: &str,
        slug: &str,
        update: TenantUpdate,
        keys: KeyInput,
    ) -> Result<TenantView, RegistryError> {
        check_actor(actor)?;
        if update.is_empty() && keys.is_empty() {
            return Err(Invalid("nothing to change".into()).into());
        }
        if matches!(keys.app_private_key, Some(AppKeySource::Generate)) {
            // An update answers the tenant, not the new public key, which must go to Alipay.
            return Err(Invalid(
                "generate the app key with set-alipay-key --generate (PUT …/keys), which prints its public key".into(),
            )
            .into());
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let mut tenant = find(&tx, slug, true).await?;
        let mut changed: Vec<&str> = Vec::new();
        if let Some(name) = update.name {
            tenant.name = crate::model::display_name(&name)?;
            changed.push("name");
        }
        if let Some(environment) = update.environment {
            tenant.environment = environment;
            changed.push("environment");
        }
        let alipay_id = update.alipay_id.unwrap_or_else(|| tenant.alipay_id.clone());
        let seller_id = update.seller_id.clone().unwrap_or_else(|| tenant.seller_id.clone());
        let identity = AlipayIdentity::new(tenant.dialect, &alipay_id, seller_id.as_deref(), tenant.sign_type)?;
        if identity.alipay_id != tenant.alipay_id || identity.seller_id != tenant.seller_id {
            changed.push("alipay_id");
        }
        tenant.alipay_id = identity.alipay_id;
        tenant.seller_id = identity.seller_id;
        for (name, value, slot) in [
            ("pay_rate", update.pay_rate, &mut tenant.settings.limits.pay_rate),
            ("pay_burst", update.pay_burst, &mut tenant.settings.limits.pay_burst),
            ("other_rate", update.other_rate, &mut tenant.settings.limits.other_rate),
        ] {
            if let Some(value) = value {
                *slot = value;
                changed.push(name);
            }
        }
        tenant.limits = tenant.limits.validate()?;
        if let Some(url) = update.webhook_url {
            tenant.webhook_url = url.map(|u| http_url("webhook URL", &u)).transpose()?;
            changed.push("webhook_url");
        }
        // Checked against the environment the tenant ends in: a local URL cannot follow it to
        // production.
        if let Some(url) = &tenant.webhook_url
            && (changed.contains(&"environment") || changed.contains(&"webhook_url"))
        {
            webhook_allowed(url, &tenant.environment).await?;
        }
        if let Some(secondary) = update.secondary_merchant {
            if secondary.is_some() && tenant.dialect != Dialect::Mapi {
                return Err(Invalid("secondary merchant fields are for Global (mapi) tenants".into()).into());
            }
            tenant.secondary_merchant = secondary.map(|s| s.validate()).transpose()?;
            changed.push("secondary_merchant");
        }
        let keys = keys::validate(tenant.sign_type, keys)?;
        let data_key = self.data_key(&tenant)?;
        let secondary = tenant
            .secondary_merchant
            .as_ref()
            .map(serde_json::to_value)
            .transpose()
            .map_err(|_| RegistryError::Invalid(Invalid("secondary merchant cannot be stored".into())))?;
        tx.execute(
            "UPDATE tenants SET display_name = $2, environment = $3, upstream_url = $4, alipay_id = $5, seller_id = $6, \
             pay_rate = $7, pay_burst = $8, other_rate = $9, webhook_url = $10, secondary_merchant = $11, \
             version = version + 1, updated_at = now() WHERE id = $1",
            &[
                &tenant.id,
                &tenant.name,
                &tenant.environment.kind(),
                &tenant.environment.custom_url(),
                &tenant.alipay_id,
                &tenant.seller_id,
                &(tenant.limits.pay_rate as i32),
                &(tenant.limits.pay_burst as i32),
                &(tenant.limits.other_rate as i32),
                &tenant.webhook_url,
                &secondary,
            ],
        )
        .await?;
        let keys_set = put_keys(&tx, &data_key, tenant.id, &keys).await?;
        audit(&tx, actor, "update", Some((tenant.id, slug)), json!({ "changed": changed, "keys": keys_set })).await?;
        let result = view(&tx, find(&tx, slug, false).await?).await?;
        tx.commit().await?;
        Ok(result)
    }

    /// Suspends or resumes a tenant.
    pub async fn set_status(&self, actor: &str, slug: &str, status: Status) -> Result<TenantView, RegistryError> {
        check_actor(actor)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let tenant = find(&tx, slug, true).await?;
        if tenant.status != status {
            tx.execute(
                "UPDATE tenants SET status = $2, version = version + 1, updated_at = now() WHERE id = $1",
                &[&tenant.id, &status.as_str()],
            )
            .await?;
            let action = if status == Status::Suspended { "suspend" } else { "resume" };
            audit(&tx, actor, action, Some((tenant.id, slug)), json!({})).await?;
        }
        let result = view(&tx, find(&tx, slug, false).await?).await?;
        tx.commit().await?;
        Ok(result)
    }

    /// Sets keys alone (`set-alipay-key`, `set-alipay-public-key`, `set-md5-key`); answers the
    /// public key to upload to Alipay when the app key was generated.
    pub async fn set_keys(
        &self,
        actor: &str,
        slug: &str,
        keys: KeyInput,
    ) -> Result<(TenantView, Option<String>), RegistryError> {
        check_actor(actor)?;
        if keys.is_empty() {
            return Err(Invalid("no key given".into()).into());
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let tenant = find(&tx, slug, true).await?;
        let keys = keys::validate(tenant.sign_type, keys)?;
        let data_key = self.data_key(&tenant)?;
        let set = put_keys(&tx, &data_key, tenant.id, &keys).await?;
        bump(&tx, tenant.id).await?;
        let fingerprints: Vec<String> = keys
            .app_private_key
            .iter()
            .map(|(_, p)| p)
            .chain(keys.alipay_public_key.iter())
            .map(PublicKey::fingerprint)
            .collect();
        audit(&tx, actor, "set-keys", Some((tenant.id, slug)), json!({ "keys": set, "fingerprints": fingerprints }))
            .await?;
        let result = view(&tx, find(&tx, slug, false).await?).await?;
        tx.commit().await?;
        Ok((result, public_pem(&keys)))
    }

    /// Re-wraps every data key not wrapped by the current master key, one tenant per transaction
    /// (online: services holding both keys keep working throughout).
    pub async fn rotate_master_key(&self, actor: &str) -> Result<MasterKeyRotation, RegistryError> {
        check_actor(actor)?;
        let keyring = self.keyring()?;
        let current = keyring.current_id().to_owned();
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT id, master_key_id, wrapped_data_key FROM tenants WHERE status <> 'deleted' AND master_key_id <> $1",
                &[&current],
            )
            .await?;
        let already_current = client
            .query_one("SELECT count(*) FROM tenants WHERE status <> 'deleted' AND master_key_id = $1", &[&current])
            .await?
            .try_get::<_, i64>(0)?;
        drop(client);
        // Unwrap everything first: a missing old key stops the rotation before any write.
        let mut rewraps = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: Uuid = row.try_get("id")?;
            let old: String = row.try_get("master_key_id")?;
            let wrapped: Vec<u8> = row.try_get("wrapped_data_key")?;
            let data_key = keyring.unwrap(id, &old, &wrapped)?;
            let (new_id, new_wrapped) = keyring.wrap(id, &data_key)?;
            rewraps.push((id, old, new_id, new_wrapped));
        }
        let mut rewrapped = 0;
        let mut client = self.pool.get().await?;
        for (id, old, new_id, new_wrapped) in rewraps {
            let tx = client.transaction().await?;
            let updated = tx
                .execute(
                    "UPDATE tenants SET master_key_id = $3, wrapped_data_key = $4 WHERE id = $1 AND master_key_id = $2",
                    &[&id, &old, &new_id, &new_wrapped],
                )
                .await?;
            tx.commit().await?;
            rewrapped += usize::try_from(updated).unwrap_or(0);
        }
        let tx = client.transaction().await?;
        let detail = json!({ "master_key_id": current, "rewrapped": rewrapped });
        audit(&tx, actor, "rotate-master-key", None, detail).await?;
        tx.commit().await?;
        Ok(MasterKeyRotation { rewrapped, already_current: usize::try_from(already_current).unwrap_or(0) })
    }

    /// Deletes a tenant with no open trades: its secrets and data key are destroyed; the row stays
    /// (its trades keep their history) and its slug becomes free.
    pub async fn delete(&self, actor: &str, slug: &str) -> Result<(), RegistryError> {
        check_actor(actor)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let tenant = find(&tx, slug, true).await?;
        let open = open_trades(&tx, tenant.id).await?;
        if open > 0 {
            return Err(RegistryError::Conflict(format!(
                "tenant `{slug}` has {open} open trade(s); they must be settled before it is deleted"
            )));
        }
        super::front_door::delete_door(&tx, tenant.id).await?;
        tx.execute("DELETE FROM tenant_secrets WHERE tenant_id = $1", &[&tenant.id]).await?;
        tx.execute("DELETE FROM api_credentials WHERE tenant_id = $1", &[&tenant.id]).await?;
        tx.execute(
            "UPDATE tenants SET status = 'deleted', master_key_id = NULL, wrapped_data_key = NULL, \
             version = version + 1, updated_at = now() WHERE id = $1",
            &[&tenant.id],
        )
        .await?;
        audit(&tx, actor, "delete", Some((tenant.id, slug)), json!({})).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Trades not yet final (design §4). The ledger owns the `trades` table; before it exists there
/// are none.
async fn open_trades(client: &impl GenericClient, tenant: Uuid) -> Result<i64, RegistryError> {
    let exists: Option<String> = client.query_one("SELECT to_regclass('trades')::text", &[]).await?.try_get(0)?;
    if exists.is_none() {
        return Ok(0);
    }
    let row = client
        .query_one(
            "SELECT count(*) FROM trades WHERE tenant_id = $1 AND state IN ('PAYING', 'UNKNOWN', 'WAITING')",
            &[&tenant],
        )
        .await?;
    Ok(row.try_get(0)?)
}
