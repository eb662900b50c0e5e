//! Alipay's asynchronous notifications owed to front-door POS software: a front-door trade that
//! carried a `notify_url` is paid (by whichever writer), and the ledger queues an `alipay.notify`
//! event in the same transaction. It goes out through the webhook worker (the same outbox, lease,
//! attempt records and URL policy) as the form Alipay would post (alipay-protocol.md A7), signed
//! with the tenant's front-door key, and counts as delivered only when the POS answers the body
//! `success`, as Alipay's does; `notify_id` stays the same across retries.

use alipay::money::Amount;
use alipay::notify::sign_notification;
use alipay::time_text::beijing_datetime;
use alipay::{Charset, Currency, Decimal, Params};
use ledger::store::Delivery;
use serde::Deserialize;
use tenants::model::Dialect;
use tenants::snapshot::Tenant;
use time::OffsetDateTime;

/// The outbox event of a notification owed to a POS.
pub const EVENT: &str = "alipay.notify";

/// What the ledger queued (the paid trade's facts and where to send them).
#[derive(Debug, Deserialize)]
struct Queued {
    notify_url: String,
    trade_status: String,
    trade_no: Option<String>,
    out_trade_no: String,
    buyer_user_id: Option<String>,
    currency: String,
    amount_minor: u64,
    subject: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    paid_at: Option<OffsetDateTime>,
}

/// A notification ready to post.
pub struct Form {
    pub url: String,
    pub body: String,
}

/// Why a notification cannot be sent (the delivery is abandoned and says why).
pub fn form(tenant: &Tenant, delivery: &Delivery, now: OffsetDateTime) -> Result<Form, &'static str> {
    let front_door = tenant.front_door.as_ref().ok_or("the tenant's front door is disabled")?;
    let signer = front_door.signer(now).ok_or("the front door has no signing key")?;
    let queued: Queued =
        serde_json::from_value(delivery.payload.clone()).map_err(|_| "the queued notification is unreadable")?;
    let currency: Currency = queued.currency.parse().map_err(|_| "the queued currency is unreadable")?;
    let amount = Amount::from_minor(queued.amount_minor, currency).map_err(|_| "the queued amount is unreadable")?;
    let amount = Decimal::from(amount).to_string();
    let mut params = Params::new();
    params.set("notify_time", beijing_datetime(now));
    params.set("notify_type", "trade_status_sync");
    params.set("notify_id", format!("acq{:029}", delivery.id));
    params.set_opt("trade_no", queued.trade_no);
    params.set("out_trade_no", queued.out_trade_no);
    params.set_opt("buyer_id", queued.buyer_user_id);
    params.set("trade_status", queued.trade_status);
    params.set("subject", queued.subject);
    params.set("gmt_create", beijing_datetime(queued.created_at));
    params.set_opt("gmt_payment", queued.paid_at.map(beijing_datetime));
    match tenant.dialect {
        Dialect::Openapi => {
            params.set("app_id", front_door.id.as_str());
            params.set("charset", Charset::Utf8.label());
            params.set("version", "1.0");
            params.set("total_amount", amount.as_str());
            params.set("receipt_amount", amount.as_str());
            params.set("buyer_pay_amount", amount.as_str());
            params.set("invoice_amount", amount.as_str());
            if currency != Currency::CNY {
                params.set("trans_currency", currency.code());
            }
        }
        // Global (alipay-protocol.md B7): the partner as seller, the fee and its currency.
        Dialect::Mapi => {
            params.set("notify_action_type", "payByAccountAction");
            params.set("seller_id", front_door.id.as_str());
            params.set("total_fee", amount.as_str());
            params.set("currency", currency.code());
            params.set_opt("alipay_pay_time", queued.paid_at.map(alipay::time_text::beijing_compact));
        }
    }
    sign_notification(&mut params, signer, Charset::Utf8).map_err(|_| "the notification could not be signed")?;
    let body = params.to_form(Charset::Utf8).map_err(|_| "the notification could not be written")?;
    Ok(Form { url: queued.notify_url, body })
}
