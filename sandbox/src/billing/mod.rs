//! The bill files Alipay makes from the sandbox's real trade state: the OpenAPI trade bill and
//! account bill behind `alipay.data.dataservice.bill.downloadurl.query` and its download links,
//! and Global's transaction and settlement files dropped in a partner's folder. Plus what tests
//! use to move and bend them: the bill clock, overrides, dead links.
//!
//! Trade timestamps stay real; only the decision "is this day's bill ready, is it today" follows
//! the bill clock, so a test can reconcile today's trades by setting it to tomorrow morning.
//!
//! - [`calendar`]: which days a bill date covers, and when its bill is ready.
//! - [`fee`]: [`FeeRate`] and the fee on a payment or refund.
//! - [`movements`]: a merchant's payments and refunds in a window, overrides applied.
//! - [`trade_bill`], [`account_bill`]: the OpenAPI bill archives.
//! - [`global_drop`]: Global's files, written atomically.
//! - [`links`]: issued download links and the bytes they serve.
//! - [`overrides`]: planted discrepancies.
//! - [`query`]: the bill URL method and the download endpoint.
//! - [`hooks`]: the `/sandbox/bills/...` hooks.

pub mod account_bill;
pub mod calendar;
pub mod fee;
pub mod global_drop;
pub mod hooks;
pub mod links;
pub mod movements;
pub mod overrides;
pub mod query;
pub mod trade_bill;

use std::path::PathBuf;
use std::time::Duration;

use parking_lot::Mutex;
use time::OffsetDateTime;

pub use fee::FeeRate;
pub use links::Links;
pub use overrides::Overrides;

/// The bill state.
pub struct Billing {
    /// The bill clock's setting; the real clock when `None`.
    clock: Mutex<Option<OffsetDateTime>>,
    pub links: Links,
    pub overrides: Overrides,
    /// Where Global's files are dropped (`<dir>/<partner>/...`), if anywhere.
    pub drop_dir: Option<PathBuf>,
}

impl Billing {
    pub fn new(link_ttl: Duration, drop_dir: Option<PathBuf>) -> Self {
        Billing { clock: Mutex::new(None), links: Links::new(link_ttl), overrides: Overrides::default(), drop_dir }
    }

    /// The bill clock: what the bill API takes for now.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.lock().unwrap_or_else(OffsetDateTime::now_utc)
    }

    /// Sets the bill clock (`None`: back to the real clock).
    pub fn set_now(&self, now: Option<OffsetDateTime>) {
        *self.clock.lock() = now;
    }

    /// Whether the bill clock is set.
    pub fn clock_is_set(&self) -> bool {
        self.clock.lock().is_some()
    }
}
