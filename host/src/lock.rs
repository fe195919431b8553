//! The blocking API: [`Lock`] and [`Semaphore`], their builder, and [`Guard`].
//!
//! Each object owns one component instance (so one connection): threads
//! never wait on each other's blocking calls, and a holder can always
//! release while others are queued. While a grant is held, a background
//! thread renews it through the component's driver (see [`crate::driver`]).

use std::marker::PhantomData;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use wasmtime::component::ResourceAny;

use crate::error::{flat, Trap};
use crate::raw_async::{self, Setting};
use crate::runtime::{block_on, BlockingInstance};
use crate::{driver, Enqueued, Error, Grant, LeaseLost, Runtime};

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

pub(crate) type LostCallback = Arc<dyn Fn(&LeaseLost) + Send + Sync>;
type ShardFn = Arc<dyn Fn(&str, usize) -> usize + Send + Sync>;

/// Options for a [`Lock`] or [`Semaphore`]; every unset option keeps the
/// component's documented default (see `wit/types.wit`, `setting`).
pub struct Builder<K> {
    runtime: Runtime,
    key: String,
    limit: Option<u32>,
    servers: Vec<(String, u16)>,
    /// Each option the caller set, as the WIT setting it becomes.
    settings: Vec<Setting>,
    shard: Option<ShardFn>,
    on_lost: Option<LostCallback>,
    kind: PhantomData<K>,
}

impl Runtime {
    /// A lock on `key`; configure it, then [`Builder::build`].
    pub fn lock(&self, key: impl Into<String>) -> Builder<Exclusive> {
        Builder::new(self.clone(), key.into(), None)
    }

    /// A semaphore of `limit` holders on `key`.
    pub fn semaphore(&self, key: impl Into<String>, limit: u32) -> Builder<Counting> {
        Builder::new(self.clone(), key.into(), Some(limit))
    }
}

impl<K> Builder<K> {
    fn new(runtime: Runtime, key: String, limit: Option<u32>) -> Self {
        Builder {
            runtime,
            key,
            limit,
            servers: Vec::new(),
            settings: Vec::new(),
            shard: None,
            on_lost: None,
            kind: PhantomData,
        }
    }

    fn set(mut self, setting: Setting) -> Self {
        self.settings.push(setting);
        self
    }

    /// The servers (default: `127.0.0.1:6388`). The key routes to one of
    /// them by CRC-32, as in the Go, Python and TypeScript clients.
    pub fn servers<H: Into<String>>(mut self, servers: impl IntoIterator<Item = (H, u16)>) -> Self {
        self.servers = servers.into_iter().map(|(h, p)| (h.into(), p)).collect();
        self
    }

    /// One server.
    pub fn server(self, host: impl Into<String>, port: u16) -> Self {
        self.servers([(host.into(), port)])
    }

    /// Seconds the server may keep `acquire` waiting (default 10; 0 = try-lock).
    pub fn acquire_timeout_s(self, seconds: u64) -> Self {
        self.set(Setting::AcquireTimeoutS(seconds))
    }

    /// Lease per grant in seconds (default: the server's).
    pub fn lease_ttl_s(self, seconds: u64) -> Self {
        self.set(Setting::LeaseTtlS(seconds))
    }

    /// Renew after this fraction of the lease, in (0, 1) (default 0.5).
    pub fn renew_ratio(self, ratio: f64) -> Self {
        self.set(Setting::RenewRatio(ratio))
    }

    /// Connect timeout in milliseconds (default 10 000).
    pub fn connect_timeout_ms(self, ms: u64) -> Self {
        self.set(Setting::ConnectTimeoutMs(ms))
    }

    /// Shared secret for servers started with `--auth-token`.
    pub fn auth_token(self, token: impl Into<String>) -> Self {
        self.set(Setting::AuthToken(token.into()))
    }

    /// TLS to the server (see [`Tls`](crate::Tls)); default: plain TCP.
    pub fn tls(self, tls: crate::Tls) -> Self {
        self.set(Setting::Tls(tls.to_wit()))
    }

    /// Custom sharding: `f(key, server_count)` picks the server index.
    pub fn shard_with(mut self, f: impl Fn(&str, usize) -> usize + Send + Sync + 'static) -> Self {
        self.shard = Some(Arc::new(f));
        self
    }

    /// Called (from the renewal thread) when a held lease is lost.
    pub fn on_lost(mut self, f: impl Fn(&LeaseLost) + Send + Sync + 'static) -> Self {
        self.on_lost = Some(Arc::new(f));
        self
    }

