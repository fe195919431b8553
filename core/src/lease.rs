//! Lease renewal scheduling, sans-IO: time is always an argument.
//!
//! Call order, per held grant: after the grant, [`Lease::poll_deadline`] says
//! when to come back; at or after that moment [`Lease::poll_renew`] says
//! whether to send a renewal now; its reply goes to [`Lease::handle_renewed`]
//! or [`Lease::handle_failure`]; when a deadline passes with the reply still
//! missing, [`Lease::handle_timeout`] declares the lease lost.

use std::time::Duration;

use crate::protocol::{Error, LossCause};
use crate::time::Instant;

const NS_PER_S: u64 = 1_000_000_000;
/// The longest gap between renewals, whatever the lease: dflockd drops a
/// connection that sends nothing for `--read-timeout` (default 23 s), and
/// with it (by default) every lease the connection holds. Renewing at least
/// this often keeps a long lease's connection alive.
pub const MAX_RENEW_INTERVAL_S: u64 = 20;
const _: () = assert!(
    MAX_RENEW_INTERVAL_S < 23,
    "below dflockd's default --read-timeout"
);

/// The state of one held lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Held; the next renewal is due at `renew_at`.
    Scheduled {
        /// When to send the next renewal.
        renew_at: Instant,
    },
    /// A renewal was sent at `sent_at`; its reply is due before `expires_at`.
    InFlight {
        /// When the renewal was sent.
        sent_at: Instant,
    },
    /// The lease was lost. Final.
    Lost(Error),
}

/// Renewal scheduling for one grant, on a monotonic clock in nanoseconds.
#[derive(Debug, Clone)]
pub struct Lease {
    ratio: f64,
    /// The latest moment the lease is known to last to (a conservative local estimate).
    expires_at: Instant,
    state: State,
}

impl Lease {
    /// A lease of `lease_s` seconds granted no later than `now`.
    /// `ratio` is in (0, 1); `jitter` is a random number for early-only jitter.
    pub fn new(now: Instant, lease_s: u64, ratio: f64, jitter: u64) -> Self {
        let mut lease = Lease {
            ratio,
            expires_at: Instant::default(),
            state: State::Lost(Error::Timeout),
        };
        lease.schedule(now, lease_s, jitter);
        lease
    }

    /// The current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The latest moment the lease is known to last to: a local estimate
    /// that errs early (counted from when the request was sent).
    pub fn expires_at(&self) -> Instant {
        self.expires_at
    }

    /// Whether the lease is lost.
    pub fn is_lost(&self) -> bool {
        matches!(self.state, State::Lost(_))
    }

