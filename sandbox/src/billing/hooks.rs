//! The `/sandbox/bills/...` hooks (listed with the others in [`crate::hooks`]): the bill clock,
//! Global's drop, overrides and dead links.

use std::collections::BTreeMap;

use alipay::time_text::BEIJING;
use alipay::{Amount, Partner};
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::app::{Answer, App};
use crate::billing::calendar::day_is_complete;
use crate::billing::global_drop::drop_day;
use crate::billing::links::MAX_DEAD_AHEAD;
use crate::billing::movements::{MAX_TRADES_PER_FILE, Window, movements};
use crate::billing::overrides::BillOverride;
use crate::hooks::{merchant_named, parse};
use crate::merchants::Dialect;
use crate::trade::Trade;

/// Handles `/sandbox/bills/{rest}`.
pub fn handle(app: &App, method: &Method, rest: &[&str], body: &[u8]) -> Answer {
    match (method, rest) {
        (&Method::GET, ["now"]) => clock(app),
        (&Method::POST, ["now"]) => set_clock(app, body),
        (&Method::POST, ["drop"]) => drop_files(app, body),
        (&Method::POST, ["overrides"]) => set_override(app, body),
        (&Method::DELETE, ["overrides"]) => {
            Answer::json(StatusCode::OK, &json!({ "cleared": app.billing.overrides.clear() }))
        }
        (&Method::POST, ["expire"]) => expire(app, body),
        (&Method::POST, ["cut"]) => cut(app, body),
        (_, ["now" | "drop" | "overrides" | "expire" | "cut"]) => {
            Answer::hook_error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => Answer::hook_error(StatusCode::NOT_FOUND, "no such hook"),
    }
}

fn clock(app: &App) -> Answer {
    let now = app.billing.now().format(&Rfc3339).unwrap_or_default();
    Answer::json(StatusCode::OK, &json!({ "now": now, "set": app.billing.clock_is_set() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockRequest {
    now: Option<String>,
}

fn set_clock(app: &App, body: &[u8]) -> Answer {
    let req: ClockRequest = match parse(body) {
        Ok(req) => req,
        Err(answer) => return answer,
    };
    let now = match req.now.as_deref().map(|text| OffsetDateTime::parse(text, &Rfc3339)).transpose() {
        Ok(now) => now,
        Err(_) => return Answer::hook_error(StatusCode::BAD_REQUEST, "now must be an RFC 3339 time or null"),
    };
    app.billing.set_now(now);
    clock(app)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DropRequest {
    date: String,
    partner: Option<String>,
}

fn drop_files(app: &App, body: &[u8]) -> Answer {
    let req: DropRequest = match parse(body) {
        Ok(req) => req,
        Err(answer) => return answer,
    };
    let Some(dir) = &app.billing.drop_dir else {
        return Answer::hook_error(StatusCode::BAD_REQUEST, "the sandbox has no drop dir (--global-drop-dir)");
    };
    let Ok(alipay::openapi::bill::BillDate::Day(day)) = req.date.parse() else {
        return Answer::hook_error(StatusCode::BAD_REQUEST, "date must be yyyy-MM-dd");
    };
    if let Some(partner) = &req.partner
        && app.merchants.get(partner).is_none_or(|m| m.dialect != Dialect::Mapi)
    {
        return Answer::hook_error(StatusCode::NOT_FOUND, "no mapi merchant with that partner");
    }
    if !day_is_complete(day, app.billing.now()) {
        return Answer::hook_error(
            StatusCode::CONFLICT,
            "the day is not complete by the bill clock (ready from 09:00 the next day, Beijing)",
        );
    }
    let from = day.midnight().assume_offset(BEIJING);
    let window = Window { from, to: from + time::Duration::DAY };
    let trades = app.ledger.select(MAX_TRADES_PER_FILE, |trade| {
        trade.merchant.dialect == Dialect::Mapi
            && req.partner.as_ref().is_none_or(|p| *p == trade.merchant.id)
            && window.touches(trade)
    });
    let mut by_partner: BTreeMap<String, Vec<Trade>> = BTreeMap::new();
    for trade in trades {
        by_partner.entry(trade.merchant.id.clone()).or_default().push(trade);
    }
    let mut files = Vec::new();
    for (partner, trades) in &by_partner {
        let Some(merchant) = trades.first().map(|t| t.merchant.clone()) else { continue };
        let Ok(partner) = partner.parse::<Partner>() else { continue };
        let moved = movements(trades, &app.billing.overrides, window);
        match drop_day(dir, &partner, day, merchant.fee_rate, &moved) {
            Ok(dropped) => files.extend(
                dropped.into_iter().map(|d| json!({ "path": d.path.display().to_string(), "written": d.written })),
            ),
            Err(error) => return Answer::hook_error(StatusCode::INTERNAL_SERVER_ERROR, error),
        }
    }
    Answer::json(StatusCode::OK, &json!({ "files": files }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideRequest {
    app_id: Option<String>,
    partner: Option<String>,
    out_trade_no: String,
    #[serde(default)]
    omit: bool,
    amount: Option<String>,
}

fn set_override(app: &App, body: &[u8]) -> Answer {
    let req: OverrideRequest = match parse(body) {
        Ok(req) => req,
        Err(answer) => return answer,
    };
    let merchant = match merchant_named(app, req.app_id.as_deref(), req.partner.as_deref()) {
        Ok(merchant) => merchant,
        Err(answer) => return answer,
    };
    let Some(trade) = app.ledger.get(&merchant.id, &req.out_trade_no) else {
        return Answer::hook_error(StatusCode::NOT_FOUND, "no such trade");
    };
    let value = match (req.omit, req.amount.as_deref()) {
        (true, None) => BillOverride::Omit,
        (false, Some(text)) => match Amount::parse_positive(text, trade.total.currency()) {
            Ok(amount) => BillOverride::Amount(amount),
            Err(e) => return Answer::hook_error(StatusCode::BAD_REQUEST, e),
        },
        _ => return Answer::hook_error(StatusCode::BAD_REQUEST, "give either \"omit\": true or an \"amount\""),
    };
    match app.billing.overrides.set(&merchant.id, &req.out_trade_no, value) {
        Ok(()) => Answer::json(
            StatusCode::OK,
            &json!({ "out_trade_no": req.out_trade_no, "omit": req.omit, "amount": req.amount }),
        ),
        Err(full) => Answer::hook_error(StatusCode::CONFLICT, full),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpireRequest {
    next: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CutRequest {
    next: u32,
    keep_bytes: usize,
}

fn cut(app: &App, body: &[u8]) -> Answer {
    let req: CutRequest = match parse(body) {
        Ok(req) => req,
        Err(answer) => return answer,
    };
    if req.next > MAX_DEAD_AHEAD {
        return Answer::hook_error(StatusCode::BAD_REQUEST, "next must be at most 1000");
    }
    app.billing.links.cut_next(req.next, req.keep_bytes);
    Answer::json(StatusCode::OK, &json!({ "next": req.next, "keep_bytes": req.keep_bytes }))
}

fn expire(app: &App, body: &[u8]) -> Answer {
    let req: ExpireRequest = match parse(body) {
        Ok(req) => req,
        Err(answer) => return answer,
    };
    if req.next > MAX_DEAD_AHEAD {
        return Answer::hook_error(StatusCode::BAD_REQUEST, "next must be at most 1000");
    }
    app.billing.links.kill_next(req.next);
    Answer::json(StatusCode::OK, &json!({ "next": req.next }))
}
