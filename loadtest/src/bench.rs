//! `loadtest bench`: the whole stack on this machine, measured.
//!
//! Starts `alipay-sandbox`, `gateway` and `reconciler` (the release binaries next to this one,
//! with the launcher the tests use too, `service::launch`, from their typed configurations)
//! against a fresh database on the local Postgres and a fresh key prefix on the local Redis,
//! provisions tenants, and runs the standard mixes:
//!
//! 1. MD5 (Global) tenants, payments only, closed loop: the gateway's CPU per MD5 pay.
//! 2. RSA2 (OpenAPI) tenants, payments only, closed loop: CPU per RSA2 pay, next to the crypto
//!    floor (one RSA-2048 sign and one verify) measured in this process.
//! 3. The same tenants' payments through their front doors (`alipay.trade.pay` on
//!    `/alipay/gateway.do`, signed with each tenant's POS key), the same shape and count: CPU per
//!    front-door pay, next to its own floor (two signs and two verifies: the front door verifies
//!    the POS, signs to Alipay, verifies Alipay's answer and signs its answer to the POS).
//! 4. All tenants, the mixed workload (pays, queries, refunds, cancels, QR orders; 2% refused,
//!    1% UNKNOWN), closed loop for a few seconds to find the capacity, then open loop at half of
//!    it: the headline throughput and latency.
//!
//! 5. Many gateways ([`crate::scale`]): MD5 payments over one, two and three gateways given the
//!    same CPU, then one gateway at half its capacity beside pgbench's durable commits.
//!
//! 6. Alipay's latency ([`crate::latency`]): MD5 payments at 2,000/s with Alipay answering at
//!    once, as Alipay does, and slowly enough for about 5,000 pays in flight.
//!
//! `--only` picks some of them (`md5`, `rsa2`, `front-door`, `mixed`, `scale`, `latency`); the report then holds only
//! those. Every run is verified against the ledger and the sandbox's ground truth. Time runs at the
//! sandbox's `--time-scale` 0.1 (the reconciler queries every 500 ms and cancels at 6 s), so
//! UNKNOWN trades settle within the bench. Writes `bench/report.json`, one SVG per run, and
//! `BENCHMARKS.md`.

#![allow(clippy::print_stdout, reason = "a command-line tool: stdout is where its results go")]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alipay::{PrivateKey, SignType, Signer, Verifier};
use service::launch::{Service, configured, ready_within};
use tenants::Keyring;

use crate::client::Http;
use crate::client::alipay::FrontDoors;
use crate::mix::Mix;
use crate::provision::{Onboarding, ProvisionOptions, provision};
use crate::render;
use crate::report::{BenchReport, Report, Verification};
use crate::run::{Api, Load, RunOptions, Spread, run};
use crate::schedule::Schedule;
use crate::tenants_file::PosTenant;
use crate::verify::{VerifyOptions, verify};
use telemetry::process::{cpu_seconds, rss_mib};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// A database on this server is created for the bench and dropped after.
    #[arg(long, env = "DATABASE_ADMIN_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub database_admin_url: String,
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Tenants to provision (a fifth of them MD5).
    #[arg(long, default_value_t = 200)]
    pub tenants: usize,
    /// Where report.json and the charts go.
    #[arg(long, default_value = "bench")]
    pub out: PathBuf,
    /// The Markdown summary.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub markdown: PathBuf,
    /// Payments of the MD5 run (the RSA2 and front-door runs make a fifth as many each).
    #[arg(long, default_value_t = 20_000)]
    pub pays: u64,
    /// Length of the headline open-loop run.
    #[arg(long, value_parser = crate::schedule::parse_duration, default_value = "20s")]
    pub duration: Duration,
    /// Only these runs (comma-separated); the report then holds only them: point --out and
    /// --markdown elsewhere to keep the full ones.
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<BenchRun>,
    /// Run nothing: write the Markdown (and charts) again from this earlier report.json.
    #[arg(long)]
    pub from_report: Option<PathBuf>,
}

/// The bench's runs, as `--only` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchRun {
    /// MD5 tenants' payments (partner API).
    Md5,
    /// RSA2 tenants' payments (partner API).
    Rsa2,
    /// RSA2 tenants' payments through their front doors (Alipay's OpenAPI).
    FrontDoor,
    /// All tenants, the mixed workload: capacity, then the headline open-loop run.
    Mixed,
    /// MD5 payments over one, two and three gateways sharing one core; then one gateway at half
    /// its capacity beside pgbench's durable commits ([`crate::scale`]).
    Scale,
    /// MD5 payments with Alipay answering at once, as Alipay does, and slowly enough for 5,000
    /// pays in flight ([`crate::latency`]).
    Latency,
}

