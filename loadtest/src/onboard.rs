//! Onboarding a tenant, the one way: created in the registry (or through a gateway's tenants
//! admin API, with its own body types), then its Alipay account registered with the sandbox
//! ([`sandbox::Registration`]). `loadtest provision`, devstack's demo tenants, the test stack and
//! the gateway's bench all onboard through [`Onboarder`]; its front door, when wanted, is
//! enabled afterwards ([`Onboarder::enable_front_door`], in `front_door`).

mod admin_api;
mod front_door;
mod json_http;

use alipay::SignType;
use http::Method;
use rand::Rng;
use sandbox::Registration;
use tenants::admin::{CreateBody, KeysBody};
use tenants::model::{AlipayIdentity, Dialect, Environment, Invalid, Limits, NewTenant};
use tenants::registry::{AppKeySource, KeyInput};
use tenants::{Registry, RegistryError};
use zeroize::Zeroizing;

pub use admin_api::{AdminApi, Credential};
pub use front_door::OPENAPI_PATH;

use json_http::JsonHttp;

/// Where tenants are created.
pub enum Backend {
    /// The registry itself (the database and the master key); `actor` is who the audit trail names.
    Registry { registry: Registry, actor: String },
    /// A gateway's tenants admin API.
    AdminApi(AdminApi),
}

/// The keys a merchant signs with.
pub enum MerchantKeys {
    /// An MD5 key, shared with Alipay (Global MAPI).
    Md5(Zeroizing<String>),
    /// An RSA app key pair: the private key is sealed in the vault, the public one registered
    /// with Alipay.
    Rsa { app_private: Zeroizing<String>, app_public: String },
    /// An RSA app key pair the registry generates (through the admin API only); the public key
    /// it answers is registered with Alipay.
    GeneratedRsa,
}

impl MerchantKeys {
    /// A fresh MD5 key: 32 random characters of an alphabet without look-alikes.
    pub fn random_md5() -> MerchantKeys {
        const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
        let mut rng = rand::rng();
        MerchantKeys::Md5(Zeroizing::new((0..32).map(|_| char::from(ALPHABET[rng.random_range(0..32)])).collect()))
    }
}

/// A tenant to onboard. Its calls go to the sandbox; Alipay's public key is the sandbox's.
pub struct NewMerchant {
    pub slug: String,
    pub name: String,
    pub dialect: Dialect,
    /// `app_id` (OpenAPI) or `partner` (MAPI).
    pub alipay_id: String,
    pub sign_type: SignType,
    pub keys: MerchantKeys,
    /// The registry's defaults when `None`.
    pub limits: Option<Limits>,
    pub webhook_url: Option<String>,
}

/// A tenant onboarded: its id, its secrets (shown this once), and what the sandbox was given.
pub struct Onboarded {
    pub tenant_id: uuid::Uuid,
    pub credential: Credential,
    pub webhook_secret: String,
    pub registration: Registration,
}

/// An onboarding failed.
#[derive(Debug, thiserror::Error)]
pub enum OnboardError {
    #[error("{url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} answered {status}: {body}")]
    Refused { url: String, status: u16, body: String },
    #[error("{url} answered what was not expected: {source}")]
    BadAnswer { url: String, source: serde_json::Error },
    #[error("the registry refused: {0}")]
    Registry(#[from] RegistryError),
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error("the registry generates an app key only through the admin API")]
    CannotGenerate,
    #[error("the admin API generated no app public key")]
    NoAppPublicKey,
    #[error("the front door was enabled without a generated POS key")]
    NoPosKey,
    #[error("the front door was enabled without a platform public key")]
    NoPlatformKey,
}

/// Onboards tenants onto one backend, for one sandbox.
pub struct Onboarder {
    http: JsonHttp,
    backend: Backend,
    /// `http://host:port`.
    sandbox_url: String,
    /// The sandbox's platform public key, which every tenant verifies Alipay's answers with.
    alipay_public_key: String,
}

impl Onboarder {
    /// An onboarder for the sandbox at `sandbox_url` (whose public key it reads now).
    pub async fn new(backend: Backend, sandbox_url: &str) -> Result<Onboarder, OnboardError> {
        let http = JsonHttp::new();
        let sandbox_url = sandbox_url.trim_end_matches('/').to_owned();
        let url = format!("{sandbox_url}/sandbox/alipay-public-key");
        let key = http.send(Method::GET, &url, None::<&()>, None).await?.success()?;
        let alipay_public_key = String::from_utf8_lossy(&key).into_owned();
        Ok(Onboarder { http, backend, sandbox_url, alipay_public_key })
    }

