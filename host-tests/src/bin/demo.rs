//! `cargo xtask demo`: the component in wasmtime, showing what it does.
//!
//! Runs everything that needs no server, then talks to a dflockd on
//! 127.0.0.1:6388 if one answers there.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use host_tests::{component_names, instance, server_of, ConnectOptions};

const TOKEN: &str = "00000000000001a40123456789abcdef";

fn main() -> wasmtime::Result<()> {
    let path = host_tests::component_path();
    let size = std::fs::metadata(&path)
        .map_err(wasmtime::Error::msg)?
        .len();
    println!(
        "dflockd component: {} ({} KiB)",
        path.display(),
        size / 1024
    );
    let (imports, exports) = component_names();
    println!("  imports ({}): {}", imports.len(), imports.join(", "));
    println!("  exports: {}", exports.join(", "));

    let server = SocketAddr::from(([127, 0, 0, 1], 6388));
    let mut inst = instance(&[server]);
    let s = &mut inst.store;

    println!("\nsharding (CRC-32, same as the Go/Python/TypeScript clients):");
    let sharding = inst.client.dflockd_client_sharding();
    for key in ["user:42:profile", "orders", "row:42"] {
        println!(
            "  {key:>16} -> server {} of 3",
            sharding.call_shard_index(&mut *s, key, 3)?.map_err(fmt)?
        );
    }

    println!("\nfencing:");
    let fencing = inst.client.dflockd_client_fencing();
    let fence = fencing
        .call_fence_from_token(&mut *s, TOKEN)?
        .map_err(fmt)?;
    println!("  token {}… carries fence {fence}", &TOKEN[..8]);
    let guards = fencing.fence_guard();
    let guard = guards.call_constructor(&mut *s)?;
    for f in [fence, fence + 1, fence] {
        let verdict = match guards.call_check(&mut *s, guard, "row:42", f)? {
            Ok(()) => "accepted".to_string(),
            Err(stale) => format!("refused (highest seen {})", stale.highest),
        };
        println!("  write with fence {f}: {verdict}");
    }
    guard.resource_drop(&mut *s)?;

    println!("\nvalidation (typed errors, nothing sent):");
    let locks = inst.client.dflockd_client_locks().lock();
    let opts = host_tests::options(server);
    for key in ["", "two words", "line\nbreak"] {
        let err = locks.call_open(&mut *s, key, &opts)?.err();
        println!("  key {key:?}: {err:?}");
    }

    println!("\nserver on {server}:");
    if TcpStream::connect_timeout(&server, Duration::from_millis(300)).is_err() {
        println!("  none answers. The real dflockd cannot be installed on this machine yet");
        println!("  (the Go module proxy refuses github.com/mtingers/dflockd); start one yourself");
        println!("  on 127.0.0.1:6388 and run the demo again to see locks, semaphores and stats.");
        return Ok(());
    }
    let conns = inst.client.dflockd_client_connection().connection();
    let plain = ConnectOptions {
        connect_timeout_ms: Some(2_000),
        auth_token: None,
        tls: None,
    };
    let conn = conns
        .call_open(&mut *s, &server_of(server), &plain)?
        .map_err(fmt)?;
    conns.call_ping(&mut *s, conn)?.map_err(fmt)?;
    let stats = conns.call_stats(&mut *s, conn)?.map_err(fmt)?;
    println!(
        "  ping ok; {} connections, {} locks held",
        stats.connections,
        stats.locks.len()
    );
    conn.resource_drop(&mut *s)?;
    Ok(())
}

fn fmt(e: host_tests::Error) -> wasmtime::Error {
    wasmtime::Error::msg(format!("{e:?}"))
}