/// The sandbox's time scale for the bench: Alipay's 5 s and 60 s become 500 ms and 6 s.
const TIME_SCALE: f64 = 0.1;
const CONNECTIONS: usize = 64;
/// The gateways' wait for Alipay (the runs with Alipay's latency wait longer: [`crate::latency`]).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let report = match &args.from_report {
        Some(path) => serde_json::from_slice(&std::fs::read(path)?)?,
        None => {
            let binaries = Binaries::next_to_this()?;
            let database = Database::create(&args.database_admin_url).await?;
            let result = bench_on(&args, &binaries, &database.url).await;
            database.drop_it().await;
            result?
        }
    };
    std::fs::create_dir_all(&args.out)?;
    if args.from_report.is_none() {
        std::fs::write(args.out.join("report.json"), serde_json::to_vec_pretty(&report)?)?;
    }
    for run in &report.runs {
        std::fs::write(args.out.join(format!("{}.svg", render::slug(&run.title))), render::chart_svg(run))?;
    }
    // The file layer's own benchmarks (bills, settlement) are run by `cargo bench`, not here:
    // their section, in bench/settlement.md, follows the load runs.
    let mut markdown = render::bench_markdown(&report);
    if let Ok(settlement) = std::fs::read_to_string(args.out.join("settlement.md")) {
        markdown.push('\n');
        markdown.push_str(&settlement);
    }
    std::fs::write(&args.markdown, markdown)?;
    println!("wrote {} and {}", args.out.join("report.json").display(), args.markdown.display());
    Ok(())
}

