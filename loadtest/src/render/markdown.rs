//! Markdown: a run as a `##` section, a bench as the whole `BENCHMARKS.md`.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{count, decimal, finite, ms, rps};
use crate::report::{
    BenchReport, Generator, LatencyReport, LatencyStep, OperationStats, Percentiles, Report, ScaleReport, Verification,
};

/// One run as a Markdown section: a `##` heading with the title, what was run, the headline
/// figures, then per operation, errors by kind, status mix, the generator's own cost and the
/// verification (the last three tables only when they have something to show).
pub fn run_markdown(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## {}\n", one_line(&report.title));
    let _ = writeln!(
        out,
        "Target {} · {} · {} tenants · started {} · {} s\n",
        one_line(&report.target),
        one_line(&report.mode),
        count(report.tenants),
        one_line(&report.started_at),
        decimal(report.duration_s, 1),
    );
    headline(&mut out, report);
    if let Some(added) = &report.added_by_gateway {
        let tail =
            |p: &Percentiles| format!("p50 {} ms, p99 {} ms, p99.9 {} ms", ms(p.p50_ms), ms(p.p99_ms), ms(p.p999_ms));
        let _ = write!(out, "Added by the gateway (its `Server-Timing`: its time less Alipay's): {}", tail(added));
        if let Some(intent) = &report.intent_commit {
            let _ = write!(out, "; of which the intent's durable commit: {}", tail(intent));
        }
        let _ = writeln!(out, ".\n");
    }
    operations(&mut out, "By operation", "Operation", &report.by_operation);
    operations(&mut out, "By target", "Target", &report.by_target);
    tally(&mut out, "Errors by kind", "Kind", &report.errors_by_kind);
    tally(&mut out, "Status mix", "Status", &report.status_mix);
    generator(&mut out, &report.generator);
    if let Some(verification) = &report.verification {
        verification_section(&mut out, verification);
    }
    out
}

/// The whole `BENCHMARKS.md`: the machine, how to reproduce, the headline figures the project
/// tracks, then every run's section followed by its chart, `bench/<slug>.svg`.
pub fn bench_markdown(bench: &BenchReport) -> String {
    let mut out = String::from("# Benchmarks\n\n");
    let _ = writeln!(out, "Machine: {}. Started {}.\n", one_line(&bench.machine), one_line(&bench.started_at));
    out.push_str(
        "Everything runs on this one machine and shares its cores: the load generator, the Alipay \
         sandbox, the gateway(s), the reconciler, Postgres and Redis. So each figure is the whole stack's \
         on these cores, and the gateway's CPU per pay is read from its own process.\n\n",
    );
    out.push_str(
        "How to reproduce: run `scripts/bench`, which builds the workspace in release mode and \
         runs `loadtest bench`.\n\n",
    );
    bench_headline(&mut out, bench);
    if let Some(scale) = &bench.scale {
        scale_markdown(&mut out, scale);
    }
    if let Some(latency) = &bench.latency {
        latency_markdown(&mut out, latency);
    }
    for run in &bench.runs {
        out.push_str(&run_markdown(run));
        let _ = writeln!(out, "![latency and throughput](bench/{}.svg)\n", slug(&run.title));
    }
    out
}

/// A title as a file name: lowercase ASCII letters and digits, every other run of characters
/// one '-', none at either end; "run" when nothing is left.
pub fn slug(title: &str) -> String {
    let mut out = String::new();
    let mut gap = false;
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            if gap && !out.is_empty() {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
            gap = false;
        } else {
            gap = true;
        }
    }
    if out.is_empty() { "run".to_owned() } else { out }
}

fn headline(out: &mut String, report: &Report) {
    let latency = &report.latency;
    let header = [
        "Throughput (req/s)",
        "p50 (ms)",
        "p90 (ms)",
        "p99 (ms)",
        "p99.9 (ms)",
        "max (ms)",
        "mean (ms)",
        "Requests",
        "Errors",
    ];
    let row = vec![
        rps(report.throughput_rps),
        ms(latency.p50_ms),
        ms(latency.p90_ms),
        ms(latency.p99_ms),
        ms(latency.p999_ms),
        ms(latency.max_ms),
        ms(latency.mean_ms),
        count(report.requests),
        count(report.errors),
    ];
    table(out, &header, &[row], 0);
}

