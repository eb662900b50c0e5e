//! The in-store MAPI services: requests (flat parameters) and answers (the fields of
//! `response/alipay`). Field names follow alipay-protocol.md B5.
//!
//! `result_code` is spelled differently per service (C.5): spot.pay and spot.refund answer
//! SUCCESS / FAILED / UNKNOW, acquire.cancel and acquire.precreate SUCCESS / FAIL / UNKNOWN.

use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use super::Service;
use crate::ids::{AuthCode, OutRequestNo, OutTradeNo, Partner, Subject, TradeNo, UserId};
use crate::money::{Amount, Currency, Decimal};
use crate::openapi::trade::{CancelAction, TradeStatus, YesNo};
use crate::outcome::{Outcome, UnknownReason};
use crate::params::Params;

/// `result_code`, in every spelling MAPI uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResultCode {
    Success,
    Fail,
    Failed,
    Unknow,
    Unknown,
}

/// Classifies a MAPI business result: `error` is the reason code (`error` or `detail_error_code`).
fn classify_result(result: ResultCode, error: Option<&str>, retry: Option<YesNo>) -> Outcome {
    let error = error.unwrap_or("");
    match result {
        ResultCode::Success => Outcome::Success,
        ResultCode::Unknow | ResultCode::Unknown if error == "SYSTEM_ERROR" => {
            Outcome::Unknown(UnknownReason::SystemError { code: error.to_owned() })
        }
        ResultCode::Unknow | ResultCode::Unknown => Outcome::Unknown(UnknownReason::BuyerPaying),
        ResultCode::Fail | ResultCode::Failed if retry == Some(YesNo::Y) => Outcome::Unknown(UnknownReason::RetryLater),
        ResultCode::Fail | ResultCode::Failed if error == "SYSTEM_ERROR" => {
            Outcome::Unknown(UnknownReason::SystemError { code: error.to_owned() })
        }
        ResultCode::Fail | ResultCode::Failed if error == "TRADE_HAS_SUCCESS" => {
            Outcome::Unknown(UnknownReason::AlreadyProcessed { code: error.to_owned() })
        }
        ResultCode::Fail | ResultCode::Failed => {
            let code = if result == ResultCode::Fail { "FAIL" } else { "FAILED" };
            Outcome::failed(code, (!error.is_empty()).then(|| error.to_owned()), None)
        }
    }
}

/// `alipay.acquire.overseas.spot.pay`: charge the buyer's barcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpotPay {
    pub alipay_seller_id: Partner,
    pub partner_trans_id: OutTradeNo,
    pub buyer_identity_code: AuthCode,
    pub trans_name: Subject,
    /// The amount, in the settlement `currency`.
    pub trans_amount: Amount,
    /// `YYYYMMDDHHMMSS`, see [`crate::time_text::beijing_compact`].
    pub trans_create_time: String,
    pub quantity: Option<u32>,
    pub memo: Option<String>,
    /// JSON with `secondary_merchant_*`, `store_id`, `store_name`, `terminal_id`.
    pub extend_info: Option<String>,
}

impl Service for SpotPay {
    const SERVICE: &'static str = "alipay.acquire.overseas.spot.pay";
    type Answer = SpotPayAnswer;

    fn write_params(&self, p: &mut Params) {
        p.set("alipay_seller_id", self.alipay_seller_id.as_str());
        p.set("partner_trans_id", self.partner_trans_id.as_str());
        p.set("buyer_identity_code", self.buyer_identity_code.as_str());
        p.set("identity_code_type", "barcode");
        p.set("trans_name", self.trans_name.as_str());
        p.set("currency", self.trans_amount.currency().code());
        p.set("trans_amount", self.trans_amount.to_string());
        p.set("trans_create_time", self.trans_create_time.clone());
        p.set("biz_product", "OVERSEAS_MBARCODE_PAY");
        p.set_opt("quantity", self.quantity.map(|q| q.to_string()));
        p.set_opt("memo", self.memo.clone());
        p.set_opt("extend_info", self.extend_info.clone());
    }

    fn classify(answer: &SpotPayAnswer) -> Outcome {
        classify_result(answer.result_code, answer.error.as_deref(), None)
    }
}

#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpotPayAnswer {
    pub result_code: ResultCode,
    pub error: Option<String>,
    pub partner_trans_id: Option<OutTradeNo>,
    pub alipay_trans_id: Option<TradeNo>,
    pub alipay_buyer_login_id: Option<String>,
    pub alipay_buyer_user_id: Option<UserId>,
    pub alipay_pay_time: Option<String>,
    pub currency: Option<Currency>,
    pub trans_amount: Option<Decimal>,
    pub trans_amount_cny: Option<Decimal>,
    pub exchange_rate: Option<Decimal>,
    pub payment_inst: Option<String>,
}

