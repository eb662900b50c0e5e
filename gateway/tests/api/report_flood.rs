//! One tenant floods the sales report (hostile review, item 6) while another pays and receives
//! Alipay's notifications. The flooding tenant's ledger holds a year of a busy chain's trades,
//! so each of its 366-day reports is real work for Postgres. The paying tenant's p99 is measured
//! without the flood and then under it, in the same test, at the same offered rate; the flood's
//! every request must be answered (200, or 429 / 503 with `Retry-After`), none left hanging; and
//! every notification Alipay sent is answered `success`.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use stack::*;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A year of a busy restaurant chain: a thousand trades a day.
const LEDGER_TRADES: i64 = 366_000;
/// The paying tenant's offered load, in each phase.
const PAYS_PER_SECOND: u64 = 60;
const PHASE: Duration = Duration::from_secs(8);
/// The flood: 366-day reports offered at this rate whatever the answers (an open loop, so
/// requests pile up when the gateway is slow to answer).
const REPORTS_PER_SECOND: u64 = 40;
/// A report answered later than this counts as hung.
const HUNG: Duration = Duration::from_secs(15);

/// Writes `count` trades of `pos`'s tenant, spread over the last 366 days, as the ledger would
/// hold them (most paid, one in twenty failed, eight stores).
async fn seed_a_year_of_trades(stack: &Stack, pos: &Pos, count: i64) {
    let client = stack.db.client().await;
    client
        .execute(
            "INSERT INTO trades (tenant_id, out_trade_no, kind, state, fingerprint, currency, amount_minor, \
             refunded_minor, subject, store_id, created_at, updated_at, paid_at, alipay_account) \
             SELECT $1, 'seed-' || i, 'barcode', CASE WHEN i % 20 = 0 THEN 'FAILED' ELSE 'SUCCESS' END, '\\x00', \
             'CNY', 100 + i % 5000, CASE WHEN i % 50 = 0 THEN 100 ELSE 0 END, 'Noodles', 'S' || (i % 8), \
             now() - i * interval '86 seconds', now(), now(), $3 \
             FROM generate_series(1, $2::bigint) AS i",
            &[&pos.tenant_id, &count, &pos.alipay_account()],
        )
        .await
        .unwrap();
    // As a ledger that has been in use a while: vacuumed (its pages all-visible, hint bits set,
    // so the first report does not rewrite the table) and written out.
    client.batch_execute("VACUUM (ANALYZE) trades").await.unwrap();
    client.batch_execute("CHECKPOINT").await.unwrap();
}

/// How one report request of the flood ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flooded {
    Answered { status: u16, retry_after: bool },
    Hung,
}

/// Offers 366-day reports for `pos` at [`REPORTS_PER_SECOND`] until `stop`; answers how each
/// ended.
async fn flood_reports(pos: Pos, stop: CancellationToken) -> Vec<Flooded> {
    let today = time::OffsetDateTime::now_utc().to_offset(time::macros::offset!(+8)).date();
    let path = format!("/v1/reports/sales?from={}&to={today}", today - time::Duration::days(365));
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let mut ticks = tokio::time::interval(Duration::from_micros(1_000_000 / REPORTS_PER_SECOND));
    let mut requests = tokio::task::JoinSet::new();
    while !stop.is_cancelled() {
        ticks.tick().await;
        let (pos, path, outcomes) = (pos.clone(), path.clone(), outcomes.clone());
        requests.spawn(async move {
            let request = pos
                .http
                .get(format!("{}{path}", pos.base))
                .header("authorization", pos.authorization("GET", &path, b""))
                .timeout(HUNG)
                .send();
            let outcome = match request.await {
                Ok(response) => Flooded::Answered {
                    status: response.status().as_u16(),
                    retry_after: response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                        .is_some_and(|secs| secs >= 1),
                },
                Err(error) if error.is_timeout() => Flooded::Hung,
                Err(error) => panic!("a report request failed: {error}"),
            };
            outcomes.lock().push(outcome);
        });
    }
    while requests.join_next().await.is_some() {}
    Arc::try_unwrap(outcomes).unwrap().into_inner()
}

/// Pays at [`PAYS_PER_SECOND`] for [`PHASE`] (each pay sent at its tick, however long earlier
/// ones take); answers each pay's latency. Every pay must succeed.
async fn pay_for_a_while(pos: &Pos, label: &str) -> Vec<Duration> {
    let mut ticks = tokio::time::interval(Duration::from_micros(1_000_000 / PAYS_PER_SECOND));
    let mut pays = tokio::task::JoinSet::new();
    let until = Instant::now() + PHASE;
    while Instant::now() < until {
        ticks.tick().await;
        let (pos, no) = (pos.clone(), trade_no(label));
        pays.spawn(async move {
            let started = Instant::now();
            let (status, answer) = pos.charge(&no, &code("00"), "12.00").await;
            let took = started.elapsed();
            assert_eq!((status, answer["status"].as_str()), (200, Some("SUCCESS")), "{answer}");
            took
        });
    }
    pays.join_all().await
}

