//! A front door as ops see it: its id, its sign type and its live keys with their windows (public
//! keys and fingerprints only), read for any number of tenants in one query.

use std::collections::HashMap;

use alipay::SignType;
use deadpool_postgres::GenericClient;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::Dialect;
use crate::registry::{RegistryError, corrupt, sign_type_text};

/// A tenant's front door.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FrontDoorView {
    /// The app id (OpenAPI) or partner (MAPI) the POS sends.
    pub id: String,
    pub dialect: Dialect,
    #[serde(serialize_with = "sign_type_text")]
    pub sign_type: SignType,
    /// The keys that verify the POS's requests, the current one (`until`: null) first.
    pub pos_keys: Vec<PosKeyView>,
    /// The keys that sign answers, by `from` (none for MD5: the MD5 key signs).
    pub platform_keys: Vec<PlatformKeyView>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// One POS key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PosKeyView {
    pub version: i32,
    /// SHA-256 of the POS's public key (null for MD5).
    pub fingerprint: Option<String>,
    /// When it stops verifying (null: the current key).
    #[serde(with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// One platform key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformKeyView {
    pub version: i32,
    /// Bare base64 SPKI, as SDKs take "Alipay's public key".
    pub public_key: String,
    /// SHA-256 of the public key.
    pub fingerprint: String,
    /// When it starts signing.
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    /// When a newer key takes over (null: the newest).
    #[serde(with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
}

/// The front doors of `tenants` (those that have one), in one query.
pub(crate) async fn front_door_views(
    client: &impl GenericClient,
    tenants: &[Uuid],
) -> Result<HashMap<Uuid, FrontDoorView>, RegistryError> {
    let rows = client
        .query(
            "SELECT f.tenant_id, f.front_door_id, f.dialect, f.sign_type, f.created_at, f.updated_at, s.purpose, \
             s.version, s.fingerprint, s.public_key, s.valid_from, s.valid_until, s.created_at AS key_created_at \
             FROM front_doors f LEFT JOIN tenant_secrets s ON s.tenant_id = f.tenant_id \
             AND s.purpose IN ('front_door_pos_key', 'front_door_platform_key') \
             AND (s.valid_until IS NULL OR s.valid_until > now()) \
             WHERE f.tenant_id = ANY($1) ORDER BY f.tenant_id, s.purpose, s.version DESC",
            &[&tenants],
        )
        .await?;
    let mut doors: HashMap<Uuid, FrontDoorView> = HashMap::new();
    for row in &rows {
        let door = match doors.entry(row.try_get("tenant_id")?) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => entry.insert(FrontDoorView {
                id: row.try_get("front_door_id")?,
                dialect: row.try_get::<_, &str>("dialect")?.parse().map_err(|_| corrupt("front door dialect"))?,
                sign_type: row.try_get::<_, &str>("sign_type")?.parse().map_err(|_| corrupt("front door sign type"))?,
                pos_keys: Vec::new(),
                platform_keys: Vec::new(),
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            }),
        };
        let created_at: Option<OffsetDateTime> = row.try_get("key_created_at")?;
        let (Some(purpose), Some(created_at)) = (row.try_get::<_, Option<&str>>("purpose")?, created_at) else {
            continue;
        };
        let version: i32 = row.try_get("version")?;
        let until = row.try_get("valid_until")?;
        if purpose == "front_door_pos_key" {
            door.pos_keys.push(PosKeyView { version, fingerprint: row.try_get("fingerprint")?, until, created_at });
        } else {
            door.platform_keys.push(PlatformKeyView {
                version,
                public_key: row.try_get::<_, Option<String>>("public_key")?.ok_or_else(|| corrupt("platform key"))?,
                fingerprint: row.try_get::<_, Option<String>>("fingerprint")?.ok_or_else(|| corrupt("platform key"))?,
                from: row.try_get::<_, Option<OffsetDateTime>>("valid_from")?.unwrap_or(created_at),
                until,
            });
        }
    }
    for door in doors.values_mut() {
        door.pos_keys.sort_by_key(|k| (k.until.is_some(), std::cmp::Reverse(k.version)));
        door.platform_keys.sort_by_key(|k| (k.from, k.version));
    }
    Ok(doors)
}
