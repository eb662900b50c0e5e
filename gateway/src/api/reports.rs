//! `GET /v1/reports/sales?from=YYYY-MM-DD&to=YYYY-MM-DD`: per day (at the configured UTC offset)
//! and store, the count, gross, refunds and net of the tenant's paid trades; both days included.
//! Where Alipay's bill of the day is reconciled, each row also carries the day's `fees` and
//! `net_settled` (the bill's payments less its refunds and fees, per Beijing day: what Alipay pays
//! out); elsewhere they are `null`, and `unreconciled_days` lists those days.

use alipay::{Amount, Currency};
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;
use time::{Date, Duration as Days, PrimitiveDateTime, Time};

use super::{Ctx, query_value};
use crate::problem::{ApiError, FieldError, json_response};

/// The longest report span.
const MAX_DAYS: i64 = 366;

fn date(ctx: &Ctx, name: &'static str, errors: &mut Vec<FieldError>) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    match query_value(ctx.query.as_deref(), name).map(|v| Date::parse(v, format)) {
        Some(Ok(day)) => Some(day),
        _ => {
            errors.push(FieldError::new(name, "is required as YYYY-MM-DD"));
            None
        }
    }
}

/// `minor` as a decimal of `currency` (`-0.07` for a fee charged).
fn money(minor: i64, currency: &str) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    match currency.parse::<Currency>() {
        Ok(currency) => Amount::from_minor(minor.unsigned_abs(), currency)
            .map_or_else(|_| minor.to_string(), |a| format!("{sign}{a}")),
        Err(_) => minor.to_string(),
    }
}

pub async fn sales(ctx: Ctx) -> Result<Response<Full<Bytes>>, ApiError> {
    let mut errors = Vec::new();
    let from = date(&ctx, "from", &mut errors);
    let to = date(&ctx, "to", &mut errors);
    let (Some(from), Some(to)) = (from, to) else { return Err(ApiError::Invalid(errors)) };
    if to < from || (to - from).whole_days() >= MAX_DAYS {
        return Err(ApiError::Invalid(vec![FieldError::new(
            "to",
            format!("must be on or after from, at most {MAX_DAYS} days later"),
        )]));
    }
    let offset = ctx.state.report_offset;
    let start = PrimitiveDateTime::new(from, Time::MIDNIGHT).assume_offset(offset);
    let end = PrimitiveDateTime::new(to + Days::days(1), Time::MIDNIGHT).assume_offset(offset);
    let rows = ctx.state.store.sales_report(ctx.tenant.id, start, end, offset).await?;
    let settled = ctx.state.store.settled_report(ctx.tenant.id, &ctx.tenant.alipay_account(), from, to).await?;
    let days: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            let reconciled = settled.reconciled.contains(&row.day);
            let bill = settled
                .rows
                .iter()
                .find(|b| b.day == row.day && b.store_id == row.store_id && b.currency == row.currency);
            let (fees, net_settled) = match (reconciled, bill) {
                (false, _) => (None, None),
                (true, Some(bill)) => (Some(bill.fees_minor), Some(bill.net_settled_minor)),
                (true, None) => (Some(0), Some(0)),
            };
            json!({
                "day": row.day.to_string(),
                "store_id": row.store_id,
                "currency": row.currency,
                "count": row.count,
                "gross": money(row.gross_minor, &row.currency),
                "refunds": money(row.refunds_minor, &row.currency),
                "net": money(row.net_minor, &row.currency),
                "fees": fees.map(|minor| money(minor, &row.currency)),
                "net_settled": net_settled.map(|minor| money(minor, &row.currency)),
            })
        })
        .collect();
    let unreconciled: Vec<String> = (0..=(to - from).whole_days())
        .map(|n| from + Days::days(n))
        .filter(|day| !settled.reconciled.contains(day))
        .map(|day| day.to_string())
        .collect();
    let format = time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]");
    let body = json!({
        "from": from.to_string(),
        "to": to.to_string(),
        "utc_offset": offset.format(format).unwrap_or_default(),
        "days": days,
        "unreconciled_days": unreconciled,
    });
    Ok(json_response(StatusCode::OK, &body))
}
