//! Waiting for a trade to become final (`?wait=`): LISTEN `trade_settled` (sent by
//! [`crate::announce`]) on a dedicated connection and wake whoever waits on those trades.
//! Register first, then read the row: a settlement between the two is never missed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_postgres::AsyncMessage;

use crate::trade::TradeKey;

/// Most trades waited on at once; past it, a wait does not block.
pub const MAX_WAITED: usize = 100_000;

/// Per waited-on trade: a settlement counter, and how many wait.
#[derive(Default)]
struct Waiters {
    by_trade: HashMap<TradeKey, (watch::Sender<u64>, usize)>,
}

/// Who waits on which trade.
#[derive(Clone)]
pub struct Finals {
    waiters: Arc<Mutex<Waiters>>,
    /// Whether the LISTEN connection is up.
    listening: Arc<watch::Sender<bool>>,
}

impl Default for Finals {
    fn default() -> Self {
        Finals { waiters: Arc::default(), listening: Arc::new(watch::Sender::new(false)) }
    }
}

/// One registration; dropping it unregisters.
pub struct Waiting {
    settlements: Finals,
    key: TradeKey,
    /// Subscribed at registration, so a trade becoming final after it is seen even before `finished` runs.
    changes: Option<watch::Receiver<u64>>,
}

impl Waiting {
    /// Resolves when the trade becomes final (after registration), or at once if too many trades are
    /// waited on.
    pub async fn finished(&mut self) {
        if let Some(changes) = &mut self.changes {
            let _ = changes.changed().await;
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.changes.is_none() {
            return;
        }
        let mut waiters = self.settlements.waiters.lock();
        if let Some(entry) = waiters.by_trade.get_mut(&self.key) {
            entry.1 -= 1;
            if entry.1 == 0 {
                waiters.by_trade.remove(&self.key);
            }
        }
    }
}

impl Finals {
    /// Registers interest in `key`. Read the trade after this; if it is not final, await
    /// [`Waiting::settled`] (with a timeout), then read it again.
    pub fn wait_for(&self, key: &TradeKey) -> Waiting {
        let mut waiters = self.waiters.lock();
        let changes = if waiters.by_trade.len() >= MAX_WAITED && !waiters.by_trade.contains_key(key) {
            None
        } else {
            let entry = waiters.by_trade.entry(key.clone()).or_insert_with(|| (watch::Sender::new(0), 0));
            entry.1 += 1;
            Some(entry.0.subscribe())
        };
        Waiting { settlements: self.clone(), key: key.clone(), changes }
    }

    /// Wakes whoever waits on `key` (the gateway calls it when it settles a trade itself).
    pub fn wake(&self, key: &TradeKey) {
        if let Some((changes, _)) = self.waiters.lock().by_trade.get(key) {
            changes.send_modify(|n| *n += 1);
        }
    }

    /// Whether no trade is waited on: an announcement then needs no reading (a waiter that
    /// registers afterwards reads the row, which the announced commit already changed).
    fn nobody_waits(&self) -> bool {
        self.waiters.lock().by_trade.is_empty()
    }

    fn wake_all(&self) {
        for (changes, _) in self.waiters.lock().by_trade.values() {
            changes.send_modify(|n| *n += 1);
        }
    }

    /// Whether settlements are being heard (for readiness, and for tests to start after it).
    pub fn listening(&self) -> watch::Receiver<bool> {
        self.listening.subscribe()
    }

    /// How many trades are waited on.
    pub fn len(&self) -> usize {
        self.waiters.lock().by_trade.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Listens for settlements until the task is dropped, reconnecting as needed (and waking
    /// every waiter after a reconnect, so none sleeps through a settlement it missed).
    pub async fn listen(self, url: String) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match pgtls::connect(&url).await {
                Ok((client, mut connection)) => {
                    let settlements = self.clone();
                    let pump = tokio::spawn(async move {
                        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                            match message {
                                Ok(AsyncMessage::Notification(_)) if settlements.nobody_waits() => {}
                                Ok(AsyncMessage::Notification(note)) => {
                                    for key in note.payload().lines().filter_map(TradeKey::decode) {
                                        settlements.wake(&key);
                                    }
                                }
                                Ok(_) => {}
                                Err(_) => break,
                            }
                        }
                    });
                    if client.batch_execute("LISTEN trade_settled").await.is_ok() {
                        backoff = Duration::from_millis(100);
                        self.listening.send_replace(true);
                        self.wake_all();
                        let _ = pump.await;
                        self.listening.send_replace(false);
                    }
                    tracing::warn!("trade_settled listener lost its connection; reconnecting");
                }
                Err(error) => tracing::warn!(%error, "cannot listen for trade settlements"),
            }
            tokio::time::sleep(backoff).await;
            // Capped low: until it is back the gateway is not ready, though it could serve.
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }
}
