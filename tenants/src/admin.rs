//! The admin HTTP API: the registry's operations as JSON over HTTP, for automation. Protected by a
//! bearer token ([`AdminToken`]: compared in constant time; the deployment files' example refused);
//! a failed authentication is logged with the peer and the route (never the token) and counted in
//! `admin_auth_failures_total{reason}`. Every change is audited as `admin-api@<peer ip>`, after
//! the name the caller gives in an `acq-actor` header (`ops:alice via admin-api@10.0.0.5`).
//! Errors are the shared `application/problem+json` ([`telemetry::problem::Problem`]: `code`,
//! `detail`, `fault` (`operator` for the caller's mistakes, `us` for ours), `retryable`), in the
//! partner API's vocabulary: `invalid_request`, `unauthorized`, `not_found`, `no_route`,
//! `method_not_allowed`, `conflict`, `payload_too_large`, `body_timeout`, `invalid_json`,
//! `overloaded`, `unavailable`, `internal`. [`handle`] can be mounted on any admin listener (the
//! gateway's; the shared server, `telemetry::server`, puts the peer's `SocketAddr` in the
//! request's extensions); [`serve`] runs it alone (`tenants admin-serve`). A body is read only
//! once the token is accepted, at most 1 MiB, within the body deadline.
//!
//! | call | body | does |
//! |---|---|---|
//! | `GET /admin/tenants` | | list |
//! | `POST /admin/tenants` | tenant, optional `keys` | create; answers the API secret and webhook secret once |
//! | `POST /admin/tenants/import` | an array of tenants (as `POST /admin/tenants`), at most 1,000 | each created, or changed to what it says (keys left), or left as it is; per tenant `{"index", "slug", "result": {"action": "created" (with its secrets, once) / "updated" (with `changed`) / "unchanged" / "refused" (with `code`, `detail`)}}` |
//! | `GET /admin/tenants/{slug}` | | show |
//! | `PATCH /admin/tenants/{slug}` | fields to change, optional `keys` | update |
//! | `POST /admin/tenants/{slug}/suspend`, `/resume` | | status |
//! | `PUT /admin/tenants/{slug}/keys` | `app_private_key`, `generate_app_key`, `app_public_key`, `alipay_public_key`, `md5_key` | set keys |
//! | `POST /admin/tenants/{slug}/api-secret/rotate` | `{"overlap": "24h"}` | rotate the API secret (older ones end by the overlap) |
//! | `POST /admin/tenants/{slug}/api-keys/{key_id}/revoke` | `{"allow_last": false}` | end one API key at once |
//! | `DELETE /admin/tenants/{slug}` | | delete |
//! | `GET /admin/tenants/{slug}/front-door` | | show the front door |
//! | `POST /admin/tenants/{slug}/front-door` | `sign_type`, `id`, one of `pos_public_key`, `md5_key`, `generate_pos_key` | enable; answers generated secrets once |
//! | `POST /admin/tenants/{slug}/front-door/pos-key` | one POS key source, `overlap` | rotate the POS key (the old one verifies during the overlap) |
//! | `POST /admin/tenants/{slug}/front-door/platform-key` | `{"overlap": "24h"}` | new platform key, published now, signing once the overlap ends |
//! | `DELETE /admin/tenants/{slug}/front-door` | | disable (its keys destroyed) |
//! | `POST /admin/master-key/rotate` | | re-wrap data keys |

mod bodies;
mod token;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::json;
use telemetry::problem::{Fault, Problem};
use telemetry::server::{BodyError, BodyReader, ConnectionLimits};
use zeroize::Zeroizing;

pub use bodies::{CreateBody, FrontDoorBody, KeysBody, PosKeyBody, RotateBody};
pub use token::AdminToken;

use crate::model::{
    AlipayIdentity, Invalid, NewTenant, SecondaryMerchant, Status, TenantUpdate, display_name, http_url,
};
use crate::registry::{AppKeySource, FrontDoorInput, KeyInput, PosKeySource, Registry, RegistryError, parse_overlap};

