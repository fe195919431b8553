//! The async API on tokio: the same surface as the blocking one.
//!
//! Cancellation is real: dropping a pending `acquire` or `wait` future
//! abandons the call inside the component and drops that object's whole
//! instance, which closes its connection, so the server removes the waiter
//! (and releases anything held). The next call opens a fresh instance.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard, Notify};
use tokio::task::JoinHandle;
use wasmtime::component::ResourceAny;

use crate::driver::Sleep;
use crate::error::{flat, Trap};
use crate::lock::{allowed_addresses, Builder, LostCallback, Recipe};
use crate::raw_async;
use crate::runtime::{AsyncInstance, EPOCH};
use crate::{Enqueued, Error, Grant, Runtime};

/// An exclusive lock with an async API.
pub type AsyncLock = AsyncHolder<crate::Exclusive>;
/// A counting semaphore with an async API.
pub type AsyncSemaphore = AsyncHolder<crate::Counting>;

impl<K> Builder<K> {
    /// Builds the async flavour (inside a tokio runtime).
    pub async fn build_async(self) -> Result<AsyncHolder<K>, Error> {
        let (runtime, recipe, on_lost) = self.into_parts()?;
        let allowed = allowed_addresses(&recipe.servers)?;
        let shared = Arc::new(Shared {
            slot: Mutex::new(None),
            planned: std::sync::Mutex::new(Sleep::Awake),
            changed: Notify::new(),
            stop: Notify::new(),
            runtime,
            allowed,
            recipe,
            on_lost,
        });
        // Open once now so that bad options fail here, as in the blocking API.
        drop(shared.core().await?);
        let driver = tokio::spawn(drive(shared.clone()));
        Ok(AsyncHolder {
            shared,
            driver,
            kind: PhantomData,
        })
    }
}

/// One instance and the resource in it.
struct Core {
    inst: AsyncInstance,
    handle: ResourceAny,
}

struct Shared {
    /// `None` after a cancelled call dropped the instance.
    slot: Mutex<Option<Core>>,
    /// What the renewal task waits for; changed only under `slot`, so that
    /// a call and the task's plan cannot cross.
    planned: std::sync::Mutex<Sleep>,
    changed: Notify,
    stop: Notify,
    runtime: Runtime,
    allowed: Vec<SocketAddr>,
    recipe: Recipe,
    on_lost: Option<LostCallback>,
}

/// Empties the slot (dropping the instance and its connection) unless
/// disarmed: a call future dropped midway leaves the instance unusable.
struct Armed<'a> {
    slot: Option<MutexGuard<'a, Option<Core>>>,
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        if let Some(mut slot) = self.slot.take() {
            tracing::debug!("call cancelled: dropping the instance and its connection");
            *slot = None;
        }
    }
}

impl Armed<'_> {
    fn disarm(mut self) {
        self.slot = None;
    }
}

/// Calls a method of the `lock` or `semaphore` resource on `$core`.
macro_rules! call {
    ($shared:expr, $core:expr, $method:ident $(, $arg:expr)*) => {{
        let core: &mut Core = $core;
        let locks = core.inst.client.dflockd_client_locks();
        if $shared.recipe.limit.is_some() {
            locks.semaphore().$method(&mut core.inst.store, core.handle $(, $arg)*).await
        } else {
            locks.lock().$method(&mut core.inst.store, core.handle $(, $arg)*).await
        }
    }};
}

impl Shared {
    /// What the renewal task waits for.
    fn planned(&self) -> std::sync::MutexGuard<'_, Sleep> {
        self.planned.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// After a call (the caller holds the slot): wakes the renewal task
    /// when it must act sooner than it planned. Waking it after every call
    /// instead cost each operation a task switch and a second call into
    /// the instance (BENCHMARKS.md).
    async fn rearm(&self, core: &mut Core) {
        let planned = *self.planned();
        if matches!(planned, Sleep::Awake) {
            return;
        }
        let driver = core.inst.client.dflockd_client_driver();
        let next = driver.call_next_deadline(&mut core.inst.store).await;
        if planned.is_sooner(&next) {
            *self.planned() = Sleep::Awake;
            self.changed.notify_one();
        }
    }

