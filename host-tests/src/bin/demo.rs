//! `cargo xtask demo`: the component in wasmtime, showing what it does.
//!
//! Runs everything that needs no server, then a lock's life against the
//! dflockd on 127.0.0.1:6388, starting the test server there (dialect v2,
//! so that fences rise) if none answers.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use host_tests::server::{dflockd_in, newest_dialect, Server};
use host_tests::{component_names, instance, Enqueued, Grant, Setting};

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
    let _started = if TcpStream::connect_timeout(&server, Duration::from_millis(300)).is_ok() {
        println!("  a server answers there; using it");
        None
    } else {
        let dialect = newest_dialect();
        println!(
            "  none answers: starting {} there (stopped at the end)",
            host_tests::server::describe(dialect)
        );
        Some(host_tests::server::start(dialect, server.port(), &[]))
    };
    locks_demo(&mut inst, server)?;
    run_examples(server)
}

/// Extra environment for one example.
type Env<'a> = &'a [(&'a str, &'a str)];

/// Runs the example programs (built by `cargo xtask demo` into
/// `$DFLOCKD_EXAMPLES_DIR`) against the server, scaled to run quickly.
fn run_examples(server: SocketAddr) -> wasmtime::Result<()> {
    let Some(dir) = std::env::var_os("DFLOCKD_EXAMPLES_DIR").map(std::path::PathBuf::from) else {
        println!("\n(examples not built: run the demo through `cargo xtask demo`)");
        return Ok(());
    };
    // Sharding wants three servers: this one and two more on free ports;
    // the auth example a server that demands a token.
    let extra = [started(&[]), started(&[])];
    let three = format!("{server},{},{}", extra[0].addr, extra[1].addr);
    let secret = "demo-secret";
    let guarded = started(&["--auth-token", secret]);
    let guarded_addr = guarded.addr.to_string();
    // The TLS example: a server with a certificate from a throwaway CA.
    let pki = host_tests::certs::Pki::new("demo-ca");
    let ca_path = pki.ca_file().display().to_string();
    let tls = host_tests::server::dflockd_tls_in(
        newest_dialect(),
        &pki.localhost(),
        &["--auth-token", secret],
    );
    let tls_addr = tls.addr.to_string();
    let runs: [(&str, String, Env); 11] = [
        (
            "hold",
            "hold a lock with auto-renewal (2 s lease, held 4.5 s)".into(),
            &[("HOLD_LEASE_S", "2")],
        ),
        ("fifo", "FIFO ordering, 9 workers".into(), &[]),
        ("two_phase", "two-phase acquisition".into(), &[]),
        ("semaphore", "a semaphore of 3 slots, 9 workers".into(), &[]),
        ("errors", "handling specific errors".into(), &[]),
        (
            "auth",
            format!("authentication, against a server on {guarded_addr} started with --auth-token"),
            &[
                ("DFLOCKD_SERVERS", &guarded_addr),
                ("DFLOCKD_AUTH_TOKEN", secret),
            ],
        ),
        (
            "sharding",
            "multi-server sharding over 3 servers".into(),
            &[("DFLOCKD_SERVERS", &three)],
        ),
        (
            "stats",
            "server stats over the low-level connection".into(),
            &[],
        ),
        ("fencing", "fencing tokens".into(), &[]),
        (
            "lock_set",
            "a lock set: six transfers, each taking two accounts or neither".into(),
            &[],
        ),
        (
            "tls",
            format!("TLS and auth, against a server on {tls_addr} with a throwaway CA"),
            &[
                ("DFLOCKD_SERVERS", &tls_addr),
                ("DFLOCKD_TLS_CA", &ca_path),
                ("DFLOCKD_AUTH_TOKEN", secret),
            ],
        ),
    ];
    for (name, title, env) in runs {
        // Each example, then its async twin (the same program on tokio).
        for (name, flavour) in [(name.to_string(), ""), (format!("{name}_async"), ", async")] {
            run_example(&dir, server, &name, &format!("{title}{flavour}"), env)?;
        }
    }
    run_cli(&dir, server)
}

/// `$PATH` with `dir` first.
fn path_with(dir: &std::path::Path) -> std::ffi::OsString {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    let all = std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&rest));
    std::env::join_paths(all).unwrap_or(rest)
}

