//! Loading the component once (with wasmtime's on-disk cache of the
//! compiled code) and making sandboxed instances of it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Cache, CacheConfig, Config, Engine, ProfilingStrategy, Store};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::error::OrRuntime;
use crate::Error;

/// Per-instance host state: the WASI context and its resource table.
pub(crate) struct State {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl State {
    /// The resource table (the driver polls the instance's pollables in it).
    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

thread_local! {
    /// The instance (an index into its runtime's `here`) that async objects
    /// built on this thread of a multi-thread tokio runtime go to: one per
    /// worker thread, the closest to "one per core" that tokio lets a
    /// library see (it does not say which runtime a thread belongs to).
    static HERE: std::cell::RefCell<Vec<(std::sync::Weak<Loaded>, usize)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The component found when this crate was built, if any (`build.rs`).
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// The component, compiled and ready to instantiate. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Loaded>,
}

struct Loaded {
    engine: Engine,
    component: Component,
    pre_async: crate::raw_async::ClientPre<State>,
    /// The instances of this runtime's locks and semaphores: one per core
    /// (see [`instances`]), each made with the first object it gets, each
    /// with a driver thread that ends once this handle and every object's
    /// are gone.
    instance: Mutex<Vec<crate::instance::Instance>>,
    /// The instances driven by multi-thread tokio runtimes, for async
    /// objects (see [`Runtime::async_instance`]); only ever added to.
    here: Mutex<Vec<crate::instance::Instance>>,
    /// Objects go to the instances in turn.
    next: std::sync::atomic::AtomicUsize,
    /// The addresses that instance may reach: its objects' servers.
    allowed: Arc<RwLock<Vec<SocketAddr>>>,
}

/// Where a [`Runtime`] finds the component and keeps compiled artifacts.
#[derive(Debug, Clone, Default)]
pub struct RuntimeBuilder {
    component: Option<Source>,
    cache_dir: Option<PathBuf>,
    no_cache: bool,
    perf_map: bool,
}

/// Where the component comes from.
#[derive(Clone)]
enum Source {
    Path(PathBuf),
    Bytes(Arc<[u8]>),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Path(path) => f.debug_tuple("Path").field(path).finish(),
            Source::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
        }
    }
}

impl RuntimeBuilder {
    /// The component file. Default: `$DFLOCKD_COMPONENT` at run time, else
    /// the component embedded in this crate when it was built (the
    /// workspace's `cargo xtask build`, or `$DFLOCKD_COMPONENT` then), else
    /// that build's file.
    pub fn component(mut self, path: impl Into<PathBuf>) -> Self {
        self.component = Some(Source::Path(path.into()));
        self
    }

    /// The component itself, for an application that ships it inside its
    /// binary (`include_bytes!`) or fetched it elsewhere.
    pub fn component_bytes(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.component = Some(Source::Bytes(Arc::from(bytes.as_ref())));
        self
    }

    /// Where compiled artifacts are cached. Default: `$DFLOCKD_CACHE_DIR`,
    /// else `$XDG_CACHE_HOME/dflockd-component`, else `~/.cache/dflockd-component`.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Compile every time; never read or write the cache.
    pub fn no_cache(mut self) -> Self {
        self.no_cache = true;
        self
    }

    /// Writes `/tmp/perf-<pid>.map`, so that `perf report` names the
    /// component's compiled functions instead of showing bare addresses.
    pub fn perf_map(mut self) -> Self {
        self.perf_map = true;
        self
    }

