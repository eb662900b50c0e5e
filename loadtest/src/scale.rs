//! `loadtest bench`'s run over many gateways (issue 19), in two parts:
//!
//! 1. **Scaling.** The same closed loop of MD5 pays over one, two and three gateways on one
//!    Postgres and Redis, every gateway pinned to the same core (`taskset`), so each step has the
//!    same CPU: the efficiency is the throughput over the one gateway's, and the gateways' CPU per
//!    pay (summed) shows what sharing costs (budgets in Redis, more connections, more batches).
//! 2. **Latency beside a commit.** One gateway, unpinned: its capacity (closed loop), then an
//!    open loop at half of it; then `pgbench` on the same server, one-row INSERT transactions at
//!    [`COMMIT_RATE`] with two clients, each a durable commit: the figure the pay path's one
//!    durable commit (docs/durability.md) is set against.

#![allow(clippy::print_stdout, reason = "a command-line tool: stdout is where its results go")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::bench::Bench;
use crate::mix::Mix;
use crate::report::{HalfCapacity, Report, ScaleReport, ScaleStep};
use crate::run::Api;
use crate::tenants_file::PosTenant;

/// pgbench's commits per second (the figure docs/performance.md measured the commit tail at).
pub const COMMIT_RATE: u32 = 2_000;
const COMMIT_CLIENTS: u32 = 2;
const COMMIT_LENGTH: Duration = Duration::from_secs(10);

/// Runs both parts over `all` (three gateways); answers the figures and the runs made.
pub(crate) async fn measure(
    all: &Bench,
    md5: &[PosTenant],
    pays: u64,
    length: Duration,
    database_url: &str,
) -> anyhow::Result<(ScaleReport, Vec<Report>)> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let core = cores - 1;
    let mut runs = Vec::new();
    let mut steps: Vec<ScaleStep> = Vec::new();
    pin(&all.gateway_pids, &core.to_string())?;
    for n in 1..=all.targets.len() {
        let title = format!("MD5 payments over {n} gateway(s) sharing one core");
        let result = all.first(n).closed(&title, md5, Api::Partner, Mix::default(), pays).await;
        let (run, cpu) = match result {
            Ok(measured) => measured,
            Err(error) => {
                pin(&all.gateway_pids, &format!("0-{core}"))?;
                return Err(error);
            }
        };
        let one = steps.first().map_or(run.throughput_rps, |s| s.throughput_rps);
        steps.push(ScaleStep {
            gateways: n,
            throughput_rps: run.throughput_rps,
            p99_ms: run.latency.p99_ms,
            gateway_cpu_us_per_pay: cpu,
            efficiency: run.throughput_rps / one.max(f64::MIN_POSITIVE),
        });
        runs.push(run);
    }
    pin(&all.gateway_pids, &format!("0-{core}"))?;

    let one = all.first(1);
    let (probe, _) = one.closed("MD5 payments, one gateway, capacity", md5, Api::Partner, Mix::default(), pays).await?;
    let rate = (probe.throughput_rps / 2.0).max(10.0);
    let (half, _) = one.open("MD5 payments, one gateway, at half capacity", md5, Mix::default(), rate, length).await?;
    let (commit_p50_ms, commit_p99_ms) = pgbench(database_url).await?;
    println!("  pgbench durable commits at {COMMIT_RATE}/s: p50 {commit_p50_ms:.2} ms, p99 {commit_p99_ms:.2} ms");
    let half_capacity = HalfCapacity {
        capacity_rps: probe.throughput_rps,
        rate_rps: rate,
        p50_ms: half.latency.p50_ms,
        p99_ms: half.latency.p99_ms,
        added_p50_ms: half.added_by_gateway.as_ref().map_or(0.0, |a| a.p50_ms),
        added_p99_ms: half.added_by_gateway.as_ref().map_or(0.0, |a| a.p99_ms),
        intent_p50_ms: half.intent_commit.as_ref().map_or(0.0, |a| a.p50_ms),
        intent_p99_ms: half.intent_commit.as_ref().map_or(0.0, |a| a.p99_ms),
        commit_rate: COMMIT_RATE,
        commit_p50_ms,
        commit_p99_ms,
    };
    runs.extend([probe, half]);
    Ok((ScaleReport { core, steps, half_capacity }, runs))
}

/// Sets the CPU affinity of every thread of `pids` (`taskset -a -p -c`).
fn pin(pids: &[u32], cpus: &str) -> anyhow::Result<()> {
    for pid in pids {
        let status =
            Command::new("taskset").args(["-a", "-p", "-c", cpus, &pid.to_string()]).stdout(Stdio::null()).status()?;
        anyhow::ensure!(status.success(), "taskset -c {cpus} of process {pid} failed");
    }
    Ok(())
}

/// p50 and p99 (ms) of `pgbench`'s one-row INSERT transactions on `database_url`, from its
/// per-transaction log.
async fn pgbench(database_url: &str) -> anyhow::Result<(f64, f64)> {
    let client = tenants::db::connect(database_url).await?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS bench_commits (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
    let dir = std::env::temp_dir().join(format!("loadtest-pgbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = database_url.to_owned();
    let logs = dir.clone();
    let latencies = tokio::task::spawn_blocking(move || run_pgbench(&url, &logs)).await?;
    let _ = std::fs::remove_dir_all(&dir);
    let latencies = latencies?;
    let at = |q: f64| latencies.value_at_quantile(q) as f64 / 1000.0;
    Ok((at(0.50), at(0.99)))
}

fn run_pgbench(database_url: &str, dir: &Path) -> anyhow::Result<Histogram<u64>> {
    let script = dir.join("commit.sql");
    std::fs::write(&script, "INSERT INTO bench_commits DEFAULT VALUES;\n")?;
    let prefix = dir.join("log");
    let clients = COMMIT_CLIENTS.to_string();
    let out = Command::new(pgbench_binary())
        .args(["-n", "-c", &clients, "-j", &clients, "-R", &COMMIT_RATE.to_string()])
        .args(["-T", &COMMIT_LENGTH.as_secs().to_string(), "--log", "--log-prefix"])
        .arg(&prefix)
        .arg("-f")
        .arg(&script)
        .arg(database_url)
        .output()?;
    anyhow::ensure!(out.status.success(), "pgbench failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    // One line per transaction: client, number, latency in µs, script, epoch s, µs[, lag].
    let mut latencies = Histogram::<u64>::new(3)?;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if !path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("log")) {
            continue;
        }
        for line in std::fs::read_to_string(&path)?.lines() {
            if let Some(us) = line.split_whitespace().nth(2).and_then(|f| f.parse::<u64>().ok()) {
                latencies.record(us)?;
            }
        }
    }
    anyhow::ensure!(!latencies.is_empty(), "pgbench logged no transactions");
    Ok(latencies)
}

/// `pgbench` on the PATH, else the newest under /usr/lib/postgresql (Debian).
fn pgbench_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("pgbench"))
        .find(|path| path.exists());
    on_path.unwrap_or_else(|| {
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path().join("bin/pgbench"))
            .filter(|path| path.exists())
            .collect();
        found.sort();
        found.pop().unwrap_or_else(|| PathBuf::from("pgbench"))
    })
}
