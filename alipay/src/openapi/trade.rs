//! The face-to-face trade methods: requests (the `biz_content` fields) and answers.
//!
//! Field names and shapes follow alipay-protocol.md A5. Ids and amounts are parsed types;
//! display-only fields (masked logon ids, times) stay text so an unusual value never makes a
//! good answer unreadable.

use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::{Call, Status};
use crate::ids::{AuthCode, MerchantRef, OutRequestNo, OutTradeNo, Subject, TradeNo, UserId};
use crate::money::{Amount, Currency, Decimal};
use crate::outcome::{Outcome, UnknownReason, code_is};

/// Which trade a query, cancel, close or refund is about; Alipay takes either number.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeRef {
    pub out_trade_no: Option<OutTradeNo>,
    pub trade_no: Option<TradeNo>,
}

impl From<OutTradeNo> for TradeRef {
    fn from(out_trade_no: OutTradeNo) -> Self {
        TradeRef { out_trade_no: Some(out_trade_no), trade_no: None }
    }
}

/// `trade_status` as Alipay names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TradeStatus {
    WaitBuyerPay,
    TradeClosed,
    TradeSuccess,
    TradeFinished,
}

impl TradeStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            TradeStatus::WaitBuyerPay => "WAIT_BUYER_PAY",
            TradeStatus::TradeClosed => "TRADE_CLOSED",
            TradeStatus::TradeSuccess => "TRADE_SUCCESS",
            TradeStatus::TradeFinished => "TRADE_FINISHED",
        }
    }

    /// Paid: only TRADE_SUCCESS and TRADE_FINISHED count (alipay-protocol.md A8).
    pub const fn is_paid(self) -> bool {
        matches!(self, TradeStatus::TradeSuccess | TradeStatus::TradeFinished)
    }
}

/// `Y` / `N` flags (`retry_flag`, `fund_change`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum YesNo {
    Y,
    N,
}

/// What a cancel did: closed an unpaid trade or refunded a paid one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CancelAction {
    Close,
    Refund,
}

/// The barcode scene of trade.pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scene {
    BarCode,
    WaveCode,
}

/// One funding source of a payment.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundBill {
    pub fund_channel: String,
    pub amount: Decimal,
    pub real_amount: Option<Decimal>,
}

fn non_cny(amount: &Amount) -> Option<Currency> {
    (amount.currency() != Currency::CNY).then_some(amount.currency())
}

/// `alipay.trade.pay`: charge the buyer's barcode.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TradePay {
    pub out_trade_no: OutTradeNo,
    pub scene: Scene,
    pub auth_code: AuthCode,
    pub subject: Subject,
    pub total_amount: Amount,
    pub trans_currency: Option<Currency>,
    pub store_id: Option<MerchantRef>,
    pub terminal_id: Option<MerchantRef>,
    pub operator_id: Option<MerchantRef>,
    pub timeout_express: Option<String>,
}

impl TradePay {
    pub fn new(out_trade_no: OutTradeNo, auth_code: AuthCode, subject: Subject, total_amount: Amount) -> Self {
        TradePay {
            out_trade_no,
            scene: Scene::BarCode,
            auth_code,
            subject,
            trans_currency: non_cny(&total_amount),
            total_amount,
            store_id: None,
            terminal_id: None,
            operator_id: None,
            timeout_express: None,
        }
    }
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradePayAnswer {
    #[serde(flatten)]
    pub status: Status,
    pub trade_no: Option<TradeNo>,
    pub out_trade_no: Option<OutTradeNo>,
    pub buyer_logon_id: Option<String>,
    pub buyer_user_id: Option<UserId>,
    pub total_amount: Option<Decimal>,
    pub receipt_amount: Option<Decimal>,
    pub buyer_pay_amount: Option<Decimal>,
    pub point_amount: Option<Decimal>,
    pub invoice_amount: Option<Decimal>,
    pub gmt_payment: Option<String>,
    pub fund_bill_list: Option<Vec<FundBill>>,
}

impl Call for TradePay {
    const METHOD: &'static str = "alipay.trade.pay";
    const RESPONSE_KEY: &'static str = "alipay_trade_pay_response";
    type Answer = TradePayAnswer;

    fn classify(answer: &TradePayAnswer) -> Outcome {
        match answer.status.sub_code.as_deref() {
            Some(sub) if code_is(sub, "TRADE_HAS_SUCCESS") => {
                Outcome::Unknown(UnknownReason::AlreadyProcessed { code: sub.to_owned() })
            }
            _ => answer.status.classify(),
        }
    }
}

/// `alipay.trade.query`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TradeQuery {
    #[serde(flatten)]
    pub trade: TradeRef,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeQueryAnswer {
    #[serde(flatten)]
    pub status: Status,
    pub trade_no: Option<TradeNo>,
    pub out_trade_no: Option<OutTradeNo>,
    pub buyer_logon_id: Option<String>,
    pub buyer_user_id: Option<UserId>,
    pub trade_status: Option<TradeStatus>,
    pub total_amount: Option<Decimal>,
    pub buyer_pay_amount: Option<Decimal>,
    pub receipt_amount: Option<Decimal>,
    pub send_pay_date: Option<String>,
    pub store_id: Option<String>,
    pub terminal_id: Option<String>,
    pub trans_currency: Option<Currency>,
}

impl Call for TradeQuery {
    const METHOD: &'static str = "alipay.trade.query";
    const RESPONSE_KEY: &'static str = "alipay_trade_query_response";
    type Answer = TradeQueryAnswer;

