//! The test harness: the real dflockd component, loaded once per test
//! binary through `dflockd-host`, instantiated in wasmtime with a WASI
//! context that may reach only the listed socket addresses (no files, no
//! environment), plus real server processes and a fault-only stand-in.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

pub use dflockd_host::raw::{
    Client, ConnectOptions, EnqueueStatus, Enqueued, Error, Instance, LeaseLost, Options, Server,
    TlsOptions, Trust,
};
use dflockd_host::Runtime;

pub mod server;
pub mod standin;

/// The component under test: `$DFLOCKD_COMPONENT`, or the workspace's release build.
pub fn component_path() -> PathBuf {
    dflockd_host::default_component_path()
}

/// The runtime shared by a test binary; its compile cache lives in the target dir.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let cache = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/component-cache");
        Runtime::builder()
            .cache_dir(cache)
            .build()
            .unwrap_or_else(|e| {
                panic!(
                    "loading {} failed (build it with `cargo xtask build`): {e}",
                    component_path().display()
                )
            })
    })
}

/// A fresh instance that may connect only to `allowed`.
pub fn instance(allowed: &[SocketAddr]) -> Instance {
    runtime()
        .instance(allowed)
        .unwrap_or_else(|e| panic!("instantiate: {e}"))
}

/// The names the built component imports and exports.
pub fn component_names() -> (Vec<String>, Vec<String>) {
    runtime().component_names()
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
