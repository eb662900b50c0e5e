//! The Postgres store: the truth about every trade.
//!
//! The intent row is committed before any byte goes to Alipay; `(tenant, out_trade_no)` is unique
//! and carries the request's fingerprint; every transition is a compare-and-set on
//! `(state, version)`, so a stale writer's late write is refused (and counted by the caller).

/// A statement's text, built once.
macro_rules! sql {
    ($($part:expr),+ $(,)?) => {{
        static TEXT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| [$($part),+].concat());
        TEXT.as_str()
    }};
}

mod notifications;
mod outbox;
mod reconcile;
mod refunds;
mod reports;

use deadpool_postgres::{GenericClient, Pool};

pub use notifications::{NotificationOutcome, NotifiedPayment, NotifiedStatus};
pub use outbox::{AfterAttempt, Attempt, Delivery, DeliveryReport, event_of};
pub use reconcile::OpenTrade;
pub use refunds::BeginRefund;
pub use reports::SalesRow;

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
    #[error("database pool: {0}")]
    Pool(String),
    #[error("stored trade is not readable: {0}")]
    Corrupt(String),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("transition {from} → {to} is not allowed")]
    Transition { from: TradeState, to: TradeState },
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        StoreError::Pool(error.to_string())
    }
}

/// What starting a payment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The intent is recorded: this caller owns the call to Alipay.
    Started(Trade),
    /// The key was used before: the existing trade (compare its fingerprint).
    Existing(Trade),
}

/// What a compare-and-set found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    Applied(Trade),
    /// Someone else moved the trade first: its current row (the write was refused).
    Stale(Trade),
}

/// Applies the ledger's migrations (under an advisory lock).
pub async fn migrate(url: &str) -> Result<usize, StoreError> {
    let (mut client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
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
}

const SELECT_TRADE: &str = "WHERE tenant_id = $1 AND out_trade_no = $2";

async fn read(client: &impl GenericClient, key: &TradeKey, lock: bool) -> Result<Option<Trade>, StoreError> {
    let sql = if lock {
        sql!("SELECT ", TRADE_COLUMNS, " FROM trades ", SELECT_TRADE, " FOR UPDATE")
    } else {
        sql!("SELECT ", TRADE_COLUMNS, " FROM trades ", SELECT_TRADE)
    };
    let statement = client.prepare_cached(sql).await?;
    client.query_opt(&statement, &[&key.tenant_id, &key.out_trade_no]).await?.as_ref().map(Trade::from_row).transpose()
}

fn minor(amount: alipay::Amount) -> i64 {
    i64::try_from(amount.minor()).unwrap_or(i64::MAX)
}

impl Store {
    pub fn new(pool: Pool) -> Self {
        Store { pool }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Records the intent (PAYING, or the starting state of `new.kind`), unless the key exists.
    pub async fn begin(&self, new: &NewTrade) -> Result<Begin, StoreError> {
        let client = self.pool.get().await?;
        let sql = sql!(
            "INSERT INTO trades (tenant_id, out_trade_no, kind, state, fingerprint, currency, amount_minor, subject, \
             store_id, terminal_id, operator_id, next_check_at) VALUES ($1, $2, $3, 'PAYING', $4, $5, $6, $7, $8, $9, \
             $10, $11) \
             ON CONFLICT (tenant_id, out_trade_no) DO NOTHING RETURNING ",
            TRADE_COLUMNS
        );
        let statement = client.prepare_cached(sql).await?;
        let inserted = client
            .query_opt(
                &statement,
                &[
                    &new.key.tenant_id,
                    &new.key.out_trade_no,
                    &new.kind.as_str(),
                    &new.fingerprint,
                    &new.amount.currency().code(),
                    &minor(new.amount),
                    &new.subject,
                    &new.store_id,
                    &new.terminal_id,
                    &new.operator_id,
                    &new.check_at,
                ],
            )
            .await?;
        match inserted {
            Some(row) => Ok(Begin::Started(Trade::from_row(&row)?)),
            None => read(&client, &new.key, false)
                .await?
                .map(Begin::Existing)
                .ok_or_else(|| StoreError::Corrupt("trade vanished after a conflict".into())),
        }
    }

    pub async fn get(&self, key: &TradeKey) -> Result<Option<Trade>, StoreError> {
        let client = self.pool.get().await?;
        read(&client, key, false).await
    }

    /// Moves `trade` (as read, at its version) to what `settlement` proved; refused if anyone
    /// moved it since, or if design §4 does not allow the step.
    pub async fn settle(&self, trade: &Trade, settlement: &Settlement) -> Result<Settled, StoreError> {
        let client = self.pool.get().await?;
        settle_on(&client, trade, settlement).await
    }

    /// Marks a cancel as asked for (the reconciler retries it until confirmed); answers the row.
    pub async fn request_cancel(&self, key: &TradeKey) -> Result<Option<Trade>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "UPDATE trades SET cancel_requested = true, updated_at = now(), \
             next_check_at = CASE WHEN state IN ('PAYING', 'UNKNOWN', 'WAITING') THEN COALESCE(next_check_at, now()) \
             ELSE next_check_at END \
             {SELECT_TRADE} AND state NOT IN ('FAILED', 'CANCELLED') RETURNING {TRADE_COLUMNS}"
        );
        let statement = client.prepare_cached(&sql).await?;
        match client.query_opt(&statement, &[&key.tenant_id, &key.out_trade_no]).await? {
            Some(row) => Ok(Some(Trade::from_row(&row)?)),
            None => read(&client, key, false).await,
        }
    }
}

