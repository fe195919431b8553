//! The typed Rust API of `dflockd-host` (blocking) against the real
//! a dialect-v1 server (see `host_tests::server`).

use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use dflockd_host::{Enqueued, Error, Kind, Lock, LossCause, Runtime};
use host_tests::runtime;
use host_tests::server::dflockd;

fn lock(addr: std::net::SocketAddr, key: &str) -> dflockd_host::Builder<dflockd_host::Exclusive> {
    runtime()
        .lock(key)
        .server(addr.ip().to_string(), addr.port())
}

#[test]
fn a_guard_releases_when_dropped() {
    let server = dflockd(&[]);
    let holder = lock(server.addr, "guarded").build().unwrap();
    let other = lock(server.addr, "guarded")
        .acquire_timeout_s(0)
        .build()
        .unwrap();
    {
        let guard = holder.acquire().unwrap().expect("granted");
        assert!(guard.is_held());
        assert!(guard.token().is_some());
        assert!(other.acquire().unwrap().is_none(), "held by the guard");
    }
    assert!(!holder.is_held());
    let guard = other
        .acquire()
        .unwrap()
        .expect("free after the guard dropped");
    assert_eq!(guard.release(), Ok(true));
}

#[test]
fn nine_threads_are_granted_in_fifo_order() {
    let server = dflockd(&[]);
    let first = lock(server.addr, "fifo-host").build().unwrap();
    let held = first.acquire().unwrap().expect("granted");
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    for n in 0..9 {
        // Enqueued here, one by one, so the queue order is known.
        let worker: Lock = lock(server.addr, "fifo-host")
            .acquire_timeout_s(30)
            .build()
            .unwrap();
        assert_eq!(worker.enqueue(), Ok(Enqueued::Queued), "worker {n}");
        let order = order.clone();
        threads.push(thread::spawn(move || {
            let guard = worker.wait(Some(30)).unwrap().expect("granted");
            order.lock().unwrap().push(n);
            drop(guard);
        }));
    }
    drop(held);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..9).collect::<Vec<_>>());
}

#[test]
fn background_renewal_holds_a_lease_for_three_lease_lengths() {
    let server = dflockd(&[]);
    let holder = lock(server.addr, "bg").lease_ttl_s(2).build().unwrap();
    let guard = holder.acquire().unwrap().expect("granted");
    let waiter = lock(server.addr, "bg")
        .acquire_timeout_s(6)
        .build()
        .unwrap();
    assert!(
        waiter.acquire().unwrap().is_none(),
        "not granted during 6 s = 3 leases"
    );
    assert!(guard.is_held());
    assert_eq!(guard.release(), Ok(true));
}

#[test]
fn a_killed_server_is_reported_within_one_renewal_interval() {
    let mut server = dflockd(&[]);
    let (lost_tx, lost) = mpsc::channel();
    let lost_tx = Mutex::new(lost_tx);
    let holder = lock(server.addr, "killed")
        .lease_ttl_s(4)
        .on_lost(move |l| lost_tx.lock().unwrap().send(l.clone()).unwrap())
        .build()
        .unwrap();
    let guard = holder.acquire().unwrap().expect("granted");
    server.kill();
    // Renewal is due after 4 s × 0.5; allow that interval plus the lease end.
    let report = lost
        .recv_timeout(Duration::from_secs(4 + 2))
        .expect("loss reported");
    assert_eq!((report.key.as_str(), report.kind), ("killed", Kind::Lock));
    assert_eq!(report.reason.cause, LossCause::ConnectionLost, "{report:?}");
    assert!(!guard.is_held());
    assert!(matches!(guard.release(), Err(Error::LockLost(_))));
}

