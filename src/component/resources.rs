//! The exported resources `lock`, `semaphore` and `fence-guard`: each holds
//! its state and delegates; the lifecycle lives in the core's session, the
//! I/O in `key_client`.

use std::cell::{RefCell, RefMut};
use std::ops::{Deref, DerefMut};
use std::rc::Rc;

use super::api::fencing::{GuestFenceGuard, StaleFence};
use super::api::locks::{GuestLock, GuestSemaphore};
use super::api::types::{Command, Enqueued as WitEnqueued, Error, Grant as WitGrant, Setting};
use super::key_client::KeyClient;
use super::reactor;
use crate::protocol::{self as p, Kind};
use crate::session::Outcome;
use crate::settings::Settings;

/// What a `lock` or `semaphore` resource owns: its key client, which the
/// reactor also reaches (weakly) to renew and to report.
struct Handle(Rc<RefCell<KeyClient>>);

/// The key client, borrowed for one call; when the call ends, the reactor
/// re-reads what it waits for (see `reactor::touch`).
struct Touched<'a> {
    rc: &'a Rc<RefCell<KeyClient>>,
    client: Option<RefMut<'a, KeyClient>>,
}

impl Deref for Touched<'_> {
    type Target = KeyClient;
    fn deref(&self) -> &KeyClient {
        self.client.as_deref().expect("borrowed until dropped")
    }
}

impl DerefMut for Touched<'_> {
    fn deref_mut(&mut self) -> &mut KeyClient {
        self.client.as_deref_mut().expect("borrowed until dropped")
    }
}

impl Drop for Touched<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let slot = client.slot();
            drop(client);
            reactor::touch(self.rc, slot);
        }
    }
}

fn unexpected(_: Outcome) -> p::Error {
    // The session answers each command with its own outcome kind; no
    // Debug of it here, which would add its formatting code to the guest.
    p::Error::Protocol("internal: the session answered with another command's outcome".into())
}

impl Handle {
    fn client(&self) -> Touched<'_> {
        Touched {
            rc: &self.0,
            client: Some(self.0.borrow_mut()),
        }
    }

    fn open(key: &str, limit: Option<u32>, settings: Vec<Setting>) -> Result<Self, Error> {
        let settings = Settings::new(key, limit, super::convert::raw_options(settings))?;
        Ok(Handle(KeyClient::open(settings)?))
    }

    fn acquired(outcome: Result<Outcome, p::Error>) -> Result<Option<WitGrant>, Error> {
        match outcome? {
            Outcome::Acquired(grant) => Ok(grant.map(Into::into)),
            other => Err(unexpected(other).into()),
        }
    }

    fn acquire(&self) -> Result<Option<WitGrant>, Error> {
        Self::acquired(self.client().run(|s, now| s.acquire(now)))
    }

    fn enqueue(&self) -> Result<WitEnqueued, Error> {
        match self.client().run(|s, now| s.enqueue(now))? {
            Outcome::Enqueued(answer) => Ok(answer.into()),
            other => Err(unexpected(other).into()),
        }
    }

    fn wait(&self, timeout_s: Option<u64>) -> Result<Option<WitGrant>, Error> {
        Self::acquired(self.client().run(|s, now| s.wait(now, timeout_s)))
    }

    fn release(&self) -> Result<bool, Error> {
        match self.client().run(|s, now| s.release(now))? {
            Outcome::Released(released) => Ok(released),
            other => Err(unexpected(other).into()),
        }
    }

    fn renew(&self) -> Result<u64, Error> {
        match self.client().run(|s, now| s.renew(now))? {
            Outcome::Renewed(remaining) => Ok(remaining),
            other => Err(unexpected(other).into()),
        }
    }

    /// Starts `command` with a new ticket; returns the ticket.
    fn start(&self, command: Command) -> Result<u64, Error> {
        let ticket = super::events::new_ticket();
        let mut client = self.client();
        match command {
            Command::Acquire => client.start(ticket, |s, now| s.acquire(now)),
            Command::Enqueue => client.start(ticket, |s, now| s.enqueue(now)),
            Command::Wait(timeout_s) => client.start(ticket, |s, now| s.wait(now, timeout_s)),
            Command::Release => client.start(ticket, |s, now| s.release(now)),
            Command::Renew => client.start(ticket, |s, now| s.renew(now)),
        }?;
        Ok(ticket)
    }

    fn grant(&self) -> Option<WitGrant> {
        self.client().current().grant().cloned().map(Into::into)
    }

    fn is_held(&self) -> bool {
        self.client().current().is_held()
    }
}

/// Implements the methods `lock` and `semaphore` share, plus the given items.
macro_rules! key_resource {
    ($name:ident, $guest:ident, { $($extra:item)* }) => {
        /// An exported resource over a [`Handle`] on its key client.
        pub struct $name(Handle);

        impl $guest for $name {
            $($extra)*

            fn acquire(&self) -> Result<Option<WitGrant>, Error> {
                self.0.acquire()
            }
            fn enqueue(&self) -> Result<WitEnqueued, Error> {
                self.0.enqueue()
            }
            fn wait(&self, timeout_s: Option<u64>) -> Result<Option<WitGrant>, Error> {
                self.0.wait(timeout_s)
            }
            fn release(&self) -> Result<bool, Error> {
                self.0.release()
            }
            fn renew(&self) -> Result<u64, Error> {
                self.0.renew()
            }
            fn start(&self, command: Command) -> Result<u64, Error> {
                self.0.start(command)
            }
            fn close(&self) {
                self.0.client().close()
            }
            fn key(&self) -> String {
                self.0 .0.borrow().settings().key.clone()
            }
            fn grant(&self) -> Option<WitGrant> {
                self.0.grant()
            }
            fn is_held(&self) -> bool {
                self.0.is_held()
            }
            fn server_index(&self) -> u32 {
                self.0 .0.borrow().settings().server_index
            }
        }
    };
}

key_resource!(Lock, GuestLock, {
    fn open(key: String, settings: Vec<Setting>) -> Result<super::api::locks::Lock, Error> {
        Ok(super::api::locks::Lock::new(Lock(Handle::open(
            &key, None, settings,
        )?)))
    }
});

key_resource!(Semaphore, GuestSemaphore, {
    fn open(
        key: String,
        limit: u32,
        settings: Vec<Setting>,
    ) -> Result<super::api::locks::Semaphore, Error> {
        Ok(super::api::locks::Semaphore::new(Semaphore(Handle::open(
            &key,
            Some(limit),
            settings,
        )?)))
    }
    fn limit(&self) -> u32 {
        match self.0 .0.borrow().settings().kind {
            Kind::Semaphore { limit } => limit.get(),
            Kind::Lock => 0,
        }
    }
});

/// The exported `fence-guard`.
pub struct FenceGuard(RefCell<crate::fence::FenceGuard>);

impl GuestFenceGuard for FenceGuard {
    fn new() -> Self {
        FenceGuard(RefCell::new(crate::fence::FenceGuard::new()))
    }

    fn check(&self, key: String, fence: u64) -> Result<(), StaleFence> {
        self.0
            .borrow_mut()
            .check(&key, fence)
            .map_err(|s| StaleFence {
                fence: s.fence,
                highest: s.highest,
            })
    }

    fn highest(&self, key: String) -> Option<u64> {
        self.0.borrow().highest(&key)
    }
}
