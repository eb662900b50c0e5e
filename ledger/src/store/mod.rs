//! The Postgres store: the truth about every trade.
//!
//! The intent row is committed before any byte goes to Alipay; `(tenant, out_trade_no)` is unique
//! and carries the request's fingerprint; every transition is a compare-and-set on
//! `(state, version)`, so a stale writer's late write is refused (and counted by the caller).
//!
//! # Layout
//! - `mod.rs`: the store, migrations, reads; intents and settlements go through `batch` lanes
//!   to the statements of `trades`, so concurrent ones share a statement and a commit.
//! - `notifications`, `refunds`, `outbox` (merchant webhooks), `reconcile` (the reconciler's
//!   claims and sweeps), `reports` (on a pool of their own when the service gives one), `bills`
//!   (settlement: bill days, bill rows, their disagreements with the ledger, discrepancies) and
//!   `bill_ledger` (the ledger's side of a bill day: its statements, the rows outside the day's
//!   window, a matched day's totals) and `ledger_day` (a whole day of it, read in bulk by COPY).
//!
//! Pools are bounded (`tenants::db::PoolLimits`): a wait for a connection that runs out is
//! [`StoreError::Busy`], a statement Postgres cut short is [`StoreError::timed_out`].
//!
//! # Plans made for the table as it is
//! A statement that joins a batch of keys to `trades`, or picks its due trades, is planned for the
//! table at every execution: a plan Postgres cached while the ledger was small (a hash join over
//! the whole table) would go on reading it whole once it has grown (`tests/all/planning.rs`). The
//! batched writes run on the services' write pools, which plan every statement
//! (`tenants::db::pool_planning_each_time`); the reconciler's batch reads and its claims of due
//! trades and refunds, on the main pool, are sent unnamed with their parameters' types
//! (`query_typed`), so each is planned with its values.

/// A statement's text, built once.
macro_rules! sql {
    ($($part:expr),+ $(,)?) => {{
        static TEXT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| [$($part),+].concat());
        TEXT.as_str()
    }};
}

mod batch;
mod bill_ledger;
mod bills;
mod ledger_day;
mod notifications;
mod outbox;
mod reconcile;
mod refunds;
mod reports;
mod trades;

use std::sync::Arc;

use deadpool_postgres::{GenericClient, Pool};
use time::OffsetDateTime;

use batch::Lane;
use trades::Record;
pub(crate) use trades::{read_many_planned_now, record_on};

pub use bill_ledger::{BillTotal, EntryView, LedgerBatch, MatchedDay, PaymentView};
pub use bills::{
    BillDay, BillFeed, BilledKind, BilledRow, DayState, Disagreement, Discrepancy, DiscrepancyClass, DiscrepancyFilter,
    LedgerPayment, MAX_DISAGREEMENTS, NewDiscrepancy, beijing_bounds, serialize_day,
};
pub use ledger_day::read_ledger_day;
pub use notifications::{NotificationOutcome, NotifiedPayment, NotifiedStatus};
pub use outbox::{AfterAttempt, Attempt, Delivery, DeliveryReport, event_of};
pub use reconcile::OpenTrade;
pub use refunds::BeginRefund;
pub use reports::{SalesRow, Settled, SettledRow};

use crate::state::TradeState;
use crate::trade::{NewTrade, Settlement, TRADE_COLUMNS, Trade, TradeKey};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The lock every migrator of this schema takes (`ledger` in ASCII).
const MIGRATION_LOCK: i64 = 0x6c65_6467_6572;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("database: {0}")]
    Connect(#[from] pgtls::Error),
    #[error("database pool: {0}")]
    Pool(String),
    /// No connection of the pool became free within its wait limit: the database is busy with
    /// others' work. Nothing was done; a retry later is safe.
    #[error("no database connection became free in time")]
    Busy,
    #[error("stored trade is not readable: {0}")]
    Corrupt(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("transition {from} → {to} is not allowed")]
    Transition { from: TradeState, to: TradeState },
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        match error {
            deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => StoreError::Busy,
            other => StoreError::Pool(other.to_string()),
        }
    }
}

