//! The lock table: holders, FIFO queues and two-phase entries, with no I/O
//! and no clock (every call takes `now`). A lock is a resource of limit 1;
//! in dialect v1 locks and semaphores share one key space, in v2 each has
//! its own.
//!
//! A waiter's grant travels over a oneshot channel: the grant is decided
//! here, under the table's mutex, and the waiting connection picks it up.
//! A waiter that gives up (timeout, shutdown) takes the mutex and either
//! finds itself still queued (and leaves) or finds the grant already sent
//! (and takes it): nothing granted is ever lost between the two.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::oneshot;

use crate::log;
use crate::tokens::Tokens;
use crate::wire::Space;
use crate::Dialect;

/// A status suffix: the reply is `error_<reason>`, or `error` for `None`.
pub type Refusal = Option<&'static str>;

/// Server-wide limits the table enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Keys (idle ones included, until collected).
    pub max_locks: usize,
    /// Waiters per key; 0 = unlimited.
    pub max_waiters: usize,
}

/// Where a resource lives: v1 has one key space, v2 two.
type ResKey = (Space, String);

struct Holder {
    conn: u64,
    expires: Instant,
}

struct Waiter {
    id: u64,
    conn: u64,
    lease: Duration,
    grant: oneshot::Sender<String>,
}

struct Resource {
    limit: u32,
    /// Token → holder.
    holders: HashMap<String, Holder>,
    waiters: VecDeque<Waiter>,
    last_activity: Instant,
}

/// A connection's `e` on a key, until its `w`.
struct Enqueued {
    lease: Duration,
    /// The token of a fast-path grant (`acquired`).
    token: Option<String>,
    /// The queued waiter, until a `w` takes it to wait on.
    waiter: Option<Pending>,
}

/// Who asks about what: a connection, and a key in a space.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The asking connection.
    pub conn: u64,
    /// Lock or semaphore commands.
    pub space: Space,
    /// The key.
    pub key: &'a str,
}

/// A queued waiter, as its connection holds it while it waits.
pub struct Pending {
    /// The waiter's id in the queue.
    id: u64,
    /// Where its grant arrives.
    pub rx: oneshot::Receiver<String>,
    /// The lease to start once the grant is taken.
    pub lease: Duration,
}

/// What `acquire` did.
pub enum Acquired {
    /// A slot at once.
    Now(String),
    /// Queued: the grant arrives on the receiver (see [`Table::give_up`]).
    Queued(Pending),
    /// No slot and asked not to wait (timeout 0): `timeout`.
    NotNow,
}

/// What `w` starts with.
pub enum WaitStart {
    /// Granted (fast path or already granted): the token and its lease.
    Now(String, Duration),
    /// Still queued.
    Pending(Pending),
}

/// The lock table.
pub struct Table {
    dialect: Dialect,
    limits: Limits,
    resources: HashMap<ResKey, Resource>,
    enqueued: HashMap<(u64, ResKey), Enqueued>,
    tokens: Tokens,
    next_waiter: u64,
}

impl Table {
    /// An empty table.
    pub fn new(dialect: Dialect, limits: Limits, tokens: Tokens) -> Table {
        Table {
            dialect,
            limits,
            resources: HashMap::new(),
            enqueued: HashMap::new(),
            tokens,
            next_waiter: 0,
        }
    }

    fn res_key(&self, space: Space, key: &str) -> ResKey {
        match self.dialect {
            Dialect::V1 => (Space::Lock, key.to_string()),
            Dialect::V2 => (space, key.to_string()),
        }
    }

    /// The common start of `l` and `e`: the resource of `rk` (created with
    /// `limit` if new, else its limit checked), its run-out leases evicted,
    /// then a slot now (`Some(token)`) if one is free and nobody queues, or
    /// `None` when the caller must queue (the queue's cap checked).
    fn slot_now(
        &mut self,
        rk: &ResKey,
        conn: u64,
        lease: Duration,
        limit: u32,
        now: Instant,
    ) -> Result<Option<String>, Refusal> {
        self.admit(rk, limit, now)?;
        self.evict_expired(rk, now, "evicting expired lease on acquire");
        if let Some(token) = self.try_fast_path(rk, conn, lease, now) {
            return Ok(Some(token));
        }
        self.check_waiters(rk)?;
        Ok(None)
    }

