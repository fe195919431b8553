//! The only place that reads the clock: monotonic instants and timers.

use std::time::Duration;

use dflockd_core::Instant;
use wasip2::clocks::monotonic_clock;
use wasip2::io::poll::Pollable;

/// Now, on WASI's monotonic clock.
pub fn now() -> Instant {
    Instant::from_nanos(monotonic_clock::now())
}

/// `ms` milliseconds from now.
pub fn after_ms(ms: u64) -> Instant {
    now() + Duration::from_millis(ms)
}

/// `s` seconds plus `grace_ms` from now.
pub fn after_s(s: u64, grace_ms: u64) -> Instant {
    after_ms(grace_ms) + Duration::from_secs(s)
}

/// A pollable ready at `instant`.
pub fn timer(instant: Instant) -> Pollable {
    monotonic_clock::subscribe_instant(instant.as_nanos())
}

/// A moment that never comes: for a timer that must not fire.
pub const NEVER: Instant = Instant::from_nanos(u64::MAX);

/// A random number for renewal jitter.
pub fn jitter() -> u64 {
    wasip2::random::insecure::get_insecure_random_u64()
}
