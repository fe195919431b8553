//! One renewal thread per [`Runtime`](crate::Runtime) for all of its
//! objects, blocking and async, instead of one per object.
//!
//! The component renews only while it runs. Between calls this thread
//! sleeps until the earliest deadline of its [`Schedule`] and drives that
//! object. An object busy in a call is skipped: a call renews its own
//! instance's leases, and every call reschedules its object when it ends.
//! The thread knows the objects only as [`Renewable`] / [`AsyncRenewable`],
//! so that it imports none of them.
//!
//! Async objects are renewed here too, on a current-thread tokio runtime
//! of the thread's own (their sockets stay with the runtime that opened
//! them). A task on the caller's runtime would die with that runtime, and
//! with it the renewal of every other runtime's objects: a process often
//! has several (tests, libraries), and a lease must not be lost silently.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

use crate::clock::now_ns;
pub(crate) use crate::schedule::Renewed;
use crate::schedule::{Next, Schedule};
use crate::Error;

/// A blocking object whose leases the thread keeps.
pub(crate) trait Renewable: Send + Sync {
    /// Drives the object's instance once, without waiting for a call in
    /// progress; reports its losses itself.
    fn renew(&self) -> Renewed;
}

/// An async object whose leases the thread keeps.
pub(crate) trait AsyncRenewable: Send + Sync {
    /// As [`Renewable::renew`]; never waits for a call in progress.
    fn renew(&self) -> Pin<Box<dyn Future<Output = Renewed> + Send + '_>>;
}

/// How the thread knows an object: weakly, so that a dropped one is forgotten.
#[derive(Clone)]
pub(crate) enum Object {
    Blocking(Weak<dyn Renewable>),
    Async(Weak<dyn AsyncRenewable>),
}

/// The schedule, shared by the objects (which reschedule after each call)
/// and the thread.
pub(crate) struct Renewer {
    plan: Mutex<Plan>,
    wake: Condvar,
}

struct Plan {
    schedule: Schedule<Object>,
    started: bool,
    stopping: bool,
}

impl Renewer {
    /// An empty schedule; the thread starts with the first object.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Renewer {
            plan: Mutex::new(Plan {
                schedule: Schedule::new(),
                started: false,
                stopping: false,
            }),
            wake: Condvar::new(),
        })
    }

    fn plan(&self) -> MutexGuard<'_, Plan> {
        // Nothing panics while holding it; a poisoned plan is still whole.
        self.plan.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers an object (with nothing due yet); returns its id.
    pub(crate) fn add(self: &Arc<Self>, object: Object) -> Result<u64, Error> {
        let mut plan = self.plan();
        if !plan.started {
            let renewer = self.clone();
            std::thread::Builder::new()
                .name("dflockd-renew".into())
                .spawn(move || run(&renewer))
                .map_err(|e| Error::Runtime(format!("starting the renewal thread: {e}")))?;
            plan.started = true;
        }
        Ok(plan.schedule.add(object))
    }

    /// Sets the object's next deadline; wakes the thread when it comes
    /// before everything else planned.
    pub(crate) fn schedule(&self, id: u64, due: Option<u64>) {
        if self.plan().schedule.set(id, due) {
            self.wake.notify_one();
        }
    }

    /// Forgets an object.
    pub(crate) fn remove(&self, id: u64) {
        self.plan().schedule.remove(id);
    }

    /// Ends the thread (when the runtime goes).
    pub(crate) fn stop(&self) {
        self.plan().stopping = true;
        self.wake.notify_one();
    }
}

