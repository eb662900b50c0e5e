//! One run: offers load (open loop at a scheduled rate, or closed loop over N connections),
//! records every answer, shows progress, and reports.
//!
//! Open loop: a pacing thread wakes at each request's intended send time (or as soon after as
//! it can) and starts every request that is due; latency counts from the intended time, so a
//! stalled gateway is charged for the requests queued behind it (no coordinated omission).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;

use crate::client::alipay::FrontDoors;
use crate::client::{Answer, Call, Client, ErrorKind, GatewayTiming, Http, Intent};
use crate::mix::{Mix, Op};
use crate::recorder::{Recorder, SentTrade};
use crate::report::{Generator, Report};
use crate::schedule::Schedule;
use crate::tenants_file::PosTenant;

/// How load is offered.
#[derive(Debug, Clone)]
pub enum Load {
    Open(Schedule),
    Closed { connections: usize },
}

/// Which API the POS speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Api {
    /// The partner API: JSON signed ACQ1-HMAC with the tenant's API secret.
    #[default]
    Partner,
    /// The front door: Alipay's own OpenAPI (`alipay.trade.*` on `gateway.do`), signed RSA2 with
    /// the tenant's POS key (every tenant needs `front_door` credentials).
    Alipay,
}

/// How calls are spread over several targets (gateway replicas).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Spread {
    /// Each call to the next target in turn (a later query or cancel of a payment may reach
    /// another gateway than its pay: they are stateless).
    #[default]
    RoundRobin,
    /// Each tenant to one target (its index modulo the targets), as a balancer hashing on the
    /// POS's tenant would.
    Tenant,
}

/// How one run's calls are sent.
enum Sender {
    /// A client per target.
    Partner(Vec<Client>),
    Alipay(FrontDoors),
}

impl Sender {
    /// The answer, and what the gateway says of its part by its `Server-Timing` (partner API).
    async fn send(
        &self,
        tenants: &[PosTenant],
        tenant: usize,
        target: usize,
        intent: &Intent,
    ) -> (Answer, Option<GatewayTiming>) {
        match self {
            Sender::Partner(clients) => clients[target].send_timed(&tenants[tenant], &Call::of(intent)).await,
            Sender::Alipay(doors) => (doors.send(tenant, intent).await, None),
        }
    }
}

/// A run, fully described.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub title: String,
    /// The gateways' base URLs (at least one); the report splits its figures by target.
    pub targets: Vec<String>,
    pub spread: Spread,
    pub tenants: Vec<PosTenant>,
    /// The API the calls go to: the partner API at the targets, or each tenant's front door.
    pub api: Api,
    pub mix: Mix,
    pub load: Load,
    /// Stop after this long…
    pub duration: Option<Duration>,
    /// …or after this many requests, whichever comes first.
    pub requests: Option<u64>,
    pub timeout: Duration,
    /// Calls in flight at most (open loop); beyond, a call counts as `generator_overload`.
    pub max_in_flight: usize,
    pub progress: bool,
}

/// Paid payments later calls (query, refund, cancel) act on; bounded.
const PAID_POOL: usize = 100_000;

struct Shared {
    options: RunOptions,
    sender: Sender,
    recorder: Mutex<Recorder>,
    paid: Mutex<VecDeque<(usize, String)>>,
    in_flight: AtomicUsize,
    /// The most calls in flight at once.
    peak_in_flight: AtomicUsize,
    next_trade: AtomicU64,
    /// Calls sent so far (round robin over the targets).
    turn: AtomicU64,
    run_id: String,
}