/// Figures split by operation or by target, under a `###` heading; nothing when empty.
fn operations(out: &mut String, heading: &str, name: &str, by_operation: &BTreeMap<String, OperationStats>) {
    if by_operation.is_empty() {
        return;
    }
    let _ = writeln!(out, "### {heading}\n");
    let header = [name, "Requests", "Errors", "p50 (ms)", "p99 (ms)", "p99.9 (ms)"];
    let rows: Vec<_> = by_operation
        .iter()
        .map(|(name, stats)| {
            vec![
                cell(name),
                count(stats.requests),
                count(stats.errors),
                ms(stats.latency.p50_ms),
                ms(stats.latency.p99_ms),
                ms(stats.latency.p999_ms),
            ]
        })
        .collect();
    table(out, &header, &rows, 1);
}

/// Counts by name with each one's share of their sum, under a `###` heading; nothing when empty.
fn tally(out: &mut String, heading: &str, name: &str, counts: &BTreeMap<String, u64>) {
    if counts.is_empty() {
        return;
    }
    let _ = writeln!(out, "### {heading}\n");
    let total: u64 = counts.values().sum();
    let rows: Vec<_> = counts.iter().map(|(key, &n)| vec![cell(key), count(n), percent(n, total)]).collect();
    table(out, &[name, "Count", "Share"], &rows, 1);
}

fn generator(out: &mut String, generator: &Generator) {
    let _ = write!(
        out,
        "Generator: {} µs CPU per request, {} cores busy, {} late starts",
        decimal(generator.cpu_us_per_request, 1),
        decimal(generator.cores_busy, 2),
        count(generator.late_starts),
    );
    if generator.late_starts > 0 {
        out.push_str(" (their latency still counts from the intended send time)");
    }
    out.push_str(".\n\n");
}

fn verification_section(out: &mut String, verification: &Verification) {
    out.push_str("### Verification\n\n");
    let header = ["Checked", "Mismatches", "Double charges", "Non-final"];
    let row = vec![
        count(verification.checked),
        count(verification.mismatches),
        count(verification.double_charges),
        count(verification.non_final),
    ];
    table(out, &header, &[row], 0);
    for example in &verification.examples {
        let _ = writeln!(out, "- {}", one_line(example));
    }
    if !verification.examples.is_empty() {
        out.push('\n');
    }
}

