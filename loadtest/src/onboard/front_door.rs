//! The onboarding's front-door step: a tenant's Alipay-compatible `gateway.do` enabled (RSA2,
//! with a POS key the registry generates and hands back once), and what a POS vendor then
//! configures in an Alipay SDK ([`FrontDoorCredentials`]).

use alipay::SignType;
use serde::Deserialize;
use tenants::admin::FrontDoorBody;
use tenants::registry::{FrontDoorInput, FrontDoorIssued, PosKeySource};

use super::{Backend, OnboardError, Onboarder};
use crate::tenants_file::FrontDoorCredentials;

/// The path of the OpenAPI front door on a gateway's partner listener.
pub const OPENAPI_PATH: &str = "/alipay/gateway.do";

/// The parts of `POST /admin/tenants/{slug}/front-door`'s answer (or the registry's) a POS needs:
/// they go to the tenants file as they are.
#[derive(Deserialize)]
pub(crate) struct Issued {
    id: String,
    sign_type: String,
    platform_public_key: Option<String>,
    pos_private_key_pkcs1_pem: Option<String>,
    pos_private_key_pkcs8_pem: Option<String>,
}

impl From<FrontDoorIssued> for Issued {
    fn from(issued: FrontDoorIssued) -> Self {
        Issued {
            id: issued.id,
            sign_type: issued.sign_type.as_str().to_owned(),
            platform_public_key: issued.platform_public_key,
            pos_private_key_pkcs1_pem: issued.pos_private_key_pkcs1_pem.map(|k| k.to_string()),
            pos_private_key_pkcs8_pem: issued.pos_private_key_pkcs8_pem.map(|k| k.to_string()),
        }
    }
}

impl Onboarder {
    /// Enables the front door of the OpenAPI tenant `slug` (RSA2, a generated POS key); answers
    /// the credentials of a POS on the gateway whose partner API is at `gateway_url`.
    pub async fn enable_front_door(&self, slug: &str, gateway_url: &str) -> Result<FrontDoorCredentials, OnboardError> {
        let issued: Issued = match &self.backend {
            Backend::Registry { registry, actor } => {
                let input = FrontDoorInput { id: None, sign_type: SignType::Rsa2, pos_key: PosKeySource::Generate };
                registry.enable_front_door(actor, slug, input).await?.into()
            }
            Backend::AdminApi(admin) => {
                let body = FrontDoorBody {
                    sign_type: SignType::Rsa2.as_str().to_owned(),
                    id: None,
                    pos_public_key: None,
                    md5_key: None,
                    generate_pos_key: true,
                };
                admin.enable_front_door(slug, &body).await?
            }
        };
        let pos_key = issued.pos_private_key_pkcs1_pem.ok_or(OnboardError::NoPosKey)?;
        Ok(FrontDoorCredentials {
            gateway_url: format!("{}{OPENAPI_PATH}", gateway_url.trim_end_matches('/')),
            app_id: Some(issued.id),
            partner: None,
            sign_type: issued.sign_type,
            app_private_key: Some(pos_key),
            app_private_key_pkcs8: issued.pos_private_key_pkcs8_pem,
            alipay_public_key: Some(issued.platform_public_key.ok_or(OnboardError::NoPlatformKey)?),
            md5_key: None,
        })
    }
}
