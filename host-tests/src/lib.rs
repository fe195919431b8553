//! The test harness: the real dflockd component, loaded once per test
//! binary through `dflockd-host`, instantiated in wasmtime with a WASI
//! context that may reach only the listed socket addresses (no files, no
//! environment), plus server processes (the test server, or a real dflockd
//! with `DFLOCKD_BIN`) and a fault-only stand-in.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use dflockd_host::{Builder, Counting, Exclusive, Runtime};
pub use raw::{
    Client, ClientCert, Command, Completion, Enqueued, Error, Event, Grant, Instance, Kind,
    LeaseLost, Loss, LossCause, Outcome, Server, Setting, TlsSetting,
};

pub mod certs;
pub mod interop;
pub mod logs;
pub mod matrix;
pub mod mtls;
pub mod proxy;
#[allow(missing_docs)]
pub mod raw;
pub mod scenarios;
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
        let builder = Runtime::builder().cache_dir(cache);
        // For `perf record` of a bench or test: names the compiled functions.
        let builder = match std::env::var_os("DFLOCKD_PERF_MAP") {
            Some(_) => builder.perf_map(),
            None => builder,
        };
        builder.build().unwrap_or_else(|e| {
            panic!(
                "loading {} failed (build it with `cargo xtask build`): {e}",
                component_path().display()
            )
        })
    })
}

/// The shared runtime's component, linked for the bare-contract bindings.
pub fn raw() -> &'static raw::Raw {
    static RAW: OnceLock<raw::Raw> = OnceLock::new();
    RAW.get_or_init(|| raw::Raw::new(runtime()).unwrap_or_else(|e| panic!("link: {e:?}")))
}

/// A fresh instance that may connect only to `allowed`.
pub fn instance(allowed: &[SocketAddr]) -> Instance {
    raw()
        .instance(allowed)
        .unwrap_or_else(|e| panic!("instantiate: {e:?}"))
}

/// The names the built component imports and exports.
pub fn component_names() -> (Vec<String>, Vec<String>) {
    runtime().component_names()
}

/// Settings for one server with everything else at its default.
pub fn options(server: SocketAddr) -> Vec<Setting> {
    vec![Setting::Servers(vec![server_of(server)])]
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

/// A `dflockd-host` lock on `key`, routed to the server at `addr`.
pub fn lock_on(addr: SocketAddr, key: &str) -> Builder<Exclusive> {
    runtime()
        .lock(key)
        .server(addr.ip().to_string(), addr.port())
}

/// A `dflockd-host` semaphore of `limit` on `key`, at the server at `addr`.
pub fn semaphore_on(addr: SocketAddr, key: &str, limit: u32) -> Builder<Counting> {
    runtime()
        .semaphore(key, limit)
        .server(addr.ip().to_string(), addr.port())
}

/// A low-level `dflockd-host` connection to the server at `addr`.
pub fn connect(addr: SocketAddr) -> dflockd_host::Connection {
    runtime()
        .connect(&addr.ip().to_string(), addr.port(), None)
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
}

/// Runs `f` on another thread and returns its answer; panics if there is
/// none within `limit`: a guard against hangs, far above any documented
/// bound, not a measurement.
pub fn within<T: Send + 'static>(
    limit: std::time::Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("no answer within {limit:?}: a hang"))
}

/// Asks `probe` again (every 20 ms) until it answers `Some`, for at most
/// `within`: for server-side events that have no notification, such as a
/// lease ending. Panics with `what` when time runs out.
pub fn eventually<T>(
    what: &str,
    within: std::time::Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(started.elapsed() < within, "not within {within:?}: {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
