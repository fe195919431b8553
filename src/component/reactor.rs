//! The reactor: every blocking wait in the instance goes through [`wait`],
//! which also keeps the instance's background work going (the renewals of
//! every held lease). It knows that work only as [`Background`], so that
//! nothing it serves needs to import it back.
//!
//! A pass visits only the work that is active (waits for I/O or runs a
//! started command) and the work whose deadline came (a heap), never the
//! idle rest: an instance holding 10,000 idle leases costs a pass what its
//! busy few cost. So every change to a piece of work outside a pass must
//! be reported ([`touch`]: `resources` does, after each call).

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::{Rc, Weak};

use wasip2::io::poll::{poll, Pollable};

use super::clock;
use crate::time::Instant;

/// While background work waits for I/O, `next-deadline` ticks this often
/// (ms): one pollable cannot wait for "reply or deadline" at once.
const IO_TICK_MS: u64 = 5;

/// The longest one wait lasts before its caller looks again (ms). Every
/// wait then sets its timer later than the one before it, and never
/// sooner: wasmtime-wasi's tokio wakes its own driver (an eventfd write
/// and one more `epoll_wait`) for a timer sooner than the last, which the
/// reply deadlines of an acquire (the server's wait plus 10 s) and then a
/// release (10 s) did on every operation.
const WAIT_SLICE_MS: u64 = 1_000;

/// Work the instance must keep doing between and during calls.
pub trait Background {
    /// Pollables for the I/O it waits on.
    fn wakeups(&self, out: &mut Vec<Pollable>);
    /// When it must be driven next, as a monotonic instant.
    fn deadline(&self) -> Option<Instant>;
    /// Whether it waits for I/O (a reply, or room to write).
    fn awaits_io(&self) -> bool;
    /// Whether it must be driven at every pass, deadline or not: it waits
    /// for I/O or runs a started command.
    fn active(&self) -> bool;
    /// Does what is due, without blocking.
    fn drive(&mut self, now: Instant);
}

type Work = Weak<RefCell<dyn Background>>;

/// Every piece of work in a slot of its own, the deadlines in a heap, the
/// active work in a list. (Plain vectors: a map would add its code to the
/// component, whose size is a goal.)
#[derive(Default)]
struct Reactor {
    entries: Vec<Option<Entry>>,
    /// Empty slots, for the next registration.
    free: Vec<usize>,
    /// (deadline, slot); stale once the entry's `due` is no longer it.
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Slots of active work, and of work that stopped being active since
    /// the list was last compacted ([`Reactor::active`]).
    listed: Vec<usize>,
    /// How many entries wait for I/O (for [`next_deadline`]'s tick).
    io: usize,
}

struct Entry {
    work: Work,
    /// Its deadline in the heap, if any.
    due: Option<Instant>,
    io: bool,
    active: bool,
    /// In `listed`.
    listed: bool,
}

thread_local! {
    static REACTOR: RefCell<Reactor> = RefCell::new(Reactor::default());
}

/// Registers background work for as long as `work` lives; returns its
/// slot, which [`touch`] and [`forget`] name.
pub fn register<B: Background + 'static>(work: &Rc<RefCell<B>>) -> usize {
    let weak: Weak<RefCell<B>> = Rc::downgrade(work);
    let entry = Entry {
        work: weak,
        due: None,
        io: false,
        active: false,
        listed: false,
    };
    let slot = REACTOR.with_borrow_mut(|r| match r.free.pop() {
        Some(slot) => {
            r.entries[slot] = Some(entry);
            slot
        }
        None => {
            r.entries.push(Some(entry));
            r.entries.len() - 1
        }
    });
    touch(work, slot);
    slot
}

/// Forgets the work in `slot` (from its `Drop`).
pub fn forget(slot: usize) {
    REACTOR.with_borrow_mut(|r| r.remove(slot));
}

/// Re-reads the deadline and activity of `work` (in `slot`) after a call
/// changed them.
pub fn touch<B: Background + 'static>(work: &Rc<RefCell<B>>, slot: usize) {
    if let Ok(value) = work.try_borrow() {
        let seen = Seen::of(&*value);
        REACTOR.with_borrow_mut(|r| r.update(slot, seen));
    }
}

/// What the reactor keeps of a piece of work.
#[derive(Clone, Copy)]
struct Seen {
    due: Option<Instant>,
    active: bool,
    io: bool,
}

impl Seen {
    fn of(work: &(impl Background + ?Sized)) -> Seen {
        Seen {
            due: work.deadline(),
            active: work.active(),
            io: work.awaits_io(),
        }
    }
}

impl Reactor {
    fn entry(&mut self, slot: usize) -> Option<&mut Entry> {
        self.entries.get_mut(slot)?.as_mut()
    }

    fn remove(&mut self, slot: usize) {
        if let Some(entry) = self.entries.get_mut(slot).and_then(Option::take) {
            self.io = self.io.saturating_sub(usize::from(entry.io));
            // A slot still in `listed` is freed when `active` compacts the
            // list past it: reused before that, it would be listed twice
            // (and its work driven and polled twice per pass).
            if !entry.listed {
                self.free.push(slot);
            }
        }
    }

    fn update(&mut self, slot: usize, seen: Seen) {
        let Some(entry) = self.entry(slot) else {
            return;
        };
        let (was_io, was_due) = (entry.io, entry.due);
        entry.io = seen.io;
        entry.due = seen.due;
        entry.active = seen.active;
        let list = seen.active && !entry.listed;
        entry.listed |= seen.active;
        if list {
            self.listed.push(slot);
        }
        if was_io != seen.io {
            if seen.io {
                self.io += 1;
            } else {
                self.io = self.io.saturating_sub(1);
            }
        }
        if let (true, Some(at)) = (was_due != seen.due, seen.due) {
            self.heap.push(Reverse((at, slot)));
        }
    }

