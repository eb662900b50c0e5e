//! Front doors: the Alipay-compatible `gateway.do` a tenant's POS software may call instead of
//! Alipay's (`/alipay/gateway.do` for OpenAPI tenants, `/alipay/mapi/gateway.do` for Global MAPI
//! ones), under an app id or partner of ours. Each has a POS key (the POS's RSA public key, or an
//! MD5 key), which verifies its requests, and, for RSA2 / RSA, a platform key pair of ours, whose
//! private half signs the answers and whose public half the POS installs as "Alipay's public key".
//!
//! Rotations overlap: a rotated-out POS key keeps verifying until the overlap ends; a new platform
//! key is published at once and starts signing when the overlap ends (the POS operators install it
//! meanwhile). Every operation is validated first, then written in one transaction with its audit
//! row and the tenant's version bump (the snapshots reload it).
//!
//! # Layout
//! - [`mod@self`]: the operations and what they hand back ([`FrontDoorIssued`]).
//! - `input`: ids, sign types and keys as ops give them, checked or generated.
//! - `store`: its rows (the front door, its keys with their windows).
//! - `view`: a front door as ops see it ([`FrontDoorView`]).

mod input;
mod store;
mod view;

use std::fmt;
use std::time::Duration;

use alipay::SignType;
use deadpool_postgres::Transaction;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;
use zeroize::Zeroizing;

pub use input::{FrontDoorInput, PosKeySource};
pub(crate) use view::front_door_views;
pub use view::{FrontDoorView, PlatformKeyView, PosKeyView};

use self::input::{Generated, check_id, check_sign_type, platform_pair, pos_key};
pub(crate) use self::store::delete_door;
use self::store::{WindowKey, door_of, end_keys, insert_door, put_window_key};
use super::credentials::MAX_OVERLAP;
use super::write::{audit, bump, check_actor};
use super::{Registry, RegistryError, corrupt, find, sign_type_text};
use crate::model::Invalid;
use crate::vault::Purpose;

/// What ops hand the POS vendor, the only time the generated secrets are shown.
#[derive(Serialize)]
pub struct FrontDoorIssued {
    /// The app id (OpenAPI) or partner (MAPI) the POS sends.
    pub id: String,
    #[serde(serialize_with = "sign_type_text")]
    pub sign_type: SignType,
    /// The newest platform public key, bare base64 SPKI, to install as "Alipay's public key"
    /// (after a platform rotation: the new key, which signs from its `from`); null for MD5.
    pub platform_public_key: Option<String>,
    /// The generated POS private key, PKCS#1 PEM (null unless generated).
    #[serde(serialize_with = "reveal")]
    pub pos_private_key_pkcs1_pem: Option<Zeroizing<String>>,
    /// The same key, PKCS#8 PEM (the form Java SDKs take).
    #[serde(serialize_with = "reveal")]
    pub pos_private_key_pkcs8_pem: Option<Zeroizing<String>>,
    /// The generated MD5 key (null unless generated).
    #[serde(serialize_with = "reveal")]
    pub md5_key: Option<Zeroizing<String>>,
    /// The front door afterwards (fingerprints and windows of its keys).
    pub front_door: FrontDoorView,
}

fn reveal<S: serde::Serializer>(secret: &Option<Zeroizing<String>>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => s.serialize_str(secret),
        None => s.serialize_none(),
    }
}

impl FrontDoorIssued {
    /// Whether a secret was generated (it must reach the POS vendor, once).
    pub fn has_secrets(&self) -> bool {
        self.pos_private_key_pkcs1_pem.is_some() || self.md5_key.is_some()
    }

    fn new(front_door: FrontDoorView, generated: Generated) -> Self {
        FrontDoorIssued {
            id: front_door.id.clone(),
            sign_type: front_door.sign_type,
            platform_public_key: front_door.platform_keys.iter().max_by_key(|k| k.from).map(|k| k.public_key.clone()),
            pos_private_key_pkcs1_pem: generated.pkcs1_pem,
            pos_private_key_pkcs8_pem: generated.pkcs8_pem,
            md5_key: generated.md5_key,
            front_door,
        }
    }
}

