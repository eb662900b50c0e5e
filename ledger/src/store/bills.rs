//! Settlement's tables: each Alipay account's bill days (leased to one reconciler at a time),
//! the bill's rows (loaded by binary COPY from a stream, all or nothing), the ledger's
//! disagreements with them (found in SQL, so memory does not grow with the bill), and the
//! discrepancies ops resolve.

use std::time::Duration;

use serde::Serialize;
use time::{Date, OffsetDateTime};
use tokio::sync::mpsc;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::{Store, StoreError};

/// A bill day's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DayState {
    /// Not reconciled yet (the bill is not out, or a try failed).
    Pending,
    /// Alipay has no bill and the ledger nothing for the day.
    Empty,
    /// Read and matched.
    Matched,
}

impl DayState {
    pub const fn as_str(self) -> &'static str {
        match self {
            DayState::Pending => "pending",
            DayState::Empty => "empty",
            DayState::Matched => "matched",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "pending" => Ok(DayState::Pending),
            "empty" => Ok(DayState::Empty),
            "matched" => Ok(DayState::Matched),
            other => Err(StoreError::Corrupt(format!("bill day state {other}"))),
        }
    }
}

/// Writes a day as `yyyy-mm-dd` (serde's default for `Date` is a tuple).
pub fn serialize_day<S: serde::Serializer>(day: &Date, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(day)
}

/// One account's bill day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BillDay {
    pub alipay_account: String,
    #[serde(serialize_with = "serialize_day")]
    pub day: Date,
    pub state: DayState,
    pub attempts: i32,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub next_try_at: OffsetDateTime,
    pub file_path: Option<String>,
    /// Hex.
    pub file_sha256: Option<String>,
    pub file_bytes: Option<i64>,
    pub payments: Option<i64>,
    pub refunds: Option<i64>,
    pub discrepancies: Option<i64>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub matched_at: Option<OffsetDateTime>,
}

const DAY_COLUMNS: &str = "alipay_account, day, state, attempts, last_error, next_try_at, file_path, file_sha256, \
                           file_bytes, payments, refunds, discrepancies, matched_at";

impl BillDay {
    fn from_row(row: &tokio_postgres::Row) -> Result<Self, StoreError> {
        let sha: Option<Vec<u8>> = row.try_get("file_sha256")?;
        Ok(BillDay {
            alipay_account: row.try_get("alipay_account")?,
            day: row.try_get("day")?,
            state: DayState::parse(row.try_get("state")?)?,
            attempts: row.try_get("attempts")?,
            last_error: row.try_get("last_error")?,
            next_try_at: row.try_get("next_try_at")?,
            file_path: row.try_get("file_path")?,
            file_sha256: sha.map(|bytes| bytes.iter().map(|b| format!("{b:02x}")).collect()),
            file_bytes: row.try_get("file_bytes")?,
            payments: row.try_get("payments")?,
            refunds: row.try_get("refunds")?,
            discrepancies: row.try_get("discrepancies")?,
            matched_at: row.try_get("matched_at")?,
        })
    }
}

/// Whether a bill row is a payment or a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BilledKind {
    Payment,
    Refund,
}

impl BilledKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            BilledKind::Payment => "payment",
            BilledKind::Refund => "refund",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "payment" => Ok(BilledKind::Payment),
            "refund" => Ok(BilledKind::Refund),
            other => Err(StoreError::Corrupt(format!("bill row kind {other}"))),
        }
    }
}

/// One row of a bill, as settlement keeps it. Amounts in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BilledRow {
    pub kind: BilledKind,
    pub out_trade_no: String,
    /// The refund's number as Alipay knows it; empty on payments.
    pub out_request_no: String,
    pub trade_no: String,
    pub currency: String,
    /// The magnitude (the kind gives the direction).
    pub amount_minor: i64,
    /// Signed as the bill states it: negative when charged.
    pub fee_minor: i64,
    pub store_id: Option<String>,
    pub finished_at: OffsetDateTime,
}

