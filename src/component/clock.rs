//! The only place that reads the clock: monotonic nanoseconds and timers.

use wasip2::clocks::monotonic_clock;
use wasip2::io::poll::Pollable;

/// Now, in monotonic ns.
pub fn now() -> u64 {
    monotonic_clock::now()
}

/// `ms` milliseconds from now.
pub fn after_ms(ms: u64) -> u64 {
    now().saturating_add(ms.saturating_mul(1_000_000))
}

/// `s` seconds plus `grace_ms` from now.
pub fn after_s(s: u64, grace_ms: u64) -> u64 {
    after_ms(grace_ms).saturating_add(s.saturating_mul(1_000_000_000))
}

/// A pollable ready at `instant`.
pub fn timer(instant: u64) -> Pollable {
    monotonic_clock::subscribe_instant(instant)
}

/// A random number for renewal jitter.
pub fn jitter() -> u64 {
    wasip2::random::insecure::get_insecure_random_u64()
}
