//! The WASI shell around the core's sans-IO [`Session`]: one per `lock` or
//! `semaphore` resource. It carries out the session's actions on a
//! [`Conn`] (opening it through [`Connecting`], without waiting), feeds it
//! what was read and the clock, and keeps the lease renewed as reactor
//! background work. A command started with a ticket ([`KeyClient::start`])
//! returns at once; its outcome becomes an [`Event`] when a later pass
//! finds it. A blocking call ([`KeyClient::run`]) is the loop over the same
//! passes: "start; wait (under the reactor) for its I/O or its deadline;
//! pass" until the command's outcome.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use wasip2::io::poll::Pollable;

use super::clock;
use super::dial::{Connecting, Dial};
use super::events::{self, Event};
use super::probe::Probe;
use super::reactor::{self, Background, Steps};
use super::transport::Conn;
use crate::counters::Counters;
use crate::protocol::Error;
use crate::session::{Action, Outcome, Session};
use crate::settings::Settings;
use crate::time::Instant;

/// A connection that answered less than this long ago is not checked for a
/// close before the next command: a close in that moment is no different
/// from one during the command, and the check costs a read system call per
/// request.
const IDLE_CHECK_AFTER: Duration = Duration::from_millis(1);

thread_local! {
    /// The instance's totals: every key client adds what its session counted.
    static TOTALS: std::cell::Cell<Counters> = const { std::cell::Cell::new(Counters::ZERO) };
}

/// The totals of every key client of the instance, dropped ones included.
pub fn counters() -> Counters {
    TOTALS.get()
}

/// The client of one key: a lock's or semaphore's session and its
/// connection (named apart from the host's `Holder`, the user's object).
pub struct KeyClient {
    session: Session,
    dial: Dial,
    conn: Option<Conn>,
    /// The connection being opened, while the session waits for it.
    connecting: Option<Connecting>,
    /// Why the connection closed before its first reply, being found out
    /// (see `probe`) while the session still waits for that reply.
    probing: Option<Probe>,
    /// The ticket of the command started without waiting, until it ends.
    ticket: Option<u64>,
    /// When the last reply line arrived (see [`IDLE_CHECK_AFTER`]).
    last_reply: Option<Instant>,
    /// What of the session's counters is already in [`TOTALS`].
    counted: Counters,
    /// Its slot with the reactor.
    slot: usize,
}

impl KeyClient {
    /// A new idle key client, registered with the reactor for renewals.
    pub fn open(settings: Settings) -> Result<Rc<RefCell<Self>>, Error> {
        let client = Rc::new(RefCell::new(Self::member(settings)?));
        let slot = reactor::register(&client);
        client.borrow_mut().slot = slot;
        Ok(client)
    }

    /// A new idle key client that is not registered with the reactor: a
    /// lock set's member, which the set drives (and renews) itself.
    pub fn member(settings: Settings) -> Result<Self, Error> {
        let dial = Dial::new(settings.server.clone(), settings.connect.clone())?;
        Ok(KeyClient {
            session: Session::new(settings, clock::jitter()),
            dial,
            conn: None,
            connecting: None,
            probing: None,
            ticket: None,
            last_reply: None,
            counted: Counters::ZERO,
            slot: usize::MAX,
        })
    }

    /// Starts one command with no ticket: its outcome stays for
    /// [`KeyClient::take_outcome`] (a lock set's member).
    pub fn begin_quiet(
        &mut self,
        command: impl FnOnce(&mut Session, Instant) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.begin(command)?;
        self.collect();
        Ok(())
    }

    /// The grant held, as last seen (no I/O).
    pub fn grant(&self) -> Option<&crate::protocol::Grant> {
        self.session.grant()
    }

    /// Whether a grant is held, as last seen (no I/O).
    pub fn is_held(&self) -> bool {
        self.session.is_held()
    }

    /// The outcome of the command started by [`KeyClient::begin_quiet`], once there.
    pub fn take_outcome(&mut self) -> Option<Result<Outcome, Error>> {
        self.session.poll_outcome()
    }

    /// Its slot with the reactor (see `reactor::touch`).
    pub fn slot(&self) -> usize {
        self.slot
    }

    /// The settings it was opened with.
    pub fn settings(&self) -> &Settings {
        self.session.settings()
    }

