//! One call to Alipay per thing at a time, in this process: the first request for a key leads
//! (it makes the call, detached from its connection); identical requests arriving meanwhile
//! follow and get the same result. Payments, cancels and refunds each have their own map.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

type Slot<V> = watch::Receiver<Option<V>>;
type Calls<K, V> = Arc<Mutex<HashMap<K, Slot<V>>>>;

/// The calls under way, by key.
pub struct Inflight<K, V> {
    calls: Calls<K, V>,
}

impl<K, V> Default for Inflight<K, V> {
    fn default() -> Self {
        Inflight { calls: Arc::default() }
    }
}

/// What joining found.
pub enum Role<K: Hash + Eq, V> {
    /// No call under way: make it, then [`Lead::publish`] its result.
    Lead(Lead<K, V>),
    /// A call is under way: wait for its result.
    Follow(Follow<V>),
}

/// The leader's handle; dropping it without publishing releases the followers (with nothing).
pub struct Lead<K: Hash + Eq, V> {
    calls: Calls<K, V>,
    key: K,
    sender: watch::Sender<Option<V>>,
    /// Out of the map already (published): the key may now be another call's.
    left: bool,
}

impl<K: Hash + Eq, V: Clone> Lead<K, V> {
    /// Hands `result` to the requests that followed this call. No new one can follow once the
    /// call is out of the map, so the result is copied only when someone waits for it (most
    /// calls have no follower).
    pub fn publish(mut self, result: &V) {
        self.calls.lock().remove(&self.key);
        self.left = true;
        if self.sender.receiver_count() > 0 {
            self.sender.send_replace(Some(result.clone()));
        }
    }
}

impl<K: Hash + Eq, V> Drop for Lead<K, V> {
    fn drop(&mut self) {
        if !self.left {
            self.calls.lock().remove(&self.key);
        }
    }
}

pub struct Follow<V>(Slot<V>);

impl<V: Clone> Follow<V> {
    /// The leader's result, or `None` if the leader stopped without one.
    pub async fn result(mut self) -> Option<V> {
        match self.0.wait_for(Option::is_some).await {
            Ok(result) => result.clone(),
            Err(_) => None,
        }
    }
}

impl<K: Hash + Eq + Clone, V> Inflight<K, V> {
    pub fn join(&self, key: &K) -> Role<K, V> {
        let mut calls = self.calls.lock();
        if let Some(slot) = calls.get(key) {
            return Role::Follow(Follow(slot.clone()));
        }
        let (sender, receiver) = watch::channel(None);
        calls.insert(key.clone(), receiver);
        Role::Lead(Lead { calls: self.calls.clone(), key: key.clone(), sender, left: false })
    }

    pub fn len(&self) -> usize {
        self.calls.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_get_the_leaders_result_and_a_later_call_leads_anew() {
        let calls: Inflight<&str, u32> = Inflight::default();
        let Role::Lead(lead) = calls.join(&"k") else { panic!("the first leads") };
        let Role::Follow(follow) = calls.join(&"k") else { panic!("the second follows") };
        lead.publish(&7);
        assert_eq!(follow.result().await, Some(7));
        assert!(calls.is_empty(), "published calls leave the map");
        let Role::Lead(again) = calls.join(&"k") else { panic!("a call after the result leads anew") };
        drop(again);
        assert!(calls.is_empty());
    }
}
