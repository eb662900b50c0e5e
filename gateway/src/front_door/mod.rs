//! The front door: an Alipay-compatible `gateway.do`, so POS software written on Alipay's
//! official SDKs moves to us by changing the gateway URL, the app id and the keys.
//!
//! ```text
//! read parameters (query and form, in their charset) → the tenant by its front-door app id
//!   → Alipay's common checks and the POS's signature (its key, or the previous one during a
//!   rotation's overlap) → notify_url allowed? → tenant suspended? → rate budget
//!   → the method, through the partner API's own path (intent first, idempotency, the call to
//!   the real Alipay with the merchant's keys, the ledger, the reconciler)
//!   → Alipay's answer, signed with the tenant's front-door platform key
//! ```
//! What the POS hears is what Alipay would say: `10000`; `40004` with Alipay's sub codes;
//! `10003` (pay) or `20000 ACQ.SYSTEM_ERROR` where the outcome is UNKNOWN, so the POS runs the
//! query-then-cancel loop it already has, against the ledger; the reconciler still settles a
//! trade the POS gives up on. Answers given before the app is known go unsigned, as Alipay's do.
//!
//! # Layout
//! - [`mod@self`]: reading, finding the tenant, the checks, answering.
//! - [`openapi`]: the OpenAPI methods.
//! - [`mapi`]: the Global MAPI front door (`/alipay/mapi/gateway.do`): its checks, services and
//!   XML answers.
//! - [`answers`]: Alipay's answer members, built from the ledger's rows.

pub mod answers;
pub mod mapi;
pub mod openapi;

use std::sync::Arc;

use alipay::Charset;
use alipay::openapi::Status;
use alipay::server::openapi::{self as wire, invalid, missing, response_key};
use alipay::server::{self, GatewayRequest};
use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use telemetry::server::BudgetHold;
use tenants::model::Dialect;
use tenants::snapshot::{FrontDoor, Tenant};
use tenants::url_policy::{self, UrlPolicy};
use time::OffsetDateTime;

use crate::api::Ctx;
use crate::limits::Budget;
use crate::state::AppState;

/// Answers one front-door request in `dialect`. Its body was read within the limits and holds its
/// bytes of the unauthenticated budget (`unverified`) until the POS's signature is checked.
pub async fn answer(
    state: &Arc<AppState>,
    dialect: Dialect,
    parts: &http::request::Parts,
    body: &[u8],
    unverified: BudgetHold,
) -> Response<Full<Bytes>> {
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let (peek, decoded) = server::read(parts.uri.query(), content_type, body);
    match dialect {
        Dialect::Openapi => openapi_door(state, peek, decoded, unverified).await,
        Dialect::Mapi => mapi::answer(state, decoded, unverified).await,
    }
}

async fn openapi_door(
    state: &Arc<AppState>,
    peek: server::Peek,
    decoded: Result<GatewayRequest, server::RequestError>,
    unverified: BudgetHold,
) -> Response<Full<Bytes>> {
    let key = response_key(peek.call.as_deref());
    let req = match decoded {
        Ok(req) => req,
        Err(error) => return unsigned(&key, &wire::unreadable(&error), Charset::Utf8),
    };
    let Some(method) = req.value("method").map(str::to_owned) else {
        return unsigned(&key, &missing("method"), req.charset);
    };
    let Some(app_id) = req.value("app_id") else {
        return unsigned(&key, &missing("app-id"), req.charset);
    };
    let snapshot = state.snapshots.current();
    let Some(tenant) = snapshot.by_front_door(Dialect::Openapi, app_id).filter(|t| t.front_door.is_some()).cloned()
    else {
        return unsigned(&key, &invalid("isv.invalid-app-id", "invalid app_id"), req.charset);
    };
    drop(snapshot);
    let now = OffsetDateTime::now_utc();
    let answer = Answering { tenant: &tenant, now, charset: req.charset };
    let checked = front_door_of(&tenant).and_then(|door| wire::check_common(&req, door.sign_type, door.verifiers(now)));
    let admitted = match checked {
        Ok(()) => admit(state, &tenant, &req, budget_of(req.value("method"))).await,
        Err(status) => Err(status),
    };
    if let Err(status) = admitted {
        metrics::counter!("gateway_front_door_refused_total", "reason" => refusal_label(&status)).increment(1);
        return answer.status(&key, &status);
    }
    drop(unverified);
    let ctx = Ctx { state: state.clone(), tenant: tenant.clone(), query: None };
    let (key, result) = openapi::dispatch(&ctx, &method, &req, key).await;
    match result {
        Ok(member) => answer.member(&key, &member),
        Err(status) => answer.status(&key, &status),
    }
}

