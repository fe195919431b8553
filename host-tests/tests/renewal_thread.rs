//! One driver per instance, whatever the number of objects: 20 blocking
//! locks on 2 s leases, spread over the runtime's instances (one per core,
//! at most 4, each with a driver thread), and 20 async ones built on a
//! 2-worker tokio runtime (an instance per worker thread, driven by a task
//! on those workers) are held through 5 s (2.5 lease lengths) while those
//! drivers renew them. Alone in its test binary, so that no other test's
//! runtime adds a thread to the count.

use dflockd_host::Enqueued;
use host_tests::server::dflockd;

/// Threads of this process whose name starts with `prefix`.
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

/// The instances (so driver threads) a runtime makes here: one per core, at most 4.
fn drivers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

#[test]
fn one_driver_per_instance_renews_every_lock_of_a_runtime() {
    let server = dflockd(&[]);
    assert_eq!(threads_named("dflockd-driver"), 0, "none before any object");
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let async_locks: Vec<_> = tokio.block_on(async {
        let mut held = Vec::new();
        for i in 0..20 {
            let lock = host_tests::lock_on(server.addr, &format!("many-async:{i}"))
                .lease_ttl_s(2)
                .build_async()
                .await
                .unwrap();
            // Enqueue grants at once here, and leaves no guard to release on drop.
            let granted = lock.enqueue().await.unwrap();
            assert!(matches!(granted, Enqueued::Acquired(_)), "granted");
            held.push(lock);
        }
        held
    });
    let locks: Vec<_> = (0..20)
        .map(|i| {
            host_tests::lock_on(server.addr, &format!("many:{i}"))
                .lease_ttl_s(2)
                .build()
                .unwrap()
        })
        .collect();
    let guards: Vec<_> = locks
        .iter()
        .map(|l| l.acquire().unwrap().expect("granted"))
        .collect();
    assert_eq!(
        threads_named("dflockd-driver"),
        drivers(),
        "one per instance for all 40"
    );
    let tasks = tokio.metrics().num_alive_tasks();
    assert!(
        (1..=2).contains(&tasks),
        "one driver task per worker thread that built objects, none per object: {tasks}"
    );
    // The server's own clock: a rival waits 5 s on the first key in vain.
    let rival = host_tests::lock_on(server.addr, "many:0")
        .acquire_timeout_s(5)
        .build()
        .unwrap();
    assert!(rival.acquire().unwrap().is_none(), "held through 5 s");
    let mut observer = host_tests::connect(server.addr);
    for (i, guard) in guards.iter().enumerate() {
        let key = format!("many:{i}");
        assert_eq!(observer.lock(&key, 0, None), Ok(None), "{key} still held");
        assert!(guard.is_held(), "{key}");
    }
    for (i, lock) in async_locks.iter().enumerate() {
        let key = format!("many-async:{i}");
        assert_eq!(observer.lock(&key, 0, None), Ok(None), "{key} still held");
        assert!(lock.is_held(), "{key}");
    }
    assert_eq!(threads_named("dflockd-driver"), drivers());
    for guard in guards {
        assert_eq!(guard.release(), Ok(true));
    }
    tokio.block_on(async {
        for lock in &async_locks {
            assert_eq!(lock.release().await, Ok(true));
        }
    });
}