/// What a bill reader sends [`Store::load_bill_rows`].
#[derive(Debug)]
pub enum BillFeed {
    Rows(Vec<BilledRow>),
    /// The file was read to its end and its totals checked: the rows may be kept.
    End,
    /// The file is refused: nothing of it is kept.
    Failed(String),
}

/// Loading a bill's rows stopped; nothing of it was kept.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the bill was refused: {0}")]
    Refused(String),
    #[error("the bill's reader stopped before its end")]
    Cut,
    #[error("a row names a payment or refund already in the bill of another day ({0})")]
    Repeated(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn store_error(error: tokio_postgres::Error) -> LoadError {
    if error.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
        return LoadError::Repeated(error.as_db_error().and_then(|e| e.detail()).unwrap_or_default().to_owned());
    }
    LoadError::Store(error.into())
}

/// Where the ledger and a bill disagree (before Alipay is asked who is right).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disagreement {
    /// A bill payment no trade of the account holds.
    PaymentNotInLedger { row: BilledRow },
    /// A bill payment whose trade is not paid, or paid another amount, currency or trade_no.
    PaymentDiffers { row: BilledRow, ledger: LedgerPayment },
    /// A bill refund the ledger does not hold as done for that amount.
    RefundDiffers { row: BilledRow, tenant_id: Option<Uuid>, ledger_minor: Option<i64> },
    /// A paid trade of the day no bill holds.
    PaymentNotInBill { ledger: LedgerPayment },
    /// A refund (or the refund of a reversal) done on the day no bill holds.
    RefundNotInBill { ledger: LedgerPayment, out_request_no: String, amount_minor: i64 },
}

/// The ledger's side of a trade, as matching needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerPayment {
    pub tenant_id: Uuid,
    pub out_trade_no: String,
    pub trade_no: Option<String>,
    pub state: String,
    pub currency: String,
    pub amount_minor: i64,
}

impl LedgerPayment {
    fn from_row(row: &tokio_postgres::Row) -> Result<Self, StoreError> {
        Ok(LedgerPayment {
            tenant_id: row.try_get("tenant_id")?,
            out_trade_no: row.try_get("out_trade_no")?,
            trade_no: row.try_get("l_trade_no")?,
            state: row.try_get("state")?,
            currency: row.try_get("l_currency")?,
            amount_minor: row.try_get("l_amount")?,
        })
    }
}

fn billed_from_row(row: &tokio_postgres::Row) -> Result<BilledRow, StoreError> {
    Ok(BilledRow {
        kind: BilledKind::parse(row.try_get("kind")?)?,
        out_trade_no: row.try_get("out_trade_no")?,
        out_request_no: row.try_get("out_request_no")?,
        trade_no: row.try_get("trade_no")?,
        currency: row.try_get("currency")?,
        amount_minor: row.try_get("amount_minor")?,
        fee_minor: row.try_get("fee_minor")?,
        store_id: row.try_get("store_id")?,
        finished_at: row.try_get("finished_at")?,
    })
}

/// A trade counts as paid: it was, whatever refunds or a reversal did after.
const PAID: &str = "(t.state IN ('SUCCESS', 'PARTIALLY_REFUNDED', 'REFUNDED') \
                    OR (t.state = 'CANCELLED' AND t.cancel_action = 'refund'))";

/// What a reversal refunded: all that was refunded, less the refunds the POS asked for.
const REVERSED: &str = "(t.refunded_minor - (SELECT coalesce(sum(x.amount_minor), 0)::bigint FROM refunds x \
                        WHERE x.tenant_id = t.tenant_id AND x.out_trade_no = t.out_trade_no AND x.state = 'SUCCESS'))";

/// The most disagreements one day reports (a bill of another account would make every row one).
pub const MAX_DISAGREEMENTS: i64 = 10_000;