    /// Creates the resource of `rk` with `limit` if new, else checks its limit.
    fn admit(&mut self, rk: &ResKey, limit: u32, now: Instant) -> Result<(), Refusal> {
        if !self.resources.contains_key(rk) {
            if self.resources.len() >= self.limits.max_locks {
                return Err(Some("max_locks"));
            }
            self.resources.insert(
                rk.clone(),
                Resource {
                    limit,
                    holders: HashMap::new(),
                    waiters: VecDeque::new(),
                    last_activity: now,
                },
            );
        }
        let res = self.resources.get_mut(rk).ok_or(None)?;
        if res.limit != limit {
            return Err(Some("limit_mismatch"));
        }
        res.last_activity = now;
        Ok(())
    }

    /// `l`/`sl`: a slot now if one is free and nobody queues, else a place
    /// in the queue (or `NotNow` when `may_wait` is false).
    pub fn acquire(
        &mut self,
        at: Target,
        lease: Duration,
        limit: u32,
        may_wait: bool,
        now: Instant,
    ) -> Result<Acquired, Refusal> {
        let rk = self.res_key(at.space, at.key);
        if let Some(token) = self.slot_now(&rk, at.conn, lease, limit, now)? {
            return Ok(Acquired::Now(token));
        }
        if !may_wait {
            return Ok(Acquired::NotNow);
        }
        Ok(Acquired::Queued(self.push_waiter(&rk, at.conn, lease)))
    }

    /// Called when a queued `l` stops waiting without its grant (timeout,
    /// shutdown): leaves the queue, or returns the grant that came first.
    pub fn give_up(&mut self, at: Target, pending: &mut Pending, now: Instant) -> Option<String> {
        let rk = self.res_key(at.space, at.key);
        let res = self.resources.get_mut(&rk)?;
        res.last_activity = now;
        if let Ok(token) = pending.rx.try_recv() {
            return Some(token);
        }
        res.waiters.retain(|w| w.id != pending.id);
        None
    }

    /// Marks activity on a key (a queued `l` got its grant).
    pub fn touch(&mut self, at: Target, now: Instant) {
        let rk = self.res_key(at.space, at.key);
        if let Some(res) = self.resources.get_mut(&rk) {
            res.last_activity = now;
        }
    }

    /// `e`/`se`: `acquired` with a token, or `queued`.
    pub fn enqueue(
        &mut self,
        at: Target,
        lease: Duration,
        limit: u32,
        now: Instant,
    ) -> Result<Option<String>, Refusal> {
        let conn = at.conn;
        let rk = self.res_key(at.space, at.key);
        let ek = (conn, rk.clone());
        if self.enqueued.contains_key(&ek) {
            return Err(Some("already_enqueued"));
        }
        let token = self.slot_now(&rk, conn, lease, limit, now)?;
        let waiter = match token {
            Some(_) => None,
            None => Some(self.push_waiter(&rk, conn, lease)),
        };
        let entry = Enqueued {
            lease,
            token: token.clone(),
            waiter,
        };
        self.enqueued.insert(ek, entry);
        Ok(token)
    }

    /// `w`/`sw`: what this connection's `e` on `key` has become.
    pub fn wait_start(&mut self, at: Target, now: Instant) -> Result<WaitStart, Refusal> {
        let rk = self.res_key(at.space, at.key);
        let ek = (at.conn, rk.clone());
        let entry = self.enqueued.get_mut(&ek).ok_or(Some("not_enqueued"))?;
        let lease = entry.lease;
        if let Some(token) = entry.token.clone() {
            // Granted at enqueue: still held only if its lease has not run out.
            self.enqueued.remove(&ek);
            let Some(res) = self.resources.get_mut(&rk) else {
                return Err(Some("lease_expired"));
            };
            res.last_activity = now;
            let Some(holder) = res.holders.get_mut(&token) else {
                return Err(Some("lease_expired"));
            };
            if now >= holder.expires {
                res.holders.remove(&token);
                self.grant_next(&rk, now);
                return Err(Some("lease_expired"));
            }
            holder.expires = now + lease;
            return Ok(WaitStart::Now(token, lease));
        }
        let Some(mut pending) = entry.waiter.take() else {
            // A `w` is already waiting on this entry (cannot happen on one
            // connection, which waits for each reply): refuse.
            return Err(None);
        };
        if let Ok(token) = pending.rx.try_recv() {
            self.enqueued.remove(&ek);
            self.start_lease(&rk, &token, lease, now);
            return Ok(WaitStart::Now(token, lease));
        }
        Ok(WaitStart::Pending(pending))
    }

