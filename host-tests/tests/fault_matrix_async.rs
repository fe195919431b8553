//! The fault matrix (README, "What the client does when things go wrong")
//! in the async flavour: `AsyncLock` on tokio (multi- and current-thread),
//! each fault injected into a dialect-v1 server or, for network
//! faults, by the fault proxy (a stand-in for the network). The same
//! promises as the blocking rows in `fault_matrix.rs`: a typed outcome, a
//! held lease's loss reported once (`on_lost`, `is_held`, the next call),
//! no trap, and the lock works again once the fault ends. Every await that
//! could hang has a guard far above its documented bound (`guarded`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Duration;

use dflockd_host::asynchronous::AsyncLock;
use dflockd_host::{Enqueued, Error, LeaseLost, LossCause};
use host_tests::matrix::{free_at_server, shutdown_loss, waiters_become, watching};
use host_tests::proxy::{self, Fault, FaultProxy};
use host_tests::server::{dflockd, Server};
use host_tests::{connect, lock_on};

/// A hang guard, not a measurement.
async fn guarded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(40), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 40 s, a hang"))
}

/// [`free_at_server`] on a blocking thread: a current-thread runtime's tasks go on.
async fn free(server: SocketAddr, key: &str) {
    let key = key.to_owned();
    tokio::task::spawn_blocking(move || free_at_server(server, &key))
        .await
        .unwrap()
}

/// [`waiters_become`] on a blocking thread.
async fn waiters(server: SocketAddr, key: &str, n: u32) {
    let key = key.to_owned();
    tokio::task::spawn_blocking(move || waiters_become(server, &key, n))
        .await
        .unwrap()
}

/// A server started with `flags`, a proxy in front of it, and a lock
/// through the proxy with a lease of `lease_s`, whose losses arrive on the receiver.
struct Rig {
    server: Server,
    proxy: FaultProxy,
    lock: AsyncLock,
    lost: Option<Receiver<LeaseLost>>,
}

async fn rig(key: &str, flags: &[&str], lease_s: u64) -> Rig {
    let server = dflockd(flags);
    let proxy = proxy::start(server.addr);
    let (builder, lost) = watching(proxy.addr, key);
    let lock = builder.lease_ttl_s(lease_s).build_async().await.unwrap();
    Rig {
        server,
        proxy,
        lock,
        lost: Some(lost),
    }
}

impl Rig {
    /// The next loss report, waited for off the runtime's threads.
    async fn next_loss(&mut self, bound: Duration) -> LeaseLost {
        let lost = self.lost.take().expect("the receiver");
        let (report, lost) = tokio::task::spawn_blocking(move || (lost.recv_timeout(bound), lost))
            .await
            .unwrap();
        self.lost = Some(lost);
        report.expect("the loss is reported")
    }

    /// No report besides the ones taken.
    fn no_more_losses(&self) {
        let lost = self.lost.as_ref().expect("the receiver");
        assert!(lost.try_recv().is_err(), "one report");
    }

    /// Holds the key (by `enqueue`, so no guard releases it on drop).
    async fn hold(&self) {
        let granted = guarded("enqueue", self.lock.enqueue()).await.unwrap();
        assert!(matches!(granted, Enqueued::Acquired(_)), "{granted:?}");
    }

    /// Acquire and release through the lock.
    async fn works_again(&self) {
        let guard = guarded("acquire", self.lock.acquire()).await.unwrap();
        let guard = guard.expect("granted again");
        assert_eq!(guarded("release", guard.release()).await, Ok(true));
    }
}

/// Holds, applies `fault`, expects one loss of one of `causes`; then the
/// lock and its next call know, `mend` ends the fault, the server has let
/// go, and the lock works again.
async fn held_then(
    key: &str,
    flags: &[&str],
    lease_s: u64,
    fault: impl FnOnce(&mut Rig),
    mend: impl FnOnce(&mut Rig),
    cause: LossCause,
) {
    let mut rig = rig(key, flags, lease_s).await;
    rig.hold().await;
    fault(&mut rig);
    let report = rig.next_loss(Duration::from_secs(15)).await;
    assert_eq!(report.reason.cause, cause, "{report:?}");
    assert_eq!(report.key, key);
    assert!(!rig.lock.is_held());
    assert_eq!(rig.lock.token(), None, "no token of a lost lease");
    let told = guarded("release", rig.lock.release()).await;
    assert!(matches!(told, Err(Error::LockLost(_))), "{told:?}");
    assert_eq!(
        guarded("release", rig.lock.release()).await,
        Ok(false),
        "told once"
    );
    mend(&mut rig);
    free(rig.server.addr, key).await;
    rig.works_again().await;
    rig.no_more_losses();
}

fn nothing(_: &mut Rig) {}

