//! Alipay's notifications, applied once: recorded by `notify_id`, checked against the ledger
//! (amount, currency), moved along the state machine only forward, and told to the merchant
//! through the webhook outbox, all in one transaction. A payment the gateway never started (the
//! tenant's static QR code) is created here.

use alipay::Amount;
use time::OffsetDateTime;
use uuid::Uuid;

use super::outbox::enqueue_webhook;
use super::{Store, StoreError, read_locked};
use crate::state::{TradeKind, TradeState};
use crate::trade::{CancelAction, TRADE_COLUMNS, Trade, TradeKey};

/// What the notification says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifiedStatus {
    /// TRADE_SUCCESS / TRADE_FINISHED.
    Paid { trade_no: Option<String>, buyer_user_id: Option<String>, paid_at: OffsetDateTime },
    /// TRADE_CLOSED: unpaid and closed, or paid and `refunded` in full (a cancel that reversed it).
    Closed { refunded: bool },
    /// Anything else (WAIT_BUYER_PAY): nothing to apply.
    Other(String),
}

/// A verified notification, reduced to what the ledger needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifiedPayment {
    pub tenant_id: Uuid,
    pub notify_id: String,
    pub out_trade_no: String,
    pub status: NotifiedStatus,
    pub amount: Amount,
    pub subject: Option<String>,
    /// The tenant's Alipay account (`tenants::registry::alipay_account`).
    pub alipay_account: String,
    /// Whether other tenants share that account: a payment the ledger does not know cannot then
    /// be told apart as this tenant's, and is not recorded from its notification.
    pub account_shared: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationOutcome {
    /// The trade moved; the merchant will be told.
    Applied(Trade),
    /// A payment the gateway never started, now in the ledger; the merchant will be told.
    Created(Trade),
    /// Nothing to change (a repeat, or a state already recorded).
    AlreadyKnown(Option<Trade>),
    /// It contradicts the ledger (amount, or a payment of a trade recorded as failed or closed):
    /// not applied; answer `fail` and look into it.
    Refused(String),
}

impl Store {
    /// Applies a verified notification; the caller answers Alipay `success` only once this
    /// returned without error and not [`NotificationOutcome::Refused`].
    pub async fn apply_notification(&self, note: &NotifiedPayment) -> Result<NotificationOutcome, StoreError> {
        let key = TradeKey::new(note.tenant_id, note.out_trade_no.clone());
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO alipay_notifications (tenant_id, notify_id, out_trade_no, trade_status) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, notify_id) DO UPDATE SET times_received = alipay_notifications.times_received + 1, \
             last_at = now()",
            &[&note.tenant_id, &note.notify_id, &note.out_trade_no, &status_text(&note.status)],
        )
        .await?;
        let outcome = match read_locked(&tx, &key).await? {
            None => create_unstarted(&tx, &key, note).await?,
            Some(trade) => apply_to(&tx, trade, note).await?,
        };
        if matches!(outcome, NotificationOutcome::Refused(_)) {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(outcome)
    }
}

fn status_text(status: &NotifiedStatus) -> &str {
    match status {
        NotifiedStatus::Paid { .. } => "TRADE_SUCCESS",
        NotifiedStatus::Closed { .. } => "TRADE_CLOSED",
        NotifiedStatus::Other(other) => other,
    }
}

async fn create_unstarted(
    tx: &deadpool_postgres::Transaction<'_>,
    key: &TradeKey,
    note: &NotifiedPayment,
) -> Result<NotificationOutcome, StoreError> {
    let NotifiedStatus::Paid { trade_no, buyer_user_id, paid_at } = &note.status else {
        return Ok(NotificationOutcome::AlreadyKnown(None));
    };
    if note.account_shared {
        return Ok(NotificationOutcome::Refused(format!(
            "a payment unknown to the ledger ({}) on an Alipay account several tenants share cannot be told apart as \
             this tenant's",
            key.out_trade_no
        )));
    }
    let minor = i64::try_from(note.amount.minor()).unwrap_or(i64::MAX);
    let subject = note.subject.clone().unwrap_or_else(|| "Static QR code payment".into());
    let sql = format!(
        "INSERT INTO trades (tenant_id, out_trade_no, kind, state, fingerprint, currency, amount_minor, subject, \
         trade_no, buyer_user_id, paid_at, alipay_account) \
         VALUES ($1, $2, $3, 'SUCCESS', '\\x'::bytea, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING \
         RETURNING {TRADE_COLUMNS}"
    );
    let row = tx
        .query_opt(
            &sql,
            &[
                &key.tenant_id,
                &key.out_trade_no,
                &TradeKind::StaticQr.as_str(),
                &note.amount.currency().code(),
                &minor,
                &subject,
                trade_no,
                buyer_user_id,
                paid_at,
                &note.alipay_account,
            ],
        )
        .await?;
    let Some(row) = row else {
        return Ok(NotificationOutcome::Refused(format!(
            "trade number {} is another tenant's at this Alipay account",
            key.out_trade_no
        )));
    };
    let trade = Trade::from_row(&row)?;
    enqueue_webhook(tx, "payment.succeeded", &trade).await?;
    Ok(NotificationOutcome::Created(trade))
}

