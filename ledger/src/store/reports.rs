//! The sales report: per day (at the report's UTC offset) and store, the count, gross, refunds and
//! net of the tenant's paid trades.

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
