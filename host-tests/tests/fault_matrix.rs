//! The fault matrix (README, "What the client does when things go
//! wrong"): each fault injected by the test into a dialect-v1 server
//! or, for network faults, by the fault proxy (`host_tests::proxy`, a
//! stand-in for the network). For each: a typed error within the
//! documented bound, a held lease's loss reported once (to `on_lost`,
//! `is_held` and the next call), no trap, and the object works again once
//! the fault ends. The bounds are checked with generous hang guards
//! (`within`), not timed. The async flavour: `fault_matrix_async.rs`.

use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Duration;

use dflockd_host::{Error, Exclusive, Holder, LeaseLost, LossCause};
use host_tests::matrix::{free_at_server, shutdown_loss, waiters_become, watching};
use host_tests::proxy::{self, Fault};
use host_tests::server::{dflockd, Server};
use host_tests::{connect, eventually, lock_on, within};

/// [`watching`], built blocking.
fn watched(addr: std::net::SocketAddr, key: &str) -> (Holder<Exclusive>, Receiver<LeaseLost>) {
    let (builder, lost) = watching(addr, key);
    (builder.build().unwrap(), lost)
}

/// The one loss of `lock`: its cause is one of `causes`; the lock, its
/// accessors and its next call all know; no second report follows.
fn lost_once(
    lock: Holder<Exclusive>,
    lost: &Receiver<LeaseLost>,
    bound: Duration,
    causes: &[LossCause],
) {
    let report = lost.recv_timeout(bound).expect("the loss is reported");
    assert!(causes.contains(&report.reason.cause), "{report:?}");
    assert!(!lock.is_held());
    assert_eq!(lock.token(), None, "no token of a lost lease");
    assert!(
        matches!(lock.release(), Err(Error::LockLost(_))),
        "the next call is told"
    );
    assert_eq!(lock.release(), Ok(false), "and only once");
    drop(lock); // with it its reports: every one it made is in the channel
    assert!(lost.try_recv().is_err(), "on_lost was called once");
}

/// Starts `lock.acquire()` on a thread; its outcome arrives on the receiver.
fn acquiring(lock: &Arc<Holder<Exclusive>>) -> Receiver<Result<bool, Error>> {
    let (tx, outcome) = mpsc::channel();
    let blocked = lock.clone();
    std::thread::spawn(move || tx.send(blocked.acquire().map(|g| g.is_some())).unwrap());
    outcome
}

/// Connects through the proxy, sets `fault`, and expects the next acquire
/// to time out (the server's wait plus the 10 s grace); returns the parts
/// for what the test checks next.
fn request_times_out(
    key: &str,
    fault: Fault,
) -> (Server, proxy::FaultProxy, Arc<Holder<Exclusive>>) {
    let (server, proxy, lock, _lost) = proxied(key);
    works_again(&lock);
    proxy.set(fault);
    let lock = Arc::new(lock);
    let outcome = acquiring(&lock).recv_timeout(Duration::from_secs(30));
    assert_eq!(outcome.expect("no hang"), Err(Error::Timeout));
    (server, proxy, lock)
}

/// The object works again: acquire and release through it.
fn works_again(lock: &Holder<Exclusive>) {
    let guard = lock.acquire().unwrap().expect("granted again");
    assert_eq!(guard.release(), Ok(true));
}

#[test]
fn a_server_paused_past_the_lease_is_one_no_reply_loss_and_the_lock_works_after() {
    let server = dflockd(&[]);
    let (lock, lost) = watched(server.addr, "fm-pause");
    std::mem::forget(lock.acquire().unwrap().expect("granted"));
    server.pause();
    // The renewal goes out and gets no answer before the 2 s lease ends.
    let report = lost.recv_timeout(Duration::from_secs(10)).expect("lost");
    assert_eq!(report.reason.cause, LossCause::NoReply, "{report:?}");
    assert!(!lock.is_held());
    server.resume();
    assert!(
        matches!(lock.release(), Err(Error::LockLost(_))),
        "told once"
    );
    works_again(&lock);
    assert!(lost.try_recv().is_err(), "one report");
}

#[test]
fn a_server_paused_shorter_than_the_lease_keeps_it() {
    let server = dflockd(&[]);
    let (builder, lost) = watching(server.addr, "fm-short-pause");
    let lock = builder.lease_ttl_s(4).build().unwrap();
    let guard = lock.acquire().unwrap().expect("granted");
    // The fault's length, not a wait for an event: the renewal at 2 s is
    // answered when the server goes on at 2.5 s, inside the 4 s lease.
    server.pause();
    std::thread::sleep(Duration::from_millis(2_500));
    server.resume();
    assert_eq!(guard.renew().map(|s| s > 0), Ok(true));
    assert_eq!(guard.release(), Ok(true));
    assert!(lost.try_recv().is_err(), "nothing lost");
}

