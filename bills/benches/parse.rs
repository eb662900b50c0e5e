//! How fast a trade bill is read, and that reading it does not take memory that grows with it.
//!
//! For each size, the crate's writer puts a bill of that many rows (a day's mix: 90% payments
//! over 20 stores, 10% refunds, Chinese subjects, 0.6% fees) in a temporary file; then this
//! binary runs again as a child that opens it, streams every row (seen in place, as settlement
//! reads them: `DetailReader::next_view`) and checks the footer and the summary, so each reading
//! has a process, and a peak RSS, of its own. Printed: rows/s by wall clock and by the child's
//! CPU time (one thread: rows/s per core), and the child's peak RSS (VmHWM) before opening the
//! file and after the last row.
//!
//! `cargo bench -p bills --bench parse [-- ROWS...]` (default: 100000 1000000).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::panic)]

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::process::Command;
use std::time::Instant;

use alipay::time_text::BEIJING;
use alipay::{Amount, Currency};
use bills::trade::{BillRow, RowKind};
use bills::{BillHeader, BillPeriod, SignedAmount, TradeBill, write_trade_bill};
use time::macros::{date, datetime};

/// Set in the child: the file to read.
const CHILD: &str = "BILLS_BENCH_FILE";

fn main() {
    if let Ok(path) = std::env::var(CHILD) {
        read(&path);
        return;
    }
    let mut sizes: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![100_000, 1_000_000];
    }
    println!(
        "| rows | file (ZIP) | detail entry | write | read (wall) | rows/s (wall) | rows/s per core (CPU) | peak RSS before | peak RSS after |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for rows in sizes {
        let path = std::env::temp_dir().join(format!("bills-bench-{}-{rows}.csv.zip", std::process::id()));
        let started = Instant::now();
        let file = BufWriter::new(File::create(&path).unwrap());
        write_trade_bill(file, &header(), datetime!(2026-03-15 05:46:49).assume_offset(BEIJING), (0..rows).map(row))
            .unwrap();
        let write_s = started.elapsed().as_secs_f64();
        let size = std::fs::metadata(&path).unwrap().len();
        let detail = {
            let mut archive = zip::ZipArchive::new(File::open(&path).unwrap()).unwrap();
            archive.by_index_raw(0).unwrap().size()
        };
        let output = Command::new(std::env::current_exe().unwrap()).env(CHILD, &path).output().unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let figures: Vec<f64> =
            String::from_utf8_lossy(&output.stdout).split_whitespace().map(|f| f.parse().unwrap()).collect();
        let [read_rows, wall, cpu, hwm_before, hwm_after] = figures[..] else { panic!("child said {figures:?}") };
        assert_eq!(read_rows as u64, rows);
        println!(
            "| {rows} | {:.1} MiB | {:.1} MiB | {write_s:.2} s | {wall:.2} s | {:.0} | {:.0} | {:.1} MiB | {:.1} MiB |",
            size as f64 / 1048576.0,
            detail as f64 / 1048576.0,
            read_rows / wall,
            read_rows / cpu,
            hwm_before / 1024.0,
            hwm_after / 1024.0,
        );
    }
}

/// The child: reads the bill at `path`, prints `rows wall_s cpu_s hwm_before_kib hwm_after_kib`.
fn read(path: &str) {
    let hwm_before = status_kib("VmHWM:");
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let mut bill = TradeBill::open(BufReader::new(File::open(path).unwrap())).unwrap();
    let mut rows = 0u64;
    let mut received = 0i64;
    let mut reader = bill.rows().unwrap();
    while let Some(row) = reader.next_view() {
        let row = row.unwrap();
        rows += 1;
        received += i64::try_from(row.received.minor()).unwrap();
    }
    std::hint::black_box(received);
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let hwm_after = status_kib("VmHWM:");
    println!("{rows} {wall} {cpu} {hwm_before} {hwm_after}");
}

fn header() -> BillHeader {
    BillHeader {
        account: "20880211096256330156".parse().unwrap(),
        period: BillPeriod::day(date!(2026 - 03 - 14)).unwrap(),
    }
}

fn fen(minor: u64) -> Amount {
    Amount::from_minor(minor, Currency::CNY).unwrap()
}

const SUBJECTS: [&str; 5] = ["牛肉面", "小笼包 x2", "Combo meal #3", "豆浆油条套餐", "咖啡（大杯）"];

/// Row `n` of the day.
fn row(n: u64) -> BillRow {
    let zero = SignedAmount::zero(Currency::CNY);
    let paid_at = datetime!(2026-03-14 00:00:00).assume_offset(BEIJING) + time::Duration::milliseconds((n * 86) as i64);
    let amount = 500 + (n * 7919) % 50_000;
    let refund = n % 10 == 9;
    let (kind, amount, fee) = if refund {
        let out_request_no = format!("RF{n:012}").parse().unwrap();
        let part = amount / 2;
        (RowKind::Refund { out_request_no }, part, SignedAmount::positive(fen(part * 6 / 1000)))
    } else {
        (RowKind::Payment, amount, SignedAmount::negative(fen((amount * 6).div_ceil(1000))))
    };
    let store = n % 20;
    BillRow {
        // A refund repeats the trade number of the payment nine rows before.
        trade_no: format!("2026031422001{:015}", if refund { n - 9 } else { n }).parse().unwrap(),
        out_trade_no: format!("POS{store:02}-{n:010}").parse().unwrap(),
        kind,
        subject: SUBJECTS[(n % 5) as usize].to_owned(),
        created_at: paid_at - time::Duration::seconds(5),
        finished_at: paid_at,
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

/// A `/proc/self/status` figure in KiB (`VmHWM:`: the peak resident set so far).
fn status_kib(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0.0)
}

/// User plus system CPU seconds of this process (as `telemetry::process` reads them).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| f.iter().filter_map(|t| t.parse::<f64>().ok()).sum());
    ticks / 100.0
}
