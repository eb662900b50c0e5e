//! What the reconciler reads and writes: trades by the batch, settlements told to the merchant
//! (the change and its webhook event in one transaction), the cancel mark, the due-claim in
//! Postgres (used while Redis is away), and the sweeper's pages of open trades.

use time::OffsetDateTime;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

use super::outbox::{enqueue_webhook, event_of};
use super::{Recorded, SELECT_TRADE, Store, StoreError, read, read_many_planned_now, record_on};
use crate::trade::{Settlement, TRADE_COLUMNS, Trade, TradeKey, trade_columns_of};

/// An open trade, as the sweeper pages through them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenTrade {
    pub key: TradeKey,
    pub next_check_at: OffsetDateTime,
}

impl Store {
    /// The trades of `keys` that exist, in no particular order (one statement for a batch).
    pub async fn get_many(&self, keys: &[TradeKey]) -> Result<Vec<Trade>, StoreError> {
        let client = self.pool.get().await?;
        read_many_planned_now(&client, &keys.iter().collect::<Vec<_>>()).await
    }

    /// The trades of `keys` that exist, as [`Store::get_many`] — and, in the same statement, each
    /// one at or past its deadline (`now`; `created_at + default_deadline` for a trade without
    /// one) that is PAYING or UNKNOWN and not yet being cancelled is marked as being cancelled,
    /// as [`Store::mark_cancelling`] does one by one. A claimer marks what it claimed in one round
    /// trip, so a burst of deadlines costs no write per trade before the cancels go out.
    pub async fn get_many_marking_expired(
        &self,
        keys: &[TradeKey],
        now: OffsetDateTime,
        default_deadline: std::time::Duration,
    ) -> Result<Vec<Trade>, StoreError> {
        let client = self.pool.get().await?;
        let sql = sql!(
            "WITH wanted AS (SELECT * FROM unnest($1::uuid[], $2::text[]) AS w (tenant_id, out_trade_no)), \
             marked AS (UPDATE trades t SET cancel_requested = true, version = t.version + 1, updated_at = now(), \
             cancel_requested_at = COALESCE(t.cancel_requested_at, now()) \
             FROM wanted w WHERE t.tenant_id = w.tenant_id AND t.out_trade_no = w.out_trade_no \
             AND t.state IN ('PAYING', 'UNKNOWN') AND NOT t.cancel_requested \
             AND COALESCE(t.deadline, t.created_at + $4::bigint * interval '1 millisecond') <= $3 RETURNING ",
            trade_columns_of("t").as_str(),
            ") ",
            "SELECT * FROM marked UNION ALL SELECT ",
            TRADE_COLUMNS,
            " FROM trades t WHERE (t.tenant_id, t.out_trade_no) IN (SELECT * FROM wanted) \
             AND NOT EXISTS (SELECT 1 FROM marked m WHERE m.tenant_id = t.tenant_id AND m.out_trade_no = t.out_trade_no)"
        );
        let tenants: Vec<Uuid> = keys.iter().map(|k| k.tenant_id).collect();
        let numbers: Vec<&str> = keys.iter().map(|k| k.out_trade_no.as_str()).collect();
        let default_ms = i64::try_from(default_deadline.as_millis()).unwrap_or(i64::MAX);
        let params: [(&(dyn ToSql + Sync), Type); 4] = [
            (&tenants, Type::UUID_ARRAY),
            (&numbers, Type::TEXT_ARRAY),
            (&now, Type::TIMESTAMPTZ),
            (&default_ms, Type::INT8),
        ];
        // Planned for the table as it is (the store's "Plans made for the table as it is").
        client.query_typed(sql, &params).await?.iter().map(Trade::from_row).collect()
    }

