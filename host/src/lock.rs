//! The blocking API: [`Lock`] and [`Semaphore`], and [`Guard`].
//!
//! Each object owns one component instance (so one connection): threads
//! never wait on each other's blocking calls, and a holder can always
//! release while others are queued. One thread per [`Runtime`] renews the
//! held leases of all its objects between calls (see [`crate::driver`]).
//! What an object holds is kept beside the instance ([`View`]), so that
//! `is_held`, `grant` and the other accessors answer at once, never
//! waiting behind a blocking call of another thread.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError, Weak};

use wasmtime::component::ResourceAny;

use crate::builder::{allowed_addresses, Builder, LostCallback};
use crate::driver::{Object, Renewable, Renewed, Renewer};
use crate::error::{flat, Trap};
use crate::metrics::{self, Tally};
use crate::raw_async;
use crate::runtime::{block_on, query, BlockingInstance};
use crate::{Counters, Enqueued, Error, Grant, Kind, LeaseLost, Runtime};

/// Marker: an exclusive lock.
#[derive(Debug)]
pub enum Exclusive {}
/// Marker: a counting semaphore.
#[derive(Debug)]
pub enum Counting {}

/// An exclusive FIFO lock on one key.
pub type Lock = Holder<Exclusive>;
/// A counting semaphore: up to `limit` holders of one key.
pub type Semaphore = Holder<Counting>;

/// What an object holds, as of its last call or renewal: the accessors
/// read it without entering the instance.
#[derive(Debug, Default)]
pub(crate) struct View {
    grant: Option<Grant>,
}

impl View {
    /// After a call that ends with `grant` held (or nothing).
    pub(crate) fn set(&mut self, grant: Option<Grant>) {
        self.grant = grant;
    }

    /// A loss reported by the driver: the grant it names is gone.
    pub(crate) fn lose(&mut self, lost: &LeaseLost) {
        if self.grant.as_ref().is_some_and(|g| g.fence == lost.fence) {
            self.grant = None;
        }
    }

    pub(crate) fn grant(&self) -> Option<Grant> {
        self.grant.clone()
    }
}

/// A mutex that a panic elsewhere cannot make unusable: every call is
/// atomic from the host's view, so the state behind it is whole.
pub(crate) fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reports losses: to the view, `tracing` and `on_lost`. The callback may
/// call back into the object, so the caller holds no lock of it.
pub(crate) fn report(view: &Mutex<View>, on_lost: Option<&LostCallback>, lost: Vec<LeaseLost>) {
    for lost in lost {
        locked(view).lose(&lost);
        tracing::warn!(key = %lost.key, fence = lost.fence, reason = %lost.reason, "lease lost");
        if let Some(callback) = on_lost {
            callback(&lost);
        }
    }
}

impl<K> Builder<K> {
    /// Validates everything (in the component) and registers the object
    /// with its runtime's renewal thread. Connects lazily, on the first
    /// `acquire` or `enqueue`.
    pub fn build(self) -> Result<Holder<K>, Error> {
        let (runtime, recipe, on_lost) = self.into_parts()?;
        let mut inst = runtime.instance_blocking(&allowed_addresses(&recipe.servers)?)?;
        let kind = recipe.kind;
        let settings = &recipe.settings;
        let (handle, server_index) = flat(block_on!(&mut inst, |i| async {
            let locks = i.client.dflockd_client_locks();
            let opened = match kind {
                Kind::Lock => {
                    locks
                        .lock()
                        .call_open(&mut i.store, &recipe.key, settings)
                        .await?
                }
                Kind::Semaphore { limit } => {
                    let semaphores = locks.semaphore();
                    semaphores
                        .call_open(&mut i.store, &recipe.key, limit.get(), settings)
                        .await?
                }
            };
            let Ok(handle) = opened else {
                return Ok(opened.map(|h| (h, 0)));
            };
            let index = match kind {
                Kind::Lock => locks.lock().call_server_index(&mut i.store, handle).await?,
                Kind::Semaphore { .. } => {
                    let semaphores = locks.semaphore();
                    semaphores.call_server_index(&mut i.store, handle).await?
                }
            };
            Ok(Ok((handle, index)))
        }))?;
        let renewer = runtime.renewer();
        let shared = Arc::new(Shared {
            core: Mutex::new(Core {
                inst,
                handle: Some(handle),
                kind,
                key: recipe.key.clone(),
                counted: Counters::ZERO,
                tally: runtime.tally(),
            }),
            view: Mutex::new(View::default()),
            on_lost,
            renewer: renewer.clone(),
            id: OnceLock::new(),
        });
        let weak = Arc::downgrade(&shared) as Weak<dyn Renewable>;
        let _ = shared.id.set(renewer.add(Object::Blocking(weak))?);
        Ok(Holder {
            shared,
            _runtime: runtime,
            key: recipe.key,
            kind,
            server_index,
            marker: PhantomData,
        })
    }
}