#[test]
fn bad_input_is_a_typed_error_from_the_builder() {
    let rt = runtime();
    for key in ["", "two words", "new\nline"] {
        assert!(
            matches!(rt.lock(key).build(), Err(Error::InvalidArgument(_))),
            "{key:?}"
        );
    }
    assert!(matches!(
        rt.semaphore("k", 0).build(),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        rt.lock("k").renew_ratio(1.5).build(),
        Err(Error::InvalidArgument(_))
    ));
    let bad_shard = rt
        .lock("k")
        .servers([("127.0.0.1", 1), ("127.0.0.1", 2)])
        .shard_with(|_, n| n);
    assert!(matches!(bad_shard.build(), Err(Error::InvalidArgument(_))));
    let pinned = rt
        .lock("k")
        .servers([("127.0.0.1", 1), ("127.0.0.1", 2)])
        .shard_with(|_, _| 1)
        .build();
    assert_eq!(pinned.unwrap().server_index(), 1);
}

#[test]
fn the_compiled_component_is_cached_on_disk() {
    let dir = std::env::temp_dir().join(format!("dflockd-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // wasmtime's cache: one file per artifact below `dir/modules`, beside
    // `.stats` files and its worker's cleanup marks.
    let cached = |dir: &std::path::Path| artifacts(&dir.join("modules"));
    Runtime::builder().cache_dir(&dir).build().unwrap();
    let first = cached(&dir);
    assert_eq!(first.len(), 1, "one artifact written: {first:?}");
    let again = Runtime::builder().cache_dir(&dir).build().unwrap();
    assert_eq!(cached(&dir), first, "reused, not rewritten");
    assert!(
        again.lock("k").build().is_ok(),
        "the deserialized component works"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every file below `dir` but wasmtime's `.stats`, with its modification time.
fn artifacts(dir: &std::path::Path) -> Vec<(std::path::PathBuf, std::time::SystemTime)> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_none_or(|e| e != "stats") {
                let modified = entry.metadata().and_then(|m| m.modified()).unwrap();
                found.push((path, modified));
            }
        }
    }
    found
}

#[test]
fn the_component_can_be_given_as_bytes_and_a_missing_one_is_a_clear_error() {
    let server = dflockd(&[]);
    let bytes = std::fs::read(host_tests::component_path()).expect("cargo xtask build");
    let dir = std::env::temp_dir().join(format!("dflockd-bytes-test-{}", std::process::id()));
    let from_bytes = Runtime::builder()
        .component_bytes(bytes)
        .cache_dir(&dir)
        .build()
        .expect("a runtime from bytes");
    let lock = from_bytes
        .lock("from-bytes")
        .server(server.addr.ip().to_string(), server.addr.port())
        .build()
        .unwrap();
    let guard = lock.acquire().unwrap().expect("granted");
    assert_eq!(guard.release(), Ok(true));
    let _ = std::fs::remove_dir_all(&dir);
    // `cargo xtask test` builds the component before this crate, whose
    // build embeds it: a user's binary needs no file at run time.
    let embedded = dflockd_host::embedded_component().expect("embedded at build time");
    assert_eq!(
        embedded,
        std::fs::read(host_tests::component_path()).unwrap(),
        "the embedded component is the one built"
    );

    let missing = std::env::temp_dir().join("no-such-dflockd-component.wasm");
    match Runtime::builder().component(&missing).no_cache().build() {
        Err(Error::Runtime(why)) => assert!(
            why.contains("no-such-dflockd-component.wasm"),
            "names the file: {why}"
        ),
        other => panic!("expected a runtime error, got {:?}", other.err()),
    }
    assert!(
        matches!(
            Runtime::builder()
                .component_bytes(b"not a component")
                .no_cache()
                .build(),
            Err(Error::Runtime(_))
        ),
        "garbage bytes are an error, not a panic"
    );
}

#[test]
fn accessors_answer_while_another_thread_blocks_in_a_call() {
    let server = dflockd(&[]);
    let holder = lock(server.addr, "busy").build().unwrap();
    let held = holder.acquire().unwrap().expect("granted");
    let waiter = Arc::new(
        lock(server.addr, "busy")
            .acquire_timeout_s(30)
            .build()
            .unwrap(),
    );
    let blocked = {
        let waiter = waiter.clone();
        thread::spawn(move || waiter.acquire().map(|g| g.map(|g| g.release())))
    };
    // Once the server counts the waiter, its acquire is inside the call.
    let mut observer = host_tests::connect(server.addr);
    host_tests::eventually("the waiter is queued", Duration::from_secs(10), || {
        let stats = observer.stats().unwrap();
        let busy = stats.locks.iter().find(|l| l.key == "busy")?;
        (busy.waiters == 1).then_some(())
    });
    // The accessors answer now: they used to wait for the call to end,
    // here until this thread released the key (so, never).
    let answers = {
        let waiter = waiter.clone();
        host_tests::within(Duration::from_secs(10), move || {
            (waiter.is_held(), waiter.grant(), waiter.server_index())
        })
    };
    assert_eq!(answers, (false, None, 0));
    assert_eq!(held.release(), Ok(true));
    assert_eq!(blocked.join().unwrap(), Ok(Some(Ok(true))));
}

#[test]
fn an_owned_guard_moves_to_another_thread_and_releases_there() {
    let server = dflockd(&[]);
    let holder = Arc::new(lock(server.addr, "owned").build().unwrap());
    let other = lock(server.addr, "owned")
        .acquire_timeout_s(0)
        .build()
        .unwrap();
    let guard = Arc::clone(&holder)
        .acquire_owned()
        .unwrap()
        .expect("granted");
    let fence = guard.fence();
    assert!(fence.is_some());
    let (tx, rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        // The guard lives on here, past the scope that acquired it.
        tx.send(guard.fence()).unwrap();
        drop(guard);
    });
    assert_eq!(rx.recv().unwrap(), fence, "the same grant in the thread");
    worker.join().unwrap();
    assert!(!holder.is_held(), "released by the drop in the thread");
    let again = other.acquire().unwrap().expect("free again");
    assert_eq!(again.release(), Ok(true));
    let explicit = Arc::clone(&holder).acquire_owned().unwrap().unwrap();
    assert_eq!(explicit.release(), Ok(true));
    // Released or dropped, the guard gives its share of the holder back.
    assert_eq!(Arc::strong_count(&holder), 1, "a guard's share leaked");
}

