//! The bodies the admin API takes, public so its clients write them with the same types.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{Limits, SecondaryMerchant};

/// `POST /admin/tenants`: a tenant, and optionally its keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    pub slug: String,
    pub name: String,
    /// `openapi` or `mapi`.
    pub dialect: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seller_id: Option<String>,
    /// `RSA2`, `RSA` or `MD5`.
    pub sign_type: String,
    /// `sandbox`, `production` or a `gateway.do` URL.
    #[serde(default = "sandbox")]
    pub environment: String,
    /// The registry's defaults when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_merchant: Option<SecondaryMerchant>,
    #[serde(default)]
    pub keys: KeysBody,
}

fn sandbox() -> String {
    "sandbox".into()
}

/// Keys as the API takes them (`PUT /admin/tenants/{slug}/keys`, and in a create or an update).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysBody {
    /// PEM (PKCS#1 or PKCS#8) or bare base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_private_key: Option<String>,
    /// Have the registry generate the app key pair (its public key is in the answer).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub generate_app_key: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_public_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alipay_public_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5_key: Option<String>,
}

/// Says which keys are given, never what they are.
impl fmt::Debug for KeysBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let given = |key: &Option<String>| if key.is_some() { "***" } else { "none" };
        f.debug_struct("KeysBody")
            .field("app_private_key", &given(&self.app_private_key))
            .field("generate_app_key", &self.generate_app_key)
            .field("app_public_key", &self.app_public_key)
            .field("alipay_public_key", &self.alipay_public_key)
            .field("md5_key", &given(&self.md5_key))
            .finish()
    }
}

/// `POST /admin/tenants/{slug}/api-secret/rotate`, and
/// `POST /admin/tenants/{slug}/front-door/platform-key` (the new key signs once the overlap ends).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// How long the older secrets keep working (`30m`, `24h`).
    #[serde(default = "day")]
    pub overlap: String,
}

fn day() -> String {
    "24h".into()
}

/// `POST /admin/tenants/{slug}/front-door`: enable the front door, with one POS key source
/// (`pos_public_key`, `md5_key` or `generate_pos_key`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontDoorBody {
    /// `RSA2` or `RSA` (OpenAPI); `MD5`, `RSA` or `RSA2` (MAPI).
    pub sign_type: String,
    /// The app id (OpenAPI) or partner (MAPI) the POS will send; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// RSA2 / RSA: the POS's public key (PEM or bare base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos_public_key: Option<String>,
    /// MD5: the MD5 key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5_key: Option<String>,
    /// Generate the POS key (an RSA key pair or an MD5 key): the answer holds it, once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub generate_pos_key: bool,
}

/// `POST /admin/tenants/{slug}/front-door/pos-key`: a new POS key (one source, as for enabling);
/// the previous one keeps verifying for `overlap`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PosKeyBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos_public_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5_key: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub generate_pos_key: bool,
    /// How long the previous POS key keeps verifying (`30m`, `24h`, `7d`; at most 30 days).
    #[serde(default = "day")]
    pub overlap: String,
}

fn mask(key: &Option<String>) -> &'static str {
    if key.is_some() { "***" } else { "none" }
}

/// Says whether an MD5 key is given, never what it is.
impl fmt::Debug for FrontDoorBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrontDoorBody")
            .field("sign_type", &self.sign_type)
            .field("id", &self.id)
            .field("pos_public_key", &self.pos_public_key)
            .field("md5_key", &mask(&self.md5_key))
            .field("generate_pos_key", &self.generate_pos_key)
            .finish()
    }
}

/// Says whether an MD5 key is given, never what it is.
impl fmt::Debug for PosKeyBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PosKeyBody")
            .field("pos_public_key", &self.pos_public_key)
            .field("md5_key", &mask(&self.md5_key))
            .field("generate_pos_key", &self.generate_pos_key)
            .field("overlap", &self.overlap)
            .finish()
    }
}
