//! `POST /v1/payments/{out_trade_no}/refunds`: partial refunds, cumulative never above the paid
//! amount (reserved under the trade's row lock before Alipay is called), idempotent on
//! `out_request_no`, made detached from the POS connection (a hang-up does not stop one).

use alipay::{Amount, OutRequestNo, OutTradeNo};
use aws_lc_rs::digest;
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use ledger::NewRefund;
use tenants::model::Dialect;
use tenants::snapshot::Tenant;
use time::OffsetDateTime;

use super::calls::{RefundCall, Refunded};
use super::fields::Fields;
use super::payments::{ID_RULE, ready};
use super::{Ctx, Made, fingerprint, lead_or_follow, views, with_timing};
use crate::problem::{ApiError, json_response};

pub async fn create(ctx: Ctx, out_trade_no: &str, body: &[u8]) -> Result<Response<Full<Bytes>>, ApiError> {
    ready(&ctx.tenant)?;
    let trade_no: OutTradeNo = out_trade_no.parse().map_err(|_| ApiError::NotFound)?;
    let trade = ctx.state.store.get(&ctx.key(out_trade_no)).await?.ok_or(ApiError::NotFound)?;
    let mut fields = Fields::parse(body, &["out_request_no", "amount", "reason"])?;
    let out_request_no: Option<OutRequestNo> = fields.required("out_request_no", ID_RULE);
    let amount = fields.amount("amount", Some(trade.amount.currency()));
    let reason = fields.text_up_to("reason", 256);
    fields.finish()?;
    let (Some(out_request_no), Some(amount)) = (out_request_no, amount) else {
        return Err(ApiError::Invalid(Vec::new()));
    };
    let Made { done: Refunded { refund, trade }, timing } =
        make_refund(&ctx, trade_no, out_request_no, amount, reason).await?;
    Ok(with_timing(json_response(StatusCode::OK, &views::refund(&refund, &trade)), timing))
}

/// Makes a refund of the trade (or joins an identical one under way here, or repeats one made):
/// the refund and its trade as the call left them. An `out_request_no` used for another refund
/// is a conflict.
pub async fn make_refund(
    ctx: &Ctx,
    trade_no: OutTradeNo,
    out_request_no: OutRequestNo,
    amount: Amount,
    reason: Option<String>,
) -> Result<Made<Refunded>, ApiError> {
    ready(&ctx.tenant)?;
    let key = ctx.key(trade_no.as_str());
    let fingerprint = fingerprint(
        "refund",
        &[
            out_request_no.as_str(),
            &amount.to_string(),
            &amount.currency().to_string(),
            reason.as_deref().unwrap_or(""),
        ],
    );
    let wire_request_no = wire_refund_number(&ctx.tenant, &trade_no, &out_request_no);
    let new = NewRefund {
        key: key.clone(),
        out_request_no: out_request_no.to_string(),
        wire_request_no: wire_request_no.to_string(),
        fingerprint,
        amount,
        reason,
        check_at: OffsetDateTime::now_utc() + ctx.state.config.intent_check_after(),
    };
    let expected = new.fingerprint.clone();
    let call_key = (key, new.out_request_no.clone());
    let call = RefundCall { state: ctx.state.clone(), out_trade_no: trade_no, wire_request_no, new };
    let made = lead_or_follow(ctx, &ctx.state.refunds, &call_key, call).await?;
    if made.done.refund.fingerprint != expected {
        return Err(ApiError::Conflict(REFUND_NUMBER_TAKEN.into()));
    }
    Ok(made)
}

/// The answer to a refund number used before for another refund.
pub const REFUND_NUMBER_TAKEN: &str = "out_request_no was used for another refund; use a new one";

/// The refund's number at Alipay. OpenAPI scopes `out_request_no` to its trade: it goes as the POS
/// gave it. MAPI names a refund by partner + `partner_refund_id` alone (alipay-protocol.md B5, B8),
/// so another trade's refund "R1" (the tenant's own, or another tenant's on the same partner)
/// would be taken for this one: the number sent is the trade number's length in two digits, the
/// trade number, then the refund's (unique per partner, as trade numbers are, and never the
/// trade's own number), or, when that would pass Alipay's 64 characters, `H` and 40 hex digits of
/// their SHA-256.
pub fn wire_refund_number(tenant: &Tenant, out_trade_no: &OutTradeNo, out_request_no: &OutRequestNo) -> OutRequestNo {
    match tenant.dialect {
        Dialect::Openapi => out_request_no.clone(),
        Dialect::Mapi => partner_refund_number(out_trade_no, out_request_no),
    }
}

fn partner_refund_number(out_trade_no: &OutTradeNo, out_request_no: &OutRequestNo) -> OutRequestNo {
    let (trade, refund) = (out_trade_no.as_str(), out_request_no.as_str());
    let readable = format!("{:02}{trade}{refund}", trade.len());
    let wire = if readable.len() <= 64 {
        readable
    } else {
        let digest = digest::digest(&digest::SHA256, format!("{trade}\n{refund}").as_bytes());
        format!("H{}", &hex::encode(digest.as_ref())[..40])
    };
    wire.parse().unwrap_or_else(|_| out_request_no.clone())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn mapi_refund_numbers_name_their_trade_and_never_meet() {
        let number = |trade: &str, refund: &str| {
            partner_refund_number(&trade.parse().unwrap(), &refund.parse().unwrap()).as_str().to_owned()
        };
        assert_eq!(number("T-1", "R1"), "03T-1R1");
        // Where a plain join of the two numbers would meet, the length keeps them apart.
        assert_eq!(number("a-R", "1"), "03a-R1");
        assert_eq!(number("a", "-R1"), "01a-R1");
        let long = "x".repeat(61);
        let hashed = number(&long, "R1");
        assert!(hashed.starts_with('H') && hashed.len() == 41, "{hashed}");
        assert_ne!(hashed, number(&long, "R2"));
    }
}
