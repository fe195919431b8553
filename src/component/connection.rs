//! The exported low-level `connection`: one protocol command per method, no
//! renewal. Each method, blocking or started, goes to its [`ConnClient`].

use std::cell::RefCell;
use std::rc::Rc;

use super::api::connection::{
    self as wc, AcquireRequest, ConnectionCommand, EnqueueRequest, GuestConnection, ReleaseRequest,
    RenewRequest, SemAcquireRequest, SemEnqueueRequest, WaitRequest,
};
use super::api::types::{Enqueued, Error, Grant, Server, Setting};
use super::conn_client::{Command, ConnClient};
use super::dial::Dial;
use super::{convert, events, reactor};
use crate::protocol::{self as p, Answer, Kind, Request, Space};

/// One connection: its client, which the reactor also reaches (weakly)
/// to drive a started command.
pub struct Connection(Rc<RefCell<ConnClient>>);

fn semaphore(limit: u32) -> Result<Kind, p::Error> {
    std::num::NonZeroU32::new(limit)
        .map(|limit| Kind::Semaphore { limit })
        .ok_or_else(|| p::Error::InvalidArgument("semaphore limit must be above 0".into()))
}

/// A client that answered a command with another command's answer.
fn unexpected(_: Answer) -> Error {
    p::Error::Protocol("internal: the connection answered with another command's answer".into())
        .into()
}

impl Connection {
    /// Runs `f` on the client, then lets the reactor re-read what it waits for.
    fn with<R>(&self, f: impl FnOnce(&mut ConnClient) -> R) -> R {
        let mut client = self.0.borrow_mut();
        let out = f(&mut client);
        let slot = client.slot();
        drop(client);
        reactor::touch(&self.0, slot);
        out
    }

    /// Runs `command` to its answer, blocking.
    fn run(&self, command: &ConnectionCommand) -> Result<Answer, Error> {
        let command = match request(command)? {
            None => Command::Connect,
            Some(request) => Command::Send(request),
        };
        self.with(|c| c.run(command)).map_err(Into::into)
    }

    fn granted(&self, command: ConnectionCommand) -> Result<Option<Grant>, Error> {
        match self.run(&command)? {
            Answer::Acquired(grant) => Ok(grant.map(Into::into)),
            other => Err(unexpected(other)),
        }
    }

    fn done(&self, command: ConnectionCommand) -> Result<(), Error> {
        match self.run(&command)? {
            Answer::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    fn renewed(&self, command: ConnectionCommand) -> Result<u64, Error> {
        match self.run(&command)? {
            Answer::Renewed(remaining) => Ok(remaining),
            other => Err(unexpected(other)),
        }
    }

    fn enqueued(&self, command: ConnectionCommand) -> Result<Enqueued, Error> {
        match self.run(&command)? {
            Answer::Enqueued(answer) => Ok(answer.into()),
            other => Err(unexpected(other)),
        }
    }
}

fn release(space: Space, r: &ReleaseRequest) -> Request<'_> {
    Request::Release {
        space,
        key: &r.key,
        token: &r.token,
    }
}

fn renew(space: Space, r: &RenewRequest) -> Request<'_> {
    Request::Renew {
        space,
        key: &r.key,
        token: &r.token,
        lease_ttl_s: r.lease_ttl_s,
    }
}

fn wait(space: Space, r: &WaitRequest) -> Request<'_> {
    Request::Wait {
        space,
        key: &r.key,
        timeout_s: r.timeout_s,
    }
}

/// The request a started command sends (`None` for `connect`); its
/// strings borrow from `command`.
fn request(command: &ConnectionCommand) -> Result<Option<Request<'_>>, p::Error> {
    Ok(Some(match command {
        ConnectionCommand::Connect => return Ok(None),
        ConnectionCommand::Lock(r) => Request::Acquire {
            kind: Kind::Lock,
            key: &r.key,
            timeout_s: r.timeout_s,
            lease_ttl_s: r.lease_ttl_s,
        },
        ConnectionCommand::Unlock(r) => release(Space::Lock, r),
        ConnectionCommand::Renew(r) => renew(Space::Lock, r),
        ConnectionCommand::Enqueue(r) => Request::Enqueue {
            kind: Kind::Lock,
            key: &r.key,
            lease_ttl_s: r.lease_ttl_s,
        },
        ConnectionCommand::Wait(r) => wait(Space::Lock, r),
        ConnectionCommand::SemAcquire(r) => Request::Acquire {
            kind: semaphore(r.limit)?,
            key: &r.key,
            timeout_s: r.timeout_s,
            lease_ttl_s: r.lease_ttl_s,
        },
        ConnectionCommand::SemRelease(r) => release(Space::Semaphore, r),
        ConnectionCommand::SemRenew(r) => renew(Space::Semaphore, r),
        ConnectionCommand::SemEnqueue(r) => Request::Enqueue {
            kind: semaphore(r.limit)?,
            key: &r.key,
            lease_ttl_s: r.lease_ttl_s,
        },
        ConnectionCommand::SemWait(r) => wait(Space::Semaphore, r),
        ConnectionCommand::Ping => Request::Ping,
        ConnectionCommand::Stats => Request::Stats,
    }))
}

