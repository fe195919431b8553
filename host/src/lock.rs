//! The blocking API: [`Lock`] and [`Semaphore`], and [`Guard`]: each call
//! blocks on the async object's future (`object.rs`), so the two flavours
//! cannot drift apart. Every object of a [`Runtime`] lives in one of its
//! component instances, whose driver does the waiting and renews held
//! leases between calls; what an object holds is kept beside the
//! instance, so `is_held`, `grant` and the other accessors answer at once.
//!
//! [`Runtime`]: crate::Runtime

use std::marker::PhantomData;
use std::sync::Arc;

use crate::builder::Builder;
use crate::object::Object;
use crate::{Enqueued, Error, Grant, Kind};

/// Marker: an exclusive lock.
#[derive(Debug)]
pub enum Exclusive {}
/// Marker: a counting semaphore.
#[derive(Debug)]
pub enum Counting {}
/// Marker: a lock set, every one of its keys or none.
#[derive(Debug)]
pub enum AllOf {}

/// Objects of one key (locks and semaphores): they have a grant of their
/// own, two-phase acquisition and an explicit renew, which a lock set
/// does not.
pub trait OneKey: sealed::Sealed {}
impl OneKey for Exclusive {}
impl OneKey for Counting {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Exclusive {}
    impl Sealed for super::Counting {}
}

/// An exclusive FIFO lock on one key.
pub type Lock = Holder<Exclusive>;
/// A counting semaphore: up to `limit` holders of one key.
pub type Semaphore = Holder<Counting>;

impl<K> Builder<K> {
    /// Validates everything (in the component) and opens the object in its
    /// runtime's instance. Connects lazily, on the first `acquire` or
    /// `enqueue`.
    pub fn build(self) -> Result<Holder<K>, Error> {
        let instance = self.runtime().instance()?;
        Ok(Holder {
            object: instance.block_on(self.open(instance.clone(), true))?,
            marker: PhantomData,
        })
    }
}

/// A lock or semaphore: see [`Lock`] and [`Semaphore`]. Dropping it
/// releases what it holds, waiting for the server's answer.
pub struct Holder<K> {
    object: Object,
    marker: PhantomData<K>,
}

/// A held grant; releases it when dropped.
#[must_use = "dropping the guard releases the lock at once"]
pub struct Guard<'a, K> {
    holder: &'a Holder<K>,
}

/// A held grant that owns (a share of) its holder, so that it can move to
/// another thread or outlive the scope that acquired it
/// ([`Holder::acquire_owned`]); releases when dropped, as [`Guard`] does.
#[must_use = "dropping the guard releases the lock at once"]
pub struct OwnedGuard<K> {
    holder: Arc<Holder<K>>,
    /// Set by [`release`](Self::release): the drop then only gives back its
    /// share of the holder.
    released: bool,
}

impl<K> Holder<K> {
    /// Blocks until granted (`Some(guard)`) or until the server's acquire
    /// timeout (`None`).
    pub fn acquire(&self) -> Result<Option<Guard<'_, K>>, Error> {
        let granted = self.object.block_on(self.object.acquire())?;
        Ok(granted.map(|_| Guard { holder: self }))
    }

    /// Joins the queue without blocking: held at once
    /// ([`Enqueued::Acquired`]), or queued; then [`wait`](Self::wait).
    pub fn enqueue(&self) -> Result<Enqueued, Error>
    where
        K: OneKey,
    {
        self.object.block_on(self.object.enqueue())
    }

    /// After [`enqueue`](Self::enqueue): blocks until granted or `timeout_s`
    /// (default: the acquire timeout) passes. At once after an
    /// [`Enqueued::Acquired`].
    pub fn wait(&self, timeout_s: Option<u64>) -> Result<Option<Guard<'_, K>>, Error>
    where
        K: OneKey,
    {
        let granted = self.object.block_on(self.object.wait(timeout_s))?;
        Ok(granted.map(|_| Guard { holder: self }))
    }

    /// [`acquire`](Self::acquire), with a guard that owns a share of the
    /// holder (clone the `Arc` first to keep one): for a guard moved into
    /// another thread.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), dflockd_host::Error> {
    /// use std::sync::Arc;
    ///
    /// let runtime = dflockd_host::Runtime::new()?;
    /// let lock = Arc::new(runtime.lock("nightly-job").build()?);
    /// if let Some(guard) = Arc::clone(&lock).acquire_owned()? {
    ///     std::thread::spawn(move || {
    ///         // ... the work, under the lock ...
    ///         drop(guard); // released here, in the worker
    ///     });
    /// }
    /// # Ok(()) }
    /// ```
    pub fn acquire_owned(self: Arc<Self>) -> Result<Option<OwnedGuard<K>>, Error> {
        let granted = self.acquire()?.map(std::mem::forget).is_some();
        Ok(granted.then_some(OwnedGuard {
            holder: self,
            released: false,
        }))
    }

    /// [`wait`](Self::wait), with a guard that owns a share of the holder.
    pub fn wait_owned(
        self: Arc<Self>,
        timeout_s: Option<u64>,
    ) -> Result<Option<OwnedGuard<K>>, Error>
    where
        K: OneKey,
    {
        let granted = self.wait(timeout_s)?.map(std::mem::forget).is_some();
        Ok(granted.then_some(OwnedGuard {
            holder: self,
            released: false,
        }))
    }

    /// Releases: `true` when the server confirmed, `false` if nothing was held.
    pub fn release(&self) -> Result<bool, Error> {
        self.object.block_on(self.object.release())
    }

    /// Renews now (normally automatic); returns the remaining seconds.
    pub fn renew(&self) -> Result<u64, Error>
    where
        K: OneKey,
    {
        self.object.block_on(self.object.renew())
    }

    /// Drops the connection without a release.
    pub fn close(&self) -> Result<(), Error> {
        self.object.block_on(self.object.close())
    }

    /// Whether a grant is held and its lease was not lost, as of the last
    /// call or renewal. Never waits for a call in progress.
    pub fn is_held(&self) -> bool {
        self.object.grant().is_some()
    }

    /// The current grant (its token is a secret: don't log it), while
    /// held and not known lost. Never waits for a call in progress.
    pub fn grant(&self) -> Option<Grant>
    where
        K: OneKey,
    {
        self.object.grant()
    }

    /// The current grant's token (a secret: don't log it).
    pub fn token(&self) -> Option<String>
    where
        K: OneKey,
    {
        self.grant().map(|g| g.token)
    }

    /// The current grant's fence.
    pub fn fence(&self) -> Option<u64>
    where
        K: OneKey,
    {
        self.grant().map(|g| g.fence)
    }

    /// The current grant's lease in seconds.
    pub fn lease_s(&self) -> Option<u64>
    where
        K: OneKey,
    {
        self.grant().map(|g| g.lease_s)
    }

    /// The index of the server the key routes to.
    pub fn server_index(&self) -> u32
    where
        K: OneKey,
    {
        self.object.server_index()
    }

    /// The key.
    pub fn key(&self) -> &str
    where
        K: OneKey,
    {
        self.object.key()
    }

    /// Lock, or semaphore with its limit.
    pub fn kind(&self) -> Kind
    where
        K: OneKey,
    {
        self.object.kind()
    }
}

