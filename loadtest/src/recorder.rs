//! What a run saw, as it happens: HDR histograms (overall, per call, per second), errors by
//! kind, the status mix, and every payment's answer for verification afterwards.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::client::{Answer, GatewayTiming};
use crate::mix::Op;
use crate::report::{OperationStats, Percentiles, Report, Second};

/// Payments remembered for verification at most (the report says how many were checked).
const MAX_TRADES: usize = 2_000_000;

/// A payment this run made, and what the POS heard about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentTrade {
    pub tenant: usize,
    pub out_trade_no: String,
    /// The pay call's answer (`SUCCESS`, `FAILED`, `UNKNOWN`, or the error).
    pub heard: String,
    /// The POS sent a cancel of it (whatever it heard back).
    pub cancelled: bool,
}

/// 1 µs to 1 h, 3 significant digits.
#[allow(clippy::expect_used, reason = "constant bounds that hdrhistogram accepts")]
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

#[derive(Default)]
struct PerOp {
    latency: Option<Histogram<u64>>,
    requests: u64,
    errors: u64,
}

struct PerSecond {
    latency: Histogram<u64>,
    completed: u64,
    errors: u64,
}

pub struct Recorder {
    started: Instant,
    overall: Histogram<u64>,
    /// What the gateway says it added (`Server-Timing`), for the calls that said; and of that,
    /// its intent's commit.
    added: Histogram<u64>,
    intent: Histogram<u64>,
    by_op: BTreeMap<Op, PerOp>,
    /// By target (gateway) index.
    by_target: BTreeMap<usize, PerOp>,
    seconds: Vec<PerSecond>,
    errors_by_kind: BTreeMap<&'static str, u64>,
    status_mix: BTreeMap<String, u64>,
    pub trades: Vec<SentTrade>,
    pub late_starts: u64,
    requests: u64,
    errors: u64,
}

impl Recorder {
    pub fn new(started: Instant) -> Recorder {
        Recorder {
            started,
            overall: histogram(),
            added: histogram(),
            intent: histogram(),
            by_op: BTreeMap::new(),
            by_target: BTreeMap::new(),
            seconds: Vec::new(),
            errors_by_kind: BTreeMap::new(),
            status_mix: BTreeMap::new(),
            trades: Vec::new(),
            late_starts: 0,
            requests: 0,
            errors: 0,
        }
    }

    /// One call's answer from target number `target`, `took` after its intended send time.
    pub fn record(&mut self, op: Op, target: usize, answer: &Answer, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let error = answer.error_kind();
        self.requests += 1;
        self.overall.saturating_record(micros);
        let per_target = self.by_target.entry(target).or_default();
        per_target.requests += 1;
        per_target.errors += u64::from(error.is_some());
        per_target.latency.get_or_insert_with(histogram).saturating_record(micros);
        let per_op = self.by_op.entry(op).or_default();
        per_op.requests += 1;
        per_op.latency.get_or_insert_with(histogram).saturating_record(micros);
        let second = usize::try_from(self.started.elapsed().as_secs()).unwrap_or(usize::MAX).min(86_400);
        while self.seconds.len() <= second {
            self.seconds.push(PerSecond { latency: histogram(), completed: 0, errors: 0 });
        }
        let this_second = &mut self.seconds[second];
        this_second.completed += 1;
        this_second.latency.saturating_record(micros);
        if let Some(kind) = error {
            self.errors += 1;
            per_op.errors += 1;
            this_second.errors += 1;
            *self.errors_by_kind.entry(kind).or_default() += 1;
        }
        *self.status_mix.entry(answer.label()).or_default() += 1;
    }

    /// What the gateway says of its part in one call.
    pub fn gateway_timing(&mut self, timing: GatewayTiming) {
        let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        self.added.saturating_record(us(timing.added));
        if let Some(intent) = timing.intent {
            self.intent.saturating_record(us(intent));
        }
    }

    /// A call the generator could not even send (too many in flight).
    pub fn refuse(&mut self, op: Op, answer: &Answer) {
        self.record(op, 0, answer, Duration::from_micros(1));
    }

    pub fn remember(&mut self, trade: SentTrade) {
        if self.trades.len() < MAX_TRADES {
            self.trades.push(trade);
        }
    }

