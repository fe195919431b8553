//! The server's refusals as typed errors, through the component against a
//! dialect-v1 server: `--max-waiters`, `--max-locks`, a second enqueue,
//! a wait without enqueue, and a fast-path grant whose lease lapsed before
//! its wait.

use std::time::Duration;

use dflockd_host::{Enqueued, Error};
use host_tests::server::dflockd;
use host_tests::{connect, eventually, lock_on, semaphore_on};

#[test]
fn a_full_queue_is_max_waiters() {
    let server = dflockd(&["--max-waiters", "1"]);
    let holder = lock_on(server.addr, "q").build().unwrap();
    let _held = holder.acquire().unwrap().expect("granted");
    let first = lock_on(server.addr, "q").build().unwrap();
    assert_eq!(first.enqueue(), Ok(Enqueued::Queued));
    let second = lock_on(server.addr, "q").build().unwrap();
    assert_eq!(second.enqueue().err(), Some(Error::MaxWaiters));
    assert_eq!(second.acquire().err(), Some(Error::MaxWaiters));
    let sem_holder = semaphore_on(server.addr, "sq", 2).build().unwrap();
    let sem_holder2 = semaphore_on(server.addr, "sq", 2).build().unwrap();
    let sem_waiter = semaphore_on(server.addr, "sq", 2).build().unwrap();
    let sem_refused = semaphore_on(server.addr, "sq", 2).build().unwrap();
    assert!(matches!(sem_holder.enqueue(), Ok(Enqueued::Acquired(_))));
    assert!(matches!(sem_holder2.enqueue(), Ok(Enqueued::Acquired(_))));
    assert_eq!(sem_waiter.enqueue(), Ok(Enqueued::Queued));
    assert_eq!(sem_refused.acquire().err(), Some(Error::MaxWaiters));
}

#[test]
fn a_full_key_table_is_max_locks_for_locks_and_semaphores() {
    let server = dflockd(&["--max-locks", "1"]);
    let one = lock_on(server.addr, "one").build().unwrap();
    let _held = one.acquire().unwrap().expect("granted");
    let two = lock_on(server.addr, "two").build().unwrap();
    assert_eq!(two.acquire().err(), Some(Error::MaxLocks));
    assert_eq!(two.enqueue().err(), Some(Error::MaxLocks));
    let sem = semaphore_on(server.addr, "three", 2).build().unwrap();
    assert_eq!(sem.acquire().err(), Some(Error::MaxLocks));
    // A key the server already has is not refused: a try-lock on the held
    // key answers a timeout, not max-locks.
    let same = lock_on(server.addr, "one")
        .acquire_timeout_s(0)
        .build()
        .unwrap();
    assert!(
        same.acquire().unwrap().is_none(),
        "held: try-lock times out"
    );
}

#[test]
fn enqueue_twice_and_wait_without_enqueue_are_typed() {
    let server = dflockd(&[]);
    let holder = lock_on(server.addr, "e").build().unwrap();
    let _held = holder.acquire().unwrap().expect("granted");
    let mut conn = connect(server.addr);
    assert!(matches!(
        conn.enqueue("e", None),
        Ok(dflockd_host::Enqueued::Queued)
    ));
    assert_eq!(conn.enqueue("e", None).err(), Some(Error::AlreadyEnqueued));
    assert_eq!(
        conn.sem_enqueue("e", 1, None).err(),
        Some(Error::AlreadyEnqueued)
    );
    assert_eq!(conn.wait("other", 1).err(), Some(Error::NotEnqueued));
    assert_eq!(conn.sem_wait("other", 1).err(), Some(Error::NotEnqueued));
    // The refusals left the connection usable.
    assert_eq!(
        conn.wait("e", 0),
        Ok(None),
        "still queued behind the holder"
    );
}

#[test]
fn a_fast_path_grant_that_lapsed_before_wait_is_lease_expired() {
    // The server's sweep would forget the lapsed grant (and the enqueue
    // with it: then `w` is `error_not_enqueued`); with the sweep far off,
    // `w` itself finds the lease over.
    let server = dflockd(&["--lease-sweep-interval", "3600"]);
    let mut conn = connect(server.addr);
    let granted = conn.enqueue("lapse", Some(1)).unwrap();
    assert!(matches!(granted, dflockd_host::Enqueued::Acquired(_)));
    let mut observer = connect(server.addr);
    eventually("the 1 s lease lapses", Duration::from_secs(10), || {
        let stats = observer.stats().unwrap();
        let lapse = stats.locks.iter().find(|l| l.key == "lapse")?;
        (lapse.lease_expires_in_s == 0.0).then_some(())
    });
    assert_eq!(conn.wait("lapse", 1).err(), Some(Error::LeaseExpired));
}

#[test]
fn a_full_server_closing_a_new_connection_is_a_connection_error() {
    // v1.10.0 at --max-connections closes new connections without a word,
    // as a TLS server does to a plain client: the client tells them apart.
    let server = dflockd(&["--max-connections", "1"]);
    let holder = lock_on(server.addr, "full").build().unwrap();
    let _held = holder
        .acquire()
        .unwrap()
        .expect("granted on the one connection");
    let refused = lock_on(server.addr, "other").build().unwrap();
    let outcome = refused.acquire().map(|g| g.is_some());
    match outcome {
        Err(Error::Connection(why)) => assert!(why.contains("before its first reply"), "{why}"),
        other => panic!("{other:?}"),
    }
}