    /// The slot, with an instance in it (a fresh one after a cancellation).
    async fn core(&self) -> Result<MutexGuard<'_, Option<Core>>, Error> {
        let mut slot = self.slot.lock().await;
        if slot.is_none() {
            let mut inst = self.runtime.instance_async(&self.allowed).await?;
            let locks = inst.client.dflockd_client_locks();
            let r = &self.recipe;
            let handle = match r.limit {
                None => flat(
                    locks
                        .lock()
                        .call_open(&mut inst.store, &r.key, &r.settings)
                        .await,
                )?,
                Some(limit) => flat(
                    locks
                        .semaphore()
                        .call_open(&mut inst.store, &r.key, limit, &r.settings)
                        .await,
                )?,
            };
            *slot = Some(Core { inst, handle });
        }
        Ok(slot)
    }
}

/// A lock or semaphore with an async API: see [`AsyncLock`], [`AsyncSemaphore`].
pub struct AsyncHolder<K> {
    shared: Arc<Shared>,
    driver: JoinHandle<()>,
    kind: PhantomData<K>,
}

/// A held grant; dropping it releases in a spawned task.
#[must_use = "dropping the guard releases the lock"]
pub struct AsyncGuard<'a, K> {
    holder: Option<&'a AsyncHolder<K>>,
}

/// Runs one resource call with cancellation: see the module docs.
macro_rules! cancellable {
    ($self:ident, $method:ident $(, $arg:expr)*) => {{
        let slot = $self.shared.core().await?;
        let mut armed = Armed { slot: Some(slot) };
        let core = armed.slot.as_mut().and_then(|s| s.as_mut()).ok_or_else(|| Error::Runtime("no instance".into()))?;
        let result = call!($self.shared, core, $method $(, $arg)*);
        $self.shared.rearm(core).await;
        armed.disarm();
        result
    }};
}

impl<K> AsyncHolder<K> {
    /// Waits until granted (`Some(guard)`) or the server's acquire timeout (`None`).
    pub async fn acquire(&self) -> Result<Option<AsyncGuard<'_, K>>, Error> {
        let granted = flat(cancellable!(self, call_acquire))?;
        Ok(granted.map(|_| AsyncGuard { holder: Some(self) }))
    }

    /// Joins the queue without waiting: held at once, or queued.
    pub async fn enqueue(&self) -> Result<Enqueued, Error> {
        Ok(raw_async::enqueued(flat(cancellable!(self, call_enqueue))?))
    }

    /// After `enqueue`: waits until granted or `timeout_s` passes.
    pub async fn wait(&self, timeout_s: Option<u64>) -> Result<Option<AsyncGuard<'_, K>>, Error> {
        let granted = flat(cancellable!(self, call_wait, timeout_s))?;
        Ok(granted.map(|_| AsyncGuard { holder: Some(self) }))
    }

    /// Releases: `true` when the server confirmed.
    pub async fn release(&self) -> Result<bool, Error> {
        flat(cancellable!(self, call_release))
    }

    /// Renews now; the remaining seconds.
    pub async fn renew(&self) -> Result<u64, Error> {
        flat(cancellable!(self, call_renew))
    }

    /// Whether a grant is held and its lease was not lost.
    pub async fn is_held(&self) -> Result<bool, Error> {
        cancellable!(self, call_is_held).trap()
    }

    /// The current grant (its token is a secret), while held and not known lost.
    pub async fn grant(&self) -> Result<Option<Grant>, Error> {
        let grant = cancellable!(self, call_grant).trap()?;
        Ok(grant.map(raw_async::grant))
    }

    /// The current grant's token (a secret).
    pub async fn token(&self) -> Result<Option<String>, Error> {
        Ok(self.grant().await?.map(|g| g.token))
    }

    /// The current grant's fence.
    pub async fn fence(&self) -> Result<Option<u64>, Error> {
        Ok(self.grant().await?.map(|g| g.fence))
    }

    /// The current grant's lease in seconds.
    pub async fn lease_s(&self) -> Result<Option<u64>, Error> {
        Ok(self.grant().await?.map(|g| g.lease_s))
    }

    /// The index of the server the key routes to.
    pub async fn server_index(&self) -> Result<u32, Error> {
        cancellable!(self, call_server_index).trap()
    }

    /// Drops the connection without a release: the server keeps a held
    /// lease until it runs out, unless it releases on disconnect (its
    /// default). The next acquire connects again.
    pub async fn close(&self) -> Result<(), Error> {
        cancellable!(self, call_close).trap()
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.shared.recipe.key
    }
}