/// Several locks taken as one: every one of its keys, or none (Redisson's
/// MultiLock). The members are taken one at a time in one order (by
/// server, then key), so that two sets sharing keys never wait for each
/// other in a cycle, under one deadline (the acquire timeout, for the
/// whole set); when it passes, or a member fails, what was taken is
/// released before `acquire` answers. Held, every member renews; the loss
/// of any member is the loss of the set (`on_lost` once, the other members
/// released, the next `release` says so).
///
/// ```no_run
/// # fn main() -> Result<(), dflockd_host::Error> {
/// let runtime = dflockd_host::Runtime::new()?;
/// let accounts = runtime.lock_set(["account:17", "account:42"]).build()?;
/// if let Some(_both) = accounts.acquire()? {
///     // move money between the two accounts
/// } // both released here
/// # Ok(()) }
/// ```
pub type LockSet = Holder<AllOf>;

impl Holder<AllOf> {
    /// The keys, in the order they are taken.
    pub fn keys(&self) -> &[String] {
        self.object.keys()
    }

    /// Every member's grant (their tokens are secrets), in
    /// [`keys`](Self::keys) order, while the whole set is held; else none.
    pub fn grants(&self) -> Vec<Grant> {
        self.object.grants()
    }
}

impl Holder<Counting> {
    /// The semaphore's limit.
    pub fn limit(&self) -> u32 {
        self.object.limit()
    }
}

impl<K> Guard<'_, K> {
    /// Releases now, reporting the outcome (dropping releases too, silently).
    pub fn release(self) -> Result<bool, Error> {
        let holder = self.holder;
        std::mem::forget(self);
        holder.release()
    }
}

impl<K> std::ops::Deref for Guard<'_, K> {
    type Target = Holder<K>;
    fn deref(&self) -> &Holder<K> {
        self.holder
    }
}

impl<K> Drop for Guard<'_, K> {
    fn drop(&mut self) {
        self.holder.release_on_drop();
    }
}

impl<K> Holder<K> {
    /// A guard's drop: releases, reporting a failure to `tracing` only.
    fn release_on_drop(&self) {
        if let Err(e) = self.release() {
            tracing::warn!(key = %self.object.key(), error = %e, "release on guard drop failed");
        }
    }
}

impl<K> OwnedGuard<K> {
    /// Releases now, reporting the outcome (dropping releases too, silently).
    pub fn release(mut self) -> Result<bool, Error> {
        self.released = true;
        self.holder.release()
    }

    /// The holder this guard shares.
    pub fn holder(&self) -> &Arc<Holder<K>> {
        &self.holder
    }
}

impl<K> std::ops::Deref for OwnedGuard<K> {
    type Target = Holder<K>;
    fn deref(&self) -> &Holder<K> {
        &self.holder
    }
}

impl<K> Drop for OwnedGuard<K> {
    fn drop(&mut self) {
        if !self.released {
            self.holder.release_on_drop();
        }
    }
}

/// Key, kind, server and fence: never the token (a secret).
impl<K> std::fmt::Debug for Holder<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.object.debug_as("Holder", f)
    }
}

impl<K> std::fmt::Debug for Guard<'_, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Guard").field(self.holder).finish()
    }
}

impl<K> std::fmt::Debug for OwnedGuard<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("OwnedGuard").field(&*self.holder).finish()
    }
}
