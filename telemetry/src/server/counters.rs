//! A listener's metrics, their handles made once per listener (every label from a fixed set).
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `listener_connections_open` | `listener` | connections open now |
//! | `listener_connections_closed_total` | `listener`, `reason` | connections the listener closed: `first_byte`, `header`, `idle` (their deadlines), `keep_alive` (an HTTP/2 PING unanswered), `peer_cap` (refused at accept: the peer holds its cap), `drain` (still open when the drain grace ran out) |
//! | `listener_cap_reached_total` | `listener` | times every connection slot was taken, so new clients waited in the backlog |
//! | `listener_bodies_refused_total` | `listener`, `reason` | request bodies refused: `too_large`, `deadline`, `budget` (the byte budget of unauthenticated bodies was spent) |

use metrics::{Counter, Gauge};

use super::clock::Expiry;

/// Why the listener closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    FirstByte,
    Header,
    Idle,
    KeepAlive,
    PeerCap,
    Drain,
}

impl Reason {
    const ALL: [Reason; 6] =
        [Reason::FirstByte, Reason::Header, Reason::Idle, Reason::KeepAlive, Reason::PeerCap, Reason::Drain];

    fn label(self) -> &'static str {
        match self {
            Reason::FirstByte => "first_byte",
            Reason::Header => "header",
            Reason::Idle => "idle",
            Reason::KeepAlive => "keep_alive",
            Reason::PeerCap => "peer_cap",
            Reason::Drain => "drain",
        }
    }
}

impl From<Expiry> for Reason {
    fn from(expiry: Expiry) -> Reason {
        match expiry {
            Expiry::FirstByte => Reason::FirstByte,
            Expiry::Header => Reason::Header,
            Expiry::Idle => Reason::Idle,
        }
    }
}

pub(crate) struct Counters {
    pub(crate) open: Gauge,
    pub(crate) cap_reached: Counter,
    closed: [Counter; Reason::ALL.len()],
}

impl Counters {
    pub(crate) fn new(listener: &'static str) -> Counters {
        Counters {
            open: metrics::gauge!("listener_connections_open", "listener" => listener),
            cap_reached: metrics::counter!("listener_cap_reached_total", "listener" => listener),
            closed: Reason::ALL.map(|reason| {
                metrics::counter!("listener_connections_closed_total", "listener" => listener, "reason" => reason.label())
            }),
        }
    }

    pub(crate) fn closed(&self, reason: Reason) {
        self.closed[reason as usize].increment(1);
    }
}

/// Why a body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyRefusal {
    TooLarge,
    Deadline,
    Budget,
}

/// `listener_bodies_refused_total`, one handle per reason.
#[derive(Clone)]
pub(crate) struct BodyCounters([Counter; 3]);

impl BodyCounters {
    pub(crate) fn new(listener: &'static str) -> BodyCounters {
        let counter = |reason: &'static str| metrics::counter!("listener_bodies_refused_total", "listener" => listener, "reason" => reason);
        BodyCounters([counter("too_large"), counter("deadline"), counter("budget")])
    }

    pub(crate) fn refused(&self, why: BodyRefusal) {
        self.0[why as usize].increment(1);
    }
}
