//! How fast settlement reads a trade bill and matches it against the ledger's day, and that doing
//! so does not take memory that grows with the bill (issue 18).
//!
//! For each size (bill rows), in a fresh database with the ledger's schema: a ledger day that
//! agrees with the bill (90% of rows payments of one OpenAPI account's one tenant, 10% partial
//! refunds of earlier ones, so the ledger has 0.9 × rows trades and 0.1 × rows SUCCESS refunds)
//! but for 10 planted disagreements (3 payment amounts, 2 trades missing from the ledger, 2 refund
//! amounts, 3 paid trades missing from the bill); and the bill ZIP, written with
//! `bills::write_trade_bill`. Neither is timed. Then this binary runs again as a child (its own
//! process and peak RSS) that runs the service's path: `matching::match_day` of the kept file
//! (the bill read on the thread that spills it, both sides spilled into partitions, the ledger's
//! day read by COPY, an hour a statement, over a connection of its own on the thread that spills
//! it, each partition matched in memory, the few rows outside the window looked up through a pool
//! as the reconciler makes it).
//!
//! Printed: wall time; the child's CPU; Postgres's CPU over the same interval (every `postgres`
//! process: the backends that served the child, the WAL writer, the checkpointer); rows/s
//! per core of both together and of the reconciler alone; the child's peak RSS (VmHWM) before
//! opening the file and after matching; the spill files' size; the disagreements found (checked:
//! exactly those planted).
//!
//! `cargo bench -p reconciler --bench settle [-- ROWS...]` (default: 100000 1000000; at least 20).
//! `SETTLE_BENCH_KEEP=1` keeps each database and bill file; drop them after.
//! Postgres: `DATABASE_ADMIN_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`), on
//! this machine (its processes' CPU is read from /proc).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr, clippy::panic)]

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use alipay::time_text::BEIJING;
use alipay::{Amount, Currency};
use bills::{BillHeader, BillPeriod, BillRow, RowKind, SignedAmount, write_trade_bill};
use ledger::Store;
use ledger::store::Disagreement;
use reconciler::bills::matching::{self, BillSource};
use reconciler::bills::spill::WorkDir;
use time::Date;
use time::macros::{date, datetime};
use uuid::Uuid;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Set in the child: `url path rows tenant`.
const CHILD: &str = "SETTLE_BENCH_CHILD";
const DAY: Date = date!(2026 - 03 - 14);
const APP_ID: &str = "2021004100000001";
const MS_PER_DAY: u64 = 86_400_000;
/// Disagreements planted, as the child counts them: payments differing, payments not in the
/// ledger, refunds differing, payments not in the bill, refunds not in the bill.
const PLANTED: [usize; 5] = [3, 2, 2, 3, 0];

fn account() -> String {
    format!("openapi:{APP_ID}")
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
        return;
    }
    let mut sizes: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![100_000, 1_000_000];
    }
    assert!(sizes.iter().all(|&rows| rows >= 20), "at least 20 rows (the planted disagreements need them)");
    let admin =
        std::env::var("DATABASE_ADMIN_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut runs = Vec::new();
    for rows in sizes {
        let name = format!("bench_settle_{}_{rows}", std::process::id());
        let url = database_url(&admin, &name);
        let path = std::env::temp_dir().join(format!("settle-bench-{}-{rows}.csv.zip", std::process::id()));
        runtime.block_on(admin_run(&admin, &format!("CREATE DATABASE {name}")));
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| measure(&runtime, &url, &path, rows)));
        if std::env::var_os("SETTLE_BENCH_KEEP").is_some() {
            eprintln!("kept: database {name}, bill {}", path.display());
        } else {
            runtime.block_on(admin_run(&admin, &format!("DROP DATABASE {name} WITH (FORCE)")));
            let _ = std::fs::remove_file(&path);
        }
        runs.push((rows, outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic))));
    }
    println!(
        "| rows | match wall | rows/s (wall) | reconciler CPU | Postgres CPU | rows/s per core, both | rows/s per core, reconciler | peak RSS before → after | spill files | disagreements found |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for (rows, f) in &runs {
        let rows_f = *rows as f64;
        println!(
            "| {rows} | {:.2} s | {:.0} | {:.2} s | {:.2} s | {:.0} | {:.0} | {:.1} → {:.1} MiB | {:.1} MiB | {} (as planted) |",
            f["wall"],
            rows_f / f["wall"],
            f["cpu"],
            f["pg"],
            rows_f / (f["cpu"] + f["pg"]),
            rows_f / f["cpu"],
            f["hwm_before"] / 1024.0,
            f["hwm_after"] / 1024.0,
            f["spilled"] / 1048576.0,
            f["found"],
        );
    }
}

