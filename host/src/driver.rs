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

use crate::lock::{LeaseLost, Shared};
use crate::runtime::EPOCH;
use crate::Error;

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
        let inst = &mut core.inst;
        let deadline = match inst
            .client
            .dflockd_client_driver()
            .call_next_deadline(&mut inst.store)
        {
            Ok(deadline) => deadline,
            Err(e) => return tracing::error!(error = %e, "the component trapped; renewal stopped"),
        };
        let Some(deadline) = deadline else {
            core = shared.changed.wait(core).unwrap_or_else(|p| p.into_inner());
            continue;
        };
        // Drive once the deadline has passed. The deadline is not re-read
        // after a timed-out wait: while a renewal is in flight it is "now +
        // a tick", a target that would move forever. A notification (a call
        // changed the state) does re-read it.
        let due = *EPOCH + Duration::from_nanos(deadline);
        let now = Instant::now();
        if due > now {
            let (guard, waited) = shared
                .changed
                .wait_timeout(core, due - now)
                .unwrap_or_else(|p| p.into_inner());
            core = guard;
            if !waited.timed_out() {
                continue;
            }
        }
        let inst = &mut core.inst;
        let lost = match inst
            .client
            .dflockd_client_driver()
            .call_drive(&mut inst.store)
        {
            Ok(lost) => lost,
            Err(e) => return tracing::error!(error = %e, "the component trapped; renewal stopped"),
        };
        if lost.is_empty() {
            continue;
        }
        // The callback may call back into the lock: never hold the mutex then.
        drop(core);
        for lost in lost.into_iter().map(LeaseLost::from) {
            tracing::warn!(key = %lost.key, fence = lost.fence, reason = %lost.reason, "lease lost");
            if let Some(callback) = &shared.on_lost {
                callback(&lost);
            }
        }
        core = shared.core();
    }
}