/// Masks the secrets.
impl fmt::Debug for FrontDoorIssued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mask = |secret: &Option<Zeroizing<String>>| if secret.is_some() { "***" } else { "none" };
        f.debug_struct("FrontDoorIssued")
            .field("id", &self.id)
            .field("sign_type", &self.sign_type)
            .field("platform_public_key", &self.platform_public_key)
            .field("pos_private_key_pkcs1_pem", &mask(&self.pos_private_key_pkcs1_pem))
            .field("pos_private_key_pkcs8_pem", &mask(&self.pos_private_key_pkcs8_pem))
            .field("md5_key", &mask(&self.md5_key))
            .field("front_door", &self.front_door)
            .finish()
    }
}

fn check_overlap(overlap: Duration) -> Result<f64, Invalid> {
    if overlap > MAX_OVERLAP {
        return Err(Invalid("overlap must be at most 30 days".into()));
    }
    Ok(overlap.as_secs_f64())
}

async fn finish(tx: Transaction<'_>, tenant: Uuid, generated: Generated) -> Result<FrontDoorIssued, RegistryError> {
    tx.execute("UPDATE front_doors SET updated_at = now() WHERE tenant_id = $1", &[&tenant]).await?;
    bump(&tx, tenant).await?;
    let view = front_door_views(&tx, &[tenant]).await?.remove(&tenant).ok_or_else(|| corrupt("front door"))?;
    tx.commit().await?;
    Ok(FrontDoorIssued::new(view, generated))
}

fn source_word(generated: &Generated) -> &'static str {
    if generated.pkcs1_pem.is_some() || generated.md5_key.is_some() { "generated" } else { "given" }
}

impl Registry {
    /// Enables the tenant's front door: its id (given or generated), its POS key (given or
    /// generated; a generated one is handed back once) and, for RSA2 / RSA, a new platform key.
    pub async fn enable_front_door(
        &self,
        actor: &str,
        slug: &str,
        input: FrontDoorInput,
    ) -> Result<FrontDoorIssued, RegistryError> {
        check_actor(actor)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let tenant = find(&tx, slug, true).await?;
        check_sign_type(tenant.dialect, input.sign_type)?;
        let given = input.id.as_deref().map(|id| check_id(tenant.dialect, id)).transpose()?;
        if door_of(&tx, &tenant).await?.is_some() {
            return Err(RegistryError::Conflict(format!(
                "tenant `{slug}` already has a front door: rotate its keys, or disable it first"
            )));
        }
        let pos = pos_key(input.sign_type, input.pos_key)?;
        let platform = match input.sign_type {
            SignType::Md5 => None,
            rsa => Some(platform_pair(rsa)?),
        };
        let data_key = self.data_key(&tenant)?;
        let id = insert_door(&tx, &tenant, given, input.sign_type).await?;
        let pos_fingerprint = pos.fingerprint.clone();
        let pos_key = WindowKey {
            purpose: Purpose::FrontDoorPosKey,
            plaintext: pos.stored.as_bytes(),
            fingerprint: pos.fingerprint,
            public_key: None,
            from_in: None,
        };
        put_window_key(&tx, &data_key, tenant.id, pos_key).await?;
        let platform_fingerprint = platform.as_ref().map(|p| p.public.fingerprint());
        if let Some(pair) = &platform {
            let key = WindowKey {
                purpose: Purpose::FrontDoorPlatformKey,
                plaintext: pair.private_pem.as_bytes(),
                fingerprint: platform_fingerprint.clone(),
                public_key: Some(pair.public.to_base64()),
                from_in: None,
            };
            put_window_key(&tx, &data_key, tenant.id, key).await?;
        }
        let detail = json!({
            "id": id,
            "dialect": tenant.dialect.as_str(),
            "sign_type": input.sign_type.as_str(),
            "pos_key": source_word(&pos.generated),
            "pos_key_fingerprint": pos_fingerprint,
            "platform_key_fingerprint": platform_fingerprint,
        });
        audit(&tx, actor, "front_door.enable", Some((tenant.id, slug)), detail).await?;
        finish(tx, tenant.id, pos.generated).await
    }

