//! Refunds: reserved against the paid amount under the trade's row lock (so concurrent refunds
//! can never add up to more than was paid), idempotent on `out_request_no`.

use time::OffsetDateTime;
use tokio_postgres::types::{ToSql, Type};

use super::{Store, StoreError, read, read_locked};
use crate::state::{RefundState, TradeState};
use crate::trade::{NewRefund, REFUND_COLUMNS, Refund, RefundSettlement, Trade, TradeKey};

/// What starting a refund found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeginRefund {
    /// Reserved: this caller owns the call to Alipay.
    Started {
        refund: Refund,
        trade: Trade,
    },
    /// `out_request_no` was used before (compare its fingerprint).
    Existing {
        refund: Refund,
        trade: Trade,
    },
    NoSuchTrade,
    /// The trade is not paid (or no longer refundable).
    NotRefundable(Trade),
    /// More than what is left: `available` could still be refunded.
    Exceeds {
        trade: Trade,
        available: alipay::Amount,
    },
}

async fn read_refund(
    client: &impl deadpool_postgres::GenericClient,
    key: &TradeKey,
    out_request_no: &str,
) -> Result<Option<Refund>, StoreError> {
    let sql = format!(
        "SELECT {REFUND_COLUMNS} FROM refunds r JOIN trades t USING (tenant_id, out_trade_no) \
         WHERE r.tenant_id = $1 AND r.out_trade_no = $2 AND r.out_request_no = $3"
    );
    let statement = client.prepare_cached(&sql).await?;
    client
        .query_opt(&statement, &[&key.tenant_id, &key.out_trade_no, &out_request_no])
        .await?
        .as_ref()
        .map(Refund::from_row)
        .transpose()
}

