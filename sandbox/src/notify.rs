//! Asynchronous notifications to `notify_url`: a signed form POST, retried on Alipay's schedule
//! (4 min, 10 min, 10 min, 1 h, 2 h, 6 h, 15 h; scaled by `--time-scale`) until the merchant
//! answers the body `success`. The same `notify_id` is kept across retries.
//!
//! Bounded: at most `max_pending` notifications are in flight (more are dropped and counted), at
//! most [`MAX_CONCURRENT_POSTS`] POSTs at once, each with a deadline.

use std::sync::Arc;
use std::time::Duration;

use alipay::Params;
use alipay::charset::Charset;
use alipay::notify::{ACK_BODY, sign_notification};
use alipay::time_text::{beijing_compact, beijing_datetime};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use crate::clock::Clock;
use crate::merchants::{Dialect, Platform};
use crate::stats::Stats;
use crate::trade::{Origin, Trade};

/// Alipay's intervals between deliveries (8 deliveries in about 25 h).
pub const RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(4 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(3600),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(6 * 3600),
    Duration::from_secs(15 * 3600),
];

/// POSTs in flight at once.
pub const MAX_CONCURRENT_POSTS: usize = 64;
/// Deadline of one delivery.
const POST_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest acknowledgement body read.
const MAX_ACK_BYTES: usize = 1024;

/// What happened to the trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Paid,
    Closed,
    Refunded,
}

/// Sends notifications; cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    platform: Arc<Platform>,
    clock: Clock,
    stats: Arc<Stats>,
    client: Client<HttpConnector, Full<Bytes>>,
    pending: Arc<Semaphore>,
    posts: Semaphore,
}

impl Notifier {
    pub fn new(platform: Arc<Platform>, clock: Clock, stats: Arc<Stats>, max_pending: usize) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build_http();
        let inner = Inner {
            platform,
            clock,
            stats,
            client,
            pending: Arc::new(Semaphore::new(max_pending)),
            posts: Semaphore::new(MAX_CONCURRENT_POSTS),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Notifies the trade's `notify_url` (if it has one) of `event`.
    pub fn send(&self, event: Event, trade: &Trade) {
        let Some(url) = trade.notify_url.clone() else { return };
        let Ok(slot) = self.inner.pending.clone().try_acquire_owned() else {
            self.inner.stats.notify_dropped.inc();
            return;
        };
        let (mut params, charset) = match trade.merchant.dialect {
            Dialect::Openapi => (openapi_params(event, trade), trade.charset),
            Dialect::Mapi => (mapi_params(event, trade), Charset::Utf8),
        };
        let signer = self.inner.platform.signer_for(&trade.merchant);
        let Ok(()) = sign_notification(&mut params, signer, charset) else { return };
        let Ok(body) = params.to_form(charset) else { return };
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let _slot = slot;
            inner.deliver_until_acked(&url, Bytes::from(body), charset).await;
        });
    }
}

impl Inner {
    async fn deliver_until_acked(&self, url: &str, body: Bytes, charset: Charset) {
        for attempt in 0..=RETRY_SCHEDULE.len() {
            if self.deliver_once(url, body.clone(), charset).await {
                self.stats.notify_acked.inc();
                return;
            }
            self.stats.notify_failed.inc();
            if let Some(wait) = RETRY_SCHEDULE.get(attempt) {
                tokio::time::sleep(self.clock.scaled(*wait)).await;
            }
        }
        self.stats.notify_gave_up.inc();
    }

    async fn deliver_once(&self, url: &str, body: Bytes, charset: Charset) -> bool {
        let Ok(_permit) = self.posts.acquire().await else { return false };
        self.stats.notify_sent.inc();
        let request = http::Request::post(url)
            .header(
                http::header::CONTENT_TYPE,
                format!("application/x-www-form-urlencoded; charset={}", charset.label()),
            )
            .body(Full::new(body));
        let Ok(request) = request else { return false };
        let exchange = async {
            let response = self.client.request(request).await.ok()?;
            if response.status() != http::StatusCode::OK {
                return None;
            }
            let body = Limited::new(response.into_body(), MAX_ACK_BYTES).collect().await.ok()?.to_bytes();
            Some(body)
        };
        match tokio::time::timeout(POST_TIMEOUT, exchange).await {
            Ok(Some(body)) => body.trim_ascii() == ACK_BODY.as_bytes(),
            _ => false,
        }
    }
}

