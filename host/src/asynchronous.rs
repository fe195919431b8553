//! The async API on tokio: the same surface as the blocking one. The
//! renewal thread of the [`Runtime`] renews the leases of its async
//! objects too, between calls (see `driver`); what an object holds is kept beside its
//! instance, as in the blocking flavour, so the accessors answer at once.
//!
//! Cancellation is real: dropping a pending `acquire` or `wait` future
//! abandons the call inside the component and drops that object's whole
//! instance, which closes its connection, so the server removes the waiter
//! (and releases anything held). The next call opens a fresh instance.

use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};

use tokio::sync::{Mutex, MutexGuard};
use wasmtime::component::ResourceAny;

use crate::builder::{allowed_addresses, Builder, LostCallback, Recipe};
use crate::driver::{AsyncRenewable, Object, Renewed, Renewer};
use crate::error::{flat, Trap};
use crate::lock::{locked, report, View};
use crate::metrics::{self, Tally};
use crate::raw_async;
use crate::runtime::AsyncInstance;
use crate::{Counters, Enqueued, Error, Grant, Kind, Runtime};

pub use crate::connection::AsyncConnection;

/// An exclusive lock with an async API.
pub type AsyncLock = AsyncHolder<crate::Exclusive>;
/// A counting semaphore with an async API.
pub type AsyncSemaphore = AsyncHolder<crate::Counting>;

impl<K> Builder<K> {
    /// Builds the async flavour (inside a tokio runtime).
    pub async fn build_async(self) -> Result<AsyncHolder<K>, Error> {
        let (runtime, recipe, on_lost) = self.into_parts()?;
        let allowed = allowed_addresses(&recipe.servers)?;
        let renewer = runtime.renewer();
        let shared = Arc::new(Shared {
            slot: Mutex::new(None),
            view: std::sync::Mutex::new(View::default()),
            server_index: OnceLock::new(),
            renewer: renewer.clone(),
            id: OnceLock::new(),
            tally: runtime.tally(),
            runtime,
            allowed,
            recipe,
            on_lost,
        });
        // Open once now so that bad options fail here, as in the blocking API.
        drop(shared.core().await?);
        let weak = Arc::downgrade(&shared) as Weak<dyn AsyncRenewable>;
        let _ = shared.id.set(renewer.add(Object::Async(weak))?);
        Ok(AsyncHolder {
            shared,
            kind: PhantomData,
        })
    }
}

/// One instance and the resource in it.
struct Core {
    inst: AsyncInstance,
    handle: ResourceAny,
    /// Its counters as last read (see `metrics`).
    counted: Counters,
}

impl Core {
    /// Adds what the instance counted since the last reading to `tally`.
    async fn absorb(&mut self, tally: &Tally, key: &str) -> wasmtime::Result<()> {
        let driver = self.inst.client.dflockd_client_driver();
        let now = driver.call_totals(&mut self.inst.store).await?;
        let new = tally.absorb(&mut self.counted, raw_async::counters(now));
        metrics::trace(key, &new);
        Ok(())
    }
}

struct Shared {
    /// `None` after a cancelled call dropped the instance.
    slot: Mutex<Option<Core>>,
    /// What it holds, as of the last call or renewal.
    view: std::sync::Mutex<View>,
    /// Asked of the component once, at the first open.
    server_index: OnceLock<u32>,
    renewer: Arc<Renewer>,
    /// Its id with the renewer (set right after registering).
    id: OnceLock<u64>,
    tally: Arc<Tally>,
    runtime: Runtime,
    allowed: Vec<SocketAddr>,
    recipe: Recipe,
    on_lost: Option<LostCallback>,
}

/// Empties the slot (dropping the instance and its connection) unless
/// disarmed: a call future dropped midway leaves the instance unusable,
/// and nothing held (the server lets go of it with the connection).
struct Armed<'a> {
    slot: Option<MutexGuard<'a, Option<Core>>>,
    view: &'a std::sync::Mutex<View>,
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        if let Some(mut slot) = self.slot.take() {
            tracing::debug!("call cancelled: dropping the instance and its connection");
            *slot = None;
            locked(self.view).set(None);
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
        match $shared.recipe.kind {
            Kind::Semaphore { .. } => {
                locks.semaphore().$method(&mut core.inst.store, core.handle $(, $arg)*).await
            }
            Kind::Lock => locks.lock().$method(&mut core.inst.store, core.handle $(, $arg)*).await,
        }
    }};
}

impl Shared {
    /// After a call (the caller holds the slot): tells the renewer when
    /// the instance must next be driven (never, when `idle`).
    async fn reschedule(&self, core: &mut Core, idle: bool) {
        let id = self.id.get().copied().unwrap_or(0);
        if idle {
            return self.renewer.schedule(id, None);
        }
        let driver = core.inst.client.dflockd_client_driver();
        match driver.call_next_deadline(&mut core.inst.store).await {
            Ok(next) => self.renewer.schedule(id, next),
            Err(e) => tracing::error!(error = %e, "the component trapped"),
        }
    }

