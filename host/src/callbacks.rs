//! The thread that runs `on_lost` callbacks, in the order of the losses:
//! off the driver, so that a callback may call its own object (whose call
//! the driver answers) without waiting on itself.

use std::cell::Cell;
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::builder::LostCallback;
use crate::LeaseLost;

thread_local! {
    /// Set on the callbacks' thread.
    static ON_CALLBACK_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Whether this is the thread that runs `on_lost` callbacks: an object
/// dropped in a callback must not wait for the callbacks to finish.
pub(crate) fn on_callback_thread() -> bool {
    ON_CALLBACK_THREAD.with(Cell::get)
}

/// What the callbacks' thread does, in order.
enum Job {
    /// Calls `on_lost`.
    Lost(LostCallback, LeaseLost),
    /// Answers: every callback before it has returned.
    Then(oneshot::Sender<()>),
}

/// A driver's callbacks: the thread is made with the first loss that has
/// a callback, so a runtime that never loses a lease never starts it.
#[derive(Default)]
pub(crate) struct Callbacks {
    thread: Option<mpsc::Sender<Job>>,
}

impl Callbacks {
    /// Calls `callback` with `lost` on the callbacks' thread, after every
    /// callback asked before it.
    pub(crate) fn lost(&mut self, callback: LostCallback, lost: LeaseLost) {
        if self.thread.is_none() {
            self.thread = spawn();
        }
        if let Some(thread) = &self.thread {
            let _ = thread.send(Job::Lost(callback, lost));
        }
    }

    /// Answers `done` once every callback asked so far has returned: a
    /// dropped object's drop returns after its last `on_lost`.
    pub(crate) fn then(&self, done: oneshot::Sender<()>) {
        let done = match &self.thread {
            Some(thread) => match thread.send(Job::Then(done)) {
                Ok(()) => return,
                Err(mpsc::SendError(Job::Then(done))) => done,
                Err(_) => return,
            },
            None => done,
        };
        let _ = done.send(());
    }
}

/// Starts the thread; `None` (logged) when the system has none to give.
fn spawn() -> Option<mpsc::Sender<Job>> {
    let (send, jobs) = mpsc::channel::<Job>();
    let spawned = std::thread::Builder::new()
        .name("dflockd-on-lost".into())
        .spawn(move || {
            ON_CALLBACK_THREAD.with(|on| on.set(true));
            for job in jobs {
                match job {
                    Job::Lost(callback, lost) => callback(&lost),
                    Job::Then(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
    match spawned {
        Ok(_) => Some(send),
        Err(e) => {
            tracing::error!(error = %e, "no thread for on_lost callbacks");
            None
        }
    }
}