/// `alipay.acquire.overseas.query`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverseasQuery {
    pub partner_trans_id: OutTradeNo,
}

impl Service for OverseasQuery {
    const SERVICE: &'static str = "alipay.acquire.overseas.query";
    type Answer = OverseasQueryAnswer;

    fn write_params(&self, p: &mut Params) {
        p.set("partner_trans_id", self.partner_trans_id.as_str());
    }

    fn classify(answer: &OverseasQueryAnswer) -> Outcome {
        classify_result(answer.result_code, answer.detail_error_code.as_deref(), None)
    }
}

#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverseasQueryAnswer {
    pub result_code: ResultCode,
    pub detail_error_code: Option<String>,
    pub detail_error_des: Option<String>,
    pub alipay_trans_status: Option<TradeStatus>,
    pub partner_trans_id: Option<OutTradeNo>,
    pub out_trade_no: Option<OutTradeNo>,
    pub alipay_trans_id: Option<TradeNo>,
    pub alipay_buyer_login_id: Option<String>,
    pub alipay_buyer_user_id: Option<UserId>,
    pub alipay_pay_time: Option<String>,
    pub currency: Option<Currency>,
    pub trans_amount: Option<Decimal>,
    pub trans_amount_cny: Option<Decimal>,
    pub exchange_rate: Option<Decimal>,
    pub payment_inst: Option<String>,
}

impl OverseasQueryAnswer {
    /// `result_code` and nothing else yet.
    pub fn empty(result_code: ResultCode) -> Self {
        OverseasQueryAnswer {
            result_code,
            detail_error_code: None,
            detail_error_des: None,
            alipay_trans_status: None,
            partner_trans_id: None,
            out_trade_no: None,
            alipay_trans_id: None,
            alipay_buyer_login_id: None,
            alipay_buyer_user_id: None,
            alipay_pay_time: None,
            currency: None,
            trans_amount: None,
            trans_amount_cny: None,
            exchange_rate: None,
            payment_inst: None,
        }
    }

    /// A query of a trade Alipay does not have: `FAIL`, `TRADE_NOT_EXIST`.
    pub fn not_exist() -> Self {
        OverseasQueryAnswer {
            detail_error_code: Some("TRADE_NOT_EXIST".into()),
            detail_error_des: Some("trade does not exist".into()),
            ..OverseasQueryAnswer::empty(ResultCode::Fail)
        }
    }
}

/// `alipay.acquire.cancel`: close an unpaid trade, refund a paid one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquireCancel {
    pub out_trade_no: OutTradeNo,
    /// Unix milliseconds (the HK and global cancel pages).
    pub timestamp: String,
}

impl Service for AcquireCancel {
    const SERVICE: &'static str = "alipay.acquire.cancel";
    type Answer = AcquireCancelAnswer;

    fn write_params(&self, p: &mut Params) {
        p.set("out_trade_no", self.out_trade_no.as_str());
        p.set("timestamp", self.timestamp.clone());
    }

    fn classify(answer: &AcquireCancelAnswer) -> Outcome {
        classify_result(answer.result_code, answer.detail_error_code.as_deref(), answer.retry_flag)
    }
}

#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcquireCancelAnswer {
    pub result_code: ResultCode,
    pub trade_no: Option<TradeNo>,
    pub out_trade_no: Option<OutTradeNo>,
    pub retry_flag: Option<YesNo>,
    pub action: Option<CancelAction>,
    pub detail_error_code: Option<String>,
    pub detail_error_des: Option<String>,
}

/// `alipay.acquire.overseas.spot.refund`: idempotent on `partner_refund_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpotRefund {
    pub partner_trans_id: OutTradeNo,
    pub partner_refund_id: OutRequestNo,
    pub refund_amount: Amount,
    pub refund_reason: Option<String>,
}

impl Service for SpotRefund {
    const SERVICE: &'static str = "alipay.acquire.overseas.spot.refund";
    type Answer = SpotRefundAnswer;

    fn write_params(&self, p: &mut Params) {
        p.set("partner_trans_id", self.partner_trans_id.as_str());
        p.set("partner_refund_id", self.partner_refund_id.as_str());
        p.set("refund_amount", self.refund_amount.to_string());
        p.set("currency", self.refund_amount.currency().code());
        p.set("is_sync", "Y");
        p.set_opt("refund_reason", self.refund_reason.clone());
    }

