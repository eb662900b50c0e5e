//! Alipay's answer members, built from the ledger's rows: what the POS is told is what the
//! ledger holds, in the words (and JSON) Alipay uses.

use alipay::openapi::Status;
use alipay::openapi::trade::{
    CancelAction, RefundQueryAnswer, TradeCancelAnswer, TradePayAnswer, TradeQueryAnswer, TradeRefundAnswer,
    TradeStatus, YesNo,
};
use alipay::server::openapi::{business, member, paying, system_error};
use alipay::time_text::beijing_datetime;
use alipay::{Amount, Currency, Decimal};
use ledger::{Refund, RefundState, Trade, TradeState};

fn dec(amount: Amount) -> Option<Decimal> {
    Some(Decimal::from(amount))
}

/// The amount the buyer paid: all of it once paid, nothing before.
fn paid_amount(trade: &Trade) -> Amount {
    if trade.paid_at.is_some() { trade.amount } else { Amount::zero(trade.amount.currency()) }
}

/// The trade's state in Alipay's words: not yet final is WAIT_BUYER_PAY (the POS's loop goes on),
/// paid is TRADE_SUCCESS, everything that ends unpaid or fully given back is TRADE_CLOSED.
pub fn trade_status(state: TradeState) -> TradeStatus {
    match state {
        TradeState::Paying | TradeState::Unknown | TradeState::Waiting => TradeStatus::WaitBuyerPay,
        TradeState::Success | TradeState::PartiallyRefunded => TradeStatus::TradeSuccess,
        TradeState::Failed | TradeState::Cancelled | TradeState::Refunded => TradeStatus::TradeClosed,
    }
}

/// Alipay's refusal as the ledger recorded it.
pub fn refusal(code: Option<&str>, message: Option<&str>) -> Status {
    business(code.unwrap_or("ACQ.SYSTEM_ERROR"), message.unwrap_or("Business Failed"))
}

/// `alipay.trade.pay`: paid (10000), refused (40004 with Alipay's sub code), or not known yet
/// (10003: the POS queries, then cancels).
pub fn pay(trade: &Trade) -> String {
    let status = match trade.state {
        TradeState::Success | TradeState::PartiallyRefunded | TradeState::Refunded => Status::success(),
        TradeState::Failed => refusal(trade.failure_code.as_deref(), trade.failure_message.as_deref()),
        TradeState::Cancelled => business("ACQ.TRADE_HAS_CLOSE", "trade has been closed"),
        TradeState::Paying | TradeState::Unknown | TradeState::Waiting => paying(),
    };
    let paid = paid_amount(trade);
    member(&TradePayAnswer {
        status,
        trade_no: trade.trade_no.as_deref().and_then(|t| t.parse().ok()),
        out_trade_no: trade.key.out_trade_no.parse().ok(),
        buyer_user_id: trade.buyer_user_id.as_deref().and_then(|b| b.parse().ok()),
        total_amount: dec(trade.amount),
        receipt_amount: dec(paid),
        buyer_pay_amount: dec(paid),
        invoice_amount: dec(paid),
        gmt_payment: trade.paid_at.map(beijing_datetime),
        ..TradePayAnswer::default()
    })
}

/// `alipay.trade.query`.
pub fn query(trade: &Trade) -> String {
    let paid = paid_amount(trade);
    let currency = trade.amount.currency();
    member(&TradeQueryAnswer {
        status: Status::success(),
        trade_no: trade.trade_no.as_deref().and_then(|t| t.parse().ok()),
        out_trade_no: trade.key.out_trade_no.parse().ok(),
        buyer_user_id: trade.buyer_user_id.as_deref().and_then(|b| b.parse().ok()),
        trade_status: Some(trade_status(trade.state)),
        total_amount: dec(trade.amount),
        buyer_pay_amount: dec(paid),
        receipt_amount: dec(paid),
        send_pay_date: trade.paid_at.map(beijing_datetime),
        store_id: trade.store_id.clone(),
        terminal_id: trade.terminal_id.clone(),
        trans_currency: (currency != Currency::CNY).then_some(currency),
        ..TradeQueryAnswer::default()
    })
}

/// `alipay.trade.cancel`: done (10000, what it did), or not confirmed yet (`retry_flag=Y`: the
/// POS cancels again; the reconciler carries it on regardless).
pub fn cancel(trade: &Trade) -> String {
    let done = trade.state == TradeState::Cancelled || trade.state == TradeState::Failed;
    let action = match trade.cancel_action {
        Some(ledger::CancelAction::Refund) => Some(CancelAction::Refund),
        Some(ledger::CancelAction::Close) => Some(CancelAction::Close),
        None if done => Some(CancelAction::Close),
        None => None,
    };
    member(&TradeCancelAnswer {
        status: if done { Status::success() } else { system_error() },
        trade_no: trade.trade_no.as_deref().and_then(|t| t.parse().ok()),
        out_trade_no: trade.key.out_trade_no.parse().ok(),
        retry_flag: Some(if done { YesNo::N } else { YesNo::Y }),
        action: if done { action } else { None },
        gmt_refund_pay: (done && action == Some(CancelAction::Refund)).then(|| beijing_datetime(trade.updated_at)),
    })
}

/// `alipay.trade.refund`: `fund_change` says whether this call moved money (N on a repeat).
pub fn refund(refund: &Refund, trade: &Trade, moved_money: bool) -> Result<String, Status> {
    match refund.state {
        RefundState::Success => Ok(member(&TradeRefundAnswer {
            status: Status::success(),
            trade_no: trade.trade_no.as_deref().and_then(|t| t.parse().ok()),
            out_trade_no: trade.key.out_trade_no.parse().ok(),
            buyer_user_id: trade.buyer_user_id.as_deref().and_then(|b| b.parse().ok()),
            fund_change: Some(if moved_money { YesNo::Y } else { YesNo::N }),
            refund_fee: dec(trade.refunded),
            gmt_refund_pay: refund.refunded_at.map(beijing_datetime),
            ..TradeRefundAnswer::default()
        })),
        RefundState::Failed => Err(refusal(refund.failure_code.as_deref(), refund.failure_message.as_deref())),
        // Not known yet: the POS repeats the same out_request_no (idempotent) until it is.
        RefundState::Pending | RefundState::Unknown => Err(system_error()),
    }
}

/// `alipay.trade.fastpay.refund.query`: the refund's amount once it is done; without
/// `refund_status` while it is not (or there is no such refund), as Alipay answers.
pub fn refund_query(trade: &Trade, out_request_no: &str, refund: Option<&Refund>) -> String {
    let mut answer = RefundQueryAnswer {
        status: Status::success(),
        trade_no: trade.trade_no.as_deref().and_then(|t| t.parse().ok()),
        out_trade_no: trade.key.out_trade_no.parse().ok(),
        out_request_no: out_request_no.parse().ok(),
        ..RefundQueryAnswer::default()
    };
    if let Some(refund) = refund.filter(|r| r.state == RefundState::Success) {
        answer.refund_amount = dec(refund.amount);
        answer.total_amount = dec(trade.amount);
        answer.refund_status = Some("REFUND_SUCCESS".into());
        answer.gmt_refund_pay = refund.refunded_at.map(beijing_datetime);
    }
    member(&answer)
}