/// The class of a discrepancy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscrepancyClass {
    /// Alipay has it, the ledger did not.
    MissingFromLedger,
    /// The ledger has it, the bill does not.
    MissingFromBill,
    /// Both have the payment, for different amounts.
    AmountMismatch,
    /// Both have the trade, one as paid and the other not (or under another trade_no).
    StatusMismatch,
    /// A refund one side has and the other has not, or for another amount.
    RefundMismatch,
}

impl DiscrepancyClass {
    pub const ALL: [DiscrepancyClass; 5] = [
        DiscrepancyClass::MissingFromLedger,
        DiscrepancyClass::MissingFromBill,
        DiscrepancyClass::AmountMismatch,
        DiscrepancyClass::StatusMismatch,
        DiscrepancyClass::RefundMismatch,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            DiscrepancyClass::MissingFromLedger => "missing_from_ledger",
            DiscrepancyClass::MissingFromBill => "missing_from_bill",
            DiscrepancyClass::AmountMismatch => "amount_mismatch",
            DiscrepancyClass::StatusMismatch => "status_mismatch",
            DiscrepancyClass::RefundMismatch => "refund_mismatch",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        Self::ALL
            .into_iter()
            .find(|class| class.as_str() == text)
            .ok_or_else(|| StoreError::Corrupt(format!("discrepancy class {text}")))
    }
}

/// A discrepancy as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewDiscrepancy {
    pub alipay_account: String,
    #[serde(serialize_with = "serialize_day")]
    pub day: Date,
    pub tenant_id: Option<Uuid>,
    pub class: DiscrepancyClass,
    pub kind: BilledKind,
    pub out_trade_no: String,
    pub out_request_no: String,
    pub trade_no: Option<String>,
    pub currency: Option<String>,
    pub ledger_minor: Option<i64>,
    pub bill_minor: Option<i64>,
    pub alipay_minor: Option<i64>,
    pub detail: String,
}

/// A stored discrepancy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Discrepancy {
    pub id: i64,
    #[serde(flatten)]
    pub found: NewDiscrepancy,
    #[serde(with = "time::serde::rfc3339")]
    pub found_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
}

const DISCREPANCY_COLUMNS: &str = "id, alipay_account, day, tenant_id, class, kind, out_trade_no, out_request_no, \
                                   trade_no, currency, ledger_minor, bill_minor, alipay_minor, detail, found_at, \
                                   resolved_at, resolved_by, resolution";

impl std::ops::Deref for Discrepancy {
    type Target = NewDiscrepancy;
    fn deref(&self) -> &NewDiscrepancy {
        &self.found
    }
}

impl Discrepancy {
    fn from_row(row: &tokio_postgres::Row) -> Result<Self, StoreError> {
        let found = NewDiscrepancy {
            alipay_account: row.try_get("alipay_account")?,
            day: row.try_get("day")?,
            tenant_id: row.try_get("tenant_id")?,
            class: DiscrepancyClass::parse(row.try_get("class")?)?,
            kind: BilledKind::parse(row.try_get("kind")?)?,
            out_trade_no: row.try_get("out_trade_no")?,
            out_request_no: row.try_get("out_request_no")?,
            trade_no: row.try_get("trade_no")?,
            currency: row.try_get("currency")?,
            ledger_minor: row.try_get("ledger_minor")?,
            bill_minor: row.try_get("bill_minor")?,
            alipay_minor: row.try_get("alipay_minor")?,
            detail: row.try_get("detail")?,
        };
        Ok(Discrepancy {
            id: row.try_get("id")?,
            found,
            found_at: row.try_get("found_at")?,
            resolved_at: row.try_get("resolved_at")?,
            resolved_by: row.try_get("resolved_by")?,
            resolution: row.try_get("resolution")?,
        })
    }
}

/// Which discrepancies to list.
#[derive(Debug, Clone, Default)]
pub struct DiscrepancyFilter {
    pub tenant_id: Option<Uuid>,
    pub alipay_account: Option<String>,
    pub day: Option<Date>,
    /// Only those no ops action resolved yet.
    pub open_only: bool,
    pub limit: i64,
}

