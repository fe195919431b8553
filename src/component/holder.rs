//! The WASI shell around the core's sans-IO [`Session`]: one per `lock` or
//! `semaphore` resource. It carries out the session's actions on a
//! [`Conn`], feeds it what was read and the clock, and keeps the lease
//! renewed as reactor background work. A blocking call loops "do what the
//! session asks; wait (under the reactor) for its I/O or its deadline"
//! until the command's outcome; [`Holder::drive`] does one non-blocking
//! pass and never waits.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use wasip2::io::poll::Pollable;

use super::clock;
use super::reactor::{self, Background};
use super::transport::{Conn, Dial};
use crate::counters::Counters;
use crate::protocol::Error;
use crate::session::{Action, LeaseLost, Outcome, Session};
use crate::settings::Settings;
use crate::time::Instant;

/// Losses kept for the driver to report; older ones are dropped first.
const MAX_UNREPORTED_LOSSES: usize = 1024;

/// A connection that answered less than this long ago is not checked for a
/// close before the next command: a close in that moment is no different
/// from one during the command, and the check costs a read system call per
/// request.
const IDLE_CHECK_AFTER: Duration = Duration::from_millis(1);

thread_local! {
    static LOSSES: RefCell<VecDeque<LeaseLost>> = const { RefCell::new(VecDeque::new()) };
    /// The instance's totals: every holder adds what its session counted.
    static TOTALS: std::cell::Cell<Counters> = const { std::cell::Cell::new(Counters::ZERO) };
}

/// The totals of every holder of the instance, dropped ones included.
pub fn counters() -> Counters {
    TOTALS.get()
}

/// The losses found since the last call, from every holder of the instance.
pub fn take_losses() -> Vec<LeaseLost> {
    LOSSES.with_borrow_mut(|l| l.drain(..).collect())
}

/// When the driver must run next; `None` when nothing is held.
pub fn next_deadline() -> Option<Instant> {
    if LOSSES.with_borrow(|l| !l.is_empty()) {
        return Some(Instant::default());
    }
    reactor::next_deadline()
}

/// A pollable ready at [`next_deadline`]; never ready when nothing is held.
pub fn next_wakeup() -> Pollable {
    clock::timer(next_deadline().unwrap_or(clock::NEVER))
}

/// One lock or semaphore: its session and its connection.
pub struct Holder {
    session: Session,
    dial: Dial,
    conn: Option<Conn>,
    /// When the last reply line arrived (see [`IDLE_CHECK_AFTER_NS`]).
    last_reply: Option<Instant>,
    /// What of the session's counters is already in [`TOTALS`].
    counted: Counters,
}

impl Holder {
    /// A new idle holder, registered with the reactor for renewals.
    pub fn open(settings: Settings) -> Result<Rc<RefCell<Self>>, Error> {
        let dial = Dial::new(settings.server.clone(), settings.connect.clone())?;
        let holder = Rc::new(RefCell::new(Holder {
            session: Session::new(settings, clock::jitter()),
            dial,
            conn: None,
            last_reply: None,
            counted: Counters::ZERO,
        }));
        reactor::register(&holder);
        Ok(holder)
    }

    /// The settings it was opened with.
    pub fn settings(&self) -> &Settings {
        self.session.settings()
    }

    /// Runs one command to its outcome, blocking under the reactor.
    pub fn run(
        &mut self,
        start: impl FnOnce(&mut Session, Instant) -> Result<(), Error>,
    ) -> Result<Outcome, Error> {
        let outcome = self.run_to_outcome(start);
        self.collect_losses();
        outcome
    }

    fn run_to_outcome(
        &mut self,
        start: impl FnOnce(&mut Session, Instant) -> Result<(), Error>,
    ) -> Result<Outcome, Error> {
        // An idle connection the server closed meanwhile (a restart, its
        // --read-timeout) shows here as EOF, so the command opens a fresh
        // one instead of sending into a dead socket.
        let now = clock::now();
        if self
            .last_reply
            .is_none_or(|at| now.saturating_duration_since(at) >= IDLE_CHECK_AFTER)
        {
            self.pass(now, None);
        }
        start(&mut self.session, clock::now())?;
        loop {
            self.carry_out(true);
            if let Some(outcome) = self.session.poll_outcome() {
                return outcome;
            }
            let Some(deadline) = self.session.poll_timeout() else {
                // Cannot happen: an unfinished command is on the wire (with
                // a deadline) or waits for a connect, done above.
                return Err(Error::Connection("the command made no progress".into()));
            };
            {
                let mut own = Vec::new();
                self.wakeups(&mut own);
                let own: Vec<&Pollable> = own.iter().collect();
                reactor::wait(&own, deadline);
            }
            self.pass(clock::now(), Some(deadline));
        }
    }

