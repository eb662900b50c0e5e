//! One call in either dialect, in neutral terms: what the gateway and the reconciler ask of
//! Alipay for a merchant, whichever dialect the merchant speaks, and what the answer proves.
//!
//! [`build`] signs the request in the merchant's dialect; [`read`] verifies and classifies the
//! answer and lifts out the facts the ledger records. Calls a dialect does not have
//! (MAPI has no close, refund query or oauth) are refused with [`UnifiedError::Unsupported`].

use serde::Serialize;
use time::OffsetDateTime;

use crate::charset::Charset;
use crate::ids::{AppId, AuthCode, MerchantRef, OutRequestNo, OutTradeNo, Partner, Subject};
use crate::mapi;
use crate::mapi::services as mapi_services;
use crate::money::{Amount, Decimal};
use crate::openapi::bill::{BillDate, BillDownloadUrlQuery, BillType};
use crate::openapi::oauth::OauthToken;
use crate::openapi::trade::{self, CancelAction, TradeStatus, YesNo};
use crate::openapi::{self, BuildError, Reply};
use crate::outcome::{Outcome, UnknownReason};
use crate::params::Params;
use crate::sign::{Signer, Verifier};
use crate::time_text::{beijing_compact, beijing_datetime};

/// The merchant's dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Dialect {
    OpenApi,
    Mapi,
}

/// Who is calling: the merchant's identity and key.
#[derive(Debug, Clone, Copy)]
pub struct Merchant<'a> {
    pub dialect: Dialect,
    /// `app_id` (OpenAPI) or `partner` (MAPI).
    pub id: &'a str,
    /// MAPI `alipay_seller_id` when it is not the partner.
    pub seller_id: Option<&'a str>,
    pub signer: &'a Signer,
    pub notify_url: Option<&'a str>,
    /// MAPI `extend_info` (secondary merchant and store), as JSON.
    pub extend_info: Option<&'a str>,
}

/// What is being sold.
#[derive(Debug, Clone, Copy)]
pub struct Order<'a> {
    pub out_trade_no: &'a OutTradeNo,
    pub subject: &'a Subject,
    pub amount: Amount,
    pub store_id: Option<&'a MerchantRef>,
    pub terminal_id: Option<&'a MerchantRef>,
    pub operator_id: Option<&'a MerchantRef>,
}

/// A call, whichever the dialect.
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    Pay {
        order: Order<'a>,
        auth_code: &'a AuthCode,
    },
    Query {
        out_trade_no: &'a OutTradeNo,
    },
    Cancel {
        out_trade_no: &'a OutTradeNo,
    },
    Refund {
        out_trade_no: &'a OutTradeNo,
        out_request_no: &'a OutRequestNo,
        amount: Amount,
        reason: Option<&'a str>,
    },
    RefundQuery {
        out_trade_no: &'a OutTradeNo,
        out_request_no: &'a OutRequestNo,
    },
    /// An order QR code, valid for `timeout_minutes` (Alipay's default when `None`).
    Precreate {
        order: Order<'a>,
        timeout_minutes: Option<u32>,
    },
    Close {
        out_trade_no: &'a OutTradeNo,
    },
    OauthToken {
        code: &'a str,
    },
    /// Where to download a bill (OpenAPI only).
    BillUrl {
        bill_type: BillType,
        bill_date: BillDate,
    },
}

/// Which call an answer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Pay,
    Query,
    Cancel,
    Refund,
    RefundQuery,
    Precreate,
    Close,
    OauthToken,
    BillUrl,
}

impl Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Pay => "pay",
            Kind::Query => "query",
            Kind::Cancel => "cancel",
            Kind::Refund => "refund",
            Kind::RefundQuery => "refund_query",
            Kind::Precreate => "precreate",
            Kind::Close => "close",
            Kind::OauthToken => "oauth_token",
            Kind::BillUrl => "bill_url",
        }
    }
}