/// The Beijing day's bounds, as instants.
pub fn beijing_bounds(day: Date) -> (OffsetDateTime, OffsetDateTime) {
    let offset = time::macros::offset!(+8);
    let start = day.midnight().assume_offset(offset);
    (start, start + time::Duration::DAY)
}

impl Store {
    /// Takes account `account`'s day `day` for `lease` (creating its row), unless another
    /// reconciler holds it or it is settled (`empty` or `matched`) and `again` is false.
    pub async fn lease_bill_day(
        &self,
        account: &str,
        day: Date,
        lease: Duration,
        again: bool,
    ) -> Result<Option<BillDay>, StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO bill_days (alipay_account, day) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&account, &day],
            )
            .await?;
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let sql = format!(
            "UPDATE bill_days SET leased_until = now() + make_interval(secs => $3::bigint / 1000.0) \
             WHERE alipay_account = $1 AND day = $2 AND (leased_until IS NULL OR leased_until < now()) \
             AND (state = 'pending' OR $4) RETURNING {DAY_COLUMNS}"
        );
        let row = client.query_opt(&sql, &[&account, &day, &lease_ms, &again]).await?;
        row.as_ref().map(BillDay::from_row).transpose()
    }

    /// Ends a lease: the day stays pending, to be tried again at `next_try_at`.
    pub async fn bill_day_later(
        &self,
        account: &str,
        day: Date,
        error: &str,
        next_try_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE bill_days SET state = 'pending', attempts = attempts + 1, last_error = $3, next_try_at = $4, \
                 leased_until = NULL WHERE alipay_account = $1 AND day = $2",
                &[&account, &day, &error, &next_try_at],
            )
            .await?;
        Ok(())
    }

    /// Ends a lease: Alipay has no bill for the day and the ledger holds nothing of it.
    pub async fn bill_day_empty(&self, account: &str, day: Date) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE bill_days SET state = 'empty', attempts = attempts + 1, last_error = NULL, leased_until = NULL, \
                 payments = 0, refunds = 0, discrepancies = 0, matched_at = now() \
                 WHERE alipay_account = $1 AND day = $2",
                &[&account, &day],
            )
            .await?;
        Ok(())
    }

    /// Records where the day's raw file is kept (before it is read).
    pub async fn bill_day_fetched(
        &self,
        account: &str,
        day: Date,
        path: &str,
        sha256: &[u8],
        bytes: i64,
    ) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE bill_days SET file_path = $3, file_sha256 = $4, file_bytes = $5, fetched_at = now() \
                 WHERE alipay_account = $1 AND day = $2",
                &[&account, &day, &path, &sha256, &bytes],
            )
            .await?;
        Ok(())
    }

    /// Ends a lease: the day is matched, with `discrepancies` found.
    pub async fn bill_day_matched(&self, account: &str, day: Date, discrepancies: i64) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE bill_days d SET state = 'matched', attempts = attempts + 1, last_error = NULL, \
                 leased_until = NULL, discrepancies = $3, matched_at = now(), \
                 payments = (SELECT count(*) FROM bill_rows b WHERE b.alipay_account = d.alipay_account \
                             AND b.day = d.day AND b.kind = 'payment'), \
                 refunds = (SELECT count(*) FROM bill_rows b WHERE b.alipay_account = d.alipay_account \
                            AND b.day = d.day AND b.kind = 'refund') \
                 WHERE alipay_account = $1 AND day = $2",
                &[&account, &day, &discrepancies],
            )
            .await?;
        Ok(())
    }

    /// The days of `account` (all accounts when `None`) from `from` on, newest first.
    pub async fn bill_days(&self, account: Option<&str>, from: Date, limit: i64) -> Result<Vec<BillDay>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {DAY_COLUMNS} FROM bill_days WHERE ($1::text IS NULL OR alipay_account = $1) AND day >= $2 \
             ORDER BY day DESC, alipay_account LIMIT $3"
        );
        let rows = client.query(&sql, &[&account, &from, &limit]).await?;
        rows.iter().map(BillDay::from_row).collect()
    }

    /// Whether the ledger holds anything of `account` (its trades being those of `tenants`) on
    /// `day`: a payment, a refund or a reversal.
    pub async fn ledger_has_day(&self, account: &str, tenants: &[Uuid], day: Date) -> Result<bool, StoreError> {
        let (start, end) = beijing_bounds(day);
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM trades t WHERE t.tenant_id = ANY($4) AND t.alipay_account = $1 \
               AND t.created_at >= $2::timestamptz - interval '1 day' AND t.created_at < $3 AND {PAID} \
               AND (coalesce(t.paid_at, t.created_at) BETWEEN $2 AND $3 \
                    OR (t.state = 'CANCELLED' AND coalesce(t.cancel_requested_at, t.updated_at) BETWEEN $2 AND $3))) \
             OR EXISTS (SELECT 1 FROM refunds r JOIN trades t USING (tenant_id, out_trade_no) \
               WHERE r.tenant_id = ANY($4) AND t.alipay_account = $1 AND r.state = 'SUCCESS' \
               AND r.refunded_at >= $2 AND r.refunded_at < $3)"
        );
        Ok(client.query_one(&sql, &[&account, &start, &end, &tenants]).await?.try_get(0)?)
    }

    /// Replaces `account`'s rows of `day` with those `feed` sends, in one transaction that
    /// commits only at [`BillFeed::End`]: a refused or cut file leaves the day's rows as they were.
    pub async fn load_bill_rows(
        &self,
        account: &str,
        day: Date,
        mut feed: mpsc::Receiver<BillFeed>,
    ) -> Result<u64, LoadError> {
        let mut client = self.pool.get().await.map_err(StoreError::from)?;
        let tx = client.transaction().await.map_err(store_error)?;
        tx.execute("DELETE FROM bill_rows WHERE alipay_account = $1 AND day = $2", &[&account, &day])
            .await
            .map_err(store_error)?;
        let sink = tx
            .copy_in(
                "COPY bill_rows (alipay_account, day, kind, out_trade_no, out_request_no, trade_no, currency, \
                 amount_minor, fee_minor, store_id, finished_at) FROM STDIN (FORMAT binary)",
            )
            .await
            .map_err(store_error)?;
        let types = [
            Type::TEXT,
            Type::DATE,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::INT8,
            Type::INT8,
            Type::TEXT,
            Type::TIMESTAMPTZ,
        ];
        let writer = BinaryCopyInWriter::new(sink, &types);
        tokio::pin!(writer);
        let mut count = 0u64;
        loop {
            match feed.recv().await {
                Some(BillFeed::Rows(rows)) => {
                    for row in &rows {
                        writer
                            .as_mut()
                            .write(&[
                                &account,
                                &day,
                                &row.kind.as_str(),
                                &row.out_trade_no,
                                &row.out_request_no,
                                &row.trade_no,
                                &row.currency,
                                &row.amount_minor,
                                &row.fee_minor,
                                &row.store_id,
                                &row.finished_at,
                            ])
                            .await
                            .map_err(store_error)?;
                    }
                    count += rows.len() as u64;
                }
                Some(BillFeed::End) => break,
                Some(BillFeed::Failed(why)) => return Err(LoadError::Refused(why)),
                None => return Err(LoadError::Cut),
            }
        }
        writer.finish().await.map_err(store_error)?;
        // Without statistics of the rows just written, Postgres takes the table for one row and
        // plans the matching as nested loops over it: quadratic, cut by the statement timeout at
        // 100,000 rows (reconciler/benches/settle.rs). Sampled, so a few hundred ms at most.
        tx.batch_execute("ANALYZE bill_rows").await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(count)
    }

    /// Where `account`'s ledger (its trades being those of `tenants`, every tenant that ever used
    /// the account) and its bill of `day` disagree, at most [`MAX_DISAGREEMENTS`] of each kind.
    pub async fn bill_disagreements(
        &self,
        account: &str,
        tenants: &[Uuid],
        day: Date,
    ) -> Result<Vec<Disagreement>, StoreError> {
        let (start, end) = beijing_bounds(day);
        let mut connection = self.pool.get().await?;
        // Hash joins of a day's rows want memory; compiling the plans (JIT) costs more than it
        // saves on queries that mostly find nothing.
        let client = connection.transaction().await?;
        client.batch_execute("SET LOCAL work_mem = '64MB'; SET LOCAL jit = off").await?;
        let mut found = Vec::new();

        let payments = format!(
            "SELECT b.*, t.tenant_id, t.state, t.trade_no AS l_trade_no, t.currency AS l_currency, \
             t.amount_minor AS l_amount FROM bill_rows b LEFT JOIN trades t \
             ON t.alipay_account = b.alipay_account AND t.out_trade_no = b.out_trade_no \
             WHERE b.alipay_account = $1 AND b.day = $2 AND b.kind = 'payment' \
             AND NOT coalesce({PAID} AND t.amount_minor = b.amount_minor AND t.currency = b.currency \
                               AND (t.trade_no IS NULL OR t.trade_no = b.trade_no), false) \
             LIMIT $3"
        );
        for row in client.query(&payments, &[&account, &day, &MAX_DISAGREEMENTS]).await? {
            let billed = billed_from_row(&row)?;
            let tenant: Option<Uuid> = row.try_get("tenant_id")?;
            found.push(match tenant {
                None => Disagreement::PaymentNotInLedger { row: billed },
                Some(_) => Disagreement::PaymentDiffers { row: billed, ledger: LedgerPayment::from_row(&row)? },
            });
        }

        let refunds = format!(
            "SELECT b.*, t.tenant_id, r.amount_minor AS r_amount, r.state AS r_state, \
             CASE WHEN t.state = 'CANCELLED' AND t.cancel_action = 'refund' THEN {REVERSED} END AS reversed \
             FROM bill_rows b LEFT JOIN trades t ON t.alipay_account = b.alipay_account AND t.out_trade_no = b.out_trade_no \
             LEFT JOIN refunds r ON r.tenant_id = t.tenant_id AND r.out_trade_no = t.out_trade_no \
               AND r.wire_request_no = b.out_request_no \
             WHERE b.alipay_account = $1 AND b.day = $2 AND b.kind = 'refund' \
             AND NOT coalesce((r.state = 'SUCCESS' AND r.amount_minor = b.amount_minor) \
               OR (r.state IS NULL AND b.out_request_no = b.out_trade_no AND t.state = 'CANCELLED' \
                   AND t.cancel_action = 'refund' AND {REVERSED} = b.amount_minor), false) \
             LIMIT $3"
        );
        for row in client.query(&refunds, &[&account, &day, &MAX_DISAGREEMENTS]).await? {
            let r_state: Option<String> = row.try_get("r_state")?;
            let ledger_minor = match r_state.as_deref() {
                Some("SUCCESS") => row.try_get("r_amount")?,
                Some(_) => None,
                None => row.try_get("reversed")?,
            };
            found.push(Disagreement::RefundDiffers {
                row: billed_from_row(&row)?,
                tenant_id: row.try_get("tenant_id")?,
                ledger_minor,
            });
        }

        // Trades of the account's tenants only (their time index), paid on the day, not billed on
        // any day (a payment near midnight may be on the day before's bill).
        let unbilled = format!(
            "SELECT t.tenant_id, t.out_trade_no, t.state, t.trade_no AS l_trade_no, t.currency AS l_currency, \
             t.amount_minor AS l_amount FROM trades t \
             WHERE t.tenant_id = ANY($5) \
             AND t.alipay_account = $1 AND t.created_at >= $2::timestamptz - interval '1 day' AND t.created_at < $3 AND {PAID} \
             AND coalesce(t.paid_at, t.created_at) >= $2 AND coalesce(t.paid_at, t.created_at) < $3 \
             AND NOT EXISTS (SELECT 1 FROM bill_rows b WHERE b.alipay_account = t.alipay_account \
               AND b.kind = 'payment' AND b.out_trade_no = t.out_trade_no AND b.out_request_no = '') \
             LIMIT $4"
        );
        for row in client.query(&unbilled, &[&account, &start, &end, &MAX_DISAGREEMENTS, &tenants]).await? {
            found.push(Disagreement::PaymentNotInBill { ledger: LedgerPayment::from_row(&row)? });
        }

        let unbilled_refunds = "SELECT t.tenant_id, t.out_trade_no, t.state, t.trade_no AS l_trade_no, \
             t.currency AS l_currency, t.amount_minor AS l_amount, r.wire_request_no, r.amount_minor AS r_amount \
             FROM refunds r JOIN trades t USING (tenant_id, out_trade_no) \
             WHERE r.tenant_id = ANY($5) \
             AND t.alipay_account = $1 AND r.state = 'SUCCESS' AND r.refunded_at >= $2 AND r.refunded_at < $3 \
             AND NOT EXISTS (SELECT 1 FROM bill_rows b WHERE b.alipay_account = $1 AND b.kind = 'refund' \
               AND b.out_trade_no = r.out_trade_no AND b.out_request_no = r.wire_request_no) \
             LIMIT $4";
        for row in client.query(unbilled_refunds, &[&account, &start, &end, &MAX_DISAGREEMENTS, &tenants]).await? {
            found.push(Disagreement::RefundNotInBill {
                ledger: LedgerPayment::from_row(&row)?,
                out_request_no: row.try_get("wire_request_no")?,
                amount_minor: row.try_get("r_amount")?,
            });
        }

        let unbilled_reversals = format!(
            "SELECT t.tenant_id, t.out_trade_no, t.state, t.trade_no AS l_trade_no, t.currency AS l_currency, \
             t.amount_minor AS l_amount, {REVERSED} AS reversed FROM trades t \
             WHERE t.tenant_id = ANY($5) \
             AND t.alipay_account = $1 AND t.created_at >= $2::timestamptz - interval '1 day' AND t.created_at < $3 \
             AND t.state = 'CANCELLED' AND t.cancel_action = 'refund' \
             AND coalesce(t.cancel_requested_at, t.updated_at) >= $2 AND coalesce(t.cancel_requested_at, t.updated_at) < $3 \
             AND {REVERSED} > 0 \
             AND NOT EXISTS (SELECT 1 FROM bill_rows b WHERE b.alipay_account = $1 AND b.kind = 'refund' \
               AND b.out_trade_no = t.out_trade_no AND b.out_request_no = t.out_trade_no) \
             LIMIT $4"
        );
        for row in client.query(&unbilled_reversals, &[&account, &start, &end, &MAX_DISAGREEMENTS, &tenants]).await? {
            let ledger = LedgerPayment::from_row(&row)?;
            found.push(Disagreement::RefundNotInBill {
                out_request_no: ledger.out_trade_no.clone(),
                amount_minor: row.try_get("reversed")?,
                ledger,
            });
        }
        client.commit().await?;
        Ok(found)
    }

    /// Stores a discrepancy unless the same one (account, day, row, class) is stored already;
    /// answers whether it is new.
    pub async fn record_discrepancy(&self, new: &NewDiscrepancy) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let inserted = client
            .execute(
                "INSERT INTO bill_discrepancies (alipay_account, day, tenant_id, class, kind, out_trade_no, \
                 out_request_no, trade_no, currency, ledger_minor, bill_minor, alipay_minor, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING",
                &[
                    &new.alipay_account,
                    &new.day,
                    &new.tenant_id,
                    &new.class.as_str(),
                    &new.kind.as_str(),
                    &new.out_trade_no,
                    &new.out_request_no,
                    &new.trade_no,
                    &new.currency,
                    &new.ledger_minor,
                    &new.bill_minor,
                    &new.alipay_minor,
                    &new.detail,
                ],
            )
            .await?;
        Ok(inserted == 1)
    }

    pub async fn discrepancies(&self, filter: &DiscrepancyFilter) -> Result<Vec<Discrepancy>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "SELECT {DISCREPANCY_COLUMNS} FROM bill_discrepancies WHERE ($1::uuid IS NULL OR tenant_id = $1) \
             AND ($2::text IS NULL OR alipay_account = $2) AND ($3::date IS NULL OR day = $3) \
             AND (NOT $4 OR resolved_at IS NULL) ORDER BY day DESC, id LIMIT $5"
        );
        let rows = client
            .query(&sql, &[&filter.tenant_id, &filter.alipay_account, &filter.day, &filter.open_only, &filter.limit])
            .await?;
        rows.iter().map(Discrepancy::from_row).collect()
    }

    /// Open discrepancies by class (for the metrics gauge).
    pub async fn open_discrepancies(&self) -> Result<Vec<(DiscrepancyClass, i64)>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query("SELECT class, count(*) FROM bill_discrepancies WHERE resolved_at IS NULL GROUP BY class", &[])
            .await?;
        rows.iter().map(|row| Ok((DiscrepancyClass::parse(row.try_get(0)?)?, row.try_get(1)?))).collect()
    }

    /// Resolves discrepancy `id` by an ops action: who did it and what was done. A resolved one
    /// stays as it was resolved (answers `None` then, and when there is no such id).
    pub async fn resolve_discrepancy(
        &self,
        id: i64,
        actor: &str,
        resolution: &str,
    ) -> Result<Option<Discrepancy>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "UPDATE bill_discrepancies SET resolved_at = now(), resolved_by = $2, resolution = $3 \
             WHERE id = $1 AND resolved_at IS NULL RETURNING {DISCREPANCY_COLUMNS}"
        );
        let row = client.query_opt(&sql, &[&id, &actor, &resolution]).await?;
        row.as_ref().map(Discrepancy::from_row).transpose()
    }
}