/// The figures the project tracks. A figure of a run the bench did not make (`--only`) reads 0
/// in the report and is left out here.
fn bench_headline(out: &mut String, bench: &BenchReport) {
    let verification = &bench.verification;
    let mut rows: Vec<(&str, String)> = Vec::new();
    if finite(bench.throughput_rps) > 0.0 {
        let capacity = mixed_capacity(bench);
        rows.extend([
            ("Capacity, mixed workload (closed loop, 64 connections)", format!("{} req/s", rps(capacity))),
            ("Rate of the headline run (open loop, half of capacity)", format!("{} req/s", rps(bench.throughput_rps))),
            ("p50 at that rate", format!("{} ms", ms(bench.p50_ms))),
            ("p99 at that rate", format!("{} ms", ms(bench.p99_ms))),
            ("Errors at that rate", count(bench.errors)),
        ]);
    }
    if finite(bench.gateway_cpu_us_per_pay_rsa2) > 0.0 {
        rows.push(("Gateway CPU per pay, RSA2", micros(bench.gateway_cpu_us_per_pay_rsa2)));
    }
    if finite(bench.gateway_cpu_us_per_pay_md5) > 0.0 {
        rows.push(("Gateway CPU per pay, MD5", micros(bench.gateway_cpu_us_per_pay_md5)));
    }
    rows.push(("Crypto floor, RSA-2048 sign + verify", micros(bench.crypto_floor_us_rsa2)));
    if finite(bench.gateway_cpu_us_per_pay_rsa2) > 0.0 {
        let ratio = times(bench.gateway_cpu_us_per_pay_rsa2, bench.crypto_floor_us_rsa2, 1);
        rows.push(("Gateway CPU per RSA2 pay", ratio));
    }
    let front_door = finite(bench.gateway_cpu_us_per_pay_front_door);
    if front_door > 0.0 {
        let mut figure = micros(front_door);
        if finite(bench.gateway_cpu_us_per_pay_rsa2) > 0.0 {
            let share = decimal(front_door / bench.gateway_cpu_us_per_pay_rsa2, 2);
            let _ = write!(figure, " ({share} × the partner API's RSA2 pay)");
        }
        rows.extend([
            ("Gateway CPU per pay, RSA2 through the front door", figure),
            ("Crypto floor, two RSA-2048 signs + two verifies", micros(bench.crypto_floor_us_front_door)),
            ("Gateway CPU per front-door pay", times(front_door, bench.crypto_floor_us_front_door, 2)),
        ]);
    }
    rows.extend([
        ("Gateway RSS after the runs", format!("{} MiB", decimal(bench.gateway_rss_mib, 1))),
        ("Trades verified", count(verification.checked)),
        ("Verification mismatches", count(verification.mismatches)),
        ("Double charges", count(verification.double_charges)),
        ("Non-final trades", count(verification.non_final)),
    ]);
    let rows: Vec<_> = rows.into_iter().map(|(name, value)| vec![name.to_owned(), value]).collect();
    out.push_str("## Headline\n\n");
    table(out, &["Figure", "Value"], &rows, 1);
    if front_door > 0.0 {
        out.push_str(
            "The front-door figure is the gateway's CPU per `alipay.trade.pay` a POS on Alipay's SDKs \
             sends to `/alipay/gateway.do` (form parameters, `biz_content`, RSA2), the same closed loop \
             and count as the RSA2 run. Its floor is two signs and two verifies, as its pay makes them: \
             it verifies the POS's signature, signs its call to Alipay, verifies Alipay's answer and \
             signs its answer to the POS (the partner API's pay makes one sign and one verify).\n\n",
        );
    }
}

/// `figure` as a multiple of `floor`: "1.3 × the crypto floor"; n/a without a floor.
fn times(figure: f64, floor: f64, places: usize) -> String {
    let floor = finite(floor);
    if floor > 0.0 {
        format!("{} × the crypto floor", decimal(figure / floor, places))
    } else {
        "n/a (no crypto floor measured)".to_owned()
    }
}

/// A Markdown table followed by a blank line; columns from `first_figure` on are right-aligned.
fn table(out: &mut String, header: &[&str], rows: &[Vec<String>], first_figure: usize) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let align: Vec<_> = (0..header.len()).map(|i| if i < first_figure { "---" } else { "---:" }).collect();
    let _ = writeln!(out, "|{}|", align.join("|"));
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out.push('\n');
}

fn micros(x: f64) -> String {
    format!("{} µs", decimal(x, 1))
}

/// `part` as a percentage of `whole`, one decimal; 0% of nothing.
fn percent(part: u64, whole: u64) -> String {
    let share = if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 };
    format!("{}%", decimal(share, 1))
}

/// Text that must stay on one line (a heading, a list item): line breaks become spaces, and `<`
/// is escaped so it cannot open an HTML tag.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ").replace('<', "\\<")
}

/// Text for a table cell: on one line, with `|` escaped so it cannot split the cell.
fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

/// The mixed workload's capacity (reports from before it was kept: its closed-loop run's).
fn mixed_capacity(bench: &BenchReport) -> f64 {
    if bench.capacity_rps > 0.0 {
        return bench.capacity_rps;
    }
    bench.runs.iter().find(|r| r.title.ends_with("mixed, capacity")).map_or(0.0, |r| r.throughput_rps)
}

