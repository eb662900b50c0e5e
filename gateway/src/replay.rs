//! Replay protection: a signed request (its key id and nonce) is accepted once, by whichever
//! gateway replica gets it, before or after any of them restarts, for as long as its timestamp
//! is acceptable (within the clock-skew window of the gateway's clock).
//!
//! ```text
//! signature verified ─▶ seen by this process? ([`Nonces`], memory, no round trip) ── yes ─▶ 401
//!                        │ no
//!                        ▼
//!   Redis: SET {prefix}:nonce:{fingerprint} 1 NX PX {2 × skew}   (one round trip, bounded wait)
//!     OK ─▶ first use          nil ─▶ 401 (another replica saw it, or this one before a restart)
//!     error or no answer in time ─▶ by the timestamp (counted):
//!         stamped after the second this process started in ─▶ first use (in this process's memory)
//!         stamped in that second ─▶ 503, Retry-After: 1 (sent before the start, or after? sign again)
//!         stamped before it ─▶ 401
//! ```
//!
//! The fallback refuses everything that may have been sent before the process started, so a
//! request captured before a restart cannot be replayed after it even when Redis is away; what it
//! cannot stop is a request captured since then being replayed once on another replica while
//! Redis is away. After a failure Redis is left alone for [`REDIS_REST`], so an outage costs one
//! bounded wait per second, not one per request.
//!
//! A Redis key is `{prefix}:nonce:` and 32 hex digits: 128 bits of SHA-256 over the key id
//! (length first) and the nonce. The same in every process, a fixed size whatever the request
//! carried, and no two (key id, nonce) pairs share one.

use std::hash::{BuildHasher, RandomState};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use hashbrown::HashTable;
use parking_lot::Mutex;
use redis::aio::ConnectionManager;
use redis::{RedisWrite, ToRedisArgs, ToSingleRedisArg};

/// How long Redis is left alone after it failed to answer.
pub const REDIS_REST: Duration = Duration::from_secs(1);

/// Nonces seen recently by this process: two generations, each as long as the allowed window or
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

/// Hex digits of a Redis key's fingerprint (128 bits).
const FINGERPRINT_HEX: usize = 32;

/// The (key id, nonce) pairs every replica has seen, in Redis, each for `ttl`.
pub struct SeenSet {
    connection: ConnectionManager,
    /// `{prefix}:nonce:`
    key_prefix: Box<[u8]>,
    /// The expiry in milliseconds, as text.
    ttl_ms: Box<[u8]>,
}

/// A Redis key of the seen-set, written straight into a command (no String per request).
#[derive(Debug, Clone, Copy)]
pub struct NonceKey<'a> {
    prefix: &'a [u8],
    fingerprint: [u8; FINGERPRINT_HEX],
}

impl NonceKey<'_> {
    pub fn to_bytes(&self) -> Vec<u8> {
        [self.prefix, &self.fingerprint].concat()
    }
}

impl ToRedisArgs for NonceKey<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let mut arg = out.writer_for_next_arg();
        // Writes into the command's own buffer: they do not fail.
        let _ = arg.write_all(self.prefix);
        let _ = arg.write_all(&self.fingerprint);
    }
}

impl ToSingleRedisArg for NonceKey<'_> {}

impl SeenSet {
    /// The seen-set under `prefix` (the gateway's `redis_prefix`), each pair kept for `ttl`.
    pub fn new(connection: ConnectionManager, prefix: &str, ttl: Duration) -> Self {
        SeenSet {
            connection,
            key_prefix: format!("{prefix}:nonce:").into_bytes().into_boxed_slice(),
            ttl_ms: ttl.as_millis().max(1).to_string().into_bytes().into_boxed_slice(),
        }
    }