/// The instance and the resource in it; behind the mutex in [`Shared`].
pub(crate) struct Core {
    inst: BlockingInstance,
    handle: Option<ResourceAny>,
    kind: Kind,
    key: String,
    /// The instance's counters as last read, and the runtime's sum.
    counted: Counters,
    tally: Arc<Tally>,
}

/// Calls a method of the `lock` or `semaphore` resource, whichever this is.
macro_rules! call {
    ($core:expr, $method:ident $(, $arg:expr)*) => {{
        let core: &mut Core = &mut *$core;
        let (handle, kind) = (core.handle, core.kind);
        block_on!(&mut core.inst, |i| async {
            let locks = i.client.dflockd_client_locks();
            match (handle, kind) {
                (None, _) => Err(wasmtime::Error::msg("the resource is gone")),
                (Some(h), Kind::Lock) => locks.lock().$method(&mut i.store, h $(, $arg)*).await,
                (Some(h), Kind::Semaphore { .. }) => {
                    locks.semaphore().$method(&mut i.store, h $(, $arg)*).await
                }
            }
        })
    }};
}

impl Core {
    /// When the instance must next be driven (`None`: nothing to renew).
    fn next_deadline(&mut self) -> wasmtime::Result<Option<u64>> {
        query!(&mut self.inst, |i| i
            .client
            .dflockd_client_driver()
            .call_next_deadline(&mut i.store))
    }

    /// Adds what the instance counted since the last reading to the
    /// runtime's sum (see `metrics`).
    fn absorb(&mut self) -> wasmtime::Result<()> {
        let now = query!(&mut self.inst, |i| i
            .client
            .dflockd_client_driver()
            .call_totals(&mut i.store))?;
        let new = self
            .tally
            .absorb(&mut self.counted, raw_async::counters(now));
        metrics::trace(&self.key, &new);
        Ok(())
    }
}

impl Drop for Core {
    /// Dropping the resource releases a held grant (inside the component)
    /// before the store and its sockets go; what it counted is kept.
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            if let Err(e) = block_on!(&mut self.inst, |i| handle.resource_drop_async(&mut i.store))
            {
                tracing::warn!(error = %e, "dropping the lock resource failed");
            }
            let _ = self.absorb();
        }
    }
}

/// What the object shares with the renewal thread.
pub(crate) struct Shared {
    core: Mutex<Core>,
    view: Mutex<View>,
    on_lost: Option<LostCallback>,
    renewer: Arc<Renewer>,
    /// Its id with the renewer (set right after registering).
    id: OnceLock<u64>,
}

impl Shared {
    fn id(&self) -> u64 {
        self.id.get().copied().unwrap_or(0)
    }
}

impl Renewable for Shared {
    fn renew(&self) -> Renewed {
        let mut core = match self.core.try_lock() {
            Ok(core) => core,
            Err(TryLockError::WouldBlock) => return Renewed::Busy,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
        };
        // A drive reads without waiting, so what arrived since the last
        // call, however recent, must be known first (see `runtime::fresh`).
        core.inst.last_call = None;
        let driven = block_on!(&mut core.inst, |i| i
            .client
            .dflockd_client_driver()
            .call_drive(&mut i.store));
        let next = driven.and_then(|lost| {
            core.absorb()?;
            Ok((lost, core.next_deadline()?))
        });
        drop(core);
        match next {
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
    }
}

/// A lock or semaphore: see [`Lock`] and [`Semaphore`].
pub struct Holder<K> {
    shared: Arc<Shared>,
    /// Keeps the runtime, and so its renewal thread, alive.
    _runtime: Runtime,
    key: String,
    kind: Kind,
    server_index: u32,
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
    /// Runs a call into the instance; records what it leaves held
    /// (`held`, from the result, or `None` to ask the component) and
    /// reschedules the object's renewal.
    fn changing<T>(
        &self,
        call: impl FnOnce(&mut Core) -> Result<T, Error>,
        held: impl FnOnce(&Result<T, Error>) -> Option<Option<Grant>>,
    ) -> Result<T, Error> {
        let mut core = locked(&self.shared.core);
        let result = call(&mut core);
        let grant = match held(&result) {
            Some(grant) => Ok(grant),
            None => call!(&mut core, call_grant).map(|g| g.map(raw_async::grant)),
        };
        // A call that succeeded and left nothing held leaves nothing in
        // flight either: no deadline, and one call into the instance fewer
        // per release.
        let idle = result.is_ok() && matches!(grant, Ok(None));
        let next = if idle { Ok(None) } else { core.next_deadline() };
        drop(core);
        if let Ok(grant) = grant {
            locked(&self.shared.view).set(grant);
        }
        match next {
            Ok(next) => self.shared.renewer.schedule(self.shared.id(), next),
            Err(e) => tracing::error!(error = %e, "the component trapped"),
        }
        result
    }

