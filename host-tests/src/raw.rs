//! The bare WIT contract for the tests: bindings with blocking exports,
//! generated from `wit/` (the single source of truth), and one sandboxed
//! instance of the component that `dflockd-host` loaded. `dflockd-host`
//! keeps its own (async) bindings private; these are the tests' own.

use std::net::SocketAddr;

use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime::Store;
use wasmtime_wasi::p2::bindings::sync::io::poll::{Host as _, HostPollable};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "client",
    with: { "wasi:io/poll": wasmtime_wasi::p2::bindings::sync::io::poll },
    additional_derives: [PartialEq],
});

pub use exports::dflockd::client::connection::{
    AcquireRequest, Answer, ConnectionCommand, ReleaseRequest, RenewRequest,
};
pub use exports::dflockd::client::driver::{Completion, ConnectionCompletion, Event, LeaseLost};
pub use exports::dflockd::client::types::{
    ClientCert, Command, Enqueued, Error, Grant, Kind, Loss, LossCause, Outcome, Server, Setting,
    TlsSetting,
};

/// Per-instance host state: the WASI context and its resource table.
pub struct State {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl State {
    /// A state around `ctx`, with an empty resource table.
    pub fn new(ctx: WasiCtx) -> Self {
        State {
            ctx,
            table: ResourceTable::new(),
        }
    }