async fn bench_on(args: &BenchArgs, binaries: &Binaries, database_url: &str) -> anyhow::Result<BenchReport> {
    let started_at = crate::now_rfc3339();
    let master = Keyring::generate_line("bench")?;
    let prefix = format!("bench:{}", std::process::id());
    let (_sandbox, sandbox_url) = binaries.sandbox().await?;
    let (gateway, gateway_url, admin_url) =
        binaries.gateway(database_url, &args.redis_url, &prefix, &master, UPSTREAM_TIMEOUT).await?;
    let _reconciler = binaries.reconciler(database_url, &args.redis_url, &prefix, &master).await?;
    ready_within(&admin_url, Duration::from_secs(10)).await?;
    println!("stack up: gateway {gateway_url}, sandbox {sandbox_url}");

    let wanted = |run: BenchRun| args.only.is_empty() || args.only.contains(&run);
    let provisioning = ProvisionOptions {
        count: args.tenants.max(2),
        md5_share: 0.2,
        prefix: "bench".into(),
        database_url: Some(database_url.to_owned()),
        sandbox_url: sandbox_url.clone(),
        gateway_url: Some(gateway_url.clone()),
        limits: crate::cli::generous_limits(),
        front_door: wanted(BenchRun::FrontDoor),
    };
    let file = provision(&provisioning, Onboarding::Registry(Arc::new(Keyring::parse(&master)?))).await?;
    // The gateway's snapshot follows the registry within a moment; wait for every tenant.
    if let Some(last) = file.tenants.last() {
        crate::client::Client::new(&gateway_url, Duration::from_secs(5), 1).wait_until_known(last).await;
    }
    println!("{} tenants provisioned", file.tenants.len());
    let floor = crypto_floor(1)?;
    let front_door_floor = crypto_floor(2)?;
    let sandbox_hooks = sandbox_url.clone();
    let verify_options =
        VerifyOptions { database_url: database_url.to_owned(), sandbox_url, wait: Duration::from_secs(60) };
    let bench = Bench { targets: vec![gateway_url], verify: verify_options, gateway_pids: vec![gateway.pid()] };

    let md5 = file.only(Some("MD5"));
    let rsa2 = file.only(Some("RSA2"));
    let rsa2_pays = (args.pays / 5).max(100);
    let pays = Mix::default();
    let mut report = BenchReport {
        machine: machine(),
        started_at,
        crypto_floor_us_rsa2: floor,
        crypto_floor_us_front_door: front_door_floor,
        ..BenchReport::default()
    };
    if wanted(BenchRun::Md5) {
        let (run, cpu) = bench.closed("MD5 tenants, payments", &md5, Api::Partner, pays.clone(), args.pays).await?;
        report.gateway_cpu_us_per_pay_md5 = cpu;
        report.runs.push(run);
    }
    if wanted(BenchRun::Rsa2) {
        let (run, cpu) = bench.closed("RSA2 tenants, payments", &rsa2, Api::Partner, pays.clone(), rsa2_pays).await?;
        report.gateway_cpu_us_per_pay_rsa2 = cpu;
        report.runs.push(run);
    }
    if wanted(BenchRun::FrontDoor) {
        let doors = FrontDoors::new(&rsa2, &Http::new(Duration::from_secs(5), 1))?;
        if !doors.wait_until_known(rsa2.len().saturating_sub(1)).await {
            anyhow::bail!("the gateway did not learn of the front doors within 30 s");
        }
        let title = "RSA2 tenants, payments through the front door (Alipay OpenAPI)";
        let (run, cpu) = bench.closed(title, &rsa2, Api::Alipay, pays, rsa2_pays).await?;
        report.gateway_cpu_us_per_pay_front_door = cpu;
        report.runs.push(run);
    }
    if wanted(BenchRun::Mixed) {
        let mixed = "pay=90,query=4,refund=3,cancel=2,qr_order=1"
            .parse::<Mix>()
            .and_then(|m| m.with_outcomes(0.02, 0.01))
            .map_err(anyhow::Error::msg)?;
        let (probe, _) = bench.closed_for("All tenants, mixed, capacity", &file.tenants, mixed.clone()).await?;
        let rate = (probe.throughput_rps / 2.0).max(10.0);
        let title = "All tenants, mixed with 1% UNKNOWN, at half capacity";
        let (headline, _) = bench.open(title, &file.tenants, mixed, rate, args.duration).await?;
        report.capacity_rps = probe.throughput_rps;
        report.throughput_rps = headline.throughput_rps;
        report.p50_ms = headline.latency.p50_ms;
        report.p99_ms = headline.latency.p99_ms;
        report.errors = headline.errors;
        report.runs.extend([probe, headline]);
    }
    if wanted(BenchRun::Latency) {
        // A gateway of its own, waiting long enough for a slow Alipay.
        let timeout = crate::latency::UPSTREAM_TIMEOUT;
        let (slow, url, admin) = binaries.gateway(database_url, &args.redis_url, &prefix, &master, timeout).await?;
        ready_within(&admin, Duration::from_secs(10)).await?;
        if let Some(last) = file.tenants.last() {
            crate::client::Client::new(&url, Duration::from_secs(5), 1).wait_until_known(last).await;
        }
        let one = bench.on(url, slow.pid());
        let (latency, runs) = crate::latency::measure(&one, &md5, &sandbox_hooks, args.duration).await?;
        report.latency = Some(latency);
        report.runs.extend(runs);
    }
    if wanted(BenchRun::Scale) {
        // Two more gateways on the same database, Redis prefix and tenants.
        let mut all = Bench { targets: bench.targets.clone(), gateway_pids: bench.gateway_pids.clone(), ..bench };
        let mut more = Vec::new();
        for _ in 0..2 {
            let (extra, url, admin) =
                binaries.gateway(database_url, &args.redis_url, &prefix, &master, UPSTREAM_TIMEOUT).await?;
            ready_within(&admin, Duration::from_secs(10)).await?;
            if let Some(last) = file.tenants.last() {
                crate::client::Client::new(&url, Duration::from_secs(5), 1).wait_until_known(last).await;
            }
            all.targets.push(url);
            all.gateway_pids.push(extra.pid());
            more.push(extra);
        }
        let (scale, runs) = crate::scale::measure(&all, &md5, args.pays / 2, args.duration, database_url).await?;
        report.scale = Some(scale);
        report.runs.extend(runs);
    }
    report.verification = report.runs.iter().filter_map(|r| r.verification.as_ref()).fold(Verification::default(), add);
    report.gateway_rss_mib = rss_mib(gateway.pid());
    Ok(report)
}

/// The gateways a run is sent to (round robin), and how its answers are verified.
pub(crate) struct Bench {
    pub(crate) targets: Vec<String>,
    verify: VerifyOptions,
    pub(crate) gateway_pids: Vec<u32>,
}

impl Bench {
    /// The same runs on another gateway alone.
    pub(crate) fn on(&self, target: String, pid: u32) -> Bench {
        Bench { targets: vec![target], verify: self.verify.clone(), gateway_pids: vec![pid] }
    }

    /// The first `n` gateways only.
    pub(crate) fn first(&self, n: usize) -> Bench {
        Bench {
            targets: self.targets.iter().take(n).cloned().collect(),
            verify: self.verify.clone(),
            gateway_pids: self.gateway_pids.iter().take(n).copied().collect(),
        }
    }