/// `admin` with its database replaced by `name`.
fn database_url(admin: &str, name: &str) -> String {
    let (base, query) = admin.split_once('?').map_or((admin, None), |(b, q)| (b, Some(q)));
    let (server, _) = base.rsplit_once('/').expect("a URL naming a database");
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

async fn admin_run(admin: &str, sql: &str) {
    tenants::db::connect(admin).await.unwrap().batch_execute(sql).await.unwrap();
}

type Figures = HashMap<String, f64>;

/// Fills the database at `url`, writes the bill at `path`, runs the child; answers its figures.
fn measure(runtime: &tokio::runtime::Runtime, url: &str, path: &PathBuf, rows: u64) -> Figures {
    let tenant = Uuid::new_v4();
    let started = Instant::now();
    runtime.block_on(ledger_day(url, tenant, rows));
    let ledger_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let file = BufWriter::new(File::create(path).unwrap());
    write_trade_bill(
        file,
        &header(),
        datetime!(2026-03-15 05:46:49).assume_offset(BEIJING),
        (0..rows).map(|n| row(n, rows)),
    )
    .unwrap();
    eprintln!(
        "{rows} rows: ledger day inserted in {ledger_s:.1} s, bill written in {:.1} s ({:.1} MiB)",
        started.elapsed().as_secs_f64(),
        std::fs::metadata(path).unwrap().len() as f64 / 1048576.0
    );
    runtime.block_on(admin_run(url, "CHECKPOINT"));
    let spec = format!("{url} {} {rows} {tenant}", path.display());
    let output = Command::new(std::env::current_exe().unwrap()).env(CHILD, spec).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let figures: Figures = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap();
            (key.to_owned(), value.parse().unwrap())
        })
        .collect();
    assert_eq!(figures["rows"] as u64, rows);
    eprintln!("{rows} rows: {figures:?}");
    figures
}

/// The SQL of [`row`]'s amount of trade `n` (a bigint expression).
fn amount_sql(n: &str) -> String {
    format!("(500 + ({n}) * 7919 % 50000)")
}

/// The SQL of [`row`]'s out_trade_no of trade `n`.
fn out_trade_no_sql(n: &str) -> String {
    format!("('POS' || lpad((({n}) % 20)::text, 2, '0') || '-' || lpad(({n})::text, 10, '0'))")
}