    /// Creates the tenant, then registers its Alipay account with the sandbox.
    pub async fn onboard(&self, merchant: NewMerchant) -> Result<Onboarded, OnboardError> {
        let created = match &self.backend {
            Backend::Registry { registry, actor } => self.create_in_registry(registry, actor, &merchant).await?,
            Backend::AdminApi(admin) => admin.create(&self.create_body(&merchant)).await?,
        };
        let registration = match merchant.keys {
            MerchantKeys::Md5(key) => Registration::md5(&merchant.alipay_id, &key),
            MerchantKeys::Rsa { app_public, .. } => {
                registration_rsa(merchant.dialect, &merchant.alipay_id, merchant.sign_type, &app_public)
            }
            MerchantKeys::GeneratedRsa => {
                let app_public = created.app_public_key.ok_or(OnboardError::NoAppPublicKey)?;
                registration_rsa(merchant.dialect, &merchant.alipay_id, merchant.sign_type, &app_public)
            }
        };
        self.register(&registration).await?;
        Ok(Onboarded {
            tenant_id: created.tenant.id,
            credential: created.credential,
            webhook_secret: created.webhook_secret,
            registration,
        })
    }

    /// Registers (or registers again) a merchant with the sandbox.
    pub async fn register(&self, registration: &Registration) -> Result<(), OnboardError> {
        let url = format!("{}/sandbox/merchants", self.sandbox_url);
        self.http.send(Method::POST, &url, Some(registration), None).await?.success()?;
        Ok(())
    }

    /// Where the tenants' calls go.
    fn gateway_url(&self) -> String {
        format!("{}/gateway.do", self.sandbox_url)
    }

    async fn create_in_registry(
        &self,
        registry: &Registry,
        actor: &str,
        merchant: &NewMerchant,
    ) -> Result<admin_api::Created, OnboardError> {
        let keys = match &merchant.keys {
            MerchantKeys::Md5(key) => KeyInput { md5_key: Some(key.clone()), ..KeyInput::default() },
            MerchantKeys::Rsa { app_private, .. } => KeyInput {
                app_private_key: Some(AppKeySource::Text(app_private.clone())),
                alipay_public_key: Some(self.alipay_public_key.clone()),
                ..KeyInput::default()
            },
            MerchantKeys::GeneratedRsa => return Err(OnboardError::CannotGenerate),
        };
        let tenant = NewTenant {
            slug: merchant.slug.parse()?,
            name: merchant.name.clone(),
            identity: AlipayIdentity::new(merchant.dialect, &merchant.alipay_id, None, merchant.sign_type)?,
            environment: Environment::Custom(self.gateway_url()),
            limits: merchant.limits.unwrap_or_default(),
            webhook_url: merchant.webhook_url.clone(),
            secondary_merchant: None,
        };
        let created = registry.create(actor, tenant, keys).await?;
        Ok(admin_api::Created {
            tenant: admin_api::TenantId { id: created.tenant.settings.id },
            credential: Credential {
                key_id: created.credential.key_id,
                secret: created.credential.secret.expose().to_owned(),
            },
            webhook_secret: created.webhook_secret.expose().to_owned(),
            app_public_key: created.app_public_key,
        })
    }

    fn create_body(&self, merchant: &NewMerchant) -> CreateBody {
        let id = Some(merchant.alipay_id.clone());
        let (app_id, partner) = match merchant.dialect {
            Dialect::Openapi => (id, None),
            Dialect::Mapi => (None, id),
        };
        let keys = match &merchant.keys {
            MerchantKeys::Md5(key) => KeysBody { md5_key: Some(key.to_string()), ..KeysBody::default() },
            MerchantKeys::Rsa { app_private, .. } => KeysBody {
                app_private_key: Some(app_private.to_string()),
                alipay_public_key: Some(self.alipay_public_key.clone()),
                ..KeysBody::default()
            },
            MerchantKeys::GeneratedRsa => KeysBody {
                generate_app_key: true,
                alipay_public_key: Some(self.alipay_public_key.clone()),
                ..KeysBody::default()
            },
        };
        CreateBody {
            slug: merchant.slug.clone(),
            name: merchant.name.clone(),
            dialect: merchant.dialect.as_str().to_owned(),
            app_id,
            partner,
            seller_id: None,
            sign_type: merchant.sign_type.as_str().to_owned(),
            environment: self.gateway_url(),
            limits: merchant.limits,
            webhook_url: merchant.webhook_url.clone(),
            secondary_merchant: None,
            keys,
        }
    }
}

fn registration_rsa(dialect: Dialect, alipay_id: &str, sign_type: SignType, app_public: &str) -> Registration {
    let dialect = match dialect {
        Dialect::Openapi => sandbox::Dialect::Openapi,
        Dialect::Mapi => sandbox::Dialect::Mapi,
    };
    Registration::rsa(dialect, alipay_id, sign_type, app_public)
}
