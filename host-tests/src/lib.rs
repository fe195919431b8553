//! The test harness: the real dflockd component, compiled once per test
//! binary, instantiated in wasmtime with a WASI context that may reach only
//! the listed socket addresses (and nothing else: no files, no environment).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use wasmtime::component::{Component, Linker, Resource, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::p2::bindings::sync::io::poll::HostPollable;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub mod server;
pub mod standin;

/// Host bindings generated from `wit/`, the single source of truth.
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "client",
        with: { "wasi:io/poll": wasmtime_wasi::p2::bindings::sync::io::poll },
        additional_derives: [PartialEq],
    });
}

pub use bindings::exports::dflockd::client::connection::Enqueued;
pub use bindings::exports::dflockd::client::driver::LeaseLost;
pub use bindings::exports::dflockd::client::types::EnqueueStatus;
pub use bindings::exports::dflockd::client::types::{ConnectOptions, Error, Options, Server};
pub use bindings::Client;

/// Per-instance host state.
pub struct State {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

struct Loaded {
    engine: Engine,
    pre: bindings::ClientPre<State>,
}

/// The built component: `$DFLOCKD_COMPONENT`, or the release build in the workspace target dir.
pub fn component_path() -> PathBuf {
    std::env::var_os("DFLOCKD_COMPONENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/wasm32-wasip2/release/dflockd_component.wasm")
        })
}

fn loaded() -> &'static Loaded {
    static LOADED: OnceLock<Loaded> = OnceLock::new();
    LOADED.get_or_init(|| {
        let path = component_path();
        load(&path).unwrap_or_else(|e| {
            panic!(
                "loading {} failed (build it with `cargo xtask build`): {e:?}",
                path.display()
            )
        })
    })
}

fn load(path: &std::path::Path) -> wasmtime::Result<Loaded> {
    let engine = Engine::new(&Config::new())?;
    let component = Component::from_file(&engine, path)?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    let pre = bindings::ClientPre::new(linker.instantiate_pre(&component)?)?;
    Ok(Loaded { engine, pre })
}

/// One component instance and its store.
pub struct Instance {
    pub store: Store<State>,
    pub client: Client,
}

impl Instance {
    /// Whether a pollable the component returned is ready now.
    pub fn pollable_ready(&mut self, pollable: &Resource<DynPollable>) -> bool {
        let borrowed = Resource::new_borrow(pollable.rep());
        HostPollable::ready(&mut self.store.data_mut().table, borrowed).expect("pollable in table")
    }

    /// Blocks until a pollable the component returned is ready.
    pub fn block_on(&mut self, pollable: &Resource<DynPollable>) {
        let borrowed = Resource::new_borrow(pollable.rep());
        HostPollable::block(&mut self.store.data_mut().table, borrowed).expect("pollable in table")
    }

    /// One driver step, as a host does between calls: wait for the
    /// component's next wakeup, then `drive`. Returns the leases lost.
    pub fn drive_once(&mut self) -> Vec<LeaseLost> {
        let wakeup = self
            .client
            .dflockd_client_driver()
            .call_next_wakeup(&mut self.store);
        let wakeup = wakeup.expect("next-wakeup");
        self.block_on(&wakeup);
        self.drop_pollable(wakeup);
        self.client
            .dflockd_client_driver()
            .call_drive(&mut self.store)
            .expect("drive")
    }

    /// Drops a pollable the component returned.
    pub fn drop_pollable(&mut self, pollable: Resource<DynPollable>) {
        HostPollable::drop(&mut self.store.data_mut().table, pollable).expect("pollable in table")
    }
}

/// A fresh instance that may connect only to `allowed`.
pub fn instance(allowed: &[SocketAddr]) -> Instance {
    let loaded = loaded();
    let allowed: Arc<[SocketAddr]> = allowed.into();
    let mut wasi = WasiCtx::builder();
    wasi.allow_tcp(true)
        .allow_ip_name_lookup(true)
        .socket_addr_check(move |addr, use_| {
            let ok = match use_ {
                SocketAddrUse::TcpConnect => allowed.contains(&addr),
                // wasi:sockets binds implicitly to the unspecified address before a connect.
                SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
                _ => false,
            };
            Box::pin(async move { ok })
        });
    let state = State {
        ctx: wasi.build(),
        table: ResourceTable::new(),
    };
    let mut store = Store::new(&loaded.engine, state);
    let client = loaded
        .pre
        .instantiate(&mut store)
        .unwrap_or_else(|e| panic!("instantiate: {e:#}"));
    Instance { store, client }
}

/// Options for one server with everything else at its default.
pub fn options(server: SocketAddr) -> Options {
    Options {
        servers: vec![server_of(server)],
        connect: ConnectOptions {
            connect_timeout_ms: None,
            auth_token: None,
            tls: None,
        },
        acquire_timeout_s: None,
        lease_ttl_s: None,
        renew_ratio: None,
        server_index: None,
    }
}

/// The WIT `server` for a socket address.
pub fn server_of(addr: SocketAddr) -> Server {
    Server {
        host: addr.ip().to_string(),
        port: addr.port(),
    }
}

/// A loopback address where nothing listens (bound, then closed).
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// The names the built component imports and exports, as wasmtime sees them.
pub fn component_names() -> (Vec<String>, Vec<String>) {
    let loaded = loaded();
    let component = loaded.pre.instance_pre().component();
    let ty = component.component_type();
    let imports = ty
        .imports(&loaded.engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let exports = ty
        .exports(&loaded.engine)
        .map(|(name, _)| name.to_string())
        .collect();
    (imports, exports)
}