/// The ledger's side of the bill: every payment a trade, every refund a SUCCESS refund, then the
/// planted disagreements; vacuumed and analysed, as an old ledger is; then a checkpoint.
async fn ledger_day(url: &str, tenant: Uuid, rows: u64) {
    ledger::store::migrate(url).await.unwrap();
    let client = tenants::db::connect(url).await.unwrap();
    let start = DAY.midnight().assume_offset(BEIJING);
    let step = i64::try_from(step_ms(rows)).unwrap();
    let rows = i64::try_from(rows).unwrap();
    // $1 tenant, $2 rows, $3 the day's start, $4 ms between rows (as [`row`] spreads them).
    let at = "($3::timestamptz + (n * $4::bigint) * interval '1 millisecond')";
    let refunded = "(n % 10 = 0 AND n + 9 < $2::bigint)";
    let (amount, out_trade_no) = (amount_sql("n"), out_trade_no_sql("n"));
    client
        .execute(
            &format!(
                "INSERT INTO trades (tenant_id, out_trade_no, kind, state, fingerprint, currency, amount_minor, \
                 refunded_minor, subject, store_id, trade_no, created_at, updated_at, paid_at, alipay_account) \
                 SELECT $1, {out_trade_no}, 'barcode', \
                 CASE WHEN {refunded} THEN 'PARTIALLY_REFUNDED' ELSE 'SUCCESS' END, '\\x00'::bytea, 'CNY', \
                 {amount}, CASE WHEN {refunded} THEN {amount} / 2 ELSE 0 END, 'bench', \
                 'SH-' || lpad((n % 20)::text, 3, '0'), '2026031422001' || lpad(n::text, 15, '0'), \
                 {at} - interval '5 seconds', {at}, {at}, $5 \
                 FROM generate_series(0::bigint, $2::bigint - 1) n WHERE n % 10 <> 9"
            ),
            &[&tenant, &rows, &start, &step, &account()],
        )
        .await
        .unwrap();
    // The refund of row n (n % 10 = 9) is of trade n - 9, at row n's time.
    let (amount, out_trade_no) = (amount_sql("n - 9"), out_trade_no_sql("n - 9"));
    client
        .execute(
            &format!(
                "INSERT INTO refunds (tenant_id, out_trade_no, out_request_no, wire_request_no, state, fingerprint, \
                 amount_minor, created_at, updated_at, refunded_at) \
                 SELECT $1, {out_trade_no}, 'RF' || lpad((n - 9)::text, 12, '0'), \
                 'RF' || lpad((n - 9)::text, 12, '0'), 'SUCCESS', '\\x00'::bytea, {amount} / 2, \
                 {at} - interval '1 second', {at}, {at} \
                 FROM generate_series(9::bigint, $2::bigint - 1, 10) n"
            ),
            &[&tenant, &rows, &start, &step],
        )
        .await
        .unwrap();
    let trade = |n: u64| format!("'POS{:02}-{n:010}'", n % 20);
    let plants = format!(
        "UPDATE trades SET amount_minor = amount_minor + 1 WHERE out_trade_no IN ({}, {}, {}); \
         DELETE FROM trades WHERE out_trade_no IN ({}, {}); \
         UPDATE refunds SET amount_minor = amount_minor - 1 WHERE out_trade_no IN ({}, {}); \
         INSERT INTO trades (tenant_id, out_trade_no, kind, state, fingerprint, currency, amount_minor, subject, \
           trade_no, created_at, updated_at, paid_at, alipay_account) \
         SELECT '{tenant}', 'EXTRA-' || k, 'barcode', 'SUCCESS', '\\x00'::bytea, 'CNY', 1000, 'bench', \
           '2026031422002' || lpad(k::text, 15, '0'), t, t, t, '{}' \
         FROM generate_series(1, 3) k, LATERAL (SELECT '2026-03-14 12:00:00+08'::timestamptz + k * interval '1 second' AS t) x;",
        trade(1),
        trade(2),
        trade(3),
        trade(4),
        trade(5),
        trade(0),
        trade(10),
        account(),
    );
    client.batch_execute(&plants).await.unwrap();
    for sql in ["VACUUM ANALYZE trades", "VACUUM ANALYZE refunds", "CHECKPOINT"] {
        client.batch_execute(sql).await.unwrap();
    }
}

/// Milliseconds between rows: the bill's rows spread over the day.
fn step_ms(rows: u64) -> u64 {
    MS_PER_DAY / rows.max(1)
}

fn header() -> BillHeader {
    BillHeader { account: "20880211096256330156".parse().unwrap(), period: BillPeriod::day(DAY).unwrap() }
}

fn fen(minor: u64) -> Amount {
    Amount::from_minor(minor, Currency::CNY).unwrap()
}

/// Row `n` of a day of `rows` (as `bills/benches/parse.rs` makes them, but a refund names the
/// trade it refunds: that of row n - 9).
fn row(n: u64, rows: u64) -> BillRow {
    let zero = SignedAmount::zero(Currency::CNY);
    let at = DAY.midnight().assume_offset(BEIJING) + time::Duration::milliseconds((n * step_ms(rows)) as i64);
    let refund = n % 10 == 9;
    let m = if refund { n - 9 } else { n };
    let amount = 500 + (m * 7919) % 50_000;
    let (kind, amount, fee) = if refund {
        let out_request_no = format!("RF{m:012}").parse().unwrap();
        let part = amount / 2;
        (RowKind::Refund { out_request_no }, part, SignedAmount::positive(fen(part * 6 / 1000)))
    } else {
        (RowKind::Payment, amount, SignedAmount::negative(fen((amount * 6).div_ceil(1000))))
    };
    let store = m % 20;
    BillRow {
        trade_no: format!("2026031422001{m:015}").parse().unwrap(),
        out_trade_no: format!("POS{store:02}-{m:010}").parse().unwrap(),
        kind,
        subject: "牛肉面".to_owned(),
        created_at: at - time::Duration::seconds(5),
        finished_at: at,
        store_id: Some(format!("SH-{store:03}").parse().unwrap()),
        store_name: format!("上海{store}号店"),
        operator_id: Some(format!("op{}", n % 7).parse().unwrap()),
        terminal_id: Some(format!("T{store:04}").parse().unwrap()),
        counterparty: "*津水(602***@qq.com)".to_owned(),
        amount: fen(amount),
        received: fen(amount),
        alipay_red_packet: zero,
        jifenbao: zero,
        alipay_discount: zero,
        merchant_discount: zero,
        voucher_amount: zero,
        voucher_name: String::new(),
        merchant_red_packet: zero,
        card_amount: zero,
        fee,
        profit_share: zero,
        remark: String::new(),
    }
}

