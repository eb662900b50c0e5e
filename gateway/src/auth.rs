//! Partner API authentication (design §3; the scheme is [`tenants::signature`]). The signature
//! is checked in constant time; timestamps too far from our clock and nonces seen before (within
//! twice the allowed skew, or the last [`Nonces`] generation's worth of requests) are refused.
//! Every failure is the same 401.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use aws_lc_rs::hmac;
use hashbrown::HashTable;
use parking_lot::Mutex;
use tenants::signature::{parse, string_to_sign};
use tenants::snapshot::{Snapshot, Tenant};
use time::OffsetDateTime;

use crate::problem::ApiError;

/// Nonces seen recently: two generations, each as long as the allowed window or
/// `max_per_generation` requests, whichever ends first. Each (key id, nonce) is kept as a 64-bit
/// fingerprint under a key drawn at start, so a generation costs about 18 bytes per request
/// however long the nonces, and none can be aimed at another's fingerprint (a legitimate nonce is
/// mistaken for a replay with odds of one in 2^64 / the requests remembered).
pub struct Nonces {
    window_secs: i64,
    max_per_generation: usize,
    fingerprint: RandomState,
    inner: Mutex<Generations>,
}

struct Generations {
    started: i64,
    current: HashTable<u64>,
    previous: HashTable<u64>,
}

impl Nonces {
    pub fn new(window_secs: i64, max_per_generation: usize) -> Self {
        let inner = Generations { started: 0, current: HashTable::new(), previous: HashTable::new() };
        Nonces { window_secs, max_per_generation, fingerprint: RandomState::new(), inner: Mutex::new(inner) }
    }

    /// Records `nonce`; `false` if it was seen within the window (a replay).
    pub fn first_use(&self, key_id: &str, nonce: &str, now: i64) -> bool {
        // Already a keyed hash: the tables use it as it is.
        let seen = self.fingerprint.hash_one((key_id, nonce));
        let mut inner = self.inner.lock();
        if now - inner.started >= self.window_secs || inner.current.len() >= self.max_per_generation {
            inner.previous = std::mem::take(&mut inner.current);
            inner.started = now;
        }
        if inner.previous.find(seen, |&other| other == seen).is_some() {
            return false;
        }
        match inner.current.entry(seen, |&other| other == seen, |&other| other) {
            hashbrown::hash_table::Entry::Occupied(_) => false,
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                vacant.insert(seen);
                true
            }
        }
    }
}

/// What of a request its signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub authorization: Option<&'a str>,
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub body: &'a [u8],
}

/// Authenticates a request against the snapshot: the tenant it comes from.
pub fn authenticate(
    snapshot: &Snapshot,
    nonces: &Nonces,
    skew_secs: i64,
    request: SignedRequest<'_>,
    now: OffsetDateTime,
) -> Result<Arc<Tenant>, ApiError> {
    let SignedRequest { authorization, method, path_and_query, body } = request;
    let credentials = authorization.and_then(parse).ok_or(ApiError::Unauthorized)?;
    let (tenant, key) = snapshot.authenticate(credentials.key_id, now).ok_or(ApiError::Unauthorized)?;
    let now_secs = now.unix_timestamp();
    if (now_secs - credentials.timestamp).abs() > skew_secs {
        return Err(ApiError::Unauthorized);
    }
    let message = string_to_sign(method, path_and_query, credentials.timestamp, credentials.nonce, body);
    hmac::verify(&key.hmac, message.as_bytes(), &credentials.signature).map_err(|_| ApiError::Unauthorized)?;
    if !nonces.first_use(credentials.key_id, credentials.nonce, now_secs) {
        return Err(ApiError::Unauthorized);
    }
    Ok(tenant.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_single_use_within_the_window() {
        let nonces = Nonces::new(600, 10);
        assert!(nonces.first_use("k", "n1", 1000));
        assert!(!nonces.first_use("k", "n1", 1001));
        assert!(nonces.first_use("other", "n1", 1001));
        assert!(!nonces.first_use("k", "n1", 1700), "still in the previous generation");
        assert!(nonces.first_use("k", "n1", 2500), "two windows later it is forgotten");
    }

    #[test]
    fn a_full_generation_moves_on_before_its_window_ends() {
        let nonces = Nonces::new(600, 3);
        for nonce in ["a", "b", "c"] {
            assert!(nonces.first_use("k", nonce, 1000));
        }
        assert!(nonces.first_use("k", "d", 1000), "the fourth starts a new generation");
        assert!(!nonces.first_use("k", "a", 1000), "the full one is still remembered");
        for nonce in ["e", "f"] {
            assert!(nonces.first_use("k", nonce, 1000));
        }
        assert!(nonces.first_use("k", "g", 1000));
        assert!(nonces.first_use("k", "a", 1000), "two generations on, the first is forgotten");
    }

    #[test]
    fn key_and_nonce_are_told_apart_where_they_meet() {
        let nonces = Nonces::new(600, 10);
        assert!(nonces.first_use("k", ":a", 1000));
        assert!(nonces.first_use("k:", "a", 1000));
    }
}
