//! The `loadtest` command: `run`, `provision`, `bench`.

#![allow(clippy::print_stdout, reason = "a command-line tool: stdout is where its results go")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tenants::model::Limits;

use crate::mix::Mix;
use crate::provision::{Onboarding, ProvisionOptions, provision};
use crate::report::Report;
use crate::run::{Api, Load, RunOptions, Spread, run};
use crate::schedule::{Schedule, parse_duration};
use crate::tenants_file::TenantsFile;
use crate::verify::{VerifyOptions, verify};

#[derive(Debug, Parser)]
#[command(name = "loadtest", version, about = "Load tests, provisions and benchmarks the Alipay gateway")]
pub struct Cli {
    /// Worker threads of the generator (default: one per core).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Offers load to a gateway and reports what it saw.
    Run(Box<RunArgs>),
    /// Creates tenants (registry + sandbox) and writes the tenants file.
    Provision(ProvisionArgs),
    /// Starts the whole stack here, runs the standard mixes, writes bench/report.json and BENCHMARKS.md.
    Bench(crate::bench::BenchArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The tenants file (from `loadtest provision`, or `.dev/stack.json`).
    #[arg(long)]
    pub tenants: PathBuf,
    /// A gateway's base URL, repeated for several (default: the tenants file's `gateway_urls`,
    /// or its `gateway_url`).
    #[arg(long = "target", visible_alias = "gateway")]
    pub targets: Vec<String>,
    /// How calls are spread over several targets: in turn, or each tenant to one target.
    #[arg(long, value_enum, default_value_t = Spread::RoundRobin)]
    pub spread: Spread,
    /// Only the tenants that sign with this (MD5, RSA2).
    #[arg(long)]
    pub only: Option<String>,
    /// The API the POS speaks: `partner` (JSON, HMAC) or `alipay` (Alipay's OpenAPI on each
    /// tenant's front door, signed with its POS key; every tenant needs `front_door` credentials).
    #[arg(long, value_enum, default_value_t = Api::Partner)]
    pub api: Api,
    /// Open loop: requests per second (`2000`), steps (`500:10s,1000:10s`) or a ramp (`100..2000:30s`).
    #[arg(long, conflicts_with = "connections")]
    pub rate: Option<Schedule>,
    /// Closed loop: this many connections, each sending as soon as its last answer came.
    #[arg(long)]
    pub connections: Option<usize>,
    /// How long to run (`30s`, `2m`).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// How many requests to send (with --duration: whichever comes first).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Calls and weights, e.g. `pay=90,query=5,refund=3,cancel=1,qr_order=1`.
    #[arg(long, default_value = "pay=1")]
    pub mix: Mix,
    /// Share of payments the buyer's bank refuses.
    #[arg(long, default_value_t = 0.0)]
    pub failed: f64,
    /// Share of payments whose first answer is UNKNOWN (settled later by the reconciler).
    #[arg(long, default_value_t = 0.0)]
    pub unknown: f64,
    /// A call without an answer after this long counts as a timeout.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub timeout: Duration,
    /// Calls in flight at most (open loop).
    #[arg(long, default_value_t = 10_000)]
    pub max_in_flight: usize,
    /// Where report.json, report.md and report.svg go.
    #[arg(long, default_value = "loadtest-report")]
    pub out: PathBuf,
    /// A title for the report.
    #[arg(long, default_value = "loadtest run")]
    pub title: String,
    /// Afterwards, compare every payment's answer with the ledger and the sandbox's ground truth.
    #[arg(long)]
    pub verify: bool,
    /// The ledger's database (default: the tenants file's `database_url`).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// The sandbox (default: the tenants file's `sandbox_url`).
    #[arg(long)]
    pub sandbox_url: Option<String>,
    /// How long verification waits for open trades to settle.
    #[arg(long, value_parser = parse_duration, default_value = "90s")]
    pub verify_wait: Duration,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Run even with tenants that may be in Alipay's production (the barcodes and amounts are
    /// made up: real money may be asked of real buyers).
    #[arg(long)]
    pub allow_production: bool,
    /// Alipay's answer time for this run, `P50/P99` in milliseconds (`150/600`): the sandbox
    /// (--sandbox-url or the tenants file's) answers within a log-normal model of it, both
    /// dialects, and answers at once again after the run.
    #[arg(long)]
    pub alipay_latency: Option<sandbox::faults::LatencyModel>,
}

#[derive(Debug, Args)]
pub struct ProvisionArgs {
    #[arg(long, default_value_t = 100)]
    pub count: usize,
    /// Share of Global (MAPI) MD5 tenants; the rest are OpenAPI RSA2.
    #[arg(long, default_value_t = 0.2)]
    pub md5_share: f64,
    #[arg(long, default_value = "lt")]
    pub prefix: String,
    /// Onboard through this gateway admin listener's tenants API (`http://host:port`)…
    #[arg(long)]
    pub admin_url: Option<String>,
    #[arg(long, env = "ACQ_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// …or straight into the registry in this database (needs ACQ_MASTER_KEYS).
    #[arg(long, env = "DATABASE_URL", required_unless_present = "admin_url")]
    pub database_url: Option<String>,
    #[arg(long)]
    pub sandbox_url: String,
    /// Recorded in the tenants file for `loadtest run`.
    #[arg(long)]
    pub gateway: Option<String>,
    #[arg(long, default_value = "loadtest-tenants.json")]
    pub out: PathBuf,
    /// Also enable each OpenAPI tenant's front door (RSA2, a generated POS key) and write its
    /// credentials to the tenants file, for `loadtest run --api alipay` (needs --gateway).
    #[arg(long)]
    pub front_door: bool,
}

pub async fn main(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => run_command(*args).await,
        Command::Provision(args) => {
            let options = ProvisionOptions {
                count: args.count,
                md5_share: args.md5_share,
                prefix: args.prefix,
                database_url: args.database_url,
                sandbox_url: args.sandbox_url,
                gateway_url: args.gateway,
                limits: generous_limits(),
                front_door: args.front_door,
            };
            let onboarding =
                match (args.admin_url, args.admin_token) {
                    (Some(url), Some(token)) => Onboarding::AdminApi { url, token },
                    (Some(_), None) => anyhow::bail!("--admin-url needs --admin-token (or ACQ_ADMIN_TOKEN)"),
                    (None, _) => Onboarding::Registry(Arc::new(tenants::Keyring::from_env().map_err(|e| {
                        anyhow::anyhow!("the master key: {e} (set ACQ_MASTER_KEYS, or give --admin-url)")
                    })?)),
                };
            let file = provision(&options, onboarding).await?;
            file.write(&args.out)?;
            println!("{} tenants written to {}", file.tenants.len(), args.out.display());
            Ok(())
        }
        Command::Bench(args) => crate::bench::bench(args).await,
    }
}