const MAX_BODY: usize = 1024 * 1024;
/// The header a caller names itself with, for the audit trail.
const ACTOR_HEADER: &str = "acq-actor";
/// Most characters of a route written to the log.
const MAX_LOGGED_ROUTE: usize = 128;
/// How long `tenants admin-serve` gives a client to send a body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// How the admin API reads bodies: at most 1 MiB within `timeout`; `listener` labels the metrics.
pub fn body_reader(listener: &'static str, timeout: Duration) -> BodyReader {
    BodyReader::new(listener, MAX_BODY, timeout)
}

/// An admin API answer.
pub type Reply = Response<Full<Bytes>>;

/// Admin resources another crate serves behind this API's token, body limits and actor (the
/// gateway's `/admin/bills/...`).
pub trait Extension: Send + Sync {
    /// Answers the call, or `None` when its path is not this extension's.
    fn handle<'a>(&'a self, call: ExtensionCall<'a>) -> Option<Pin<Box<dyn Future<Output = Reply> + Send + 'a>>>;
}

/// One authenticated admin call, as an [`Extension`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct ExtensionCall<'a> {
    /// Who acts, for the audit trail.
    pub actor: &'a str,
    pub method: &'a Method,
    /// The path's segments (`["admin", "bills", ...]`).
    pub path: &'a [&'a str],
    pub query: Option<&'a str>,
    pub body: &'a [u8],
}

/// A JSON answer, for an [`Extension`].
pub fn json_reply(status: StatusCode, value: &impl serde::Serialize) -> Reply {
    json_ok(status, value)
}

/// A problem answer blaming the operator, for an [`Extension`].
pub fn operator_problem(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Reply {
    refused(status, code, detail)
}

fn reply(status: StatusCode, body: &serde_json::Value) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}

/// A mistake of the admin API's caller.
fn refused(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Reply {
    Problem::new(status, code, detail, Fault::Operator).into_response()
}

fn from_error(error: RegistryError) -> Reply {
    match &error {
        RegistryError::Invalid(e) => refused(StatusCode::BAD_REQUEST, "invalid_request", e.0.clone()),
        RegistryError::NotFound(_) | RegistryError::NoApiKey { .. } | RegistryError::NoFrontDoor(_) => {
            refused(StatusCode::NOT_FOUND, "not_found", error.to_string())
        }
        RegistryError::Conflict(detail) => refused(StatusCode::CONFLICT, "conflict", detail.clone()),
        _ => {
            tracing::error!(%error, "admin API operation failed");
            let detail = "the operation could not be done; retry later";
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail, Fault::Us)
                .retryable(true)
                .into_response()
        }
    }
}

/// Tenants one `POST /admin/tenants/import` may carry (each its own transaction).
const MAX_IMPORT: usize = 1_000;

/// One refused line of an import, as its result: `{"action": "refused", "code", "detail"}`.
fn refusal(error: &RegistryError) -> serde_json::Value {
    let (code, detail) = match error {
        RegistryError::Invalid(e) => ("invalid_request", e.0.clone()),
        RegistryError::Conflict(detail) => ("conflict", detail.clone()),
        RegistryError::NotFound(_) | RegistryError::NoApiKey { .. } | RegistryError::NoFrontDoor(_) => {
            ("not_found", error.to_string())
        }
        _ => {
            tracing::error!(%error, "admin API import of a tenant failed");
            ("unavailable", "the operation could not be done; retry later".to_owned())
        }
    };
    json!({ "action": "refused", "code": code, "detail": detail })
}

fn json_ok(status: StatusCode, value: &impl serde::Serialize) -> Reply {
    match serde_json::to_value(value) {
        Ok(body) => reply(status, &body),
        Err(_) => Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "answer could not be written", Fault::Us)
            .into_response(),
    }
}

impl KeysBody {
    fn into_input(self) -> Result<KeyInput, Invalid> {
        let app_private_key = match (self.app_private_key, self.generate_app_key) {
            (Some(_), true) => return Err(Invalid("give app_private_key or generate_app_key, not both".into())),
            (Some(text), false) => Some(AppKeySource::Text(Zeroizing::new(text))),
            (None, true) => Some(AppKeySource::Generate),
            (None, false) => None,
        };
        Ok(KeyInput {
            app_private_key,
            app_public_key: self.app_public_key,
            alipay_public_key: self.alipay_public_key,
            md5_key: self.md5_key.map(Zeroizing::new),
        })
    }
}