    fn options(&self, title: &str, tenants: &[PosTenant], api: Api, mix: Mix, load: Load) -> RunOptions {
        RunOptions {
            title: title.to_owned(),
            targets: self.targets.clone(),
            spread: Spread::RoundRobin,
            tenants: tenants.to_vec(),
            api,
            mix,
            load,
            duration: None,
            requests: None,
            timeout: Duration::from_secs(10),
            max_in_flight: 10_000,
            progress: true,
        }
    }

    /// A closed-loop run of `requests`; answers it and the gateways' CPU µs per request.
    pub(crate) async fn closed(
        &self,
        title: &str,
        tenants: &[PosTenant],
        api: Api,
        mix: Mix,
        requests: u64,
    ) -> anyhow::Result<(Report, f64)> {
        let load = Load::Closed { connections: CONNECTIONS };
        self.measured(RunOptions { requests: Some(requests), ..self.options(title, tenants, api, mix, load) }).await
    }

    async fn closed_for(&self, title: &str, tenants: &[PosTenant], mix: Mix) -> anyhow::Result<(Report, f64)> {
        let load = Load::Closed { connections: CONNECTIONS };
        let duration = Some(Duration::from_secs(5));
        self.measured(RunOptions { duration, ..self.options(title, tenants, Api::Partner, mix, load) }).await
    }

    pub(crate) async fn open(
        &self,
        title: &str,
        tenants: &[PosTenant],
        mix: Mix,
        rate: f64,
        length: Duration,
    ) -> anyhow::Result<(Report, f64)> {
        let load = Load::Open(Schedule::Constant(rate));
        let options = RunOptions { duration: Some(length), ..self.options(title, tenants, Api::Partner, mix, load) };
        self.measured(options).await
    }

    async fn measured(&self, options: RunOptions) -> anyhow::Result<(Report, f64)> {
        let cpu = || self.gateway_pids.iter().map(|&pid| cpu_seconds(pid)).sum::<f64>();
        let before = cpu();
        let tenants = options.tenants.clone();
        let (mut report, trades) = run(options).await?;
        let cpu_us = (cpu() - before) * 1e6 / (report.requests.max(1) as f64);
        report.verification = Some(verify(&tenants, &trades, &self.verify).await?);
        crate::cli::print_summary(&report);
        println!("  gateway CPU {cpu_us:.1} µs per request");
        Ok((report, cpu_us))
    }
}

fn add(mut sum: Verification, one: &Verification) -> Verification {
    sum.checked += one.checked;
    sum.mismatches += one.mismatches;
    sum.double_charges += one.double_charges;
    sum.non_final += one.non_final;
    sum.examples.extend(one.examples.iter().take(20usize.saturating_sub(sum.examples.len())).cloned());
    sum
}

/// µs of `pairs` RSA2 signs plus as many verifies, in this process, now: one pair is the partner
/// API's RSA2 pay (the gateway signs to Alipay and verifies its answer), two the front door's (it
/// also verifies the POS and signs its answer to the POS).
fn crypto_floor(pairs: u32) -> anyhow::Result<f64> {
    let key = PrivateKey::generate()?;
    let verifier = Verifier::rsa(SignType::Rsa2, &key.public_key()?)?;
    let signer = Signer::rsa2(Arc::new(key))?;
    let text = b"app_id=2021000000000001&biz_content={\"out_trade_no\":\"x\",\"total_amount\":\"88.88\"}&charset=utf-8&method=alipay.trade.pay&sign_type=RSA2&timestamp=2026-11-25 10:15:30&version=1.0";
    let rounds = 1000;
    let started = Instant::now();
    for _ in 0..rounds {
        for _ in 0..pairs {
            let signature = signer.sign(text)?;
            verifier.verify(text, &signature)?;
        }
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds))
}

/// "2 cores (Intel Xeon …), 24 GiB, Linux 6.1.0".
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model =
        cpuinfo.lines().find_map(|l| l.strip_prefix("model name")).map(|m| m.trim_start_matches([' ', '\t', ':']));
    let cores = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores ({}), {memory_gib:.0} GiB, Linux {}", model.unwrap_or("unknown CPU"), kernel.trim())
}

/// How long a service may take to say where it listens.
const START_WITHIN: Duration = Duration::from_secs(30);