/// Limits a load test does not reach by accident.
pub fn generous_limits() -> Limits {
    Limits { pay_rate: 100_000, pay_burst: 100_000, other_rate: 100_000 }
}

async fn run_command(args: RunArgs) -> anyhow::Result<()> {
    let file = TenantsFile::read(&args.tenants)?;
    let tenants = file.only(args.only.as_deref());
    if tenants.is_empty() {
        anyhow::bail!("no tenant in {} signs with {}", args.tenants.display(), args.only.unwrap_or_default());
    }
    let unsafe_to_run: Vec<&str> =
        tenants.iter().filter(|t| !t.outside_production()).map(|t| t.slug.as_str()).collect();
    if !unsafe_to_run.is_empty() && !args.allow_production {
        anyhow::bail!(
            "{} tenant(s) may be in Alipay's production ({}{}): loadtest makes up barcodes and amounts, so it \
             runs only with tenants whose `environment` in the tenants file is `sandbox` or a sandbox's gateway.do \
             (as `loadtest provision` and `deploy/dev` write it); --allow-production runs anyway",
            unsafe_to_run.len(),
            unsafe_to_run.iter().take(3).copied().collect::<Vec<_>>().join(", "),
            if unsafe_to_run.len() > 3 { ", …" } else { "" }
        );
    }
    let targets = if args.targets.is_empty() { file.gateways() } else { args.targets.clone() };
    if targets.is_empty() {
        anyhow::bail!("give --target (the tenants file has no gateway_url)");
    }
    let load = match (args.rate.clone(), args.connections) {
        (Some(schedule), None) => Load::Open(schedule),
        (None, Some(connections)) if connections > 0 => Load::Closed { connections },
        (None, None) => anyhow::bail!("give --rate (open loop) or --connections (closed loop)"),
        _ => anyhow::bail!("--connections must be at least 1"),
    };
    let mix = args.mix.clone().with_outcomes(args.failed, args.unknown).map_err(anyhow::Error::msg)?;
    let options = RunOptions {
        title: args.title.clone(),
        targets,
        spread: args.spread,
        tenants: tenants.clone(),
        api: args.api,
        mix,
        load,
        duration: args.duration,
        requests: args.requests,
        timeout: args.timeout,
        max_in_flight: args.max_in_flight.max(1),
        progress: !args.quiet,
    };
    let sandbox_url = args.sandbox_url.clone().or(file.sandbox_url.clone());
    if let Some(model) = args.alipay_latency {
        let sandbox = sandbox_url.as_deref().ok_or_else(|| anyhow::anyhow!("--alipay-latency needs --sandbox-url"))?;
        crate::latency::set_alipay_latency(sandbox, Some(model)).await?;
    }
    let result = run(options).await;
    if let (Some(_), Some(sandbox)) = (args.alipay_latency, sandbox_url.as_deref()) {
        crate::latency::set_alipay_latency(sandbox, None).await?;
    }
    let (mut report, trades) = result?;
    if args.verify {
        let verify_options = VerifyOptions {
            database_url: args
                .database_url
                .or(file.database_url.clone())
                .ok_or_else(|| anyhow::anyhow!("--verify needs --database-url"))?,
            sandbox_url: sandbox_url.ok_or_else(|| anyhow::anyhow!("--verify needs --sandbox-url"))?,
            wait: args.verify_wait,
        };
        report.verification = Some(verify(&tenants, &trades, &verify_options).await?);
    }
    write_report(&report, &args.out)?;
    print_summary(&report);
    println!("report: {}", args.out.join("report.md").display());
    Ok(())
}

