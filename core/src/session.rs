//! The lifecycle of one lock or semaphore as a sans-IO state machine, in the
//! manner of quinn-proto's `Connection`: no socket, no clock. Time is an
//! argument (monotonic nanoseconds); the machine says what to do
//! ([`Session::poll_action`]: connect, send these bytes, disconnect) and
//! when it next needs attention ([`Session::poll_timeout`]), and takes what
//! happened ([`Session::handle_connected`], [`Session::handle_line`],
//! [`Session::handle_disconnected`], [`Session::handle_timeout`]).
//!
//! # Call order
//! 1. A command ([`acquire`](Session::acquire), [`enqueue`](Session::enqueue),
//!    [`wait`](Session::wait), [`release`](Session::release),
//!    [`renew`](Session::renew)) is refused at once with an error, or
//!    accepted; an accepted command's result comes from
//!    [`poll_outcome`](Session::poll_outcome), perhaps at once.
//! 2. Until then, and between commands while a grant is held, the shell
//!    loops: carry out every [`poll_action`](Session::poll_action); feed
//!    connection results, reply lines and closes to the `handle_*` inputs;
//!    call [`handle_timeout`](Session::handle_timeout) at or after
//!    [`poll_timeout`](Session::poll_timeout).
//! 3. Leases lost meanwhile come from [`poll_lost`](Session::poll_lost),
//!    once each.
//!
//! One request is on the wire at a time (dflockd answers each with one
//! line, and the line reader refuses bytes after it): a command issued while
//! a renewal is in flight waits for that reply, then is sent.
//!
//! # Phases
//! `Idle` → acquire → `Held` (granted) or `Idle` (server timeout);
//! `Idle` → enqueue → `Held` (fast path) or `Enqueued`; `Enqueued` → wait →
//! `Held` or `Idle`; `Held` → release → `Idle`; `Held` → (renewal refused,
//! connection lost, lease ran out) → `Lost`, which the next release, renew
//! or wait reports as an error, leaving `Idle`.

use std::collections::VecDeque;
use std::time::Duration;

use crate::counters::Counters;
use crate::lease::Lease;
use crate::protocol::reply::{decode_enqueue, decode_grant, decode_ok, decode_renew, ErrorContext};
use crate::protocol::{check_seconds, Enqueued, Error, Grant, Kind, Loss, LossCause, Request};
use crate::settings::{Settings, REPLY_GRACE_MS};
use crate::time::Instant;

/// Losses kept for [`Session::poll_lost`]; older ones go first.
const MAX_UNREPORTED_LOSSES: usize = 64;

/// What the shell must do for the session, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a connection (resolve, connect, TLS, auth) to
    /// [`Settings::server`], then call [`Session::handle_connected`] or
    /// [`Session::handle_connect_failed`].
    Connect,
    /// Write these bytes (one encoded request) to the connection.
    Send(Vec<u8>),
    /// Close the connection: it is out of step or no longer wanted.
    Disconnect,
}

/// The result of an accepted command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `acquire` or `wait`: the grant, or `None` when the server's timeout passed.
    Acquired(Option<Grant>),
    /// `enqueue`: granted at once, or queued.
    Enqueued(Enqueued),
    /// `release`: `true` when the server confirmed, `false` when nothing was held.
    Released(bool),
    /// `renew`: the seconds the lease has left.
    Renewed(u64),
}

/// A lease lost while held, reported once by [`Session::poll_lost`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseLost {
    /// The key.
    pub key: String,
    /// Lock or semaphore (with its limit).
    pub kind: Kind,
    /// The fence of the lost grant.
    pub fence: u64,
    /// Why, typed.
    pub reason: Loss,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Down,
    Connecting,
    Up,
}

#[derive(Debug)]
enum Phase {
    Idle,
    Enqueued,
    Held {
        grant: Grant,
        lease: Lease,
    },
    /// Reported by the next release, renew or wait.
    Lost(Error),
}

