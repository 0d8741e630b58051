//! Where a request's time went, phase by phase, as curl's `-w` timings and
//! k6's `http_req_*` metrics split it: name lookup, TCP connect (through a
//! proxy's tunnel, when there is one), TLS handshake, time to first byte
//! (from the request's first byte written to the response's first byte
//! read) and receiving the rest. A connection reused from the pool costs no
//! lookup, connect or handshake, so those read 0.
//!
//! Redirects add their hops' phases up, so the phases of a reply account
//! for its time on the wire across every hop.

use std::time::Duration;

use tokio::time::Instant;

/// Phase durations of one reply, every hop included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    pub dns: Duration,
    pub connect: Duration,
    pub tls: Duration,
    pub ttfb: Duration,
    pub receive: Duration,
}

impl Timings {
    /// Adds one hop's phases.
    pub fn add(&mut self, hop: &Timings) {
        self.dns += hop.dns;
        self.connect += hop.connect;
        self.tls += hop.tls;
        self.ttfb += hop.ttfb;
        self.receive += hop.receive;
    }
}

/// The instants of one exchange on an open connection.
#[derive(Debug, Clone, Copy)]
pub struct ExchangeClock {
    start: Instant,
    first_byte: Option<Instant>,
}

/// What one exchange measured: its ttfb and receive phases, and the
/// instant its response was complete (the request's end, so the caller
/// needs no clock reading of its own).
#[derive(Debug, Clone, Copy)]
pub struct ExchangeTimes {
    pub ttfb: Duration,
    pub receive: Duration,
    pub end: Instant,
}

impl ExchangeClock {
    /// A clock started at `start`: the request's own start when it goes
    /// on a pooled connection at once, so the hot path reads the clock
    /// only for the response's first byte.
    pub fn start_at(start: Instant) -> Self {
        ExchangeClock {
            start,
            first_byte: None,
        }
    }

    /// Called after every read that returned bytes; only the first counts.
    #[inline]
    pub fn got_bytes(&mut self) {
        if self.first_byte.is_none() {
            self.first_byte = Some(Instant::now());
        }
    }

    /// The exchange's ttfb and receive phases. `read_once`: the whole
    /// response came in the first read, so its end is the first byte's
    /// instant (no second clock reading on the hot path).
    pub fn finish(&self, read_once: bool) -> ExchangeTimes {
        let first = self.first_byte.unwrap_or(self.start);
        let end = if read_once { first } else { Instant::now() };
        ExchangeTimes {
            ttfb: first.saturating_duration_since(self.start),
            receive: end.saturating_duration_since(first),
            end,
        }
    }
}