    /// One non-blocking pass: write what is queued, read what arrived,
    /// handle time; then do what the session asks, except connect.
    /// With `explain_until`, a plain connection closed before its first
    /// reply is probed for TLS (blocking, up to then) to say why.
    fn pass(&mut self, now: Instant, explain_until: Option<Instant>) {
        if let Some(conn) = self.conn.as_mut() {
            // One read per pass: a second would come back empty (a host
            // call per reply); lines that came together are all handled.
            let io = conn.flush().map(drop).and_then(|()| {
                let mut lines = Vec::new();
                let mut next = conn.poll_line()?;
                while let Some(line) = next {
                    lines.push(line);
                    next = conn.buffered_line()?;
                }
                Ok(lines)
            });
            match io {
                Ok(lines) => {
                    if !lines.is_empty() {
                        self.last_reply = Some(now);
                    }
                    for line in lines {
                        self.session.handle_line(now, &line);
                    }
                }
                Err(e) => {
                    let e = match explain_until {
                        Some(deadline) => conn.explain_early_close(e, deadline),
                        None => e,
                    };
                    self.session.handle_disconnected(now, e);
                }
            }
        }
        self.session.handle_timeout(now);
        self.carry_out(false);
    }

    /// Does what the session asks. Connecting blocks, so only a caller's
    /// command (`may_connect`) does it; the driver never needs to, since
    /// renewals go on the connection that holds the lease.
    fn carry_out(&mut self, may_connect: bool) {
        while let Some(action) = self.session.poll_action() {
            match action {
                Action::Connect if may_connect => {
                    self.conn = None;
                    match Conn::connect(&self.dial) {
                        Ok(conn) => {
                            self.conn = Some(conn);
                            self.session.handle_connected(clock::now());
                        }
                        Err(e) => self.session.handle_connect_failed(e),
                    }
                }
                Action::Connect => self.session.handle_connect_failed(Error::Connection(
                    "no connection is opened outside a call".into(),
                )),
                Action::Send(frame) => {
                    let sent = match self.conn.as_mut() {
                        Some(conn) => conn.queue(&frame).and_then(|()| conn.flush().map(drop)),
                        None => Err(Error::Connection("no connection".into())),
                    };
                    if let Err(e) = sent {
                        self.session.handle_disconnected(clock::now(), e);
                    }
                }
                Action::Disconnect => self.conn = None,
            }
        }
    }

    /// Hands the losses to the driver, and what was counted to the totals.
    fn collect_losses(&mut self) {
        let counted = self.session.counters();
        TOTALS.set(TOTALS.get() + counted.since(self.counted));
        self.counted = counted;
        while let Some(lost) = self.session.poll_lost() {
            LOSSES.with_borrow_mut(|l| {
                if l.len() == MAX_UNREPORTED_LOSSES {
                    l.pop_front();
                }
                l.push_back(lost);
            });
        }
    }

    /// Drops the connection without a release.
    pub fn close(&mut self) {
        self.session.close();
        self.carry_out(false);
    }

    /// The session, brought up to date first (a lease past its end is
    /// lost by now, a renewal reply that arrived is taken).
    pub fn current(&mut self) -> &Session {
        self.drive(clock::now());
        &self.session
    }
}

impl Background for Holder {
    fn wakeups(&self, out: &mut Vec<Pollable>) {
        let Some(conn) = self.conn.as_ref() else {
            return;
        };
        if self.session.wants_reads() {
            out.extend(conn.readable());
        }
        out.extend(conn.writable());
    }

    fn deadline(&self) -> Option<Instant> {
        self.session.poll_timeout()
    }

    fn awaits_io(&self) -> bool {
        self.session.awaits_reply() || self.conn.as_ref().is_some_and(Conn::has_queued)
    }

    fn drive(&mut self, now: Instant) {
        self.pass(now, None);
        self.collect_losses();
    }
}

impl Drop for Holder {
    /// A held grant is released on drop: a release is never skipped on a
    /// path that could send it. Errors have nowhere to go; the connection
    /// closes right after, which makes the server release anyway.
    fn drop(&mut self) {
        if self.session.is_held() {
            let _ = self.run(|s, now| s.release(now));
        }
    }
}