impl Store {
    /// Reserves a refund, unless its `out_request_no` exists or it would exceed what is left.
    pub async fn begin_refund(&self, new: &NewRefund) -> Result<BeginRefund, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let Some(trade) = read_locked(&tx, &new.key).await? else {
            return Ok(BeginRefund::NoSuchTrade);
        };
        if let Some(refund) = read_refund(&tx, &new.key, &new.out_request_no).await? {
            return Ok(BeginRefund::Existing { refund, trade });
        }
        if !trade.state.is_paid() {
            return Ok(BeginRefund::NotRefundable(trade));
        }
        let reserved: i64 = tx
            .query_one(
                "SELECT COALESCE(sum(amount_minor), 0)::bigint FROM refunds \
                 WHERE tenant_id = $1 AND out_trade_no = $2 AND state <> 'FAILED'",
                &[&new.key.tenant_id, &new.key.out_trade_no],
            )
            .await?
            .try_get(0)?;
        let paid = i64::try_from(trade.amount.minor()).unwrap_or(i64::MAX);
        let available = paid.saturating_sub(reserved).max(0);
        let wanted = i64::try_from(new.amount.minor()).unwrap_or(i64::MAX);
        if new.amount.currency() != trade.amount.currency() || wanted > available {
            let available = alipay::Amount::from_minor(u64::try_from(available).unwrap_or(0), trade.amount.currency())
                .unwrap_or(alipay::Amount::zero(trade.amount.currency()));
            return Ok(BeginRefund::Exceeds { trade, available });
        }
        tx.execute(
            "INSERT INTO refunds (tenant_id, out_trade_no, out_request_no, state, fingerprint, amount_minor, reason, \
             next_check_at, wire_request_no) VALUES ($1, $2, $3, 'PENDING', $4, $5, $6, $7, $8)",
            &[
                &new.key.tenant_id,
                &new.key.out_trade_no,
                &new.out_request_no,
                &new.fingerprint,
                &wanted,
                &new.reason,
                &new.check_at,
                &new.wire_request_no,
            ],
        )
        .await?;
        let refund = read_refund(&tx, &new.key, &new.out_request_no)
            .await?
            .ok_or_else(|| StoreError::Corrupt("refund vanished".into()))?;
        tx.commit().await?;
        Ok(BeginRefund::Started { refund, trade })
    }

    /// Records what the refund call proved; a success adds to the trade's refunded total.
    pub async fn record_refund(
        &self,
        refund: &Refund,
        settlement: &RefundSettlement,
    ) -> Result<(Refund, Trade), StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let trade = read_locked(&tx, &refund.key).await?.ok_or_else(|| StoreError::Corrupt("trade vanished".into()))?;
        let (state, refunded_at, code, message, next_check_at): (RefundState, Option<OffsetDateTime>, _, _, _) =
            match settlement {
                RefundSettlement::Refunded { at } => (RefundState::Success, Some(*at), None, None, None),
                RefundSettlement::Failed { code, message } => {
                    (RefundState::Failed, None, Some(code.as_str()), message.as_deref(), None)
                }
                RefundSettlement::Unknown { reason, next_check_at } => {
                    (RefundState::Unknown, None, Some("UNKNOWN"), Some(reason.as_str()), Some(*next_check_at))
                }
            };
        let updated = tx
            .execute(
                "UPDATE refunds SET state = $5, version = version + 1, updated_at = now(), refunded_at = $6, \
                 failure_code = $7, failure_message = $8, next_check_at = $9 \
                 WHERE tenant_id = $1 AND out_trade_no = $2 AND out_request_no = $3 AND version = $4",
                &[
                    &refund.key.tenant_id,
                    &refund.key.out_trade_no,
                    &refund.out_request_no,
                    &refund.version,
                    &state.as_str(),
                    &refunded_at,
                    &code,
                    &message,
                    &next_check_at,
                ],
            )
            .await?;
        if updated == 1 && state == RefundState::Success {
            let total = i64::try_from(trade.refunded.minor() + refund.amount.minor()).unwrap_or(i64::MAX);
            let paid = i64::try_from(trade.amount.minor()).unwrap_or(i64::MAX);
            let next = if total >= paid { TradeState::Refunded } else { TradeState::PartiallyRefunded };
            if trade.state.can_become(next) {
                tx.execute(
                    "UPDATE trades SET refunded_minor = $3, state = $4, version = version + 1, updated_at = now(), \
                     cancel_requested = cancel_requested AND $4 <> 'REFUNDED', \
                     next_check_at = CASE WHEN $4 = 'REFUNDED' THEN NULL ELSE next_check_at END \
                     WHERE tenant_id = $1 AND out_trade_no = $2",
                    &[&trade.key.tenant_id, &trade.key.out_trade_no, &total.min(paid), &next.as_str()],
                )
                .await?;
            }
        }
        let refund = read_refund(&tx, &refund.key, &refund.out_request_no)
            .await?
            .ok_or_else(|| StoreError::Corrupt("refund vanished".into()))?;
        let trade = read(&tx, &refund.key).await?.ok_or_else(|| StoreError::Corrupt("trade vanished".into()))?;
        tx.commit().await?;
        Ok((refund, trade))
    }

    /// Claims up to `limit` refunds whose outcome is not known (UNKNOWN, or PENDING past its
    /// check time: the caller died) and are due at `now`, leased until `until`.
    pub async fn claim_refunds(
        &self,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<Refund>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!(
            "UPDATE refunds r SET next_check_at = $2 FROM (SELECT tenant_id, out_trade_no, out_request_no FROM refunds \
             WHERE next_check_at <= $1 AND state IN ('PENDING', 'UNKNOWN') ORDER BY next_check_at LIMIT $3 \
             FOR UPDATE SKIP LOCKED) due, trades t WHERE r.tenant_id = due.tenant_id AND r.out_trade_no = due.out_trade_no \
             AND r.out_request_no = due.out_request_no AND t.tenant_id = r.tenant_id AND t.out_trade_no = r.out_trade_no \
             RETURNING {REFUND_COLUMNS}"
        );
        let params: [(&(dyn ToSql + Sync), Type); 3] =
            [(&now, Type::TIMESTAMPTZ), (&until, Type::TIMESTAMPTZ), (&limit, Type::INT8)];
        // Planned for the table as it is (the store's "Plans made for the table as it is").
        client.query_typed(&sql, &params).await?.iter().map(Refund::from_row).collect()
    }

    pub async fn get_refund(&self, key: &TradeKey, out_request_no: &str) -> Result<Option<Refund>, StoreError> {
        let client = self.pool.get().await?;
        read_refund(&client, key, out_request_no).await
    }
}
