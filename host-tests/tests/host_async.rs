//! The async (tokio) API of `dflockd-host` against a dialect-v1 server
//! (see `host_tests::server`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dflockd_host::asynchronous::AsyncLock;
use dflockd_host::{Enqueued, Exclusive};
use host_tests::runtime;
use host_tests::server::dflockd;

fn lock(addr: std::net::SocketAddr, key: &str) -> dflockd_host::Builder<Exclusive> {
    runtime()
        .lock(key)
        .server(addr.ip().to_string(), addr.port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nine_tasks_are_granted_in_fifo_order() {
    let server = dflockd(&[]);
    let first = lock(server.addr, "fifo-async").build_async().await.unwrap();
    let held = first.acquire().await.unwrap().expect("granted");
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for n in 0..9 {
        let worker: AsyncLock = lock(server.addr, "fifo-async")
            .acquire_timeout_s(30)
            .build_async()
            .await
            .unwrap();
        assert_eq!(worker.enqueue().await, Ok(Enqueued::Queued), "worker {n}");
        let order = order.clone();
        tasks.push(tokio::spawn(async move {
            let guard = worker.wait(Some(30)).await.unwrap().expect("granted");
            order.lock().unwrap().push(n);
            assert_eq!(guard.release().await, Ok(true));
        }));
    }
    assert_eq!(held.release().await, Ok(true));
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..9).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_wait_leaves_the_key_free_for_the_next_waiter() {
    let server = dflockd(&[]);
    let holder = lock(server.addr, "cancel").build_async().await.unwrap();
    let held = holder.acquire().await.unwrap().expect("granted");
    let cancelled = lock(server.addr, "cancel").build_async().await.unwrap();
    assert_eq!(cancelled.enqueue().await, Ok(Enqueued::Queued));
    // The wait is cancelled while the server has it queued first in line.
    let gave_up = tokio::time::timeout(Duration::from_millis(300), cancelled.wait(Some(30))).await;
    assert!(gave_up.is_err(), "the wait was still pending");
    let next = lock(server.addr, "cancel").build_async().await.unwrap();
    assert_eq!(next.enqueue().await, Ok(Enqueued::Queued));
    assert_eq!(held.release().await, Ok(true));
    // Had the cancelled waiter stayed queued, it would hold the key now and
    // this wait would time out.
    let guard = next
        .wait(Some(5))
        .await
        .unwrap()
        .expect("the next waiter is granted");
    assert!(
        !cancelled.is_held(),
        "the cancelled one holds nothing (fresh instance)"
    );
    assert_eq!(guard.release().await, Ok(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_acquire_leaves_nothing_held() {
    let server = dflockd(&[]);
    let holder = lock(server.addr, "cancel-acq").build_async().await.unwrap();
    let held = holder.acquire().await.unwrap().expect("granted");
    let impatient = lock(server.addr, "cancel-acq")
        .acquire_timeout_s(30)
        .build_async()
        .await
        .unwrap();
    let gave_up = tokio::time::timeout(Duration::from_millis(300), impatient.acquire()).await;
    assert!(gave_up.is_err());
    assert_eq!(held.release().await, Ok(true));
    let later = lock(server.addr, "cancel-acq")
        .acquire_timeout_s(5)
        .build_async()
        .await
        .unwrap();
    let guard = later
        .acquire()
        .await
        .unwrap()
        .expect("free: the cancelled acquire left the queue");
    assert_eq!(guard.release().await, Ok(true));
}

/// The instance's driver keeps a held lease of an async object while its
/// tokio runtime (either flavour: the runtime's workers drive it on a
/// multi-thread one, the `Runtime`'s thread on a current-thread one)
/// waits on something else.
async fn background_renewal_and_release_on_guard_drop(key: &str) {
    let server = dflockd(&[]);
    let holder = lock(server.addr, key)
        .lease_ttl_s(2)
        .build_async()
        .await
        .unwrap();
    let guard = holder.acquire().await.unwrap().expect("granted");
    let waiter = lock(server.addr, key)
        .acquire_timeout_s(6)
        .build_async()
        .await
        .unwrap();
    assert!(
        waiter.acquire().await.unwrap().is_none(),
        "held through 3 lease lengths"
    );
    assert!(guard.is_held());
    drop(guard); // releases in a spawned task
    let guard = waiter
        .acquire()
        .await
        .unwrap()
        .expect("free after the guard dropped");
    assert_eq!(guard.release().await, Ok(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_renewal_and_release_on_guard_drop_multi_thread() {
    background_renewal_and_release_on_guard_drop("async-bg-mt").await;
}

#[tokio::test(flavor = "current_thread")]
async fn background_renewal_and_release_on_guard_drop_current_thread() {
    background_renewal_and_release_on_guard_drop("async-bg-ct").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_flavour_has_the_blocking_accessors_and_close() {
    let server = dflockd(&[]);
    let holder = lock(server.addr, "parity")
        .lease_ttl_s(30)
        .build_async()
        .await
        .unwrap();
    assert_eq!(holder.server_index(), 0);
    assert_eq!(holder.lease_s(), None, "nothing held yet");
    let guard = holder.acquire().await.unwrap().expect("granted");
    assert_eq!(guard.lease_s(), Some(30));
    std::mem::forget(guard); // close() must let go without a release
    holder.close().await.unwrap();
    assert!(!holder.is_held());
    // The server releases on disconnect (its default): another client gets
    // the key without waiting for the lease.
    let other = lock(server.addr, "parity")
        .acquire_timeout_s(10)
        .build_async()
        .await
        .unwrap();
    let granted = other.acquire().await.unwrap().expect("released on close");
    assert_eq!(granted.release().await, Ok(true));
    // The closed object connects again on its next acquire.
    let again = holder.acquire().await.unwrap().expect("granted again");
    assert_eq!(again.release().await, Ok(true));

    let pinned = runtime()
        .semaphore("parity-sem", 3)
        .servers([("127.0.0.1", 1), ("127.0.0.1", 2)])
        .shard_with(|_, _| 1)
        .build_async()
        .await
        .unwrap();
    assert_eq!(pinned.limit(), 3);
    assert_eq!(pinned.server_index(), 1);
}

/// The blocking flavour built, called and dropped on a runtime's own thread
/// (async code that has not moved it to `spawn_blocking`) works, instead
/// of panicking with "Cannot start a runtime from within a runtime".
#[tokio::test(flavor = "current_thread")]
async fn the_blocking_flavour_also_works_inside_async_code() {
    let server = dflockd(&[]);
    let blocking = lock(server.addr, "mixed").build().unwrap();
    let guard = blocking.acquire().unwrap().expect("granted");
    assert!(blocking.is_held());
    drop(guard); // releases through the instance's own runtime
    assert!(!blocking.is_held());
    drop(blocking);
    let other = lock(server.addr, "mixed")
        .acquire_timeout_s(0)
        .build_async()
        .await
        .unwrap();
    let granted = other.acquire().await.unwrap().expect("the key is free");
    assert_eq!(granted.release().await, Ok(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owned_guard_moves_into_a_task_and_releases_there() {
    let server = dflockd(&[]);
    let holder = Arc::new(
        lock(server.addr, "owned-async")
            .build_async()
            .await
            .unwrap(),
    );
    let other = lock(server.addr, "owned-async")
        .acquire_timeout_s(0)
        .build_async()
        .await
        .unwrap();
    let guard = Arc::clone(&holder)
        .acquire_owned()
        .await
        .unwrap()
        .expect("granted");
    let fence = guard.fence();
    let token = guard.token().unwrap();
    assert!(
        !format!("{guard:?}").contains(&token),
        "Debug hides the token"
    );
    let task = tokio::spawn(async move {
        let seen = guard.fence();
        assert_eq!(guard.release().await, Ok(true));
        seen
    });
    assert_eq!(task.await.unwrap(), fence, "the same grant in the task");
    assert!(!holder.is_held());
    let again = other.acquire().await.unwrap().expect("free again");
    assert_eq!(again.release().await, Ok(true));
    // Dropped in a task: released by the task the drop spawns.
    let dropped = Arc::clone(&holder).acquire_owned().await.unwrap().unwrap();
    tokio::spawn(async move { drop(dropped) }).await.unwrap();
    let waiting = lock(server.addr, "owned-async")
        .acquire_timeout_s(10)
        .build_async()
        .await
        .unwrap();
    let after = waiting
        .acquire()
        .await
        .unwrap()
        .expect("granted after the drop");
    assert_eq!(after.release().await, Ok(true));
    assert_eq!(Arc::strong_count(&holder), 1, "a guard's share leaked");
}

/// Calls on one object run in the order asked; a call cancelled while it
/// still waits its turn is forgotten: it never runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cancelled_before_its_turn_never_runs() {
    let server = dflockd(&[]);
    let first = lock(server.addr, "queued-call")
        .build_async()
        .await
        .unwrap();
    let held = first.acquire().await.unwrap().expect("granted");
    let second = Arc::new(
        lock(server.addr, "queued-call")
            .acquire_timeout_s(30)
            .build_async()
            .await
            .unwrap(),
    );
    let waiting = second.clone();
    let acquire = tokio::spawn(async move { waiting.acquire_owned().await });
    host_tests::matrix::waiters_become(server.addr, "queued-call", 1);
    // Behind the acquire, a release waits its turn; it is given up.
    let release = tokio::time::timeout(Duration::from_millis(300), second.release()).await;
    assert!(release.is_err(), "the release waited behind the acquire");
    assert_eq!(held.release().await, Ok(true));
    let guard = acquire.await.unwrap().unwrap().expect("granted");
    // Had the cancelled release run after the grant, nothing would be held.
    assert_eq!(second.renew().await.map(|s| s > 0), Ok(true));
    assert!(second.is_held());
    assert_eq!(guard.release().await, Ok(true));
}

/// An async object built on a multi-thread tokio runtime is driven by
/// that runtime's workers. When the runtime shuts down with a lease held,
/// the loss is reported (`on_lost`, `is_held`), the next call fails with
/// `Runtime` instead of waiting forever, and the server lets go (the
/// connection went with the driver).
#[test]
fn an_async_object_ends_with_the_tokio_runtime_that_drives_it() {
    let server = dflockd(&[]);
    let (tx, lost) = std::sync::mpsc::channel();
    let tx = Mutex::new(tx);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let holder = tokio.block_on(async {
        let holder = lock(server.addr, "runtime-ends")
            .on_lost(move |l| {
                let _ = tx.lock().unwrap().send(l.clone());
            })
            .build_async()
            .await
            .unwrap();
        std::mem::forget(holder.acquire().await.unwrap().expect("granted"));
        holder
    });
    assert!(holder.is_held());
    drop(tokio);
    let loss = lost
        .recv_timeout(Duration::from_secs(10))
        .expect("the loss is reported");
    assert_eq!(loss.key, "runtime-ends");
    assert_eq!(loss.reason.cause, dflockd_host::LossCause::ConnectionLost);
    assert!(!holder.is_held());
    let after = on_another_runtime(holder.acquire()).map(|g| g.is_some());
    assert!(
        matches!(&after, Err(dflockd_host::Error::Runtime(why)) if why.contains("shut down")),
        "{after:?}"
    );
    let mut observer = host_tests::connect(server.addr);
    assert!(
        matches!(observer.lock("runtime-ends", 5, None), Ok(Some(_))),
        "the server let go"
    );
}

/// Runs `future` on a fresh current-thread runtime (the object's is gone).
fn on_another_runtime<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}