fn clear(rig: &mut Rig) {
    rig.proxy.set(Fault::None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_is_one_connection_lost_loss_and_a_restart_serves_again() {
    let kill = |r: &mut Rig| r.server.kill();
    let restart = |r: &mut Rig| r.server.restart();
    held_then("fma-kill", &[], 2, kill, restart, LossCause::ConnectionLost).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_server_paused_past_the_lease_is_one_no_reply_loss() {
    let pause = |r: &mut Rig| r.server.pause();
    let resume = |r: &mut Rig| r.server.resume();
    held_then("fma-pause", &[], 2, pause, resume, LossCause::NoReply).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_paused_shorter_than_the_lease_keeps_it() {
    let rig = rig("fma-short-pause", &[], 4).await;
    let guard = guarded("acquire", rig.lock.acquire()).await.unwrap();
    let guard = guard.expect("granted");
    // The fault's length, not a wait for an event: the renewal at 2 s is
    // answered when the server goes on at 2.5 s, inside the 4 s lease.
    rig.server.pause();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    rig.server.resume();
    assert_eq!(
        guarded("renew", guard.renew()).await.map(|s| s > 0),
        Ok(true)
    );
    assert_eq!(guarded("release", guard.release()).await, Ok(true));
    rig.no_more_losses();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_a_held_lease_after_the_drain_as_one_connection_lost_loss() {
    let term = |r: &mut Rig| r.server.terminate();
    let restart = |r: &mut Rig| r.server.restart();
    let flags = ["--shutdown-timeout", "2"];
    let cause = shutdown_loss(host_tests::server::default_dialect());
    held_then("fma-term", &flags, 2, term, restart, cause).await;
}

#[tokio::test(flavor = "current_thread")]
async fn an_idle_disconnect_by_read_timeout_is_one_connection_lost_loss() {
    // The server closes a connection silent for 1 s; a 4 s lease renews after 2 s.
    let flags = ["--read-timeout", "1"];
    held_then(
        "fma-idle",
        &flags,
        4,
        nothing,
        nothing,
        LossCause::ConnectionLost,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_is_one_connection_lost_loss() {
    let reset = |r: &mut Rig| r.proxy.reset();
    held_then("fma-reset", &[], 2, reset, clear, LossCause::ConnectionLost).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_hole_is_one_no_reply_loss() {
    let hole = |r: &mut Rig| r.proxy.set(Fault::BlackHole);
    held_then("fma-hole", &[], 2, hole, clear, LossCause::NoReply).await;
}

#[tokio::test(flavor = "current_thread")]
async fn stalled_requests_are_one_no_reply_loss() {
    let stall = |r: &mut Rig| r.proxy.set(Fault::StallRequests);
    held_then("fma-stall-up", &[], 2, stall, clear, LossCause::NoReply).await;
}

#[tokio::test(flavor = "current_thread")]
async fn stalled_replies_are_one_no_reply_loss() {
    let stall = |r: &mut Rig| r.proxy.set(Fault::StallReplies);
    held_then("fma-stall-down", &[], 2, stall, clear, LossCause::NoReply).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_reply_cut_mid_line_is_one_connection_lost_loss() {
    let cut = |r: &mut Rig| r.proxy.set(Fault::TruncateReply);
    held_then(
        "fma-cut-held",
        &[],
        2,
        cut,
        clear,
        LossCause::ConnectionLost,
    )
    .await;
}

/// Connects, sets `fault`, and expects the next acquire to time out (the
/// server's 1 s wait plus the 10 s grace); then the fault ends and the lock works.
async fn request_times_out(key: &str, fault: Fault) -> Rig {
    let rig = rig(key, &[], 2).await;
    rig.works_again().await; // connected
    rig.proxy.set(fault);
    let outcome = guarded("acquire", rig.lock.acquire()).await;
    assert_eq!(outcome.map(|g| g.is_some()), Err(Error::Timeout));
    assert!(!rig.lock.is_held());
    rig
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_hole_times_out_a_request() {
    let rig = request_times_out("fma-hole-req", Fault::BlackHole).await;
    rig.proxy.set(Fault::None);
    rig.works_again().await;
}

#[tokio::test(flavor = "current_thread")]
async fn stalled_replies_time_out_and_the_grant_never_seen_is_released() {
    let rig = request_times_out("fma-stall-down-req", Fault::StallReplies).await;
    free(rig.server.addr, "fma-stall-down-req").await;
    rig.proxy.set(Fault::None);
    rig.works_again().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_requests_time_out_a_request_that_never_arrives() {
    let rig = request_times_out("fma-stall-up-req", Fault::StallRequests).await;
    rig.proxy.set(Fault::None);
    rig.works_again().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_reply_cut_mid_line_is_a_connection_error_with_nothing_left_held() {
    let rig = rig("fma-cut", &[], 2).await;
    rig.works_again().await;
    rig.proxy.set(Fault::TruncateReply);
    let cut = guarded("acquire", rig.lock.acquire()).await;
    assert!(
        matches!(cut, Err(Error::Connection(_))),
        "{:?}",
        cut.map(|g| g.is_some())
    );
    assert!(!rig.lock.is_held());
    free(rig.server.addr, "fma-cut").await;
    rig.proxy.set(Fault::None);
    rig.works_again().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_network_delays_but_loses_nothing() {
    let rig = rig("fma-delay", &[], 2).await;
    rig.proxy.set(Fault::Delay(Duration::from_millis(300)));
    let guard = guarded("acquire", rig.lock.acquire()).await.unwrap();
    let guard = guard.expect("granted, slowly");
    // A rival waits 3 s, through the renewal at 1 s that takes 0.6 s.
    let rival = lock_on(rig.server.addr, "fma-delay")
        .acquire_timeout_s(3)
        .build_async();
    let rival = rival.await.unwrap();
    let contested = guarded("rival", rival.acquire()).await.unwrap();
    assert!(contested.is_none(), "held through 1.5 lease lengths");
    assert!(guard.is_held());
    assert_eq!(guarded("release", guard.release()).await, Ok(true));
    rig.no_more_losses();
}

/// A rig whose lock holds its key, and a second lock waiting for the key in a task.
async fn waiting(key: &str, flags: &[&str]) -> (Rig, Waiter) {
    let rig = rig(key, flags, 2).await;
    rig.hold().await;
    let waiter = lock_on(rig.proxy.addr, key)
        .acquire_timeout_s(30)
        .build_async();
    let waiter = Arc::new(waiter.await.unwrap());
    let task = tokio::spawn(async move {
        let outcome = waiter.acquire().await.map(|g| g.is_some());
        (outcome, waiter)
    });
    waiters(rig.server.addr, key, 1).await;
    (rig, task)
}

/// Restarts the rig's server; the waiter works again.
async fn restarted_and_works(rig: &mut Rig, waiter: &AsyncLock) {
    rig.server.restart();
    let guard = guarded("acquire", waiter.acquire()).await.unwrap();
    let guard = guard.expect("works again");
    assert_eq!(guarded("release", guard.release()).await, Ok(true));
}

/// The waiting task: its outcome, and the lock for what comes next.
type Waiter = tokio::task::JoinHandle<(Result<bool, Error>, Arc<AsyncLock>)>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_during_a_wait_is_a_connection_error_and_the_waiter_leaves_the_queue() {
    let key = "fma-reset-wait";
    let rig = rig(key, &[], 2).await;
    let mut holder = connect(rig.server.addr);
    let held = holder.lock(key, 0, None).unwrap().expect("held");
    let waiter = Arc::new(rig.lock);
    let task = tokio::spawn({
        let waiter = waiter.clone();
        async move { waiter.acquire().await.map(|g| g.is_some()) }
    });
    waiters(rig.server.addr, key, 1).await;
    rig.proxy.reset();
    let seen = guarded("the wait", task).await.unwrap();
    assert!(matches!(seen, Err(Error::Connection(_))), "{seen:?}");
    waiters(rig.server.addr, key, 0).await;
    assert_eq!(holder.unlock(key, &held.token), Ok(()));
    let guard = guarded("acquire", waiter.acquire())
        .await
        .unwrap()
        .expect("works again");
    assert_eq!(guarded("release", guard.release()).await, Ok(true));
}

#[tokio::test(flavor = "current_thread")]
async fn sigterm_ends_a_wait_with_a_typed_error_and_it_works_after_a_restart() {
    let key = "fma-term-wait";
    let (mut rig, task) = waiting(key, &["--shutdown-timeout", "2"]).await;
    rig.server.terminate();
    let (seen, waiter) = guarded("the wait", task).await.unwrap();
    assert!(
        matches!(seen, Err(Error::Connection(_) | Error::Server(_))),
        "{seen:?}"
    );
    restarted_and_works(&mut rig, &waiter).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_ends_a_wait_with_a_connection_error() {
    let key = "fma-kill-wait";
    let (mut rig, task) = waiting(key, &[]).await;
    rig.server.kill();
    let (seen, waiter) = guarded("the wait", task).await.unwrap();
    assert!(matches!(seen, Err(Error::Connection(_))), "{seen:?}");
    restarted_and_works(&mut rig, &waiter).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_one_refuses_a_second_lock_until_the_first_lets_go() {
    let server = dflockd(&["--max-connections", "1"]);
    let first = lock_on(server.addr, "fma-max").build_async().await.unwrap();
    let guard = guarded("acquire", first.acquire())
        .await
        .unwrap()
        .expect("granted");
    let second = lock_on(server.addr, "fma-max2")
        .build_async()
        .await
        .unwrap();
    let refused = guarded("acquire", second.acquire())
        .await
        .map(|g| g.is_some());
    assert!(matches!(refused, Err(Error::Connection(_))), "{refused:?}");
    assert_eq!(guarded("release", guard.release()).await, Ok(true));
    guarded("close", first.close()).await.unwrap();
    // The server frees the slot once it has read the first connection's
    // close, which may come after the second object's next connect.
    let started = std::time::Instant::now();
    let again = loop {
        match guarded("acquire", second.acquire()).await {
            Err(Error::Connection(_)) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => break other.unwrap().expect("works again"),
        }
    };
    assert_eq!(guarded("release", again.release()).await, Ok(true));
}