    /// A pending `w` ends: with its grant (`Some`), or without (timeout,
    /// shutdown), when the grant may still have come first.
    pub fn wait_end(
        &mut self,
        at: Target,
        pending: &mut Pending,
        granted: Option<String>,
        now: Instant,
    ) -> Option<String> {
        let rk = self.res_key(at.space, at.key);
        self.enqueued.remove(&(at.conn, rk.clone()));
        let token = granted.or_else(|| pending.rx.try_recv().ok());
        match &token {
            Some(token) => self.start_lease(&rk, token, pending.lease, now),
            None => {
                if let Some(res) = self.resources.get_mut(&rk) {
                    res.last_activity = now;
                    res.waiters.retain(|w| w.id != pending.id);
                }
            }
        }
        token
    }

    /// `r`/`sr`.
    pub fn release(&mut self, space: Space, key: &str, token: &str, now: Instant) -> bool {
        let rk = self.res_key(space, key);
        let Some(res) = self.resources.get_mut(&rk) else {
            return false;
        };
        res.last_activity = now;
        let Some(holder) = res.holders.remove(token) else {
            return false;
        };
        self.forget_enqueued_grant(holder.conn, &rk, token);
        self.grant_next(&rk, now);
        true
    }

    /// `n`/`sn`: the new lease's seconds, or `None` (`error`) for a token
    /// not held or a lease already run out (then evicted).
    pub fn renew(
        &mut self,
        space: Space,
        key: &str,
        token: &str,
        lease: Duration,
        now: Instant,
    ) -> Option<u64> {
        let rk = self.res_key(space, key);
        let res = self.resources.get_mut(&rk)?;
        res.last_activity = now;
        let holder = res.holders.get_mut(token)?;
        if now >= holder.expires {
            let conn = holder.conn;
            log::warn("renew rejected (already expired)", &[("key", key)]);
            res.holders.remove(token);
            self.forget_enqueued_grant(conn, &rk, token);
            self.grant_next(&rk, now);
            return None;
        }
        holder.expires = now + lease;
        Some(lease.as_secs())
    }

    /// A connection ended: its queue places and two-phase entries go, and
    /// with `release` its slots; the next waiters are granted.
    pub fn disconnect(&mut self, conn: u64, release: bool, now: Instant) {
        self.enqueued.retain(|(c, _), _| *c != conn);
        let mut freed = Vec::new();
        for (rk, res) in &mut self.resources {
            res.waiters.retain(|w| w.conn != conn);
            if !release {
                continue;
            }
            let before = res.holders.len();
            res.holders.retain(|_, h| h.conn != conn);
            if res.holders.len() != before {
                log::warn(
                    "disconnect cleanup: releasing",
                    &[("key", &rk.1), ("conn_id", &conn.to_string())],
                );
                res.last_activity = now;
                freed.push(rk.clone());
            }
        }
        for rk in freed {
            self.grant_next(&rk, now);
        }
    }

    /// The lease sweep: every lease run out is evicted, its slot granted on.
    pub fn sweep(&mut self, now: Instant) {
        let keys: Vec<ResKey> = self
            .resources
            .iter()
            .filter(|(_, r)| r.holders.values().any(|h| now >= h.expires))
            .map(|(k, _)| k.clone())
            .collect();
        for rk in keys {
            self.evict_expired(&rk, now, "lease expired");
        }
    }

    /// Forgets keys idle for longer than `max_idle` (no holder, no waiter).
    pub fn collect_idle(&mut self, now: Instant, max_idle: Duration) {
        self.resources.retain(|_, r| {
            !(r.holders.is_empty()
                && r.waiters.is_empty()
                && now.saturating_duration_since(r.last_activity) > max_idle)
        });
    }

    /// The `stats` reply's JSON.
    pub fn stats(&self, connections: usize, now: Instant) -> Stats {
        let mut stats = Stats {
            connections,
            ..Stats::default()
        };
        for ((_, key), res) in &self.resources {
            let waiters = res.waiters.len();
            // Listed by limit, not by space, in both dialects: in v2 a
            // limit-1 semaphore is under `locks` beside a lock of its key.
            let is_lock = res.limit == 1;
            let idle = || IdleInfo {
                key: key.clone(),
                idle_s: now
                    .saturating_duration_since(res.last_activity)
                    .as_secs_f64(),
            };
            if is_lock {
                if let Some(h) = res.holders.values().next() {
                    stats.locks.push(LockInfo {
                        key: key.clone(),
                        owner_conn_id: h.conn,
                        lease_expires_in_s: h.expires.saturating_duration_since(now).as_secs_f64(),
                        waiters,
                    });
                } else if waiters > 0 {
                    stats.locks.push(LockInfo {
                        key: key.clone(),
                        owner_conn_id: 0,
                        lease_expires_in_s: 0.0,
                        waiters,
                    });
                } else {
                    stats.idle_locks.push(idle());
                }
            } else if !res.holders.is_empty() || waiters > 0 {
                stats.semaphores.push(SemInfo {
                    key: key.clone(),
                    limit: res.limit,
                    holders: res.holders.len(),
                    waiters,
                });
            } else {
                stats.idle_semaphores.push(idle());
            }
        }
        stats
    }