    /// Blocks until granted (`Some(guard)`) or until the server's acquire
    /// timeout (`None`).
    pub fn acquire(&self) -> Result<Option<Guard<'_, K>>, Error> {
        let granted = self.changing(
            |core| Ok(flat(call!(core, call_acquire))?.map(raw_async::grant)),
            held_after_grant,
        )?;
        Ok(self.guard(granted, "acquire"))
    }

    /// Joins the queue without blocking: held at once
    /// ([`Enqueued::Acquired`]), or queued; then [`wait`](Self::wait).
    pub fn enqueue(&self) -> Result<Enqueued, Error> {
        let answer = self.changing(
            |core| Ok(raw_async::enqueued(flat(call!(core, call_enqueue))?)),
            |answer| match answer {
                Ok(answer) => Some(answer.grant().cloned()),
                Err(_) => Some(None),
            },
        )?;
        if let Enqueued::Acquired(grant) = &answer {
            self.trace_grant(grant, "enqueue");
        }
        Ok(answer)
    }

    /// After [`enqueue`](Self::enqueue): blocks until granted or `timeout_s`
    /// (default: the acquire timeout) passes. At once after an
    /// [`Enqueued::Acquired`].
    pub fn wait(&self, timeout_s: Option<u64>) -> Result<Option<Guard<'_, K>>, Error> {
        let granted = self.changing(
            |core| Ok(flat(call!(core, call_wait, timeout_s))?.map(raw_async::grant)),
            held_after_grant,
        )?;
        Ok(self.guard(granted, "wait"))
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
    ) -> Result<Option<OwnedGuard<K>>, Error> {
        let granted = self.wait(timeout_s)?.map(std::mem::forget).is_some();
        Ok(granted.then_some(OwnedGuard {
            holder: self,
            released: false,
        }))
    }

    fn guard(&self, granted: Option<Grant>, how: &str) -> Option<Guard<'_, K>> {
        let grant = granted?;
        self.trace_grant(&grant, how);
        Some(Guard { holder: self })
    }

    /// Releases: `true` when the server confirmed, `false` if nothing was held.
    pub fn release(&self) -> Result<bool, Error> {
        // Whatever the outcome, nothing is held here afterwards.
        let released = self.changing(|core| flat(call!(core, call_release)), |_| Some(None));
        tracing::debug!(key = %self.key, ?released, "release");
        released
    }

    /// Renews now (normally automatic); returns the remaining seconds.
    pub fn renew(&self) -> Result<u64, Error> {
        self.changing(
            |core| flat(call!(core, call_renew)),
            |renewed| match renewed {
                Ok(_) => Some(self.grant()),
                Err(_) => None,
            },
        )
    }

    /// Drops the connection without a release.
    pub fn close(&self) -> Result<(), Error> {
        self.changing(|core| call!(core, call_close).trap(), |_| Some(None))
    }

    /// Whether a grant is held and its lease was not lost, as of the last
    /// call or renewal. Never waits for a call in progress.
    pub fn is_held(&self) -> bool {
        locked(&self.shared.view).grant.is_some()
    }

    /// The current grant (its token is a secret: don't log it), while
    /// held and not known lost. Never waits for a call in progress.
    pub fn grant(&self) -> Option<Grant> {
        locked(&self.shared.view).grant()
    }

    /// The current grant's token (a secret: don't log it).
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
        self.server_index
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Lock, or semaphore with its limit.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    fn trace_grant(&self, grant: &Grant, how: &str) {
        tracing::debug!(key = %self.key, how, fence = grant.fence, "granted");
    }
}

/// After acquire or wait: the grant is held, or nothing (a refused or
/// failed call leaves nothing held either).
fn held_after_grant(result: &Result<Option<Grant>, Error>) -> Option<Option<Grant>> {
    Some(result.as_ref().ok().cloned().flatten())
}

impl Holder<Counting> {
    /// The semaphore's limit.
    pub fn limit(&self) -> u32 {
        match self.kind {
            Kind::Semaphore { limit } => limit.get(),
            Kind::Lock => 1,
        }
    }
}

impl<K> Drop for Holder<K> {
    fn drop(&mut self) {
        self.shared.renewer.remove(self.shared.id());
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
            tracing::warn!(key = %self.key, error = %e, "release on guard drop failed");
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
        f.debug_struct("Holder")
            .field("key", &self.key)
            .field("kind", &self.kind)
            .field("server_index", &self.server_index)
            .field("fence", &self.fence())
            .finish_non_exhaustive()
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
