//! The tenants file: who the load generator acts as. Written by `loadtest provision` (and by
//! `deploy/dev up` as `.dev/stack.json`, whose `tenants` entries have the same shape).

use std::path::Path;

use serde::{Deserialize, Serialize};
use tenants::model::{Dialect, Environment};
use uuid::Uuid;

/// One tenant's POS credentials, and what verification needs to find its trades.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PosTenant {
    pub slug: String,
    pub key_id: String,
    pub secret: String,
    /// Alipay's id of the merchant: the OpenAPI `app_id` or the Global `partner`.
    pub app_id: String,
    /// The tenant's id in the ledger (verification reads its trades).
    #[serde(default)]
    pub tenant_id: Option<Uuid>,
    /// `openapi` or `mapi`.
    #[serde(default = "openapi")]
    pub dialect: String,
    /// `RSA2`, `RSA` or `MD5`.
    #[serde(default = "rsa2")]
    pub sign_type: String,
    /// The currency its payments are in (Global tenants must say one).
    #[serde(default)]
    pub currency: Option<String>,
    /// The tenant's front door, when it is enabled: what POS software on Alipay's SDKs configures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub front_door: Option<FrontDoorCredentials>,
    /// The Alipay its calls go to, as onboarded (`sandbox`, `production` or a gateway.do URL):
    /// `loadtest run` refuses tenants not known to be outside production.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// What a POS vendor configures in an Alipay SDK to use a tenant's front door.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontDoorCredentials {
    /// The front door's `gateway.do` (`…/alipay/gateway.do`, or `…/alipay/mapi/gateway.do`).
    pub gateway_url: String,
    /// The app id the POS signs as (OpenAPI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// The partner the POS signs as (Global MAPI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner: Option<String>,
    /// `RSA2`, `RSA` or `MD5`.
    pub sign_type: String,
    /// The POS's private key, PKCS#1 PEM (RSA front doors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_private_key: Option<String>,
    /// The same key, PKCS#8 PEM (as Java SDKs take it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_private_key_pkcs8: Option<String>,
    /// The front door's platform public key, bare base64 (SDKs' "Alipay public key").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alipay_public_key: Option<String>,
    /// The MD5 key (MD5 front doors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5_key: Option<String>,
}

fn openapi() -> String {
    "openapi".into()
}

fn rsa2() -> String {
    "RSA2".into()
}

impl PosTenant {
    pub fn is_md5(&self) -> bool {
        self.sign_type.eq_ignore_ascii_case("MD5")
    }

    /// Whether its calls are known to go elsewhere than Alipay's production (its environment is
    /// given, and is neither `production` nor production's gateway.do).
    pub fn outside_production(&self) -> bool {
        let Some(Ok(environment)) = self.environment.as_deref().map(str::parse::<Environment>) else {
            return false;
        };
        let production = |dialect| Environment::Production.gateway_url(dialect);
        let url = environment.custom_url().map(|u| u.trim_end_matches('/'));
        environment != Environment::Production
            && url.is_none_or(|url| url != production(Dialect::Openapi) && url != production(Dialect::Mapi))
    }
}

/// The file: the tenants, and where the stack they live on answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TenantsFile {
    #[serde(default)]
    pub gateway_url: Option<String>,
    /// Every gateway of the stack (`deploy/dev up --replicas N`); `gateway_url` is the first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateway_urls: Vec<String>,
    #[serde(default)]
    pub sandbox_url: Option<String>,
    #[serde(default)]
    pub database_url: Option<String>,
    pub tenants: Vec<PosTenant>,
}

impl TenantsFile {
    pub fn read(path: &Path) -> anyhow::Result<TenantsFile> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read the tenants file {}: {e}", path.display()))?;
        let file: TenantsFile = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("the tenants file {} is not valid: {e}", path.display()))?;
        if file.tenants.is_empty() {
            anyhow::bail!("the tenants file {} lists no tenants", path.display());
        }
        Ok(file)
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_vec_pretty(self)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
    }

    /// The gateways to offer load to: every one the file names.
    pub fn gateways(&self) -> Vec<String> {
        if self.gateway_urls.is_empty() {
            self.gateway_url.iter().cloned().collect()
        } else {
            self.gateway_urls.clone()
        }
    }

    /// Only the tenants that sign with `sign_type` (`MD5`, `RSA2`), or all for `None`.
    pub fn only(&self, sign_type: Option<&str>) -> Vec<PosTenant> {
        self.tenants.iter().filter(|t| sign_type.is_none_or(|s| t.sign_type.eq_ignore_ascii_case(s))).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_tenant_known_to_be_outside_production_is_safe_to_load() {
        let tenant = |environment: Option<&str>| PosTenant {
            slug: "t".into(),
            key_id: "k".into(),
            secret: "s".into(),
            app_id: "2021000000000001".into(),
            tenant_id: None,
            dialect: "openapi".into(),
            sign_type: "RSA2".into(),
            currency: None,
            front_door: None,
            environment: environment.map(str::to_owned),
        };
        for safe in ["sandbox", "http://127.0.0.1:8090/gateway.do"] {
            assert!(tenant(Some(safe)).outside_production(), "{safe}");
        }
        let production = [
            None,
            Some("production"),
            Some("https://openapi.alipay.com/gateway.do"),
            Some("https://globalmapi.alipay.com/gateway.do/"),
            Some("not a url"),
        ];
        for unsafe_ in production {
            assert!(!tenant(unsafe_).outside_production(), "{unsafe_:?}");
        }
    }
}