#[test]
fn debug_shows_what_an_object_is_and_never_its_secrets() {
    let server = dflockd(&[]);
    let auth = "auth-token-that-must-not-show";
    let key_pem = "-----BEGIN PRIVATE KEY-----not-to-be-shown";
    let builder = lock(server.addr, "debug-key")
        .auth_token(auth)
        .tls(dflockd_host::Tls::mozilla_roots().client_cert("chain", key_pem))
        .lease_ttl_s(7);
    let shown = format!("{builder:?}");
    assert!(
        shown.contains("debug-key") && shown.contains("LeaseTtlS(7)"),
        "{shown}"
    );
    assert!(
        !shown.contains(auth) && !shown.contains("not-to-be-shown"),
        "{shown}"
    );

    let holder = lock(server.addr, "debug-key").build().unwrap();
    let guard = holder.acquire().unwrap().expect("granted");
    let token = guard.token().unwrap();
    let fence = guard.fence().unwrap();
    for shown in [
        format!("{holder:?}"),
        format!("{guard:?}"),
        format!("{guard:#?}"),
    ] {
        assert!(shown.contains("debug-key"), "{shown}");
        assert!(shown.contains(&fence.to_string()), "the fence: {shown}");
        assert!(!shown.contains(&token), "never the token: {shown}");
    }
    assert!(format!("{:?}", runtime()).starts_with("Runtime {"));
    let shown = format!("{:?}", host_tests::connect(server.addr));
    assert!(shown.contains(&server.addr.to_string()), "{shown}");
    assert_eq!(guard.release(), Ok(true));
}
