//! What the reconciler's tests share: waiting for trades to be final, and comparing the ledger
//! with the sandbox's ground truth.

use std::time::Duration;

use ledger::{CancelAction, Trade, TradeState};
use serde_json::Value;
use stack::{Pos, Stack};

/// The time scale these tests run at: design §4's 5 s / 60 s become 500 ms / 6 s.
pub const SCALE: f64 = 0.1;

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

/// The calls the sandbox saw about a trade, by kind.
pub fn calls(truth: &Value, kind: &str) -> Vec<i64> {
    truth["calls"]
        .as_array()
        .map(|calls| calls.iter().filter(|c| c["call"] == kind).filter_map(|c| c["at_ms"].as_i64()).collect())
        .unwrap_or_default()
}

/// A counter's value in a Prometheus text page (summed over its label sets).
pub fn counter(metrics: &str, name: &str, labels: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| line.starts_with(name) && line.contains(labels))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
