//! `loadtest provision`: N tenants with generated keys, registered with the sandbox and onboarded
//! either through a gateway's tenants admin API (`POST /admin/tenants`, with its bearer token:
//! what a load tester of a deployment has) or straight into the registry (the `tenants` CLI's
//! code path, which needs the database and the master key), written to a tenants file.
//!
//! RSA2 tenants share one generated app key pair (2048-bit generation takes tens of
//! milliseconds; a thousand of them would dominate the setup), each sealed and parsed as its own
//! tenant's; MD5 tenants each get their own random key.

use std::sync::Arc;

use alipay::{PrivateKey, SignType};
use rand::Rng;
use tenants::model::{Dialect, Limits};
use tenants::{Keyring, Registry};

use crate::onboard::{AdminApi, Backend, MerchantKeys, NewMerchant, Onboarder};
use crate::tenants_file::{PosTenant, TenantsFile};

#[derive(Debug, Clone)]
pub struct ProvisionOptions {
    pub count: usize,
    /// Share of the tenants that are Global (MAPI) MD5 merchants; the rest are OpenAPI RSA2.
    pub md5_share: f64,
    /// Slugs are `{prefix}-{n}`.
    pub prefix: String,
    /// The ledger's database, for onboarding into the registry and for verification later.
    pub database_url: Option<String>,
    pub sandbox_url: String,
    pub gateway_url: Option<String>,
    /// Per-tenant rate limits (generous for load tests).
    pub limits: Limits,
}

/// Where tenants are onboarded.
pub enum Onboarding {
    /// The registry itself, sealing keys under this master keyring.
    Registry(Arc<Keyring>),
    /// A gateway's admin listener (`http://host:port`) and its admin token.
    AdminApi { url: String, token: String },
}

/// Creates the tenants; answers the file to write.
pub async fn provision(options: &ProvisionOptions, onboarding: Onboarding) -> anyhow::Result<TenantsFile> {
    if options.count == 0 || options.count > 100_000 {
        anyhow::bail!("--count must be from 1 to 100,000");
    }
    if !(0.0..=1.0).contains(&options.md5_share) {
        anyhow::bail!("--md5-share must be from 0 to 1");
    }
    let backend = match onboarding {
        Onboarding::Registry(keyring) => {
            let url =
                options.database_url.as_deref().ok_or_else(|| anyhow::anyhow!("onboarding needs the database"))?;
            let registry = Registry::new(tenants::db::pool(url, 4)?, Some(keyring));
            Backend::Registry { registry, actor: "loadtest".into() }
        }
        Onboarding::AdminApi { url, token } => Backend::AdminApi(AdminApi::new(&url, &token)),
    };
    let onboarder = Onboarder::new(backend, &options.sandbox_url).await?;
    let app_key = PrivateKey::generate()?;
    let app_private = app_key.to_pkcs8_pem()?;
    let app_public = app_key.public_key()?.to_pem();
    let md5_count = (options.count as f64 * options.md5_share).round() as usize;
    // Six digits of this run in every Alipay id: runs a second apart, or started in the same second
    // (two provisionings of one test), must not share an app or partner at the sandbox.
    let run: u32 = rand::rng().random_range(0..1_000_000);
    let mut tenants = Vec::with_capacity(options.count);
    for n in 0..options.count {
        let md5 = n >= options.count - md5_count;
        let (dialect, sign_type, alipay_id, keys) = if md5 {
            (Dialect::Mapi, SignType::Md5, format!("2088{run:06}{n:06}"), MerchantKeys::random_md5())
        } else {
            let keys = MerchantKeys::Rsa { app_private: app_private.clone(), app_public: app_public.clone() };
            (Dialect::Openapi, SignType::Rsa2, format!("2021{run:06}{n:06}"), keys)
        };
        let slug = format!("{}-{n}", options.prefix);
        let merchant = NewMerchant {
            slug: slug.clone(),
            name: format!("Load test restaurant {n}"),
            dialect,
            alipay_id: alipay_id.clone(),
            sign_type,
            keys,
            limits: Some(options.limits),
            webhook_url: None,
        };
        let onboarded = onboarder.onboard(merchant).await?;
        tenants.push(PosTenant {
            slug,
            key_id: onboarded.credential.key_id,
            secret: onboarded.credential.secret,
            app_id: alipay_id,
            tenant_id: Some(onboarded.tenant_id),
            dialect: dialect.as_str().to_owned(),
            sign_type: sign_type.as_str().to_owned(),
            currency: Some(if md5 { "HKD".into() } else { "CNY".into() }),
            front_door: None,
        });
    }
    Ok(TenantsFile {
        gateway_url: options.gateway_url.clone(),
        sandbox_url: Some(options.sandbox_url.clone()),
        database_url: options.database_url.clone(),
        tenants,
    })
}
