//! `POST /v1/qr-orders`: an order QR code (C-scan-B) the customer scans and pays. The trade waits
//! (WAITING) until paid, or until it expires and the reconciler closes it.

use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

use super::calls::{OrderCall, OrderFields, Ordered};
use super::fields::Fields;
use super::payments::{ID_RULE, REF_RULE, SUBJECT_RULE, currency, ready};
use super::{Ctx, Made, lead_or_follow, views, wait_out_paying, with_timing};
use crate::problem::{ApiError, json_response};

pub async fn create(ctx: Ctx, body: &[u8]) -> Result<Response<Full<Bytes>>, ApiError> {
    let allowed =
        ["out_trade_no", "amount", "currency", "subject", "store_id", "terminal_id", "operator_id", "expires_in"];
    let mut fields = Fields::parse(body, &allowed)?;
    let out_trade_no: Option<alipay::OutTradeNo> = fields.required("out_trade_no", ID_RULE);
    let currency = currency(&mut fields, &ctx.tenant);
    let amount = fields.amount("amount", currency);
    let subject = fields.required("subject", SUBJECT_RULE);
    let store_id = fields.optional("store_id", REF_RULE);
    let terminal_id = fields.optional("terminal_id", REF_RULE);
    let operator_id = fields.optional("operator_id", REF_RULE);
    let max = ctx.state.config.qr_expiry.as_secs();
    let expires_in = fields.optional_count("expires_in", &format!("a whole number of seconds from 60 to {max}"));
    if expires_in.is_some_and(|s| !(60..=max).contains(&s)) {
        fields.reject("expires_in", format!("must be from 60 to {max} seconds"));
    }
    fields.finish()?;
    let (Some(out_trade_no), Some(amount), Some(subject)) = (out_trade_no, amount, subject) else {
        return Err(ApiError::Invalid(Vec::new()));
    };
    ready(&ctx.tenant)?;
    let expires_in = Duration::from_secs(expires_in.unwrap_or(max));
    let key = ctx.key(out_trade_no.as_str());
    let order = OrderFields { out_trade_no, amount, subject, store_id, terminal_id, operator_id };
    let call = OrderCall::new(ctx.state.clone(), ctx.tenant.clone(), order, Ordered::Precreate { expires_in });
    let fingerprint = call.fingerprint.clone();
    let Made { done: trade, timing } = lead_or_follow(&ctx, &ctx.state.payments, &key, call).await?;
    if trade.fingerprint != fingerprint {
        return Err(ApiError::Conflict("out_trade_no was used for another order; use a new one".into()));
    }
    let trade = wait_out_paying(&ctx, trade).await?;
    Ok(with_timing(json_response(StatusCode::OK, &views::payment(&trade)), timing))
}