    /// The key of (`key_id`, `nonce`).
    pub fn key(&self, key_id: &str, nonce: &str) -> NonceKey<'_> {
        let mut hash = digest::Context::new(&digest::SHA256);
        // Key ids are at most 64 bytes (`tenants::signature::parse`); the length first keeps
        // ("k", ":a") and ("k:", "a") apart.
        hash.update(&u32::try_from(key_id.len()).unwrap_or(u32::MAX).to_be_bytes());
        hash.update(key_id.as_bytes());
        hash.update(nonce.as_bytes());
        let hash = hash.finish();
        let mut fingerprint = [0u8; FINGERPRINT_HEX];
        // 16 bytes always fill 32 hex digits.
        let _ = hex::encode_to_slice(&hash.as_ref()[..FINGERPRINT_HEX / 2], &mut fingerprint);
        NonceKey { prefix: &self.key_prefix, fingerprint }
    }

    /// `SET {key} 1 NX PX {ttl}`: `OK` the first time the pair is seen, nil after. A command of
    /// its own, so it can ride in one pipeline with the request's other Redis work; read its
    /// answer with [`SeenSet::first_use`].
    pub fn claim_command(&self, key_id: &str, nonce: &str) -> redis::Cmd {
        let mut command = redis::Cmd::with_capacity(6, self.key_prefix.len() + FINGERPRINT_HEX + 64);
        command.arg("SET").arg(self.key(key_id, nonce)).arg("1").arg("NX").arg("PX").arg(&*self.ttl_ms);
        command
    }

    /// Whether the answer to [`SeenSet::claim_command`] says the pair was not seen before.
    pub fn first_use(answer: &redis::Value) -> Result<bool, redis::RedisError> {
        match answer {
            redis::Value::Okay => Ok(true),
            redis::Value::SimpleString(text) if text == "OK" => Ok(true),
            redis::Value::Nil => Ok(false),
            other => Err(redis::RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "SET NX answered neither OK nor nil",
                format!("{other:?}"),
            ))),
        }
    }
}

/// What Redis said of a claim.
pub enum RedisSaid {
    /// Not asked: Redis failed less than [`REDIS_REST`] ago.
    Resting,
    /// No answer in time.
    Late,
    Answered(redis::RedisResult<redis::Value>),
}

/// What the replay check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The first use of the nonce: go on.
    First,
    /// Used before, or (Redis away) stamped before the second this process started in: 401.
    Replayed,
    /// Redis is away and the request is stamped in the second this process started in, so it may
    /// have been sent to the process before a restart: the POS should sign it again a second
    /// later (503, `Retry-After`).
    Undecided,
}

/// Replay protection: this process's memory first, then the seen-set every replica shares, and
/// the start of this process when Redis is away.
pub struct Replays {
    here: Nonces,
    shared: SeenSet,
    /// How long a request waits for Redis.
    wait: Duration,
    /// The second (Unix time) this process started in: when Redis is away, requests stamped in
    /// it or before are not accepted, as the process before a restart may have accepted them.
    started_secs: i64,
    /// Redis is not asked before this many milliseconds after `epoch` (it failed recently).
    rest_until_ms: AtomicU64,
    epoch: Instant,
    /// Redis failed and has not answered since (for logging the change once).
    degraded: AtomicBool,
}

impl Replays {
    pub fn new(here: Nonces, shared: SeenSet, wait: Duration, started_secs: i64) -> Self {
        Replays {
            here,
            shared,
            wait,
            started_secs,
            rest_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            degraded: AtomicBool::new(false),
        }
    }

    /// The second (Unix time) this process started in.
    pub fn started_secs(&self) -> i64 {
        self.started_secs
    }

    /// Whether this is the first use of (`key_id`, `nonce`) of a request stamped `timestamp`
    /// (Unix seconds, already checked against the skew window); `now` is Unix seconds.
    pub async fn check(&self, key_id: &str, nonce: &str, timestamp: i64, now: i64) -> Verdict {
        if self.seen_here(key_id, nonce, now) {
            return Verdict::Replayed;
        }
        let said = if self.resting() {
            RedisSaid::Resting
        } else {
            let mut connection = self.shared.connection.clone();
            let claim = self.shared.claim_command(key_id, nonce);
            match tokio::time::timeout(self.wait, claim.query_async(&mut connection)).await {
                Ok(answer) => RedisSaid::Answered(answer),
                Err(_) => RedisSaid::Late,
            }
        };
        self.judge(said, timestamp)
    }

    /// The first step of [`Replays::check`]: whether this process saw the pair (a replay, counted).
    pub fn seen_here(&self, key_id: &str, nonce: &str, now: i64) -> bool {
        let seen = !self.here.first_use(key_id, nonce, now);
        if seen {
            refused("here");
        }
        seen
    }

    /// Whether Redis is left alone now (it failed less than [`REDIS_REST`] ago).
    pub fn resting(&self) -> bool {
        self.elapsed_ms() < self.rest_until_ms.load(Ordering::Relaxed)
    }

    /// The seen-set's claim of the pair, to send (alone or in a pipeline) unless [`Replays::resting`].
    pub fn claim_command(&self, key_id: &str, nonce: &str) -> redis::Cmd {
        self.shared.claim_command(key_id, nonce)
    }

