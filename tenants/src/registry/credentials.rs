//! Partner API credentials: issuing one, rotating (every older credential ends by the new overlap
//! at the latest), and revoking one at once. Each change bumps the tenant's version, so the
//! services' snapshots reload the tenant's keys within milliseconds (LISTEN/NOTIFY).

use std::time::Duration;

use deadpool_postgres::Transaction;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::write::{audit, bump, check_actor, random_failure, reveal};
use super::{Registry, RegistryError, TenantView, find, view};
use crate::model::Invalid;
use crate::secret::{Secret, new_key_id};
use crate::vault::{DataKey, Purpose};

/// The longest overlap a rotated-out API secret may keep working.
pub const MAX_OVERLAP: Duration = Duration::from_secs(30 * 24 * 3600);

/// A partner API credential as issued: the only time its secret is shown.
#[derive(Debug, Serialize)]
pub struct IssuedCredential {
    pub key_id: String,
    #[serde(serialize_with = "reveal")]
    pub secret: Secret,
}

/// What `revoke-api-key` did.
#[derive(Debug, Serialize)]
pub struct Revoked {
    pub revoked: String,
    /// The tenant afterwards (its remaining credentials).
    pub tenant: TenantView,
}

pub(super) async fn issue_credential(
    tx: &Transaction<'_>,
    data_key: &DataKey,
    tenant: Uuid,
) -> Result<IssuedCredential, RegistryError> {
    let key_id = new_key_id().map_err(random_failure)?;
    let secret = Secret::generate().map_err(random_failure)?;
    let sealed = data_key.seal(tenant, Purpose::ApiSecret, &key_id, secret.expose().as_bytes())?;
    tx.execute(
        "INSERT INTO api_credentials (key_id, tenant_id, sealed_secret) VALUES ($1, $2, $3)",
        &[&key_id, &tenant, &sealed],
    )
    .await?;
    Ok(IssuedCredential { key_id, secret })
}

impl Registry {
    /// Issues a new API credential; every older one keeps working for `overlap` at most (one
    /// still in a longer overlap is shortened: a second rotation is how a leaked secret ends).
    pub async fn rotate_api_secret(
        &self,
        actor: &str,
        slug: &str,
        overlap: Duration,
    ) -> Result<IssuedCredential, RegistryError> {
        check_actor(actor)?;
        if overlap > MAX_OVERLAP {
            return Err(Invalid("overlap must be at most 30 days".into()).into());
        }
        let overlap_seconds = overlap.as_secs_f64();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let tenant = find(&tx, slug, true).await?;
        let data_key = self.data_key(&tenant)?;
        tx.execute(
            "DELETE FROM api_credentials WHERE tenant_id = $1 AND expires_at IS NOT NULL AND expires_at <= now()",
            &[&tenant.id],
        )
        .await?;
        let shortened = tx
            .execute(
                "UPDATE api_credentials \
                 SET expires_at = LEAST(COALESCE(expires_at, 'infinity'), now() + make_interval(secs => $2)) \
                 WHERE tenant_id = $1",
                &[&tenant.id, &overlap_seconds],
            )
            .await?;
        let credential = issue_credential(&tx, &data_key, tenant.id).await?;
        bump(&tx, tenant.id).await?;
        let detail = json!({
            "api_key_id": credential.key_id,
            "overlap_seconds": overlap.as_secs(),
            "older_keys_ending": shortened,
        });
        audit(&tx, actor, "rotate-api-secret", Some((tenant.id, slug)), detail).await?;
        tx.commit().await?;
        Ok(credential)
    }

    /// Ends the live credential `key_id` at once (its sealed secret is destroyed). The tenant's
    /// last live credential is kept unless `allow_last`: without one, every POS of the tenant is
    /// refused; `rotate-api-secret --overlap 0s` replaces it instead.
    pub async fn revoke_api_key(
        &self,
        actor: &str,
        slug: &str,
        key_id: &str,
        allow_last: bool,
    ) -> Result<Revoked, RegistryError> {
        check_actor(actor)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let tenant = find(&tx, slug, true).await?;
        let live: Vec<String> = tx
            .query(
                "SELECT key_id FROM api_credentials WHERE tenant_id = $1 AND (expires_at IS NULL OR expires_at > now())",
                &[&tenant.id],
            )
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?;
        if !live.iter().any(|k| k == key_id) {
            return Err(RegistryError::NoApiKey { slug: slug.to_owned(), key_id: printable(key_id) });
        }
        let last = live.len() == 1;
        if last && !allow_last {
            return Err(RegistryError::Conflict(format!(
                "`{key_id}` is the last live API key of `{slug}`: without it every POS of the tenant is refused. \
                 Replace it with `rotate-api-secret {slug} --overlap 0s`, or revoke it anyway with --allow-last"
            )));
        }
        tx.execute("DELETE FROM api_credentials WHERE tenant_id = $1 AND key_id = $2", &[&tenant.id, &key_id]).await?;
        bump(&tx, tenant.id).await?;
        let detail = json!({ "api_key_id": key_id, "was_last": last });
        audit(&tx, actor, "revoke-api-key", Some((tenant.id, slug)), detail).await?;
        let tenant = view(&tx, find(&tx, slug, false).await?).await?;
        tx.commit().await?;
        Ok(Revoked { revoked: key_id.to_owned(), tenant })
    }
}

/// A key id as given, safe to echo in one line (ids are `ak_` and base32; anything else is input).
fn printable(key_id: &str) -> String {
    key_id.chars().take(64).map(|c| if c.is_ascii_graphic() { c } else { '?' }).collect()
}

/// Parses an overlap like `24h`, `90m`, `3600s` or `7d`.
pub fn parse_overlap(text: &str) -> Result<Duration, Invalid> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| Invalid("overlap is a number and a unit: 30m, 24h, 7d".into()))?;
    let seconds = match unit {
        "s" | "" => number,
        "m" => number.saturating_mul(60),
        "h" => number.saturating_mul(3600),
        "d" => number.saturating_mul(86_400),
        _ => return Err(Invalid("overlap unit must be s, m, h or d".into())),
    };
    Ok(Duration::from_secs(seconds))
}
