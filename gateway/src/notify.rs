//! `POST /notify/{tenant}`: Alipay's asynchronous notifications. Verified with that tenant's
//! Alipay key, checked against the tenant (app id or seller) and the ledger (amount), applied
//! once, and answered `success` only after the commit (`fail` otherwise, so Alipay retries).

use alipay::notify::{Notification, verify_notification};
use alipay::time_text::parse_beijing_datetime;
use alipay::{Amount, Currency};
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use ledger::TradeKey;
use ledger::store::{NotificationOutcome, NotifiedPayment, NotifiedStatus};
use tenants::model::Dialect;
use tenants::snapshot::Tenant;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::state::AppState;

fn reply(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

fn counted(result: &'static str) {
    metrics::counter!("gateway_notifications_total", "result" => result).increment(1);
}

/// The facts of a notification for `tenant` (`account_shared`: other tenants share its Alipay
/// account), or why it does not belong to it.
fn facts(tenant: &Tenant, account_shared: bool, note: &Notification) -> Result<NotifiedPayment, &'static str> {
    let field = |name: &str| note.get(name).filter(|v| !v.is_empty());
    let (owner_ok, amount_text, currency) = match tenant.dialect {
        Dialect::Openapi => (
            field("app_id") == Some(tenant.alipay_id.as_str()),
            field("total_amount"),
            field("trans_currency").map_or(Ok(Currency::CNY), str::parse),
        ),
        // Alipay's platform key signs every Global merchant's notifications: only one naming
        // the tenant as its seller is about the tenant.
        Dialect::Mapi => {
            let seller = tenant.seller_id.as_deref().unwrap_or(&tenant.alipay_id);
            (
                field("seller_id").is_some_and(|s| s == seller || s == tenant.alipay_id),
                field("total_fee"),
                field("currency").ok_or(alipay::MoneyError::UnknownCurrency).and_then(str::parse),
            )
        }
    };
    if !owner_ok {
        return Err("it is for another merchant");
    }
    let currency = currency.map_err(|_| "its currency is not one Alipay settles in")?;
    let amount = amount_text
        .and_then(|text| text.parse::<alipay::Decimal>().ok())
        .and_then(|d| d.to_amount(currency).ok())
        .filter(|a: &Amount| !a.is_zero())
        .ok_or("its amount is missing or malformed")?;
    let notify_id = field("notify_id").filter(|id| id.len() <= 128).ok_or("it has no notify_id")?;
    let out_trade_no = field("out_trade_no")
        .filter(|no| no.parse::<alipay::OutTradeNo>().is_ok())
        .ok_or("it has no valid out_trade_no")?;
    let status = match field("trade_status").ok_or("it has no trade_status")? {
        "TRADE_SUCCESS" | "TRADE_FINISHED" => NotifiedStatus::Paid {
            trade_no: field("trade_no").map(str::to_owned),
            buyer_user_id: field("buyer_id").or(field("buyer_user_id")).map(str::to_owned),
            paid_at: field("gmt_payment").and_then(parse_beijing_datetime).unwrap_or_else(OffsetDateTime::now_utc),
        },
        // Closed after it was paid (a cancel reversed the payment): it carries the payment time
        // and the refunded sum.
        "TRADE_CLOSED" => NotifiedStatus::Closed {
            refunded: field("gmt_payment").is_some()
                || field("refund_fee")
                    .and_then(|fee| fee.parse::<alipay::Decimal>().ok()?.to_amount(currency).ok())
                    .is_some_and(|fee| !fee.is_zero()),
        },
        other => NotifiedStatus::Other(other.chars().take(32).collect()),
    };
    Ok(NotifiedPayment {
        tenant_id: tenant.id,
        notify_id: notify_id.to_owned(),
        out_trade_no: out_trade_no.to_owned(),
        status,
        amount,
        subject: field("subject").map(|s| s.chars().take(256).collect()),
        alipay_account: tenant.alipay_account(),
        account_shared,
    })
}

pub async fn receive(state: &AppState, tenant_id: &str, body: &[u8]) -> Response<Full<Bytes>> {
    let snapshot = state.snapshots.current();
    let Some(tenant) = tenant_id.parse::<Uuid>().ok().and_then(|id| snapshot.by_id(&id).cloned()) else {
        counted("unknown_tenant");
        return reply(StatusCode::NOT_FOUND, "fail");
    };
    let Some(verifier) = &tenant.alipay_verifier else {
        counted("tenant_not_ready");
        return reply(StatusCode::SERVICE_UNAVAILABLE, "fail");
    };
    let charset_field = if tenant.dialect == Dialect::Mapi { "_input_charset" } else { "charset" };
    let note = match verify_notification(body, charset_field, verifier) {
        Ok(note) => note,
        Err(error) => {
            counted("refused_signature");
            tracing::warn!(tenant = %tenant.slug, %error, "notification refused");
            return reply(StatusCode::BAD_REQUEST, "fail");
        }
    };
    let payment = match facts(&tenant, snapshot.shares_account(&tenant), &note) {
        Ok(payment) => payment,
        Err(why) => {
            counted("refused_content");
            tracing::warn!(tenant = %tenant.slug, why, "notification refused");
            return reply(StatusCode::BAD_REQUEST, "fail");
        }
    };
    match state.store.apply_notification(&payment).await {
        Ok(NotificationOutcome::Refused(why)) => {
            counted("refused_ledger");
            tracing::error!(tenant = %tenant.slug, trade = %payment.out_trade_no, %why, "notification contradicts the ledger");
            reply(StatusCode::CONFLICT, "fail")
        }
        Ok(outcome) => {
            let key = TradeKey::new(tenant.id, payment.out_trade_no.clone());
            if let NotificationOutcome::Applied(trade) | NotificationOutcome::Created(trade) = &outcome {
                state.announce_final(&trade.key);
                if trade.state.is_final()
                    && let Err(error) = state.due_index.disarm(&key).await
                {
                    tracing::debug!(%error, "due-index not disarmed; the reconciler will find the trade final");
                }
            }
            counted(match outcome {
                NotificationOutcome::Applied(_) => "applied",
                NotificationOutcome::Created(_) => "created",
                _ => "already_known",
            });
            reply(StatusCode::OK, "success")
        }
        Err(error) => {
            counted("error");
            tracing::error!(%error, "notification not recorded; Alipay will retry");
            reply(StatusCode::SERVICE_UNAVAILABLE, "fail")
        }
    }
}
