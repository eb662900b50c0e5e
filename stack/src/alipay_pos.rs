//! A POS that speaks Alipay's own OpenAPI to the gateway's front door, as the official SDKs do:
//! `loadtest`'s [`loadtest::client::alipay::AlipayPos`] (which the load generator drives too),
//! with a test's manners: anything that goes wrong on the way panics.

use std::ops::Deref;
use std::sync::Arc;

use alipay::openapi::{Call, Reply};
use alipay::{AppId, Params, Signer};
use loadtest::client::alipay::AlipayPos as Core;

/// The POS; its fields (`url`, `app_id`, `signer`, `verifier`, the keys as a POS vendor
/// configures them) are the core's.
#[derive(Clone, Debug)]
pub struct AlipayPos(pub Core);

impl Deref for AlipayPos {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.0
    }
}

impl AlipayPos {
    /// Signs and sends `call` (with `notify_url`, if given); the verified answer.
    pub async fn exec<C: Call>(&self, call: &C, notify_url: Option<&str>) -> Reply<C::Answer> {
        self.0.exec(call, notify_url).await.unwrap()
    }

    /// The signed parameters of `call`, to send as they are or changed.
    pub fn params<C: Call>(&self, call: &C, notify_url: Option<&str>) -> Params {
        self.0.params(call, notify_url).unwrap()
    }

    /// Signs `params` again (after a change), as the POS's SDK would have.
    pub fn sign(&self, params: &mut Params) {
        self.0.sign(params).unwrap();
    }

    /// Posts `params` as a form; the answer's body.
    pub async fn send(&self, params: &Params) -> String {
        let (status, body) = self.0.send(params).await.unwrap();
        assert_eq!(status, 200, "Alipay answers every call with HTTP 200");
        String::from_utf8(body.to_vec()).unwrap()
    }

    /// The same POS signing with another key (a forger).
    pub fn with_signer(&self, signer: Arc<Signer>) -> AlipayPos {
        AlipayPos(self.0.clone().with_signer(signer))
    }

    /// The same POS claiming another app id.
    pub fn with_app_id(&self, app_id: AppId) -> AlipayPos {
        AlipayPos(self.0.clone().with_app_id(app_id))
    }

    /// The same POS calling another `gateway.do`.
    pub fn with_url(&self, url: String) -> AlipayPos {
        AlipayPos(self.0.clone().with_url(url))
    }
}