    /// How long a request waits for Redis.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// The last step of [`Replays::check`]: what Redis said of the claim, or the fallback by the
    /// request's `timestamp`.
    pub fn judge(&self, said: RedisSaid, timestamp: i64) -> Verdict {
        match said {
            RedisSaid::Answered(Ok(answer)) => match SeenSet::first_use(&answer) {
                Ok(first) => {
                    if self.degraded.load(Ordering::Relaxed) && self.degraded.swap(false, Ordering::Relaxed) {
                        tracing::info!("Redis answers again: replays are checked across every gateway");
                    }
                    if !first {
                        refused("shared");
                        return Verdict::Replayed;
                    }
                    return Verdict::First;
                }
                Err(error) => self.rest(&error),
            },
            RedisSaid::Answered(Err(error)) => self.rest(&error),
            RedisSaid::Late => self.rest(&format_args!("no answer within {:?}", self.wait)),
            RedisSaid::Resting => {}
        }
        let (verdict, result) = match timestamp.cmp(&self.started_secs) {
            std::cmp::Ordering::Greater => (Verdict::First, "accepted"),
            std::cmp::Ordering::Equal => (Verdict::Undecided, "undecided"),
            std::cmp::Ordering::Less => (Verdict::Replayed, "refused"),
        };
        metrics::counter!("gateway_replay_fallback_total", "result" => result).increment(1);
        verdict
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Leaves Redis alone for [`REDIS_REST`].
    fn rest(&self, why: &dyn std::fmt::Display) {
        let until = self.elapsed_ms().saturating_add(u64::try_from(REDIS_REST.as_millis()).unwrap_or(u64::MAX));
        self.rest_until_ms.store(until, Ordering::Relaxed);
        if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error = %why,
                "Redis does not answer: replays are checked by this gateway alone, and requests stamped before it started are refused"
            );
        }
    }
}

fn refused(seen: &'static str) {
    metrics::counter!("gateway_replays_refused_total", "seen" => seen).increment(1);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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

    fn seen_set(prefix: &str) -> SeenSet {
        let client = redis::Client::open("redis://127.0.0.1:1").unwrap();
        let connection = ConnectionManager::new_lazy_with_config(client, Default::default()).unwrap();
        SeenSet::new(connection, prefix, Duration::from_secs(600))
    }

    #[tokio::test]
    async fn redis_keys_are_fixed_in_size_the_same_everywhere_and_never_shared() {
        let set = seen_set("acq");
        let key = String::from_utf8(set.key("ak_1", "nonce-0001").to_bytes()).unwrap();
        assert_eq!(key, "acq:nonce:52ae79761bb966d414b84469a3fe9c31", "a fixed derivation, in every process");
        let long = set.key(&"k".repeat(64), &"n".repeat(64)).to_bytes();
        assert_eq!(long.len(), key.len(), "a fixed size however long the parts");
        assert_ne!(set.key("k", ":a").to_bytes(), set.key("k:", "a").to_bytes());
        assert_ne!(set.key("ab", "cdefghij").to_bytes(), set.key("a", "bcdefghij").to_bytes());
        let packed = set.claim_command("ak_1", "nonce-0001").get_packed_command();
        let text = String::from_utf8(packed).unwrap();
        assert_eq!(
            text,
            format!("*6\r\n$3\r\nSET\r\n$42\r\n{key}\r\n$1\r\n1\r\n$2\r\nNX\r\n$2\r\nPX\r\n$6\r\n600000\r\n")
        );
        assert!(SeenSet::first_use(&redis::Value::Okay).unwrap());
        assert!(!SeenSet::first_use(&redis::Value::Nil).unwrap());
        assert!(SeenSet::first_use(&redis::Value::Int(1)).is_err());
    }

    #[tokio::test]
    async fn without_redis_only_requests_stamped_after_the_start_pass() {
        let replays = Replays::new(Nonces::new(600, 100), seen_set("t"), Duration::from_millis(100), 1_000);
        assert_eq!(replays.check("k", "before-start", 999, 1_010).await, Verdict::Replayed);
        assert_eq!(replays.check("k", "in-the-start-second", 1_000, 1_010).await, Verdict::Undecided);
        assert_eq!(replays.check("k", "after-start", 1_001, 1_010).await, Verdict::First);
        assert_eq!(replays.check("k", "after-start", 1_001, 1_010).await, Verdict::Replayed, "and only once");
    }
}