    /// The active slots (the list compacted on the way).
    fn active(&mut self) -> Vec<usize> {
        let (entries, free) = (&mut self.entries, &mut self.free);
        self.listed.retain(
            |&slot| match entries.get_mut(slot).and_then(Option::as_mut) {
                Some(entry) if entry.active => true,
                Some(entry) => {
                    entry.listed = false;
                    false
                }
                None => {
                    // Removed while listed (see `remove`): free at last.
                    free.push(slot);
                    false
                }
            },
        );
        self.listed.clone()
    }

    /// The earliest live deadline (stale heap entries dropped on the way).
    fn earliest(&mut self) -> Option<Instant> {
        while let Some(&Reverse((at, slot))) = self.heap.peek() {
            if self.entry(slot).is_some_and(|e| e.due == Some(at)) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// The slots to drive at `now`: the active ones and those due (taken
    /// off the heap; their entries forget the deadline, so that the next
    /// [`update`](Self::update) puts it back, whatever it is then).
    fn due_or_active(&mut self, now: Instant) -> Vec<usize> {
        let mut slots = self.active();
        while self.earliest().is_some_and(|at| at <= now) {
            let Some(Reverse((_, slot))) = self.heap.pop() else {
                break;
            };
            if let Some(entry) = self.entry(slot) {
                entry.due = None;
                if !entry.active {
                    slots.push(slot);
                }
            }
        }
        slots
    }

    fn work(&self, slot: usize) -> Option<Rc<RefCell<dyn Background>>> {
        self.entries.get(slot)?.as_ref()?.work.upgrade()
    }
}

/// Runs `f` on the work of `slots` that is alive and not in use by the
/// current call, then re-reads each; forgets the dead.
fn visit(slots: Vec<usize>, mut f: impl FnMut(&mut dyn Background)) {
    for slot in slots {
        let Some(work) = REACTOR.with_borrow(|r| r.work(slot)) else {
            REACTOR.with_borrow_mut(|r| r.remove(slot));
            continue;
        };
        let Ok(mut value) = work.try_borrow_mut() else {
            // In use by the current call, which drives it itself and
            // touches it when it ends.
            continue;
        };
        f(&mut *value);
        let seen = Seen::of(&*value);
        drop(value);
        REACTOR.with_borrow_mut(|r| r.update(slot, seen));
    }
}

/// The sooner of two deadlines, either of which may be absent.
pub fn sooner(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    [a, b].into_iter().flatten().min()
}

/// Drives the free background work that is active or due, without blocking.
pub fn drive_all(now: Instant) {
    let slots = REACTOR.with_borrow_mut(|r| r.due_or_active(now));
    visit(slots, |w| w.drive(now));
}

/// When the background work must next be driven; `None` when it has none.
pub fn next_deadline() -> Option<Instant> {
    REACTOR.with_borrow_mut(|r| {
        let mut earliest = r.earliest();
        if r.io > 0 {
            earliest = sooner(earliest, Some(clock::after_ms(IO_TICK_MS)));
        }
        earliest
    })
}

/// The pollables of the active work, and a timer at the earliest deadline:
/// what a host waits on outside any call. Empty when there is no work.
pub fn pollables() -> Vec<Pollable> {
    let mut all = Vec::new();
    let active = REACTOR.with_borrow_mut(Reactor::active);
    wakeups(active, &mut all);
    if let Some(at) = REACTOR.with_borrow_mut(Reactor::earliest) {
        all.push(clock::timer(at));
    }
    all
}

/// The wakeups of the free work of `slots`.
fn wakeups(slots: Vec<usize>, out: &mut Vec<Pollable>) {
    for slot in slots {
        let Some(work) = REACTOR.with_borrow(|r| r.work(slot)) else {
            continue;
        };
        if let Ok(value) = work.try_borrow() {
            value.wakeups(out);
        };
    }
}

/// Blocks until one of `own` is ready, `deadline` passes, or background
/// work needs attention; then drives the background work. Callers loop.
pub fn wait(own: &[&Pollable], deadline: Instant) {
    {
        let mut others = Vec::new();
        let active = REACTOR.with_borrow_mut(Reactor::active);
        wakeups(active, &mut others);
        let mut soonest = deadline.min(clock::after_ms(WAIT_SLICE_MS));
        if let Some(at) = REACTOR.with_borrow_mut(Reactor::earliest) {
            soonest = soonest.min(at);
        }
        let timer = clock::timer(soonest);
        let mut all: Vec<&Pollable> = Vec::with_capacity(own.len() + others.len() + 1);
        all.extend_from_slice(own);
        all.push(&timer);
        all.extend(others.iter());
        poll(&all);
        // The pollables drop here, before any work may close their sockets.
    }
    drive_all(clock::now());
}

/// A state machine that goes as far as it can without waiting and says
/// what it waits on: opening a connection, the TLS probe.
pub trait Steps {
    /// What it comes to.
    type Output;
    /// Goes as far as it can without waiting: `Some` once over.
    fn step(&mut self, now: Instant) -> Option<Self::Output>;
    /// The pollables of what it waits on.
    fn wakeups(&self, out: &mut Vec<Pollable>);
    /// When it is over at the latest.
    fn deadline(&self) -> Instant;
}

/// [`wait`] on the pollables that `wakeups` gives.
pub fn wait_for(wakeups: impl FnOnce(&mut Vec<Pollable>), deadline: Instant) {
    let mut own = Vec::new();
    wakeups(&mut own);
    let own: Vec<&Pollable> = own.iter().collect();
    wait(&own, deadline);
}
