//! The counters a [`Runtime`](crate::Runtime) shows
//! ([`Runtime::counters`](crate::Runtime::counters)): the sum of what its
//! instances counted (connects, renewals and their round trips, losses).
//! Each object reads its instance's totals (`driver.counters`) at every
//! renewal pass and when it is dropped, and adds what is new; so the sum
//! is as of each object's last pass.

use std::sync::Mutex;

use dflockd_core::Counters;

/// The runtime's sum.
#[derive(Default)]
pub(crate) struct Tally {
    total: Mutex<Counters>,
}

impl Tally {
    /// Adds what `now` (an instance's totals) has beyond `seen` (its last
    /// reading, which becomes `now`); returns that difference.
    pub(crate) fn absorb(&self, seen: &mut Counters, now: Counters) -> Counters {
        let new = now.since(*seen);
        *seen = now;
        let mut total = self.total.lock().unwrap_or_else(|p| p.into_inner());
        *total = *total + new;
        new
    }

    /// The sum so far.
    pub(crate) fn get(&self) -> Counters {
        *self.total.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `tracing` for what a renewal pass found new: connects and renewals,
/// with the key (never a token).
pub(crate) fn trace(key: &str, new: &Counters) {
    if new.connects > 0 {
        tracing::debug!(key, connects = new.connects, "connected");
    }
    if new.renewals_confirmed > 0 {
        tracing::debug!(
            key,
            renewals = new.renewals_confirmed,
            latency_ns_max = new.renew_latency_ns_max,
            "renewed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reading_adds_only_what_is_new() {
        let tally = Tally::default();
        let (mut a, mut b) = (Counters::ZERO, Counters::ZERO);
        let one = Counters {
            connects: 1,
            renewals_sent: 2,
            ..Counters::ZERO
        };
        tally.absorb(&mut a, one);
        tally.absorb(&mut b, one);
        let new = tally.absorb(&mut a, one); // read again, nothing new
        assert_eq!(new.renewals_sent, 0);
        assert_eq!(tally.get().renewals_sent, 4);
        assert_eq!(tally.get().connects, 2);
    }
}
