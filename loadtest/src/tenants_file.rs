//! The tenants file: who the load generator acts as. Written by `loadtest provision` (and by
//! `deploy/dev up` as `.dev/stack.json`, whose `tenants` entries have the same shape).

use std::path::Path;

use serde::{Deserialize, Serialize};
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
}

/// The file: the tenants, and where the stack they live on answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TenantsFile {
    #[serde(default)]
    pub gateway_url: Option<String>,
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

    /// Only the tenants that sign with `sign_type` (`MD5`, `RSA2`), or all for `None`.
    pub fn only(&self, sign_type: Option<&str>) -> Vec<PosTenant> {
        self.tenants.iter().filter(|t| sign_type.is_none_or(|s| t.sign_type.eq_ignore_ascii_case(s))).cloned().collect()
    }
}
