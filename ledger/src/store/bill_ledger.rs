//! The ledger's side of a bill day, as settlement matches it (in the reconciler's memory, a
//! partition at a time, so neither the bill nor the ledger day is ever held whole): the
//! statements that select the account's trades and refunds (of the day and the day before, read
//! in bulk by `ledger_day`); the trades and refunds a few bill rows name outside that window; and,
//! once matched, the day's totals per tenant and store (what the sales report's settled columns
//! read).

use time::Date;
use uuid::Uuid;

use super::bills::{DayState, LedgerPayment, beijing_bounds};
use super::{Store, StoreError};

/// A trade counts as paid: it was, whatever refunds or a reversal did after.
pub(super) const PAID: &str = "(t.state IN ('SUCCESS', 'PARTIALLY_REFUNDED', 'REFUNDED') \
                    OR (t.state = 'CANCELLED' AND t.cancel_action = 'refund'))";

/// What a reversal refunded: all that was refunded, less the refunds the POS asked for.
const REVERSED: &str = "(t.refunded_minor - (SELECT coalesce(sum(x.amount_minor), 0)::bigint FROM refunds x \
                        WHERE x.tenant_id = t.tenant_id AND x.out_trade_no = t.out_trade_no AND x.state = 'SUCCESS'))";

const TRADE_COLUMNS: &str = "t.tenant_id, t.out_trade_no, t.state, t.trade_no, t.currency, t.amount_minor, t.store_id";

/// The ledger's side of a trade, seen where it lies (in a fetched row, a COPY message, or a spill
/// file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentView<'a> {
    pub tenant_id: Uuid,
    pub out_trade_no: &'a str,
    pub trade_no: Option<&'a str>,
    pub state: &'a str,
    pub currency: &'a str,
    pub amount_minor: i64,
    pub store_id: Option<&'a str>,
}

impl PaymentView<'_> {
    pub fn to_payment(self) -> LedgerPayment {
        LedgerPayment {
            tenant_id: self.tenant_id,
            out_trade_no: self.out_trade_no.to_owned(),
            trade_no: self.trade_no.map(str::to_owned),
            state: self.state.to_owned(),
            currency: self.currency.to_owned(),
            amount_minor: self.amount_minor,
        }
    }
}

/// One entry of the ledger's side, as matching needs it, seen where it lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryView<'a> {
    /// A trade; `paid`: it was, whatever refunds or a reversal did after; `paid_on_day`: by the
    /// ledger's clock, so a bill of the day should hold it; `reversed`: cancelled after it was
    /// paid, with what the reversal refunded and whether the reversal was on the day.
    Trade { payment: PaymentView<'a>, paid: bool, paid_on_day: bool, reversed: Option<(i64, bool)> },
    /// A refund, with its trade; `wire_request_no`: the number Alipay knows it by; `done_on_day`:
    /// done on the day by the ledger's clock, so a bill of the day should hold it.
    Refund { trade: PaymentView<'a>, wire_request_no: &'a str, state: &'a str, amount_minor: i64, done_on_day: bool },
}

impl<'a> EntryView<'a> {
    /// The merchant's trade number it is matched by.
    pub fn out_trade_no(&self) -> &'a str {
        match self {
            EntryView::Trade { payment, .. } => payment.out_trade_no,
            EntryView::Refund { trade, .. } => trade.out_trade_no,
        }
    }
}

/// A batch of the ledger's side as fetched: its entries are seen in the rows themselves (nothing
/// copied out of them), by whoever takes the batch.
#[derive(Debug)]
pub struct LedgerBatch {
    rows: Vec<tokio_postgres::Row>,
    read: ReadRow,
}

/// How a batch's rows are seen: [`trade_of`] or [`refund_of`].
type ReadRow = for<'r> fn(&'r tokio_postgres::Row) -> Result<EntryView<'r>, StoreError>;

impl LedgerBatch {
    pub fn entries(&self) -> impl Iterator<Item = Result<EntryView<'_>, StoreError>> {
        self.rows.iter().map(self.read)
    }
}

/// What a day's bill settles for one tenant, store and currency. Amounts in minor units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BillTotal {
    pub tenant_id: Uuid,
    pub store_id: Option<String>,
    pub currency: String,
    pub payments: i64,
    pub refunds: i64,
    /// Alipay's fees, as the bill states them (negative when charged).
    pub fees_minor: i64,
    /// Payments less refunds, plus the fees.
    pub net_minor: i64,
}

/// A matched day's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchedDay {
    pub payments: i64,
    pub refunds: i64,
    pub discrepancies: i64,
    pub totals: Vec<BillTotal>,
}

// Columns are read by position (by name, each lookup compared every name before it): the
// payment's are the first seven, as TRADE_COLUMNS lists them, then each query's own.
fn payment_of(row: &tokio_postgres::Row) -> Result<PaymentView<'_>, StoreError> {
    Ok(PaymentView {
        tenant_id: row.try_get(0)?,
        out_trade_no: row.try_get(1)?,
        state: row.try_get(2)?,
        trade_no: row.try_get(3)?,
        currency: row.try_get(4)?,
        amount_minor: row.try_get(5)?,
        store_id: row.try_get(6)?,
    })
}

