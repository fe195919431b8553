//! The async API: the same surface as the blocking one, on any executor
//! (a tokio runtime is needed only by `AsyncConnection`). Built on a
//! multi-thread tokio runtime, an object's instance is driven by a task on
//! that runtime's workers (so the runtime needs IO and time enabled, and
//! its objects end with it: their calls fail, their held leases are
//! reported lost); built anywhere else, by the `Runtime`'s own instances
//! and their threads. What an object holds is kept beside the instance,
//! so the accessors answer at once.
//!
//! Cancellation is real: dropping a pending call's future sends a cancel
//! to the driver. A command not started yet is forgotten; a started one
//! ends with the object's connection, so the server removes the waiter
//! (and releases anything held). The next call connects again.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::builder::Builder;
use crate::object::Object;
use crate::{Enqueued, Error, Grant, Kind, OneKey};

pub use crate::connection::AsyncConnection;

/// An exclusive lock with an async API.
pub type AsyncLock = AsyncHolder<crate::Exclusive>;
/// A counting semaphore with an async API.
pub type AsyncSemaphore = AsyncHolder<crate::Counting>;
/// A lock set with an async API (see [`LockSet`](crate::LockSet)).
pub type AsyncLockSet = AsyncHolder<crate::AllOf>;

impl AsyncHolder<crate::AllOf> {
    /// The keys, in the order they are taken.
    pub fn keys(&self) -> &[String] {
        self.object.keys()
    }

    /// Every member's grant, in [`keys`](Self::keys) order, while the whole
    /// set is held; else none.
    pub fn grants(&self) -> Vec<Grant> {
        self.object.grants()
    }
}

impl<K> Builder<K> {
    /// Builds the async flavour: validates everything (in the component)
    /// and opens the object in its runtime's instance.
    pub async fn build_async(self) -> Result<AsyncHolder<K>, Error> {
        let instance = self.runtime().async_instance().await?;
        Ok(AsyncHolder {
            object: self.open(instance, false).await?,
            kind: PhantomData,
        })
    }
}

/// A lock or semaphore with an async API: see [`AsyncLock`], [`AsyncSemaphore`].
pub struct AsyncHolder<K> {
    object: Object,
    kind: PhantomData<K>,
}

/// A held grant; dropping it sends the release (nothing waits for it).
#[must_use = "dropping the guard releases the lock"]
pub struct AsyncGuard<'a, K> {
    holder: Option<&'a AsyncHolder<K>>,
}

/// A held grant that owns (a share of) its holder, for a guard moved into
/// a spawned task ([`AsyncHolder::acquire_owned`]); dropping it sends the
/// release, as [`AsyncGuard`] does.
#[must_use = "dropping the guard releases the lock"]
pub struct OwnedAsyncGuard<K> {
    holder: Option<Arc<AsyncHolder<K>>>,
}