/// The child: matches the bill as the service does; prints `key=value` figures.
fn child(spec: &str) {
    let [url, path, rows, tenant] = spec.split(' ').collect::<Vec<_>>()[..] else { panic!("child spec {spec}") };
    let (path, tenant): (PathBuf, Uuid) = (path.into(), tenant.parse().unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        // As the reconciler makes them (its statement timeout).
        let pool = tenants::db::bounded_pool(url, reconciler::Config::default().pool_limits(1)).unwrap();
        let store = Store::new(pool.clone());
        let account = account();
        let work = WorkDir::create(&std::env::temp_dir(), &format!("settle-bench-{rows}")).unwrap();
        let work_path = work.path().to_owned();

        let hwm_before = status_kib("VmHWM:");
        let (pg0, cpu0, t0) = (PgCpu::now(), telemetry::process::own_cpu_seconds(), Instant::now());
        let bill = BillSource::TradeBill { path, day: DAY };
        let day_reader = tenants::db::target(url, reconciler::Config::default().pool_limits(1)).unwrap();
        let ledger = matching::Ledger { store: &store, day_reader };
        let matched = matching::match_day(ledger, &account, &[tenant], Some(tenant), DAY, bill, work).await.unwrap();
        let (pg1, cpu1, t1) = (PgCpu::now(), telemetry::process::own_cpu_seconds(), Instant::now());
        let hwm_after = status_kib("VmHWM:");
        assert!(!work_path.exists(), "the spill files are removed");

        let mut kinds = [0usize; 5];
        for disagreement in &matched.disagreements {
            kinds[match disagreement {
                Disagreement::PaymentDiffers { .. } => 0,
                Disagreement::PaymentNotInLedger { .. } => 1,
                Disagreement::RefundDiffers { .. } => 2,
                Disagreement::PaymentNotInBill { .. } => 3,
                Disagreement::RefundNotInBill { .. } => 4,
            }] += 1;
        }
        assert_eq!(kinds, PLANTED, "disagreements by kind (planted: {PLANTED:?}): {:?}", matched.disagreements);
        assert_eq!(matched.rows().to_string(), rows, "rows matched");
        println!(
            "rows={} found={} spilled={} hwm_before={hwm_before} hwm_after={hwm_after} wall={} cpu={} pg={}",
            matched.rows(),
            matched.disagreements.len(),
            matched.spilled_bytes,
            (t1 - t0).as_secs_f64(),
            cpu1 - cpu0,
            pg1.since(&pg0),
        );
    });
}

/// The CPU seconds of every living `postgres` process, and what the postmaster has reaped (its
/// children that ended: parallel workers, backends), so a process that ends between two readings
/// is counted too.
struct PgCpu {
    living: HashMap<u32, f64>,
    reaped: f64,
}

impl PgCpu {
    fn now() -> PgCpu {
        let mut living = HashMap::new();
        let mut reaped = 0.0;
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else { continue };
            if !is_postgres(pid) {
                continue;
            }
            living.insert(pid, telemetry::process::cpu_seconds(pid));
            let fields = stat_fields(pid);
            let parent: u32 = fields.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
            if !is_postgres(parent) {
                // The postmaster: cutime + cstime.
                reaped +=
                    fields.get(13..15).map_or(0.0, |f| f.iter().filter_map(|t| t.parse::<f64>().ok()).sum()) / 100.0;
            }
        }
        PgCpu { living, reaped }
    }

    fn of(&self, pid: u32) -> f64 {
        self.living.get(&pid).copied().unwrap_or(0.0)
    }

    /// Postgres's CPU seconds from `before` to this reading.
    fn since(&self, before: &PgCpu) -> f64 {
        let living: f64 = self.living.iter().map(|(pid, cpu)| cpu - before.of(*pid)).sum();
        let ended: f64 =
            before.living.iter().filter(|(pid, _)| !self.living.contains_key(pid)).map(|(_, cpu)| cpu).sum();
        living + (self.reaped - before.reaped) - ended
    }
}

fn is_postgres(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim_end() == "postgres")
}

/// `/proc/<pid>/stat`'s fields after the command name (the state first).
fn stat_fields(pid: u32) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')').next().unwrap_or("").split_whitespace().map(str::to_owned).collect()
}

/// A `/proc/self/status` figure in KiB (`VmHWM:`: the peak resident set so far).
fn status_kib(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0.0)
}