    /// Replaces the POS key (given or generated); the previous one keeps verifying for `overlap`.
    pub async fn rotate_front_door_pos_key(
        &self,
        actor: &str,
        slug: &str,
        source: PosKeySource,
        overlap: Duration,
    ) -> Result<FrontDoorIssued, RegistryError> {
        check_actor(actor)?;
        let seconds = check_overlap(overlap)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let tenant = find(&tx, slug, true).await?;
        let (id, sign_type) = door_of(&tx, &tenant).await?.ok_or_else(|| RegistryError::NoFrontDoor(slug.into()))?;
        let pos = pos_key(sign_type, source)?;
        let data_key = self.data_key(&tenant)?;
        let ending = end_keys(&tx, tenant.id, Purpose::FrontDoorPosKey, seconds).await?;
        let fingerprint = pos.fingerprint.clone();
        let key = WindowKey {
            purpose: Purpose::FrontDoorPosKey,
            plaintext: pos.stored.as_bytes(),
            fingerprint: pos.fingerprint,
            public_key: None,
            from_in: None,
        };
        put_window_key(&tx, &data_key, tenant.id, key).await?;
        let detail = json!({
            "id": id,
            "sign_type": sign_type.as_str(),
            "pos_key": source_word(&pos.generated),
            "pos_key_fingerprint": fingerprint,
            "overlap_seconds": overlap.as_secs(),
            "older_keys_ending": ending,
        });
        audit(&tx, actor, "front_door.rotate_pos_key", Some((tenant.id, slug)), detail).await?;
        finish(tx, tenant.id, pos.generated).await
    }

    /// Generates a new platform key pair, published at once; it signs from `overlap` from now on
    /// (the previous key signs until then), so POS operators install it during the overlap.
    pub async fn rotate_front_door_platform_key(
        &self,
        actor: &str,
        slug: &str,
        overlap: Duration,
    ) -> Result<FrontDoorIssued, RegistryError> {
        check_actor(actor)?;
        let seconds = check_overlap(overlap)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let tenant = find(&tx, slug, true).await?;
        let (id, sign_type) = door_of(&tx, &tenant).await?.ok_or_else(|| RegistryError::NoFrontDoor(slug.into()))?;
        if sign_type == SignType::Md5 {
            return Err(Invalid(format!(
                "the front door of `{slug}` signs with its MD5 key and has no platform key: rotate its POS key"
            ))
            .into());
        }
        let pair = platform_pair(sign_type)?;
        let data_key = self.data_key(&tenant)?;
        let ending = end_keys(&tx, tenant.id, Purpose::FrontDoorPlatformKey, seconds).await?;
        let fingerprint = pair.public.fingerprint();
        let key = WindowKey {
            purpose: Purpose::FrontDoorPlatformKey,
            plaintext: pair.private_pem.as_bytes(),
            fingerprint: Some(fingerprint.clone()),
            public_key: Some(pair.public.to_base64()),
            from_in: Some(seconds),
        };
        put_window_key(&tx, &data_key, tenant.id, key).await?;
        let detail = json!({
            "id": id,
            "sign_type": sign_type.as_str(),
            "platform_key_fingerprint": fingerprint,
            "overlap_seconds": overlap.as_secs(),
            "older_keys_ending": ending,
        });
        audit(&tx, actor, "front_door.rotate_platform_key", Some((tenant.id, slug)), detail).await?;
        finish(tx, tenant.id, Generated::default()).await
    }

    /// Removes the tenant's front door (its keys are destroyed; its id becomes free); answers it
    /// as it was.
    pub async fn disable_front_door(&self, actor: &str, slug: &str) -> Result<FrontDoorView, RegistryError> {
        check_actor(actor)?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let tenant = find(&tx, slug, true).await?;
        let door = front_door_views(&tx, &[tenant.id])
            .await?
            .remove(&tenant.id)
            .ok_or_else(|| RegistryError::NoFrontDoor(slug.into()))?;
        delete_door(&tx, tenant.id).await?;
        bump(&tx, tenant.id).await?;
        let detail = json!({ "id": door.id, "sign_type": door.sign_type.as_str() });
        audit(&tx, actor, "front_door.disable", Some((tenant.id, slug)), detail).await?;
        tx.commit().await?;
        Ok(door)
    }
}