    /// (completed, errors, p99 ms) of the last full second, for the progress bar.
    pub fn last_second(&self) -> (u64, u64, f64) {
        let at = self.seconds.len().saturating_sub(2);
        self.seconds.get(at).map_or((0, 0, 0.0), |s| (s.completed, s.errors, ms(s.latency.value_at_quantile(0.99))))
    }

    pub fn requests(&self) -> u64 {
        self.requests
    }

    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// The report's measured part (the caller fills in title, target, mode, generator); split by
    /// target when there are several (`targets` names them by index).
    pub fn report(&self, duration: Duration, targets: &[String]) -> Report {
        let stats = |per: &PerOp| OperationStats {
            requests: per.requests,
            errors: per.errors,
            latency: per.latency.as_ref().map(percentiles).unwrap_or_default(),
        };
        let seconds = duration.as_secs_f64();
        Report {
            duration_s: seconds,
            requests: self.requests,
            throughput_rps: if seconds > 0.0 { self.requests as f64 / seconds } else { 0.0 },
            latency: percentiles(&self.overall),
            added_by_gateway: (!self.added.is_empty()).then(|| percentiles(&self.added)),
            intent_commit: (!self.intent.is_empty()).then(|| percentiles(&self.intent)),
            errors: self.errors,
            errors_by_kind: self.errors_by_kind.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            status_mix: self.status_mix.clone(),
            by_operation: self.by_op.iter().map(|(op, per)| (op.name().to_owned(), stats(per))).collect(),
            by_target: if targets.len() > 1 {
                self.by_target
                    .iter()
                    .map(|(n, per)| (targets.get(*n).cloned().unwrap_or_else(|| n.to_string()), stats(per)))
                    .collect()
            } else {
                BTreeMap::new()
            },
            timeline: self
                .seconds
                .iter()
                .enumerate()
                .map(|(t, s)| Second {
                    t_s: t as u64,
                    completed: s.completed,
                    errors: s.errors,
                    p50_ms: ms(s.latency.value_at_quantile(0.5)),
                    p99_ms: ms(s.latency.value_at_quantile(0.99)),
                    max_ms: ms(s.latency.max()),
                })
                .collect(),
            ..Report::default()
        }
    }
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn percentiles(histogram: &Histogram<u64>) -> Percentiles {
    if histogram.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        p50_ms: ms(histogram.value_at_quantile(0.5)),
        p90_ms: ms(histogram.value_at_quantile(0.9)),
        p99_ms: ms(histogram.value_at_quantile(0.99)),
        p999_ms: ms(histogram.value_at_quantile(0.999)),
        max_ms: ms(histogram.max()),
        mean_ms: histogram.mean() / 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_counted_by_call_status_and_second() {
        let mut recorder = Recorder::new(Instant::now());
        let paid = Answer::Http { code: 200, status: Some("SUCCESS") };
        for ms in 1..=100 {
            recorder.record(Op::Pay, (ms % 2) as usize, &paid, Duration::from_millis(ms));
        }
        recorder.record(Op::Query, 1, &Answer::Http { code: 503, status: None }, Duration::from_millis(5));
        let report = recorder.report(Duration::from_secs(2), &["http://a".into(), "http://b".into()]);
        let (a, b) = (&report.by_target["http://a"], &report.by_target["http://b"]);
        assert_eq!((a.requests, a.errors, b.requests, b.errors), (50, 0, 51, 1), "split by target");
        assert!(recorder.report(Duration::from_secs(2), &["http://a".into()]).by_target.is_empty(), "one target");
        assert_eq!((report.requests, report.errors), (101, 1));
        assert_eq!(report.status_mix.get("200 SUCCESS"), Some(&100));
        assert_eq!(report.errors_by_kind.get("http_5xx"), Some(&1));
        let pay = &report.by_operation["pay"];
        assert!((pay.latency.p50_ms - 50.0).abs() < 0.5, "{}", pay.latency.p50_ms);
        assert!((report.throughput_rps - 50.5).abs() < 0.01);
        assert_eq!(report.timeline.iter().map(|s| s.completed).sum::<u64>(), 101);
    }
}