/// `report.json`, `report.md` and `report.svg` in `dir`.
pub fn write_report(report: &Report, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    std::fs::write(dir.join("report.json"), serde_json::to_vec_pretty(report)?)?;
    let markdown = format!("{}\n![latency and throughput](report.svg)\n", crate::render::run_markdown(report));
    std::fs::write(dir.join("report.md"), markdown)?;
    std::fs::write(dir.join("report.svg"), crate::render::chart_svg(report))?;
    Ok(())
}

/// A few lines on the terminal.
pub fn print_summary(report: &Report) {
    let l = &report.latency;
    println!(
        "{}: {} requests in {:.1} s = {:.0}/s; p50 {:.2} ms, p90 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2}; errors {}",
        report.title,
        report.requests,
        report.duration_s,
        report.throughput_rps,
        l.p50_ms,
        l.p90_ms,
        l.p99_ms,
        l.p999_ms,
        l.max_ms,
        report.errors
    );
    println!(
        "generator: {:.1} µs CPU per request, {:.2} cores busy, {} late starts",
        report.generator.cpu_us_per_request, report.generator.cores_busy, report.generator.late_starts
    );
    if let Some(v) = &report.verification {
        println!(
            "verification: {} checked, {} mismatches, {} double charges, {} non-final",
            v.checked, v.mismatches, v.double_charges, v.non_final
        );
    }
}
