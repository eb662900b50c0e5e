//! Planted discrepancies: a trade the bill files leave out, or show with another amount on its
//! payment row, while queries keep the truth. At most [`MAX_OVERRIDES`].

use std::collections::HashMap;

use alipay::Amount;
use parking_lot::Mutex;

/// Most overrides kept.
pub const MAX_OVERRIDES: usize = 10_000;

/// What the bill files show of one trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillOverride {
    /// Nothing: no payment row, no refund rows.
    Omit,
    /// This amount on the payment row (and the fee on it).
    Amount(Amount),
}

/// Overrides by (merchant, out_trade_no).
#[derive(Default)]
pub struct Overrides {
    map: Mutex<HashMap<(String, String), BillOverride>>,
}

/// [`MAX_OVERRIDES`] are set already.
#[derive(Debug, thiserror::Error)]
#[error("at most 10000 bill overrides; DELETE /sandbox/bills/overrides clears them")]
pub struct Full;

impl Overrides {
    /// Sets (or replaces) the override of a trade.
    pub fn set(&self, merchant: &str, out_trade_no: &str, value: BillOverride) -> Result<(), Full> {
        let mut map = self.map.lock();
        let key = (merchant.to_owned(), out_trade_no.to_owned());
        if !map.contains_key(&key) && map.len() >= MAX_OVERRIDES {
            return Err(Full);
        }
        map.insert(key, value);
        Ok(())
    }

    pub fn get(&self, merchant: &str, out_trade_no: &str) -> Option<BillOverride> {
        self.map.lock().get(&(merchant.to_owned(), out_trade_no.to_owned())).copied()
    }

    /// Clears them all; answers how many there were.
    pub fn clear(&self) -> usize {
        let mut map = self.map.lock();
        let n = map.len();
        map.clear();
        n
    }
}
