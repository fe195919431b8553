//! The WASI shell of the low-level `connection`: one protocol command at a
//! time on one connection, as reactor work (as `key_client` is for locks).
//! A command started with a ticket ([`ConnClient::start`]) returns at once;
//! its answer becomes an [`Event::Answered`] when a later pass finds it. A
//! blocking call ([`ConnClient::run`]) is the loop over the same passes:
//! "start; wait (under the reactor) for its I/O or its deadline; pass".

use std::cell::RefCell;
use std::rc::Rc;

use wasip2::io::poll::Pollable;

use super::clock;
use super::dial::{Connecting, Dial};
use super::events::{self, Event};
use super::probe::Probe;
use super::reactor::{self, Background, Steps};
use super::transport::Conn;
use crate::protocol::{Answer, Error, Expect, Request};
use crate::settings::REPLY_GRACE_MS;
use crate::time::Instant;

/// A command of the connection: `connect`, or one request.
pub enum Command<'a> {
    /// Opens the connection.
    Connect,
    /// Sends the request and decodes its reply.
    Send(Request<'a>),
}

/// Where the connection is.
enum Link {
    /// Made by `create`: nothing opened yet.
    New,
    /// Being opened (by the pending `connect`).
    Connecting(Box<Connecting>),
    /// Open, or closed by a fault (then every command fails with it).
    Open(Conn),
    /// Closed before its first reply: the probe finds out why, for the
    /// pending command's error.
    Probing(Conn, Box<Probe>),
    /// `connect` failed: every command fails with its error.
    Failed(Error),
}

/// The command on the wire (or opening the connection).
struct Pending {
    /// `None` for a blocking call, which takes the answer from `answered`.
    ticket: Option<u64>,
    /// `None` for `connect`.
    expect: Option<Expect>,
    /// When the reply is given up on.
    deadline: Instant,
}

/// One low-level connection.
pub struct ConnClient {
    dial: Dial,
    link: Link,
    pending: Option<Pending>,
    /// A blocking call's answer, until it takes it.
    answered: Option<Result<Answer, Error>>,
    /// Its slot with the reactor.
    slot: usize,
}

impl ConnClient {
    /// A connection not opened yet, registered with the reactor.
    pub fn create(dial: Dial) -> Rc<RefCell<Self>> {
        let client = Rc::new(RefCell::new(ConnClient {
            dial,
            link: Link::New,
            pending: None,
            answered: None,
            slot: usize::MAX,
        }));
        let slot = reactor::register(&client);
        client.borrow_mut().slot = slot;
        client
    }

    /// Its slot with the reactor (see `reactor::touch`).
    pub fn slot(&self) -> usize {
        self.slot
    }

    /// Runs `command` to its answer, blocking under the reactor.
    pub fn run(&mut self, command: Command<'_>) -> Result<Answer, Error> {
        self.begin(None, command)?;
        loop {
            if let Some(answer) = self.answered.take() {
                return answer;
            }
            let Some(deadline) = Background::deadline(self) else {
                // Cannot happen: a pending command has a deadline.
                return Err(Error::Connection("the command made no progress".into()));
            };
            reactor::wait_for(|out| self.wakeups(out), deadline);
            self.pass(clock::now());
        }
    }

    /// Starts `command` and returns at once: its answer becomes an
    /// [`Event::Answered`] with `ticket` when a pass finds it.
    pub fn start(&mut self, ticket: u64, command: Command<'_>) -> Result<(), Error> {
        self.begin(Some(ticket), command)
    }

    /// Puts `command` on its way without waiting; refuses what cannot start.
    fn begin(&mut self, ticket: Option<u64>, command: Command<'_>) -> Result<(), Error> {
        if self.pending.is_some() {
            return Err(Error::InvalidArgument(
                "another command of this connection has not completed".into(),
            ));
        }
        let now = clock::now();
        match command {
            Command::Connect => {
                if !matches!(self.link, Link::New) {
                    return Err(Error::InvalidArgument(
                        "the connection was opened already (it opens once)".into(),
                    ));
                }
                let connecting = Connecting::start(&self.dial, now);
                self.pending = Some(Pending {
                    ticket,
                    expect: None,
                    deadline: connecting.deadline(),
                });
                self.link = Link::Connecting(Box::new(connecting));
            }
            Command::Send(request) => {
                let conn = match &mut self.link {
                    Link::Open(conn) => conn,
                    Link::Failed(e) => return Err(e.clone()),
                    _ => {
                        return Err(Error::InvalidArgument(
                            "not connected: start `connect` first".into(),
                        ))
                    }
                };
                let mut frame = Vec::new();
                request.encode(&mut frame)?;
                conn.queue(&frame)?;
                let flushed = conn.flush();
                let expect = Expect::of(&request);
                let deadline = clock::after_s(expect.server_wait_s, REPLY_GRACE_MS);
                self.pending = Some(Pending {
                    ticket,
                    expect: Some(expect),
                    deadline,
                });
                // No read yet: the reply cannot be there so soon, and a
                // read that comes back empty is a host call wasted.
                if let Err(e) = flushed {
                    self.fault(e, deadline, now);
                }
                return Ok(());
            }
        }
        self.pass(now);
        Ok(())
    }

