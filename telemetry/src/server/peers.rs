//! Connections per peer: an IPv4 address, or an IPv6 /64 (what one host or one customer network
//! usually holds). Touched once when a connection is accepted and once when it ends, never per
//! request. The map holds only peers with a connection open, so it is bounded by the listener's
//! connection cap.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

/// The per-peer cap of one listener (none when it could not bind).
pub(crate) struct Peers(Option<Arc<Open>>);

struct Open {
    cap: u32,
    by_peer: Mutex<HashMap<IpAddr, u32>>,
}

/// One connection counted against its peer; gives its place back when dropped.
pub(crate) struct PeerSlot(Option<(Arc<Open>, IpAddr)>);

impl Peers {
    /// No cap when `per_peer` cannot bind (it is at least the listener's own cap).
    pub(crate) fn new(per_peer: usize, max_connections: usize) -> Peers {
        if per_peer >= max_connections {
            return Peers(None);
        }
        let cap = u32::try_from(per_peer).unwrap_or(u32::MAX);
        Peers(Some(Arc::new(Open { cap, by_peer: Mutex::new(HashMap::new()) })))
    }

    /// A place for a connection from `ip`, or `None` if its peer holds the cap already.
    pub(crate) fn admit(&self, ip: IpAddr) -> Option<PeerSlot> {
        let Some(open) = &self.0 else { return Some(PeerSlot(None)) };
        let key = peer_of(ip);
        let mut by_peer = open.by_peer.lock().unwrap_or_else(PoisonError::into_inner);
        let count = by_peer.entry(key).or_insert(0);
        if *count >= open.cap {
            return None;
        }
        *count += 1;
        Some(PeerSlot(Some((open.clone(), key))))
    }
}

/// The peer an address belongs to: itself for IPv4 (also IPv4-mapped IPv6), its /64 for IPv6.
fn peer_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let Some((open, key)) = self.0.take() else { return };
        let mut by_peer = open.by_peer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = by_peer.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                by_peer.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_peer_gets_its_cap_and_its_places_back() {
        let peers = Peers::new(2, 10);
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "10.0.0.2".parse().unwrap();
        let first = peers.admit(one).unwrap();
        let _second = peers.admit(one).unwrap();
        assert!(peers.admit(one).is_none(), "a third from the same address");
        assert!(peers.admit(other).is_some(), "another address is counted apart");
        drop(first);
        assert!(peers.admit(one).is_some(), "a place given back is taken again");
    }

    #[test]
    fn ipv6_peers_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        let peers = Peers::new(1, 10);
        let _a = peers.admit("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(peers.admit("2001:db8:1:2:ffff::9".parse().unwrap()).is_none(), "same /64");
        assert!(peers.admit("2001:db8:1:3::1".parse().unwrap()).is_some(), "another /64");
        let _v4 = peers.admit("192.0.2.7".parse().unwrap()).unwrap();
        assert!(peers.admit("::ffff:192.0.2.7".parse().unwrap()).is_none(), "the same IPv4 host");
    }

    #[test]
    fn the_map_forgets_peers_with_nothing_open() {
        let peers = Peers::new(5, 10);
        let slots: Vec<_> = (0..4).map(|n| peers.admit(IpAddr::from([10, 0, 0, n])).unwrap()).collect();
        drop(slots);
        assert!(peers.0.as_ref().unwrap().by_peer.lock().unwrap().is_empty());
    }

    #[test]
    fn a_cap_at_the_listeners_own_is_no_cap() {
        let peers = Peers::new(10, 10);
        assert!(peers.0.is_none());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let slots: Vec<_> = (0..20).map(|_| peers.admit(ip).unwrap()).collect();
        assert_eq!(slots.len(), 20);
    }
}
