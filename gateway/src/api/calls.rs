//! What the partner API sends to Alipay and how it records the answer, as [`Call`]s that
//! [`upstream::Upstream::make`] runs (intent → Alipay → record → after-effects, timed, counted,
//! with its crash windows). Each is a description: the order calls (pay, precreate), cancel,
//! refund.

use std::sync::Arc;
use std::time::Duration;

use alipay::unified::{Answer, Order, Request};
use alipay::{Amount, AuthCode, MerchantRef, OutRequestNo, OutTradeNo, Outcome, Subject};
use ledger::proven::NOT_SENT;
use ledger::{
    Begin, BeginRefund, CancelAction, CancelRecorded, NewRefund, NewTrade, Recheck, Recorded, Refund, RefundSettlement,
    RefundState, Settlement, Trade, TradeKind, TradeState, record_cancel,
};
use tenants::snapshot::Tenant;
use time::OffsetDateTime;
use upstream::NotSent;
use upstream::call::Call;

use super::{fingerprint, views};
use crate::problem::ApiError;
use crate::state::AppState;

/// The answer to a trade number used before, by this tenant for another payment or by another
/// tenant of the same Alipay account (which is not said).
pub const NUMBER_TAKEN: &str = "out_trade_no was used for another payment; use a new one";

/// What a trade is for, as the POS described it.
#[derive(Debug, Clone)]
pub struct OrderFields {
    pub out_trade_no: OutTradeNo,
    pub amount: Amount,
    pub subject: Subject,
    pub store_id: Option<MerchantRef>,
    pub terminal_id: Option<MerchantRef>,
    pub operator_id: Option<MerchantRef>,
}

impl OrderFields {
    pub fn order(&self) -> Order<'_> {
        Order {
            out_trade_no: &self.out_trade_no,
            subject: &self.subject,
            amount: self.amount,
            store_id: self.store_id.as_ref(),
            terminal_id: self.terminal_id.as_ref(),
            operator_id: self.operator_id.as_ref(),
        }
    }

    /// What makes two order requests "the same": every field, in a fixed order (a pay's
    /// `auth_code` after the trade number, a QR order's expiry last).
    pub fn fingerprint(&self, ordered: &Ordered) -> Vec<u8> {
        fn text(field: &Option<MerchantRef>) -> &str {
            field.as_ref().map_or("", |f| f.as_str())
        }
        let (kind, auth_code, expires_in) = match ordered {
            Ordered::Pay { auth_code } => ("pay", Some(auth_code.as_str()), None),
            Ordered::Precreate { expires_in } => ("qr", None, Some(expires_in.as_secs().to_string())),
        };
        let (amount, currency, subject) =
            (self.amount.to_string(), self.amount.currency().to_string(), self.subject.to_string());
        let mut fields = vec![self.out_trade_no.as_str()];
        fields.extend(auth_code);
        fields.extend([amount.as_str(), &currency, &subject]);
        fields.extend([text(&self.store_id), text(&self.terminal_id), text(&self.operator_id)]);
        fields.extend(expires_in.as_deref());
        fingerprint(kind, &fields)
    }
}

/// Which order call: a barcode pay, or an order QR code.
#[derive(Debug, Clone)]
pub enum Ordered {
    Pay {
        auth_code: AuthCode,
    },
    /// Payable for `expires_in`.
    Precreate {
        expires_in: Duration,
    },
}

/// Pay or precreate: the intent row (PAYING) first, then Alipay, then what it proved.
pub struct OrderCall {
    pub state: Arc<AppState>,
    pub tenant: Arc<Tenant>,
    pub fields: OrderFields,
    pub ordered: Ordered,
    pub fingerprint: Vec<u8>,
    /// Where Alipay notifies the gateway of the trade.
    pub notify_url: Option<String>,
    /// Where the gateway notifies the POS, Alipay-style (front-door trades).
    pub pos_notify_url: Option<String>,
}

