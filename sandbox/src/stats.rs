//! Counters the sandbox shows at `GET /sandbox/stats`. The label sets are fixed: one counter per
//! known method or service, one for everything else.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Serialize for Counter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.get())
    }
}

/// The methods and services the sandbox counts by name; others count as `other`.
pub const CALLS: [&str; 14] = [
    "alipay.trade.pay",
    "alipay.trade.query",
    "alipay.trade.cancel",
    "alipay.trade.refund",
    "alipay.trade.fastpay.refund.query",
    "alipay.trade.precreate",
    "alipay.trade.close",
    "alipay.system.oauth.token",
    "alipay.data.dataservice.bill.downloadurl.query",
    "alipay.acquire.overseas.spot.pay",
    "alipay.acquire.overseas.query",
    "alipay.acquire.cancel",
    "alipay.acquire.overseas.spot.refund",
    "alipay.acquire.precreate",
];

#[derive(Debug, Default, Serialize)]
pub struct Stats {
    /// Requests to `gateway.do`, by method or service (in [`CALLS`] order), then `other`.
    #[serde(serialize_with = "serialize_calls")]
    pub calls: [Counter; CALLS.len() + 1],
    /// Requests refused before any business processing (bad arguments, signature, app).
    pub rejected: Counter,
    /// Answers signed with a wrong signature on purpose (scenario 66).
    pub wrong_signatures: Counter,
    /// Injected faults (`POST /sandbox/faults`).
    pub faults_injected: Counter,
    pub notify_sent: Counter,
    pub notify_acked: Counter,
    pub notify_failed: Counter,
    pub notify_gave_up: Counter,
    pub notify_dropped: Counter,
}

impl Stats {
    pub fn call(&self, name: &str) {
        let index = CALLS.iter().position(|c| *c == name).unwrap_or(CALLS.len());
        self.calls[index].inc();
    }
}

fn serialize_calls<S: serde::Serializer>(calls: &[Counter; CALLS.len() + 1], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(calls.len()))?;
    for (name, counter) in CALLS.iter().chain(std::iter::once(&"other")).zip(calls.iter()) {
        map.serialize_entry(name, &counter.get())?;
    }
    map.end()
}
