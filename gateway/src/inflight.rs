//! One call to Alipay per trade at a time, in this process: the first request for a key leads
//! (it records the intent and makes the call, detached from its connection); identical requests
//! arriving meanwhile follow and get the same answer.

use std::collections::HashMap;
use std::sync::Arc;

use ledger::{Trade, TradeKey};
use parking_lot::Mutex;
use tokio::sync::watch;

type Slot = watch::Receiver<Option<Trade>>;

#[derive(Default)]
pub struct Inflight {
    calls: Arc<Mutex<HashMap<TradeKey, Slot>>>,
}

/// What joining found.
pub enum Role {
    /// No call under way: make it, then [`Lead::publish`] the trade it left.
    Lead(Lead),
    /// A call is under way: wait for its trade.
    Follow(Follow),
}

/// The leader's handle; dropping it without publishing releases the followers (they re-read).
pub struct Lead {
    calls: Arc<Mutex<HashMap<TradeKey, Slot>>>,
    key: TradeKey,
    sender: watch::Sender<Option<Trade>>,
}

impl Lead {
    pub fn publish(self, trade: &Trade) {
        self.sender.send_replace(Some(trade.clone()));
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        self.calls.lock().remove(&self.key);
    }
}

pub struct Follow(Slot);

impl Follow {
    /// The leader's trade, or `None` if the leader gave up (read the ledger then).
    pub async fn trade(mut self) -> Option<Trade> {
        match self.0.wait_for(Option::is_some).await {
            Ok(trade) => trade.clone(),
            Err(_) => None,
        }
    }
}

impl Inflight {
    pub fn join(&self, key: &TradeKey) -> Role {
        let mut calls = self.calls.lock();
        if let Some(slot) = calls.get(key) {
            return Role::Follow(Follow(slot.clone()));
        }
        let (sender, receiver) = watch::channel(None);
        calls.insert(key.clone(), receiver);
        Role::Lead(Lead { calls: self.calls.clone(), key: key.clone(), sender })
    }

    pub fn len(&self) -> usize {
        self.calls.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