fn run(renewer: &Renewer) {
    // Made with the first async object due.
    let mut tokio: Option<tokio::runtime::Runtime> = None;
    let mut plan = renewer.plan();
    loop {
        if plan.stopping {
            return;
        }
        match plan.schedule.next(now_ns()) {
            Next::Idle => plan = renewer.wake.wait(plan).unwrap_or_else(|p| p.into_inner()),
            Next::At(due) => {
                let wait = Duration::from_nanos(due.saturating_sub(now_ns()));
                plan = renewer
                    .wake
                    .wait_timeout(plan, wait)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            Next::Due(id, object) => {
                // The object's calls reschedule it meanwhile: never hold the
                // plan while driving (or while its loss callbacks run).
                drop(plan);
                let renewed = renew(&object, &mut tokio);
                plan = renewer.plan();
                plan.schedule.after(id, renewed);
            }
        }
    }
}

/// Drives one object (an async one to completion on `tokio`).
fn renew(object: &Object, tokio: &mut Option<tokio::runtime::Runtime>) -> Renewed {
    match object {
        Object::Blocking(weak) => weak.upgrade().map_or(Renewed::Gone, |o| o.renew()),
        Object::Async(weak) => {
            let Some(object) = weak.upgrade() else {
                return Renewed::Gone;
            };
            if tokio.is_none() {
                let built = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match built {
                    Ok(rt) => *tokio = Some(rt),
                    Err(e) => {
                        tracing::error!(error = %e, "no tokio runtime for async renewal");
                        return Renewed::Gone;
                    }
                }
            }
            match tokio {
                Some(rt) => rt.block_on(object.renew()),
                None => Renewed::Gone,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    use super::*;

    /// Counts its renewals and asks again `again` ns later, `times` times.
    struct Probe {
        renewals: AtomicUsize,
        times: usize,
        again: u64,
        done: Mutex<mpsc::Sender<usize>>,
    }

    impl Renewable for Probe {
        fn renew(&self) -> Renewed {
            let n = self.renewals.fetch_add(1, Ordering::SeqCst) + 1;
            let _ = self.done.lock().unwrap().send(n);
            if n < self.times {
                Renewed::Next(Some(now_ns() + self.again))
            } else {
                Renewed::Next(None)
            }
        }
    }

    /// The same, renewed as an async object: inside a tokio runtime.
    struct AsyncProbe(Probe);

    impl AsyncRenewable for AsyncProbe {
        fn renew(&self) -> Pin<Box<dyn Future<Output = Renewed> + Send + '_>> {
            Box::pin(async {
                tokio::task::yield_now().await;
                assert!(tokio::runtime::Handle::try_current().is_ok());
                Renewable::renew(&self.0)
            })
        }
    }

    fn probe(tx: &mpsc::Sender<usize>) -> Probe {
        Probe {
            renewals: AtomicUsize::new(0),
            times: 3,
            again: 1_000_000,
            done: Mutex::new(tx.clone()),
        }
    }

    #[test]
    fn one_thread_drives_blocking_and_async_objects_each_at_its_deadline() {
        let renewer = Renewer::new();
        let (tx, rx) = mpsc::channel();
        let blocking: Vec<Arc<Probe>> = (0..25).map(|_| Arc::new(probe(&tx))).collect();
        let asynchronous: Vec<Arc<AsyncProbe>> =
            (0..25).map(|_| Arc::new(AsyncProbe(probe(&tx)))).collect();
        for probe in &blocking {
            let id = renewer.add(Object::Blocking(
                Arc::downgrade(probe) as Weak<dyn Renewable>
            ));
            renewer.schedule(id.unwrap(), Some(now_ns()));
        }
        for probe in &asynchronous {
            let weak = Arc::downgrade(probe) as Weak<dyn AsyncRenewable>;
            let id = renewer.add(Object::Async(weak));
            renewer.schedule(id.unwrap(), Some(now_ns()));
        }
        // 50 objects × 3 renewals each, then nothing more is due.
        for _ in 0..150 {
            rx.recv_timeout(Duration::from_secs(10)).expect("a renewal");
        }
        assert!(
            rx.recv_timeout(Duration::from_millis(50)).is_err(),
            "no renewal past the last deadline"
        );
        let counts = blocking.iter().map(|p| &p.renewals);
        for count in counts.chain(asynchronous.iter().map(|p| &p.0.renewals)) {
            assert_eq!(count.load(Ordering::SeqCst), 3);
        }
        renewer.stop();
    }

    #[test]
    fn a_dropped_object_is_forgotten_and_a_stale_deadline_skipped() {
        let renewer = Renewer::new();
        let (tx, rx) = mpsc::channel();
        let probe = Arc::new(Probe {
            renewals: AtomicUsize::new(0),
            times: 1,
            again: 0,
            done: Mutex::new(tx),
        });
        let weak: Weak<dyn Renewable> = Arc::downgrade(&probe) as Weak<dyn Renewable>;
        let id = renewer.add(Object::Blocking(weak)).unwrap();
        // Planned far away, then moved sooner: only the sooner one runs.
        renewer.schedule(id, Some(now_ns() + 3_600_000_000_000));
        renewer.schedule(id, Some(now_ns()));
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(1));
        drop(probe);
        renewer.schedule(id, Some(now_ns()));
        let started = std::time::Instant::now();
        while renewer.plan().schedule.len() > 0 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "never forgotten"
            );
            std::thread::yield_now();
        }
        assert!(rx.try_recv().is_err(), "a dropped object is not driven");
        renewer.stop();
    }
}
