//! What a holder and a waiter see when a dialect-v1 server fails:
//! killed (the loss is reported once, everywhere it should be), frozen with
//! SIGSTOP (a typed timeout within the documented bound, then the object
//! works again), restarted on the same port (the next acquire works), and
//! `close()` on a server that keeps leases of closed connections.

use std::sync::mpsc;
use std::time::Duration;

use dflockd_host::Error;
use host_tests::server::dflockd;
use host_tests::{connect, eventually, lock_on, within};

#[test]
fn a_killed_server_is_one_loss_reported_to_on_lost_is_held_and_the_next_call() {
    let mut server = dflockd(&[]);
    let (lost_tx, lost) = mpsc::channel();
    let lost_tx = std::sync::Mutex::new(lost_tx);
    let holder = lock_on(server.addr, "killed")
        .lease_ttl_s(2)
        .on_lost(move |l| lost_tx.lock().unwrap().send(l.clone()).unwrap())
        .build()
        .unwrap();
    let guard = holder.acquire().unwrap().expect("granted");
    let fence = guard.fence().expect("a fence");
    server.kill();
    let report = lost
        .recv_timeout(Duration::from_secs(10))
        .expect("loss reported");
    assert_eq!(
        (report.key.as_str(), report.kind, report.fence),
        ("killed", dflockd_host::Kind::Lock, fence)
    );
    assert_eq!(
        report.reason.cause,
        dflockd_host::LossCause::ConnectionLost,
        "{report:?}"
    );
    assert!(!guard.is_held());
    assert_eq!(guard.token(), None, "no token of a lost lease");
    assert!(
        matches!(guard.release(), Err(Error::LockLost(_))),
        "the next call is told"
    );
    assert_eq!(holder.release(), Ok(false), "and only once");
    drop(holder); // returns after its last on_lost: every report made is in the channel
    assert!(lost.try_recv().is_err(), "on_lost was called once");
}

#[test]
fn a_frozen_server_is_a_typed_timeout_and_the_object_works_after() {
    let server = dflockd(&[]);
    let lock = std::sync::Arc::new(
        lock_on(server.addr, "frozen")
            .acquire_timeout_s(1)
            .build()
            .unwrap(),
    );
    // Connect first, so that the freeze hits a request in flight.
    assert_eq!(lock.acquire().unwrap().map(|g| g.release()), Some(Ok(true)));
    server.pause();
    // Documented bound: the acquire timeout plus the 10 s reply grace.
    let frozen = lock.clone();
    let outcome = within(Duration::from_secs(25), move || {
        frozen.acquire().map(|g| g.is_some())
    });
    assert_eq!(outcome, Err(Error::Timeout));
    server.resume();
    let guard = lock
        .acquire()
        .unwrap()
        .expect("works again on a fresh connection");
    assert_eq!(guard.release(), Ok(true));
}

#[test]
fn a_server_restarted_on_the_same_port_serves_the_next_acquire() {
    let mut server = dflockd(&[]);
    let lock = lock_on(server.addr, "restart").build().unwrap();
    assert_eq!(lock.acquire().unwrap().map(|g| g.release()), Some(Ok(true)));
    server.restart();
    let guard = lock
        .acquire()
        .unwrap()
        .expect("the stale connection is replaced, not used");
    assert_eq!(guard.release(), Ok(true));
}

