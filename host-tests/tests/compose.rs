//! Composition: an app component that imports `dflockd:client`
//! (`examples/compose/app`), plugged with the dflockd component by `wac
//! plug` (`cargo xtask test-hosts` builds both and plugs them into
//! `target/compose/composed.wasm`), run here as a `wasi:cli` command
//! against a dialect-v1 server: it takes a lock, holds it through two
//! leases by driving renewals itself, and releases it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use host_tests::raw::State;
use host_tests::server::dflockd;
use wasmtime::component::{Component, Linker};
use wasmtime::Store;
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::WasiCtx;

/// The composed command; made by `cargo xtask test-hosts`.
fn composed() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/compose/composed.wasm");
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask test-hosts` (it builds examples/compose/app and plugs \
         the component in with `wac plug`)",
        path.display()
    );
    // A user composes the published artifact, not this workspace's build.
    let plugged = std::fs::read_to_string(path.with_file_name("plugged-from")).unwrap_or_default();
    assert!(
        plugged.ends_with("target/dist/dflockd_component.wasm"),
        "composed from {plugged:?}, not from the dist artifact: run `cargo xtask test-hosts`"
    );
    path
}

/// A WASI context for the command: its environment names the server, TCP
/// reaches that address only, stdout and stderr are kept.
fn context(server: SocketAddr, stdout: &MemoryOutputPipe, stderr: &MemoryOutputPipe) -> WasiCtx {
    let allowed: Arc<SocketAddr> = Arc::new(server);
    let mut wasi = WasiCtx::builder();
    wasi.env("DFLOCKD_HOST", server.ip().to_string())
        .env("DFLOCKD_PORT", server.port().to_string())
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(true)
        .socket_addr_check(move |addr, use_| {
            let ok = match use_ {
                SocketAddrUse::TcpConnect => addr == *allowed,
                SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
                _ => false,
            };
            Box::pin(async move { ok })
        });
    wasi.build()
}

#[test]
fn the_composed_app_holds_a_lock_through_two_leases_against_the_real_server() {
    let server = dflockd(&[]);
    let engine = host_tests::runtime().engine();
    let component = Component::from_file(engine, composed()).expect("a component");
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("WASI");
    let (stdout, stderr) = (
        MemoryOutputPipe::new(1 << 16),
        MemoryOutputPipe::new(1 << 16),
    );
    let state = State::new(context(server.addr, &stdout, &stderr));
    let mut store = Store::new(engine, state);
    let command = Command::instantiate(&mut store, &component, &linker).expect("instantiate");
    let ran = command
        .wasi_cli_run()
        .call_run(&mut store)
        .expect("no trap");
    let printed = String::from_utf8_lossy(&stdout.contents()).into_owned();
    let complained = String::from_utf8_lossy(&stderr.contents()).into_owned();
    assert_eq!(ran, Ok(()), "the app failed: {printed}{complained}");
    assert!(
        printed.contains("acquired compose-demo, fence"),
        "{printed}"
    );
    assert!(
        printed.contains("held through 2 leases and released"),
        "{printed}"
    );
    let stats = host_tests::connect(server.addr).stats().expect("stats");
    assert!(
        stats.locks.iter().all(|l| l.key != "compose-demo"),
        "still held: {stats:?}"
    );
}