/// [`Store::settle`] on `client` (a transaction, for writes that go with it).
pub(crate) async fn settle_on(
    client: &impl GenericClient,
    trade: &Trade,
    settlement: &Settlement,
) -> Result<Settled, StoreError> {
    let next = settlement.state();
    if !trade.state.can_become(next) {
        return Err(StoreError::Transition { from: trade.state, to: next });
    }
    let sql = sql!(
        "UPDATE trades SET state = $5, version = version + 1, updated_at = now(), \
         trade_no = COALESCE($6, trade_no), buyer_user_id = COALESCE($7, buyer_user_id), \
         paid_at = COALESCE($8, paid_at), failure_code = $9, failure_message = $10, unknown_reason = $11, \
         cancel_action = COALESCE($12, cancel_action), qr_code = COALESCE($13, qr_code), \
         deadline = COALESCE($14, deadline), next_check_at = $15, \
         refunded_minor = CASE WHEN $12 = 'refund' THEN amount_minor ELSE refunded_minor END, \
         cancel_requested = cancel_requested AND $5 NOT IN ('CANCELLED', 'FAILED') ",
        SELECT_TRADE,
        " AND version = $3 AND state = $4 RETURNING ",
        TRADE_COLUMNS
    );
    let statement = client.prepare_cached(sql).await?;
    let (mut trade_no, mut buyer, mut paid_at, mut code, mut message, mut reason) =
        (None, None, None, None, None, None);
    let (mut action, mut qr_code, mut deadline, mut next_check_at) = (None, None, None, None);
    match settlement {
        Settlement::Paid { trade_no: no, buyer_user_id, paid_at: at } => {
            trade_no = no.as_deref();
            buyer = buyer_user_id.as_deref();
            paid_at = Some(*at);
        }
        Settlement::Failed { code: c, message: m } => {
            code = Some(c.as_str());
            message = m.as_deref();
        }
        Settlement::Unknown { reason: r, next_check_at: next, deadline: end } => {
            reason = Some(r.as_str());
            next_check_at = Some(*next);
            deadline = Some(*end);
        }
        Settlement::Waiting { qr_code: code, next_check_at: next, deadline: end } => {
            qr_code = Some(code.as_str());
            next_check_at = Some(*next);
            deadline = Some(*end);
        }
        Settlement::Cancelled { action: a } => action = Some(a.as_str()),
    }
    let updated = client
        .query_opt(
            &statement,
            &[
                &trade.key.tenant_id,
                &trade.key.out_trade_no,
                &trade.version,
                &trade.state.as_str(),
                &next.as_str(),
                &trade_no,
                &buyer,
                &paid_at,
                &code,
                &message,
                &reason,
                &action,
                &qr_code,
                &deadline,
                &next_check_at,
            ],
        )
        .await?;
    match updated {
        Some(row) => Ok(Settled::Applied(Trade::from_row(&row)?)),
        None => read(client, &trade.key, false)
            .await?
            .map(Settled::Stale)
            .ok_or_else(|| StoreError::Corrupt("trade vanished".into())),
    }
}