impl OrderCall {
    pub fn new(state: Arc<AppState>, tenant: Arc<Tenant>, fields: OrderFields, ordered: Ordered) -> OrderCall {
        let notify_url = state.notify_url(&tenant);
        let fingerprint = fields.fingerprint(&ordered);
        OrderCall { state, tenant, fields, ordered, fingerprint, notify_url, pos_notify_url: None }
    }

    fn intent_row(&self) -> NewTrade {
        let order = self.fields.order();
        NewTrade {
            key: ledger::TradeKey::new(self.tenant.id, order.out_trade_no.as_str()),
            kind: match self.ordered {
                Ordered::Pay { .. } => TradeKind::Barcode,
                Ordered::Precreate { .. } => TradeKind::Qr,
            },
            fingerprint: self.fingerprint.clone(),
            amount: order.amount,
            subject: order.subject.to_string(),
            store_id: order.store_id.map(|s| s.to_string()),
            terminal_id: order.terminal_id.map(|s| s.to_string()),
            operator_id: order.operator_id.map(|s| s.to_string()),
            check_at: OffsetDateTime::now_utc() + self.state.config.intent_check_after(),
            alipay_account: self.tenant.alipay_account(),
            notify_url: self.pos_notify_url.clone(),
        }
    }
}

impl Call for OrderCall {
    type Intent = Trade;
    type Done = Result<Trade, ApiError>;

    fn name(&self) -> &'static str {
        match self.ordered {
            Ordered::Pay { .. } => "pay",
            Ordered::Precreate { .. } => "precreate",
        }
    }

    async fn intent(&self) -> Result<Trade, Self::Done> {
        match self.state.store.begin(&self.intent_row()).await {
            Ok(Begin::Started(trade)) => Ok(trade),
            Ok(Begin::Existing(existing)) => Err(Ok(existing)),
            Ok(Begin::Taken) => Err(Err(ApiError::Conflict(NUMBER_TAKEN.into()))),
            Err(error) => Err(Err(error.into())),
        }
    }

    fn request<'a>(&'a self, _trade: &'a Trade) -> Request<'a> {
        let order = self.fields.order();
        match &self.ordered {
            Ordered::Pay { auth_code } => Request::Pay { order, auth_code },
            Ordered::Precreate { expires_in } => Request::Precreate {
                order,
                timeout_minutes: Some(u32::try_from(expires_in.as_secs().div_ceil(60)).unwrap_or(u32::MAX)),
            },
        }
    }

    fn notify_url(&self) -> Option<&str> {
        self.notify_url.as_deref()
    }

    async fn record(&self, trade: Trade, answer: Result<Answer, NotSent>) -> Self::Done {
        let now = OffsetDateTime::now_utc();
        let unknown = self.state.recheck(&trade);
        let settlement = match (&answer, &self.ordered) {
            (Err(not_sent), _) => Settlement::not_sent(not_sent),
            (Ok(answer), Ordered::Pay { .. }) => Settlement::of_pay(&trade, answer, now, unknown),
            (Ok(answer), Ordered::Precreate { expires_in }) => {
                let waiting = Recheck { next_check_at: now + self.state.config.qr_check, deadline: now + *expires_in };
                Settlement::of_precreate(answer, waiting, unknown)
            }
        };
        Ok(record_outcome(&self.state, &trade, &settlement).await)
    }

    fn outcome(&self, done: &Self::Done) -> &'static str {
        match done {
            Ok(trade) => match trade.state {
                TradeState::Success => "success",
                TradeState::Failed => "failed",
                TradeState::Waiting => "waiting",
                _ => "unknown",
            },
            Err(_) => "not_recorded",
        }
    }

    async fn after(&self, done: &Self::Done) {
        if let Ok(trade) = done {
            self.state.after_recording(trade).await;
        }
    }
}