impl<K> AsyncHolder<K> {
    /// Waits until granted (`Some(guard)`) or the server's acquire timeout (`None`).
    pub async fn acquire(&self) -> Result<Option<AsyncGuard<'_, K>>, Error> {
        let granted = self.object.acquire().await?;
        Ok(granted.map(|_| AsyncGuard { holder: Some(self) }))
    }

    /// [`acquire`](Self::acquire), with a guard that owns a share of the
    /// holder: for a guard moved into a spawned task.
    /// `Arc::clone(&lock).acquire_owned().await`.
    pub async fn acquire_owned(self: Arc<Self>) -> Result<Option<OwnedAsyncGuard<K>>, Error> {
        let granted = self.acquire().await?.map(std::mem::forget).is_some();
        Ok(granted.then_some(OwnedAsyncGuard { holder: Some(self) }))
    }

    /// [`wait`](Self::wait), with a guard that owns a share of the holder.
    pub async fn wait_owned(
        self: Arc<Self>,
        timeout_s: Option<u64>,
    ) -> Result<Option<OwnedAsyncGuard<K>>, Error>
    where
        K: OneKey,
    {
        let granted = self.wait(timeout_s).await?.map(std::mem::forget).is_some();
        Ok(granted.then_some(OwnedAsyncGuard { holder: Some(self) }))
    }

    /// Joins the queue without waiting: held at once, or queued.
    pub async fn enqueue(&self) -> Result<Enqueued, Error>
    where
        K: OneKey,
    {
        self.object.enqueue().await
    }

    /// After `enqueue`: waits until granted or `timeout_s` passes.
    pub async fn wait(&self, timeout_s: Option<u64>) -> Result<Option<AsyncGuard<'_, K>>, Error>
    where
        K: OneKey,
    {
        let granted = self.object.wait(timeout_s).await?;
        Ok(granted.map(|_| AsyncGuard { holder: Some(self) }))
    }

    /// Releases: `true` when the server confirmed.
    pub async fn release(&self) -> Result<bool, Error> {
        self.object.release().await
    }

    /// Renews now; the remaining seconds.
    pub async fn renew(&self) -> Result<u64, Error>
    where
        K: OneKey,
    {
        self.object.renew().await
    }

    /// Whether a grant is held and its lease was not lost, as of the last
    /// call or renewal. Never waits for a call in progress.
    pub fn is_held(&self) -> bool {
        self.object.grant().is_some()
    }

    /// The current grant (its token is a secret), while held and not known
    /// lost. Never waits for a call in progress.
    pub fn grant(&self) -> Option<Grant>
    where
        K: OneKey,
    {
        self.object.grant()
    }

    /// The current grant's token (a secret).
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

    /// Lock, or semaphore with its limit.
    pub fn kind(&self) -> Kind
    where
        K: OneKey,
    {
        self.object.kind()
    }

    /// Drops the connection without a release: the server keeps a held
    /// lease until it runs out, unless it releases on disconnect (its
    /// default). The next acquire connects again.
    pub async fn close(&self) -> Result<(), Error> {
        self.object.close().await
    }

    /// The key.
    pub fn key(&self) -> &str
    where
        K: OneKey,
    {
        self.object.key()
    }
}

impl AsyncHolder<crate::Counting> {
    /// The semaphore's limit.
    pub fn limit(&self) -> u32 {
        self.object.limit()
    }
}

impl<K> AsyncGuard<'_, K> {
    /// Releases now and reports the outcome.
    pub async fn release(mut self) -> Result<bool, Error> {
        match self.holder.take() {
            Some(holder) => holder.release().await,
            None => Ok(false),
        }
    }
}

impl<K> std::ops::Deref for AsyncGuard<'_, K> {
    type Target = AsyncHolder<K>;
    fn deref(&self) -> &AsyncHolder<K> {
        self.holder
            .expect("a guard always has its holder until released")
    }
}

impl<K> Drop for AsyncGuard<'_, K> {
    fn drop(&mut self) {
        if let Some(holder) = self.holder.take() {
            holder.object.release_in_background();
        }
    }
}

impl<K> OwnedAsyncGuard<K> {
    /// Releases now and reports the outcome.
    pub async fn release(mut self) -> Result<bool, Error> {
        match self.holder.take() {
            Some(holder) => holder.release().await,
            None => Ok(false),
        }
    }

    /// The holder this guard shares.
    pub fn holder(&self) -> &Arc<AsyncHolder<K>> {
        self.holder
            .as_ref()
            .expect("a guard always has its holder until released")
    }
}

impl<K> std::ops::Deref for OwnedAsyncGuard<K> {
    type Target = AsyncHolder<K>;
    fn deref(&self) -> &AsyncHolder<K> {
        self.holder()
    }
}

impl<K> Drop for OwnedAsyncGuard<K> {
    fn drop(&mut self) {
        if let Some(holder) = self.holder.take() {
            holder.object.release_in_background();
        }
    }
}

/// Key, kind, server and fence: never the token (a secret).
impl<K> std::fmt::Debug for AsyncHolder<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.object.debug_as("AsyncHolder", f)
    }
}

impl<K> std::fmt::Debug for AsyncGuard<'_, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("AsyncGuard").field(&self.holder).finish()
    }
}

impl<K> std::fmt::Debug for OwnedAsyncGuard<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("OwnedAsyncGuard")
            .field(&self.holder)
            .finish()
    }
}