/// A command of the caller's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Acquire,
    Enqueue,
    Wait { timeout_s: u64 },
    Release,
    Renew,
}

/// What is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// The caller's command.
    Command(Command),
    /// A scheduled renewal.
    Renewal,
}

#[derive(Debug)]
struct InFlight {
    sent: Sent,
    /// When it went out (for the renewal latency).
    at: Instant,
    /// A reply later than this means the server is gone or frozen; `None`
    /// for a renewal, whose reply may take as long as the lease lasts.
    deadline: Option<Instant>,
}

/// One lock or semaphore: see the module docs for the call order.
#[derive(Debug)]
pub struct Session {
    settings: Settings,
    /// How early (a random draw, made once) this session's grants renew.
    /// Once per session rather than per grant, so that a later grant never
    /// renews sooner than an earlier one did and a host's renewal driver
    /// can sleep through acquire/release cycles.
    jitter: u64,
    link: Link,
    phase: Phase,
    in_flight: Option<InFlight>,
    /// The caller's command, accepted (and encoded) but not yet sent.
    queued: Option<(Command, Vec<u8>)>,
    outcome: Option<Result<Outcome, Error>>,
    actions: VecDeque<Action>,
    lost: VecDeque<LeaseLost>,
    counters: Counters,
}

fn invalid(msg: &str) -> Error {
    Error::InvalidArgument(msg.into())
}

impl Session {
    /// An idle session; `jitter` is a random number (renewals come up to a
    /// tenth of the interval early, by it).
    pub fn new(settings: Settings, jitter: u64) -> Self {
        Session {
            settings,
            jitter,
            link: Link::Down,
            phase: Phase::Idle,
            in_flight: None,
            queued: None,
            outcome: None,
            actions: VecDeque::new(),
            lost: VecDeque::new(),
            counters: Counters::default(),
        }
    }

    /// The settings the session was opened with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    // ---- commands -------------------------------------------------------

    /// `l`/`sl`: blocks on the server up to the acquire timeout.
    /// Refused when held or enqueued.
    pub fn acquire(&mut self, now: Instant) -> Result<(), Error> {
        self.ready_to_start()?;
        self.start(Command::Acquire, now)
    }

    /// `e`/`se`: joins the queue, or is granted at once.
    pub fn enqueue(&mut self, now: Instant) -> Result<(), Error> {
        self.ready_to_start()?;
        self.start(Command::Enqueue, now)
    }

