//! `GET /v1/reports/sales?from=YYYY-MM-DD&to=YYYY-MM-DD`: per day (at the configured UTC offset)
//! and store, the count, gross, refunds and net of the tenant's paid trades; both days included.

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

fn money(minor: i64, currency: &str) -> String {
    let parsed = currency.parse::<Currency>().ok();
    match (parsed, u64::try_from(minor)) {
        (Some(currency), Ok(minor)) => {
            Amount::from_minor(minor, currency).map_or_else(|_| minor.to_string(), |a| a.to_string())
        }
        _ => minor.to_string(),
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
    let days: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            json!({
                "day": row.day.to_string(),
                "store_id": row.store_id,
                "currency": row.currency,
                "count": row.count,
                "gross": money(row.gross_minor, &row.currency),
                "refunds": money(row.refunds_minor, &row.currency),
                "net": money(row.net_minor, &row.currency),
            })
        })
        .collect();
    let format = time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]");
    let body = json!({
        "from": from.to_string(),
        "to": to.to_string(),
        "utc_offset": offset.format(format).unwrap_or_default(),
        "days": days,
    });
    Ok(json_response(StatusCode::OK, &body))
}
