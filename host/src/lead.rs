//! Who runs the instance's driver: the driver is a task on a current-thread
//! tokio runtime of the instance's own, and whichever thread is inside that
//! runtime's `block_on` runs it, waits on the instance's sockets (epoll on
//! that thread) and answers every caller.
//!
//! A blocking call that finds no other call waiting enters the runtime
//! itself: it runs the driver on its own thread and wakes straight from
//! its socket into the component, with no thread hand-off (as when every
//! object had an instance of its own); it asks the background thread to
//! step out first ([`Lead::gate`]). Any other call waits for its answer
//! while someone else runs the driver: the blocking call inside, else the
//! background thread (`dflockd-driver`). That thread enters the runtime
//! whenever no blocking call is in it and a call waits, and also after
//! [`GRACE`] without one, to renew held leases. Handing the runtime from
//! caller to caller under contention cost more than it saved (each op a
//! wake of the next leader): there, one thread drives and the callers
//! wait.

use std::future::Future;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::view::locked;

/// How long the background thread leaves the runtime to blocking callers
/// after the last one: a thread that calls again within it (a release
/// after its acquire) finds the runtime free, with no hand-off. Far
/// shorter than any renewal interval (a lease is at least a second).
const GRACE: Duration = Duration::from_millis(2);

/// The instance's runtime and who is in it.
pub(crate) struct Lead {
    /// `None` only while dropping (see [`Drop`]).
    rt: Option<tokio::runtime::Runtime>,
    state: Mutex<Turns>,
    changed: Condvar,
    /// Asks the background thread to leave the runtime.
    gate: Notify,
}

struct Turns {
    /// A blocking caller is inside (or entering) the runtime.
    leading: bool,
    /// Calls waiting for an answer, blocking or not.
    waiting: usize,
    /// When the last blocking caller left.
    left: Option<Instant>,
    /// The driver task has ended: the background thread ends too.
    finished: bool,
}

impl Lead {
    pub(crate) fn new(rt: tokio::runtime::Runtime) -> Arc<Lead> {
        Arc::new(Lead {
            rt: Some(rt),
            state: Mutex::new(Turns {
                leading: false,
                waiting: 0,
                left: None,
                finished: false,
            }),
            changed: Condvar::new(),
            gate: Notify::new(),
        })
    }

    fn rt(&self) -> &tokio::runtime::Runtime {
        self.rt
            .as_ref()
            .expect("the runtime is there until dropped")
    }

    /// Spawns the driver task.
    pub(crate) fn spawn(&self, driver: impl Future<Output = ()> + Send + 'static) {
        self.rt().spawn(driver);
    }

    /// Runs `future` (a call) to completion on this thread: inside the
    /// instance's runtime when nothing else waits (so running the driver
    /// meanwhile), else waiting while someone else runs it, as it must
    /// inside another runtime, where tokio forbids entering one.
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        let mut turns = locked(&self.state);
        let lead =
            !turns.leading && turns.waiting == 0 && tokio::runtime::Handle::try_current().is_err();
        if !lead {
            drop(turns);
            return futures_lite::future::block_on(future);
        }
        turns.leading = true;
        drop(turns);
        self.gate.notify_one();
        let out = self.rt().block_on(future);
        let mut turns = locked(&self.state);
        turns.leading = false;
        turns.left = Some(Instant::now());
        drop(turns);
        self.changed.notify_all();
        out
    }

    /// A call now waits for its answer: someone must run the driver.
    pub(crate) fn waiting(&self) {
        locked(&self.state).waiting += 1;
        self.changed.notify_all();
    }

    /// A call got its answer (or was given up).
    pub(crate) fn answered(&self) {
        let mut turns = locked(&self.state);
        turns.waiting = turns.waiting.saturating_sub(1);
    }

    /// The driver task ended.
    pub(crate) fn finished(&self) {
        locked(&self.state).finished = true;
        self.changed.notify_all();
        self.gate.notify_one();
    }

    /// The background thread: runs the driver whenever no blocking caller
    /// does and someone waits, or the grace after the last one is over.
    pub(crate) fn background(&self) {
        loop {
            let mut turns = locked(&self.state);
            loop {
                if turns.finished {
                    return;
                }
                if turns.leading {
                    turns = self.changed.wait(turns).unwrap_or_else(|p| p.into_inner());
                    continue;
                }
                let idle = turns.left.map_or(GRACE, |left| left.elapsed());
                if turns.waiting > 0 || idle >= GRACE {
                    break;
                }
                turns = self
                    .changed
                    .wait_timeout(turns, GRACE - idle)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            drop(turns);
            self.rt().block_on(self.gate.notified());
        }
    }
}

impl Drop for Lead {
    /// Dropping a runtime waits for its blocking pool, which tokio forbids
    /// inside another runtime (it panics); dropped there, it shuts down in
    /// the background instead.
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                rt.shutdown_background();
            }
        }
    }
}
