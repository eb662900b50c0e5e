//! Alipay's latency: setting the sandbox's answer-time model (`loadtest run --alipay-latency`),
//! and `loadtest bench`'s runs under it (issue 20). The same open loop of MD5 pays on a gateway of
//! its own, with Alipay answering at once, then as Alipay does (p50 150 ms, p99 600 ms), then
//! slowly enough (p50 2.3 s, p99 6 s) that about 5,000 pays are in flight at once; for each, the
//! gateway's CPU per pay, its peak resident memory and its peak connections to Alipay, sampled
//! every half second while the run lasts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use sandbox::faults::{FaultConfig, Latencies, LatencyModel};

use crate::bench::Bench;
use crate::client::Http;
use crate::mix::Mix;
use crate::report::{LatencyReport, LatencyStep, Report};
use crate::tenants_file::PosTenant;
use telemetry::process::rss_mib;

/// The gateway of these runs waits this long for Alipay (the slow model's tail is 6 s and more).
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(15);
/// Pays per second of every run: about half of what this machine's stack sustains.
pub const RATE: f64 = 2_000.0;
/// Alipay's answer time in each run (none: at once).
const MODELS: [Option<LatencyModel>; 3] =
    [None, Some(LatencyModel { p50_ms: 150, p99_ms: 600 }), Some(LatencyModel { p50_ms: 2_300, p99_ms: 6_000 })];
const SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// Sets the sandbox at `sandbox_url` to answer within `model` (both dialects; `None`: at once),
/// keeping its other injected faults.
pub async fn set_alipay_latency(sandbox_url: &str, model: Option<LatencyModel>) -> anyhow::Result<()> {
    let http = Http::new(Duration::from_secs(5), 1);
    let url = format!("{}/sandbox/faults", sandbox_url.trim_end_matches('/'));
    let get = Request::get(&url).body(Full::new(Bytes::new()))?;
    let (code, body) = http.exchange(get).await.map_err(|e| anyhow::anyhow!("{url}: {e:?}"))?;
    anyhow::ensure!(code == 200, "{url} answered {code}");
    let mut faults: FaultConfig = serde_json::from_slice(&body)?;
    faults.latency = model.map(Latencies::both).unwrap_or_default();
    let post = Request::builder()
        .method(Method::POST)
        .uri(&url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(&faults)?)))?;
    let (code, body) = http.exchange(post).await.map_err(|e| anyhow::anyhow!("{url}: {e:?}"))?;
    anyhow::ensure!(code == 200, "{url} refused the latency model: {}", String::from_utf8_lossy(&body));
    Ok(())
}

/// The runs, on `one` (a single gateway waiting [`UPSTREAM_TIMEOUT`] for Alipay).
pub(crate) async fn measure(
    one: &Bench,
    md5: &[PosTenant],
    sandbox_url: &str,
    length: Duration,
) -> anyhow::Result<(LatencyReport, Vec<Report>)> {
    let sandbox_port = sandbox_url.rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse().ok()).unwrap_or(0);
    let pid = one.gateway_pids.first().copied().unwrap_or(0);
    let (mut steps, mut runs) = (Vec::new(), Vec::new());
    for model in MODELS {
        set_alipay_latency(sandbox_url, model).await?;
        let alipay =
            model.map_or_else(|| "at once".to_owned(), |m| format!("p50 {} ms, p99 {} ms", m.p50_ms, m.p99_ms));
        let title = format!("MD5 payments at {RATE}/s, Alipay answering {alipay}");
        let sampler = Sampler::start(pid, sandbox_port);
        let measured = one.open(&title, md5, Mix::default(), RATE, length).await;
        let (peak_rss_mib, peak_upstream_connections) = sampler.stop().await;
        let (run, cpu) = match measured {
            Ok(measured) => measured,
            Err(error) => {
                set_alipay_latency(sandbox_url, None).await?;
                return Err(error);
            }
        };
        steps.push(LatencyStep {
            alipay,
            rate_rps: RATE,
            throughput_rps: run.throughput_rps,
            peak_in_flight: run.generator.peak_in_flight,
            gateway_cpu_us_per_pay: cpu,
            peak_rss_mib,
            peak_upstream_connections,
            p99_ms: run.latency.p99_ms,
            added_p99_ms: run.added_by_gateway.as_ref().map_or(0.0, |a| a.p99_ms),
            errors: run.errors,
        });
        runs.push(run);
    }
    set_alipay_latency(sandbox_url, None).await?;
    Ok((LatencyReport { steps }, runs))
}

/// Samples a process's resident memory and its connections to a port while a run lasts.
struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(f64, u64)>,
}

impl Sampler {
    fn start(pid: u32, port: u16) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let task = tokio::spawn(async move {
            let (mut rss, mut connections) = (0.0_f64, 0_u64);
            while !stopping.load(Ordering::Relaxed) {
                rss = rss.max(rss_mib(pid));
                connections = connections.max(established_to(port));
                tokio::time::sleep(SAMPLE_EVERY).await;
            }
            (rss, connections)
        });
        Sampler { stop, task }
    }

    /// The peaks: resident memory (MiB) and connections.
    async fn stop(self) -> (f64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

/// Established TCP connections of this machine to `port` (IPv4 and IPv6): to the sandbox, the
/// gateway's (and the reconciler's few) connections to Alipay.
fn established_to(port: u16) -> u64 {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|table| {
            table
                .lines()
                .skip(1)
                .filter(|line| {
                    let fields: Vec<&str> = line.split_whitespace().take(4).collect();
                    let remote_port = fields.get(2).and_then(|r| r.rsplit(':').next());
                    fields.get(3) == Some(&"01")
                        && remote_port.and_then(|p| u16::from_str_radix(p, 16).ok()) == Some(port)
                })
                .count()
        })
        .sum::<usize>() as u64
}
