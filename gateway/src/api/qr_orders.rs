//! `POST /v1/qr-orders`: an order QR code (C-scan-B) the customer scans and pays. The trade waits
//! (WAITING) until paid, or until it expires and the reconciler closes it.

use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

use super::calls::{OrderFields, Ordered};
use super::fields::Fields;
use super::payments::{ID_RULE, REF_RULE, SUBJECT_RULE, currency, make_order};
use super::{Ctx, Made, views, with_timing};
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
    let expires_in = Duration::from_secs(expires_in.unwrap_or(max));
    let order = OrderFields { out_trade_no, amount, subject, store_id, terminal_id, operator_id };
    let taken = "out_trade_no was used for another order; use a new one";
    let Made { done: trade, timing } = make_order(&ctx, order, Ordered::Precreate { expires_in }, None, taken).await?;
    Ok(with_timing(json_response(StatusCode::OK, &views::payment(&trade)), timing))
}