impl GuestConnection for Connection {
    fn create(server: Server, settings: Vec<Setting>) -> Result<wc::Connection, Error> {
        let dial = Dial::new(server.into(), convert::connect_settings(settings)?)?;
        Ok(wc::Connection::new(Connection(ConnClient::create(dial))))
    }

    fn connect(&self) -> Result<(), Error> {
        match self.run(&ConnectionCommand::Connect)? {
            Answer::Connected => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    fn start(&self, command: ConnectionCommand) -> Result<u64, Error> {
        let command = match request(&command)? {
            None => Command::Connect,
            Some(request) => Command::Send(request),
        };
        let ticket = events::new_ticket();
        self.with(|c| c.start(ticket, command))?;
        Ok(ticket)
    }

    fn lock(
        &self,
        key: String,
        timeout_s: u64,
        lease_ttl_s: Option<u64>,
    ) -> Result<Option<Grant>, Error> {
        self.granted(ConnectionCommand::Lock(AcquireRequest {
            key,
            timeout_s,
            lease_ttl_s,
        }))
    }

    fn unlock(&self, key: String, token: String) -> Result<(), Error> {
        self.done(ConnectionCommand::Unlock(ReleaseRequest { key, token }))
    }

    fn renew(&self, key: String, token: String, lease_ttl_s: Option<u64>) -> Result<u64, Error> {
        let request = RenewRequest {
            key,
            token,
            lease_ttl_s,
        };
        self.renewed(ConnectionCommand::Renew(request))
    }

    fn enqueue(&self, key: String, lease_ttl_s: Option<u64>) -> Result<Enqueued, Error> {
        let request = EnqueueRequest { key, lease_ttl_s };
        self.enqueued(ConnectionCommand::Enqueue(request))
    }

    fn wait(&self, key: String, timeout_s: u64) -> Result<Option<Grant>, Error> {
        self.granted(ConnectionCommand::Wait(WaitRequest { key, timeout_s }))
    }

    fn sem_acquire(
        &self,
        key: String,
        timeout_s: u64,
        limit: u32,
        lease_ttl_s: Option<u64>,
    ) -> Result<Option<Grant>, Error> {
        self.granted(ConnectionCommand::SemAcquire(SemAcquireRequest {
            key,
            timeout_s,
            limit,
            lease_ttl_s,
        }))
    }

    fn sem_release(&self, key: String, token: String) -> Result<(), Error> {
        self.done(ConnectionCommand::SemRelease(ReleaseRequest { key, token }))
    }

    fn sem_renew(
        &self,
        key: String,
        token: String,
        lease_ttl_s: Option<u64>,
    ) -> Result<u64, Error> {
        let request = RenewRequest {
            key,
            token,
            lease_ttl_s,
        };
        self.renewed(ConnectionCommand::SemRenew(request))
    }

    fn sem_enqueue(
        &self,
        key: String,
        limit: u32,
        lease_ttl_s: Option<u64>,
    ) -> Result<Enqueued, Error> {
        let request = SemEnqueueRequest {
            key,
            limit,
            lease_ttl_s,
        };
        self.enqueued(ConnectionCommand::SemEnqueue(request))
    }

    fn sem_wait(&self, key: String, timeout_s: u64) -> Result<Option<Grant>, Error> {
        self.granted(ConnectionCommand::SemWait(WaitRequest { key, timeout_s }))
    }

    fn ping(&self) -> Result<(), Error> {
        self.done(ConnectionCommand::Ping)
    }

    fn stats(&self) -> Result<String, Error> {
        match self.run(&ConnectionCommand::Stats)? {
            Answer::Stats(json) => Ok(json),
            other => Err(unexpected(other)),
        }
    }

    fn close(&self) {
        self.with(ConnClient::close);
    }
}