impl Store {
    /// The trades of `account`'s refunds named by their wire number (`refund_nos`), and of
    /// Alipay trade numbers (`trade_nos`, for refunds the ledger does not know), among `tenants`'
    /// trades made since `since`: what a Global transaction file's refund rows, which name the
    /// refund and Alipay's trade but not the merchant's, belong to.
    pub async fn trades_of_refunds(
        &self,
        account: &str,
        tenants: &[Uuid],
        refund_nos: &[String],
        trade_nos: &[String],
        since: OffsetDateTime,
    ) -> Result<(Vec<(String, String)>, Vec<(String, String)>), StoreError> {
        let client = self.pool.get().await?;
        let refunds = client
            .query(
                "SELECT r.wire_request_no, r.out_trade_no FROM refunds r JOIN trades t USING (tenant_id, out_trade_no) \
                 WHERE r.tenant_id = ANY($2) AND t.alipay_account = $1 AND t.created_at >= $4 \
                 AND r.wire_request_no = ANY($3)",
                &[&account, &tenants, &refund_nos, &since],
            )
            .await?;
        let trades = client
            .query(
                "SELECT trade_no, out_trade_no FROM trades WHERE tenant_id = ANY($2) AND alipay_account = $1 \
                 AND created_at >= $4 AND trade_no = ANY($3)",
                &[&account, &tenants, &trade_nos, &since],
            )
            .await?;
        let pairs = |rows: Vec<tokio_postgres::Row>| -> Result<Vec<(String, String)>, StoreError> {
            rows.iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect()
        };
        Ok((pairs(refunds)?, pairs(trades)?))
    }
}