/// A row of [`trades_sql`].
fn trade_of(row: &tokio_postgres::Row) -> Result<EntryView<'_>, StoreError> {
    let reversed: Option<i64> = row.try_get(9)?;
    Ok(EntryView::Trade {
        payment: payment_of(row)?,
        paid: row.try_get(7)?,
        paid_on_day: row.try_get(8)?,
        reversed: reversed.map(|minor| Ok::<_, StoreError>((minor, row.try_get(10)?))).transpose()?,
    })
}

/// A row of [`refunds_sql`].
fn refund_of(row: &tokio_postgres::Row) -> Result<EntryView<'_>, StoreError> {
    Ok(EntryView::Refund {
        trade: payment_of(row)?,
        wire_request_no: row.try_get(7)?,
        state: row.try_get(8)?,
        amount_minor: row.try_get(9)?,
        done_on_day: row.try_get(10)?,
    })
}

/// The trades' columns (read by [`trade_of`] in this order); `$2` and `$3` are the day's bounds.
pub(super) fn trades_sql(filter: &str) -> String {
    format!(
        "SELECT {TRADE_COLUMNS}, {PAID} AS paid, \
         ({PAID} AND coalesce(t.paid_at, t.created_at) >= $2 AND coalesce(t.paid_at, t.created_at) < $3) AS paid_on_day, \
         CASE WHEN t.state = 'CANCELLED' AND t.cancel_action = 'refund' THEN {REVERSED} END AS reversed, \
         (coalesce(t.cancel_requested_at, t.updated_at) >= $2 AND coalesce(t.cancel_requested_at, t.updated_at) < $3) \
         AS reversed_on_day FROM trades t WHERE t.alipay_account = $1 AND {filter}"
    )
}

/// The refunds' columns, with their trade's (read by [`refund_of`] in this order); `$2` and `$3`
/// are the day's bounds.
pub(super) fn refunds_sql(filter: &str) -> String {
    format!(
        "SELECT {TRADE_COLUMNS}, r.wire_request_no, r.state AS r_state, r.amount_minor AS r_amount, \
         (r.state = 'SUCCESS' AND r.refunded_at >= $2 AND r.refunded_at < $3) AS done_on_day \
         FROM refunds r JOIN trades t USING (tenant_id, out_trade_no) WHERE t.alipay_account = $1 AND {filter}"
    )
}

impl Store {
    /// The trades of `account` numbered `out_trade_nos` (whoever's tenant they are), and every
    /// refund of them: what the few bill rows the day's window does not hold are matched against.
    pub async fn ledger_entries_of(
        &self,
        account: &str,
        day: Date,
        out_trade_nos: &[String],
    ) -> Result<Vec<LedgerBatch>, StoreError> {
        let (start, end) = beijing_bounds(day);
        let client = self.pool.get().await?;
        let mut batches = Vec::new();
        for (sql, read) in [
            (trades_sql("t.out_trade_no = ANY($4)"), trade_of as ReadRow),
            (refunds_sql("t.out_trade_no = ANY($4)"), refund_of),
        ] {
            let rows = client.query(&sql, &[&account, &start, &end, &out_trade_nos]).await?;
            batches.push(LedgerBatch { rows, read });
        }
        Ok(batches)
    }

    /// Ends a lease: the day is matched; its totals replace any it had.
    pub async fn bill_day_matched(&self, account: &str, day: Date, matched: &MatchedDay) -> Result<(), StoreError> {
        let mut connection = self.pool.get().await?;
        let tx = connection.transaction().await?;
        tx.execute("DELETE FROM bill_totals WHERE alipay_account = $1 AND day = $2", &[&account, &day]).await?;
        let column = |f: fn(&BillTotal) -> i64| matched.totals.iter().map(f).collect::<Vec<i64>>();
        let tenants: Vec<Uuid> = matched.totals.iter().map(|t| t.tenant_id).collect();
        let stores: Vec<&str> = matched.totals.iter().map(|t| t.store_id.as_deref().unwrap_or("")).collect();
        let currencies: Vec<&str> = matched.totals.iter().map(|t| t.currency.as_str()).collect();
        tx.execute(
            "INSERT INTO bill_totals (alipay_account, day, tenant_id, store_id, currency, payments, refunds, \
             fees_minor, net_minor) SELECT $1, $2, * FROM unnest($3::uuid[], $4::text[], $5::text[], $6::bigint[], \
             $7::bigint[], $8::bigint[], $9::bigint[])",
            &[
                &account,
                &day,
                &tenants,
                &stores,
                &currencies,
                &column(|t| t.payments),
                &column(|t| t.refunds),
                &column(|t| t.fees_minor),
                &column(|t| t.net_minor),
            ],
        )
        .await?;
        tx.execute(
            "UPDATE bill_days SET state = $3, attempts = attempts + 1, last_error = NULL, leased_until = NULL, \
             payments = $4, refunds = $5, discrepancies = $6, matched_at = now() \
             WHERE alipay_account = $1 AND day = $2",
            &[&account, &day, &DayState::Matched.as_str(), &matched.payments, &matched.refunds, &matched.discrepancies],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
