//! A connection's phases and their deadlines, and the watchdog that closes a connection when one
//! passes.
//!
//! ```text
//! FirstByte ─byte─▶ Head ─request─▶ Busy ─last answer─▶ Idle ─byte (HTTP/1)─▶ Head …
//!                                    ▲ request (HTTP/2) ──────┘
//! ```
//! `Busy` (a request in the handler) has no deadline here: the handler bounds its own work and
//! reads the body within its deadline ([`super::BodyReader`]). On HTTP/2, bytes do not end
//! `Idle` (pings and window updates are not requests); only a request does.
//!
//! The reads (in the connection's I/O) and the requests (in its service) move the phase; the
//! [`Watchdog`] re-arms its timer only when the phase changed (a generation counter), so the cost
//! per request is a few uncontended atomic operations and at most one timer reset.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// The deadlines a connection keeps (from [`super::ConnectionLimits`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadlines {
    pub(crate) first_byte: Duration,
    pub(crate) header: Duration,
    pub(crate) idle: Duration,
}

/// Which deadline closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    FirstByte,
    Header,
    Idle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    FirstByte,
    Head,
    Busy,
    Idle,
}

struct State {
    phase: Phase,
    /// When the phase began.
    since: Instant,
    /// Requests in the handler (HTTP/2 runs several at once).
    in_flight: u32,
    http2: bool,
    /// The connection task, for changes made from other tasks (HTTP/2 runs each request in a
    /// task of its own).
    waker: Option<Waker>,
}

/// One connection's phase, shared by its I/O, its service and its watchdog.
pub(crate) struct Clock {
    deadlines: Deadlines,
    state: Mutex<State>,
    /// Bumped on every change of phase.
    generation: AtomicU64,
    /// The next byte read begins a request head (HTTP/1, first byte or idle): the one check the
    /// I/O makes per read.
    awaiting_head: AtomicBool,
}

impl Clock {
    pub(crate) fn new(deadlines: Deadlines) -> Arc<Clock> {
        let state = State { phase: Phase::FirstByte, since: Instant::now(), in_flight: 0, http2: false, waker: None };
        Arc::new(Clock {
            deadlines,
            state: Mutex::new(state),
            generation: AtomicU64::new(1),
            awaiting_head: AtomicBool::new(true),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Bytes were read from the client.
    pub(crate) fn bytes_read(&self) {
        if !self.awaiting_head.load(Ordering::Relaxed) {
            return;
        }
        let mut state = self.state();
        self.awaiting_head.store(false, Ordering::Relaxed);
        if matches!(state.phase, Phase::FirstByte | Phase::Idle) && !state.http2 {
            state.phase = Phase::Head;
            state.since = Instant::now();
            self.changed();
        }
    }

    /// A request reached the service.
    pub(crate) fn request_started(&self, http2: bool) {
        let mut state = self.state();
        self.awaiting_head.store(false, Ordering::Relaxed);
        state.http2 |= http2;
        state.in_flight = state.in_flight.saturating_add(1);
        if state.phase != Phase::Busy {
            state.phase = Phase::Busy;
            self.changed();
        }
    }

    /// A request left the service (answered, or dropped with its connection).
    pub(crate) fn request_ended(&self) {
        let mut state = self.state();
        state.in_flight = state.in_flight.saturating_sub(1);
        if state.in_flight > 0 {
            return;
        }
        state.phase = Phase::Idle;
        state.since = Instant::now();
        self.awaiting_head.store(!state.http2, Ordering::Relaxed);
        self.changed();
        if state.http2
            && let Some(waker) = &state.waker
        {
            waker.wake_by_ref();
        }
    }

    /// The current phase's deadline, if it has one.
    fn deadline(&self) -> Option<(Instant, Expiry)> {
        let state = self.state();
        let (timeout, expiry) = match state.phase {
            Phase::FirstByte => (self.deadlines.first_byte, Expiry::FirstByte),
            Phase::Head => (self.deadlines.header, Expiry::Header),
            Phase::Idle => (self.deadlines.idle, Expiry::Idle),
            Phase::Busy => return None,
        };
        Some((state.since + timeout, expiry))
    }
}

/// Resolves when the connection's current phase outlives its deadline. Poll it right after the
/// connection itself (same task, `biased`), so a change made while polling the connection is
/// seen at once.
pub(crate) struct Watchdog {
    clock: Arc<Clock>,
    timer: Pin<Box<Sleep>>,
    seen: u64,
    armed: Option<Expiry>,
    waker_registered: bool,
}

impl Watchdog {
    pub(crate) fn new(clock: Arc<Clock>) -> Watchdog {
        let timer = Box::pin(tokio::time::sleep(Duration::ZERO));
        Watchdog { clock, timer, seen: 0, armed: None, waker_registered: false }
    }
}

impl Future for Watchdog {
    type Output = Expiry;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Expiry> {
        let this = &mut *self;
        if !this.waker_registered {
            // The connection's task polls its watchdog, always the same task.
            this.clock.state().waker = Some(cx.waker().clone());
            this.waker_registered = true;
        }
        loop {
            let generation = this.clock.generation.load(Ordering::Acquire);
            if generation != this.seen {
                this.seen = generation;
                this.armed = this.clock.deadline().map(|(at, expiry)| {
                    this.timer.as_mut().reset(at);
                    expiry
                });
            }
            let Some(expiry) = this.armed else { return Poll::Pending };
            if this.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if this.clock.generation.load(Ordering::Acquire) == this.seen {
                return Poll::Ready(expiry);
            }
            // The phase changed as the timer fired: look again.
        }
    }
}
