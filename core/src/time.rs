//! Time as the core sees it: a moment on a monotonic clock that only the
//! shell reads. Every call that needs the time takes an [`Instant`].

use std::time::Duration;

/// A moment on the shell's monotonic clock (WASI's `monotonic-clock`:
/// nanoseconds from an arbitrary origin). Arithmetic saturates: a lease of
/// `u64::MAX` seconds ends at the last representable moment, not in a
/// panic (which would poison the component instance).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The moment `ns` nanoseconds after the clock's origin.
    pub const fn from_nanos(ns: u64) -> Self {
        Instant(ns)
    }

    /// Nanoseconds since the clock's origin (what WASI's clock takes).
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// `duration` later, or the last representable moment.
    pub fn saturating_add(self, duration: Duration) -> Self {
        let ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(ns))
    }

    /// How long after `earlier` this is (zero if it is not after it).
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl std::ops::Add<Duration> for Instant {
    type Output = Instant;
    /// Saturating: see [`Instant::saturating_add`].
    fn add(self, duration: Duration) -> Instant {
        self.saturating_add(duration)
    }
}

impl std::ops::AddAssign<Duration> for Instant {
    /// Saturating: see [`Instant::saturating_add`].
    fn add_assign(&mut self, duration: Duration) {
        *self = self.saturating_add(duration);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        let last = Instant::from_nanos(u64::MAX - 1);
        assert_eq!(
            last + Duration::from_secs(u64::MAX),
            Instant::from_nanos(u64::MAX)
        );
        assert_eq!(
            Instant::from_nanos(5).saturating_duration_since(Instant::from_nanos(9)),
            Duration::ZERO
        );
        assert_eq!(
            Instant::from_nanos(2_000) + Duration::from_micros(1),
            Instant::from_nanos(3_000)
        );
    }
}
