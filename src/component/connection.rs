//! The exported low-level `connection`: one protocol command per method, no renewal.

use std::cell::RefCell;

use super::api::connection::{GuestConnection, Stats};
use super::api::types::{Enqueued, Error, Grant, Server, Setting};
use super::dial::{self, Dial};
use super::transport::Conn;
use super::{clock, convert, probe};
use crate::protocol::reply::{decode_enqueue, decode_grant, decode_ok, decode_renew, ErrorContext};
use crate::protocol::{self as p, Kind, Request, Space};
use crate::settings::REPLY_GRACE_MS;

/// One open connection; after a transport fault every call returns that fault.
pub struct Connection(RefCell<Conn>);

impl Connection {
    /// Sends `request`, waits up to `server_wait_s` plus the grace, decodes.
    fn call<T>(
        &self,
        request: Request,
        server_wait_s: u64,
        decode: impl FnOnce(&str) -> Result<T, p::Error>,
    ) -> Result<T, Error> {
        let mut conn = self.0.borrow_mut();
        let deadline = clock::after_s(server_wait_s, REPLY_GRACE_MS);
        let line = conn
            .round_trip(&request, deadline)
            .map_err(|e| probe::explain_blocking(&conn, e, deadline))?;
        Ok(decode(&line).map_err(|e| conn.fail_if(e))?)
    }
}

fn semaphore(limit: u32) -> Result<Kind, p::Error> {
    std::num::NonZeroU32::new(limit)
        .map(|limit| Kind::Semaphore { limit })
        .ok_or_else(|| p::Error::InvalidArgument("semaphore limit must be above 0".into()))
}

fn grant(g: Option<p::Grant>) -> Option<Grant> {
    g.map(Into::into)
}

impl GuestConnection for Connection {
    fn open(
        server: Server,
        settings: Vec<Setting>,
    ) -> Result<super::api::connection::Connection, Error> {
        let dial = Dial::new(server.into(), convert::connect_settings(settings)?)?;
        let conn = dial::connect(&dial)?;
        Ok(super::api::connection::Connection::new(Connection(
            RefCell::new(conn),
        )))
    }

    fn lock(
        &self,
        key: String,
        timeout_s: u64,
        lease_ttl_s: Option<u64>,
    ) -> Result<Option<Grant>, Error> {
        let request = Request::Acquire {
            kind: Kind::Lock,
            key: &key,
            timeout_s,
            lease_ttl_s,
        };
        self.call(request, timeout_s, decode_grant).map(grant)
    }

    fn unlock(&self, key: String, token: String) -> Result<(), Error> {
        let request = Request::Release {
            space: Space::Lock,
            key: &key,
            token: &token,
        };
        self.call(request, 0, |l| decode_ok(l, ErrorContext::Token))
    }

    fn renew(&self, key: String, token: String, lease_ttl_s: Option<u64>) -> Result<u64, Error> {
        let request = Request::Renew {
            space: Space::Lock,
            key: &key,
            token: &token,
            lease_ttl_s,
        };
        self.call(request, 0, decode_renew)
    }

    fn enqueue(&self, key: String, lease_ttl_s: Option<u64>) -> Result<Enqueued, Error> {
        let request = Request::Enqueue {
            kind: Kind::Lock,
            key: &key,
            lease_ttl_s,
        };
        self.call(request, 0, decode_enqueue).map(Into::into)
    }

    fn wait(&self, key: String, timeout_s: u64) -> Result<Option<Grant>, Error> {
        let request = Request::Wait {
            space: Space::Lock,
            key: &key,
            timeout_s,
        };
        self.call(request, timeout_s, decode_grant).map(grant)
    }

    fn sem_acquire(
        &self,
        key: String,
        timeout_s: u64,
        limit: u32,
        lease_ttl_s: Option<u64>,
    ) -> Result<Option<Grant>, Error> {
        let request = Request::Acquire {
            kind: semaphore(limit)?,
            key: &key,
            timeout_s,
            lease_ttl_s,
        };
        self.call(request, timeout_s, decode_grant).map(grant)
    }

    fn sem_release(&self, key: String, token: String) -> Result<(), Error> {
        let request = Request::Release {
            space: Space::Semaphore,
            key: &key,
            token: &token,
        };
        self.call(request, 0, |l| decode_ok(l, ErrorContext::Token))
    }

    fn sem_renew(
        &self,
        key: String,
        token: String,
        lease_ttl_s: Option<u64>,
    ) -> Result<u64, Error> {
        let request = Request::Renew {
            space: Space::Semaphore,
            key: &key,
            token: &token,
            lease_ttl_s,
        };
        self.call(request, 0, decode_renew)
    }

    fn sem_enqueue(
        &self,
        key: String,
        limit: u32,
        lease_ttl_s: Option<u64>,
    ) -> Result<Enqueued, Error> {
        let request = Request::Enqueue {
            kind: semaphore(limit)?,
            key: &key,
            lease_ttl_s,
        };
        self.call(request, 0, decode_enqueue).map(Into::into)
    }

    fn sem_wait(&self, key: String, timeout_s: u64) -> Result<Option<Grant>, Error> {
        let request = Request::Wait {
            space: Space::Semaphore,
            key: &key,
            timeout_s,
        };
        self.call(request, timeout_s, decode_grant).map(grant)
    }

    fn ping(&self) -> Result<(), Error> {
        self.call(Request::Ping, 0, |l| decode_ok(l, ErrorContext::Ping))
    }

    fn stats(&self) -> Result<Stats, Error> {
        self.call(Request::Stats, 0, p::stats::decode_stats)
            .map(Into::into)
    }

    fn close(&self) {
        self.0
            .borrow_mut()
            .fail(p::Error::Connection("closed by the caller".into()));
    }
}
