//! The settlement resources of the admin API (behind its token; `tenants::admin::Extension`):
//! the daily close's days and the discrepancies found, and their resolution by a recorded ops
//! action.
//!
//! | call | body | does |
//! |---|---|---|
//! | `GET /admin/bills/days?since=yyyy-mm-dd&account=` | | the bill days from `since` (default: 7 days back), newest first |
//! | `GET /admin/bills/discrepancies?tenant=&day=&all=true&limit=` | | open discrepancies (`all`: resolved too), by tenant (slug or id) and day |
//! | `POST /admin/bills/discrepancies/{id}/resolve` | `{"resolution": "what was done"}` | resolves it, naming the actor |

use std::future::Future;
use std::pin::Pin;

use http::{Method, StatusCode};
use ledger::Store;
use ledger::store::DiscrepancyFilter;
use serde::Deserialize;
use serde_json::json;
use tenants::Registry;
use tenants::admin::{Extension, ExtensionCall, Reply, json_reply, operator_problem};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// The `/admin/bills/...` resources.
pub struct BillsAdmin {
    pub store: Store,
    pub registry: Registry,
}

impl Extension for BillsAdmin {
    fn handle<'a>(&'a self, call: ExtensionCall<'a>) -> Option<Pin<Box<dyn Future<Output = Reply> + Send + 'a>>> {
        match call.path {
            ["admin", "bills", ..] => Some(Box::pin(self.route(call))),
            _ => None,
        }
    }
}

/// A request that cannot be served as asked.
struct Refused(StatusCode, &'static str, String);

fn invalid(detail: impl Into<String>) -> Refused {
    Refused(StatusCode::BAD_REQUEST, "invalid_request", detail.into())
}

fn failed(error: ledger::StoreError) -> Refused {
    if matches!(error, ledger::StoreError::Busy) || error.timed_out() {
        return Refused(StatusCode::SERVICE_UNAVAILABLE, "busy", error.to_string());
    }
    tracing::error!(%error, "admin bills");
    Refused(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the ledger could not be read".into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    resolution: String,
}

fn day(text: &str) -> Result<Date, Refused> {
    Date::parse(text, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| invalid(format!("`{text}` is not a day (yyyy-mm-dd)")))
}

fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, Refused> {
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(&text.replace('+', " "))
            .decode_utf8()
            .map(|t| t.into_owned())
            .map_err(|_| invalid("the query is not UTF-8"))
    };
    let pairs = query.unwrap_or_default().split('&').filter(|pair| !pair.is_empty());
    let mut decoded = Vec::new();
    for pair in pairs.take(9) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        decoded.push((decode(key)?, decode(value)?));
    }
    if decoded.len() > 8 {
        return Err(invalid("too many query parameters"));
    }
    Ok(decoded)
}

impl BillsAdmin {
    async fn route(&self, call: ExtensionCall<'_>) -> Reply {
        match self.answer(call).await {
            Ok(reply) => reply,
            Err(Refused(status, code, detail)) => operator_problem(status, code, detail),
        }
    }

    async fn answer(&self, call: ExtensionCall<'_>) -> Result<Reply, Refused> {
        match (call.method, call.path) {
            (&Method::GET, ["admin", "bills", "days"]) => {
                let (mut since, mut account) = (None, None);
                for (key, value) in query_pairs(call.query)? {
                    match key.as_str() {
                        "since" => since = Some(day(&value)?),
                        "account" => account = Some(value),
                        other => return Err(invalid(format!("unknown query parameter `{other}`"))),
                    }
                }
                let today = OffsetDateTime::now_utc().to_offset(time::macros::offset!(+8)).date();
                let since = since.unwrap_or(today - time::Duration::days(7));
                let days = self.store.bill_days(account.as_deref(), since, 1000).await.map_err(failed)?;
                Ok(json_reply(StatusCode::OK, &json!({ "days": days })))
            }
            (&Method::GET, ["admin", "bills", "discrepancies"]) => {
                let mut filter = DiscrepancyFilter { open_only: true, limit: 100, ..DiscrepancyFilter::default() };
                for (key, value) in query_pairs(call.query)? {
                    match key.as_str() {
                        "tenant" => filter.tenant_id = Some(self.tenant_id(&value).await?),
                        "day" => filter.day = Some(day(&value)?),
                        "all" => filter.open_only = value != "true",
                        "limit" => {
                            filter.limit = value
                                .parse()
                                .ok()
                                .filter(|n| (1..=10_000).contains(n))
                                .ok_or_else(|| invalid("limit must be 1 to 10000"))?;
                        }
                        other => return Err(invalid(format!("unknown query parameter `{other}`"))),
                    }
                }
                let found = self.store.discrepancies(&filter).await.map_err(failed)?;
                Ok(json_reply(StatusCode::OK, &json!({ "discrepancies": found })))
            }
            (&Method::POST, ["admin", "bills", "discrepancies", id, "resolve"]) => {
                let id: i64 = id.parse().map_err(|_| invalid("the discrepancy id is a number"))?;
                let body: ResolveBody = serde_json::from_slice(call.body)
                    .map_err(|e| Refused(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()))?;
                let resolution = body.resolution.trim();
                if resolution.is_empty() || resolution.chars().count() > 2000 {
                    return Err(invalid("resolution must say what was done, in 1 to 2000 characters"));
                }
                match self.store.resolve_discrepancy(id, call.actor, resolution).await.map_err(failed)? {
                    Some(resolved) => Ok(json_reply(StatusCode::OK, &resolved)),
                    None => Err(Refused(
                        StatusCode::NOT_FOUND,
                        "not_found",
                        format!("no open discrepancy {id} (no such id, or resolved already)"),
                    )),
                }
            }
            (_, ["admin", "bills", "days" | "discrepancies"] | ["admin", "bills", "discrepancies", _, "resolve"]) => {
                Err(Refused(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed here".into()))
            }
            _ => Err(Refused(StatusCode::NOT_FOUND, "no_route", "no such admin resource".into())),
        }
    }

    async fn tenant_id(&self, tenant: &str) -> Result<Uuid, Refused> {
        if let Ok(id) = tenant.parse() {
            return Ok(id);
        }
        match self.registry.show(tenant).await {
            Ok(found) => Ok(found.id),
            Err(tenants::RegistryError::NotFound(_)) => {
                Err(Refused(StatusCode::NOT_FOUND, "not_found", format!("no tenant `{tenant}`")))
            }
            Err(tenants::RegistryError::Invalid(e)) => Err(invalid(e.0)),
            Err(_) => Err(Refused(StatusCode::SERVICE_UNAVAILABLE, "busy", "the registry could not be read".into())),
        }
    }
}
