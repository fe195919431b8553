//! The WIT-level bindings with blocking exports, generated from `wit/` (the
//! single source of truth), and one sandboxed instance of the component, for
//! tests and embedders that need the bare contract. The typed API of this
//! crate is built on [`crate::raw_async`] instead (see `runtime.rs`).

use wasmtime::component::{Resource, ResourceTable};
use wasmtime::Store;
use wasmtime_wasi::p2::bindings::sync::io::poll::HostPollable;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "client",
    with: { "wasi:io/poll": wasmtime_wasi::p2::bindings::sync::io::poll },
    additional_derives: [PartialEq],
});

pub use exports::dflockd::client::connection::{Enqueued, Stats};
pub use exports::dflockd::client::driver::LeaseLost;
pub use exports::dflockd::client::types::{
    ClientCert, ConnectOptions, EnqueueStatus, Error, Grant, Options, Server, TlsOptions,
};

/// Per-instance host state: the WASI context and its resource table.
pub struct State {
    pub(crate) ctx: WasiCtx,
    pub(crate) table: ResourceTable,
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
}
