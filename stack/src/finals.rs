//! Waiting for trades to be final, and holding a final trade to Alipay's (the sandbox's) ground
//! truth: invariant I4 of the reliability suite.

use std::time::Duration;

use ledger::{CancelAction, Trade, TradeState};
use serde_json::Value;

use crate::{Pos, Stack};

/// Waits (through the partner API's `?wait=`) until the trade is final; answers its ledger row.
pub async fn final_trade(stack: &Stack, pos: &Pos, out_trade_no: &str, within: Duration) -> Trade {
    let give_up = tokio::time::Instant::now() + within;
    loop {
        let (status, body) = pos.get(out_trade_no, 10).await;
        assert_eq!(status, 200, "{body}");
        let trade = stack.ledger(pos, out_trade_no).await.unwrap();
        if trade.state.is_final() {
            return trade;
        }
        assert!(tokio::time::Instant::now() < give_up, "{out_trade_no} still {} ({body})", trade.state);
    }
}

/// What Alipay's ground truth must be for a ledger's final trade.
pub fn agrees_with_alipay(trade: &Trade, truth: Option<&Value>) -> Result<(), String> {
    let status = truth.and_then(|t| t["trade_status"].as_str());
    let refunded = truth.and_then(|t| t["refunded_amount"].as_str());
    let ok = match (trade.state, trade.cancel_action) {
        (TradeState::Success, _) => status == Some("TRADE_SUCCESS") && refunded == Some("0.00"),
        (TradeState::PartiallyRefunded, _) => {
            status == Some("TRADE_SUCCESS") && refunded == Some(trade.refunded.to_string().as_str())
        }
        // A full refund closes the trade at Alipay.
        (TradeState::Refunded, _) => {
            status == Some("TRADE_CLOSED") && refunded == Some(trade.amount.to_string().as_str())
        }
        (TradeState::Cancelled, Some(CancelAction::Refund)) => {
            status == Some("TRADE_CLOSED") && refunded == Some(trade.amount.to_string().as_str())
        }
        // Closed unpaid: Alipay has no trade, or a closed one nobody paid.
        (TradeState::Cancelled | TradeState::Failed, _) => {
            truth.is_none() || (status == Some("TRADE_CLOSED") && refunded == Some("0.00"))
        }
        _ => false,
    };
    if ok { Ok(()) } else { Err(format!("ledger {} {:?}, Alipay {truth:?}", trade.state, trade.cancel_action)) }
}

/// Invariants I1–I4 for one trade once the faults are over: waits until it is final, then checks
/// that Alipay was asked to pay it at most once, that what its POS last heard (`told`: SUCCESS,
/// FAILED or UNKNOWN, if anything) is what the ledger holds, that it became final within
/// `deadline` of its creation, and that Alipay agrees. Answers the final trade.
pub async fn invariants_hold(
    stack: &Stack,
    pos: &Pos,
    out_trade_no: &str,
    told: Option<&str>,
    deadline: Duration,
) -> Result<Trade, String> {
    let trade = final_trade(stack, pos, out_trade_no, Duration::from_secs(30)).await;
    let (_, now) = pos.get(out_trade_no, 0).await;
    let held = now["status"].as_str().unwrap_or_default();
    if let Some(told) = told
        && told != "UNKNOWN"
        && told != held
    {
        return Err(format!("I2: {out_trade_no} was told {told}; the ledger holds {held}"));
    }
    let took = trade.updated_at - trade.created_at;
    let truth = stack.truth(pos, out_trade_no).await;
    let pay_calls = truth.as_ref().map_or(0, |t| calls_of(t, "pay"));
    if pay_calls > 1 {
        return Err(format!("I1: Alipay was asked to pay {out_trade_no} {pay_calls} times"));
    }
    if took > deadline {
        // Alipay's calls, in ms after the trade's creation, tell where the time went.
        let created_ms = trade.created_at.unix_timestamp_nanos() / 1_000_000;
        let calls: Vec<String> = truth
            .as_ref()
            .and_then(|t| t["calls"].as_array())
            .into_iter()
            .flatten()
            .map(|c| format!("{} +{}", c["call"], i128::from(c["at_ms"].as_i64().unwrap_or(0)) - created_ms))
            .collect();
        let scenario = truth.as_ref().map(|t| t["scenario"].clone());
        return Err(format!(
            "I3: {out_trade_no} (created at {created_ms} ms) became final ({} {:?}) {took} after its creation; \
             Alipay: scenario {scenario:?}, calls (ms) {calls:?}",
            trade.state, trade.cancel_action
        ));
    }
    agrees_with_alipay(&trade, truth.as_ref()).map_err(|e| format!("I4: {out_trade_no}: {e}"))?;
    Ok(trade)
}

/// How many calls of `kind` (`pay`, `query`, `cancel`, …) Alipay's ground truth lists for a trade.
pub fn calls_of(truth: &Value, kind: &str) -> usize {
    truth["calls"].as_array().map_or(0, |calls| calls.iter().filter(|c| c["call"] == kind).count())
}