    /// The slot, with an instance in it (a fresh one after a cancellation).
    async fn core(&self) -> Result<MutexGuard<'_, Option<Core>>, Error> {
        let mut slot = self.slot.lock().await;
        if slot.is_none() {
            let mut inst = self.runtime.instance_async(&self.allowed).await?;
            let locks = inst.client.dflockd_client_locks();
            let r = &self.recipe;
            let handle = match r.kind {
                Kind::Lock => flat(
                    locks
                        .lock()
                        .call_open(&mut inst.store, &r.key, &r.settings)
                        .await,
                )?,
                Kind::Semaphore { limit } => flat(
                    locks
                        .semaphore()
                        .call_open(&mut inst.store, &r.key, limit.get(), &r.settings)
                        .await,
                )?,
            };
            let mut core = Core {
                inst,
                handle,
                counted: Counters::ZERO,
            };
            if self.server_index.get().is_none() {
                let index = call!(self, &mut core, call_server_index).trap()?;
                let _ = self.server_index.set(index);
            }
            *slot = Some(core);
        }
        Ok(slot)
    }
}

/// A lock or semaphore with an async API: see [`AsyncLock`], [`AsyncSemaphore`].
pub struct AsyncHolder<K> {
    shared: Arc<Shared>,
    kind: PhantomData<K>,
}

/// A held grant; dropping it releases in a spawned task.
#[must_use = "dropping the guard releases the lock"]
pub struct AsyncGuard<'a, K> {
    holder: Option<&'a AsyncHolder<K>>,
}

/// A held grant that owns (a share of) its holder, for a guard moved into
/// a spawned task ([`AsyncHolder::acquire_owned`]); dropping it releases in
/// a spawned task, as [`AsyncGuard`] does.
#[must_use = "dropping the guard releases the lock"]
pub struct OwnedAsyncGuard<K> {
    holder: Option<Arc<AsyncHolder<K>>>,
}

/// Runs one resource call with cancellation (see the module docs), then
/// records what it leaves held: `$held(&result)` gives it, or `None` to
/// ask the component. A cancelled call leaves nothing held (its instance
/// and connection are dropped).
macro_rules! cancellable {
    ($self:ident, $held:expr, $method:ident $(, $arg:expr)*) => {{
        let slot = $self.shared.core().await?;
        let mut armed = Armed { slot: Some(slot), view: &$self.shared.view };
        let core = armed.slot.as_mut().and_then(|s| s.as_mut()).ok_or_else(|| Error::Runtime("no instance".into()))?;
        let result = call!($self.shared, core, $method $(, $arg)*)
            .map_err(crate::error::runtime)
            .and_then(crate::error::Outcome::into_outcome);
        let held: Option<Option<Grant>> = $held(&result);
        let grant = match held {
            Some(grant) => Some(grant),
            None => call!($self.shared, core, call_grant).ok().map(|g| g.map(raw_async::grant)),
        };
        // As in the blocking flavour: nothing held after a success, nothing due.
        let idle = result.is_ok() && matches!(grant, Some(None));
        $self.shared.reschedule(core, idle).await;
        armed.disarm();
        if let Some(grant) = grant {
            locked(&$self.shared.view).set(grant);
        }
        result
    }};
}

/// What acquire and wait leave held: the grant, or nothing.
fn granted(result: &Result<Option<raw_async::WitGrant>, Error>) -> Option<Option<Grant>> {
    Some(
        result
            .as_ref()
            .ok()
            .cloned()
            .flatten()
            .map(raw_async::grant),
    )
}

