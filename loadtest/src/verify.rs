//! After a run: every payment's answer compared with the ledger's final state and Alipay's
//! (the sandbox's) ground truth, once the reconciler has settled what was UNKNOWN.
//!
//! For each payment: the money Alipay holds (paid, minus refunded) must equal the money the
//! ledger says the merchant kept; more at Alipay is a buyer charged for a meal the merchant's
//! records do not show (counted as a double charge), less is a mismatch. What the POS heard must
//! hold too: SUCCESS ends paid (or cancelled by a cancel the POS sent), FAILED ends
//! with no money taken. A trade the ledger still has open when waiting ends is non-final.

use std::time::{Duration, Instant};

use alipay::{Amount, Currency};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ledger::{Store, Trade, TradeKey, TradeState};
use serde::Deserialize;

use crate::recorder::SentTrade;
use crate::report::Verification;
use crate::tenants_file::PosTenant;

/// Where the truth is, and how long to wait for open trades to settle.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub database_url: String,
    pub sandbox_url: String,
    pub wait: Duration,
}

/// Examples kept at most.
const EXAMPLES: usize = 20;
/// Ledger rows read per statement, and sandbox reads in flight.
const CHUNK: usize = 1_000;
const PARALLEL: usize = 32;

#[derive(Debug, Deserialize)]
struct Truth {
    trade_status: String,
    total_amount: String,
    refunded_amount: String,
    currency: String,
}

/// Checks `trades` (made as `tenants`).
pub async fn verify(
    tenants: &[PosTenant],
    trades: &[SentTrade],
    options: &VerifyOptions,
) -> anyhow::Result<Verification> {
    let pool = tenants::db::pool(&options.database_url, 4)?;
    let store = Store::new(pool);
    let mut keys = Vec::with_capacity(trades.len());
    for trade in trades {
        let tenant = &tenants[trade.tenant];
        let id = tenant.tenant_id.ok_or_else(|| {
            anyhow::anyhow!("tenant {} has no tenant_id in the tenants file; verification needs it", tenant.slug)
        })?;
        keys.push(TradeKey::new(id, trade.out_trade_no.clone()));
    }
    let rows = settled_rows(&store, &keys, options.wait).await?;
    let truths = truths(tenants, trades, &options.sandbox_url).await;
    let mut verification = Verification { checked: trades.len() as u64, ..Verification::default() };
    for ((trade, row), truth) in trades.iter().zip(rows).zip(truths) {
        let problem = match truth {
            Ok(truth) => judge(trade, row.as_ref(), truth.as_ref(), &mut verification),
            Err(error) => {
                verification.mismatches += 1;
                Some(format!("Alipay's record could not be read: {error}"))
            }
        };
        if let Some(problem) = problem
            && verification.examples.len() < EXAMPLES
        {
            verification.examples.push(format!("{} ({}): {problem}", trade.out_trade_no, tenants[trade.tenant].slug));
        }
    }
    Ok(verification)
}

