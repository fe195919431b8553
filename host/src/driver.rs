//! One renewal thread per [`Runtime`](crate::Runtime) for all of its
//! blocking objects, instead of one per object.
//!
//! The component renews only while it runs. Between calls this thread
//! keeps a heap of each object's next deadline (`next-deadline`, on the
//! host's clock by construction: see `clock`), sleeps until the
//! earliest, and drives that object. An object busy in a call is skipped:
//! a blocking call renews its own instance's leases, and every call
//! reschedules its object when it ends. The thread knows the objects only
//! as [`Renewable`], so that it imports none of them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

use crate::clock::now_ns;
use crate::Error;

/// What one renewal pass over an object found.
pub(crate) enum Renewed {
    /// A call holds the object; it reschedules it when it ends.
    Busy,
    /// Driven; this is its next deadline (`None`: nothing to renew).
    Next(Option<u64>),
    /// The instance trapped: it is no longer renewed.
    Gone,
}

/// An object whose leases the thread keeps.
pub(crate) trait Renewable: Send + Sync {
    /// Drives the object's instance once, without waiting for a call in
    /// progress; reports its losses itself.
    fn renew(&self) -> Renewed;
}

/// The schedule, shared by the objects (which reschedule after each call)
/// and the thread.
pub(crate) struct Renewer {
    plan: Mutex<Plan>,
    wake: Condvar,
}

#[derive(Default)]
struct Plan {
    /// (deadline, id); an entry whose deadline is no longer its object's is stale.
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    objects: HashMap<u64, Slot>,
    next_id: u64,
    started: bool,
    stopping: bool,
}

struct Slot {
    object: Weak<dyn Renewable>,
    due: Option<u64>,
}

impl Renewer {
    /// An empty schedule; the thread starts with the first object.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Renewer {
            plan: Mutex::new(Plan::default()),
            wake: Condvar::new(),
        })
    }

    fn plan(&self) -> MutexGuard<'_, Plan> {
        // Nothing panics while holding it; a poisoned plan is still whole.
        self.plan.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers an object (with nothing due yet); returns its id.
    pub(crate) fn add(self: &Arc<Self>, object: Weak<dyn Renewable>) -> Result<u64, Error> {
        let mut plan = self.plan();
        if !plan.started {
            let renewer = self.clone();
            std::thread::Builder::new()
                .name("dflockd-renew".into())
                .spawn(move || run(&renewer))
                .map_err(|e| Error::Runtime(format!("starting the renewal thread: {e}")))?;
            plan.started = true;
        }
        plan.next_id += 1;
        let id = plan.next_id;
        plan.objects.insert(id, Slot { object, due: None });
        Ok(id)
    }

    /// Sets the object's next deadline; wakes the thread when it comes
    /// before everything else planned.
    pub(crate) fn schedule(&self, id: u64, due: Option<u64>) {
        let mut plan = self.plan();
        let Some(slot) = plan.objects.get_mut(&id) else {
            return;
        };
        if slot.due == due {
            return;
        }
        slot.due = due;
        let Some(due) = due else { return };
        let sooner = plan
            .heap
            .peek()
            .is_none_or(|Reverse((first, _))| due < *first);
        plan.heap.push(Reverse((due, id)));
        if sooner {
            self.wake.notify_one();
        }
    }

    /// Forgets an object.
    pub(crate) fn remove(&self, id: u64) {
        self.plan().objects.remove(&id);
    }

    /// Ends the thread (when the runtime goes).
    pub(crate) fn stop(&self) {
        self.plan().stopping = true;
        self.wake.notify_one();
    }
}

fn run(renewer: &Renewer) {
    let mut plan = renewer.plan();
    loop {
        if plan.stopping {
            return;
        }
        let Some(&Reverse((due, id))) = plan.heap.peek() else {
            plan = renewer.wake.wait(plan).unwrap_or_else(|p| p.into_inner());
            continue;
        };
        let live = plan.objects.get(&id).is_some_and(|s| s.due == Some(due));
        if !live {
            plan.heap.pop();
            continue;
        }
        let now = now_ns();
        if due > now {
            let wait = Duration::from_nanos(due - now);
            plan = renewer
                .wake
                .wait_timeout(plan, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            continue;
        }
        plan.heap.pop();
        let Some(slot) = plan.objects.get_mut(&id) else {
            continue;
        };
        slot.due = None;
        let object = slot.object.clone();
        // The object's calls reschedule it meanwhile: never hold the plan
        // while driving (or while its loss callbacks run).
        drop(plan);
        let renewed = object.upgrade().map_or(Renewed::Gone, |o| o.renew());
        plan = renewer.plan();
        match renewed {
            Renewed::Gone => {
                plan.objects.remove(&id);
            }
            Renewed::Busy => {}
            Renewed::Next(next) => {
                // A call that ended meanwhile has set a fresher deadline.
                let fresh = plan.objects.get(&id).is_some_and(|s| s.due.is_some());
                if !fresh {
                    drop(plan);
                    renewer.schedule(id, next);
                    plan = renewer.plan();
                }
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

    #[test]
    fn one_thread_drives_many_objects_each_at_its_deadline() {
        let renewer = Renewer::new();
        let (tx, rx) = mpsc::channel();
        let probes: Vec<Arc<Probe>> = (0..50)
            .map(|_| {
                Arc::new(Probe {
                    renewals: AtomicUsize::new(0),
                    times: 3,
                    again: 1_000_000,
                    done: Mutex::new(tx.clone()),
                })
            })
            .collect();
        for probe in &probes {
            let weak: Weak<dyn Renewable> = Arc::downgrade(probe) as Weak<dyn Renewable>;
            let id = renewer.add(weak).unwrap();
            renewer.schedule(id, Some(now_ns()));
        }
        // 50 objects × 3 renewals each, then nothing more is due.
        for _ in 0..150 {
            rx.recv_timeout(Duration::from_secs(10)).expect("a renewal");
        }
        assert!(
            rx.recv_timeout(Duration::from_millis(50)).is_err(),
            "no renewal past the last deadline"
        );
        for probe in &probes {
            assert_eq!(probe.renewals.load(Ordering::SeqCst), 3);
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
        let id = renewer.add(weak).unwrap();
        // Planned far away, then moved sooner: only the sooner one runs.
        renewer.schedule(id, Some(now_ns() + 3_600_000_000_000));
        renewer.schedule(id, Some(now_ns()));
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(1));
        drop(probe);
        renewer.schedule(id, Some(now_ns()));
        let started = std::time::Instant::now();
        while !renewer.plan().objects.is_empty() {
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
