//! Alipay's latency: setting the sandbox's answer-time model (`loadtest run --alipay-latency`),
//! and `loadtest bench`'s runs under it (issue 20). The same open loop of MD5 pays on a gateway of
//! its own, with Alipay answering at once, then as Alipay does (p50 150 ms, p99 600 ms), then
//! slowly enough (p50 2.3 s, p99 6 s) that about 5,000 pays are in flight at once; for each, the
//! gateway's CPU per pay (over the whole run, and over its second half, when as many pays end as
//! begin each second and the connections to Alipay are open), its peak resident memory and its
//! peak connections to Alipay, sampled every half second while the run lasts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use sandbox::faults::{FaultConfig, Latencies, LatencyModel};

use crate::bench::Bench;
use crate::client::Http;
use crate::mix::Mix;
use crate::report::{LatencyReport, LatencyStep, Report, Second};
use crate::tenants_file::PosTenant;
use telemetry::process::{cpu_seconds, rss_mib};

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
        let samples = sampler.stop().await;
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
            steady_cpu_us_per_pay: samples.cpu_us_per_pay(&run.timeline, length / 2, length),
            peak_rss_mib: samples.peak_rss_mib,
            peak_upstream_connections: samples.peak_connections,
            p99_ms: run.latency.p99_ms,
            added_p99_ms: run.added_by_gateway.as_ref().map_or(0.0, |a| a.p99_ms),
            errors: run.errors,
        });
        runs.push(run);
    }
    set_alipay_latency(sandbox_url, None).await?;
    Ok((LatencyReport { steps }, runs))
}

/// Samples a process's resident memory, its CPU time and its connections to a port while a run
/// lasts.
struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Samples>,
}

impl Sampler {
    fn start(pid: u32, port: u16) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut samples = Samples::default();
            while !stopping.load(Ordering::Relaxed) {
                samples.peak_rss_mib = samples.peak_rss_mib.max(rss_mib(pid));
                samples.peak_connections = samples.peak_connections.max(established_to(port));
                samples.cpu.push((started.elapsed(), cpu_seconds(pid)));
                tokio::time::sleep(SAMPLE_EVERY).await;
            }
            samples.cpu.push((started.elapsed(), cpu_seconds(pid)));
            samples
        });
        Sampler { stop, task }
    }

    async fn stop(self) -> Samples {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}

/// What a [`Sampler`] saw.
#[derive(Debug, Default)]
struct Samples {
    peak_rss_mib: f64,
    peak_connections: u64,
    /// The process's CPU seconds so far, by time since the run started.
    cpu: Vec<(Duration, f64)>,
}

impl Samples {
    /// CPU µs per pay answered between `from` and `to` after the run started (the timeline counts
    /// answers by the second they arrived in, so both are whole seconds); `None` when the samples
    /// do not cover the window or no pay was answered in it.
    fn cpu_us_per_pay(&self, timeline: &[Second], from: Duration, to: Duration) -> Option<f64> {
        let (from_s, to_s) = (from.as_secs(), to.as_secs());
        let answered: u64 = timeline.iter().filter(|s| (from_s..to_s).contains(&s.t_s)).map(|s| s.completed).sum();
        let spent = self.cpu_at(Duration::from_secs(to_s))? - self.cpu_at(Duration::from_secs(from_s))?;
        (answered > 0).then(|| spent * 1e6 / answered as f64)
    }

    /// The CPU seconds at `at`, read between the two samples around it.
    fn cpu_at(&self, at: Duration) -> Option<f64> {
        let after = self.cpu.iter().position(|(t, _)| *t >= at)?;
        let &(t1, c1) = self.cpu.get(after)?;
        let Some(&(t0, c0)) = after.checked_sub(1).and_then(|before| self.cpu.get(before)) else {
            return (t1 == at).then_some(c1);
        };
        let span = (t1 - t0).as_secs_f64();
        Some(if span > 0.0 { c0 + (c1 - c0) * (at - t0).as_secs_f64() / span } else { c1 })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A run of 20 s at 2,000 pays/s whose first 10 s cost 0.3 CPU seconds a second (pays and the
    /// connections they open) and the rest 0.2, sampled every half second.
    fn ramp() -> (Samples, Vec<Second>) {
        let cpu = (0_u32..=40)
            .map(|half| {
                let t = f64::from(half) / 2.0;
                (Duration::from_millis(500 * u64::from(half)), 0.3 * t.min(10.0) + 0.2 * (t - 10.0).max(0.0))
            })
            .collect();
        let timeline = (0..20).map(|t_s| Second { t_s, completed: 2_000, ..Second::default() }).collect();
        (Samples { cpu, ..Samples::default() }, timeline)
    }

    #[test]
    fn the_second_half_counts_only_its_own_cpu_and_answers() {
        let (samples, timeline) = ramp();
        let second_half = samples.cpu_us_per_pay(&timeline, Duration::from_secs(10), Duration::from_secs(20));
        assert_eq!(second_half.map(|us| us.round()), Some(100.0));
        let whole = samples.cpu_us_per_pay(&timeline, Duration::ZERO, Duration::from_secs(20));
        assert_eq!(whole.map(|us| us.round()), Some(125.0));
        let early = samples.cpu_us_per_pay(&timeline, Duration::ZERO, Duration::from_secs(2));
        assert_eq!(early.map(|us| us.round()), Some(150.0));
    }

    #[test]
    fn between_two_samples_the_cpu_is_read_off_the_line_between_them() {
        let samples = Samples { cpu: vec![(Duration::ZERO, 0.0), (Duration::from_secs(4), 0.8)], ..Samples::default() };
        let timeline: Vec<Second> = (0..4).map(|t_s| Second { t_s, completed: 2_000, ..Second::default() }).collect();
        // 0.2 → 0.6 CPU seconds between 1 s and 3 s, over the 4,000 pays answered in seconds 1 and 2.
        let window = samples.cpu_us_per_pay(&timeline, Duration::from_secs(1), Duration::from_secs(3));
        assert_eq!(window.map(|us| us.round()), Some(100.0));
    }

    #[test]
    fn a_window_the_samples_do_not_cover_or_without_answers_has_no_figure() {
        let (samples, timeline) = ramp();
        assert_eq!(samples.cpu_us_per_pay(&timeline, Duration::from_secs(10), Duration::from_secs(30)), None);
        assert_eq!(samples.cpu_us_per_pay(&[], Duration::from_secs(10), Duration::from_secs(20)), None);
        assert_eq!(Samples::default().cpu_us_per_pay(&timeline, Duration::ZERO, Duration::from_secs(1)), None);
    }
}