impl StoreError {
    /// Whether Postgres cut the statement short (its `statement_timeout`): it took longer than
    /// its connection allows, and nothing of it was applied.
    pub fn timed_out(&self) -> bool {
        matches!(self, StoreError::Db(error) if error.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED))
    }

    /// The same error for another of the callers that shared a batch.
    fn duplicate(&self) -> StoreError {
        match self {
            StoreError::Busy => StoreError::Busy,
            other => StoreError::Pool(other.to_string()),
        }
    }
}

/// What starting a payment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The intent is recorded: this caller owns the call to Alipay.
    Started(Trade),
    /// The key was used before: the existing trade (compare its fingerprint).
    Existing(Trade),
    /// Another tenant of the same Alipay account holds the number: nothing was recorded, and
    /// nothing may be sent (at Alipay the number names that tenant's trade).
    Taken,
}

/// What a compare-and-set found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    Applied(Trade),
    /// Someone else moved the trade first: its current row (the write was refused).
    Stale(Trade),
}

/// Applies the ledger's migrations (under an advisory lock).
pub async fn migrate(url: &str) -> Result<usize, StoreError> {
    let (mut client, connection) = pgtls::connect(url).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await?;
    let mut runner = embedded::migrations::runner();
    runner.set_migration_table_name("ledger_schema_history");
    let report = runner.set_grouped(true).run_async(&mut client).await;
    client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await?;
    let report = report.map_err(|e| StoreError::Migration(e.to_string()))?;
    Ok(report.applied_migrations().len())
}

/// The ledger's Postgres store.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// The sales reports' own pool (the main one unless [`Store::with_report_pool`]), so heavy
    /// reports never take the connections payments and notifications need.
    reports: Pool,
    lanes: Arc<Lanes>,
}

/// The batched writes of the request path.
struct Lanes {
    begin: Lane<NewTrade>,
    record: Lane<Record>,
    /// The settlements Alipay gives back whole ([`Settlement::alipay_gives_it_back`]), over a
    /// pool that may commit without waiting for the flush (docs/durability.md).
    record_given_back: Lane<Record>,
}

/// Batches of one lane written at once at most: while one is in flight, the next grows. One is
/// enough (an idle lane still writes at once) and cheapest: with four, batches stayed small and
/// Postgres spent 118 µs of CPU per MD5 pay instead of 78–86, the gateway 81 µs instead of 72–81.
const LANE_SLOTS: usize = 1;

/// Connections the batched writes need at most (every lane's slots).
pub const WRITE_CONNECTIONS: usize = 3 * LANE_SLOTS;

/// Of [`WRITE_CONNECTIONS`], those of the writes Alipay gives back
/// ([`Store::with_write_pools`]).
pub const GIVEN_BACK_WRITE_CONNECTIONS: usize = LANE_SLOTS;

const SELECT_TRADE: &str = "WHERE tenant_id = $1 AND out_trade_no = $2";

async fn read(client: &impl GenericClient, key: &TradeKey) -> Result<Option<Trade>, StoreError> {
    read_by(client, key, sql!("SELECT ", TRADE_COLUMNS, " FROM trades ", SELECT_TRADE)).await
}

/// [`read`], holding the row's lock until the transaction `client` is in ends.
async fn read_locked(client: &impl GenericClient, key: &TradeKey) -> Result<Option<Trade>, StoreError> {
    read_by(client, key, sql!("SELECT ", TRADE_COLUMNS, " FROM trades ", SELECT_TRADE, " FOR UPDATE")).await
}

async fn read_by(client: &impl GenericClient, key: &TradeKey, sql: &str) -> Result<Option<Trade>, StoreError> {
    let statement = client.prepare_cached(sql).await?;
    client.query_opt(&statement, &[&key.tenant_id, &key.out_trade_no]).await?.as_ref().map(Trade::from_row).transpose()
}

fn minor(amount: alipay::Amount) -> i64 {
    i64::try_from(amount.minor()).unwrap_or(i64::MAX)
}

impl Store {
    pub fn new(pool: Pool) -> Self {
        Store::with_write_pool(pool.clone(), pool)
    }

    /// A store whose batched writes use `writes` (see `tenants::db::pool_planning_each_time`: a
    /// batch's join to the trades table must be planned for the table as it is), the rest `pool`.
    pub fn with_write_pool(pool: Pool, writes: Pool) -> Self {
        Store::with_write_pools(pool, writes.clone(), writes)
    }