    /// Loads (from the cache when it holds this exact component) and links.
    pub fn build(self) -> Result<Runtime, Error> {
        let bytes: Arc<[u8]> = match self.component {
            Some(Source::Bytes(bytes)) => bytes,
            Some(Source::Path(path)) => read_component(&path, "")?,
            None => match (std::env::var_os("DFLOCKD_COMPONENT"), embedded::EMBEDDED) {
                (None, Some(bytes)) => Arc::from(bytes),
                _ => read_component(
                    &default_component_path(),
                    " (none was embedded at build time: build it with `cargo xtask build` in \
                     the dflockd-component workspace before this crate, or set \
                     DFLOCKD_COMPONENT, RuntimeBuilder::component or \
                     RuntimeBuilder::component_bytes)",
                )?,
            },
        };
        let mut config = Config::new();
        if self.perf_map {
            config.profiler(ProfilingStrategy::PerfMap);
        }
        // Every instance's linear memory is a few mappings (the compiled
        // image, the rest, the reserve behind it) and an async call's stack
        // two more; the guard region wasmtime also puts *before* each memory
        // is one more, and with it 10,000 instances (7 maps each) overran
        // Linux's default vm.max_map_count of 65,530 ("Cannot allocate
        // memory"). It is defence in depth against a compiler bug, not a
        // bounds check: those stay elided by the reserve and guard behind.
        config.guard_before_linear_memory(false);
        if !self.no_cache {
            config.cache(cache(&self.cache_dir.unwrap_or_else(default_cache_dir)));
        }
        let engine = Engine::new(&config).or_runtime()?;
        let component = Component::new(&engine, &bytes).or_runtime()?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).or_runtime()?;
        let pre_async =
            crate::raw_async::ClientPre::new(linker.instantiate_pre(&component).or_runtime()?)
                .or_runtime()?;
        Ok(Runtime {
            inner: Arc::new(Loaded {
                engine,
                component,
                pre_async,
                instance: Mutex::new(Vec::new()),
                here: Mutex::new(Vec::new()),
                next: Default::default(),
                allowed: Arc::default(),
            }),
        })
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("counters", &self.counters())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// The default runtime (see [`RuntimeBuilder`]).
    pub fn new() -> Result<Self, Error> {
        Self::builder().build()
    }

    /// Configure where the component and the cache are.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// What this runtime's locks and semaphores counted, dropped ones
    /// included: connects, renewals sent and confirmed with their round
    /// trips, leases lost; as of each instance's last turn (its driver
    /// publishes them as it goes, so this never waits). The low-level
    /// [`Connection`](crate::Connection) is not counted.
    pub fn counters(&self) -> crate::Counters {
        let shared = crate::view::locked(&self.inner.instance).clone();
        let here = crate::view::locked(&self.inner.here).clone();
        shared
            .iter()
            .chain(&here)
            .map(crate::instance::Instance::counters)
            .fold(crate::Counters::ZERO, |a, b| a + b)
    }

    /// Lets this runtime's instances reach `addresses` (an object's servers).
    pub(crate) fn allow(&self, addresses: &[SocketAddr]) {
        let mut allowed = self
            .inner
            .allowed
            .write()
            .unwrap_or_else(|p| p.into_inner());
        for address in addresses {
            if !allowed.contains(address) {
                allowed.push(*address);
            }
        }
    }

    /// The instance for a new async lock or semaphore. On a multi-thread
    /// tokio runtime, one driven by that runtime's workers (made on first
    /// use; see `driver::start_here`), so that no call waits for a thread
    /// of the instance's; elsewhere (another executor, or a current-thread
    /// runtime, which runs its tasks only while its owner blocks on it) the
    /// shared ones of [`Runtime::instance`].
    pub(crate) async fn async_instance(&self) -> Result<crate::instance::Instance, Error> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        let Ok(handle) = Handle::try_current() else {
            return self.instance();
        };
        if handle.runtime_flavor() != RuntimeFlavor::MultiThread {
            return self.instance();
        }
        let loaded = Arc::downgrade(&self.inner);
        let known = HERE.with(|here| {
            let mut here = here.borrow_mut();
            here.retain(|(runtime, _)| runtime.strong_count() > 0);
            here.iter()
                .find(|(runtime, _)| runtime.ptr_eq(&loaded))
                .map(|&(_, index)| index)
        });
        let all = &self.inner.here;
        if let Some(instance) = known.and_then(|i| crate::view::locked(all).get(i).cloned()) {
            if instance.is_running() {
                return Ok(instance);
            }
        }
        let store = self.store();
        let instance = crate::driver::start_here(self.inner.pre_async.clone(), store).await?;
        let index = {
            let mut all = crate::view::locked(all);
            all.push(instance.clone());
            all.len() - 1
        };
        HERE.with(|here| {
            let mut here = here.borrow_mut();
            here.retain(|(runtime, _)| !runtime.ptr_eq(&loaded));
            here.push((loaded, index));
        });
        Ok(instance)
    }

    /// The instance for a new lock or semaphore: the next in turn (made,
    /// with its driver thread, on first use).
    pub(crate) fn instance(&self) -> Result<crate::instance::Instance, Error> {
        let mut slot = crate::view::locked(&self.inner.instance);
        if slot.len() >= instances() {
            let i = self
                .inner
                .next
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(slot[i % slot.len()].clone());
        }
        let instance = crate::driver::start(self.inner.pre_async.clone(), self.store())?;
        slot.push(instance.clone());
        Ok(instance)
    }

    /// A store for one of this runtime's instances: sandboxed to the
    /// runtime's allow-list.
    fn store(&self) -> Store<State> {
        let allowed = self.inner.allowed.clone();
        let ctx = sandboxed(move |addr| {
            let allowed = allowed.read().unwrap_or_else(|p| p.into_inner());
            allowed.contains(&addr)
        });
        Store::new(
            &self.inner.engine,
            State {
                ctx,
                table: ResourceTable::new(),
            },
        )
    }

    /// The wasmtime engine the component is compiled for.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The compiled component, for an embedder that links it itself (with
    /// [`sandbox`] for its WASI context).
    pub fn component(&self) -> &Component {
        &self.inner.component
    }

    /// The names the component imports and exports.
    pub fn component_names(&self) -> (Vec<String>, Vec<String>) {
        let ty = self.inner.component.component_type();
        let engine = &self.inner.engine;
        let imports = ty
            .imports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let exports = ty
            .exports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        (imports, exports)
    }
}