/// The Alipay-latency section: the same rate with Alipay answering at once, then slower.
fn latency_markdown(out: &mut String, latency: &LatencyReport) {
    out.push_str("## Alipay's latency\n\n");
    out.push_str(
        "The same open loop of MD5 payments on one gateway of its own (its wait for Alipay 15 s), with the \
         sandbox answering at once, then within a log-normal model of Alipay's answer time (`--latency` \
         of `alipay-sandbox`, `loadtest run --alipay-latency`), so that many pays wait on Alipay at once. \
         The gateway's resident memory and its connections to Alipay are the peaks of samples taken every \
         half second during each run.\n\n",
    );
    if let Some(first) = latency.steps.first() {
        let _ = writeln!(
            out,
            "Each run offers {} pays/s for the same time; Pays/s is its pays over the run's whole length, \
             the wait for the last answers included, so the slower Alipay answers, the lower it reads. \
             The gateway's CPU per pay is given over the whole run, which includes opening a connection \
             to Alipay for every pay waiting at once (thousands when Alipay is slow; each is then reused \
             by the pays that follow), and over the run's second half, when as many pays end as begin \
             each second and those connections are open: what each pay costs while that many wait.\n",
            rps(first.rate_rps)
        );
    }
    let rows: Vec<_> = latency
        .steps
        .iter()
        .map(|step| {
            vec![
                cell(&step.alipay),
                rps(step.throughput_rps),
                count(step.peak_in_flight),
                micros(step.gateway_cpu_us_per_pay),
                step.steady_cpu_us_per_pay.map_or_else(|| "–".to_owned(), micros),
                format!("{} MiB", decimal(step.peak_rss_mib, 1)),
                count(step.peak_upstream_connections),
                ms(step.added_p99_ms),
                count(step.errors),
            ]
        })
        .collect();
    let header = [
        "Alipay answers",
        "Pays/s",
        "In flight (peak)",
        "Gateway CPU per pay",
        "…in the second half",
        "Gateway RSS (peak)",
        "Connections to Alipay (peak)",
        "Added p99 (ms)",
        "Errors",
    ];
    table(out, &header, &rows, 1);
    let (Some(instant), Some(slowest)) = (latency.steps.first(), latency.steps.last()) else { return };
    let change = |cpu: fn(&LatencyStep) -> Option<f64>| {
        let base = cpu(instant)?.max(f64::MIN_POSITIVE);
        let worst =
            latency.steps.iter().skip(1).map(cpu).collect::<Option<Vec<f64>>>()?.into_iter().fold(0.0, f64::max);
        Some((worst / base - 1.0) * 100.0)
    };
    let signed = |change: f64| format!("{}{}%", if change >= 0.0 { "+" } else { "" }, decimal(change, 1));
    let whole = change(|step| Some(step.gateway_cpu_us_per_pay)).unwrap_or_default();
    let cpu_target = match change(|step| step.steady_cpu_us_per_pay) {
        Some(steady) => format!(
            "{} at worst in the runs' second halves, {} (over the whole runs {})",
            signed(steady),
            if steady <= 10.0 { "met" } else { "not met" },
            signed(whole)
        ),
        None => format!("{} at worst, {}", signed(whole), if whole <= 10.0 { "met" } else { "not met" }),
    };
    let memory_verdict = if slowest.peak_rss_mib < 100.0 { "met" } else { "not met" };
    let _ = writeln!(
        out,
        "Targets: CPU per pay within 10% of Alipay answering at once: {cpu_target}; \
         memory under 100 MiB with {} pays in flight: {} MiB, {memory_verdict}.\n",
        count(slowest.peak_in_flight),
        decimal(slowest.peak_rss_mib, 1),
    );
    out.push_str(
        "What holds that memory, hyper's buffers on each pay's two connections first: \
         [bench/gateway-memory.md](bench/gateway-memory.md) (`bench/gateway_heap.sh`, these runs under heaptrack).\n\n",
    );
}