/// `dflock run` and `dflock stats` once each, as an operator types them.
fn run_cli(dir: &std::path::Path, server: SocketAddr) -> wasmtime::Result<()> {
    let servers = server.to_string();
    let dflock = dir.join("dflock");
    let script = "echo \"  $DFLOCK_KEY held, fence $DFLOCK_FENCE: the job runs\"";
    let stats = ["dflock", "--servers", &servers, "stats"];
    let under_lock: Vec<&str> = ["run", "nightly-job", "--"]
        .into_iter()
        .chain(stats)
        .collect();
    let runs: [(&str, &[&str]); 2] = [
        ("run", &["run", "nightly-job", "--", "sh", "-c", script]),
        ("stats, run while it holds the lock", &under_lock),
    ];
    for (what, args) in runs {
        println!(
            "\n== dflock {what}: dflock --servers {servers} {}",
            args.join(" ")
        );
        let out = std::process::Command::new(&dflock)
            // The nested `dflock` is this one.
            .env("PATH", path_with(dir))
            .args(["--servers", &servers])
            .args(args)
            .output()
            .map_err(|e| wasmtime::Error::msg(format!("running dflock: {e}")))?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            return Err(wasmtime::Error::msg(format!(
                "dflock {what} failed: {}",
                out.status
            )));
        }
    }
    Ok(())
}

/// One more server for the examples, in the demo's dialect, on a free port.
fn started(flags: &[&str]) -> Server {
    dflockd_in(newest_dialect(), flags)
}

/// Runs one example program and shows what it printed.
fn run_example(
    dir: &std::path::Path,
    server: SocketAddr,
    name: &str,
    title: &str,
    env: Env,
) -> wasmtime::Result<()> {
    println!("\n== example {name}: {title}");
    let out = std::process::Command::new(dir.join(name))
        .env("DFLOCKD_SERVERS", server.to_string())
        .env("DFLOCKD_DEMO_SCALE", "0.1")
        .envs(env.iter().copied())
        .output()
        .map_err(|e| wasmtime::Error::msg(format!("running {name}: {e}")))?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        return Err(wasmtime::Error::msg(format!(
            "example {name} failed: {}",
            out.status
        )));
    }
    Ok(())
}

/// A lock's life through the component: acquire, accessors, contention,
/// two-phase, release.
fn locks_demo(inst: &mut host_tests::Instance, server: SocketAddr) -> wasmtime::Result<()> {
    let locks = inst.client.dflockd_client_locks().lock();
    let s = &mut inst.store;
    let mut opts = host_tests::options(server);
    opts.push(Setting::LeaseTtlS(20));
    let lock = locks.call_open(&mut *s, "demo:foo", &opts)?.map_err(fmt)?;
    let granted = locks.call_acquire(&mut *s, lock)?.map_err(fmt)?;
    println!("  acquire demo:foo -> {}", shown(granted.as_ref()));

    let mut try_opts = host_tests::options(server);
    try_opts.push(Setting::AcquireTimeoutS(0));
    let rival = locks
        .call_open(&mut *s, "demo:foo", &try_opts)?
        .map_err(fmt)?;
    let tried = locks.call_acquire(&mut *s, rival)?.map_err(fmt)?;
    println!(
        "  a second lock, try-lock on the held key -> {}",
        shown(tried.as_ref())
    );
    let queued = locks
        .call_open(&mut *s, "demo:foo", &host_tests::options(server))?
        .map_err(fmt)?;
    let enqueued = match locks.call_enqueue(&mut *s, queued)?.map_err(fmt)? {
        Enqueued::Acquired(grant) => format!("acquired at once: {}", shown(Some(&grant))),
        Enqueued::Queued => "queued".to_string(),
    };
    println!("  two-phase: enqueue -> {enqueued}");
    println!(
        "  release the first -> {:?}",
        locks.call_release(&mut *s, lock)?
    );
    let waited = locks.call_wait(&mut *s, queued, Some(5))?.map_err(fmt)?;
    println!("  the queued one: wait -> {}", shown(waited.as_ref()));
    println!("  release it -> {:?}", locks.call_release(&mut *s, queued)?);
    for handle in [lock, rival, queued] {
        handle.resource_drop(&mut *s)?;
    }
    Ok(())
}

/// A grant as the demo may show it: the token only as a short prefix.
fn shown(grant: Option<&Grant>) -> String {
    match grant {
        Some(g) => format!(
            "granted: token {}…, fence {}, lease {} s",
            g.token.get(..8).unwrap_or(""),
            g.fence,
            g.lease_s
        ),
        None => "not granted (the server's timeout)".to_string(),
    }
}

fn fmt(e: host_tests::Error) -> wasmtime::Error {
    wasmtime::Error::msg(format!("{e:?}"))
}