    /// The resource table (where the component's pollables are).
    pub fn table(&mut self) -> &mut ResourceTable {
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

/// One component instance and its store.
pub struct Instance {
    /// The store; every call takes `&mut` of it.
    pub store: Store<State>,
    /// The component's exports.
    pub client: Client,
}

/// The component of a `dflockd-host` runtime, linked for these bindings.
pub struct Raw {
    engine: wasmtime::Engine,
    pre: ClientPre<State>,
}

impl Raw {
    /// Links the runtime's component against wasmtime-wasi's sync WASI.
    pub fn new(runtime: &dflockd_host::Runtime) -> wasmtime::Result<Self> {
        let mut linker = Linker::new(runtime.engine());
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        let pre = ClientPre::new(linker.instantiate_pre(runtime.component())?)?;
        Ok(Raw {
            engine: runtime.engine().clone(),
            pre,
        })
    }

    /// A new instance whose only network reach is TCP to `allowed` (the
    /// sandbox `dflockd-host` gives its own instances).
    pub fn instance(&self, allowed: &[SocketAddr]) -> wasmtime::Result<Instance> {
        let state = State::new(dflockd_host::sandbox(allowed));
        let mut store = Store::new(&self.engine, state);
        let client = self.pre.instantiate(&mut store)?;
        Ok(Instance { store, client })
    }
}

impl Instance {
    /// Whether a pollable the component returned is ready now.
    pub fn pollable_ready(&mut self, pollable: &Resource<DynPollable>) -> wasmtime::Result<bool> {
        let borrowed = Resource::new_borrow(pollable.rep());
        HostPollable::ready(&mut self.store.data_mut().table, borrowed)
    }

    /// Blocks until a pollable the component returned is ready.
    pub fn block_on(&mut self, pollable: &Resource<DynPollable>) -> wasmtime::Result<()> {
        let borrowed = Resource::new_borrow(pollable.rep());
        HostPollable::block(&mut self.store.data_mut().table, borrowed)
    }

    /// Drops a pollable the component returned.
    pub fn drop_pollable(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        HostPollable::drop(&mut self.store.data_mut().table, pollable)
    }

    /// One driver step as a host does it between calls: wait for the
    /// component's next wakeup, then `drive`. Returns the leases lost.
    pub fn drive_once(&mut self) -> wasmtime::Result<Vec<LeaseLost>> {
        let wakeup = self
            .client
            .dflockd_client_driver()
            .call_next_wakeup(&mut self.store)?;
        let waited = self.block_on(&wakeup);
        self.drop_pollable(wakeup)?;
        waited?;
        self.client
            .dflockd_client_driver()
            .call_drive(&mut self.store)
    }

    /// One turn of a host that waits for the whole instance outside any
    /// call: take `driver.pollables`, wait until one is ready (none: the
    /// instance has nothing pending, and this returns at once), drop
    /// them, then `driver.poll-events`.
    pub fn turn(&mut self) -> wasmtime::Result<Vec<Event>> {
        self.turn_within(None)
    }

    /// [`Instance::turn`], waiting at most `limit` (a host's own timer
    /// among the component's pollables).
    pub fn turn_for(&mut self, limit: std::time::Duration) -> wasmtime::Result<Vec<Event>> {
        self.turn_within(Some(limit))
    }

    fn turn_within(&mut self, limit: Option<std::time::Duration>) -> wasmtime::Result<Vec<Event>> {
        use wasmtime_wasi::clocks::WasiClocksView;
        use wasmtime_wasi::p2::bindings::clocks::monotonic_clock::Host as _;
        let timer = match limit {
            Some(limit) => {
                let ns = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
                Some(self.store.data_mut().clocks().subscribe_duration(ns)?)
            }
            None => None,
        };
        self.turn_with(timer)
    }

    /// Waits on the component's pollables and the host's `timer`, drops
    /// them all, then takes `driver.poll-events`. With none at all
    /// (nothing pending, no timer), it does not wait.
    fn turn_with(&mut self, timer: Option<Resource<DynPollable>>) -> wasmtime::Result<Vec<Event>> {
        self.wait_ready(timer)?;
        let driver = self.client.dflockd_client_driver();
        driver.call_poll_events(&mut self.store)
    }

    /// Waits until one of `driver.pollables` (or `timer`) is ready and
    /// drops them, without taking the events: the next call finds them.
    pub fn wait_ready(&mut self, timer: Option<Resource<DynPollable>>) -> wasmtime::Result<()> {
        let driver = self.client.dflockd_client_driver();
        let mut pollables = driver.call_pollables(&mut self.store)?;
        pollables.extend(timer);
        if pollables.is_empty() {
            return Ok(());
        }
        self.poll_then_drop(pollables).map(drop)
    }

    /// Waits until one of `pollables` is ready, drops them all, and gives
    /// the indices of the ready ones.
    fn poll_then_drop(
        &mut self,
        pollables: Vec<Resource<DynPollable>>,
    ) -> wasmtime::Result<Vec<u32>> {
        let borrowed = pollables
            .iter()
            .map(|p| Resource::new_borrow(p.rep()))
            .collect();
        let waited = self.store.data_mut().table.poll(borrowed);
        for pollable in pollables {
            self.drop_pollable(pollable)?;
        }
        waited
    }

    /// `connection.create`, then the blocking `connect`: an open
    /// connection (dropped again when the connect fails).
    pub fn open_connection(
        &mut self,
        server: &Server,
        settings: &[Setting],
    ) -> wasmtime::Result<Result<wasmtime::component::ResourceAny, Error>> {
        let conns = self.client.dflockd_client_connection().connection();
        let conn = match conns.call_create(&mut self.store, server, settings)? {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(e)),
        };
        match conns.call_connect(&mut self.store, conn)? {
            Ok(()) => Ok(Ok(conn)),
            Err(e) => {
                conn.resource_drop(&mut self.store)?;
                Ok(Err(e))
            }
        }
    }

    /// Waits until one of `driver.pollables` is ready, or `bound` passes
    /// (a host timer beside them); says of each of the component's
    /// pollables whether it was ready then, and drops them all.
    pub fn which_ready(&mut self, bound: std::time::Duration) -> wasmtime::Result<Vec<bool>> {
        use wasmtime_wasi::clocks::WasiClocksView;
        use wasmtime_wasi::p2::bindings::clocks::monotonic_clock::Host as _;
        let driver = self.client.dflockd_client_driver();
        let mut pollables = driver.call_pollables(&mut self.store)?;
        let ours = pollables.len();
        let ns = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        pollables.push(self.store.data_mut().clocks().subscribe_duration(ns)?);
        let ready = self.poll_then_drop(pollables)?;
        Ok((0..ours)
            .map(|i| ready.iter().any(|&r| r as usize == i))
            .collect())
    }

    /// How many pollables `driver.pollables` gives now (dropped at once).
    pub fn pending(&mut self) -> wasmtime::Result<usize> {
        let driver = self.client.dflockd_client_driver();
        let pollables = driver.call_pollables(&mut self.store)?;
        let n = pollables.len();
        for pollable in pollables {
            self.drop_pollable(pollable)?;
        }
        Ok(n)
    }
}
