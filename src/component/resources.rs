//! The exported resources `lock`, `semaphore` and `fence-guard`: each holds
//! its state and delegates; the logic lives in `session` and the pure core.

use std::cell::RefCell;
use std::rc::Rc;

use super::api::fencing::{GuestFenceGuard, StaleFence};
use super::api::locks::{GuestLock, GuestSemaphore};
use super::api::types::{EnqueueStatus, Error, Options};
use super::session::{self, Session};
use crate::settings::Settings;

/// The state shared by `lock` and `semaphore`.
struct Holder(Rc<RefCell<Session>>);

impl Holder {
    fn open(key: &str, limit: Option<u32>, opts: Options) -> Result<Self, Error> {
        Ok(Holder(session::register(Settings::new(
            key,
            limit,
            opts.into(),
        )?)))
    }
}

/// Implements the methods `lock` and `semaphore` share, plus the given items.
macro_rules! holder_resource {
    ($name:ident, $guest:ident, { $($extra:item)* }) => {
        /// An exported resource over a [`Holder`].
        pub struct $name(Holder);

        impl $guest for $name {
            $($extra)*

            fn acquire(&self) -> Result<bool, Error> {
                Ok(self.0 .0.borrow_mut().acquire()?)
            }
            fn enqueue(&self) -> Result<EnqueueStatus, Error> {
                Ok(self.0 .0.borrow_mut().enqueue()?.into())
            }
            fn wait(&self, timeout_s: Option<u64>) -> Result<bool, Error> {
                Ok(self.0 .0.borrow_mut().wait(timeout_s)?)
            }
            fn release(&self) -> Result<bool, Error> {
                Ok(self.0 .0.borrow_mut().release()?)
            }
            fn renew(&self) -> Result<u64, Error> {
                Ok(self.0 .0.borrow_mut().renew()?)
            }
            fn close(&self) {
                self.0 .0.borrow_mut().close()
            }
            fn key(&self) -> String {
                self.0 .0.borrow().settings().key.clone()
            }
            fn token(&self) -> Option<String> {
                self.0 .0.borrow_mut().grant().map(|g| g.token.clone())
            }
            fn fence(&self) -> Option<u64> {
                self.0 .0.borrow_mut().grant().map(|g| g.fence)
            }
            fn lease_s(&self) -> Option<u64> {
                self.0 .0.borrow_mut().grant().map(|g| g.lease_s)
            }
            fn is_held(&self) -> bool {
                self.0 .0.borrow_mut().grant().is_some()
            }
            fn server_index(&self) -> u32 {
                self.0 .0.borrow().settings().server_index
            }
        }
    };
}

holder_resource!(Lock, GuestLock, {
    fn open(key: String, opts: Options) -> Result<super::api::locks::Lock, Error> {
        Ok(super::api::locks::Lock::new(Lock(Holder::open(
            &key, None, opts,
        )?)))
    }
});

holder_resource!(Semaphore, GuestSemaphore, {
    fn open(key: String, limit: u32, opts: Options) -> Result<super::api::locks::Semaphore, Error> {
        Ok(super::api::locks::Semaphore::new(Semaphore(Holder::open(
            &key,
            Some(limit),
            opts,
        )?)))
    }
    fn limit(&self) -> u32 {
        match self.0 .0.borrow().settings().kind {
            crate::protocol::Kind::Semaphore { limit } => limit.get(),
            crate::protocol::Kind::Lock => 0,
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