/// The ledger's rows of `keys` (in order), re-read until none is open or `wait` has passed.
async fn settled_rows(store: &Store, keys: &[TradeKey], wait: Duration) -> anyhow::Result<Vec<Option<Trade>>> {
    let until = Instant::now() + wait;
    loop {
        let mut rows = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(CHUNK) {
            let mut found: std::collections::HashMap<TradeKey, Trade> =
                store.get_many(chunk).await?.into_iter().map(|t| (t.key.clone(), t)).collect();
            rows.extend(chunk.iter().map(|key| found.remove(key)));
        }
        let open = rows.iter().flatten().filter(|t| t.is_open()).count();
        if open == 0 || Instant::now() >= until {
            return Ok(rows);
        }
        tracing::info!(open, "waiting for the reconciler to settle open trades");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Alipay's record of a trade: `None` when Alipay has no such trade; an error when it could not be
/// read (which is never taken for "no such trade").
type Read = Result<Option<Truth>, String>;

/// The sandbox's ground truth for each trade.
async fn truths(tenants: &[PosTenant], trades: &[SentTrade], sandbox: &str) -> Vec<Read> {
    let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let base = sandbox.trim_end_matches('/');
    let mut out = Vec::with_capacity(trades.len());
    for chunk in trades.chunks(PARALLEL) {
        let mut reads = tokio::task::JoinSet::new();
        for (i, trade) in chunk.iter().enumerate() {
            let url = format!("{base}/sandbox/trades/{}/{}", tenants[trade.tenant].app_id, trade.out_trade_no);
            let client = client.clone();
            reads.spawn(async move { (i, truth(&client, &url).await) });
        }
        let mut answers: Vec<Read> = chunk.iter().map(|_| Err("not read".to_owned())).collect();
        for (i, answer) in reads.join_all().await {
            answers[i] = answer;
        }
        out.extend(answers);
    }
    out
}

/// How many times one trade's record is asked for before it counts as unreadable.
const READ_ATTEMPTS: u32 = 5;

/// One trade's record: 404 is "no such trade"; anything else short of a readable 200 (a refused
/// connection, a 5xx, a cut body) is asked again, a little later, a few times.
async fn truth(client: &Client<HttpConnector, Empty<Bytes>>, url: &str) -> Read {
    let uri: http::Uri = url.parse().map_err(|_| format!("{url} is not a URL"))?;
    let mut last = String::new();
    for attempt in 0..READ_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
        let response = match client.get(uri.clone()).await {
            Ok(response) => response,
            Err(error) => {
                last = format!("connection: {error}");
                continue;
            }
        };
        match response.status().as_u16() {
            404 => return Ok(None),
            200 => {}
            status => {
                last = format!("HTTP {status}");
                continue;
            }
        }
        match response.into_body().collect().await.map(|b| serde_json::from_slice::<Truth>(&b.to_bytes())) {
            Ok(Ok(truth)) => return Ok(Some(truth)),
            Ok(Err(error)) => last = format!("unreadable record: {error}"),
            Err(error) => last = format!("body: {error}"),
        }
    }
    Err(last)
}

/// Money Alipay holds for the trade, in minor units.
fn held_at_alipay(truth: Option<&Truth>) -> Option<u64> {
    let Some(truth) = truth else { return Some(0) };
    if !matches!(truth.trade_status.as_str(), "TRADE_SUCCESS" | "TRADE_FINISHED") {
        return Some(0);
    }
    let currency: Currency = truth.currency.parse().ok()?;
    let total = Amount::parse(&truth.total_amount, currency).ok()?.minor();
    let refunded = Amount::parse(&truth.refunded_amount, currency).ok()?.minor();
    Some(total.saturating_sub(refunded))
}

/// Money the ledger says the merchant kept, in minor units.
fn kept_in_ledger(trade: &Trade) -> u64 {
    match trade.state {
        TradeState::Success | TradeState::PartiallyRefunded | TradeState::Refunded => {
            trade.amount.minor().saturating_sub(trade.refunded.minor())
        }
        _ => 0,
    }
}

/// Counts what is wrong with one trade; answers a description of it.
fn judge(sent: &SentTrade, row: Option<&Trade>, truth: Option<&Truth>, v: &mut Verification) -> Option<String> {
    let Some(row) = row else {
        // Nothing recorded: right for a call refused before any write (4xx), and for one whose
        // answer was lost (timeout, 5xx) as long as Alipay took no money either.
        let refused = sent.heard.starts_with('4');
        let answered = matches!(sent.heard.as_str(), "SUCCESS" | "FAILED" | "UNKNOWN" | "WAITING");
        if answered {
            v.mismatches += 1;
            return Some(format!("the POS heard {} but the ledger has no such trade", sent.heard));
        }
        if !refused && held_at_alipay(truth) != Some(0) {
            v.double_charges += 1;
            return Some(format!("the POS heard {}, the ledger has no trade, and Alipay took money", sent.heard));
        }
        return None;
    };
    if row.is_open() {
        v.non_final += 1;
        let pending = if row.state.is_final() { " with its cancel still reversing it" } else { "" };
        return Some(format!("still {}{pending} in the ledger", row.state));
    }
    let Some(held) = held_at_alipay(truth) else {
        v.mismatches += 1;
        return Some("Alipay's record could not be read".into());
    };
    let kept = kept_in_ledger(row);
    if held > kept {
        v.double_charges += 1;
        return Some(format!("Alipay holds {held} (minor units), the ledger ({}) shows {kept}", row.state));
    }
    if held < kept {
        v.mismatches += 1;
        return Some(format!("the ledger ({}) shows {kept} (minor units), Alipay holds {held}", row.state));
    }
    let heard_ok = match sent.heard.as_str() {
        "SUCCESS" => {
            row.state.is_paid()
                || row.state == TradeState::Refunded
                || (row.state == TradeState::Cancelled && sent.cancelled)
        }
        "FAILED" => !row.state.is_paid() && held == 0,
        _ => true,
    };
    if !heard_ok {
        v.mismatches += 1;
        return Some(format!("the POS heard {} and the trade ended {}", sent.heard, row.state));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(heard: &str) -> SentTrade {
        SentTrade { tenant: 0, out_trade_no: "t1".into(), heard: heard.into(), cancelled: false }
    }

    fn paid_at_alipay() -> Truth {
        Truth {
            trade_status: "TRADE_SUCCESS".into(),
            total_amount: "58.00".into(),
            refunded_amount: "0.00".into(),
            currency: "CNY".into(),
        }
    }

    /// A sandbox that answers 503 to the first `failures` requests, then the record of a paid
    /// trade; answers its URL.
    async fn flaky_sandbox(failures: usize) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/sandbox/trades/2021000000000001/t1", listener.local_addr().unwrap());
        tokio::spawn(async move {
            for served in 0.. {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let body = r#"{"trade_status":"TRADE_SUCCESS","total_amount":"58.00","refunded_amount":"0.00","currency":"CNY"}"#;
                let (status, body) = if served < failures { ("503 Busy", "") } else { ("200 OK", body) };
                let answer =
                    format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        url
    }

    /// A busy sandbox is asked again; it is never taken for "Alipay holds nothing" (which made a
    /// paid trade a mismatch under load).
    #[tokio::test]
    async fn a_record_that_could_not_be_read_is_read_again_never_taken_for_no_trade() {
        let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let read = truth(&client, &flaky_sandbox(2).await).await;
        assert_eq!(read.unwrap().map(|t| t.total_amount), Some("58.00".to_owned()));
        let read = truth(&client, &flaky_sandbox(usize::MAX).await).await;
        assert_eq!(read.unwrap_err(), "HTTP 503");
    }

    /// A paid trade whose cancel the reconciler is still driving: Alipay has reversed it already,
    /// the ledger not yet. Still open, never "the ledger shows money Alipay does not hold".
    #[test]
    fn a_paid_trade_with_its_cancel_under_way_is_open_not_a_mismatch() {
        let now = time::OffsetDateTime::now_utc();
        let row = Trade {
            key: TradeKey::new(uuid::Uuid::nil(), "t1"),
            kind: ledger::TradeKind::Barcode,
            state: TradeState::Success,
            version: 2,
            fingerprint: Vec::new(),
            amount: Amount::from_minor(5800, Currency::CNY).unwrap(),
            refunded: Amount::from_minor(0, Currency::CNY).unwrap(),
            subject: "lunch".into(),
            store_id: None,
            terminal_id: None,
            operator_id: None,
            trade_no: Some("2026120522000000000000000001".into()),
            buyer_user_id: None,
            qr_code: None,
            failure_code: None,
            failure_message: None,
            unknown_reason: None,
            cancel_action: None,
            cancel_requested: true,
            cancel_requested_at: Some(now),
            created_at: now,
            updated_at: now,
            paid_at: Some(now),
            deadline: None,
            next_check_at: Some(now),
        };
        let reversed = Truth { trade_status: "TRADE_CLOSED".into(), ..paid_at_alipay() };
        let mut v = Verification::default();
        let problem = judge(&sent("SUCCESS"), Some(&row), Some(&reversed), &mut v).unwrap();
        assert_eq!((v.non_final, v.mismatches, v.double_charges), (1, 0, 0), "{problem}");
        assert!(problem.contains("cancel"), "{problem}");
    }

    #[test]
    fn a_trade_never_recorded_is_judged_by_what_the_pos_heard_and_alipay_holds() {
        let mut v = Verification::default();
        assert!(judge(&sent("429"), None, None, &mut v).is_none(), "refused before any write");
        assert!(judge(&sent("timeout"), None, None, &mut v).is_none(), "lost answer, no money taken");
        assert_eq!((v.mismatches, v.double_charges), (0, 0));
        assert!(judge(&sent("SUCCESS"), None, None, &mut v).is_some());
        assert_eq!(v.mismatches, 1, "an answer without a ledger row");
        assert!(judge(&sent("timeout"), None, Some(&paid_at_alipay()), &mut v).is_some());
        assert_eq!(v.double_charges, 1, "money taken for a trade nobody recorded");
    }
}
