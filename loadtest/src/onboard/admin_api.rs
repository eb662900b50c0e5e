//! A client of a gateway's tenants admin API (`tenants::admin`), writing its own body types.

use http::{Method, StatusCode};
use serde::Deserialize;
use tenants::admin::{CreateBody, FrontDoorBody, PosKeyBody, RotateBody};

use super::OnboardError;
use super::json_http::JsonHttp;

/// A gateway's admin listener (`http://host:port`) and its bearer token.
#[derive(Clone)]
pub struct AdminApi {
    http: JsonHttp,
    url: String,
    token: String,
}

/// A partner API credential as issued (its secret shown this once).
#[derive(Clone, Deserialize)]
pub struct Credential {
    pub key_id: String,
    pub secret: String,
}

/// The parts of `POST /admin/tenants`'s answer an onboarding needs.
#[derive(Deserialize)]
pub(crate) struct Created {
    pub tenant: TenantId,
    pub credential: Credential,
    pub webhook_secret: String,
    /// When the registry generated the app key pair.
    pub app_public_key: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct TenantId {
    pub id: uuid::Uuid,
}

impl AdminApi {
    pub fn new(url: &str, token: &str) -> AdminApi {
        AdminApi { http: JsonHttp::new(), url: url.trim_end_matches('/').to_owned(), token: token.to_owned() }
    }

    pub(crate) async fn create(&self, body: &CreateBody) -> Result<Created, OnboardError> {
        self.http.send(Method::POST, &self.path("tenants"), Some(body), Some(&self.token)).await?.json()
    }

    /// The id of the tenant `slug`; `None` if there is none.
    pub async fn find(&self, slug: &str) -> Result<Option<uuid::Uuid>, OnboardError> {
        let url = self.path(&format!("tenants/{slug}"));
        let answer = self.http.send(Method::GET, &url, None::<&()>, Some(&self.token)).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(Some(answer.json::<TenantId>()?.id))
    }

    /// A new API secret for `slug`; the older ones keep working for `overlap` (`30m`, `24h`).
    pub async fn rotate_api_secret(&self, slug: &str, overlap: &str) -> Result<Credential, OnboardError> {
        let url = self.path(&format!("tenants/{slug}/api-secret/rotate"));
        let body = RotateBody { overlap: overlap.to_owned() };
        self.http.send(Method::POST, &url, Some(&body), Some(&self.token)).await?.json()
    }

    /// Enables `slug`'s front door.
    pub(crate) async fn enable_front_door(
        &self,
        slug: &str,
        body: &FrontDoorBody,
    ) -> Result<super::front_door::Issued, OnboardError> {
        let url = self.path(&format!("tenants/{slug}/front-door"));
        self.http.send(Method::POST, &url, Some(body), Some(&self.token)).await?.json()
    }

    /// A new POS key for `slug`'s front door.
    pub(crate) async fn rotate_front_door_pos_key(
        &self,
        slug: &str,
        body: &PosKeyBody,
    ) -> Result<super::front_door::Issued, OnboardError> {
        let url = self.path(&format!("tenants/{slug}/front-door/pos-key"));
        self.http.send(Method::POST, &url, Some(body), Some(&self.token)).await?.json()
    }

    /// Whether `slug` has its front door enabled.
    pub async fn has_front_door(&self, slug: &str) -> Result<bool, OnboardError> {
        let url = self.path(&format!("tenants/{slug}/front-door"));
        let answer = self.http.send(Method::GET, &url, None::<&()>, Some(&self.token)).await?;
        Ok(answer.status != StatusCode::NOT_FOUND)
    }

    fn path(&self, path: &str) -> String {
        format!("{}/admin/{path}", self.url)
    }
}