async fn apply_to(
    tx: &deadpool_postgres::Transaction<'_>,
    trade: Trade,
    note: &NotifiedPayment,
) -> Result<NotificationOutcome, StoreError> {
    if note.amount != trade.amount {
        return Ok(NotificationOutcome::Refused(format!(
            "notification amount {} {} differs from the ledger's {} {}",
            note.amount,
            note.amount.currency(),
            trade.amount,
            trade.amount.currency()
        )));
    }
    let (next, event) = match (&note.status, trade.state) {
        (NotifiedStatus::Paid { .. }, TradeState::Paying | TradeState::Unknown | TradeState::Waiting) => {
            (TradeState::Success, "payment.succeeded")
        }
        (NotifiedStatus::Paid { .. }, TradeState::Failed) | (NotifiedStatus::Paid { .. }, TradeState::Cancelled)
            if trade.cancel_action != Some(CancelAction::Refund) =>
        {
            return Ok(NotificationOutcome::Refused(format!(
                "Alipay reports trade {} paid, but the ledger holds it {}",
                trade.key.out_trade_no, trade.state
            )));
        }
        (NotifiedStatus::Closed { .. }, TradeState::Paying | TradeState::Unknown | TradeState::Waiting) => {
            (TradeState::Cancelled, "payment.cancelled")
        }
        // The reversal a POS asked for went through (its notification came before the answer).
        (NotifiedStatus::Closed { refunded: true }, TradeState::Success | TradeState::PartiallyRefunded)
            if trade.cancel_requested =>
        {
            (TradeState::Cancelled, "payment.cancelled")
        }
        _ => return Ok(NotificationOutcome::AlreadyKnown(Some(trade))),
    };
    let (trade_no, buyer, paid_at) = match &note.status {
        NotifiedStatus::Paid { trade_no, buyer_user_id, paid_at } => {
            (trade_no.clone(), buyer_user_id.clone(), Some(*paid_at))
        }
        _ => (None, None, None),
    };
    // Money moved back if the closed trade had been paid: the ledger must say refund, not close.
    let action = match note.status {
        NotifiedStatus::Closed { refunded: true } => Some(CancelAction::Refund.as_str()),
        NotifiedStatus::Closed { refunded: false } => Some(CancelAction::Close.as_str()),
        _ => None,
    };
    let sql = format!(
        "UPDATE trades SET state = $4, version = version + 1, updated_at = now(), trade_no = COALESCE($5, trade_no), \
         buyer_user_id = COALESCE($6, buyer_user_id), paid_at = COALESCE($7, paid_at), \
         cancel_action = COALESCE($8, cancel_action), unknown_reason = NULL, \
         refunded_minor = CASE WHEN $8 = 'refund' THEN amount_minor ELSE refunded_minor END, \
         next_check_at = CASE WHEN cancel_requested AND $4 = 'SUCCESS' THEN now() END, \
         cancel_requested = cancel_requested AND $4 = 'SUCCESS' \
         WHERE tenant_id = $1 AND out_trade_no = $2 AND version = $3 RETURNING {TRADE_COLUMNS}"
    );
    let row = tx
        .query_one(
            &sql,
            &[
                &trade.key.tenant_id,
                &trade.key.out_trade_no,
                &trade.version,
                &next.as_str(),
                &trade_no,
                &buyer,
                &paid_at,
                &action,
            ],
        )
        .await?;
    let updated = Trade::from_row(&row)?;
    enqueue_webhook(tx, event, &updated).await?;
    Ok(NotificationOutcome::Applied(updated))
}