fn notify_id() -> String {
    use rand::Rng;
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(34).map(|b| char::from(b).to_ascii_lowercase()).collect()
}

fn openapi_params(event: Event, trade: &Trade) -> Params {
    let now = OffsetDateTime::now_utc();
    let mut p = Params::new();
    p.set("notify_time", beijing_datetime(now));
    p.set("notify_type", "trade_status_sync");
    p.set("notify_id", notify_id());
    p.set("app_id", trade.merchant.id.as_str());
    p.set("auth_app_id", trade.merchant.id.as_str());
    p.set("charset", trade.charset.label());
    p.set("version", "1.0");
    p.set("trade_no", trade.trade_no.as_str());
    p.set("out_trade_no", trade.out_trade_no.as_str());
    p.set("trade_status", trade.trade_status().as_str());
    p.set("total_amount", trade.total.to_string());
    p.set("subject", trade.subject.as_str());
    p.set("gmt_create", beijing_datetime(trade.created_at));
    if let Some(buyer) = &trade.buyer {
        p.set("buyer_id", buyer.user_id.as_str());
        p.set("buyer_logon_id", buyer.logon_id.as_str());
    }
    if let Some(paid_at) = trade.paid_at {
        let amount = trade.total.to_string();
        p.set("gmt_payment", beijing_datetime(paid_at));
        p.set("receipt_amount", amount.clone());
        p.set("invoice_amount", amount.clone());
        p.set("buyer_pay_amount", amount.clone());
        p.set("point_amount", "0.00");
        p.set("fund_bill_list", format!("[{{\"amount\":\"{amount}\",\"fundChannel\":\"ALIPAYACCOUNT\"}}]"));
    }
    if trade.total.currency() != alipay::Currency::CNY {
        p.set("trans_currency", trade.total.currency().code());
    }
    if event == Event::Refunded || (event == Event::Closed && !trade.refunds.is_empty()) {
        p.set("refund_fee", trade.refunded().to_string());
        if let Some(last) = trade.refunds.last() {
            p.set("gmt_refund", beijing_datetime(last.at));
            p.set("out_biz_no", last.out_request_no.as_str());
        }
    }
    if let Some(closed_at) = trade.closed_at {
        p.set("gmt_close", beijing_datetime(closed_at));
    }
    if let Origin::Precreate { .. } | Origin::StaticQr = trade.origin {
        p.set("seller_id", "2088000000000000");
    }
    p
}

fn mapi_params(event: Event, trade: &Trade) -> Params {
    let now = OffsetDateTime::now_utc();
    let mut p = Params::new();
    p.set("notify_time", beijing_datetime(now));
    p.set("notify_type", "trade_status_sync");
    p.set("notify_id", notify_id());
    let action = match event {
        Event::Paid => "payByAccountAction",
        Event::Closed if trade.was_paid() => "reverseAction",
        Event::Closed => "closeTradeAction",
        Event::Refunded => "refundFPAction",
    };
    p.set("notify_action_type", action);
    p.set("out_trade_no", trade.out_trade_no.as_str());
    p.set("trade_no", trade.trade_no.as_str());
    p.set("trade_status", trade.trade_status().as_str());
    p.set("total_fee", trade.total.to_string());
    p.set("currency", trade.total.currency().code());
    p.set("subject", trade.subject.as_str());
    p.set("seller_id", trade.merchant.id.as_str());
    p.set("gmt_create", beijing_datetime(trade.created_at));
    if let Some(buyer) = &trade.buyer {
        p.set("buyer_id", buyer.user_id.as_str());
    }
    if let Some(paid_at) = trade.paid_at {
        p.set("gmt_payment", beijing_datetime(paid_at));
        p.set("alipay_pay_time", beijing_compact(paid_at));
    }
    if !trade.refunds.is_empty() {
        p.set("refund_fee", trade.refunded().to_string());
        if let Some(last) = trade.refunds.last() {
            p.set("out_biz_no", last.out_request_no.as_str());
        }
    }
    p
}
