//! The sales report: per day (at the report's UTC offset) and store, the count, gross, refunds and
//! net of the tenant's paid trades; and, from Alipay's bills, the fees and the net settled per
//! Beijing day and store, with the days whose bill is reconciled.

use serde::Serialize;
use time::{Date, OffsetDateTime, UtcOffset};
use uuid::Uuid;

use super::{Store, StoreError};

/// One day and store. Amounts in minor units of `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SalesRow {
    pub day: Date,
    pub store_id: Option<String>,
    pub currency: String,
    pub count: i64,
    pub gross_minor: i64,
    pub refunds_minor: i64,
    pub net_minor: i64,
}

impl Store {
    /// Paid trades created in `[from, to)`, grouped by day at UTC offset `offset` and by store.
    /// Runs on the reports' own pool ([`Store::with_report_pool`]).
    pub async fn sales_report(
        &self,
        tenant_id: Uuid,
        from: OffsetDateTime,
        to: OffsetDateTime,
        offset: UtcOffset,
    ) -> Result<Vec<SalesRow>, StoreError> {
        let client = self.reports.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT (created_at AT TIME ZONE make_interval(secs => $4))::date AS day, store_id, currency, count(*) AS count, \
                 sum(amount_minor)::bigint AS gross, sum(refunded_minor)::bigint AS refunds \
                 FROM trades WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3 \
                 AND (state IN ('SUCCESS', 'PARTIALLY_REFUNDED', 'REFUNDED') \
                      OR (state = 'CANCELLED' AND cancel_action = 'refund')) \
                 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            )
            .await?;
        let seconds = f64::from(offset.whole_seconds());
        let rows = client.query(&statement, &[&tenant_id, &from, &to, &seconds]).await?;
        rows.iter()
            .map(|row| {
                let gross: i64 = row.try_get("gross")?;
                let refunds: i64 = row.try_get("refunds")?;
                Ok(SalesRow {
                    day: row.try_get("day")?,
                    store_id: row.try_get("store_id")?,
                    currency: row.try_get("currency")?,
                    count: row.try_get("count")?,
                    gross_minor: gross,
                    refunds_minor: refunds,
                    net_minor: gross - refunds,
                })
            })
            .collect()
    }
}

/// What Alipay's bills settle for a tenant on one Beijing day and store. Amounts in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettledRow {
    pub day: Date,
    pub store_id: Option<String>,
    pub currency: String,
    /// Alipay's fees, as the bill states them (negative when charged).
    pub fees_minor: i64,
    /// The day's billed payments less its billed refunds, plus the fees: what Alipay settles.
    pub net_settled_minor: i64,
}

/// The bills of a tenant's account over some days.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settled {
    pub rows: Vec<SettledRow>,
    /// The days whose bill is reconciled (matched, or empty at Alipay and in the ledger).
    pub reconciled: Vec<Date>,
}

impl Store {
    /// What the bills of `account` (its rows of `tenant_id`'s trades, by the trade's store) settle
    /// per Beijing day in `[from, to]`, and which of those days are reconciled. On the reports'
    /// pool.
    pub async fn settled_report(
        &self,
        tenant_id: Uuid,
        account: &str,
        from: Date,
        to: Date,
    ) -> Result<Settled, StoreError> {
        let client = self.reports.get().await?;
        let statement = client
            .prepare_cached(
                "SELECT day, nullif(store_id, '') AS store_id, currency, fees_minor AS fees, net_minor AS net \
                 FROM bill_totals WHERE alipay_account = $2 AND tenant_id = $1 AND day >= $3 AND day <= $4 \
                 ORDER BY 1, 2, 3",
            )
            .await?;
        let rows = client.query(&statement, &[&tenant_id, &account, &from, &to]).await?;
        let rows = rows
            .iter()
            .map(|row| {
                Ok(SettledRow {
                    day: row.try_get("day")?,
                    store_id: row.try_get("store_id")?,
                    currency: row.try_get("currency")?,
                    fees_minor: row.try_get("fees")?,
                    net_settled_minor: row.try_get("net")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let days = client
            .query(
                "SELECT day FROM bill_days WHERE alipay_account = $1 AND day >= $2 AND day <= $3 \
                 AND state IN ('matched', 'empty') ORDER BY day",
                &[&account, &from, &to],
            )
            .await?;
        let reconciled = days.iter().map(|row| row.try_get(0)).collect::<Result<Vec<Date>, _>>()?;
        Ok(Settled { rows, reconciled })
    }
}