    /// Starts one command and returns at once: its outcome becomes an
    /// [`Event::Done`] with `ticket` when a pass finds it (perhaps this one).
    pub fn start(
        &mut self,
        ticket: u64,
        command: impl FnOnce(&mut Session, Instant) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.begin(command)?;
        self.ticket = Some(ticket);
        self.collect();
        Ok(())
    }

    /// Runs one command to its outcome, blocking under the reactor.
    pub fn run(
        &mut self,
        command: impl FnOnce(&mut Session, Instant) -> Result<(), Error>,
    ) -> Result<Outcome, Error> {
        let outcome = self.run_to_outcome(command);
        self.collect();
        outcome
    }

    fn run_to_outcome(
        &mut self,
        command: impl FnOnce(&mut Session, Instant) -> Result<(), Error>,
    ) -> Result<Outcome, Error> {
        self.begin(command)?;
        self.finish()
    }

    /// Waits (under the reactor) for the running command's outcome.
    fn finish(&mut self) -> Result<Outcome, Error> {
        loop {
            if let Some(outcome) = self.session.poll_outcome() {
                return outcome;
            }
            let Some(deadline) = self.deadline() else {
                // Cannot happen: an unfinished command is on the wire (with
                // a deadline) or waits for a connection being opened.
                return Err(Error::Connection("the command made no progress".into()));
            };
            reactor::wait_for(|out| self.wakeups(out), deadline);
            self.pass(clock::now(), Some(deadline));
        }
    }

    /// Gives the session a command and does what it asks at once.
    fn begin(
        &mut self,
        command: impl FnOnce(&mut Session, Instant) -> Result<(), Error>,
    ) -> Result<(), Error> {
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
        // A started command that this pass finished is reported under its
        // own ticket before another command can take its outcome.
        self.collect();
        command(&mut self.session, clock::now())?;
        self.carry_out();
        Ok(())
    }

    /// One non-blocking pass: take the connection being opened a step
    /// further, write what is queued, read what arrived, handle time; then
    /// do what the session asks. With `explain_until`, a plain connection
    /// closed before its first reply is probed for TLS (without waiting,
    /// until then at the latest) to say why.
    fn pass(&mut self, now: Instant, explain_until: Option<Instant>) {
        self.step_connecting(now);
        self.step_probing(now);
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
                Err(e) => match explain_until.and_then(|until| Probe::of(conn, &e, until)) {
                    Some(probe) => {
                        // The session hears of the close once the probe
                        // says why; the dead connection goes now.
                        self.conn = None;
                        self.probing = Some(probe);
                        self.step_probing(now);
                    }
                    None => self.session.handle_disconnected(now, e),
                },
            }
        }
        self.session.handle_timeout(now);
        self.carry_out();
    }

    /// Takes a probe as far as it goes without waiting; once it has
    /// decided, the session hears of the close, explained.
    fn step_probing(&mut self, now: Instant) {
        if let Some(explained) = self.probing.as_mut().and_then(|probe| probe.step(now)) {
            self.probing = None;
            self.session.handle_disconnected(now, explained);
        }
    }

    /// Takes the connection being opened as far as it goes without waiting.
    fn step_connecting(&mut self, now: Instant) {
        let Some(connecting) = self.connecting.as_mut() else {
            return;
        };
        match connecting.step(now) {
            None => {}
            Some(Ok(conn)) => {
                self.connecting = None;
                self.conn = Some(conn);
                self.session.handle_connected(clock::now());
            }
            Some(Err(e)) => {
                self.connecting = None;
                self.session.handle_connect_failed(e);
            }
        }
    }

    /// Does what the session asks, without waiting: a connection is
    /// started and taken as far as it goes at once.
    fn carry_out(&mut self) {
        while let Some(action) = self.session.poll_action() {
            match action {
                Action::Connect => {
                    self.conn = None;
                    self.probing = None;
                    let now = clock::now();
                    self.connecting = Some(Connecting::start(&self.dial, now));
                    self.step_connecting(now);
                }
                Action::Send(frame) => {
                    let sent = match self.conn.as_mut() {
                        Some(conn) => conn.queue(&frame).and_then(|()| conn.flush().map(drop)),
                        // The connection closed as it opened (the pass that
                        // opened it read the close before this send): the
                        // probe under way tells the session why, explained.
                        None if self.probing.is_some() => Ok(()),
                        None => Err(Error::Connection("no connection".into())),
                    };
                    if let Err(e) = sent {
                        self.session.handle_disconnected(clock::now(), e);
                    }
                }
                Action::Disconnect => {
                    self.connecting = None;
                    self.probing = None;
                    self.conn = None;
                }
            }
        }
    }

    /// When this key client must next be passed: the session's deadline, or
    /// the connect timeout while a connection is being opened.
    fn deadline(&self) -> Option<Instant> {
        let opening = self.connecting.as_ref().map(Connecting::deadline);
        let probing = self.probing.as_ref().map(Probe::deadline);
        reactor::sooner(
            reactor::sooner(self.session.poll_timeout(), opening),
            probing,
        )
    }

    /// Hands the outcome of a started command and the losses to the
    /// driver, and what was counted to the totals.
    fn collect(&mut self) {
        let counted = self.session.counters();
        TOTALS.set(TOTALS.get() + counted.since(self.counted));
        self.counted = counted;
        if let Some(ticket) = self.ticket {
            if let Some(outcome) = self.session.poll_outcome() {
                self.ticket = None;
                events::report(Event::Done { ticket, outcome });
            }
        }
        while let Some(lost) = self.session.poll_lost() {
            events::report(Event::Lost(lost));
        }
    }

    /// Drops the connection without a release.
    pub fn close(&mut self) {
        self.session.close();
        self.carry_out();
        if let Some(ticket) = self.ticket.take() {
            let outcome = Err(Error::Connection("closed by the caller".into()));
            events::report(Event::Done { ticket, outcome });
        }
    }

    /// The session, brought up to date first (a lease past its end is
    /// lost by now, a renewal reply that arrived is taken).
    pub fn current(&mut self) -> &Session {
        self.drive(clock::now());
        &self.session
    }
}