    /// [`Store::record`], and when the trade becomes final, the merchant's webhook event in the
    /// same transaction (the POS was told UNKNOWN; this is how the merchant learns the end). For
    /// tenants that take webhooks.
    pub async fn record_and_tell(&self, trade: &Trade, settlement: &Settlement) -> Result<Recorded, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let recorded = record_on(&tx, trade, settlement).await?;
        if let Recorded::Applied(updated) = &recorded
            && let Some(event) = event_of(updated.state)
        {
            enqueue_webhook(&tx, event, updated).await?;
        }
        tx.commit().await?;
        Ok(recorded)
    }

    /// Marks the trade as being cancelled (a compare-and-set, so of several reconcilers exactly
    /// one passes from this version); from then on every reconciler cancels it, none settles it
    /// from a query.
    pub async fn mark_cancelling(&self, trade: &Trade) -> Result<Recorded, StoreError> {
        let client = self.pool.get().await?;
        let sql = sql!(
            "UPDATE trades SET cancel_requested = true, version = version + 1, updated_at = now(), \
             cancel_requested_at = COALESCE(cancel_requested_at, now()) ",
            SELECT_TRADE,
            " AND version = $3 AND state = $4 RETURNING ",
            TRADE_COLUMNS
        );
        let statement = client.prepare_cached(sql).await?;
        let params: [&(dyn ToSql + Sync); 4] =
            [&trade.key.tenant_id, &trade.key.out_trade_no, &trade.version, &trade.state.as_str()];
        match client.query_opt(&statement, &params).await? {
            Some(row) => Ok(Recorded::Applied(Trade::from_row(&row)?)),
            None => read(&client, &trade.key)
                .await?
                .map(Recorded::Stale)
                .ok_or_else(|| StoreError::Corrupt("trade vanished".into())),
        }
    }

    /// Claims up to `limit` open trades due at `now` straight from Postgres (while Redis is
    /// away): each one's `next_check_at` moves to `until`, a lease no other reconciler claims
    /// through; [`Store::reschedule`] then sets the real next time.
    pub async fn claim_due(
        &self,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<Trade>, StoreError> {
        let client = self.pool.get().await?;
        let sql = sql!(
            "UPDATE trades t SET next_check_at = $2 FROM (SELECT tenant_id, out_trade_no FROM trades \
             WHERE next_check_at <= $1 ORDER BY next_check_at LIMIT $3 FOR UPDATE SKIP LOCKED) due \
             WHERE t.tenant_id = due.tenant_id AND t.out_trade_no = due.out_trade_no RETURNING ",
            trade_columns_of("t").as_str()
        );
        let params: [(&(dyn ToSql + Sync), Type); 3] =
            [(&now, Type::TIMESTAMPTZ), (&until, Type::TIMESTAMPTZ), (&limit, Type::INT8)];
        // Planned for the table as it is (the store's "Plans made for the table as it is").
        client.query_typed(sql, &params).await?.iter().map(Trade::from_row).collect()
    }

    /// Sets when a trade claimed by [`Store::claim_due`] is looked at next; refused (false) if
    /// the lease is no longer this claim's (another claimed it, or it became final).
    pub async fn reschedule(&self, claimed: &Trade, next: OffsetDateTime) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let sql = sql!("UPDATE trades SET next_check_at = $3 ", SELECT_TRADE, " AND next_check_at = $4");
        let statement = client.prepare_cached(sql).await?;
        let params: [&(dyn ToSql + Sync); 4] =
            [&claimed.key.tenant_id, &claimed.key.out_trade_no, &next, &claimed.next_check_at];
        Ok(client.execute(&statement, &params).await? == 1)
    }

    /// Open trades created after `since`, in pages of `limit` after `after` (ordered by key).
    pub async fn open_trades(
        &self,
        since: OffsetDateTime,
        after: Option<&TradeKey>,
        limit: i64,
    ) -> Result<Vec<OpenTrade>, StoreError> {
        let client = self.pool.get().await?;
        let (tenant, number) = match after {
            Some(key) => (key.tenant_id, key.out_trade_no.as_str()),
            None => (Uuid::nil(), ""),
        };
        let statement = client
            .prepare_cached(
                "SELECT tenant_id, out_trade_no, next_check_at FROM trades WHERE next_check_at IS NOT NULL \
                 AND created_at > $1 AND (tenant_id, out_trade_no) > ($2, $3) \
                 ORDER BY tenant_id, out_trade_no LIMIT $4",
            )
            .await?;
        let rows = client.query(&statement, &[&since, &tenant, &number, &limit]).await?;
        rows.iter()
            .map(|row| {
                Ok(OpenTrade {
                    key: TradeKey { tenant_id: row.try_get(0)?, out_trade_no: row.try_get(1)? },
                    next_check_at: row.try_get(2)?,
                })
            })
            .collect()
    }
}
