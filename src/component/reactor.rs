//! The reactor: every blocking wait in the instance goes through [`wait`],
//! which also keeps the instance's background work going (the renewals of
//! every held lease). It knows that work only as [`Background`], so that
//! nothing it serves needs to import it back.

use std::cell::RefCell;
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
    /// Does what is due, without blocking.
    fn drive(&mut self, now: Instant);
}

type Work = Weak<RefCell<dyn Background>>;

thread_local! {
    static WORK: RefCell<Vec<Work>> = const { RefCell::new(Vec::new()) };
}

/// Registers background work for as long as `work` lives.
pub fn register<B: Background + 'static>(work: &Rc<RefCell<B>>) {
    let weak: Weak<RefCell<B>> = Rc::downgrade(work);
    let weak: Work = weak;
    WORK.with_borrow_mut(|all| {
        all.retain(|w| w.strong_count() > 0);
        all.push(weak);
    });
}

/// Runs `f` on every piece of work not in use by the current call.
fn for_each_free(mut f: impl FnMut(&mut dyn Background)) {
    let all: Vec<_> = WORK.with_borrow(|all| all.iter().filter_map(Weak::upgrade).collect());
    for work in all {
        if let Ok(mut work) = work.try_borrow_mut() {
            f(&mut *work);
        }
    }
}

/// The sooner of two deadlines, either of which may be absent.
pub fn sooner(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    [a, b].into_iter().flatten().min()
}

/// Drives all free background work, without blocking.
pub fn drive_all(now: Instant) {
    for_each_free(|w| w.drive(now));
}

/// When the background work must next be driven; `None` when it has none.
pub fn next_deadline() -> Option<Instant> {
    let mut earliest: Option<Instant> = None;
    let mut io = false;
    for_each_free(|w| {
        io |= w.awaits_io();
        if let Some(at) = w.deadline() {
            earliest = sooner(earliest, Some(at));
        }
    });
    if io {
        let tick = clock::after_ms(IO_TICK_MS);
        earliest = sooner(earliest, Some(tick));
    }
    earliest
}

/// The pollables of all the work, and a timer at its earliest deadline:
/// what a host waits on outside any call. Empty when there is no work.
pub fn pollables() -> Vec<Pollable> {
    let mut all = Vec::new();
    let mut earliest: Option<Instant> = None;
    for_each_free(|w| {
        w.wakeups(&mut all);
        if let Some(at) = w.deadline() {
            earliest = sooner(earliest, Some(at));
        }
    });
    if let Some(at) = earliest {
        all.push(clock::timer(at));
    }
    all
}

/// Blocks until one of `own` is ready, `deadline` passes, or background
/// work needs attention; then drives the background work. Callers loop.
pub fn wait(own: &[&Pollable], deadline: Instant) {
    {
        let mut others = Vec::new();
        let mut soonest = deadline.min(clock::after_ms(WAIT_SLICE_MS));
        for_each_free(|w| {
            w.wakeups(&mut others);
            if let Some(at) = w.deadline() {
                soonest = soonest.min(at);
            }
        });
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
