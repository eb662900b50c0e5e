//! Download links: each issued with a random token and the file of that moment, alive for the
//! link TTL (Alipay's is 30 s). Bounded: at most [`MAX_LINKS`] links and [`MAX_LINK_BYTES`] of
//! files; past either, the oldest links are dropped.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

/// Most links kept.
pub const MAX_LINKS: usize = 10_000;
/// Most file bytes kept across links.
pub const MAX_LINK_BYTES: usize = 256 * 1024 * 1024;
/// Most links the expire hook can kill in advance.
pub const MAX_DEAD_AHEAD: u32 = 1_000;

struct Link {
    issued: Instant,
    /// Dead on arrival (the expire hook).
    dead: bool,
    file: Bytes,
}

#[derive(Default)]
struct Store {
    by_token: HashMap<String, Link>,
    order: VecDeque<String>,
    bytes: usize,
    /// The next this many links are issued dead.
    dead_ahead: u32,
    /// The next this many links serve their file cut to this many bytes.
    cut_ahead: (u32, usize),
}

pub struct Links {
    store: Mutex<Store>,
    ttl: Duration,
}

impl Links {
    pub fn new(ttl: Duration) -> Self {
        Links { store: Mutex::default(), ttl }
    }

    /// Keeps `file` under a fresh random token (32 hex digits), which it answers.
    pub fn issue(&self, file: Bytes) -> String {
        let token = format!("{:032x}", rand::random::<u128>());
        let mut store = self.store.lock();
        let dead = store.dead_ahead > 0;
        store.dead_ahead = store.dead_ahead.saturating_sub(1);
        let file = match store.cut_ahead {
            (0, _) => file,
            (n, keep) => {
                store.cut_ahead.0 = n - 1;
                file.slice(..keep.min(file.len()))
            }
        };
        store.bytes += file.len();
        store.by_token.insert(token.clone(), Link { issued: Instant::now(), dead, file });
        store.order.push_back(token.clone());
        while store.order.len() > MAX_LINKS || store.bytes > MAX_LINK_BYTES {
            let Some(old) = store.order.pop_front() else { break };
            if let Some(gone) = store.by_token.remove(&old) {
                store.bytes -= gone.file.len();
            }
        }
        token
    }

    /// The file behind `token`, if the link is alive.
    pub fn fetch(&self, token: &str) -> Option<Bytes> {
        let store = self.store.lock();
        let link = store.by_token.get(token)?;
        (!link.dead && link.issued.elapsed() < self.ttl).then(|| link.file.clone())
    }

    /// The next `n` links (at most [`MAX_DEAD_AHEAD`]) serve their file cut to `keep` bytes, as
    /// a download cut short would leave it.
    pub fn cut_next(&self, n: u32, keep: usize) {
        self.store.lock().cut_ahead = (n.min(MAX_DEAD_AHEAD), keep);
    }

    /// The next `n` links are issued dead (at most [`MAX_DEAD_AHEAD`]).
    pub fn kill_next(&self, n: u32) {
        self.store.lock().dead_ahead = n.min(MAX_DEAD_AHEAD);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_serve_their_file_until_killed_or_stale() {
        let links = Links::new(Duration::from_secs(30));
        let token = links.issue(Bytes::from_static(b"zip"));
        assert_eq!(token.len(), 32);
        assert_eq!(links.fetch(&token).as_deref(), Some(&b"zip"[..]));
        assert_eq!(links.fetch("0123"), None);
        links.kill_next(1);
        let dead = links.issue(Bytes::from_static(b"zip"));
        assert_eq!(links.fetch(&dead), None);
        assert!(links.fetch(&links.issue(Bytes::from_static(b"zip"))).is_some());
        let stale = Links::new(Duration::ZERO);
        assert_eq!(stale.fetch(&stale.issue(Bytes::from_static(b"zip"))), None);
    }

    #[test]
    fn the_oldest_links_go_first() {
        let links = Links::new(Duration::from_secs(30));
        let first = links.issue(Bytes::from_static(b"a"));
        for _ in 0..MAX_LINKS {
            links.issue(Bytes::from_static(b"b"));
        }
        assert_eq!(links.fetch(&first), None);
        assert_eq!(links.store.lock().by_token.len(), MAX_LINKS);
    }
}