    /// Validates everything (in the component), then starts the renewal thread.
    /// Connects lazily, on the first `acquire` or `enqueue`.
    pub fn build(self) -> Result<Holder<K>, Error> {
        let (runtime, recipe, on_lost) = self.into_parts()?;
        let mut inst = runtime.instance_blocking(&allowed_addresses(&recipe.servers)?)?;
        let opts = &recipe.settings;
        let handle = flat(block_on!(&mut inst, |i| async {
            let locks = i.client.dflockd_client_locks();
            match recipe.limit {
                None => {
                    locks
                        .lock()
                        .call_open(&mut i.store, &recipe.key, opts)
                        .await
                }
                Some(limit) => {
                    let semaphores = locks.semaphore();
                    semaphores
                        .call_open(&mut i.store, &recipe.key, limit, opts)
                        .await
                }
            }
        }))?;
        let core = Core {
            inst,
            handle: Some(handle),
            semaphore: recipe.limit.is_some(),
            stopping: false,
            driver: driver::Sleep::Awake,
        };
        let shared = Arc::new(Shared {
            core: Mutex::new(core),
            changed: Condvar::new(),
            on_lost,
        });
        let driver = driver::spawn(shared.clone(), &recipe.key)?;
        Ok(Holder {
            shared,
            driver: Some(driver),
            key: recipe.key,
            limit: recipe.limit,
            kind: PhantomData,
        })
    }

    /// Applies the server default and the custom shard choice.
    pub(crate) fn into_parts(mut self) -> Result<(Runtime, Recipe, Option<LostCallback>), Error> {
        if self.servers.is_empty() {
            self.servers.push(("127.0.0.1".into(), 6388));
        }
        if let Some(shard) = &self.shard {
            let index = shard(&self.key, self.servers.len());
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            self.settings.push(Setting::ServerIndex(index));
        }
        let servers = self
            .servers
            .iter()
            .map(|(host, port)| raw_async::Server {
                host: host.clone(),
                port: *port,
            })
            .collect();
        self.settings.push(Setting::Servers(servers));
        let recipe = Recipe {
            key: self.key,
            limit: self.limit,
            servers: self.servers,
            settings: self.settings,
        };
        Ok((self.runtime, recipe, self.on_lost))
    }
}

/// Everything needed to open the resource (again).
pub(crate) struct Recipe {
    pub(crate) key: String,
    pub(crate) limit: Option<u32>,
    pub(crate) servers: Vec<(String, u16)>,
    pub(crate) settings: Vec<Setting>,
}

/// Every address the servers resolve to: the only ones the sandbox lets the
/// component reach.
pub(crate) fn allowed_addresses(servers: &[(String, u16)]) -> Result<Vec<SocketAddr>, Error> {
    let mut all = Vec::new();
    for (host, port) in servers {
        let addrs = (host.as_str(), *port)
            .to_socket_addrs()
            .map_err(|e| Error::Connection(format!("resolving {host}: {e}")))?;
        all.extend(addrs);
    }
    Ok(all)
}

/// The instance and the resource in it; behind the mutex in [`Shared`].
pub(crate) struct Core {
    pub(crate) inst: BlockingInstance,
    handle: Option<ResourceAny>,
    semaphore: bool,
    /// Set when the owner is dropped: the renewal thread exits.
    pub(crate) stopping: bool,
    /// What the renewal thread is waiting for.
    pub(crate) driver: driver::Sleep,
}

impl Core {
    /// Wakes the renewal thread when it must act sooner than it planned.
    /// Waking it after every call instead cost each lock operation a thread
    /// switch and a second call into the instance (BENCHMARKS.md).
    pub(crate) fn rearm(&mut self, changed: &Condvar) {
        if matches!(self.driver, driver::Sleep::Awake) {
            return;
        }
        let next = block_on!(&mut self.inst, |i| i
            .client
            .dflockd_client_driver()
            .call_next_deadline(&mut i.store));
        let sooner = self.driver.is_sooner(&next);
        if sooner {
            self.driver = driver::Sleep::Awake;
            changed.notify_all();
        }
    }
}

/// Calls a method of the `lock` or `semaphore` resource, whichever this is.
macro_rules! call {
    ($core:expr, $method:ident $(, $arg:expr)*) => {{
        let core: &mut Core = &mut *$core;
        let (handle, semaphore) = (core.handle, core.semaphore);
        block_on!(&mut core.inst, |i| async {
            let locks = i.client.dflockd_client_locks();
            match handle {
                None => Err(wasmtime::Error::msg("the resource is gone")),
                Some(h) if semaphore => locks.semaphore().$method(&mut i.store, h $(, $arg)*).await,
                Some(h) => locks.lock().$method(&mut i.store, h $(, $arg)*).await,
            }
        })
    }};
}

impl Drop for Core {
    /// Dropping the resource releases a held grant (inside the component)
    /// before the store and its sockets go.
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            if let Err(e) = block_on!(&mut self.inst, |i| handle.resource_drop_async(&mut i.store))
            {
                tracing::warn!(error = %e, "dropping the lock resource failed");
            }
        }
    }
}

/// State shared with the renewal thread.
pub(crate) struct Shared {
    pub(crate) core: Mutex<Core>,
    /// Signalled when a call may have changed what the driver must do.
    pub(crate) changed: Condvar,
    pub(crate) on_lost: Option<LostCallback>,
}

