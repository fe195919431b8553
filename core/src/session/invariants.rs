//! What must hold of a [`Session`] whatever happens to it, checked after
//! every event: the one checker behind the property test
//! (`session/tests/properties.rs`) and the fuzz target
//! (`fuzz/fuzz_targets/session.rs`), which differ only in how they choose
//! events. Built for tests and with the `invariants` feature.
//!
//! The invariants: no panic; never two requests on the wire; every frame is
//! one request; a deadline is never "never"; a lost grant is reported once;
//! a grant is never held past the lease end the session knows, nor after
//! its loss was reported.

use std::collections::HashSet;
use std::time::Duration;

use super::{Action, Session};
use crate::protocol::Error;
use crate::time::Instant;

/// One thing that can happen to a session, as its shell sees it.
#[derive(Debug, Clone)]
pub enum Event {
    /// The caller's commands (a refusal is fine, a panic is not).
    Acquire,
    /// See [`Session::enqueue`].
    Enqueue,
    /// See [`Session::wait`].
    Wait(Option<u64>),
    /// See [`Session::release`].
    Release,
    /// See [`Session::renew`].
    Renew,
    /// See [`Session::close`].
    Close,
    /// The pending connect succeeds (`true`) or fails; nothing if none is pending.
    Connected(bool),
    /// A line the server sent.
    Line(String),
    /// The connection broke.
    Disconnected,
    /// This many milliseconds pass, then the session's timeout handling.
    Advance(u64),
    /// Time jumps to the session's next deadline.
    ToDeadline,
}

/// A session, the shell's view of it, and what was reported so far.
#[derive(Debug)]
pub struct Checked {
    session: Session,
    now: Instant,
    connecting: bool,
    on_wire: u32,
    reported: HashSet<u64>,
    last_token: String,
}

impl Checked {
    /// `session`, starting at `now`.
    pub fn new(session: Session, now: Instant) -> Self {
        Checked {
            session,
            now,
            connecting: false,
            on_wire: 0,
            reported: HashSet::new(),
            last_token: String::new(),
        }
    }

    /// The session, for a caller's own checks.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Applies `event`, carries out the actions it caused as a shell would,
    /// and checks every invariant; `Err` says which one broke.
    pub fn apply(&mut self, event: Event) -> Result<(), String> {
        let (s, now) = (&mut self.session, self.now);
        let _ = match event {
            Event::Acquire => s.acquire(now),
            Event::Enqueue => s.enqueue(now),
            Event::Wait(timeout_s) => s.wait(now, timeout_s),
            Event::Release => s.release(now),
            Event::Renew => s.renew(now),
            Event::Close => {
                s.close();
                Ok(())
            }
            Event::Connected(ok) if self.connecting => {
                self.connecting = false;
                if ok {
                    s.handle_connected(now);
                } else {
                    s.handle_connect_failed(Error::Connection("refused".into()));
                }
                Ok(())
            }
            Event::Connected(_) => Ok(()),
            Event::Line(line) => {
                s.handle_line(now, &line);
                self.on_wire = self.on_wire.saturating_sub(1);
                Ok(())
            }
            Event::Disconnected => {
                s.handle_disconnected(now, Error::Connection("reset".into()));
                Ok(())
            }
            Event::Advance(ms) => {
                self.now = now + Duration::from_millis(ms);
                s.handle_timeout(self.now);
                Ok(())
            }
            Event::ToDeadline => {
                if let Some(at) = s.poll_timeout() {
                    if at == Instant::from_nanos(u64::MAX) {
                        return Err("an endless deadline is no deadline".into());
                    }
                    self.now = now.max(at);
                }
                s.handle_timeout(self.now);
                Ok(())
            }
        };
        self.carry_out()?;
        self.check()
    }

    fn carry_out(&mut self) -> Result<(), String> {
        while let Some(action) = self.session.poll_action() {
            match action {
                Action::Connect => self.connecting = true,
                Action::Send(frame) => {
                    let lines = frame.iter().filter(|&&b| b == b'\n').count();
                    if lines != 3 {
                        return Err(format!("a frame of {lines} lines, not one request"));
                    }
                    self.on_wire += 1;
                    if self.on_wire > 1 {
                        return Err("two requests on the wire".into());
                    }
                }
                Action::Disconnect => {
                    self.on_wire = 0;
                    self.connecting = false;
                }
            }
        }
        Ok(())
    }

    fn check(&mut self) -> Result<(), String> {
        let s = &mut self.session;
        while let Some(lost) = s.poll_lost() {
            if !self.reported.insert(lost.fence) {
                return Err(format!("the loss of fence {} reported twice", lost.fence));
            }
        }
        let Some(grant) = s.grant() else {
            return Ok(());
        };
        // Lines may grant a fence again (a fuzzer's do): a new grant is new.
        if grant.token != self.last_token {
            self.last_token = grant.token.clone();
            self.reported.remove(&grant.fence);
        }
        if self.reported.contains(&grant.fence) {
            return Err(format!(
                "fence {} held after its loss was reported",
                grant.fence
            ));
        }
        let end = s.lease_expires_at().unwrap_or_default();
        if self.now >= end {
            return Err(format!(
                "held at {:?}, past the lease end {end:?}",
                self.now
            ));
        }
        Ok(())
    }
}