    fn try_fast_path(
        &mut self,
        rk: &ResKey,
        conn: u64,
        lease: Duration,
        now: Instant,
    ) -> Option<String> {
        let res = self.resources.get_mut(rk)?;
        if res.holders.len() >= res.limit as usize || !res.waiters.is_empty() {
            return None;
        }
        let token = self.tokens.next();
        let expires = now + lease;
        res.holders.insert(token.clone(), Holder { conn, expires });
        Some(token)
    }

    fn check_waiters(&self, rk: &ResKey) -> Result<(), Refusal> {
        let max = self.limits.max_waiters;
        match self.resources.get(rk) {
            Some(res) if max > 0 && res.waiters.len() >= max => Err(Some("max_waiters")),
            _ => Ok(()),
        }
    }

    fn push_waiter(&mut self, rk: &ResKey, conn: u64, lease: Duration) -> Pending {
        self.next_waiter += 1;
        let id = self.next_waiter;
        let (grant, rx) = oneshot::channel();
        if let Some(res) = self.resources.get_mut(rk) {
            res.waiters.push_back(Waiter {
                id,
                conn,
                lease,
                grant,
            });
        }
        Pending { id, rx, lease }
    }

    /// Gives free slots to the waiters at the head of the queue.
    fn grant_next(&mut self, rk: &ResKey, now: Instant) {
        let Some(res) = self.resources.get_mut(rk) else {
            return;
        };
        while res.holders.len() < res.limit as usize {
            let Some(waiter) = res.waiters.pop_front() else {
                break;
            };
            let token = self.tokens.next();
            // A waiter whose receiver is gone has left: skip it.
            if waiter.grant.send(token.clone()).is_ok() {
                let expires = now + waiter.lease;
                let conn = waiter.conn;
                res.holders.insert(token, Holder { conn, expires });
                res.last_activity = now;
            }
        }
    }

    /// The lease of a token granted to a waiter starts when it is taken.
    fn start_lease(&mut self, rk: &ResKey, token: &str, lease: Duration, now: Instant) {
        if let Some(res) = self.resources.get_mut(rk) {
            if let Some(holder) = res.holders.get_mut(token) {
                holder.expires = now + lease;
            }
            res.last_activity = now;
        }
    }

    fn evict_expired(&mut self, rk: &ResKey, now: Instant, why: &str) {
        let Some(res) = self.resources.get_mut(rk) else {
            return;
        };
        let expired: Vec<(String, u64)> = res
            .holders
            .iter()
            .filter(|(_, h)| now >= h.expires)
            .map(|(t, h)| (t.clone(), h.conn))
            .collect();
        if expired.is_empty() {
            return;
        }
        for (token, conn) in &expired {
            log::warn(why, &[("key", &rk.1), ("conn", &conn.to_string())]);
            res.holders.remove(token);
        }
        res.last_activity = now;
        for (token, conn) in &expired {
            self.forget_enqueued_grant(*conn, rk, token);
        }
        self.grant_next(rk, now);
    }

    /// A fast-path grant that ends before its `w` leaves no entry behind
    /// (so that `w` then answers `error_not_enqueued`).
    fn forget_enqueued_grant(&mut self, conn: u64, rk: &ResKey, token: &str) {
        let ek = (conn, rk.clone());
        if self
            .enqueued
            .get(&ek)
            .is_some_and(|e| e.token.as_deref() == Some(token))
        {
            self.enqueued.remove(&ek);
        }
    }
}

/// The `stats` JSON, field for field as dflockd sends it.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    connections: usize,
    locks: Vec<LockInfo>,
    semaphores: Vec<SemInfo>,
    idle_locks: Vec<IdleInfo>,
    idle_semaphores: Vec<IdleInfo>,
}

#[derive(Debug, Serialize)]
struct LockInfo {
    key: String,
    owner_conn_id: u64,
    lease_expires_in_s: f64,
    waiters: usize,
}

#[derive(Debug, Serialize)]
struct SemInfo {
    key: String,
    limit: u32,
    holders: usize,
    waiters: usize,
}

#[derive(Debug, Serialize)]
struct IdleInfo {
    key: String,
    idle_s: f64,
}

#[cfg(test)]
mod tests;