impl Request<'_> {
    pub fn kind(&self) -> Kind {
        match self {
            Request::Pay { .. } => Kind::Pay,
            Request::Query { .. } => Kind::Query,
            Request::Cancel { .. } => Kind::Cancel,
            Request::Refund { .. } => Kind::Refund,
            Request::RefundQuery { .. } => Kind::RefundQuery,
            Request::Precreate { .. } => Kind::Precreate,
            Request::Close { .. } => Kind::Close,
            Request::OauthToken { .. } => Kind::OauthToken,
            Request::BillUrl { .. } => Kind::BillUrl,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UnifiedError {
    #[error("the {0:?} dialect has no {1} call")]
    Unsupported(Dialect, &'static str),
    #[error("merchant id `{0}` is not valid for its dialect")]
    MerchantId(String),
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// The request's charset: the services always speak UTF-8.
pub const CHARSET: Charset = Charset::Utf8;

fn openapi_order(order: &Order<'_>) -> trade::TradePrecreate {
    let mut precreate = trade::TradePrecreate::new(order.out_trade_no.clone(), order.subject.clone(), order.amount);
    precreate.store_id = order.store_id.cloned();
    precreate.terminal_id = order.terminal_id.cloned();
    precreate.operator_id = order.operator_id.cloned();
    precreate
}

/// Signs `request` for `merchant` at `now`: the full parameter set to POST to its gateway.
pub fn build(merchant: &Merchant<'_>, request: &Request<'_>, now: OffsetDateTime) -> Result<Params, UnifiedError> {
    match merchant.dialect {
        Dialect::OpenApi => build_openapi(merchant, request, now),
        Dialect::Mapi => build_mapi(merchant, request, now),
    }
}

fn build_openapi(merchant: &Merchant<'_>, request: &Request<'_>, now: OffsetDateTime) -> Result<Params, UnifiedError> {
    let app_id: AppId = merchant.id.parse().map_err(|_| UnifiedError::MerchantId(merchant.id.into()))?;
    let timestamp = beijing_datetime(now);
    let meta = openapi::RequestMeta {
        app_id: &app_id,
        charset: CHARSET,
        timestamp: &timestamp,
        notify_url: merchant.notify_url,
        app_auth_token: None,
    };
    let signer = merchant.signer;
    let reference = |no: &OutTradeNo| trade::TradeRef::from(no.clone());
    Ok(match request {
        Request::Pay { order, auth_code } => {
            let mut pay = trade::TradePay::new(
                order.out_trade_no.clone(),
                (*auth_code).clone(),
                order.subject.clone(),
                order.amount,
            );
            pay.store_id = order.store_id.cloned();
            pay.terminal_id = order.terminal_id.cloned();
            pay.operator_id = order.operator_id.cloned();
            openapi::build_request(&pay, &meta, signer)?
        }
        Request::Query { out_trade_no } => {
            openapi::build_request(&trade::TradeQuery { trade: reference(out_trade_no) }, &meta, signer)?
        }
        Request::Cancel { out_trade_no } => {
            openapi::build_request(&trade::TradeCancel { trade: reference(out_trade_no) }, &meta, signer)?
        }
        Request::Refund { out_trade_no, out_request_no, amount, reason } => {
            let mut refund = trade::TradeRefund::new(reference(out_trade_no), (*out_request_no).clone(), *amount);
            refund.refund_reason = reason.map(str::to_owned);
            openapi::build_request(&refund, &meta, signer)?
        }
        Request::RefundQuery { out_trade_no, out_request_no } => {
            let query =
                trade::RefundQuery { trade: reference(out_trade_no), out_request_no: (*out_request_no).clone() };
            openapi::build_request(&query, &meta, signer)?
        }
        Request::Precreate { order, timeout_minutes } => {
            let mut precreate = openapi_order(order);
            precreate.timeout_express = timeout_minutes.map(|m| format!("{m}m"));
            openapi::build_request(&precreate, &meta, signer)?
        }
        Request::Close { out_trade_no } => openapi::build_request(
            &trade::TradeClose { trade: reference(out_trade_no), operator_id: None },
            &meta,
            signer,
        )?,
        Request::OauthToken { code } => openapi::build_request(&OauthToken::with_code(*code), &meta, signer)?,
        Request::BillUrl { bill_type, bill_date } => openapi::build_request(
            &BillDownloadUrlQuery { bill_type: *bill_type, bill_date: *bill_date },
            &meta,
            signer,
        )?,
    })
}

fn build_mapi(merchant: &Merchant<'_>, request: &Request<'_>, now: OffsetDateTime) -> Result<Params, UnifiedError> {
    let partner: Partner = merchant.id.parse().map_err(|_| UnifiedError::MerchantId(merchant.id.into()))?;
    let seller: Partner =
        merchant.seller_id.unwrap_or(merchant.id).parse().map_err(|_| UnifiedError::MerchantId(merchant.id.into()))?;
    let meta = mapi::RequestMeta { partner: &partner, charset: CHARSET, notify_url: merchant.notify_url };
    let signer = merchant.signer;
    let millis = (now.unix_timestamp_nanos() / 1_000_000).to_string();
    Ok(match request {
        Request::Pay { order, auth_code } => {
            let pay = mapi_services::SpotPay {
                alipay_seller_id: seller,
                partner_trans_id: order.out_trade_no.clone(),
                buyer_identity_code: (*auth_code).clone(),
                trans_name: order.subject.clone(),
                trans_amount: order.amount,
                trans_create_time: beijing_compact(now),
                quantity: None,
                memo: None,
                extend_info: merchant.extend_info.map(str::to_owned),
            };
            mapi::build_request(&pay, &meta, signer)?
        }
        Request::Query { out_trade_no } => mapi::build_request(
            &mapi_services::OverseasQuery { partner_trans_id: (*out_trade_no).clone() },
            &meta,
            signer,
        )?,
        Request::Cancel { out_trade_no } => {
            let cancel = mapi_services::AcquireCancel { out_trade_no: (*out_trade_no).clone(), timestamp: millis };
            mapi::build_request(&cancel, &meta, signer)?
        }
        Request::Refund { out_trade_no, out_request_no, amount, reason } => {
            let refund = mapi_services::SpotRefund {
                partner_trans_id: (*out_trade_no).clone(),
                partner_refund_id: (*out_request_no).clone(),
                refund_amount: *amount,
                refund_reason: reason.map(str::to_owned),
            };
            mapi::build_request(&refund, &meta, signer)?
        }
        Request::Precreate { order, .. } => {
            let precreate = mapi_services::AcquirePrecreate {
                out_trade_no: order.out_trade_no.clone(),
                subject: order.subject.clone(),
                total_fee: order.amount,
                timestamp: millis,
                extend_params: merchant.extend_info.map(str::to_owned),
            };
            mapi::build_request(&precreate, &meta, signer)?
        }
        Request::RefundQuery { .. } => return Err(UnifiedError::Unsupported(Dialect::Mapi, "refund query")),
        Request::Close { .. } => return Err(UnifiedError::Unsupported(Dialect::Mapi, "close")),
        Request::OauthToken { .. } => return Err(UnifiedError::Unsupported(Dialect::Mapi, "oauth token")),
        Request::BillUrl { .. } => return Err(UnifiedError::Unsupported(Dialect::Mapi, "bill download URL")),
    })
}

/// What an answer proves, and the facts the ledger records from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub outcome: Outcome,
    /// Present only when the answer was trusted (verified, or a gateway-level rejection).
    pub facts: Facts,
}

/// The fields of a trusted answer, whichever the dialect.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    pub out_trade_no: Option<String>,
    pub trade_no: Option<String>,
    pub trade_status: Option<TradeStatus>,
    /// The trade's total, as Alipay states it.
    pub total: Option<Decimal>,
    pub buyer_user_id: Option<String>,
    pub retry_flag: Option<YesNo>,
    pub action: Option<CancelAction>,
    pub qr_code: Option<String>,
    /// Refunded so far on the trade (OpenAPI refund).
    pub refund_fee: Option<Decimal>,
    /// This refund's amount (MAPI refund, refund query).
    pub refund_amount: Option<Decimal>,
    /// `REFUND_SUCCESS` when a refund query found it done.
    pub refund_status: Option<String>,
    pub user_id: Option<String>,
    pub access_token: Option<String>,
    pub expires_in: Option<u64>,
    /// Where the bill asked for can be downloaded (for 30 s).
    pub bill_download_url: Option<String>,
    /// When the money moved, Beijing time (`yyyy-MM-dd HH:mm:ss`): a query's `send_pay_date`,
    /// a refund query's `gmt_refund_pay`. The day of Alipay's bill that holds it.
    pub moved_at: Option<String>,
}

impl Answer {
    /// An answer that proves nothing (transport failures: timeout, connection, HTTP status).
    pub fn unknown(reason: UnknownReason) -> Self {
        Answer { outcome: Outcome::Unknown(reason), facts: Facts::default() }
    }
}

fn lift<A>(reply: Reply<A>, facts: impl FnOnce(&A, &mut Facts)) -> Answer {
    let mut out = Facts::default();
    if let Some(inner) = &reply.answer {
        facts(inner, &mut out);
    }
    Answer { outcome: reply.outcome, facts: out }
}

fn text(value: &Option<impl ToString>) -> Option<String> {
    value.as_ref().map(ToString::to_string)
}

/// Verifies and classifies an answer body to a `kind` call made in `dialect`.
pub fn read(dialect: Dialect, kind: Kind, body: &[u8], verifier: &Verifier) -> Answer {
    match dialect {
        Dialect::OpenApi => read_openapi(kind, body, verifier),
        Dialect::Mapi => read_mapi(kind, body, verifier),
    }
}

fn read_openapi(kind: Kind, body: &[u8], verifier: &Verifier) -> Answer {
    use openapi::read_reply;
    match kind {
        Kind::Pay => lift(read_reply::<trade::TradePay>(body, CHARSET, verifier), |a, out| {
            out.out_trade_no = text(&a.out_trade_no);
            out.trade_no = text(&a.trade_no);
            out.total = a.total_amount;
            out.buyer_user_id = text(&a.buyer_user_id);
        }),
        Kind::Query => lift(read_reply::<trade::TradeQuery>(body, CHARSET, verifier), |a, out| {
            out.out_trade_no = text(&a.out_trade_no);
            out.trade_no = text(&a.trade_no);
            out.trade_status = a.trade_status;
            out.total = a.total_amount;
            out.buyer_user_id = text(&a.buyer_user_id);
            out.moved_at = a.send_pay_date.clone();
        }),
        Kind::Cancel => lift(read_reply::<trade::TradeCancel>(body, CHARSET, verifier), |a, out| {
            out.out_trade_no = text(&a.out_trade_no);
            out.trade_no = text(&a.trade_no);
            out.retry_flag = a.retry_flag;
            out.action = a.action;
        }),
        Kind::Refund => lift(read_reply::<trade::TradeRefund>(body, CHARSET, verifier), |a, out| {
            out.out_trade_no = text(&a.out_trade_no);
            out.trade_no = text(&a.trade_no);
            out.refund_fee = a.refund_fee;
        }),
        Kind::RefundQuery => lift(read_reply::<trade::RefundQuery>(body, CHARSET, verifier), |a, out| {
            out.out_trade_no = text(&a.out_trade_no);
            out.refund_amount = a.refund_amount;
            out.refund_status = a.refund_status.clone();
            out.moved_at = a.gmt_refund_pay.clone();
        }),
        Kind::Precreate => lift(read_reply::<trade::TradePrecreate>(body, CHARSET, verifier), |a, out| {
            out.out_trade_no = text(&a.out_trade_no);
            out.qr_code = a.qr_code.clone();
        }),
        Kind::Close => lift(read_reply::<trade::TradeClose>(body, CHARSET, verifier), |a, out| {
            out.out_trade_no = text(&a.out_trade_no);
            out.trade_no = text(&a.trade_no);
        }),
        Kind::OauthToken => lift(read_reply::<OauthToken>(body, CHARSET, verifier), |a, out| {
            out.user_id = text(&a.user_id).or_else(|| a.open_id.clone());
            out.access_token = a.access_token.clone();
            out.expires_in = a.expires_in;
        }),
        Kind::BillUrl => lift(read_reply::<BillDownloadUrlQuery>(body, CHARSET, verifier), |a, out| {
            out.bill_download_url = a.bill_download_url.clone();
        }),
    }
}

fn read_mapi(kind: Kind, body: &[u8], verifier: &Verifier) -> Answer {
    use mapi::read_reply;
    use mapi_services::*;
    match kind {
        Kind::Pay => lift(read_reply::<SpotPay>(body, CHARSET, verifier), |a, out| {
            out.out_trade_no = text(&a.partner_trans_id);
            out.trade_no = text(&a.alipay_trans_id);
            out.total = a.trans_amount;
            out.buyer_user_id = text(&a.alipay_buyer_user_id);
        }),
        Kind::Query => lift(read_reply::<OverseasQuery>(body, CHARSET, verifier), |a, out| {
            out.out_trade_no = text(&a.partner_trans_id).or_else(|| text(&a.out_trade_no));
            out.trade_no = text(&a.alipay_trans_id);
            out.trade_status = a.alipay_trans_status;
            out.total = a.trans_amount;
            out.buyer_user_id = text(&a.alipay_buyer_user_id);
        }),
        Kind::Cancel => lift(read_reply::<AcquireCancel>(body, CHARSET, verifier), |a, out| {
            out.out_trade_no = text(&a.out_trade_no);
            out.trade_no = text(&a.trade_no);
            out.retry_flag = a.retry_flag;
            out.action = a.action;
        }),
        Kind::Refund => lift(read_reply::<SpotRefund>(body, CHARSET, verifier), |a, out| {
            out.out_trade_no = text(&a.partner_trans_id);
            out.trade_no = text(&a.alipay_trans_id);
            out.refund_amount = a.refund_amount;
        }),
        Kind::Precreate => lift(read_reply::<AcquirePrecreate>(body, CHARSET, verifier), |a, out| {
            out.out_trade_no = text(&a.out_trade_no);
            out.trade_no = text(&a.trade_no);
            out.qr_code = a.qr_code.clone();
        }),
        Kind::RefundQuery | Kind::Close | Kind::OauthToken | Kind::BillUrl => {
            Answer::unknown(UnknownReason::Unreadable)
        }
    }
}