/// The release binaries next to this one, started by the shared launcher ([`service::launch`]),
/// as the tests start them.
struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    fn next_to_this() -> anyhow::Result<Binaries> {
        let this = std::env::current_exe()?;
        let dir = this.parent().map(Path::to_path_buf).unwrap_or_default();
        for name in ["alipay-sandbox", "gateway", "reconciler"] {
            if !dir.join(name).exists() {
                anyhow::bail!(
                    "{} is missing: build the binaries first (scripts/build, as scripts/bench does)",
                    dir.join(name).display()
                );
            }
        }
        Ok(Binaries { dir })
    }

    /// The sandbox and its URL.
    async fn sandbox(&self) -> anyhow::Result<(Service, String)> {
        let mut command = Command::new(self.dir.join("alipay-sandbox"));
        command.args(["--listen", "127.0.0.1:0", "--time-scale", &TIME_SCALE.to_string()]).env("RUST_LOG", "warn");
        let sandbox = start(command).await?;
        let url = sandbox.url(0).unwrap_or_default().to_owned();
        Ok((sandbox, url))
    }

    /// The gateway (its calls to Alipay cut at `upstream_timeout`), its partner API URL and its
    /// admin URL.
    async fn gateway(
        &self,
        database_url: &str,
        redis_url: &str,
        prefix: &str,
        master: &str,
        upstream_timeout: Duration,
    ) -> anyhow::Result<(Service, String, String)> {
        let config = gateway::Config {
            listen: ANY_PORT,
            admin_listen: ANY_PORT,
            database_url: database_url.to_owned(),
            redis_url: redis_url.to_owned(),
            redis_prefix: prefix.to_owned(),
            // One worker thread, as in `cargo bench -p gateway --bench pay`: CPU per pay without
            // cross-thread wake-ups; a gateway grows by threads or replicas.
            worker_threads: Some(1),
            // The pay path alone: Alipay's notification of each payment is another request.
            notifications: false,
            // The load generator is one peer (as a load balancer would be), with up to 10,000
            // connections when Alipay is slow.
            max_connections_per_peer: 10_000,
            upstream_timeout,
            first_check: scaled(Duration::from_millis(5_000)),
            deadline: scaled(Duration::from_millis(60_000)),
            qr_check: scaled(Duration::from_millis(15_000)),
            ..gateway::Config::default()
        };
        let mut command = configured(self.dir.join("gateway"), "GATEWAY", &config)?;
        command.env("ACQ_MASTER_KEYS", master).env("RUST_LOG", "warn");
        let gateway = start(command).await?;
        let (Some(base), Some(admin)) = (gateway.url(0), gateway.url(1)) else {
            anyhow::bail!("the gateway named {:?}, not its partner API and admin addresses", gateway.urls);
        };
        let (base, admin) = (base.to_owned(), admin.to_owned());
        Ok((gateway, base, admin))
    }

    async fn reconciler(
        &self,
        database_url: &str,
        redis_url: &str,
        prefix: &str,
        master: &str,
    ) -> anyhow::Result<Service> {
        let config = reconciler::Config {
            admin_listen: ANY_PORT,
            database_url: database_url.to_owned(),
            redis_url: redis_url.to_owned(),
            redis_prefix: prefix.to_owned(),
            upstream_timeout: Duration::from_secs(2),
            lease: Duration::from_secs(3),
            query_interval: scaled(Duration::from_millis(5_000)),
            deadline: scaled(Duration::from_millis(60_000)),
            cancel_retry: scaled(Duration::from_millis(2_000)),
            qr_query_interval: scaled(Duration::from_millis(15_000)),
            sweep_interval: scaled(Duration::from_millis(5_000)),
            ..reconciler::Config::default()
        };
        let mut command = configured(self.dir.join("reconciler"), "RECONCILER", &config)?;
        command.env("ACQ_MASTER_KEYS", master).env("RUST_LOG", "warn");
        start(command).await
    }
}

/// Port 0 on loopback: the service picks a free port and names it.
const ANY_PORT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// A span of Alipay's time at the bench's [`TIME_SCALE`].
fn scaled(alipay: Duration) -> Duration {
    alipay.mul_f64(TIME_SCALE)
}

/// Starts `command` with the shared launcher, off the runtime's threads.
async fn start(command: Command) -> anyhow::Result<Service> {
    Ok(tokio::task::spawn_blocking(move || Service::start(command, START_WITHIN)).await??)
}

/// A database for the bench on the local server, dropped after.
struct Database {
    admin: tokio_postgres::Client,
    name: String,
    url: String,
}

impl Database {
    async fn create(admin_url: &str) -> anyhow::Result<Database> {
        let admin = tenants::db::connect(admin_url).await?;
        let name = format!("loadtest_bench_{}", std::process::id());
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await?;
        let url = admin_url
            .rsplit_once('/')
            .map(|(base, _)| format!("{base}/{name}"))
            .ok_or_else(|| anyhow::anyhow!("{admin_url} is not a postgres://…/database URL"))?;
        tenants::db::migrate(&url).await?;
        ledger::store::migrate(&url).await?;
        Ok(Database { admin, name, url })
    }

    async fn drop_it(self) {
        let _ = self.admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await;
    }
}
