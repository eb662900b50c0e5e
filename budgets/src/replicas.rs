//! Which replicas of a role are alive: each announces itself in a Redis sorted set every
//! [`ANNOUNCE_EVERY`] with a score of its expiry (Redis's clock); the live count is how many have
//! not expired. Kept in memory, so the fair share is known when Redis is not.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use redis::{RedisResult, Script};

/// How often a replica announces itself.
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(1);
/// How long an announcement counts: three missed announcements and a replica is gone.
pub const ANNOUNCEMENT_TTL: Duration = Duration::from_secs(3);

const ANNOUNCE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('ZCARD', KEYS[1])
";

pub struct Replicas {
    /// `{prefix}:replicas:{role}`
    key: String,
    /// This replica's member name: random, new for each process.
    me: String,
    live: AtomicU32,
    announce: Script,
}

impl Replicas {
    pub fn new(prefix: &str, role: &str) -> Self {
        Replicas {
            key: format!("{prefix}:replicas:{role}"),
            me: format!("{:016x}", rand::random::<u64>()),
            live: AtomicU32::new(1),
            announce: Script::new(ANNOUNCE),
        }
    }

    /// Replicas of the role seen alive at the last announcement (this one included; at least 1).
    pub fn live(&self) -> u32 {
        self.live.load(Ordering::Relaxed).max(1)
    }

    /// Announces this replica and counts the live ones.
    pub async fn announce(&self, connection: &mut impl redis::aio::ConnectionLike) -> RedisResult<u32> {
        let ttl = ANNOUNCEMENT_TTL.as_millis() as u64;
        let live: u32 = self.announce.key(&self.key).arg(&self.me).arg(ttl).invoke_async(connection).await?;
        self.live.store(live.max(1), Ordering::Relaxed);
        Ok(live)
    }

    /// Leaves the set (a clean shutdown; a crash leaves it by expiry).
    pub async fn leave(&self, connection: &mut impl redis::aio::ConnectionLike) -> RedisResult<()> {
        redis::cmd("ZREM").arg(&self.key).arg(&self.me).query_async(connection).await
    }
}
