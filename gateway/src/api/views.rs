//! What the partner API answers, built from ledger rows.

use ledger::{Refund, RefundState, Trade, TradeState};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn when(at: Option<OffsetDateTime>) -> Option<String> {
    at.and_then(|t| t.format(&Rfc3339).ok())
}

/// Alipay's refusal, as the POS sees it.
#[derive(Debug, Serialize)]
pub struct Failure<'a> {
    pub code: &'a str,
    pub message: Option<&'a str>,
}

/// A payment (or QR order).
#[derive(Debug, Serialize)]
pub struct Payment<'a> {
    pub out_trade_no: &'a str,
    /// SUCCESS, FAILED or UNKNOWN for a fresh payment; later WAITING, CANCELLED,
    /// PARTIALLY_REFUNDED or REFUNDED as the trade moves on. PAYING shows as UNKNOWN.
    pub status: &'static str,
    pub kind: &'static str,
    pub trade_no: Option<&'a str>,
    pub amount: String,
    pub currency: &'static str,
    pub refunded_amount: String,
    pub subject: &'a str,
    pub store_id: Option<&'a str>,
    pub terminal_id: Option<&'a str>,
    pub operator_id: Option<&'a str>,
    pub buyer_user_id: Option<&'a str>,
    pub qr_code: Option<&'a str>,
    pub created_at: Option<String>,
    pub paid_at: Option<String>,
    /// When a waiting QR order expires, or when an UNKNOWN payment is cancelled at the latest.
    pub deadline: Option<String>,
    pub failure: Option<Failure<'a>>,
    pub cancel_action: Option<&'static str>,
    /// A cancel was asked for and is still being confirmed with Alipay.
    pub cancel_pending: bool,
}

/// The partner API's name for a ledger state.
pub fn status(state: TradeState) -> &'static str {
    match state {
        TradeState::Paying => "UNKNOWN",
        other => other.as_str(),
    }
}

pub fn payment(trade: &Trade) -> Payment<'_> {
    Payment {
        out_trade_no: &trade.key.out_trade_no,
        status: status(trade.state),
        kind: trade.kind.as_str(),
        trade_no: trade.trade_no.as_deref(),
        amount: trade.amount.to_string(),
        currency: trade.amount.currency().code(),
        refunded_amount: trade.refunded.to_string(),
        subject: &trade.subject,
        store_id: trade.store_id.as_deref(),
        terminal_id: trade.terminal_id.as_deref(),
        operator_id: trade.operator_id.as_deref(),
        buyer_user_id: trade.buyer_user_id.as_deref(),
        qr_code: trade.qr_code.as_deref(),
        created_at: when(Some(trade.created_at)),
        paid_at: when(trade.paid_at),
        deadline: if trade.state.is_final() { None } else { when(trade.deadline) },
        failure: trade
            .failure_code
            .as_deref()
            .filter(|_| trade.state == TradeState::Failed)
            .map(|code| Failure { code, message: trade.failure_message.as_deref() }),
        cancel_action: trade.cancel_action.map(|a| a.as_str()),
        cancel_pending: trade.cancel_requested && trade.is_open(),
    }
}

/// A refund.
#[derive(Debug, Serialize)]
pub struct RefundView<'a> {
    pub out_trade_no: &'a str,
    pub out_request_no: &'a str,
    pub status: &'static str,
    pub amount: String,
    pub currency: &'static str,
    /// Refunded on the trade so far, this refund included once it succeeded.
    pub refunded_total: String,
    pub payment_status: &'static str,
    pub refunded_at: Option<String>,
    pub failure: Option<Failure<'a>>,
}

pub fn refund<'a>(refund: &'a Refund, trade: &'a Trade) -> RefundView<'a> {
    RefundView {
        out_trade_no: &refund.key.out_trade_no,
        out_request_no: &refund.out_request_no,
        status: match refund.state {
            RefundState::Pending => "UNKNOWN",
            other => other.as_str(),
        },
        amount: refund.amount.to_string(),
        currency: refund.amount.currency().code(),
        refunded_total: trade.refunded.to_string(),
        payment_status: status(trade.state),
        refunded_at: when(refund.refunded_at),
        failure: refund
            .failure_code
            .as_deref()
            .filter(|_| refund.state == RefundState::Failed)
            .map(|code| Failure { code, message: refund.failure_message.as_deref() }),
    }
}
