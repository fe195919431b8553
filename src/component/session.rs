//! The state behind one `lock` or `semaphore`, and the instance-wide
//! registry of them that the reactor and the driver renew.
//!
//! Phases: `Idle` → (`acquire` | `enqueue`) → `Held` or `Enqueued`;
//! `Enqueued` → `wait` → `Held` or `Idle`; `Held` → `release` → `Idle`;
//! `Held` → (refused renewal, broken connection, lease end) → `Lost`;
//! `Lost` is reported by the next `release`/`renew`/`wait` and then is `Idle`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use wasip2::io::poll::Pollable;

use super::clock;
use super::transport::Conn;
use crate::lease::{Lease, State};
use crate::protocol::reply::{decode_enqueue, decode_grant, decode_ok, decode_renew, ErrorContext};
use crate::protocol::{check_seconds, Enqueued, Error, Grant, Kind, Request};
use crate::settings::{Settings, REPLY_GRACE_MS};

/// While a renewal is in flight, `next-wakeup` ticks this often (ms): one
/// pollable cannot wait for "reply or lease end" at once.
const IN_FLIGHT_TICK_MS: u64 = 5;
/// Losses kept for `drive` to report; older ones are dropped first.
const MAX_UNREPORTED_LOSSES: usize = 1024;

/// A lease lost since the last `drive`.
pub struct LeaseLost {
    pub key: String,
    pub semaphore: bool,
    pub fence: u64,
    pub reason: Error,
}

enum Phase {
    Idle,
    Enqueued,
    Held { grant: Grant, lease: Lease },
    Lost(Error),
}

/// One lock or semaphore.
pub struct Session {
    settings: Settings,
    conn: Option<Conn>,
    phase: Phase,
    /// How early (a random draw, made once) this session's grants renew.
    /// Once per session rather than per grant, so that a later grant never
    /// renews sooner than an earlier one did: a host's renewal thread then
    /// sleeps on through acquire/release cycles instead of being woken for
    /// each (a fresh draw made every other grant's deadline the sooner).
    jitter: u64,
}

thread_local! {
    static SESSIONS: RefCell<Vec<Weak<RefCell<Session>>>> = const { RefCell::new(Vec::new()) };
    static LOSSES: RefCell<VecDeque<LeaseLost>> = const { RefCell::new(VecDeque::new()) };
}

/// A new idle session, known to the reactor.
pub fn register(settings: Settings) -> Rc<RefCell<Session>> {
    let session = Rc::new(RefCell::new(Session {
        settings,
        conn: None,
        jitter: clock::jitter(),
        phase: Phase::Idle,
    }));
    SESSIONS.with_borrow_mut(|all| {
        all.retain(|weak| weak.strong_count() > 0);
        all.push(Rc::downgrade(&session));
    });
    session
}

/// Runs `f` on every session not in use by the current call.
fn for_each_free(mut f: impl FnMut(&mut Session)) {
    SESSIONS.with_borrow(|all| {
        for session in all.iter().filter_map(Weak::upgrade) {
            if let Ok(mut session) = session.try_borrow_mut() {
                f(&mut session);
            }
        }
    });
}

/// Pollables for everything the free sessions wait on: renewal timers and replies.
pub fn collect_wakeups(out: &mut Vec<Pollable>) {
    for_each_free(|s| {
        if let Phase::Held { lease, .. } = &s.phase {
            out.extend(lease.poll_deadline().map(clock::timer));
            if matches!(lease.state(), State::InFlight { .. }) {
                out.extend(s.conn.as_ref().and_then(Conn::readable));
            }
        }
    });
}

/// Non-blocking: sends due renewals, reads arrived replies, detects losses.
pub fn drive_all(now: u64) {
    for_each_free(|s| s.drive(now));
}

/// When the driver must run next, as a monotonic instant; `None` if nothing is held.
pub fn next_deadline() -> Option<u64> {
    if LOSSES.with_borrow(|l| !l.is_empty()) {
        return Some(0);
    }
    let mut earliest: Option<u64> = None;
    let mut in_flight = false;
    for_each_free(|s| {
        if let Phase::Held { lease, .. } = &s.phase {
            in_flight |= matches!(lease.state(), State::InFlight { .. });
            if let Some(at) = lease.poll_deadline() {
                earliest = Some(earliest.map_or(at, |e| e.min(at)));
            }
        }
    });
    if in_flight {
        earliest = earliest.map(|e| e.min(clock::after_ms(IN_FLIGHT_TICK_MS)));
    }
    earliest
}

/// A pollable ready at [`next_deadline`]; never ready when nothing is held.
pub fn next_wakeup() -> Pollable {
    clock::timer(next_deadline().unwrap_or(u64::MAX))
}

/// The losses found since the last call.
pub fn take_losses() -> Vec<LeaseLost> {
    LOSSES.with_borrow_mut(|l| l.drain(..).collect())
}

fn invalid(msg: &str) -> Error {
    Error::InvalidArgument(msg.into())
}

fn reply_deadline(server_wait_s: u64) -> u64 {
    clock::after_s(server_wait_s, REPLY_GRACE_MS)
}