    /// [`Store::with_write_pool`], with the settlements Alipay gives back written over
    /// `given_back` (a pool committing without waiting for the flush: `synchronous_commit=off`).
    pub fn with_write_pools(pool: Pool, writes: Pool, given_back: Pool) -> Self {
        let lanes = Lanes {
            begin: Lane::new(writes.clone(), LANE_SLOTS),
            record: Lane::new(writes, LANE_SLOTS),
            record_given_back: Lane::new(given_back, LANE_SLOTS),
        };
        Store { reports: pool.clone(), pool, lanes: Arc::new(lanes) }
    }

    /// This store with the sales reports on `reports` (a small pool of their own, with a tight
    /// statement timeout: `tenants::db::PoolLimits`).
    #[must_use]
    pub fn with_report_pool(self, reports: Pool) -> Self {
        Store { reports, ..self }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Records the intent (PAYING), unless the key exists; batched with the intents of other
    /// requests arriving meanwhile (one statement, one commit).
    pub async fn begin(&self, new: &NewTrade) -> Result<Begin, StoreError> {
        self.lanes.begin.submit(new.clone()).await
    }

    pub async fn get(&self, key: &TradeKey) -> Result<Option<Trade>, StoreError> {
        let client = self.pool.get().await?;
        read(&client, key).await
    }

    /// Moves `trade` (as read, at its version) to what `settlement` proved; refused if anyone
    /// moved it since, or if design §4 does not allow the step. Batched with the other outcomes
    /// arriving meanwhile.
    pub async fn record(&self, trade: &Trade, settlement: &Settlement) -> Result<Recorded, StoreError> {
        let lane = if settlement.alipay_gives_it_back() { &self.lanes.record_given_back } else { &self.lanes.record };
        lane.submit(Record::new(trade, settlement)?).await
    }

    /// Marks a cancel as asked for, so that the reconciler carries it to its end if its caller
    /// cannot: an open trade is due at once (it has a time already), a paid one (a reversal) at
    /// `takeover_at`, past its caller's own call. Answers the row; a trade with nothing left to
    /// cancel (FAILED, CANCELLED, REFUNDED) is answered as it is.
    pub async fn request_cancel(
        &self,
        key: &TradeKey,
        takeover_at: OffsetDateTime,
    ) -> Result<Option<Trade>, StoreError> {
        let client = self.pool.get().await?;
        let sql = sql!(
            "UPDATE trades SET cancel_requested = true, updated_at = now(), \
             cancel_requested_at = COALESCE(cancel_requested_at, now()), \
             next_check_at = CASE WHEN state IN ('PAYING', 'UNKNOWN', 'WAITING') THEN COALESCE(next_check_at, now()) \
             ELSE COALESCE(next_check_at, $3) END ",
            SELECT_TRADE,
            " AND state NOT IN ('FAILED', 'CANCELLED', 'REFUNDED') RETURNING ",
            TRADE_COLUMNS
        );
        let statement = client.prepare_cached(sql).await?;
        match client.query_opt(&statement, &[&key.tenant_id, &key.out_trade_no, &takeover_at]).await? {
            Some(row) => Ok(Some(Trade::from_row(&row)?)),
            None => read(&client, key).await,
        }
    }

    /// Alipay refused to reverse a paid trade: the cancel asked for is over and the trade stays
    /// paid (a compare-and-set on the version read).
    pub async fn cancel_refused(&self, trade: &Trade) -> Result<Recorded, StoreError> {
        let client = self.pool.get().await?;
        let sql = sql!(
            "UPDATE trades SET cancel_requested = false, next_check_at = NULL, version = version + 1, \
             updated_at = now() ",
            SELECT_TRADE,
            " AND version = $3 AND state IN ('SUCCESS', 'PARTIALLY_REFUNDED') RETURNING ",
            TRADE_COLUMNS
        );
        let statement = client.prepare_cached(sql).await?;
        match client.query_opt(&statement, &[&trade.key.tenant_id, &trade.key.out_trade_no, &trade.version]).await? {
            Some(row) => Ok(Recorded::Applied(Trade::from_row(&row)?)),
            None => read(&client, &trade.key)
                .await?
                .map(Recorded::Stale)
                .ok_or_else(|| StoreError::Corrupt("trade vanished".into())),
        }
    }
}
