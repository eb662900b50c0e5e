//! Partner API authentication (design §3; the scheme is [`tenants::signature`]). The signature
//! is checked in constant time and timestamps too far from our clock are refused; whether the
//! nonce was used before is [`crate::replay`]'s question, asked once the signature holds. Every
//! failure is the same 401.

use std::sync::Arc;

use aws_lc_rs::hmac;
use tenants::signature::{parse, string_to_sign};
use tenants::snapshot::{Snapshot, Tenant};
use time::OffsetDateTime;

use crate::problem::ApiError;

/// What of a request its signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub authorization: Option<&'a str>,
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub body: &'a [u8],
}

/// A request whose signature holds: the tenant it comes from, and what must be used only once.
#[derive(Debug, Clone)]
pub struct Authenticated<'a> {
    pub tenant: Arc<Tenant>,
    pub key_id: &'a str,
    pub nonce: &'a str,
    /// Unix seconds, within the skew window.
    pub timestamp: i64,
}

/// Authenticates a request against the snapshot (signature and skew; not yet the nonce).
pub fn authenticate<'a>(
    snapshot: &Snapshot,
    skew: std::time::Duration,
    request: SignedRequest<'a>,
    now: OffsetDateTime,
) -> Result<Authenticated<'a>, ApiError> {
    let SignedRequest { authorization, method, path_and_query, body } = request;
    let credentials = authorization.and_then(parse).ok_or(ApiError::Unauthorized)?;
    let (tenant, key) = snapshot.authenticate(credentials.key_id, now).ok_or(ApiError::Unauthorized)?;
    if now.unix_timestamp().abs_diff(credentials.timestamp) > skew.as_secs() {
        return Err(ApiError::Unauthorized);
    }
    let message = string_to_sign(method, path_and_query, credentials.timestamp, credentials.nonce, body);
    hmac::verify(&key.hmac, message.as_bytes(), &credentials.signature).map_err(|_| ApiError::Unauthorized)?;
    Ok(Authenticated {
        tenant: tenant.clone(),
        key_id: credentials.key_id,
        nonce: credentials.nonce,
        timestamp: credentials.timestamp,
    })
}