impl AsyncHolder<crate::Counting> {
    /// The semaphore's limit.
    pub fn limit(&self) -> u32 {
        self.shared.recipe.limit.unwrap_or(0)
    }
}

impl<K> Drop for AsyncHolder<K> {
    fn drop(&mut self) {
        self.shared.stop.notify_one();
        self.driver.abort();
        // Release what is held: in a task when a runtime is there; otherwise
        // the instance drops with its connection, and the server releases.
        let shared = self.shared.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let mut slot = shared.slot.lock().await;
                if let Some(mut core) = slot.take() {
                    let _ = core.handle.resource_drop_async(&mut core.inst.store).await;
                }
            });
        }
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
        let Some(holder) = self.holder.take() else {
            return;
        };
        let shared = holder.shared.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let Ok(mut slot) = shared.core().await else {
                    return;
                };
                if let Some(core) = slot.as_mut() {
                    let released = call!(shared, core, call_release);
                    tracing::debug!(?released, "release on guard drop");
                }
            });
        }
    }
}

/// The renewal task: `next-deadline`, sleep, `drive`, report losses.
async fn drive(shared: Arc<Shared>) {
    loop {
        // The plan is written under the slot, where every call rearms.
        let deadline = {
            let mut slot = shared.slot.lock().await;
            let deadline = match slot.as_mut() {
                None => None,
                Some(core) => {
                    let driver = core.inst.client.dflockd_client_driver();
                    match driver.call_next_deadline(&mut core.inst.store).await {
                        Ok(deadline) => deadline,
                        Err(e) => {
                            return tracing::error!(error = %e, "the component trapped; renewal stopped")
                        }
                    }
                }
            };
            *shared.planned() = deadline.map_or(Sleep::Indefinitely, Sleep::Until);
            deadline
        };
        let Some(deadline) = deadline else {
            tokio::select! {
                _ = shared.changed.notified() => continue,
                _ = shared.stop.notified() => return,
            }
        };
        let due = tokio::time::Instant::from_std(*EPOCH + Duration::from_nanos(deadline));
        tokio::select! {
            _ = tokio::time::sleep_until(due) => {}
            _ = shared.changed.notified() => continue,
            _ = shared.stop.notified() => return,
        }
        *shared.planned() = Sleep::Awake;
        let lost = {
            let mut slot = shared.slot.lock().await;
            let Some(core) = slot.as_mut() else { continue };
            match core
                .inst
                .client
                .dflockd_client_driver()
                .call_drive(&mut core.inst.store)
                .await
            {
                Ok(lost) => lost,
                Err(e) => {
                    return tracing::error!(error = %e, "the component trapped; renewal stopped")
                }
            }
        };
        for lost in lost.into_iter().map(raw_async::lease_lost) {
            tracing::warn!(key = %lost.key, fence = lost.fence, reason = %lost.reason, "lease lost");
            if let Some(callback) = &shared.on_lost {
                callback(&lost);
            }
        }
    }
}
