//! The Redis due-index: a sorted set of trades scored by when the reconciler must look at them
//! (milliseconds since the epoch). Only an index — Postgres `next_check_at` is the truth and the
//! reconciler's sweeper rebuilds anything Redis loses — so arming is best effort and never delays
//! an answer to a POS.
//!
//! Reconcilers claim due trades with a lease, in one atomic script: each claimed member's score
//! moves to the lease's end, so it stays in the set (the sweeper never sees it missing), no other
//! reconciler claims it, and if its claimer dies it comes due again when the lease ends. The
//! claimer then re-arms it only while the lease is still its own.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use time::OffsetDateTime;

use crate::trade::TradeKey;

/// How long one Redis command may take before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum DueIndexError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// The due-index under one key prefix (tests use a fresh prefix each).
#[derive(Clone)]
pub struct DueIndex {
    connection: ConnectionManager,
    key: String,
}

/// A time as a score: milliseconds since the epoch, rounded down (what a claim compares with).
pub fn score(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000)).unwrap_or(i64::MAX)
}

/// A due time as a score, rounded up: a trade is never claimed before its time (a cancel due at
/// the deadline finds the deadline passed).
pub fn due_score(at: OffsetDateTime) -> i64 {
    i64::try_from((at.unix_timestamp_nanos() + 999_999).div_euclid(1_000_000)).unwrap_or(i64::MAX)
}

/// The time of a score.
pub fn time_of(score: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(score) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Takes up to ARGV[3] members due at ARGV[1] and leases them until ARGV[2]; answers them (with
/// the scores they were due at) and the earliest score left.
const CLAIM: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[3])
for i = 1, #due, 2 do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], due[i])
end
local head = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {due, head[2] or ''}
";

/// For each (member, lease, next) triple: moves the member to `next` if its score is still
/// `lease`. Answers how many moved.
const REARM: &str = r"
local moved = 0
for i = 1, #ARGV, 3 do
  local current = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if current and tonumber(current) == tonumber(ARGV[i + 1]) then
    redis.call('ZADD', KEYS[1], ARGV[i + 2], ARGV[i])
    moved = moved + 1
  end
end
return moved
";

/// What one claim took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claim {
    /// The trades claimed, each with the score it was due at.
    pub due: Vec<(TradeKey, i64)>,
    /// Members that name no trade (removed by the caller through [`DueIndex::disarm_members`]).
    pub unreadable: Vec<String>,
    /// The score every claimed member now holds: the lease's end.
    pub lease: i64,
    /// The earliest score left in the set (a lease included), if any.
    pub next_due: Option<i64>,
}

/// A claimed trade to look at again at `next`, if the lease `lease` is still its claimer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rearm {
    pub key: TradeKey,
    pub lease: i64,
    pub next: i64,
}

impl DueIndex {
    /// Connects lazily (the first command connects; a lost connection reconnects).
    pub fn new(url: &str, prefix: &str) -> Result<Self, DueIndexError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(DueIndex { connection, key: format!("{prefix}:due") })
    }

    /// The sorted set's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// Schedules `trade` for `at` (replacing any earlier time).
    pub async fn arm(&self, trade: &TradeKey, at: OffsetDateTime) -> Result<(), DueIndexError> {
        let mut connection = self.connection.clone();
        let _: i64 = connection.zadd(&self.key, trade.encode(), due_score(at)).await?;
        Ok(())
    }

    pub async fn disarm(&self, trade: &TradeKey) -> Result<(), DueIndexError> {
        let mut connection = self.connection.clone();
        let _: i64 = connection.zrem(&self.key, trade.encode()).await?;
        Ok(())
    }

    /// When `trade` is due, if it is armed.
    pub async fn due_at(&self, trade: &TradeKey) -> Result<Option<i64>, DueIndexError> {
        let mut connection = self.connection.clone();
        Ok(connection.zscore(&self.key, trade.encode()).await?)
    }

    /// Claims up to `limit` trades due at `now` (a score), leasing them until `lease`.
    pub async fn claim(&self, now: i64, lease: i64, limit: usize) -> Result<Claim, DueIndexError> {
        static SCRIPT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| Script::new(CLAIM));
        let mut connection = self.connection.clone();
        let (flat, head): (Vec<String>, String) =
            SCRIPT.key(&self.key).arg(now).arg(lease).arg(limit).invoke_async(&mut connection).await?;
        let mut claim = Claim { lease, next_due: parse_score(&head), ..Claim::default() };
        for pair in flat.chunks_exact(2) {
            match (TradeKey::decode(&pair[0]), parse_score(&pair[1])) {
                (Some(key), Some(due)) => claim.due.push((key, due)),
                _ => claim.unreadable.push(pair[0].clone()),
            }
        }
        Ok(claim)
    }

    /// Re-arms claimed trades whose lease is still their claimer's; answers how many were.
    pub async fn rearm(&self, rearms: &[Rearm]) -> Result<usize, DueIndexError> {
        static SCRIPT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| Script::new(REARM));
        if rearms.is_empty() {
            return Ok(0);
        }
        let mut invocation = SCRIPT.key(&self.key);
        for rearm in rearms {
            invocation.arg(rearm.key.encode()).arg(rearm.lease).arg(rearm.next);
        }
        let mut connection = self.connection.clone();
        Ok(invocation.invoke_async(&mut connection).await?)
    }

    /// Arms every trade of `trades` that is not armed yet (an armed one keeps its time);
    /// answers how many were added.
    pub async fn arm_missing(&self, trades: &[(TradeKey, OffsetDateTime)]) -> Result<usize, DueIndexError> {
        if trades.is_empty() {
            return Ok(0);
        }
        let mut command = redis::cmd("ZADD");
        command.arg(&self.key).arg("NX");
        for (key, at) in trades {
            command.arg(due_score(*at)).arg(key.encode());
        }
        let mut connection = self.connection.clone();
        Ok(command.query_async(&mut connection).await?)
    }

    /// Removes members (trades now final, or members that name no trade).
    pub async fn disarm_members(&self, members: &[String]) -> Result<(), DueIndexError> {
        if members.is_empty() {
            return Ok(());
        }
        let mut connection = self.connection.clone();
        let _: i64 = connection.zrem(&self.key, members).await?;
        Ok(())
    }

    /// How many trades are armed.
    pub async fn depth(&self) -> Result<u64, DueIndexError> {
        let mut connection = self.connection.clone();
        Ok(connection.zcard(&self.key).await?)
    }

    /// How many trades are due at `now` (a score), leases that ran out included.
    pub async fn due_count(&self, now: i64) -> Result<u64, DueIndexError> {
        let mut connection = self.connection.clone();
        Ok(connection.zcount(&self.key, "-inf", now).await?)
    }

    /// Whether Redis answers.
    pub async fn ping(&self) -> Result<(), DueIndexError> {
        let mut connection = self.connection.clone();
        let _: String = redis::cmd("PING").query_async(&mut connection).await?;
        Ok(())
    }
}

fn parse_score(text: &str) -> Option<i64> {
    let value: f64 = text.parse().ok()?;
    // Scores are whole milliseconds, exact in a double.
    #[allow(clippy::cast_possible_truncation)]
    value.is_finite().then_some(value as i64)
}