#[test]
fn close_without_auto_release_keeps_the_lease_until_it_ends() {
    let server = dflockd(&["--auto-release-on-disconnect=false"]);
    let holder = lock_on(server.addr, "kept").lease_ttl_s(2).build().unwrap();
    let held = holder.acquire().unwrap().expect("granted");
    std::mem::forget(held); // the guard would release; close() must not
    holder.close().unwrap();
    assert!(!holder.is_held());
    let other = lock_on(server.addr, "kept")
        .acquire_timeout_s(0)
        .build()
        .unwrap();
    assert!(
        other.acquire().unwrap().is_none(),
        "the server still holds the lease"
    );
    // The next waiter queues behind the kept lease (not granted before it
    // ends) and gets the key once the server's sweep ends it.
    let addr = server.addr;
    let waiter = std::thread::spawn(move || {
        let lock = lock_on(addr, "kept").acquire_timeout_s(20).build().unwrap();
        lock.acquire().map(|g| g.map(|g| g.release()))
    });
    let mut conn = connect(server.addr);
    eventually(
        "the waiter queues behind the kept lease",
        Duration::from_secs(10),
        || {
            let stats = conn.stats().unwrap();
            let kept = stats.locks.iter().find(|l| l.key == "kept")?;
            (kept.waiters == 1).then_some(())
        },
    );
    assert_eq!(waiter.join().unwrap(), Ok(Some(Ok(true))));
}

#[test]
fn a_waiter_sees_a_killed_server_as_a_connection_error_and_works_after_a_restart() {
    let mut server = dflockd(&[]);
    let holder = lock_on(server.addr, "waited").build().unwrap();
    let _held = holder.acquire().unwrap().expect("granted");
    let waiter = std::sync::Arc::new(
        lock_on(server.addr, "waited")
            .acquire_timeout_s(30)
            .build()
            .unwrap(),
    );
    let blocked = waiter.clone();
    let (tx, outcome) = mpsc::channel();
    std::thread::spawn(move || tx.send(blocked.acquire().map(|g| g.is_some())).unwrap());
    let mut conn = connect(server.addr);
    eventually("the waiter queues", Duration::from_secs(10), || {
        let stats = conn.stats().unwrap();
        let key = stats.locks.iter().find(|l| l.key == "waited")?;
        (key.waiters == 1).then_some(())
    });
    server.restart();
    let seen = outcome
        .recv_timeout(Duration::from_secs(30))
        .expect("the blocked acquire ends when the server dies");
    assert!(matches!(seen, Err(Error::Connection(_))), "{seen:?}");
    let guard = waiter
        .acquire()
        .unwrap()
        .expect("the restarted server has forgotten the old holder");
    assert_eq!(guard.release(), Ok(true));
}

/// `on_lost` may call its own object: the callbacks run on a thread of
/// their own, so a blocking call there waits for the driver, never for
/// itself; there the release is told of the loss, and the object then
/// acquires again once the server is back.
#[test]
fn on_lost_may_call_its_own_object() {
    let mut server = dflockd(&[]);
    let (seen_tx, seen) = mpsc::channel();
    let seen_tx = std::sync::Mutex::new(seen_tx);
    let slot: std::sync::Arc<std::sync::OnceLock<std::sync::Weak<dflockd_host::Lock>>> =
        std::sync::Arc::default();
    let in_callback = slot.clone();
    let holder = std::sync::Arc::new(
        lock_on(server.addr, "called-back")
            .lease_ttl_s(2)
            .on_lost(move |_| {
                let lock = in_callback.get().and_then(std::sync::Weak::upgrade);
                let answer = lock.map(|l| (l.is_held(), l.release()));
                seen_tx.lock().unwrap().send(answer).unwrap();
            })
            .build()
            .unwrap(),
    );
    let _ = slot.set(std::sync::Arc::downgrade(&holder));
    std::mem::forget(holder.acquire().unwrap().expect("granted"));
    server.kill();
    let answer = seen
        .recv_timeout(Duration::from_secs(10))
        .expect("on_lost ran");
    let (held, released) = answer.expect("the object is alive");
    assert!(!held, "the view already knows");
    assert!(matches!(released, Err(Error::LockLost(_))), "{released:?}");
    server.restart();
    let again = eventually("acquired again", Duration::from_secs(10), || {
        holder.acquire().ok().flatten().map(|g| g.release())
    });
    assert_eq!(again, Ok(true));
}