    fn classify(answer: &TradeQueryAnswer) -> Outcome {
        answer.status.classify()
    }
}

/// `alipay.trade.cancel`: close an unpaid trade, or refund a paid one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TradeCancel {
    #[serde(flatten)]
    pub trade: TradeRef,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeCancelAnswer {
    #[serde(flatten)]
    pub status: Status,
    pub trade_no: Option<TradeNo>,
    pub out_trade_no: Option<OutTradeNo>,
    pub retry_flag: Option<YesNo>,
    pub action: Option<CancelAction>,
    pub gmt_refund_pay: Option<String>,
}

impl Call for TradeCancel {
    const METHOD: &'static str = "alipay.trade.cancel";
    const RESPONSE_KEY: &'static str = "alipay_trade_cancel_response";
    type Answer = TradeCancelAnswer;

    fn classify(answer: &TradeCancelAnswer) -> Outcome {
        if answer.status.code != "10000" && answer.retry_flag == Some(YesNo::Y) {
            return Outcome::Unknown(UnknownReason::RetryLater);
        }
        answer.status.classify()
    }
}

/// `alipay.trade.refund`: idempotent on `out_request_no`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TradeRefund {
    #[serde(flatten)]
    pub trade: TradeRef,
    pub refund_amount: Amount,
    pub out_request_no: Option<OutRequestNo>,
    pub refund_reason: Option<String>,
    pub refund_currency: Option<Currency>,
    pub store_id: Option<MerchantRef>,
    pub terminal_id: Option<MerchantRef>,
    pub operator_id: Option<MerchantRef>,
}

impl TradeRefund {
    pub fn new(trade: TradeRef, out_request_no: OutRequestNo, refund_amount: Amount) -> Self {
        TradeRefund {
            trade,
            refund_currency: non_cny(&refund_amount),
            refund_amount,
            out_request_no: Some(out_request_no),
            refund_reason: None,
            store_id: None,
            terminal_id: None,
            operator_id: None,
        }
    }
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeRefundAnswer {
    #[serde(flatten)]
    pub status: Status,
    pub trade_no: Option<TradeNo>,
    pub out_trade_no: Option<OutTradeNo>,
    pub buyer_logon_id: Option<String>,
    pub buyer_user_id: Option<UserId>,
    /// Whether money moved on this call (`N` on an idempotent repeat).
    pub fund_change: Option<YesNo>,
    /// Total refunded on the trade so far.
    pub refund_fee: Option<Decimal>,
    pub gmt_refund_pay: Option<String>,
}

impl Call for TradeRefund {
    const METHOD: &'static str = "alipay.trade.refund";
    const RESPONSE_KEY: &'static str = "alipay_trade_refund_response";
    type Answer = TradeRefundAnswer;

    fn classify(answer: &TradeRefundAnswer) -> Outcome {
        answer.status.classify()
    }
}

/// `alipay.trade.fastpay.refund.query`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundQuery {
    #[serde(flatten)]
    pub trade: TradeRef,
    pub out_request_no: OutRequestNo,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundQueryAnswer {
    #[serde(flatten)]
    pub status: Status,
    pub trade_no: Option<TradeNo>,
    pub out_trade_no: Option<OutTradeNo>,
    pub out_request_no: Option<OutRequestNo>,
    pub refund_amount: Option<Decimal>,
    pub total_amount: Option<Decimal>,
    /// `REFUND_SUCCESS`, or absent: not received or failed.
    pub refund_status: Option<String>,
    pub gmt_refund_pay: Option<String>,
}

impl Call for RefundQuery {
    const METHOD: &'static str = "alipay.trade.fastpay.refund.query";
    const RESPONSE_KEY: &'static str = "alipay_trade_fastpay_refund_query_response";
    type Answer = RefundQueryAnswer;

    fn classify(answer: &RefundQueryAnswer) -> Outcome {
        answer.status.classify()
    }
}

/// `alipay.trade.precreate`: an order QR code for the buyer to scan.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TradePrecreate {
    pub out_trade_no: OutTradeNo,
    pub total_amount: Amount,
    pub subject: Subject,
    pub trans_currency: Option<Currency>,
    pub store_id: Option<MerchantRef>,
    pub terminal_id: Option<MerchantRef>,
    pub operator_id: Option<MerchantRef>,
    pub timeout_express: Option<String>,
}

impl TradePrecreate {
    pub fn new(out_trade_no: OutTradeNo, subject: Subject, total_amount: Amount) -> Self {
        TradePrecreate {
            out_trade_no,
            trans_currency: non_cny(&total_amount),
            total_amount,
            subject,
            store_id: None,
            terminal_id: None,
            operator_id: None,
            timeout_express: None,
        }
    }
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradePrecreateAnswer {
    #[serde(flatten)]
    pub status: Status,
    pub out_trade_no: Option<OutTradeNo>,
    pub qr_code: Option<String>,
}

impl Call for TradePrecreate {
    const METHOD: &'static str = "alipay.trade.precreate";
    const RESPONSE_KEY: &'static str = "alipay_trade_precreate_response";
    type Answer = TradePrecreateAnswer;

    fn classify(answer: &TradePrecreateAnswer) -> Outcome {
        answer.status.classify()
    }
}

/// `alipay.trade.close`: close an unpaid trade.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TradeClose {
    #[serde(flatten)]
    pub trade: TradeRef,
    pub operator_id: Option<MerchantRef>,
}

#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeCloseAnswer {
    #[serde(flatten)]
    pub status: Status,
    pub trade_no: Option<TradeNo>,
    pub out_trade_no: Option<OutTradeNo>,
}

impl Call for TradeClose {
    const METHOD: &'static str = "alipay.trade.close";
    const RESPONSE_KEY: &'static str = "alipay_trade_close_response";
    type Answer = TradeCloseAnswer;

    fn classify(answer: &TradeCloseAnswer) -> Outcome {
        answer.status.classify()
    }
}
