//! What a session has done, for a host's metrics: running totals, kept by
//! the session and summed (`+`) by whoever reads them (the component over
//! its sessions, a host over its instances).

/// Totals since a session opened; `+` sums them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections opened: the first, and every one after a drop.
    pub connects: u64,
    /// Renewals the schedule sent (a caller's `renew` is not counted).
    pub renewals_sent: u64,
    /// Of them, confirmed by the server.
    pub renewals_confirmed: u64,
    /// The confirmed renewals' round trips, summed (ns).
    pub renew_latency_ns_total: u64,
    /// The longest of them (ns).
    pub renew_latency_ns_max: u64,
    /// Leases reported lost.
    pub leases_lost: u64,
}

impl Counters {
    /// Nothing counted yet.
    pub const ZERO: Counters = Counters {
        connects: 0,
        renewals_sent: 0,
        renewals_confirmed: 0,
        renew_latency_ns_total: 0,
        renew_latency_ns_max: 0,
        leases_lost: 0,
    };

    /// A confirmed renewal that took `latency_ns`.
    pub fn confirm_renewal(&mut self, latency_ns: u64) {
        self.renewals_confirmed += 1;
        self.renew_latency_ns_total = self.renew_latency_ns_total.saturating_add(latency_ns);
        self.renew_latency_ns_max = self.renew_latency_ns_max.max(latency_ns);
    }

    /// What was counted since `earlier` (an older reading of the same
    /// totals), to add to a sum that already has `earlier`;
    /// the maximum is kept whole (a maximum does not subtract).
    #[must_use]
    pub fn since(self, earlier: Counters) -> Counters {
        Counters {
            connects: self.connects.saturating_sub(earlier.connects),
            renewals_sent: self.renewals_sent.saturating_sub(earlier.renewals_sent),
            renewals_confirmed: self
                .renewals_confirmed
                .saturating_sub(earlier.renewals_confirmed),
            renew_latency_ns_total: self
                .renew_latency_ns_total
                .saturating_sub(earlier.renew_latency_ns_total),
            renew_latency_ns_max: self.renew_latency_ns_max,
            leases_lost: self.leases_lost.saturating_sub(earlier.leases_lost),
        }
    }

    /// The mean round trip of a confirmed renewal (ns), if any was.
    pub fn renew_latency_ns_mean(&self) -> Option<u64> {
        self.renew_latency_ns_total
            .checked_div(self.renewals_confirmed)
    }
}

/// These totals and `other`'s together (the maximum is the larger one).
impl std::ops::Add for Counters {
    type Output = Counters;

    fn add(self, other: Counters) -> Counters {
        Counters {
            connects: self.connects.saturating_add(other.connects),
            renewals_sent: self.renewals_sent.saturating_add(other.renewals_sent),
            renewals_confirmed: self
                .renewals_confirmed
                .saturating_add(other.renewals_confirmed),
            renew_latency_ns_total: self
                .renew_latency_ns_total
                .saturating_add(other.renew_latency_ns_total),
            renew_latency_ns_max: self.renew_latency_ns_max.max(other.renew_latency_ns_max),
            leases_lost: self.leases_lost.saturating_add(other.leases_lost),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Counters;

    #[test]
    fn totals_add_up_and_the_maximum_stays_the_maximum() {
        let mut a = Counters {
            connects: 1,
            renewals_sent: 2,
            ..Counters::default()
        };
        a.confirm_renewal(30);
        a.confirm_renewal(10);
        let mut b = Counters {
            leases_lost: 1,
            ..Counters::default()
        };
        b.confirm_renewal(20);
        let sum = a + b;
        assert_eq!(sum.renewals_confirmed, 3);
        assert_eq!(sum.renew_latency_ns_total, 60);
        assert_eq!(sum.renew_latency_ns_max, 30);
        assert_eq!(sum.renew_latency_ns_mean(), Some(20));
        assert_eq!(
            (sum.connects, sum.renewals_sent, sum.leases_lost),
            (1, 2, 1)
        );
        assert_eq!(Counters::default().renew_latency_ns_mean(), None);
        // Adding what came since a reading gives the later reading.
        let later = sum + a;
        assert_eq!(a + later.since(a), later);
    }
}