fn front_door_of(tenant: &Tenant) -> Result<&FrontDoor, Status> {
    tenant.front_door.as_ref().ok_or_else(|| invalid("isv.invalid-app-id", "invalid app_id"))
}

/// What budget a call draws on: pays and QR orders the pay budget, the rest the other.
fn budget_of(call: Option<&str>) -> Budget {
    match call {
        Some("alipay.trade.pay" | "alipay.trade.precreate")
        | Some("alipay.acquire.overseas.spot.pay" | "alipay.acquire.precreate") => Budget::Pay,
        _ => Budget::Other,
    }
}

/// The tenant's own gates, after the POS's signature verified: the notify_url may be sent to,
/// the tenant is active, the call is within its budget (in OpenAPI's words; MAPI answers its own).
async fn admit(state: &AppState, tenant: &Tenant, req: &GatewayRequest, budget: Budget) -> Result<(), Status> {
    if let Some(url) = req.value("notify_url")
        && url_policy::check(url, UrlPolicy::for_environment(&tenant.environment)).is_err()
    {
        return Err(invalid("isv.invalid-parameter", "invalid notify_url"));
    }
    if !tenant.is_active() {
        return Err(Status::error(
            "40006",
            "Insufficient Permissions",
            "isv.insufficient-isv-permissions",
            "the app is suspended",
        ));
    }
    if state.budgets.check(tenant, budget).await.is_err() {
        metrics::counter!("gateway_rate_limited_total", "budget" => budget.as_str()).increment(1);
        return Err(Status::error("40005", "Call Limited", "isv.app-call-limited", "call limited"));
    }
    Ok(())
}

/// A metric label for a refusal: its sub code, from a fixed set.
fn refusal_label(status: &Status) -> &'static str {
    match status.sub_code.as_deref().unwrap_or("") {
        "isv.invalid-signature" => "signature",
        "isv.app-call-limited" => "rate_limited",
        "isv.insufficient-isv-permissions" => "suspended",
        "isv.invalid-timestamp" | "isv.invalid-parameter" | "isv.invalid-format" | "isv.invalid-signature-type" => {
            "invalid"
        }
        sub if sub.starts_with("isv.missing-") => "missing",
        _ => "other",
    }
}

/// How answers to one known tenant are written: signed with its front-door key at `now`.
struct Answering<'a> {
    tenant: &'a Tenant,
    now: OffsetDateTime,
    charset: Charset,
}

impl Answering<'_> {
    fn member(&self, key: &str, member: &str) -> Response<Full<Bytes>> {
        let signer = self.tenant.front_door.as_ref().and_then(|f| f.signer(self.now));
        if signer.is_none() {
            tracing::error!(tenant = %self.tenant.slug, "front door has no signing key; answering unsigned");
        }
        respond(wire::answer(key, member, signer, self.charset), self.charset)
    }

    fn status(&self, key: &str, status: &Status) -> Response<Full<Bytes>> {
        self.member(key, &wire::member(status))
    }
}

fn unsigned(key: &str, status: &Status, charset: Charset) -> Response<Full<Bytes>> {
    respond(wire::answer(key, &wire::member(status), None, charset), charset)
}

fn respond(body: Vec<u8>, charset: Charset) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::OK;
    let content_type = match charset {
        Charset::Utf8 => "application/json;charset=utf-8",
        Charset::Gbk => "application/json;charset=GBK",
    };
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    response
}
