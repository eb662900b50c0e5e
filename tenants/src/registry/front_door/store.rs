//! A front door's rows: the front door itself and its keys with their windows, in the
//! transaction of the operation that writes them.

use alipay::SignType;
use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::input::generate_id;
use crate::registry::{RegistryError, TenantRow, corrupt};
use crate::vault::{DataKey, Purpose};

/// How many generated ids are tried before giving up (a clash is already one in ten billion).
const ID_ATTEMPTS: usize = 5;

/// A key to seal with its window.
pub(super) struct WindowKey<'a> {
    pub purpose: Purpose,
    pub plaintext: &'a [u8],
    pub fingerprint: Option<String>,
    /// Bare base64 SPKI (platform keys).
    pub public_key: Option<String>,
    /// Seconds from now until it starts signing (platform keys; `None`: from the start).
    pub from_in: Option<f64>,
}

/// Seals `key` as the next version of its purpose.
pub(super) async fn put_window_key(
    tx: &Transaction<'_>,
    data_key: &DataKey,
    tenant: Uuid,
    key: WindowKey<'_>,
) -> Result<(), RegistryError> {
    let purpose = key.purpose.as_str();
    let version: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM tenant_secrets WHERE tenant_id = $1 AND purpose = $2",
            &[&tenant, &purpose],
        )
        .await?
        .try_get(0)?;
    let sealed = data_key.seal(tenant, key.purpose, &version.to_string(), key.plaintext)?;
    tx.execute(
        "INSERT INTO tenant_secrets (tenant_id, purpose, version, sealed, fingerprint, public_key, valid_from) \
         VALUES ($1, $2, $3, $4, $5, $6, \
         CASE WHEN $7::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $7::float8) END)",
        &[&tenant, &purpose, &version, &sealed, &key.fingerprint, &key.public_key, &key.from_in],
    )
    .await?;
    Ok(())
}

/// Ends every key of `purpose` by `overlap` from now at the latest (one in a longer overlap is
/// shortened) and removes those that ended or would never start; answers how many are still ending.
pub(super) async fn end_keys(
    tx: &Transaction<'_>,
    tenant: Uuid,
    purpose: Purpose,
    overlap: f64,
) -> Result<u64, RegistryError> {
    let purpose = purpose.as_str();
    let ending = tx
        .execute(
            "UPDATE tenant_secrets \
             SET valid_until = LEAST(COALESCE(valid_until, 'infinity'), now() + make_interval(secs => $3)) \
             WHERE tenant_id = $1 AND purpose = $2",
            &[&tenant, &purpose, &overlap],
        )
        .await?;
    let ended = tx
        .execute(
            "DELETE FROM tenant_secrets WHERE tenant_id = $1 AND purpose = $2 \
             AND (valid_until <= now() OR valid_from >= valid_until)",
            &[&tenant, &purpose],
        )
        .await?;
    Ok(ending - ended)
}

/// The tenant's front door: `(id, sign type)`.
pub(super) async fn door_of(
    tx: &Transaction<'_>,
    tenant: &TenantRow,
) -> Result<Option<(String, SignType)>, RegistryError> {
    let Some(row) =
        tx.query_opt("SELECT front_door_id, sign_type FROM front_doors WHERE tenant_id = $1", &[&tenant.id]).await?
    else {
        return Ok(None);
    };
    let sign_type = row.try_get::<_, &str>("sign_type")?.parse().map_err(|_| corrupt("front door sign type"))?;
    Ok(Some((row.try_get("front_door_id")?, sign_type)))
}

/// Inserts the front door under the id given, or a generated one not yet taken.
pub(super) async fn insert_door(
    tx: &Transaction<'_>,
    tenant: &TenantRow,
    given: Option<String>,
    sign_type: SignType,
) -> Result<String, RegistryError> {
    let dialect = tenant.dialect.as_str();
    for _ in 0..ID_ATTEMPTS {
        let id = match &given {
            Some(id) => id.clone(),
            None => generate_id(tenant.dialect)?,
        };
        let inserted = tx
            .execute(
                "INSERT INTO front_doors (tenant_id, dialect, front_door_id, sign_type) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (dialect, front_door_id) DO NOTHING",
                &[&tenant.id, &dialect, &id, &sign_type.as_str()],
            )
            .await?;
        if inserted == 1 {
            return Ok(id);
        }
        if given.is_some() {
            return Err(RegistryError::Conflict(format!("{dialect} front door id `{id}` is taken")));
        }
    }
    Err(RegistryError::Conflict("no free front door id was drawn; retry".into()))
}

/// Removes a tenant's front door and its keys (on disable, and when the tenant is deleted).
pub(crate) async fn delete_door(tx: &Transaction<'_>, tenant: Uuid) -> Result<(), RegistryError> {
    tx.execute(
        "DELETE FROM tenant_secrets WHERE tenant_id = $1 \
         AND purpose IN ('front_door_pos_key', 'front_door_platform_key')",
        &[&tenant],
    )
    .await?;
    tx.execute("DELETE FROM front_doors WHERE tenant_id = $1", &[&tenant]).await?;
    Ok(())
}