/// Records what an answer proved; if the write fails the trade stays as it was in the ledger
/// (PAYING) for the reconciler, and the POS hears UNKNOWN.
async fn record_outcome(state: &AppState, trade: &Trade, settlement: &Settlement) -> Trade {
    match state.store.record(trade, settlement).await {
        Ok(Recorded::Applied(updated)) => updated,
        Ok(Recorded::Stale(current)) => {
            metrics::counter!("gateway_stale_writes_total").increment(1);
            tracing::info!(trade = %trade.key.out_trade_no, state = %current.state, "outcome arrived after another writer moved the trade");
            current
        }
        Err(error) => {
            tracing::error!(%error, trade = %trade.key.out_trade_no, "outcome not recorded; the reconciler will settle the trade");
            Trade { state: TradeState::Unknown, ..trade.clone() }
        }
    }
}

/// Cancels: closes an unpaid trade, reverses a paid one. The request is recorded first
/// (`cancel_requested`, the reconciler's takeover time), so a lost answer is carried on.
pub struct CancelCall {
    pub state: Arc<AppState>,
    pub key: ledger::TradeKey,
    pub out_trade_no: OutTradeNo,
}

impl Call for CancelCall {
    type Intent = Trade;
    type Done = Result<Trade, ApiError>;

    fn name(&self) -> &'static str {
        "cancel"
    }

    async fn intent(&self) -> Result<Trade, Self::Done> {
        let takeover_at = OffsetDateTime::now_utc() + self.state.config.intent_check_after();
        match self.state.store.request_cancel(&self.key, takeover_at).await {
            Ok(Some(trade)) if trade.is_open() => Ok(trade),
            Ok(Some(trade)) => Err(Ok(trade)),
            Ok(None) => Err(Err(ApiError::NotFound)),
            Err(error) => Err(Err(error.into())),
        }
    }

    fn request<'a>(&'a self, _trade: &'a Trade) -> Request<'a> {
        Request::Cancel { out_trade_no: &self.out_trade_no }
    }

    async fn record(&self, trade: Trade, answer: Result<Answer, NotSent>) -> Self::Done {
        let state = &self.state;
        match answer {
            Ok(Answer { outcome: Outcome::Success, facts }) => {
                let action = CancelAction::of_confirmed(facts.action, &trade);
                let recorded = record_cancel(trade, action, |current, settlement| async move {
                    state.store.record(&current, &settlement).await
                })
                .await?;
                match recorded {
                    CancelRecorded::Cancelled(trade)
                    | CancelRecorded::WasCancelled(trade)
                    | CancelRecorded::Moving(trade) => Ok(trade),
                    CancelRecorded::Contradicted(trade) => {
                        tracing::error!(trade = %trade.key.out_trade_no, state = %trade.state,
                            "Alipay confirmed a cancel of a trade the ledger holds final; look into it");
                        Ok(trade)
                    }
                }
            }
            // Alipay will not reverse the payment (e.g. past its cancel window): it stays paid.
            Ok(Answer { outcome: Outcome::Failed(failure), .. }) if trade.state.is_paid() => {
                tracing::warn!(trade = %trade.key.out_trade_no, %failure, "Alipay refused to reverse a paid trade");
                state.store.cancel_refused(&trade).await?;
                Err(ApiError::Refused {
                    code: failure.reason_code().to_owned(),
                    message: failure.message.clone().unwrap_or_else(|| "Alipay refused the cancel".into()),
                })
            }
            // Not confirmed: the reconciler asks what happened and carries the cancel on, from now.
            _ => {
                state.arm(&trade.key, OffsetDateTime::now_utc()).await;
                Ok(state.store.get(&trade.key).await?.unwrap_or(trade))
            }
        }
    }

    fn outcome(&self, done: &Self::Done) -> &'static str {
        match done {
            Ok(trade) if trade.state == TradeState::Cancelled => "cancelled",
            Ok(_) => "pending",
            Err(ApiError::Refused { .. }) => "refused",
            Err(_) => "not_recorded",
        }
    }

    async fn after(&self, done: &Self::Done) {
        if let Ok(trade) = done
            && trade.state.is_final()
        {
            self.state.after_recording(trade).await;
        }
    }
}

/// A refund as its call left it, with its trade.
#[derive(Debug, Clone)]
pub struct Refunded {
    pub refund: Refund,
    pub trade: Trade,
}