/// How many instances a runtime spreads its objects over: one per core,
/// so that each core can run a driver (one instance's driver runs on one
/// thread at a time). On 2 cores, 2 instances did 1.1-1.3x the throughput
/// of one at 10-50 workers (BENCHMARKS.md, issue 21); more than 4 are not
/// measured, so not made.
fn instances() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// The WASI context every instance gets: TCP to the `allowed` addresses
/// only (and name lookup), the host's monotonic clock from one epoch; no
/// files, no environment, no other address.
pub fn sandbox(allowed: &[SocketAddr]) -> WasiCtx {
    let allowed: Arc<[SocketAddr]> = allowed.into();
    sandboxed(move |addr| allowed.contains(&addr))
}

/// [`sandbox`], with the addresses a TCP connect may reach decided by `reachable`.
fn sandboxed(reachable: impl Fn(SocketAddr) -> bool + Send + Sync + 'static) -> WasiCtx {
    let mut wasi = WasiCtx::builder();
    wasi.monotonic_clock(crate::clock::EpochClock)
        .allow_tcp(true)
        .allow_ip_name_lookup(true)
        .socket_addr_check(move |addr, use_| {
            let ok = match use_ {
                SocketAddrUse::TcpConnect => reachable(addr),
                // wasi:sockets binds to the unspecified address before a connect.
                SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
                _ => false,
            };
            if !ok {
                tracing::warn!(%addr, ?use_, "sandbox refused a socket address");
            }
            Box::pin(async move { ok })
        });
    wasi.build()
}

/// The component embedded in this crate when it was built (`None` when
/// none was found then: see [`RuntimeBuilder::component`]).
pub fn embedded_component() -> Option<&'static [u8]> {
    embedded::EMBEDDED
}

/// `$DFLOCKD_COMPONENT`, else `cargo xtask build`'s output in this workspace.
pub fn default_component_path() -> PathBuf {
    std::env::var_os("DFLOCKD_COMPONENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/wasm32-wasip2/guest/dflockd_component.wasm")
        })
}

fn read_component(path: &Path, hint: &str) -> Result<Arc<[u8]>, Error> {
    std::fs::read(path).map(Arc::from).map_err(|e| {
        Error::Runtime(format!(
            "reading the component {}{hint}: {e}",
            path.display()
        ))
    })
}

fn default_cache_dir() -> PathBuf {
    let env = |name| std::env::var_os(name).map(PathBuf::from);
    env("DFLOCKD_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("dflockd-component")))
        .or_else(|| env("HOME").map(|d| d.join(".cache/dflockd-component")))
        .unwrap_or_else(|| std::env::temp_dir().join("dflockd-component"))
}

/// wasmtime's own cache of compiled code (its `cache` feature: keyed by
/// the component's bytes and the engine's settings, zstd-compressed,
/// pruned by its worker) in `dir`. A cache that cannot be set up only
/// costs a compile, each time.
fn cache(dir: &Path) -> Option<Cache> {
    let mut config = CacheConfig::new();
    config.with_directory(dir);
    Cache::new(config)
        .inspect_err(|e| {
            tracing::warn!(dir = %dir.display(), error = %e, "no cache for the compiled component")
        })
        .ok()
}