impl Shared {
    pub(crate) fn core(&self) -> MutexGuard<'_, Core> {
        // A panic while holding the lock cannot leave the component's state
        // half-changed (every call is atomic from the host's view): go on.
        self.core
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A lock or semaphore: see [`Lock`] and [`Semaphore`].
pub struct Holder<K> {
    shared: Arc<Shared>,
    driver: Option<JoinHandle<()>>,
    key: String,
    limit: Option<u32>,
    kind: PhantomData<K>,
}

/// A held grant; releases it when dropped.
#[must_use = "dropping the guard releases the lock at once"]
pub struct Guard<'a, K> {
    holder: &'a Holder<K>,
}

impl<K> Holder<K> {
    /// Runs a call that may move the next renewal deadline, then wakes the
    /// renewal thread if it must now act sooner than it planned.
    fn changing<T>(&self, call: impl FnOnce(&mut Core) -> T) -> T {
        let mut core = self.shared.core();
        let result = call(&mut core);
        core.rearm(&self.shared.changed);
        result
    }

    /// Blocks until granted (`Some(guard)`) or until the server's acquire
    /// timeout (`None`).
    pub fn acquire(&self) -> Result<Option<Guard<'_, K>>, Error> {
        let granted = self.changing(|core| flat(call!(core, call_acquire)))?;
        Ok(self.guard(granted.map(raw_async::grant), "acquire"))
    }

    /// Joins the queue without blocking: held at once
    /// ([`Enqueued::Acquired`]), or queued; then [`wait`](Self::wait).
    pub fn enqueue(&self) -> Result<Enqueued, Error> {
        let answer = raw_async::enqueued(self.changing(|core| flat(call!(core, call_enqueue)))?);
        if let Enqueued::Acquired(grant) = &answer {
            self.trace_grant(grant, "enqueue");
        }
        Ok(answer)
    }

    /// After [`enqueue`](Self::enqueue): blocks until granted or `timeout_s`
    /// (default: the acquire timeout) passes. At once after an
    /// [`Enqueued::Acquired`].
    pub fn wait(&self, timeout_s: Option<u64>) -> Result<Option<Guard<'_, K>>, Error> {
        let granted = self.changing(|core| flat(call!(core, call_wait, timeout_s)))?;
        Ok(self.guard(granted.map(raw_async::grant), "wait"))
    }

    fn guard(&self, granted: Option<Grant>, how: &str) -> Option<Guard<'_, K>> {
        let grant = granted?;
        self.trace_grant(&grant, how);
        Some(Guard { holder: self })
    }

    /// Releases: `true` when the server confirmed, `false` if nothing was held.
    pub fn release(&self) -> Result<bool, Error> {
        let released = self.changing(|core| flat(call!(core, call_release)));
        tracing::debug!(key = %self.key, ?released, "release");
        released
    }

    /// Renews now (normally automatic); returns the remaining seconds.
    pub fn renew(&self) -> Result<u64, Error> {
        self.changing(|core| flat(call!(core, call_renew)))
    }

    /// Drops the connection without a release.
    pub fn close(&self) -> Result<(), Error> {
        self.changing(|core| call!(core, call_close)).trap()
    }

    /// Whether a grant is held and its lease was not lost.
    pub fn is_held(&self) -> Result<bool, Error> {
        call!(self.shared.core(), call_is_held).trap()
    }

    /// The current grant (its token is a secret: don't log it), while
    /// held and not known lost.
    pub fn grant(&self) -> Result<Option<Grant>, Error> {
        let grant = call!(self.shared.core(), call_grant).trap()?;
        Ok(grant.map(raw_async::grant))
    }

    /// The current grant's token (a secret: don't log it).
    pub fn token(&self) -> Result<Option<String>, Error> {
        Ok(self.grant()?.map(|g| g.token))
    }

    /// The current grant's fence.
    pub fn fence(&self) -> Result<Option<u64>, Error> {
        Ok(self.grant()?.map(|g| g.fence))
    }

    /// The current grant's lease in seconds.
    pub fn lease_s(&self) -> Result<Option<u64>, Error> {
        Ok(self.grant()?.map(|g| g.lease_s))
    }

    /// The index of the server the key routes to.
    pub fn server_index(&self) -> Result<u32, Error> {
        call!(self.shared.core(), call_server_index).trap()
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    fn trace_grant(&self, grant: &Grant, how: &str) {
        tracing::debug!(key = %self.key, how, fence = grant.fence, "granted");
    }
}

impl Holder<Counting> {
    /// The semaphore's limit.
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(0)
    }
}

impl<K> Drop for Holder<K> {
    fn drop(&mut self) {
        driver::stop(&self.shared, self.driver.take());
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
        if let Err(e) = self.holder.release() {
            tracing::warn!(key = %self.holder.key, error = %e, "release on guard drop failed");
        }
    }
}
