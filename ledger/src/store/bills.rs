//! Settlement's tables: each Alipay account's bill days (leased to one reconciler at a time),
//! what a bill's rows are, where the ledger and a bill disagree, and the discrepancies ops
//! resolve. The ledger's side of a day, and the totals a matched day keeps, are in
//! `bill_ledger`.

use std::time::Duration;

use serde::Serialize;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::bill_ledger::PAID;
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

/// What a bill reader sends settlement's matching.
#[derive(Debug)]
pub enum BillFeed {
    Rows(Vec<BilledRow>),
    /// The file was read to its end and its totals checked: the rows may be kept.
    End,
    /// The file is refused: nothing of it is kept.
    Failed(String),
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