    /// When something must happen next: the renewal time, or the end of the
    /// lease while a renewal is in flight. `None` once lost.
    pub fn poll_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Scheduled { renew_at } => Some(renew_at),
            State::InFlight { .. } => Some(self.expires_at),
            State::Lost(_) => None,
        }
    }

    /// Whether a renewal must be sent now; if so the lease is in flight from `now`.
    pub fn poll_renew(&mut self, now: Instant) -> bool {
        match self.state {
            State::Scheduled { renew_at } if now >= renew_at => {
                self.state = State::InFlight { sent_at: now };
                true
            }
            _ => false,
        }
    }

    /// Marks a renewal sent now outside the schedule (the caller's `renew`):
    /// its reply then moves the lease's end as a scheduled one's does.
    pub fn start_renew(&mut self, now: Instant) {
        if !self.is_lost() {
            self.state = State::InFlight { sent_at: now };
        }
    }

    /// The server renewed: `remaining_s` left, counted from when the request was sent.
    pub fn handle_renewed(&mut self, remaining_s: u64, jitter: u64) {
        if let State::InFlight { sent_at } = self.state {
            self.schedule(sent_at, remaining_s, jitter);
        }
    }

    /// The renewal failed (refused, or the connection broke): the lease is lost.
    pub fn handle_failure(&mut self, reason: Error) {
        if !self.is_lost() {
            self.state = State::Lost(reason);
        }
    }

    /// At `now`, a lease whose end has passed without a renewal reply is
    /// lost: the reply is missing, or no renewal was sent in time because
    /// nothing drove the lease. Returns whether it was lost by this call.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        if self.is_lost() || now < self.expires_at {
            return false;
        }
        let cause = match self.state {
            State::InFlight { .. } => LossCause::NoReply,
            _ => LossCause::NotRenewed,
        };
        self.state = State::Lost(Error::lost(cause, ""));
        true
    }

    fn schedule(&mut self, from: Instant, lease_s: u64, jitter: u64) {
        // In whole nanoseconds, saturating: a lease of u64::MAX seconds
        // must not overflow (a panic would poison the component).
        let lease_ns = lease_s.saturating_mul(NS_PER_S);
        // Renew at lease × ratio (at most every MAX_RENEW_INTERVAL_S), minus
        // up to a tenth of that, never later.
        let interval = ((lease_ns as f64 * self.ratio) as u64).min(MAX_RENEW_INTERVAL_S * NS_PER_S);
        let early = jitter % (interval / 10 + 1);
        self.expires_at = from + Duration::from_nanos(lease_ns);
        self.state = State::Scheduled {
            renew_at: from + Duration::from_nanos(interval - early),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = NS_PER_S;

    /// The moment `ns` nanoseconds after the clock's origin.
    fn at(ns: u64) -> Instant {
        Instant::from_nanos(ns)
    }

    #[test]
    fn a_long_lease_renews_before_the_servers_idle_timeout() {
        let lease = Lease::new(at(0), 300, 0.5, 0);
        assert_eq!(lease.poll_deadline(), Some(at(MAX_RENEW_INTERVAL_S * S)));
    }

    #[test]
    fn renews_at_the_ratio_without_jitter() {
        let mut lease = Lease::new(at(100 * S), 10, 0.5, 0);
        assert_eq!(lease.poll_deadline(), Some(at(105 * S)));
        assert!(!lease.poll_renew(at(105 * S - 1)));
        assert!(lease.poll_renew(at(105 * S)));
        assert_eq!(
            lease.state(),
            &State::InFlight {
                sent_at: at(105 * S)
            }
        );
        assert_eq!(
            lease.poll_deadline(),
            Some(at(110 * S)),
            "reply due before the lease ends"
        );
        assert!(
            !lease.poll_renew(at(106 * S)),
            "one renewal in flight at a time"
        );
        lease.handle_renewed(10, 0);
        assert_eq!(lease.poll_deadline(), Some(at(110 * S)));
    }

    #[test]
    fn jitter_is_early_only_and_bounded() {
        for jitter in [0, 1, 7, 123_456_789, u64::MAX] {
            let lease = Lease::new(at(0), 20, 0.5, jitter);
            let when = lease.poll_deadline().unwrap().as_nanos();
            assert!((9 * S..=10 * S).contains(&when), "{jitter}: {when}");
        }
    }

    #[test]
    fn a_virtual_clock_holds_a_lease_for_many_lease_lengths() {
        let mut lease = Lease::new(at(0), 2, 0.5, 0);
        let mut renewals = 0;
        let mut now = at(0);
        while now < at(6 * S) {
            now = lease.poll_deadline().unwrap();
            assert!(lease.poll_renew(now));
            lease.handle_renewed(2, now.as_nanos());
            renewals += 1;
            assert!(!lease.is_lost());
        }
        assert!(renewals >= 6, "{renewals}");
    }

    #[test]
    fn missing_reply_loses_the_lease_at_its_end() {
        let mut lease = Lease::new(at(0), 4, 0.5, 0);
        assert!(lease.poll_renew(at(2 * S)));
        assert!(!lease.handle_timeout(at(4 * S - 1)));
        assert!(lease.handle_timeout(at(4 * S)));
        assert!(lease.is_lost());
        assert_eq!(lease.poll_deadline(), None);
        assert!(!lease.poll_renew(at(10 * S)));
    }

    #[test]
    fn an_undriven_lease_is_lost_at_its_end() {
        let mut lease = Lease::new(at(0), 4, 0.5, 0);
        assert!(!lease.handle_timeout(at(4 * S - 1)));
        assert!(lease.handle_timeout(at(4 * S)));
        assert!(matches!(lease.state(), State::Lost(Error::LockLost(_))));
    }

    #[test]
    fn refusal_is_final() {
        let mut lease = Lease::new(at(0), 4, 0.5, 0);
        assert!(lease.poll_renew(at(2 * S)));
        lease.handle_failure(Error::LeaseExpired);
        assert_eq!(lease.state(), &State::Lost(Error::LeaseExpired));
        lease.handle_renewed(4, 0);
        lease.handle_failure(Error::Timeout);
        assert_eq!(
            lease.state(),
            &State::Lost(Error::LeaseExpired),
            "first reason kept"
        );
    }

    #[test]
    fn huge_leases_saturate_instead_of_overflowing() {
        let lease = Lease::new(
            at(u64::MAX - 5),
            crate::protocol::MAX_SECONDS,
            0.99,
            u64::MAX,
        );
        assert!(lease.poll_deadline().is_some());
    }
}