#[test]
fn sigterm_ends_a_wait_and_a_held_lease_with_typed_outcomes_and_both_work_after_a_restart() {
    let mut server = dflockd(&["--shutdown-timeout", "2"]);
    let (holder, lost) = watched(server.addr, "fm-term");
    std::mem::forget(holder.acquire().unwrap().expect("granted"));
    let waiter = Arc::new(
        lock_on(server.addr, "fm-term")
            .acquire_timeout_s(30)
            .build()
            .unwrap(),
    );
    let waited = acquiring(&waiter);
    waiters_become(server.addr, "fm-term", 1);
    server.terminate();
    // The server interrupts the wait at once and closes every connection
    // after its 2 s drain; v1 renews the lease until then, v2 refuses the
    // next renewal.
    let seen = waited
        .recv_timeout(Duration::from_secs(20))
        .expect("the wait ends");
    assert!(
        matches!(seen, Err(Error::Connection(_) | Error::Server(_))),
        "{seen:?}"
    );
    let report = lost.recv_timeout(Duration::from_secs(20)).expect("lost");
    assert_eq!(
        report.reason.cause,
        shutdown_loss(server.dialect),
        "{report:?}"
    );
    server.restart();
    assert!(matches!(holder.release(), Err(Error::LockLost(_))));
    works_again(&holder);
    let guard = waiter
        .acquire()
        .unwrap()
        .expect("the waiter works after the restart");
    assert_eq!(guard.release(), Ok(true));
    assert!(lost.try_recv().is_err(), "one report");
}

#[test]
fn an_idle_disconnect_by_read_timeout_loses_a_held_lease_once_and_an_idle_lock_reconnects() {
    // The server closes a connection that sends nothing for 1 s; a 4 s
    // lease renews only after 2 s.
    let server = dflockd(&["--read-timeout", "1"]);
    let (builder, lost) = watching(server.addr, "fm-idle");
    let holder = builder.lease_ttl_s(4).build().unwrap();
    std::mem::forget(holder.acquire().unwrap().expect("granted"));
    lost_once(
        holder,
        &lost,
        Duration::from_secs(10),
        &[LossCause::ConnectionLost],
    );
    free_at_server(server.addr, "fm-idle");
    let idle = lock_on(server.addr, "fm-idle2").build().unwrap();
    works_again(&idle);
    let mut observer = connect(server.addr);
    eventually(
        "the idle connection is closed",
        Duration::from_secs(10),
        || {
            let stats = observer.stats().ok()?;
            (stats.connections == 1).then_some(())
        },
    );
    works_again(&idle);
}

#[test]
fn max_connections_one_refuses_a_second_object_until_the_first_lets_go() {
    let server = dflockd(&["--max-connections", "1"]);
    let first = lock_on(server.addr, "fm-max").build().unwrap();
    let guard = first.acquire().unwrap().expect("granted");
    let second = lock_on(server.addr, "fm-max2").build().unwrap();
    let refused = within(Duration::from_secs(20), {
        let second = Arc::new(second);
        let probe = second.clone();
        move || (probe.acquire().map(|g| g.is_some()), second)
    });
    assert!(
        matches!(refused.0, Err(Error::Connection(_))),
        "{:?}",
        refused.0
    );
    assert_eq!(guard.release(), Ok(true));
    first.close().unwrap();
    // The server frees the slot once it has read the first connection's
    // close, which may come after the second object's next connect.
    let again = eventually(
        "a slot for the second object",
        Duration::from_secs(10),
        || match refused.1.acquire() {
            Err(Error::Connection(_)) => None,
            other => Some(other),
        },
    );
    assert_eq!(again.unwrap().expect("granted").release(), Ok(true));
}

/// A lock through the proxy: its server, the proxy, the lock, its losses.
fn proxied(
    key: &str,
) -> (
    Server,
    proxy::FaultProxy,
    Holder<Exclusive>,
    Receiver<LeaseLost>,
) {
    let server = dflockd(&[]);
    let proxy = proxy::start(server.addr);
    let (lock, lost) = watched(proxy.addr, key);
    (server, proxy, lock, lost)
}

#[test]
fn a_slow_network_delays_but_loses_nothing() {
    let (_server, proxy, lock, lost) = proxied("fm-delay");
    proxy.set(Fault::Delay(Duration::from_millis(300)));
    let guard = lock.acquire().unwrap().expect("granted, slowly");
    // The renewal at half the lease takes 0.6 s both ways: kept.
    let rival = lock_on(_server.addr, "fm-delay")
        .acquire_timeout_s(3)
        .build()
        .unwrap();
    assert!(
        rival.acquire().unwrap().is_none(),
        "held through 1.5 lease lengths"
    );
    assert!(guard.is_held());
    assert_eq!(guard.release(), Ok(true));
    assert!(lost.try_recv().is_err(), "nothing lost");
}

