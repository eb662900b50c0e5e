//! The two demo tenants — an OpenAPI RSA2 noodle bar and a Global MD5 dim sum restaurant in
//! Hong Kong — onboarded through the gateway's admin API (as an acquirer's automation would) and
//! registered with the sandbox, each with its front door enabled (POS keys generated: the noodle
//! bar's an RSA2 key pair, the dim sum restaurant's an MD5 key). Idempotent: existing tenants are
//! kept; their POS secrets (partner API and front door) come from `stack.json`, or are rotated
//! when that was lost.

use std::collections::BTreeMap;

use alipay::SignType;
use loadtest::onboard::{AdminApi, Backend, Credential, MerchantKeys, NewMerchant, Onboarder};
use loadtest::tenants_file::PosTenant;
use sandbox::Registration;
use tenants::model::Dialect;

use crate::state::{StackFile, State};

/// A demo tenant.
struct Demo {
    slug: &'static str,
    name: &'static str,
    dialect: Dialect,
    sign_type: SignType,
    alipay_id: &'static str,
    currency: &'static str,
}

const DEMOS: [Demo; 2] = [
    Demo {
        slug: "noodle-bar",
        name: "Noodle Bar",
        dialect: Dialect::Openapi,
        sign_type: SignType::Rsa2,
        alipay_id: "2021000000000001",
        currency: "CNY",
    },
    Demo {
        slug: "dim-sum-hk",
        name: "Dim Sum HK",
        dialect: Dialect::Mapi,
        sign_type: SignType::Md5,
        alipay_id: "2088000000000002",
        currency: "HKD",
    },
];

/// Where the stack answers, and the admin token.
pub struct Endpoints {
    pub admin_url: String,
    pub sandbox_url: String,
    pub token: String,
}

/// Makes sure both demo tenants exist, with their front doors (OpenAPI RSA2 and Global MD5, POS
/// keys generated), and the sandbox knows them; records their credentials (the front doors' in
/// `front_door`) in `stack.tenants` and the sandbox registrations in `sandbox-merchants.json`.
pub async fn ensure(state: &State, endpoints: &Endpoints, stack: &mut StackFile) -> anyhow::Result<()> {
    let mut merchants: BTreeMap<String, Registration> = std::fs::read(state.path("sandbox-merchants.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Vec<Registration>>(&b).ok())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| Some((m.alipay_id()?.to_owned(), m)))
        .collect();
    let admin = AdminApi::new(&endpoints.admin_url, &endpoints.token);
    let onboarder = Onboarder::new(Backend::AdminApi(admin.clone()), &endpoints.sandbox_url).await?;
    let mut tenants = Vec::new();
    let gateway_url = stack.gateway_url.clone();
    for demo in DEMOS {
        let known = stack.tenants.iter().find(|t| t.slug == demo.slug).cloned();
        let (credential, tenant_id) = match admin.find(demo.slug).await? {
            None => {
                let onboarded = onboarder.onboard(new_merchant(&demo)).await?;
                merchants.insert(demo.alipay_id.to_owned(), onboarded.registration);
                (onboarded.credential, onboarded.tenant_id)
            }
            Some(id) => match &known {
                Some(known) => (Credential { key_id: known.key_id.clone(), secret: known.secret.clone() }, id),
                None => (admin.rotate_api_secret(demo.slug, "30m").await?, id),
            },
        };
        let registration = merchants.get(demo.alipay_id).ok_or_else(|| {
            anyhow::anyhow!(
                "{}'s sandbox registration is lost: delete .dev and the dev database to start over",
                demo.slug
            )
        })?;
        onboarder.register(registration).await?;
        let known_door = known.as_ref().and_then(|k| k.front_door.clone());
        let front_door = match (admin.has_front_door(demo.slug).await?, known_door) {
            (false, _) => onboarder.enable_front_door(demo.slug, &gateway_url, demo.dialect, demo.sign_type).await?,
            (true, Some(known)) => known,
            // Enabled, but its generated key is lost with stack.json: a new one, the old ended.
            (true, None) => onboarder.renew_front_door_pos_key(demo.slug, &gateway_url, demo.dialect).await?,
        };
        tenants.push(PosTenant {
            slug: demo.slug.into(),
            key_id: credential.key_id,
            secret: credential.secret,
            app_id: demo.alipay_id.into(),
            tenant_id: Some(tenant_id),
            dialect: demo.dialect.as_str().into(),
            sign_type: demo.sign_type.as_str().into(),
            currency: Some(demo.currency.into()),
            front_door: Some(front_door),
            environment: Some(format!("{}/gateway.do", endpoints.sandbox_url)),
        });
    }
    let registrations: Vec<&Registration> = merchants.values().collect();
    std::fs::write(state.path("sandbox-merchants.json"), serde_json::to_vec_pretty(&registrations)?)?;
    stack.tenants = tenants;
    Ok(())
}

/// `demo` with fresh keys: a random MD5 key, or an app key pair the registry generates.
fn new_merchant(demo: &Demo) -> NewMerchant {
    NewMerchant {
        slug: demo.slug.into(),
        name: demo.name.into(),
        dialect: demo.dialect,
        alipay_id: demo.alipay_id.into(),
        sign_type: demo.sign_type,
        keys: match demo.sign_type {
            SignType::Md5 => MerchantKeys::random_md5(),
            _ => MerchantKeys::GeneratedRsa,
        },
        limits: None,
        webhook_url: None,
    }
}