/// Reserves the refund (under the trade's row lock, never past the paid amount), asks Alipay,
/// records what it proved.
pub struct RefundCall {
    pub state: Arc<AppState>,
    pub out_trade_no: OutTradeNo,
    /// The refund's number as Alipay sees it.
    pub wire_request_no: OutRequestNo,
    pub new: NewRefund,
}

impl Call for RefundCall {
    type Intent = (Refund, Trade);
    type Done = Result<Refunded, ApiError>;

    fn name(&self) -> &'static str {
        "refund"
    }

    async fn intent(&self) -> Result<Self::Intent, Self::Done> {
        match self.state.store.begin_refund(&self.new).await {
            Ok(BeginRefund::Started { refund, trade }) => Ok((refund, trade)),
            Ok(BeginRefund::Existing { refund, trade }) => Err(Ok(Refunded { refund, trade })),
            Ok(BeginRefund::NoSuchTrade) => Err(Err(ApiError::NotFound)),
            Ok(BeginRefund::NotRefundable(trade)) => Err(Err(ApiError::NotRefundable(format!(
                "the payment is {}, not refundable",
                views::status(trade.state)
            )))),
            Ok(BeginRefund::Exceeds { available, .. }) => {
                Err(Err(ApiError::RefundExceeds { available: available.to_string() }))
            }
            Err(error) => Err(Err(error.into())),
        }
    }

    fn request<'a>(&'a self, _intent: &'a Self::Intent) -> Request<'a> {
        Request::Refund {
            out_trade_no: &self.out_trade_no,
            out_request_no: &self.wire_request_no,
            amount: self.new.amount,
            reason: self.new.reason.as_deref(),
        }
    }

    async fn record(&self, (refund, trade): Self::Intent, answer: Result<Answer, NotSent>) -> Self::Done {
        let now = OffsetDateTime::now_utc();
        let settlement = match answer {
            Ok(answer) => RefundSettlement::of_answer(
                &answer,
                self.out_trade_no.as_str(),
                now,
                now + self.state.config.first_check,
            ),
            Err(not_sent) => RefundSettlement::Failed { code: NOT_SENT.into(), message: Some(not_sent.to_string()) },
        };
        let (refund, trade) = match self.state.store.record_refund(&refund, &settlement).await {
            Ok(recorded) => recorded,
            Err(error) => {
                tracing::error!(%error, "refund outcome not recorded; the reconciler will query it");
                (Refund { state: RefundState::Unknown, ..refund }, trade)
            }
        };
        Ok(Refunded { refund, trade })
    }

    fn outcome(&self, done: &Self::Done) -> &'static str {
        match done {
            Ok(Refunded { refund, .. }) => refund.state.as_str(),
            Err(_) => "not_recorded",
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sha256(text: &str) -> Vec<u8> {
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()).as_ref().to_vec()
    }

    /// Fingerprints are stored with every trade: a retry after an upgrade must still match the
    /// request it repeats, so the text they digest never changes.
    #[test]
    fn order_fingerprints_digest_the_text_stored_trades_were_made_with() {
        let fields = OrderFields {
            out_trade_no: "T-1".parse().unwrap(),
            amount: Amount::parse("12.30", alipay::Currency::CNY).unwrap(),
            subject: "Lunch".parse().unwrap(),
            store_id: Some("S1".parse().unwrap()),
            terminal_id: None,
            operator_id: Some("op".parse().unwrap()),
        };
        let pay = Ordered::Pay { auth_code: "281234567890123456".parse().unwrap() };
        assert_eq!(fields.fingerprint(&pay), sha256("pay\nT-1\n281234567890123456\n12.30\nCNY\nLunch\nS1\n\nop"));
        let qr = Ordered::Precreate { expires_in: Duration::from_secs(600) };
        assert_eq!(fields.fingerprint(&qr), sha256("qr\nT-1\n12.30\nCNY\nLunch\nS1\n\nop\n600"));
    }
}