fn percentile(latencies: &[Duration], p: f64) -> Duration {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Waits until Alipay (the sandbox) has had `count` notifications acknowledged, or has seen one
/// refused; answers (acknowledged, failed).
async fn notifications_answered(stack: &Stack, count: u64) -> (u64, u64) {
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = stack.sandbox_stats().await;
        let acked = stats["stats"]["notify_acked"].as_u64().unwrap();
        let failed = stats["stats"]["notify_failed"].as_u64().unwrap();
        if acked >= count || failed > 0 || Instant::now() > give_up {
            return (acked, failed);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_flooding_sales_reports_leaves_another_tenants_pays_and_notifications_alone() {
    let stack = Stack::start(Options::default()).await;
    let flooder = stack.openapi_tenant().await;
    let payer = stack.mapi_tenant().await;
    seed_a_year_of_trades(&stack, &flooder, LEDGER_TRADES).await;
    // Warm the paths (connections, prepared statements) before measuring.
    for _ in 0..20 {
        assert_eq!(payer.charge(&trade_no("warm"), &code("00"), "1.00").await.0, 200);
    }

    let quiet = pay_for_a_while(&payer, "quiet").await;
    let stop = CancellationToken::new();
    let flood = tokio::spawn(flood_reports(flooder.clone(), stop.clone()));
    let flooded = pay_for_a_while(&payer, "flooded").await;
    stop.cancel();
    let reports = flood.await.unwrap();
    let pays = 20 + quiet.len() + flooded.len();
    let (acked, failed) = notifications_answered(&stack, pays as u64).await;

    let (quiet_p50, quiet_p99) = (percentile(&quiet, 50.0), percentile(&quiet, 99.0));
    let (flooded_p50, flooded_p99) = (percentile(&flooded, 50.0), percentile(&flooded, 99.0));
    let count = |wanted: &dyn Fn(&Flooded) -> bool| reports.iter().filter(|r| wanted(r)).count();
    let ok = count(&|r| matches!(r, Flooded::Answered { status: 200, .. }));
    let limited = count(&|r| matches!(r, Flooded::Answered { status: 429, retry_after: true }));
    let busy = count(&|r| matches!(r, Flooded::Answered { status: 503, retry_after: true }));
    let hung = count(&|r| *r == Flooded::Hung);
    println!(
        "paying tenant, {PAYS_PER_SECOND} pays/s for {PHASE:?}: without the flood p50 {quiet_p50:.1?} p99 {quiet_p99:.1?} \
         ({} pays); under it p50 {flooded_p50:.1?} p99 {flooded_p99:.1?} ({} pays)",
        quiet.len(),
        flooded.len()
    );
    println!(
        "flood of {} 366-day reports over {LEDGER_TRADES} trades: {ok} answered 200, {limited} 429, {busy} 503, \
         {hung} hung (> {HUNG:?}), {} other; notifications acknowledged {acked} of {pays}, refused {failed}",
        reports.len(),
        reports.len() - ok - limited - busy - hung
    );

    assert_eq!(hung, 0, "no report request hangs");
    assert_eq!(ok + limited + busy, reports.len(), "every refused report says when to come back: {reports:?}");
    assert!(limited + busy > 0, "the flood is held back");
    assert_eq!((acked, failed), (pays as u64, 0), "every notification answered `success`");
    // Main before this change answered this flood with pays of 5.5 s at p50 and 8.7 s at p99
    // (683 ms without it): pays queued behind reports. Now the reports the budget lets through
    // run one at a time on one core, so on this shared two-core machine pays slow down while one
    // runs (CPU, not a queue), and a CI neighbour stalls everything now and then (a p99 of
    // 420 ms has been seen). The median says whether pays queue behind reports; the tail bound
    // is what a POS would notice (it gives up on a pay after seconds, not milliseconds).
    assert!(
        flooded_p50 <= quiet_p99 * 3 + Duration::from_millis(250),
        "the paying tenant's median stays close: {flooded_p50:?} under the flood, p99 {quiet_p99:?} without"
    );
    assert!(
        flooded_p99 < Duration::from_secs(2),
        "no pay waits behind the reports: p99 {flooded_p99:?} under the flood"
    );
}
