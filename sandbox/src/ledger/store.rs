//! The ledger's maps: trades by (merchant, out_trade_no), and the indexes beside them, bounded
//! by forgetting the oldest trades.

use std::collections::{HashMap, VecDeque};

use super::Lookup;
use crate::trade::{Origin, Trade};

/// (merchant id, out_trade_no).
pub(super) type Key = (String, String);

#[derive(Default)]
pub(super) struct Store {
    pub(super) trades: HashMap<Key, Trade>,
    pub(super) by_trade_no: HashMap<String, Key>,
    pub(super) by_qr: HashMap<String, Key>,
    /// (merchant, refund number) → the trade refunded: on MAPI, partner + `partner_refund_id`
    /// names one refund, whichever trade a later request names.
    pub(super) by_refund_no: HashMap<Key, Key>,
    pub(super) order: VecDeque<Key>,
}

impl Store {
    pub(super) fn insert(&mut self, trade: Trade, max: usize) {
        let key = (trade.merchant.id.clone(), trade.out_trade_no.clone());
        self.by_trade_no.insert(trade.trade_no.clone(), key.clone());
        if let Origin::Precreate { qr_code, .. } = &trade.origin {
            self.by_qr.insert(qr_code.clone(), key.clone());
        }
        self.trades.insert(key.clone(), trade);
        self.order.push_back(key);
        while self.order.len() > max {
            let Some(old) = self.order.pop_front() else { break };
            if let Some(gone) = self.trades.remove(&old) {
                self.by_trade_no.remove(&gone.trade_no);
                for refund in &gone.refunds {
                    self.by_refund_no.remove(&(gone.merchant.id.clone(), refund.out_request_no.clone()));
                }
                if let Origin::Precreate { qr_code, .. } = &gone.origin {
                    self.by_qr.remove(qr_code);
                }
            }
        }
    }

    pub(super) fn key_of(&self, merchant: &str, lookup: &Lookup) -> Option<Key> {
        if let Some(trade_no) = &lookup.trade_no {
            return self.by_trade_no.get(trade_no).filter(|key| key.0 == merchant).cloned();
        }
        let key = (merchant.to_owned(), lookup.out_trade_no.clone()?);
        self.trades.contains_key(&key).then_some(key)
    }
}