impl Session {
    /// The settings this session was opened with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Sends `request` on this session's connection (opened or reopened as
    /// needed) and decodes the reply; a decode failure that means the
    /// connection is out of step closes it.
    fn exchange<T>(
        conn: &mut Option<Conn>,
        settings: &Settings,
        request: &Request,
        server_wait_s: u64,
        decode: impl FnOnce(&str) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if !conn.as_mut().is_some_and(Conn::is_reusable) {
            *conn = None;
            *conn = Some(Conn::connect(&settings.server, &settings.connect)?);
        }
        let Some(conn) = conn.as_mut() else {
            return Err(Error::Connection("no connection".into()));
        };
        let line = conn.round_trip(request, reply_deadline(server_wait_s))?;
        decode(&line).map_err(|e| conn.fail_if(e))
    }

    fn ready_to_start(&mut self) -> Result<(), Error> {
        match self.phase {
            Phase::Held { .. } => Err(invalid("already held: release it first")),
            Phase::Enqueued => Err(invalid("already enqueued: call wait")),
            Phase::Idle | Phase::Lost(_) => {
                self.phase = Phase::Idle;
                Ok(())
            }
        }
    }

    fn hold(&mut self, grant: Grant) {
        let lease = Lease::new(
            clock::now(),
            grant.lease_s,
            self.settings.renew_ratio,
            self.jitter,
        );
        self.phase = Phase::Held { grant, lease };
    }