    /// `w`/`sw` after a queued enqueue, for `timeout_s` (default: the
    /// acquire timeout); at once the grant after a fast-path enqueue.
    pub fn wait(&mut self, now: Instant, timeout_s: Option<u64>) -> Result<(), Error> {
        let timeout_s = check_seconds(
            timeout_s.unwrap_or(self.settings.acquire_timeout_s),
            "wait timeout",
        )?;
        self.check_not_busy()?;
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Held { grant, lease } => {
                self.outcome = Some(Ok(Outcome::Acquired(Some(grant.clone()))));
                self.phase = Phase::Held { grant, lease };
                Ok(())
            }
            Phase::Lost(e) => Err(e),
            Phase::Idle => Err(invalid("wait needs a prior enqueue")),
            // The queue place belongs to the connection: on a new one the
            // server would answer `error_not_enqueued`; say what happened.
            Phase::Enqueued if self.link != Link::Up => Err(Error::Connection(
                "the connection closed while queued; enqueue again".into(),
            )),
            Phase::Enqueued => {
                self.phase = Phase::Enqueued;
                self.start(Command::Wait { timeout_s }, now)
            }
        }
    }

    /// `r`/`sr`. Nothing held: `Released(false)` at once. Enqueued: leaves
    /// the queue by disconnecting (the server forgets the waiter), `false`.
    /// A lease lost before: refused with `lock-lost`, once.
    pub fn release(&mut self, now: Instant) -> Result<(), Error> {
        self.check_not_busy()?;
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Idle => {
                self.outcome = Some(Ok(Outcome::Released(false)));
                Ok(())
            }
            Phase::Lost(e) => Err(e),
            Phase::Enqueued => {
                self.disconnect();
                self.outcome = Some(Ok(Outcome::Released(false)));
                Ok(())
            }
            held @ Phase::Held { .. } => {
                self.phase = held;
                self.start(Command::Release, now)
            }
        }
    }

    /// `n`/`sn` now (renewal is otherwise automatic).
    pub fn renew(&mut self, now: Instant) -> Result<(), Error> {
        self.check_not_busy()?;
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Lost(e) => Err(e),
            held @ Phase::Held { .. } => {
                self.phase = held;
                self.start(Command::Renew, now)
            }
            other => {
                self.phase = other;
                Err(invalid("renew needs a held lock"))
            }
        }
    }

    /// Drops the connection without a release (the server then releases,
    /// or keeps the lease until it runs out with
    /// `--auto-release-on-disconnect=false`). Nothing is reported lost.
    pub fn close(&mut self) {
        self.disconnect();
        self.phase = Phase::Idle;
        self.queued = None;
        self.outcome = None;
    }

    // ---- inputs ---------------------------------------------------------

    /// The connection asked for by [`Action::Connect`] is open.
    pub fn handle_connected(&mut self, now: Instant) {
        if self.link == Link::Connecting {
            self.link = Link::Up;
            self.counters.connects += 1;
            self.pump(now);
        }
    }

    /// The connection asked for could not be opened: the waiting command
    /// fails with `error`.
    pub fn handle_connect_failed(&mut self, error: Error) {
        if self.link == Link::Connecting {
            self.link = Link::Down;
        }
        if self.queued.take().is_some() {
            self.outcome = Some(Err(error));
        }
    }

    /// One reply line arrived.
    pub fn handle_line(&mut self, now: Instant, line: &str) {
        let Some(InFlight { sent, at, .. }) = self.in_flight.take() else {
            return self.break_link(Error::Protocol("unsolicited bytes from the server".into()));
        };
        match sent {
            Sent::Renewal => {
                let reply = decode_renew(line);
                if reply.is_ok() {
                    let took = now.saturating_duration_since(at);
                    self.counters
                        .confirm_renewal(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
                }
                self.handle_renewal_reply(now, reply);
            }
            Sent::Command(command) => self.handle_command_reply(now, command, line),
        }
        self.pump(now);
    }

    /// The connection broke (read or write failed, the server closed it,
    /// or a frame could not be decoded): what was in flight fails with
    /// `error`, and a held lease is lost.
    pub fn handle_disconnected(&mut self, now: Instant, error: Error) {
        self.break_link(error);
        self.pump(now);
    }

    /// Time passed: a reply later than its deadline closes the connection
    /// (`timeout`), a lease past its end is lost, a due renewal is sent.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self
            .in_flight
            .as_ref()
            .and_then(|f| f.deadline)
            .is_some_and(|deadline| now >= deadline)
        {
            self.break_link(Error::Timeout);
        }
        if let Phase::Held { lease, .. } = &mut self.phase {
            if lease.handle_timeout(now) {
                let reason = match lease.state() {
                    crate::lease::State::Lost(reason) => reason.clone(),
                    _ => Error::lost(LossCause::NotRenewed, ""),
                };
                self.lose(reason);
            }
        }
        self.pump(now);
    }

    // ---- outputs --------------------------------------------------------

    /// The next thing the shell must do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The result of the accepted command, once it is known.
    pub fn poll_outcome(&mut self) -> Option<Result<Outcome, Error>> {
        self.outcome.take()
    }

    /// A lease lost since the last call.
    pub fn poll_lost(&mut self) -> Option<LeaseLost> {
        self.lost.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next:
    /// the reply deadline of what is in flight, the next renewal, or the
    /// end of a lease whose renewal is out. `None` when nothing is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let reply = self.in_flight.as_ref().and_then(|f| f.deadline);
        let lease = match &self.phase {
            // A renewal cannot go out while something else is on the wire
            // (or the connection is being set up): only the lease end counts.
            Phase::Held { lease, .. } if self.in_flight.is_some() || self.link != Link::Up => {
                Some(lease.expires_at())
            }
            Phase::Held { lease, .. } => lease.poll_deadline(),
            _ => None,
        };
        [reply, lease].into_iter().flatten().min()
    }

    /// Whether a request is on the wire, awaiting its reply.
    pub fn awaits_reply(&self) -> bool {
        self.in_flight.is_some()
    }

    /// What the session has done so far (connections, renewals, losses).
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// The grant, while held and not known lost.
    pub fn grant(&self) -> Option<&Grant> {
        match &self.phase {
            Phase::Held { grant, .. } => Some(grant),
            _ => None,
        }
    }

    /// Whether a grant is held whose lease is not known lost.
    pub fn is_held(&self) -> bool {
        self.grant().is_some()
    }

    /// Whether a lost lease waits to be reported by release, renew or wait.
    pub fn has_unreported_loss(&self) -> bool {
        matches!(self.phase, Phase::Lost(_))
    }

    /// When the held lease ends at the latest, by the local estimate.
    pub fn lease_expires_at(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Held { lease, .. } => Some(lease.expires_at()),
            _ => None,
        }
    }

    // ---- internals ------------------------------------------------------

    fn check_not_busy(&self) -> Result<(), Error> {
        let busy = self.queued.is_some()
            || matches!(
                self.in_flight,
                Some(InFlight {
                    sent: Sent::Command(_),
                    ..
                })
            );
        if busy {
            return Err(invalid("another call on this object is in progress"));
        }
        Ok(())
    }

    fn ready_to_start(&mut self) -> Result<(), Error> {
        self.check_not_busy()?;
        match self.phase {
            Phase::Held { .. } => Err(invalid("already held: release it first")),
            Phase::Enqueued => Err(invalid("already enqueued: call wait")),
            Phase::Idle | Phase::Lost(_) => {
                self.phase = Phase::Idle;
                Ok(())
            }
        }
    }

    /// Accepts `command`: checks that it encodes, queues it, and sends it
    /// when the connection is free.
    fn start(&mut self, command: Command, now: Instant) -> Result<(), Error> {
        let mut frame = Vec::new();
        self.request(Sent::Command(command))?.encode(&mut frame)?;
        self.outcome = None;
        self.queued = Some((command, frame));
        self.pump(now);
        Ok(())
    }

    fn request(&self, command: Sent) -> Result<Request<'_>, Error> {
        let s = &self.settings;
        let token = || match &self.phase {
            Phase::Held { grant, .. } => Ok(grant.token.as_str()),
            _ => Err(invalid("nothing is held")),
        };
        Ok(match command {
            Sent::Command(Command::Acquire) => Request::Acquire {
                kind: s.kind,
                key: &s.key,
                timeout_s: s.acquire_timeout_s,
                lease_ttl_s: s.lease_ttl_s,
            },
            Sent::Command(Command::Enqueue) => Request::Enqueue {
                kind: s.kind,
                key: &s.key,
                lease_ttl_s: s.lease_ttl_s,
            },
            Sent::Command(Command::Wait { timeout_s }) => Request::Wait {
                space: s.kind.space(),
                key: &s.key,
                timeout_s,
            },
            Sent::Command(Command::Release) => Request::Release {
                space: s.kind.space(),
                key: &s.key,
                token: token()?,
            },
            Sent::Command(Command::Renew) | Sent::Renewal => Request::Renew {
                space: s.kind.space(),
                key: &s.key,
                token: token()?,
                lease_ttl_s: s.lease_ttl_s,
            },
        })
    }

    /// How long the server itself may take to answer.
    fn server_wait_s(&self, sent: Sent) -> u64 {
        match sent {
            Sent::Command(Command::Acquire) => self.settings.acquire_timeout_s,
            Sent::Command(Command::Wait { timeout_s }) => timeout_s,
            _ => 0,
        }
    }

    /// Moves things along: connects for a queued command, sends it once
    /// the wire is free, sends a due renewal.
    fn pump(&mut self, now: Instant) {
        if self.in_flight.is_some() {
            return;
        }
        if self.queued.is_some() {
            match self.link {
                Link::Down => {
                    self.link = Link::Connecting;
                    self.actions.push_back(Action::Connect);
                }
                Link::Connecting => {}
                Link::Up => {
                    if let Some((command, frame)) = self.queued.take() {
                        self.send(Sent::Command(command), frame, now);
                    }
                }
            }
            return;
        }
        if self.link != Link::Up {
            return;
        }
        let Phase::Held { lease, .. } = &mut self.phase else {
            return;
        };
        if !lease.poll_renew(now) {
            return;
        }
        let mut frame = Vec::new();
        match self
            .request(Sent::Renewal)
            .and_then(|r| r.encode(&mut frame))
        {
            Ok(()) => self.send(Sent::Renewal, frame, now),
            // Its fields were checked with the grant's; cannot happen.
            Err(e) => self.lose(e),
        }
    }

    fn send(&mut self, sent: Sent, frame: Vec<u8>, now: Instant) {
        let deadline = match sent {
            // A renewal's reply may take as long as the lease lasts (a
            // server paused for less than that keeps it): the lease end
            // is its deadline, in handle_timeout.
            Sent::Renewal => None,
            Sent::Command(_) => Some(
                now + Duration::from_secs(self.server_wait_s(sent))
                    + Duration::from_millis(REPLY_GRACE_MS),
            ),
        };
        match (sent, &mut self.phase) {
            (Sent::Renewal, _) => self.counters.renewals_sent += 1,
            // The caller's renew is a renewal too: its reply's seconds
            // count from now, as a scheduled one's do from when it went out.
            (Sent::Command(Command::Renew), Phase::Held { lease, .. }) => lease.start_renew(now),
            _ => {}
        }
        self.in_flight = Some(InFlight {
            sent,
            at: now,
            deadline,
        });
        self.actions.push_back(Action::Send(frame));
    }

    fn hold(&mut self, now: Instant, grant: Grant) {
        let lease = Lease::new(now, grant.lease_s, self.settings.renew_ratio, self.jitter);
        self.phase = Phase::Held { grant, lease };
    }

    fn handle_command_reply(&mut self, now: Instant, command: Command, line: &str) {
        let outcome = match command {
            Command::Acquire | Command::Wait { .. } => {
                decode_grant(line).map(|granted| match granted {
                    Some(grant) => {
                        self.hold(now, grant.clone());
                        Outcome::Acquired(Some(grant))
                    }
                    None => {
                        self.phase = Phase::Idle;
                        Outcome::Acquired(None)
                    }
                })
            }
            Command::Enqueue => decode_enqueue(line).map(|answer| {
                match &answer {
                    Enqueued::Acquired(grant) => self.hold(now, grant.clone()),
                    Enqueued::Queued => self.phase = Phase::Enqueued,
                }
                Outcome::Enqueued(answer)
            }),
            Command::Release => {
                self.phase = Phase::Idle;
                match decode_ok(line, ErrorContext::Token) {
                    Ok(()) => Ok(Outcome::Released(true)),
                    Err(Error::Server(why)) => Err(Error::lost(LossCause::ReleaseRefused, why)),
                    Err(e) => Err(e),
                }
            }
            Command::Renew => {
                let reply = decode_renew(line);
                self.handle_renewal_reply(now, reply.clone());
                match self.take_loss() {
                    Some(lost) => Err(lost),
                    None => reply.map(Outcome::Renewed),
                }
            }
        };
        if let Err(e) = &outcome {
            if matches!(command, Command::Wait { .. } | Command::Acquire) {
                self.phase = Phase::Idle;
            }
            if e.breaks_connection() {
                self.break_link(e.clone());
            }
        }
        self.outcome = Some(outcome);
    }

    fn handle_renewal_reply(&mut self, now: Instant, reply: Result<u64, Error>) {
        match reply {
            Ok(remaining) => {
                if let Phase::Held { lease, .. } = &mut self.phase {
                    lease.handle_renewed(remaining, self.jitter);
                    // `ok 0`, or a reply that took longer than what it
                    // granted: over already.
                    if lease.handle_timeout(now) {
                        self.lose(Error::lost(LossCause::Expired, ""));
                    }
                }
            }
            // Refused, or a reply out of step: lost either way, and
            // `lose` drops the connection.
            Err(e) => self.lose(e),
        }
    }

    /// The connection is gone: what is in flight fails with `error`, and a
    /// held lease is lost.
    fn fail_in_flight(&mut self, error: Error) {
        let in_flight = self.in_flight.take().map(|f| f.sent);
        if in_flight == Some(Sent::Command(Command::Release)) {
            // The server releases on disconnect (unless told to keep
            // leases, until they run out): this release failed, and
            // nothing more is held here.
            self.phase = Phase::Idle;
            self.outcome = Some(Err(error));
            return;
        }
        if matches!(self.phase, Phase::Held { .. }) {
            // A renew of the caller's, in flight, reports the loss.
            let caller_waits = matches!(in_flight, Some(Sent::Command(_)));
            return self.record_loss(error, caller_waits);
        }
        if let Some(Sent::Command(_)) = in_flight {
            // acquire, enqueue or wait: nothing was held.
            self.phase = Phase::Idle;
            self.outcome = Some(Err(error));
        }
        // Enqueued with nothing in flight stays so: the next wait says
        // that the connection closed while queued.
    }

    /// Closes the connection because it is out of step or dead.
    fn break_link(&mut self, error: Error) {
        if self.link == Link::Down {
            return;
        }
        self.actions.push_back(Action::Disconnect);
        self.link = Link::Down;
        self.fail_in_flight(error);
    }

    /// Closes the connection on purpose.
    fn disconnect(&mut self) {
        if self.link != Link::Down {
            self.actions.push_back(Action::Disconnect);
        }
        self.link = Link::Down;
        self.in_flight = None;
    }

    /// A held lease is lost: reported once by `poll_lost`, and once more by
    /// the caller's release or renew in flight, or else by the next
    /// release, renew or wait; the connection is dropped, so the server
    /// lets go of whatever it still counts as held.
    fn lose(&mut self, cause: Error) {
        if !matches!(self.phase, Phase::Held { .. }) {
            return;
        }
        let caller_waits = matches!(
            self.in_flight.take(),
            Some(InFlight {
                sent: Sent::Command(_),
                ..
            })
        );
        self.record_loss(cause, caller_waits);
    }

    /// [`lose`](Self::lose), told whether a call of the caller's (a release
    /// or renew) was on the wire: it is then answered by the loss.
    fn record_loss(&mut self, cause: Error, caller_waits: bool) {
        let Phase::Held { grant, .. } = &self.phase else {
            return;
        };
        let loss = Loss::from_error(&cause);
        self.counters.leases_lost += 1;
        if self.lost.len() == MAX_UNREPORTED_LOSSES {
            self.lost.pop_front();
        }
        self.lost.push_back(LeaseLost {
            key: self.settings.key.clone(),
            kind: self.settings.kind,
            fence: grant.fence,
            reason: loss.clone(),
        });
        let reason = Error::LockLost(loss);
        self.phase = Phase::Lost(reason.clone());
        // A release or renew of the caller's, on the wire or waiting
        // behind the renewal, is answered by the loss.
        if caller_waits || self.queued.take().is_some() {
            self.phase = Phase::Idle;
            self.outcome = Some(Err(reason));
        }
        self.disconnect();
    }

    fn take_loss(&mut self) -> Option<Error> {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Lost(e) => Some(e),
            other => {
                self.phase = other;
                None
            }
        }
    }
}

#[cfg(any(test, feature = "invariants"))]
pub mod invariants;
#[cfg(test)]
mod tests;
