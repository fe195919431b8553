//! The host's side of the component's monotonic clock: every instance's
//! `wasi:clocks/monotonic-clock` counts from one epoch, so the component's
//! deadlines (`next-deadline`) compare with the host's [`now_ns`].

use std::sync::LazyLock;
use std::time::Instant;

use wasmtime_wasi::HostMonotonicClock;

/// The origin of every instance's clock.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Now, in the component's monotonic nanoseconds.
pub(crate) fn now_ns() -> u64 {
    u64::try_from(EPOCH.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// The clock every instance is given.
pub(crate) struct EpochClock;

impl HostMonotonicClock for EpochClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        now_ns()
    }
}