    /// `l`/`sl`: `true` when granted, `false` on the server's timeout.
    pub fn acquire(&mut self) -> Result<bool, Error> {
        self.ready_to_start()?;
        let s = &self.settings;
        let request = Request::Acquire {
            kind: s.kind,
            key: &s.key,
            timeout_s: s.acquire_timeout_s,
            lease_ttl_s: s.lease_ttl_s,
        };
        let granted = Self::exchange(
            &mut self.conn,
            s,
            &request,
            s.acquire_timeout_s,
            decode_grant,
        )?;
        match granted {
            Some(grant) => {
                self.hold(grant);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// `e`/`se`.
    pub fn enqueue(&mut self) -> Result<Enqueued, Error> {
        self.ready_to_start()?;
        let s = &self.settings;
        let request = Request::Enqueue {
            kind: s.kind,
            key: &s.key,
            lease_ttl_s: s.lease_ttl_s,
        };
        let answer = Self::exchange(&mut self.conn, s, &request, 0, decode_enqueue)?;
        match &answer {
            Enqueued::Acquired(grant) => self.hold(grant.clone()),
            Enqueued::Queued => self.phase = Phase::Enqueued,
        }
        Ok(answer)
    }

    /// `w`/`sw` after a queued enqueue; `true` at once after a fast-path grant.
    pub fn wait(&mut self, timeout_s: Option<u64>) -> Result<bool, Error> {
        let timeout_s = check_seconds(
            timeout_s.unwrap_or(self.settings.acquire_timeout_s),
            "wait timeout",
        )?;
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            held @ Phase::Held { .. } => {
                self.phase = held;
                return Ok(true);
            }
            Phase::Lost(e) => return Err(e),
            Phase::Idle => return Err(invalid("wait needs a prior enqueue")),
            Phase::Enqueued => {}
        }
        // The queue place belongs to the connection: on a new one the server
        // would answer `error_not_enqueued`, so say what really happened.
        if !self.conn.as_mut().is_some_and(Conn::is_reusable) {
            self.conn = None;
            return Err(Error::Connection(
                "the connection closed while queued; enqueue again".into(),
            ));
        }
        let s = &self.settings;
        let request = Request::Wait {
            space: s.kind.space(),
            key: &s.key,
            timeout_s,
        };
        match Self::exchange(&mut self.conn, s, &request, timeout_s, decode_grant)? {
            Some(grant) => {
                self.hold(grant);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Finishes a renewal in flight, so the connection is free for a request.
    fn settle(&mut self) -> Result<(), Error> {
        let Phase::Held { lease, .. } = &self.phase else {
            return Ok(());
        };
        if let (State::InFlight { .. }, Some(deadline)) = (lease.state(), lease.poll_deadline()) {
            let line = match self.conn.as_mut() {
                Some(conn) => conn.wait_line(deadline),
                None => Err(Error::Connection("no connection".into())),
            };
            self.handle_renew_reply(line.and_then(|l| decode_renew(&l)));
        }
        match &self.phase {
            Phase::Lost(e) => Err(e.clone()),
            _ => Ok(()),
        }
    }

    fn handle_renew_reply(&mut self, reply: Result<u64, Error>) {
        match reply {
            Ok(remaining) => {
                if let Phase::Held { lease, .. } = &mut self.phase {
                    lease.handle_renewed(remaining, clock::jitter());
                }
            }
            Err(e) => self.lose(e),
        }
    }

    /// Marks the lease lost, queues the report for `drive`, closes the connection.
    fn lose(&mut self, reason: Error) {
        let Phase::Held { grant, .. } = &self.phase else {
            return;
        };
        let reason = match reason {
            lost @ Error::LockLost(_) => lost,
            other => Error::LockLost(other.to_string()),
        };
        let lost = LeaseLost {
            key: self.settings.key.clone(),
            semaphore: matches!(self.settings.kind, Kind::Semaphore { .. }),
            fence: grant.fence,
            reason: reason.clone(),
        };
        LOSSES.with_borrow_mut(|l| {
            if l.len() == MAX_UNREPORTED_LOSSES {
                l.pop_front();
            }
            l.push_back(lost);
        });
        self.phase = Phase::Lost(reason);
        self.conn = None;
    }

    /// Non-blocking renewal work for this session.
    pub fn drive(&mut self, now: u64) {
        let Phase::Held { grant, lease } = &mut self.phase else {
            return;
        };
        let Some(conn) = self.conn.as_mut() else {
            return self.lose(Error::Connection("no connection".into()));
        };
        match lease.state() {
            State::InFlight { .. } => match conn.poll_line() {
                Ok(Some(line)) => return self.handle_renew_reply(decode_renew(&line)),
                Ok(None) => {}
                Err(e) => return self.lose(e),
            },
            State::Scheduled { .. } => {
                if lease.poll_renew(now) {
                    let request = Request::Renew {
                        space: self.settings.kind.space(),
                        key: &self.settings.key,
                        token: &grant.token,
                        lease_ttl_s: self.settings.lease_ttl_s,
                    };
                    if let Err(e) = conn.send(&request, clock::after_ms(REPLY_GRACE_MS)) {
                        return self.lose(e);
                    }
                }
            }
            State::Lost(_) => {}
        }
        if let Phase::Held { lease, .. } = &mut self.phase {
            if lease.handle_timeout(now) {
                let State::Lost(reason) = lease.state().clone() else {
                    return;
                };
                self.lose(reason);
            }
        }
    }

    /// `r`/`sr`: `true` when the server confirmed, `false` if nothing was held.
    pub fn release(&mut self) -> Result<bool, Error> {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Idle => return Ok(false),
            Phase::Lost(e) => return Err(e),
            Phase::Enqueued => {
                // Closing the connection is how a queued waiter leaves the queue.
                self.conn = None;
                return Ok(false);
            }
            held @ Phase::Held { .. } => self.phase = held,
        }
        if let Err(lost) = self.settle() {
            self.phase = Phase::Idle;
            return Err(lost);
        }
        let Phase::Held { grant, .. } = std::mem::replace(&mut self.phase, Phase::Idle) else {
            return Ok(false);
        };
        let s = &self.settings;
        let request = Request::Release {
            space: s.kind.space(),
            key: &s.key,
            token: &grant.token,
        };
        match Self::exchange(&mut self.conn, s, &request, 0, |l| {
            decode_ok(l, ErrorContext::Token)
        }) {
            Ok(()) => Ok(true),
            Err(Error::Server(why)) => Err(Error::LockLost(format!("at release: {why}"))),
            Err(e) => Err(e),
        }
    }

    /// Reports a loss once: the session is idle afterwards.
    fn take_loss(&mut self) -> Option<Error> {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Lost(e) => Some(e),
            other => {
                self.phase = other;
                None
            }
        }
    }

    /// `n`/`sn` now; returns the remaining seconds.
    pub fn renew(&mut self) -> Result<u64, Error> {
        if let Some(lost) = self.take_loss() {
            return Err(lost);
        }
        if !matches!(self.phase, Phase::Held { .. }) {
            return Err(invalid("renew needs a held lock"));
        }
        if let Err(lost) = self.settle() {
            self.phase = Phase::Idle;
            return Err(lost);
        }
        let Phase::Held { grant, lease } = &mut self.phase else {
            return Err(invalid("renew needs a held lock"));
        };
        lease.start_renew(clock::now());
        let s = &self.settings;
        let request = Request::Renew {
            space: s.kind.space(),
            key: &s.key,
            token: &grant.token,
            lease_ttl_s: s.lease_ttl_s,
        };
        let reply = Self::exchange(&mut self.conn, s, &request, 0, decode_renew);
        let remaining = reply.clone();
        self.handle_renew_reply(reply);
        match self.take_loss() {
            Some(lost) => Err(lost),
            None => remaining,
        }
    }

    /// Drops the connection without a release.
    pub fn close(&mut self) {
        self.conn = None;
        self.phase = Phase::Idle;
    }

    /// The grant, while held and not lost (drives the lease first).
    pub fn grant(&mut self) -> Option<&Grant> {
        self.drive(clock::now());
        match &self.phase {
            Phase::Held { grant, .. } => Some(grant),
            _ => None,
        }
    }
}

impl Drop for Session {
    /// A held grant is released on drop: a release is never skipped on a
    /// path that could send it. Errors have nowhere to go; the connection
    /// closes right after, which makes the server release anyway.
    fn drop(&mut self) {
        if matches!(self.phase, Phase::Held { .. }) {
            let _ = self.release();
        }
    }
}
