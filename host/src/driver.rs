//! The renewal thread of one lock object.
//!
//! The component renews only while it runs. Between calls, this thread asks
//! it for its next deadline (`next-deadline`, on the host's clock by
//! construction: see `runtime::EPOCH`), sleeps on a condition variable until
//! then or until a call changes the state, and calls `drive`. Losses go to
//! the `on_lost` callback and to `tracing`.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::lock::Shared;
use crate::runtime::{block_on, EPOCH};
use crate::Error;

/// What the renewal thread waits for, so that a call wakes it only when
/// the next deadline moved sooner ([`crate::lock::Core::rearm`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sleep {
    /// Running, or about to run: it reads the deadline again anyway.
    Awake,
    /// Nothing to renew: it waits for a call.
    Indefinitely,
    /// It drives at this deadline (`next-deadline`, on the host's clock).
    Until(u64),
}

impl Sleep {
    /// Whether `next` (the new `next-deadline`; `Err` when the call
    /// trapped, which the sleeper must meet and report) comes sooner than
    /// this sleep planned.
    pub(crate) fn is_sooner<E>(self, next: &Result<Option<u64>, E>) -> bool {
        match (self, next) {
            (Sleep::Awake, _) => false,
            (_, Err(_)) => true,
            (_, Ok(None)) => false,
            (Sleep::Indefinitely, Ok(Some(_))) => true,
            (Sleep::Until(planned), Ok(Some(next))) => *next < planned,
        }
    }
}

pub(crate) fn spawn(shared: Arc<Shared>, key: &str) -> Result<JoinHandle<()>, Error> {
    std::thread::Builder::new()
        .name(format!(
            "dflockd-renew:{}",
            key.chars().take(32).collect::<String>()
        ))
        .spawn(move || run(&shared))
        .map_err(|e| Error::Runtime(format!("starting the renewal thread: {e}")))
}

/// Asks the thread to stop and waits for it.
pub(crate) fn stop(shared: &Shared, thread: Option<JoinHandle<()>>) {
    shared.core().stopping = true;
    shared.changed.notify_all();
    if let Some(thread) = thread {
        let _ = thread.join();
    }
}

fn run(shared: &Shared) {
    let mut core = shared.core();
    loop {
        if core.stopping {
            return;
        }
        let deadline = match block_on!(&mut core.inst, |i| i
            .client
            .dflockd_client_driver()
            .call_next_deadline(&mut i.store))
        {
            Ok(deadline) => deadline,
            Err(e) => return tracing::error!(error = %e, "the component trapped; renewal stopped"),
        };
        let Some(deadline) = deadline else {
            core.driver = Sleep::Indefinitely;
            core = shared.changed.wait(core).unwrap_or_else(|p| p.into_inner());
            core.driver = Sleep::Awake;
            continue;
        };
        // Drive once the deadline has passed. The deadline is not re-read
        // after a timed-out wait: while a renewal is in flight it is "now +
        // a tick", a target that would move forever. A notification (a call
        // changed the state) does re-read it.
        let due = *EPOCH + Duration::from_nanos(deadline);
        let now = Instant::now();
        if due > now {
            core.driver = Sleep::Until(deadline);
            let (guard, waited) = shared
                .changed
                .wait_timeout(core, due - now)
                .unwrap_or_else(|p| p.into_inner());
            core = guard;
            core.driver = Sleep::Awake;
            if !waited.timed_out() {
                continue;
            }
        }
        let lost = match block_on!(&mut core.inst, |i| i
            .client
            .dflockd_client_driver()
            .call_drive(&mut i.store))
        {
            Ok(lost) => lost,
            Err(e) => return tracing::error!(error = %e, "the component trapped; renewal stopped"),
        };
        if lost.is_empty() {
            continue;
        }
        // The callback may call back into the lock: never hold the mutex then.
        drop(core);
        for lost in lost.into_iter().map(crate::raw_async::lease_lost) {
            tracing::warn!(key = %lost.key, fence = lost.fence, reason = %lost.reason, "lease lost");
            if let Some(callback) = &shared.on_lost {
                callback(&lost);
            }
        }
        core = shared.core();
    }
}

#[cfg(test)]
mod tests {
    use super::Sleep;

    #[test]
    fn a_sleeper_is_woken_only_for_a_sooner_deadline_or_a_trap() {
        let next = |d: Option<u64>| Ok::<_, ()>(d);
        assert!(!Sleep::Awake.is_sooner(&next(Some(1))));
        assert!(!Sleep::Awake.is_sooner(&Err::<Option<u64>, _>(())));
        assert!(Sleep::Indefinitely.is_sooner(&next(Some(u64::MAX))));
        assert!(!Sleep::Indefinitely.is_sooner(&next(None)));
        assert!(Sleep::Until(10).is_sooner(&next(Some(9))));
        assert!(!Sleep::Until(10).is_sooner(&next(Some(10))));
        assert!(!Sleep::Until(10).is_sooner(&next(Some(11))));
        assert!(!Sleep::Until(10).is_sooner(&next(None)));
        assert!(Sleep::Until(10).is_sooner(&Err::<Option<u64>, _>(())));
    }
}