/// Runs `options`; answers the report (verification is separate: [`crate::verify`]) and the
/// payments made.
pub async fn run(options: RunOptions) -> anyhow::Result<(Report, Vec<SentTrade>)> {
    if options.tenants.is_empty() {
        anyhow::bail!("no tenants to act as");
    }
    if options.duration.is_none() && options.requests.is_none() {
        anyhow::bail!("give a duration or a number of requests");
    }
    if options.targets.is_empty() {
        anyhow::bail!("no target to send to");
    }
    if options.api == Api::Alipay && options.targets.len() > 1 {
        anyhow::bail!("the front doors are each tenant's own URL: give one target with --api alipay");
    }
    let connections = match &options.load {
        Load::Closed { connections } => *connections,
        Load::Open(_) => options.max_in_flight,
    };
    let http = Http::new(options.timeout, connections.clamp(1, 10_000));
    // Each tenant's POS key is parsed here, once.
    let sender = match options.api {
        Api::Partner => {
            Sender::Partner(options.targets.iter().map(|target| Client::over(http.clone(), target)).collect())
        }
        Api::Alipay => Sender::Alipay(FrontDoors::new(&options.tenants, &http)?),
    };
    let started = Instant::now();
    let started_at = crate::now_rfc3339();
    let shared = Arc::new(Shared {
        sender,
        recorder: Mutex::new(Recorder::new(started)),
        paid: Mutex::new(VecDeque::new()),
        in_flight: AtomicUsize::new(0),
        peak_in_flight: AtomicUsize::new(0),
        next_trade: AtomicU64::new(0),
        turn: AtomicU64::new(0),
        run_id: run_id(),
        options,
    });
    let cpu_before = telemetry::process::own_cpu_seconds();
    let progress = shared.options.progress.then(|| progress_bar(&shared));
    let done = Arc::new(AtomicBool::new(false));
    let ticker = progress.clone().map(|bar| tokio::spawn(tick(shared.clone(), bar, done.clone())));
    match shared.options.load.clone() {
        Load::Open(schedule) => open_loop(&shared, schedule, started).await,
        Load::Closed { connections } => closed_loop(&shared, connections, started).await,
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    if let Some(ticker) = ticker {
        let _ = ticker.await;
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let cpu = telemetry::process::own_cpu_seconds() - cpu_before;
    let recorder = shared.recorder.lock().map_err(|_| anyhow::anyhow!("the recorder was poisoned"))?;
    let options = &shared.options;
    let mut report = recorder.report(elapsed, &options.targets);
    report.title = options.title.clone();
    report.target = options.targets.join(", ");
    report.tenants = options.tenants.len() as u64;
    report.started_at = started_at;
    report.mode = match &options.load {
        Load::Open(schedule) => format!("open loop, {schedule}; mix {}", options.mix),
        Load::Closed { connections } => format!("closed loop, {connections} connections; mix {}", options.mix),
    };
    if options.api == Api::Alipay {
        report.mode.push_str("; Alipay OpenAPI through the front door");
    }
    report.generator = Generator {
        cpu_us_per_request: if report.requests > 0 { cpu * 1e6 / report.requests as f64 } else { 0.0 },
        cores_busy: cpu / elapsed.as_secs_f64().max(1e-9),
        late_starts: recorder.late_starts,
        peak_in_flight: shared.peak_in_flight.load(Ordering::Relaxed) as u64,
    };
    Ok((report, recorder.trades.clone()))
}

fn run_id() -> String {
    let millis = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    format!("lt{millis:x}")
}

/// Whether the run's bound is reached after `sent` requests.
fn finished(options: &RunOptions, started: Instant, sent: u64) -> bool {
    options.duration.is_some_and(|d| started.elapsed() >= d) || options.requests.is_some_and(|n| sent >= n)
}

async fn open_loop(shared: &Arc<Shared>, schedule: Schedule, started: Instant) {
    let runtime = tokio::runtime::Handle::current();
    let pacer = {
        let shared = shared.clone();
        std::thread::spawn(move || {
            let mut sent = 0u64;
            let mut intended = started;
            while !finished(&shared.options, started, sent) {
                let now = Instant::now();
                if intended > now {
                    std::thread::sleep(intended - now);
                    continue;
                }
                // Every request due by now, each with its own intended time.
                while intended <= Instant::now() && !finished(&shared.options, started, sent) {
                    if Instant::now().duration_since(intended) > Duration::from_millis(1)
                        && let Ok(mut recorder) = shared.recorder.lock()
                    {
                        recorder.late_starts += 1;
                    }
                    let shared = shared.clone();
                    let at = intended;
                    runtime.spawn(async move { one_call(&shared, at).await });
                    sent += 1;
                    let rate = schedule.rate_at(intended.duration_since(started)).max(0.001);
                    intended += Duration::from_secs_f64(1.0 / rate);
                }
            }
        })
    };
    let _ = tokio::task::spawn_blocking(move || pacer.join()).await;
    // Let the calls in flight finish (each ends by its timeout).
    while shared.in_flight.load(Ordering::Acquire) > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn closed_loop(shared: &Arc<Shared>, connections: usize, started: Instant) {
    let sent = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..connections.max(1) {
        let (shared, sent) = (shared.clone(), sent.clone());
        workers.spawn(async move {
            while !finished(&shared.options, started, sent.fetch_add(1, Ordering::Relaxed)) {
                one_call(&shared, Instant::now()).await;
            }
        });
    }
    workers.join_all().await;
}

/// Makes one call of the mix, intended to start at `intended`, and records it.
async fn one_call(shared: &Shared, intended: Instant) {
    let (tenant, intent) = next_call(shared);
    let op = intent.op();
    let before = shared.in_flight.fetch_add(1, Ordering::AcqRel);
    shared.peak_in_flight.fetch_max(before + 1, Ordering::Relaxed);
    if before >= shared.options.max_in_flight {
        shared.in_flight.fetch_sub(1, Ordering::AcqRel);
        if let Ok(mut recorder) = shared.recorder.lock() {
            recorder.refuse(op, &Answer::Failed(ErrorKind::Overload));
        }
        return;
    }
    let targets = shared.options.targets.len().max(1);
    let target = match shared.options.spread {
        Spread::RoundRobin => (shared.turn.fetch_add(1, Ordering::Relaxed) % targets as u64) as usize,
        Spread::Tenant => tenant % targets,
    };
    let (answer, timing) = shared.sender.send(&shared.options.tenants, tenant, target, &intent).await;
    let took = intended.elapsed();
    shared.in_flight.fetch_sub(1, Ordering::AcqRel);
    let status = answer.status();
    let out_trade_no = intent.out_trade_no().to_owned();
    if op == Op::Pay
        && status == Some("SUCCESS")
        && let Ok(mut paid) = shared.paid.lock()
    {
        if paid.len() >= PAID_POOL {
            paid.pop_front();
        }
        paid.push_back((tenant, out_trade_no.clone()));
    }
    let Ok(mut recorder) = shared.recorder.lock() else { return };
    recorder.record(op, target, &answer, took);
    if let Some(timing) = timing {
        recorder.gateway_timing(timing);
    }
    match op {
        Op::Pay => recorder.remember(SentTrade {
            tenant,
            out_trade_no,
            heard: status.map_or_else(|| answer.label(), str::to_owned),
            cancelled: false,
        }),
        // A cancel the POS sent may reverse the payment whatever it heard (a 202 is carried on by
        // the reconciler; a lost answer may still have reached the gateway).
        Op::Cancel => {
            // Most recent first: the trade was paid a moment ago.
            if let Some(trade) =
                recorder.trades.iter_mut().rev().find(|t| t.tenant == tenant && t.out_trade_no == out_trade_no)
            {
                trade.cancelled = true;
            }
        }
        _ => {}
    }
}

/// The next call: drawn from the mix; a query, refund or cancel acts on an earlier paid payment
/// (refunds and cancels take it out of the pool), or becomes a payment when there is none.
fn next_call(shared: &Shared) -> (usize, Intent) {
    let options = &shared.options;
    let mut rng = rand::rng();
    let op = options.mix.pick(&mut rng);
    let earlier = match op {
        Op::Query => shared.paid.lock().ok().and_then(|paid| {
            let len = paid.len();
            (len > 0).then(|| paid[rng.random_range(0..len)].clone())
        }),
        Op::Refund | Op::Cancel => shared.paid.lock().ok().and_then(|mut paid| paid.pop_back()),
        Op::Pay | Op::QrOrder => None,
    };
    if let Some((tenant, out_trade_no)) = earlier {
        let intent = match op {
            Op::Query => Intent::Query { out_trade_no },
            Op::Refund => Intent::Refund { out_trade_no },
            _ => Intent::Cancel { out_trade_no },
        };
        return (tenant, intent);
    }
    let tenant = rng.random_range(0..options.tenants.len());
    let out_trade_no = format!("{}x{}", shared.run_id, shared.next_trade.fetch_add(1, Ordering::Relaxed));
    let currency = currency(&options.tenants[tenant]);
    let intent = if op == Op::QrOrder {
        Intent::QrOrder { out_trade_no, currency }
    } else {
        let suffix = options.mix.outcome_suffix(&mut rng);
        let auth_code = format!("28{:014}{suffix}", rng.random_range(0..100_000_000_000_000u64));
        Intent::Pay { out_trade_no, auth_code, currency }
    };
    (tenant, intent)
}

fn currency(tenant: &PosTenant) -> String {
    tenant.currency.clone().unwrap_or_else(|| if tenant.dialect == "mapi" { "HKD".into() } else { "CNY".into() })
}

fn progress_bar(shared: &Shared) -> ProgressBar {
    let bar = match (shared.options.requests, shared.options.duration) {
        (Some(n), _) => ProgressBar::new(n),
        (None, Some(d)) => ProgressBar::new(d.as_secs().max(1)),
        (None, None) => ProgressBar::no_length(),
    };
    let template = "{elapsed_precise} [{bar:30}] {pos}/{len} {msg}";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

async fn tick(shared: Arc<Shared>, bar: ProgressBar, done: Arc<AtomicBool>) {
    let started = Instant::now();
    while !done.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Ok(recorder) = shared.recorder.lock() else { return };
        let (rate, errors, p99) = recorder.last_second();
        let position =
            if shared.options.requests.is_some() { recorder.requests() } else { started.elapsed().as_secs() };
        bar.set_position(position);
        bar.set_message(format!("{rate}/s  p99 {p99:.1} ms  errors {} (last s {errors})", recorder.errors()));
    }
}
