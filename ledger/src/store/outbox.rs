//! The merchant-webhook outbox: events written in the same transaction as the change they tell
//! of, delivered by the reconciler (claimed with a lease, so several reconcilers share it), every
//! attempt recorded.

use deadpool_postgres::GenericClient;
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError};
use crate::state::TradeState;
use crate::trade::Trade;

/// What the merchant is told when a trade reaches `state`, if anything.
pub fn event_of(state: TradeState) -> Option<&'static str> {
    match state {
        TradeState::Success => Some("payment.succeeded"),
        TradeState::Failed => Some("payment.failed"),
        TradeState::Cancelled => Some("payment.cancelled"),
        _ => None,
    }
}

fn event_payload(event: &str, trade: &Trade) -> serde_json::Value {
    json!({
        "event": event,
        "out_trade_no": trade.key.out_trade_no,
        "trade_no": trade.trade_no,
        "status": trade.state.as_str(),
        // Orders the events of one trade.
        "version": trade.version,
        "amount": trade.amount.to_string(),
        "currency": trade.amount.currency().code(),
        "refunded": trade.refunded.to_string(),
        "paid_at": trade.paid_at.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
        "cancel_action": trade.cancel_action.map(|a| a.as_str()),
        "failure_code": trade.failure_code,
        "kind": trade.kind.as_str(),
    })
}

pub(crate) async fn enqueue_webhook(client: &impl GenericClient, event: &str, trade: &Trade) -> Result<(), StoreError> {
    let statement = client
        .prepare_cached("INSERT INTO webhook_outbox (tenant_id, out_trade_no, event, payload) VALUES ($1, $2, $3, $4)")
        .await?;
    client
        .execute(&statement, &[&trade.key.tenant_id, &trade.key.out_trade_no, &event, &event_payload(event, trade)])
        .await?;
    Ok(())
}

/// One event to deliver.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub id: i64,
    pub tenant_id: Uuid,
    pub out_trade_no: String,
    pub event: String,
    pub payload: serde_json::Value,
    /// Attempts made so far.
    pub attempts: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// How one attempt went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    pub attempt: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub took_ms: i32,
    pub http_status: Option<i32>,
    pub error: Option<String>,
}

/// What comes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAttempt {
    Delivered,
    RetryAt(OffsetDateTime),
    /// Out of attempts (or nowhere to deliver): kept, listed, never tried again.
    Abandon,
}

/// A delivery with its attempts, as listed for ops.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryReport {
    #[serde(flatten)]
    pub delivery: Delivery,
    /// `delivered`, `pending` or `abandoned`.
    pub status: &'static str,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    pub history: Vec<Attempt>,
}

const DELIVERY_COLUMNS: &str = "id, tenant_id, out_trade_no, event, payload, attempts, created_at";

fn delivery(row: &tokio_postgres::Row) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        id: row.try_get(0)?,
        tenant_id: row.try_get(1)?,
        out_trade_no: row.try_get(2)?,
        event: row.try_get(3)?,
        payload: row.try_get(4)?,
        attempts: row.try_get(5)?,
        created_at: row.try_get(6)?,
    })
}

impl Store {
    /// Claims up to `limit` deliveries due at `now`, leased until `until` (another reconciler
    /// takes them over only after that).
    pub async fn claim_webhooks(
        &self,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let client = self.pool.get().await?;
        let sql = sql!(
            "UPDATE webhook_outbox o SET next_attempt_at = $2 FROM (SELECT id FROM webhook_outbox \
             WHERE delivered_at IS NULL AND abandoned_at IS NULL AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) due WHERE o.id = due.id RETURNING o.",
            "id, o.tenant_id, o.out_trade_no, o.event, o.payload, o.attempts, o.created_at"
        );
        let statement = client.prepare_cached(sql).await?;
        client.query(&statement, &[&now, &until, &limit]).await?.iter().map(delivery).collect()
    }

    /// Records an attempt (if one was made) and what comes next; refused (false) when another
    /// reconciler recorded an attempt of this delivery since it was claimed.
    pub async fn record_webhook_attempt(
        &self,
        delivery: &Delivery,
        attempt: Option<&Attempt>,
        error: Option<&str>,
        after: AfterAttempt,
    ) -> Result<bool, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let (delivered, next, abandoned) = match after {
            AfterAttempt::Delivered => (true, None, false),
            AfterAttempt::RetryAt(at) => (false, Some(at), false),
            AfterAttempt::Abandon => (false, None, true),
        };
        let made = i32::from(attempt.is_some());
        let updated = tx
            .execute(
                "UPDATE webhook_outbox SET attempts = attempts + $3, last_error = $4, \
                 delivered_at = CASE WHEN $5 THEN now() END, abandoned_at = CASE WHEN $6 THEN now() END, \
                 next_attempt_at = COALESCE($7, next_attempt_at) \
                 WHERE id = $1 AND attempts = $2 AND delivered_at IS NULL AND abandoned_at IS NULL",
                &[&delivery.id, &delivery.attempts, &made, &error, &delivered, &abandoned, &next],
            )
            .await?;
        if updated == 0 {
            return Ok(false);
        }
        if let Some(attempt) = attempt {
            tx.execute(
                "INSERT INTO webhook_attempts (outbox_id, attempt, at, took_ms, http_status, error) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&delivery.id, &attempt.attempt, &attempt.at, &attempt.took_ms, &attempt.http_status, &attempt.error],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// A tenant's newest deliveries (at most `limit`), each with every attempt.
    pub async fn webhook_deliveries(&self, tenant_id: Uuid, limit: i64) -> Result<Vec<DeliveryReport>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {DELIVERY_COLUMNS}, delivered_at IS NOT NULL, abandoned_at IS NOT NULL, last_error, \
                     next_attempt_at FROM webhook_outbox WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2"
                ),
                &[&tenant_id, &limit],
            )
            .await?;
        let ids: Vec<i64> = rows.iter().map(|row| row.try_get(0)).collect::<Result<_, _>>()?;
        let attempts = client
            .query(
                "SELECT outbox_id, attempt, at, took_ms, http_status, error FROM webhook_attempts \
                 WHERE outbox_id = ANY($1) ORDER BY outbox_id, attempt",
                &[&ids],
            )
            .await?;
        let mut reports = Vec::with_capacity(rows.len());
        for row in &rows {
            let delivery = delivery(row)?;
            let (delivered, abandoned): (bool, bool) = (row.try_get(7)?, row.try_get(8)?);
            let status = match (delivered, abandoned) {
                (true, _) => "delivered",
                (_, true) => "abandoned",
                _ => "pending",
            };
            let mut history = Vec::new();
            for attempt in &attempts {
                if attempt.try_get::<_, i64>(0)? == delivery.id {
                    history.push(Attempt {
                        attempt: attempt.try_get(1)?,
                        at: attempt.try_get(2)?,
                        took_ms: attempt.try_get(3)?,
                        http_status: attempt.try_get(4)?,
                        error: attempt.try_get(5)?,
                    });
                }
            }
            reports.push(DeliveryReport {
                delivery,
                status,
                last_error: row.try_get(9)?,
                next_attempt_at: (status == "pending").then(|| row.try_get(10)).transpose()?,
                history,
            });
        }
        Ok(reports)
    }
}