    fn classify(answer: &SpotRefundAnswer) -> Outcome {
        classify_result(answer.result_code, answer.error.as_deref(), None)
    }
}

#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpotRefundAnswer {
    pub result_code: ResultCode,
    pub error: Option<String>,
    pub partner_trans_id: Option<OutTradeNo>,
    pub alipay_trans_id: Option<TradeNo>,
    pub partner_refund_id: Option<OutRequestNo>,
    pub refund_amount: Option<Decimal>,
    pub currency: Option<Currency>,
    pub exchange_rate: Option<Decimal>,
    pub refund_amount_cny: Option<Decimal>,
}

/// `alipay.acquire.precreate`: an order QR code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcquirePrecreate {
    pub out_trade_no: OutTradeNo,
    pub subject: Subject,
    /// The amount, in `trans_currency`.
    pub total_fee: Amount,
    /// Unix milliseconds.
    pub timestamp: String,
    pub extend_params: Option<String>,
}

impl Service for AcquirePrecreate {
    const SERVICE: &'static str = "alipay.acquire.precreate";
    type Answer = AcquirePrecreateAnswer;

    fn write_params(&self, p: &mut Params) {
        p.set("out_trade_no", self.out_trade_no.as_str());
        p.set("subject", self.subject.as_str());
        p.set("product_code", "OVERSEAS_MBARCODE_PAY");
        p.set("total_fee", self.total_fee.to_string());
        p.set("trans_currency", self.total_fee.currency().code());
        p.set("currency", self.total_fee.currency().code());
        p.set("timestamp", self.timestamp.clone());
        p.set_opt("extend_params", self.extend_params.clone());
    }

    fn classify(answer: &AcquirePrecreateAnswer) -> Outcome {
        classify_result(answer.result_code, answer.detail_error_code.as_deref(), None)
    }
}

#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcquirePrecreateAnswer {
    pub result_code: ResultCode,
    pub trade_no: Option<TradeNo>,
    pub out_trade_no: Option<OutTradeNo>,
    pub qr_code: Option<String>,
    pub voucher_type: Option<String>,
    pub detail_error_code: Option<String>,
    pub detail_error_des: Option<String>,
}

impl SpotRefundAnswer {
    /// A refused refund `partner_refund_id` of `partner_trans_id`: `FAILED` with `error`.
    pub fn failed(partner_trans_id: Option<OutTradeNo>, partner_refund_id: &OutRequestNo, error: &str) -> Self {
        SpotRefundAnswer {
            result_code: ResultCode::Failed,
            error: Some(error.to_owned()),
            partner_trans_id,
            alipay_trans_id: None,
            partner_refund_id: Some(partner_refund_id.clone()),
            refund_amount: None,
            currency: None,
            exchange_rate: None,
            refund_amount_cny: None,
        }
    }
}

impl AcquirePrecreateAnswer {
    /// A refused precreate of `out_trade_no`: `FAIL` with `code`.
    pub fn failed(out_trade_no: &OutTradeNo, code: &str) -> Self {
        AcquirePrecreateAnswer {
            result_code: ResultCode::Fail,
            trade_no: None,
            out_trade_no: Some(out_trade_no.clone()),
            qr_code: None,
            voucher_type: None,
            detail_error_code: Some(code.to_owned()),
            detail_error_des: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapi_results_prove_only_what_they_say() {
        assert_eq!(classify_result(ResultCode::Success, None, None), Outcome::Success);
        assert_eq!(classify_result(ResultCode::Unknow, Some("X"), None), Outcome::Unknown(UnknownReason::BuyerPaying));
        for result in [ResultCode::Unknow, ResultCode::Unknown, ResultCode::Fail, ResultCode::Failed] {
            let outcome = classify_result(result, Some("SYSTEM_ERROR"), None);
            assert!(matches!(outcome, Outcome::Unknown(UnknownReason::SystemError { .. })), "{result:?}");
        }
        let retry = classify_result(ResultCode::Fail, Some("SYSTEM_ERROR"), Some(YesNo::Y));
        assert_eq!(retry, Outcome::Unknown(UnknownReason::RetryLater));
        let failed = classify_result(ResultCode::Failed, Some("BUYER_BALANCE_NOT_ENOUGH"), None);
        assert!(matches!(failed, Outcome::Failed(f) if f.is("BUYER_BALANCE_NOT_ENOUGH")));
    }
}