#[test]
fn a_reply_cut_mid_line_is_a_connection_error_with_nothing_left_held() {
    let (server, proxy, lock, _lost) = proxied("fm-cut");
    works_again(&lock); // connected
    proxy.set(Fault::TruncateReply);
    let cut = lock.acquire();
    assert!(
        matches!(cut, Err(Error::Connection(_))),
        "{:?}",
        cut.map(|g| g.is_some())
    );
    assert!(!lock.is_held());
    free_at_server(server.addr, "fm-cut");
    proxy.set(Fault::None);
    works_again(&lock);
}

#[test]
fn a_reset_connection_is_one_connection_lost_loss() {
    held_then("fm-reset", |p| p.reset(), LossCause::ConnectionLost);
}

#[test]
fn a_black_hole_loses_a_held_lease_by_no_reply_once() {
    held_then("fm-hole", |p| p.set(Fault::BlackHole), LossCause::NoReply);
}

#[test]
fn a_black_hole_times_out_a_request() {
    let (_server, proxy, lock) = request_times_out("fm-hole-req", Fault::BlackHole);
    proxy.set(Fault::None);
    works_again(&lock);
}

#[test]
fn stalled_replies_time_out_and_the_grant_the_client_never_saw_is_released() {
    let (server, proxy, lock) = request_times_out("fm-stall-down", Fault::StallReplies);
    // The server granted it; the client gave up and closed, so it lets go.
    free_at_server(server.addr, "fm-stall-down");
    proxy.set(Fault::None);
    works_again(&lock);
}

#[test]
fn stalled_requests_lose_a_held_lease_by_no_reply_once() {
    held_then(
        "fm-stall-up",
        |p| p.set(Fault::StallRequests),
        LossCause::NoReply,
    );
}

/// Holds through the proxy, applies `fault`, expects one loss of `cause`;
/// then the fault ends, the server has let go, and the lock works again.
fn held_then(key: &str, fault: impl FnOnce(&proxy::FaultProxy), cause: LossCause) {
    let (server, proxy, lock, lost) = proxied(key);
    std::mem::forget(lock.acquire().unwrap().expect("granted"));
    fault(&proxy);
    let report = lost.recv_timeout(Duration::from_secs(10)).expect("lost");
    assert_eq!(report.reason.cause, cause, "{report:?}");
    proxy.set(Fault::None);
    free_at_server(server.addr, key);
    told_once_and_works_again(&lock, &lost);
}

/// After its one report: the lock knows, tells the next call once, works.
fn told_once_and_works_again(lock: &Holder<Exclusive>, lost: &Receiver<LeaseLost>) {
    assert!(!lock.is_held());
    assert!(
        matches!(lock.release(), Err(Error::LockLost(_))),
        "the next call is told"
    );
    works_again(lock);
    assert!(lost.try_recv().is_err(), "one report");
}

#[test]
fn a_renewal_reply_cut_mid_line_is_one_connection_lost_loss() {
    held_then(
        "fm-cut-held",
        |p| p.set(Fault::TruncateReply),
        LossCause::ConnectionLost,
    );
}

#[test]
fn stalled_replies_lose_a_held_lease_by_no_reply_once() {
    held_then(
        "fm-stall-down-held",
        |p| p.set(Fault::StallReplies),
        LossCause::NoReply,
    );
}

#[test]
fn a_reset_during_a_wait_is_a_connection_error_and_the_waiter_leaves_the_queue() {
    let (server, proxy, lock, _lost) = proxied("fm-reset-wait");
    let mut holder = connect(server.addr);
    let held = holder
        .lock("fm-reset-wait", 0, None)
        .unwrap()
        .expect("held");
    let waiter = Arc::new(lock);
    let waited = acquiring(&waiter);
    waiters_become(server.addr, "fm-reset-wait", 1);
    proxy.reset();
    let seen = waited
        .recv_timeout(Duration::from_secs(10))
        .expect("the wait ends");
    assert!(matches!(seen, Err(Error::Connection(_))), "{seen:?}");
    waiters_become(server.addr, "fm-reset-wait", 0);
    assert_eq!(holder.unlock("fm-reset-wait", &held.token), Ok(()));
    works_again(&waiter);
}

#[test]
fn stalled_requests_time_out_a_request_that_never_arrives() {
    let (_server, proxy, lock) = request_times_out("fm-stall-up-req", Fault::StallRequests);
    proxy.set(Fault::None);
    works_again(&lock);
}