/// The many-gateways section: scaling at the same CPU, then latency at half capacity beside a
/// durable commit's.
fn scale_markdown(out: &mut String, scale: &ScaleReport) {
    out.push_str(
        "## Many gateways

",
    );
    let _ = writeln!(
        out,
        "The same closed loop of MD5 payments (64 connections, round robin) over one, two and three \
         gateway processes on one Postgres and Redis, every gateway pinned to core {} together, so \
         each step has the same CPU for its gateways; the load generator, sandbox, reconciler, \
         Postgres and Redis share both cores with them. Efficiency is the throughput over the one \
         gateway's (1.00: a replica costs nothing).\n",
        scale.core
    );
    let rows: Vec<_> = scale
        .steps
        .iter()
        .map(|step| {
            vec![
                count(step.gateways as u64),
                rps(step.throughput_rps),
                ms(step.p99_ms),
                micros(step.gateway_cpu_us_per_pay),
                decimal(step.efficiency, 2),
            ]
        })
        .collect();
    table(out, &["Gateways", "Throughput (req/s)", "p99 (ms)", "Gateway CPU per pay", "Efficiency"], &rows, 1);
    let half = &scale.half_capacity;
    let _ = writeln!(
        out,
        "One gateway, unpinned: capacity {} pays/s (closed loop), then an open loop at half of it, \
         {} pays/s: the latency the gateway adds by its own `Server-Timing` (from reading the request \
         to its answer, less the wait for Alipay; its ledger commits included), and end to end at the \
         load generator. Beside it, right after on the same server, `pgbench`: one-row INSERT \
         transactions at {}/s from 2 clients, each a durable commit.\n",
        rps(half.capacity_rps),
        rps(half.rate_rps),
        count(u64::from(half.commit_rate)),
    );
    let limit = half.commit_p99_ms + 1.0;
    let verdict = if half.added_p99_ms <= limit { "met" } else { "not met" };
    let rows = vec![
        vec!["Added by the gateway, at half capacity".to_owned(), ms(half.added_p50_ms), ms(half.added_p99_ms)],
        vec!["Of which its intent's durable commit".to_owned(), ms(half.intent_p50_ms), ms(half.intent_p99_ms)],
        vec!["End to end, at half capacity".to_owned(), ms(half.p50_ms), ms(half.p99_ms)],
        vec!["Durable commit (pgbench)".to_owned(), ms(half.commit_p50_ms), ms(half.commit_p99_ms)],
    ];
    table(out, &["Latency", "p50 (ms)", "p99 (ms)"], &rows, 1);
    let _ = writeln!(out, "Target: the added p99 at most the commit's p99 + 1 ms = {} ms: {verdict}.\n", ms(limit));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Percentiles;

    fn report() -> Report {
        Report {
            title: "Mixed, RSA2".to_owned(),
            started_at: "2025-01-02T03:04:05Z".to_owned(),
            target: "http://127.0.0.1:8080".to_owned(),
            mode: "open loop, 2000/s for 30 s".to_owned(),
            tenants: 1_000,
            duration_s: 30.0,
            requests: 70_368,
            throughput_rps: 2_345.6,
            latency: Percentiles {
                p50_ms: 1.234,
                p90_ms: 3.5,
                p99_ms: 12.34,
                p999_ms: 45.67,
                max_ms: 1_234.56,
                mean_ms: 2.0,
            },
            errors: 12_345,
            by_operation: BTreeMap::from([(
                "pay".to_owned(),
                OperationStats { requests: 50_000, errors: 3, latency: Percentiles::default() },
            )]),
            ..Report::default()
        }
    }

    #[test]
    fn run_shows_the_headline_figures_formatted() {
        let text = run_markdown(&report());
        assert!(text.starts_with("## Mixed, RSA2\n"));
        assert!(text.contains("http://127.0.0.1:8080 · open loop, 2000/s for 30 s · 1,000 tenants"));
        assert!(text.contains("| 2,346 | 1.23 | 3.50 | 12.3 | 45.7 | 1,234.6 | 2.00 | 70,368 | 12,345 |"));
        assert!(text.contains("| pay | 50,000 | 3 | 0.00 | 0.00 | 0.00 |"));
        assert!(text.contains("Generator: 0.0 µs CPU per request, 0.00 cores busy, 0 late starts."));
    }

    #[test]
    fn markup_in_titles_stays_text() {
        let text = run_markdown(&Report { title: "A & <B>\nC".to_owned(), ..report() });
        assert!(text.starts_with("## A & \\<B> C\n"));
    }

    #[test]
    fn empty_tallies_and_missing_verification_are_skipped() {
        let text = run_markdown(&report());
        assert!(!text.contains("Errors by kind"));
        assert!(!text.contains("Status mix"));
        assert!(!text.contains("Verification"));
    }

    #[test]
    fn tallies_show_counts_and_shares_with_pipes_escaped() {
        let mut run = report();
        run.status_mix = BTreeMap::from([("200 SUCCESS".to_owned(), 3), ("a|b".to_owned(), 1)]);
        run.errors_by_kind = BTreeMap::from([("timeout".to_owned(), 1_500)]);
        let text = run_markdown(&run);
        assert!(text.contains("### Status mix"));
        assert!(text.contains("| 200 SUCCESS | 3 | 75.0% |"));
        assert!(text.contains("| a\\|b | 1 | 25.0% |"));
        assert!(text.contains("| timeout | 1,500 | 100.0% |"));
    }

    #[test]
    fn verification_shows_its_table_and_examples_when_present() {
        let mut run = report();
        run.verification = Some(Verification {
            checked: 70_000,
            mismatches: 1,
            examples: vec!["trade 42: POS heard SUCCESS,\nledger says FAILED".to_owned()],
            ..Verification::default()
        });
        let text = run_markdown(&run);
        assert!(text.contains("### Verification"));
        assert!(text.contains("| 70,000 | 1 | 0 | 0 |"));
        assert!(text.contains("- trade 42: POS heard SUCCESS, ledger says FAILED\n"));
    }

    #[test]
    fn bench_has_title_reproduction_headline_and_runs_with_charts() {
        let bench = BenchReport {
            machine: "2 cores, Linux 6.1".to_owned(),
            capacity_rps: 4_700.0,
            throughput_rps: 2_345.6,
            gateway_cpu_us_per_pay_rsa2: 250.0,
            crypto_floor_us_rsa2: 100.0,
            gateway_rss_mib: 64.34,
            runs: vec![report(), Report { title: "MD5 tenants, 1% UNKNOWN".to_owned(), ..report() }],
            ..BenchReport::default()
        };
        let text = bench_markdown(&bench);
        assert!(text.starts_with("# Benchmarks\n"));
        assert!(text.contains("Machine: 2 cores, Linux 6.1."));
        assert!(text.contains("`scripts/bench`") && text.contains("`loadtest bench`"));
        assert!(text.contains("| Capacity, mixed workload (closed loop, 64 connections) | 4,700 req/s |"));
        assert!(text.contains("| Rate of the headline run (open loop, half of capacity) | 2,346 req/s |"));
        assert!(text.contains("shares its cores: the load generator, the Alipay sandbox, the gateway(s)"));
        assert!(text.contains("| Gateway CPU per RSA2 pay | 2.5 × the crypto floor |"));
        assert!(text.contains("| Gateway RSS after the runs | 64.3 MiB |"));
        assert!(text.contains("## Mixed, RSA2\n"));
        assert!(text.contains("![latency and throughput](bench/mixed-rsa2.svg)"));
        assert!(text.contains("![latency and throughput](bench/md5-tenants-1-unknown.svg)"));
    }

    #[test]
    fn the_front_door_shows_next_to_the_partner_api_and_its_own_floor() {
        let bench = BenchReport {
            gateway_cpu_us_per_pay_rsa2: 350.0,
            crypto_floor_us_rsa2: 277.0,
            gateway_cpu_us_per_pay_front_door: 640.0,
            crypto_floor_us_front_door: 560.0,
            ..BenchReport::default()
        };
        let text = bench_markdown(&bench);
        assert!(text.contains(
            "| Gateway CPU per pay, RSA2 through the front door | 640.0 µs (1.83 × the partner API's RSA2 pay) |"
        ));
        assert!(text.contains("| Crypto floor, two RSA-2048 signs + two verifies | 560.0 µs |"));
        assert!(text.contains("| Gateway CPU per front-door pay | 1.14 × the crypto floor |"));
        assert!(text.contains("two signs and two verifies"));
        assert!(!text.contains("Capacity, mixed") && !text.contains("Gateway CPU per pay, MD5"), "not run");
        let without = bench_markdown(&BenchReport { gateway_cpu_us_per_pay_front_door: 0.0, ..bench });
        assert!(!without.contains("front door") && !without.contains("front-door"));
    }

    fn latency_steps(steady: [Option<f64>; 3]) -> BenchReport {
        let step = |alipay: &str, cpu: f64, steady: Option<f64>, in_flight: u64, rss: f64| LatencyStep {
            alipay: alipay.to_owned(),
            rate_rps: 2_000.0,
            gateway_cpu_us_per_pay: cpu,
            steady_cpu_us_per_pay: steady,
            peak_in_flight: in_flight,
            peak_rss_mib: rss,
            ..LatencyStep::default()
        };
        let steps = vec![
            step("at once", 185.0, steady[0], 120, 24.0),
            step("p50 150 ms, p99 600 ms", 190.0, steady[1], 500, 46.0),
            step("p50 2300 ms, p99 6000 ms", 205.0, steady[2], 5_300, 266.3),
        ];
        BenchReport { latency: Some(LatencyReport { steps }), ..BenchReport::default() }
    }

    #[test]
    fn the_cpu_target_is_judged_on_the_runs_second_halves_with_the_whole_runs_beside() {
        let text = bench_markdown(&latency_steps([Some(182.0), Some(187.0), Some(186.0)]));
        assert!(text.contains("| at once | 0.0 | 120 | 185.0 µs | 182.0 µs | 24.0 MiB |"), "{text}");
        assert!(text.contains(
            "CPU per pay within 10% of Alipay answering at once: +2.7% at worst in the runs' second halves, \
             met (over the whole runs +10.8%); memory under 100 MiB with 5,300 pays in flight: 266.3 MiB, not met."
        ));
        let slow = bench_markdown(&latency_steps([Some(182.0), Some(187.0), Some(201.0)]));
        assert!(slow.contains("+10.4% at worst in the runs' second halves, not met (over the whole runs +10.8%)"));
    }

    #[test]
    fn a_report_older_than_the_second_half_figure_is_judged_on_the_whole_runs() {
        let text = bench_markdown(&latency_steps([Some(182.0), None, Some(186.0)]));
        assert!(text.contains("| p50 150 ms, p99 600 ms | 0.0 | 500 | 190.0 µs | – | 46.0 MiB |"), "{text}");
        assert!(text.contains("within 10% of Alipay answering at once: +10.8% at worst, not met; memory"));
    }

    #[test]
    fn bench_ratio_survives_a_zero_crypto_floor() {
        let text = bench_markdown(&BenchReport { gateway_cpu_us_per_pay_rsa2: 250.0, ..BenchReport::default() });
        assert!(text.contains("| Gateway CPU per RSA2 pay | n/a (no crypto floor measured) |"));
        assert!(!text.contains("inf") && !text.contains("NaN"));
    }

    #[test]
    fn slugs_are_lowercase_words_joined_by_dashes() {
        assert_eq!(slug("MD5 tenants, 1% UNKNOWN"), "md5-tenants-1-unknown");
        assert_eq!(slug("  --Mixed (RSA2)-- "), "mixed-rsa2");
        assert_eq!(slug("Zahlung über 100 €"), "zahlung-ber-100");
        assert_eq!(slug(""), "run");
        assert_eq!(slug("€ % !"), "run");
    }
}