    /// One non-blocking pass: take the opening a step further, or write
    /// what is queued and read what arrived; answer once decided.
    fn pass(&mut self, now: Instant) {
        let Some(deadline) = self.pending.as_ref().map(|p| p.deadline) else {
            return;
        };
        let expect = self.pending.as_ref().and_then(|p| p.expect);
        match &mut self.link {
            Link::Connecting(connecting) => match connecting.step(now) {
                None => {}
                Some(Ok(conn)) => {
                    self.link = Link::Open(conn);
                    self.answer(Ok(Answer::Connected));
                }
                Some(Err(e)) => {
                    self.link = Link::Failed(e.clone());
                    self.answer(Err(e));
                }
            },
            Link::Probing(_, probe) => {
                if let Some(explained) = probe.step(now) {
                    self.link = match std::mem::replace(&mut self.link, Link::New) {
                        Link::Probing(conn, _) => Link::Open(conn),
                        other => other,
                    };
                    self.answer(Err(explained));
                }
            }
            Link::Open(conn) => {
                let Some(expect) = expect else { return };
                let read = conn.flush().and_then(|_| conn.poll_line());
                match read {
                    Ok(Some(line)) => {
                        let answer = expect.decode(&line).map_err(|e| conn.fail_if(e));
                        self.answer(answer);
                    }
                    Ok(None) if now >= deadline => {
                        let timeout = conn.fail(Error::Timeout);
                        self.answer(Err(timeout));
                    }
                    Ok(None) => {}
                    Err(e) => self.fault(e, deadline, now),
                }
            }
            // No command is pending on a new or failed connection.
            Link::New | Link::Failed(_) => {}
        }
    }

    /// A read or write failed: explained by a probe when the connection
    /// closed before its first reply (a TLS server, or one that is full).
    fn fault(&mut self, error: Error, deadline: Instant, now: Instant) {
        let probe = match &self.link {
            Link::Open(conn) => Probe::of(conn, &error, deadline),
            _ => None,
        };
        match probe {
            Some(probe) => {
                if let Link::Open(conn) = std::mem::replace(&mut self.link, Link::New) {
                    self.link = Link::Probing(conn, Box::new(probe));
                }
                self.pass(now);
            }
            None => self.answer(Err(error)),
        }
    }

    /// The pending command's answer: to the driver when it has a ticket,
    /// to the blocking call otherwise.
    fn answer(&mut self, answer: Result<Answer, Error>) {
        match self.pending.take().and_then(|p| p.ticket) {
            Some(ticket) => events::report(Event::Answered { ticket, answer }),
            None => self.answered = Some(answer),
        }
    }

    /// Closes the connection; a pending command is answered with that.
    pub fn close(&mut self) {
        let closed = Error::Connection("closed by the caller".into());
        // The whole connection goes (its socket with it): later commands
        // fail with `closed`.
        self.link = match std::mem::replace(&mut self.link, Link::New) {
            Link::Open(mut conn) | Link::Probing(mut conn, _) => {
                conn.fail(closed.clone());
                Link::Failed(closed.clone())
            }
            Link::Failed(e) => Link::Failed(e),
            Link::New | Link::Connecting(_) => Link::Failed(closed.clone()),
        };
        if self.pending.is_some() {
            self.answer(Err(closed));
        }
    }
}

impl Background for ConnClient {
    fn wakeups(&self, out: &mut Vec<Pollable>) {
        if self.pending.is_none() {
            return;
        }
        match &self.link {
            Link::Connecting(connecting) => connecting.wakeups(out),
            Link::Probing(_, probe) => probe.wakeups(out),
            Link::Open(conn) => {
                out.extend(conn.readable());
                out.extend(conn.writable());
            }
            Link::New | Link::Failed(_) => {}
        }
    }

    fn deadline(&self) -> Option<Instant> {
        let pending = self.pending.as_ref()?;
        Some(match &self.link {
            Link::Probing(_, probe) => probe.deadline(),
            _ => pending.deadline,
        })
    }

    fn awaits_io(&self) -> bool {
        self.pending.is_some()
    }

    fn active(&self) -> bool {
        self.pending.is_some()
    }

    fn drive(&mut self, now: Instant) {
        self.pass(now);
    }
}

impl Drop for ConnClient {
    /// A started command not answered yet is answered now: its connection
    /// goes with it (the server cancels its waiters, and by default
    /// releases what it held).
    fn drop(&mut self) {
        reactor::forget(self.slot);
        if let Some(ticket) = self.pending.take().and_then(|p| p.ticket) {
            let answer = Err(Error::Connection("the connection was dropped".into()));
            events::report(Event::Answered { ticket, answer });
        }
    }
}