impl Background for KeyClient {
    fn wakeups(&self, out: &mut Vec<Pollable>) {
        if let Some(connecting) = self.connecting.as_ref() {
            connecting.wakeups(out);
        }
        if let Some(probe) = self.probing.as_ref() {
            probe.wakeups(out);
        }
        let Some(conn) = self.conn.as_ref() else {
            return;
        };
        // Only a reply is waited for. An idle connection that holds a
        // lease is read at its next deadline (the renewal), which finds a
        // close then, as the host's renewal thread always did: watching
        // every held lock's socket would make each wait, and each
        // `driver.pollables`, cost as much as the number of locks held.
        if self.session.awaits_reply() {
            out.extend(conn.readable());
        }
        out.extend(conn.writable());
    }

    fn deadline(&self) -> Option<Instant> {
        KeyClient::deadline(self)
    }

    fn awaits_io(&self) -> bool {
        self.session.awaits_reply()
            || self.connecting.is_some()
            || self.probing.is_some()
            || self.conn.as_ref().is_some_and(Conn::has_queued)
    }

    fn active(&self) -> bool {
        self.ticket.is_some() || Background::awaits_io(self)
    }

    fn drive(&mut self, now: Instant) {
        // Nothing due and nothing on the wire: nothing to read or send, so
        // no host call at all (an instance may hold thousands of idle leases).
        let due = KeyClient::deadline(self).is_some_and(|at| at <= now);
        if !due && !Background::active(self) {
            return;
        }
        // A started command gets the explanation a blocking one gets.
        let explain_until = self.ticket.and_then(|_| KeyClient::deadline(self));
        self.pass(now, explain_until);
        self.collect();
    }
}

impl Drop for KeyClient {
    /// A held grant is released on drop: a release is never skipped on a
    /// path that could send it. Errors have nowhere to go; the connection
    /// closes right after, which makes the server release anyway.
    ///
    /// A command started without waiting is first brought to an end, and
    /// its completion still reported: a renew or release of a held grant
    /// runs to its reply (bounded by the reply timeout), so that the
    /// release is not refused as "busy"; anything else (an acquire waiting
    /// in the server's queue) ends by closing the connection.
    fn drop(&mut self) {
        reactor::forget(self.slot);
        if let Some(ticket) = self.ticket.take() {
            let outcome = if self.session.is_held() {
                self.finish()
            } else {
                self.session.close();
                self.carry_out();
                Err(Error::Connection("the object was dropped".into()))
            };
            events::report(Event::Done { ticket, outcome });
        }
        if self.session.is_held() {
            let _ = self.run_to_outcome(|s, now| s.release(now));
        }
        self.collect();
    }
}
