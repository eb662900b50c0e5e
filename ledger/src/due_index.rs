//! The Redis due-index: a sorted set of trades scored by when the reconciler must look at them.
//! Only an index — Postgres `next_check_at` is the truth and the reconciler's sweeper rebuilds
//! anything Redis loses — so arming is best effort and never delays an answer to a POS.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
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

fn score(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
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
        let _: i64 = connection.zadd(&self.key, trade.encode(), score(at)).await?;
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

    /// How many trades are armed.
    pub async fn depth(&self) -> Result<u64, DueIndexError> {
        let mut connection = self.connection.clone();
        Ok(connection.zcard(&self.key).await?)
    }

    /// Whether Redis answers.
    pub async fn ping(&self) -> Result<(), DueIndexError> {
        let mut connection = self.connection.clone();
        let _: String = redis::cmd("PING").query_async(&mut connection).await?;
        Ok(())
    }
}