impl<K> AsyncHolder<K> {
    /// Waits until granted (`Some(guard)`) or the server's acquire timeout (`None`).
    pub async fn acquire(&self) -> Result<Option<AsyncGuard<'_, K>>, Error> {
        let granted = cancellable!(self, granted, call_acquire)?;
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
    ) -> Result<Option<OwnedAsyncGuard<K>>, Error> {
        let granted = self.wait(timeout_s).await?.map(std::mem::forget).is_some();
        Ok(granted.then_some(OwnedAsyncGuard { holder: Some(self) }))
    }

    /// Joins the queue without waiting: held at once, or queued.
    pub async fn enqueue(&self) -> Result<Enqueued, Error> {
        let held = |r: &Result<raw_async::WitEnqueued, Error>| match r {
            Ok(raw_async::WitEnqueued::Acquired(g)) => Some(Some(raw_async::grant(g.clone()))),
            _ => Some(None),
        };
        Ok(raw_async::enqueued(cancellable!(self, held, call_enqueue)?))
    }

    /// After `enqueue`: waits until granted or `timeout_s` passes.
    pub async fn wait(&self, timeout_s: Option<u64>) -> Result<Option<AsyncGuard<'_, K>>, Error> {
        let granted = cancellable!(self, granted, call_wait, timeout_s)?;
        Ok(granted.map(|_| AsyncGuard { holder: Some(self) }))
    }

    /// Releases: `true` when the server confirmed.
    pub async fn release(&self) -> Result<bool, Error> {
        cancellable!(self, |_: &Result<bool, Error>| Some(None), call_release)
    }

    /// Renews now; the remaining seconds.
    pub async fn renew(&self) -> Result<u64, Error> {
        let before = self.grant();
        let held = |r: &Result<u64, Error>| r.is_ok().then(|| before.clone());
        cancellable!(self, held, call_renew)
    }

    /// Whether a grant is held and its lease was not lost, as of the last
    /// call or renewal. Never waits for a call in progress.
    pub fn is_held(&self) -> bool {
        locked(&self.shared.view).grant().is_some()
    }

    /// The current grant (its token is a secret), while held and not known
    /// lost. Never waits for a call in progress.
    pub fn grant(&self) -> Option<Grant> {
        locked(&self.shared.view).grant()
    }

    /// The current grant's token (a secret).
    pub fn token(&self) -> Option<String> {
        self.grant().map(|g| g.token)
    }

    /// The current grant's fence.
    pub fn fence(&self) -> Option<u64> {
        self.grant().map(|g| g.fence)
    }

    /// The current grant's lease in seconds.
    pub fn lease_s(&self) -> Option<u64> {
        self.grant().map(|g| g.lease_s)
    }

    /// The index of the server the key routes to.
    pub fn server_index(&self) -> u32 {
        self.shared.server_index.get().copied().unwrap_or(0)
    }

    /// Lock, or semaphore with its limit.
    pub fn kind(&self) -> Kind {
        self.shared.recipe.kind
    }

    /// Drops the connection without a release: the server keeps a held
    /// lease until it runs out, unless it releases on disconnect (its
    /// default). The next acquire connects again.
    pub async fn close(&self) -> Result<(), Error> {
        cancellable!(self, |_: &Result<(), Error>| Some(None), call_close)
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.shared.recipe.key
    }
}

impl AsyncHolder<crate::Counting> {
    /// The semaphore's limit.
    pub fn limit(&self) -> u32 {
        match self.shared.recipe.kind {
            Kind::Semaphore { limit } => limit.get(),
            Kind::Lock => 1,
        }
    }
}

impl<K> Drop for AsyncHolder<K> {
    fn drop(&mut self) {
        self.shared
            .renewer
            .remove(self.shared.id.get().copied().unwrap_or(0));
        // Release what is held: in a task when a runtime is there; otherwise
        // the instance drops with its connection, and the server releases.
        let shared = self.shared.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let mut slot = shared.slot.lock().await;
                if let Some(mut core) = slot.take() {
                    let _ = core.handle.resource_drop_async(&mut core.inst.store).await;
                    let _ = core.absorb(&shared.tally, &shared.recipe.key).await;
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
        if let Some(holder) = self.holder.take() {
            release_in_background(&holder.shared);
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
            release_in_background(&holder.shared);
        }
    }
}

/// A guard's drop: the release runs in a task on the current tokio
/// runtime (a drop cannot wait); without one, the lease runs out on the
/// server, or goes with the connection when the holder is dropped.
fn release_in_background(shared: &Arc<Shared>) {
    let shared = shared.clone();
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let mut slot = shared.slot.lock().await;
            // An empty slot: a cancelled call dropped the instance and its
            // connection, so nothing is held; no instance to build for it.
            if let Some(core) = slot.as_mut() {
                let released = call!(shared, core, call_release);
                tracing::debug!(?released, "release on guard drop");
                // As after any call: nothing due once nothing is held.
                let idle = matches!(released, Ok(Ok(_)));
                shared.reschedule(core, idle).await;
            }
            locked(&shared.view).set(None);
        });
    }
}

/// Key, kind, server and fence: never the token (a secret).
impl<K> std::fmt::Debug for AsyncHolder<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncHolder")
            .field("key", &self.key())
            .field("kind", &self.kind())
            .field("server_index", &self.server_index())
            .field("fence", &self.fence())
            .finish_non_exhaustive()
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

impl AsyncRenewable for Shared {
    fn renew(&self) -> Pin<Box<dyn Future<Output = Renewed> + Send + '_>> {
        Box::pin(async {
            let Ok(mut slot) = self.slot.try_lock() else {
                return Renewed::Busy;
            };
            // A cancelled call dropped the instance: nothing is held.
            let Some(core) = slot.as_mut() else {
                return Renewed::Next(None);
            };
            let driven = async {
                let driver = core.inst.client.dflockd_client_driver();
                let lost = driver.call_drive(&mut core.inst.store).await?;
                core.absorb(&self.tally, &self.recipe.key).await?;
                let driver = core.inst.client.dflockd_client_driver();
                let next = driver.call_next_deadline(&mut core.inst.store).await?;
                Ok::<_, wasmtime::Error>((lost, next))
            }
            .await;
            drop(slot);
            match driven {
                Ok((lost, next)) => {
                    let lost = lost.into_iter().map(raw_async::lease_lost).collect();
                    report(&self.view, self.on_lost.as_ref(), lost);
                    Renewed::Next(next)
                }
                Err(e) => {
                    tracing::error!(error = %e, "the component trapped; renewal stopped");
                    Renewed::Gone
                }
            }
        })
    }
}