/// The one POS key source of a front-door body.
fn pos_source(public: Option<String>, md5: Option<String>, generate: bool) -> Result<PosKeySource, Invalid> {
    match (public, md5, generate) {
        (Some(public), None, false) => Ok(PosKeySource::PublicKey(public)),
        (None, Some(md5), false) => Ok(PosKeySource::Md5Key(Zeroizing::new(md5))),
        (None, None, true) => Ok(PosKeySource::Generate),
        _ => Err(Invalid("give one of pos_public_key, md5_key or generate_pos_key".into())),
    }
}

impl FrontDoorBody {
    fn into_input(self) -> Result<FrontDoorInput, Invalid> {
        let sign_type = self.sign_type.parse().map_err(|_| Invalid("sign_type must be RSA2, RSA or MD5".into()))?;
        let pos_key = pos_source(self.pos_public_key, self.md5_key, self.generate_pos_key)?;
        Ok(FrontDoorInput { id: self.id, sign_type, pos_key })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    name: Option<String>,
    environment: Option<String>,
    alipay_id: Option<String>,
    #[serde(default, with = "serde_with::rust::double_option")]
    seller_id: Option<Option<String>>,
    pay_rate: Option<u32>,
    pay_burst: Option<u32>,
    other_rate: Option<u32>,
    #[serde(default, with = "serde_with::rust::double_option")]
    webhook_url: Option<Option<String>>,
    #[serde(default, with = "serde_with::rust::double_option")]
    secondary_merchant: Option<Option<SecondaryMerchant>>,
    #[serde(default)]
    keys: KeysBody,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    #[serde(default)]
    allow_last: bool,
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, RegistryError> {
    let body = if body.is_empty() { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(|e| Invalid(format!("invalid JSON: {e}")).into())
}

fn new_tenant(body: CreateBody) -> Result<(NewTenant, KeyInput), Invalid> {
    let sign_type = body.sign_type.parse().map_err(|_| Invalid("sign_type must be RSA2, RSA or MD5".into()))?;
    let id = body.app_id.as_deref().or(body.partner.as_deref()).unwrap_or_default();
    let identity = AlipayIdentity::new(body.dialect.parse()?, id, body.seller_id.as_deref(), sign_type)?;
    let tenant = NewTenant {
        slug: body.slug.parse()?,
        name: display_name(&body.name)?,
        identity,
        environment: body.environment.parse()?,
        limits: body.limits.unwrap_or_default().validate()?,
        webhook_url: body.webhook_url.as_deref().map(|u| http_url("webhook URL", u)).transpose()?,
        secondary_merchant: body.secondary_merchant.map(SecondaryMerchant::validate).transpose()?,
    }
    .validate()?;
    Ok((tenant, body.keys.into_input()?))
}

fn update_of(body: UpdateBody) -> Result<(TenantUpdate, KeyInput), Invalid> {
    let update = TenantUpdate {
        name: body.name,
        environment: body.environment.as_deref().map(str::parse).transpose()?,
        alipay_id: body.alipay_id,
        seller_id: body.seller_id,
        pay_rate: body.pay_rate,
        pay_burst: body.pay_burst,
        other_rate: body.other_rate,
        webhook_url: body.webhook_url,
        secondary_merchant: body.secondary_merchant,
    };
    Ok((update, body.keys.into_input()?))
}

/// A body that could not be read; the answer closes the connection (the rest is discarded).
fn body_refused(error: BodyError) -> Reply {
    let mut problem = Problem::body_refused(error, Fault::Operator);
    if error == BodyError::TooLarge {
        problem.detail = "body over 1 MiB".into();
    }
    problem.closing_connection().into_response()
}

/// Handles one admin request, reading its body (once the token is accepted) with `bodies`
/// ([`body_reader`]). The peer's address, when the listener put it in the request's extensions (a
/// `SocketAddr`), is logged on a failed authentication and named in the audit trail.
pub async fn handle(
    registry: &Registry,
    token: &AdminToken,
    bodies: &BodyReader,
    extension: Option<&dyn Extension>,
    req: Request<Incoming>,
) -> Reply {
    let peer = req.extensions().get::<SocketAddr>().map_or_else(|| "unknown".to_owned(), |p| p.ip().to_string());
    let authorization = req.headers().get(header::AUTHORIZATION);
    if !token.accepts(authorization.and_then(|v| v.to_str().ok())) {
        let reason = if authorization.is_none() { "missing" } else { "wrong" };
        metrics::counter!("admin_auth_failures_total", "reason" => reason).increment(1);
        let route: String = req.uri().path().chars().take(MAX_LOGGED_ROUTE).collect();
        tracing::warn!(%peer, method = %req.method(), %route, %reason, "admin authentication failed");
        return refused(StatusCode::UNAUTHORIZED, "unauthorized", "a valid admin bearer token is required");
    }
    let actor = match actor(&req, &peer) {
        Ok(actor) => actor,
        Err(error) => return from_error(error.into()),
    };
    let (parts, body) = req.into_parts();
    let body = match bodies.read(&parts, body).await {
        Ok(read) => read.bytes,
        Err(error) => return body_refused(error),
    };
    let path: Vec<&str> = parts.uri.path().trim_matches('/').split('/').collect();
    let call =
        ExtensionCall { actor: &actor, method: &parts.method, path: &path, query: parts.uri.query(), body: &body };
    if let Some(answer) = extension.and_then(|extension| extension.handle(call)) {
        return answer.await;
    }
    route(registry, &actor, &parts.method, &path, &body).await.unwrap_or_else(from_error)
}

/// Who acts, for the audit trail: `admin-api@<peer ip>`, after the caller's own name if it gives
/// one in `acq-actor` (1 to 64 of `A-Z a-z 0-9 . _ : @ -`).
fn actor(req: &Request<Incoming>, peer: &str) -> Result<String, Invalid> {
    let Some(given) = req.headers().get(ACTOR_HEADER) else { return Ok(format!("admin-api@{peer}")) };
    let valid = given.to_str().ok().filter(|name| {
        (1..=64).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'@' | b'-'))
    });
    match valid {
        Some(name) => Ok(format!("{name} via admin-api@{peer}")),
        None => Err(Invalid(format!("{ACTOR_HEADER} must be 1 to 64 characters of A-Z a-z 0-9 . _ : @ -"))),
    }
}

async fn route(
    registry: &Registry,
    actor: &str,
    method: &Method,
    path: &[&str],
    body: &[u8],
) -> Result<Reply, RegistryError> {
    Ok(match (method, path) {
        (&Method::GET, ["admin", "tenants"]) => json_ok(StatusCode::OK, &registry.list().await?),
        (&Method::POST, ["admin", "tenants"]) => {
            let (tenant, keys) = new_tenant(parse(body)?)?;
            json_ok(StatusCode::CREATED, &registry.create(actor, tenant, keys).await?)
        }
        (&Method::POST, ["admin", "tenants", "import"]) => {
            let bodies: Vec<CreateBody> = parse(body)?;
            if bodies.is_empty() || bodies.len() > MAX_IMPORT {
                return Err(Invalid(format!("give 1 to {MAX_IMPORT} tenants")).into());
            }
            let mut results = Vec::with_capacity(bodies.len());
            for (index, body) in bodies.into_iter().enumerate() {
                let slug = body.slug.clone();
                let done = match new_tenant(body) {
                    Ok((tenant, keys)) => registry.import(actor, tenant, keys).await,
                    Err(invalid) => Err(invalid.into()),
                };
                results.push(match done {
                    Ok(imported) => json!({ "index": index, "slug": slug, "result": imported }),
                    Err(error) => json!({ "index": index, "slug": slug, "result": refusal(&error) }),
                });
            }
            json_ok(StatusCode::OK, &json!({ "results": results }))
        }
        (&Method::GET, ["admin", "tenants", slug]) => json_ok(StatusCode::OK, &registry.show(slug).await?),
        (&Method::PATCH, ["admin", "tenants", slug]) => {
            let (update, keys) = update_of(parse(body)?)?;
            json_ok(StatusCode::OK, &registry.update(actor, slug, update, keys).await?)
        }
        (&Method::DELETE, ["admin", "tenants", slug]) => {
            registry.delete(actor, slug).await?;
            json_ok(StatusCode::OK, &json!({ "deleted": slug }))
        }
        (&Method::POST, ["admin", "tenants", slug, action @ ("suspend" | "resume")]) => {
            let status = if *action == "suspend" { Status::Suspended } else { Status::Active };
            json_ok(StatusCode::OK, &registry.set_status(actor, slug, status).await?)
        }
        (&Method::PUT, ["admin", "tenants", slug, "keys"]) => {
            let keys = parse::<KeysBody>(body)?.into_input()?;
            let (tenant, public) = registry.set_keys(actor, slug, keys).await?;
            json_ok(StatusCode::OK, &json!({ "tenant": tenant, "app_public_key": public }))
        }
        (&Method::POST, ["admin", "tenants", slug, "api-secret", "rotate"]) => {
            let overlap = parse_overlap(&parse::<RotateBody>(body)?.overlap)?;
            json_ok(StatusCode::CREATED, &registry.rotate_api_secret(actor, slug, overlap).await?)
        }
        (&Method::POST, ["admin", "tenants", slug, "api-keys", key_id, "revoke"]) => {
            let allow_last = parse::<RevokeBody>(body)?.allow_last;
            json_ok(StatusCode::OK, &registry.revoke_api_key(actor, slug, key_id, allow_last).await?)
        }
        (&Method::GET, ["admin", "tenants", slug, "front-door"]) => {
            let door = registry.show(slug).await?.front_door;
            json_ok(StatusCode::OK, &door.ok_or_else(|| RegistryError::NoFrontDoor((*slug).to_owned()))?)
        }
        (&Method::POST, ["admin", "tenants", slug, "front-door"]) => {
            let input = parse::<FrontDoorBody>(body)?.into_input()?;
            json_ok(StatusCode::CREATED, &registry.enable_front_door(actor, slug, input).await?)
        }
        (&Method::DELETE, ["admin", "tenants", slug, "front-door"]) => {
            json_ok(StatusCode::OK, &json!({ "disabled": registry.disable_front_door(actor, slug).await? }))
        }
        (&Method::POST, ["admin", "tenants", slug, "front-door", "pos-key"]) => {
            let body = parse::<PosKeyBody>(body)?;
            let overlap = parse_overlap(&body.overlap)?;
            let source = pos_source(body.pos_public_key, body.md5_key, body.generate_pos_key)?;
            json_ok(StatusCode::CREATED, &registry.rotate_front_door_pos_key(actor, slug, source, overlap).await?)
        }
        (&Method::POST, ["admin", "tenants", slug, "front-door", "platform-key"]) => {
            let overlap = parse_overlap(&parse::<RotateBody>(body)?.overlap)?;
            json_ok(StatusCode::CREATED, &registry.rotate_front_door_platform_key(actor, slug, overlap).await?)
        }
        (&Method::POST, ["admin", "master-key", "rotate"]) => {
            json_ok(StatusCode::OK, &registry.rotate_master_key(actor).await?)
        }
        (_, ["admin", "tenants", ..] | ["admin", "master-key", "rotate"]) => {
            refused(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed here")
        }
        _ => refused(StatusCode::NOT_FOUND, "no_route", "no such admin resource"),
    })
}

/// Serves the admin API on `listener` until `shutdown`, with an admin listener's caps and
/// deadlines ([`ConnectionLimits::admin`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: Registry,
    token: AdminToken,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let bodies = body_reader("tenants_admin", BODY_TIMEOUT);
    let handler = move |request| {
        let (registry, token, bodies) = (registry.clone(), token.clone(), bodies.clone());
        async move { handle(&registry, &token, &bodies, None, request).await }
    };
    telemetry::server::serve(listener, "tenants_admin", ConnectionLimits::admin(), handler, shutdown).await;
}
