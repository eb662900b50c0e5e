//! The sandbox's shared state, and the answer type every handler returns.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alipay::charset::Charset;
use bytes::Bytes;
use http::StatusCode;

use crate::billing::Billing;
use crate::clock::Clock;
use crate::faults::Faults;
use crate::ledger::Ledger;
use crate::merchants::{Merchants, Platform};
use crate::oauth_codes::OauthCodes;
use crate::stats::Stats;

/// Everything a request may touch.
pub struct App {
    /// The bound address (bill download links point at it).
    pub addr: SocketAddr,
    pub clock: Clock,
    pub merchants: Merchants,
    pub platform: Arc<Platform>,
    pub ledger: Ledger,
    pub stats: Arc<Stats>,
    pub faults: Faults,
    pub oauth: OauthCodes,
    pub billing: Billing,
}

/// One HTTP answer, possibly held back for a while first (scenario 64, injected latency).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Bytes,
    pub delay: Option<Duration>,
}

impl Answer {
    /// An OpenAPI answer: JSON, labelled `text/html` in the request charset as Alipay does.
    pub fn openapi(body: Vec<u8>, charset: Charset) -> Self {
        Self::ok(format!("text/html;charset={}", charset.label()), body)
    }

    /// A MAPI answer: XML in the request charset.
    pub fn mapi(body: Vec<u8>, charset: Charset) -> Self {
        Self::ok(format!("text/xml;charset={}", alipay::mapi::charset_label(charset)), body)
    }

    /// A test hook's JSON answer.
    pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Self {
        let body = serde_json::to_vec(value).unwrap_or_default();
        Answer { status, content_type: "application/json".into(), body: body.into(), delay: None }
    }

    /// A test hook's error: `{"error": "..."}`.
    pub fn hook_error(status: StatusCode, message: impl std::fmt::Display) -> Self {
        Self::json(status, &serde_json::json!({ "error": message.to_string() }))
    }

    pub fn text(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Self {
        Answer { status, content_type: content_type.into(), body: body.into(), delay: None }
    }

    /// What a load balancer in front of Alipay answers when the backend fails (scenario 65).
    pub fn bad_gateway() -> Self {
        Self::text(
            StatusCode::BAD_GATEWAY,
            "text/html",
            "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>Tengine</center></body></html>",
        )
    }

    fn ok(content_type: String, body: Vec<u8>) -> Self {
        Answer { status: StatusCode::OK, content_type, body: body.into(), delay: None }
    }

    pub fn delayed(mut self, by: Duration) -> Self {
        self.delay = Some(self.delay.unwrap_or_default() + by);
        self
    }
}
