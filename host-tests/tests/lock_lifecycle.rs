//! A lock's life through the component in wasmtime, against the real
//! a dialect-v1 server: grant, contention, FIFO, two-phase, renewal by the
//! reactor and by the driver, loss on a dead server, the low-level lock
//! commands.

use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use host_tests::server::dflockd;
use host_tests::{
    instance, options, server_of, Enqueued, Error, Instance, Kind, LossCause, Setting,
};
use wasmtime::component::ResourceAny;

/// A lock resource in an instance, with short names for its methods.
struct Lock {
    handle: ResourceAny,
}

impl Lock {
    fn open(inst: &mut Instance, key: &str, opts: &[Setting]) -> Lock {
        let locks = inst.client.dflockd_client_locks().lock();
        Lock {
            handle: locks
                .call_open(&mut inst.store, key, opts)
                .unwrap()
                .expect("open"),
        }
    }
    fn acquire(&self, inst: &mut Instance) -> Result<bool, Error> {
        inst.client
            .dflockd_client_locks()
            .lock()
            .call_acquire(&mut inst.store, self.handle)
            .unwrap()
            .map(|grant| grant.is_some())
    }
    fn enqueue(&self, inst: &mut Instance) -> Result<Enqueued, Error> {
        inst.client
            .dflockd_client_locks()
            .lock()
            .call_enqueue(&mut inst.store, self.handle)
            .unwrap()
    }
    fn wait(&self, inst: &mut Instance, timeout_s: Option<u64>) -> Result<bool, Error> {
        inst.client
            .dflockd_client_locks()
            .lock()
            .call_wait(&mut inst.store, self.handle, timeout_s)
            .unwrap()
            .map(|grant| grant.is_some())
    }
    fn release(&self, inst: &mut Instance) -> Result<bool, Error> {
        inst.client
            .dflockd_client_locks()
            .lock()
            .call_release(&mut inst.store, self.handle)
            .unwrap()
    }
    fn renew(&self, inst: &mut Instance) -> Result<u64, Error> {
        inst.client
            .dflockd_client_locks()
            .lock()
            .call_renew(&mut inst.store, self.handle)
            .unwrap()
    }
    fn is_held(&self, inst: &mut Instance) -> bool {
        inst.client
            .dflockd_client_locks()
            .lock()
            .call_is_held(&mut inst.store, self.handle)
            .unwrap()
    }
    fn grant(&self, inst: &mut Instance) -> Option<host_tests::Grant> {
        inst.client
            .dflockd_client_locks()
            .lock()
            .call_grant(&mut inst.store, self.handle)
            .unwrap()
    }
    fn token(&self, inst: &mut Instance) -> Option<String> {
        self.grant(inst).map(|g| g.token)
    }
    fn lease_s(&self, inst: &mut Instance) -> Option<u64> {
        self.grant(inst).map(|g| g.lease_s)
    }
    fn drop_in(self, inst: &mut Instance) {
        self.handle.resource_drop(&mut inst.store).unwrap();
    }
}

fn opts_with(
    addr: std::net::SocketAddr,
    acquire_timeout_s: u64,
    lease_ttl_s: Option<u64>,
) -> Vec<Setting> {
    let mut settings = options(addr);
    settings.push(Setting::AcquireTimeoutS(acquire_timeout_s));
    settings.extend(lease_ttl_s.map(Setting::LeaseTtlS));
    settings
}

#[test]
fn acquire_release_and_the_grant_accessors() {
    let server = dflockd(&[]);
    let mut inst = instance(&[server.addr]);
    let lock = Lock::open(&mut inst, "acc", &opts_with(server.addr, 5, Some(30)));
    assert_eq!(lock.acquire(&mut inst), Ok(true));
    assert!(lock.is_held(&mut inst));
    let token = lock.token(&mut inst).expect("token while held");
    assert!(
        token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "{token}"
    );
    assert_eq!(lock.lease_s(&mut inst), Some(30));
    assert!(lock.renew(&mut inst).unwrap() > 0);
    assert!(
        matches!(lock.acquire(&mut inst), Err(Error::InvalidArgument(_))),
        "already held"
    );
    assert_eq!(lock.release(&mut inst), Ok(true));
    assert!(!lock.is_held(&mut inst));
    assert_eq!(lock.token(&mut inst), None);
    assert_eq!(
        lock.release(&mut inst),
        Ok(false),
        "nothing left to release"
    );
    assert_eq!(
        lock.acquire(&mut inst),
        Ok(true),
        "the connection is reused"
    );
    lock.drop_in(&mut inst);
}

#[test]
fn a_held_key_times_out_for_others_and_frees_on_release_and_on_drop() {
    let server = dflockd(&[]);
    let mut a = instance(&[server.addr]);
    let mut b = instance(&[server.addr]);
    let holder = Lock::open(&mut a, "busy", &opts_with(server.addr, 5, None));
    let other = Lock::open(&mut b, "busy", &opts_with(server.addr, 0, None));
    assert_eq!(holder.acquire(&mut a), Ok(true));
    assert_eq!(other.acquire(&mut b), Ok(false), "try-lock on a held key");
    assert!(!other.is_held(&mut b));
    assert_eq!(holder.release(&mut a), Ok(true));
    assert_eq!(other.acquire(&mut b), Ok(true));
    // Dropping a held lock releases it.
    other.drop_in(&mut b);
    let again = Lock::open(&mut a, "busy", &opts_with(server.addr, 0, None));
    assert_eq!(again.acquire(&mut a), Ok(true));
}

#[test]
fn nine_contenders_are_granted_in_fifo_order() {
    let server = dflockd(&[]);
    let mut first = instance(&[server.addr]);
    let holder = Lock::open(&mut first, "fifo", &opts_with(server.addr, 5, None));
    assert_eq!(holder.acquire(&mut first), Ok(true));
    // Enqueue one by one so the queue order is known, then wait in parallel.
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for n in 0..9 {
        let mut inst = instance(&[server.addr]);
        let lock = Lock::open(&mut inst, "fifo", &opts_with(server.addr, 30, None));
        assert!(
            matches!(lock.enqueue(&mut inst), Ok(Enqueued::Queued)),
            "worker {n}"
        );
        let order = order.clone();
        workers.push(thread::spawn(move || {
            assert_eq!(lock.wait(&mut inst, Some(30)), Ok(true), "worker {n}");
            order.lock().unwrap().push(n);
            assert_eq!(lock.release(&mut inst), Ok(true));
        }));
    }
    assert_eq!(holder.release(&mut first), Ok(true));
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..9).collect::<Vec<_>>());
}

#[test]
fn two_phase_fast_path_and_queued_path() {
    let server = dflockd(&[]);
    let mut a = instance(&[server.addr]);
    let mut b = instance(&[server.addr]);
    let first = Lock::open(&mut a, "two", &opts_with(server.addr, 5, None));
    assert!(
        matches!(first.enqueue(&mut a), Ok(Enqueued::Acquired(_))),
        "free key: fast path"
    );
    assert!(first.is_held(&mut a));
    assert_eq!(
        first.wait(&mut a, Some(1)),
        Ok(true),
        "wait after a fast-path grant"
    );
    let second = Lock::open(&mut b, "two", &opts_with(server.addr, 5, None));
    assert!(matches!(second.enqueue(&mut b), Ok(Enqueued::Queued)));
    assert!(!second.is_held(&mut b));
    assert!(
        matches!(second.enqueue(&mut b), Err(Error::InvalidArgument(_))),
        "already enqueued"
    );
    assert_eq!(first.release(&mut a), Ok(true));
    assert_eq!(second.wait(&mut b, Some(5)), Ok(true));
    assert!(second.is_held(&mut b));
    // A queued wait that times out holds nothing.
    let third = Lock::open(&mut a, "two", &opts_with(server.addr, 5, None));
    assert!(matches!(third.enqueue(&mut a), Ok(Enqueued::Queued)));
    assert_eq!(third.wait(&mut a, Some(1)), Ok(false));
    assert!(!third.is_held(&mut a));
}

#[test]
fn blocking_calls_renew_the_other_leases_of_their_instance() {
    // One instance holds "renewed" with a 2 s lease while it blocks 6 s in
    // another acquire: its reactor must renew the lease meanwhile.
    let server = dflockd(&[]);
    let mut inst = instance(&[server.addr]);
    let mut rival = instance(&[server.addr]);
    let held = Lock::open(&mut inst, "renewed", &opts_with(server.addr, 5, Some(2)));
    assert_eq!(held.acquire(&mut inst), Ok(true));
    let blocker = Lock::open(&mut rival, "blocker", &opts_with(server.addr, 5, None));
    assert_eq!(blocker.acquire(&mut rival), Ok(true));
    let waiting = Lock::open(&mut inst, "blocker", &opts_with(server.addr, 6, None));
    assert_eq!(
        waiting.acquire(&mut inst),
        Ok(false),
        "blocked for 6 s: 3 leases of \"renewed\""
    );
    assert!(held.is_held(&mut inst));
    let thief = Lock::open(&mut rival, "renewed", &opts_with(server.addr, 0, None));
    assert_eq!(
        thief.acquire(&mut rival),
        Ok(false),
        "still held after 3 lease lengths"
    );
    assert_eq!(held.release(&mut inst), Ok(true));
}

#[test]
fn the_driver_holds_a_lease_for_three_lease_lengths_while_another_client_waits() {
    let server = dflockd(&[]);
    let mut holder_inst = instance(&[server.addr]);
    let held = Lock::open(
        &mut holder_inst,
        "driven",
        &opts_with(server.addr, 5, Some(2)),
    );
    assert_eq!(held.acquire(&mut holder_inst), Ok(true));
    let (done_tx, done) = mpsc::channel::<Result<bool, Error>>();
    let addr = server.addr;
    let waiter = thread::spawn(move || {
        let mut inst = instance(&[addr]);
        let lock = Lock::open(&mut inst, "driven", &opts_with(addr, 6, None));
        done_tx.send(lock.acquire(&mut inst)).unwrap();
    });
    // The host's driver loop: wait for the component's wakeup, then drive.
    let verdict = loop {
        assert!(
            holder_inst.drive_once().unwrap().is_empty(),
            "no lease may be lost"
        );
        if let Ok(verdict) = done.try_recv() {
            break verdict;
        }
    };
    waiter.join().unwrap();
    assert_eq!(verdict, Ok(false), "the waiter never got the lock in 6 s");
    assert!(held.is_held(&mut holder_inst));
    assert_eq!(held.release(&mut holder_inst), Ok(true));
}

#[test]
fn a_dead_server_is_reported_as_a_lost_lease() {
    let mut server = dflockd(&[]);
    let mut inst = instance(&[server.addr]);
    let lock = Lock::open(&mut inst, "doomed", &opts_with(server.addr, 5, Some(2)));
    assert_eq!(lock.acquire(&mut inst), Ok(true));
    server.kill();
    let started = Instant::now();
    let lost = loop {
        let lost = inst.drive_once().unwrap();
        if !lost.is_empty() {
            break lost;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no loss reported"
        );
    };
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0].key, "doomed");
    assert_eq!(lost[0].kind, Kind::Lock);
    assert_eq!(lost[0].reason.cause, LossCause::ConnectionLost);
    assert!(!lock.is_held(&mut inst));
    let driver = inst.client.dflockd_client_driver();
    assert!(
        driver.call_drive(&mut inst.store).unwrap().is_empty(),
        "the driver reports a loss once"
    );
    assert!(
        matches!(lock.release(&mut inst), Err(Error::LockLost(_))),
        "the next call is told"
    );
    assert_eq!(lock.release(&mut inst), Ok(false), "and only once");
}

#[test]
fn a_lease_that_lapsed_unrenewed_is_lost_at_the_next_renew() {
    // Nothing drives this instance between calls, so nothing renews: the
    // 1 s lease lapses on the server, which then refuses the renewal (v1.10.0
    // answers a plain `error`).
    let server = dflockd(&[]);
    let mut inst = instance(&[server.addr]);
    let lock = Lock::open(&mut inst, "lapsed", &opts_with(server.addr, 5, Some(1)));
    assert_eq!(lock.acquire(&mut inst), Ok(true));
    let mut observer = host_tests::connect(server.addr);
    host_tests::eventually("the server ends the lease", Duration::from_secs(10), || {
        let stats = observer.stats().unwrap();
        stats.locks.iter().all(|l| l.key != "lapsed").then_some(())
    });
    assert!(
        matches!(lock.renew(&mut inst), Err(Error::LockLost(_))),
        "the renewal is refused"
    );
    assert!(!lock.is_held(&mut inst));
    let lost = inst
        .client
        .dflockd_client_driver()
        .call_drive(&mut inst.store)
        .unwrap();
    assert_eq!(lost.len(), 1, "reported to the driver once");
    assert_eq!(lost[0].key, "lapsed");
    assert_eq!(
        lock.release(&mut inst),
        Ok(false),
        "nothing left to release"
    );
}

#[test]
fn max_locks_is_a_typed_error() {
    let server = dflockd(&["--max-locks", "1"]);
    let mut inst = instance(&[server.addr]);
    let one = Lock::open(&mut inst, "one", &opts_with(server.addr, 1, None));
    let two = Lock::open(&mut inst, "two", &opts_with(server.addr, 1, None));
    assert_eq!(one.acquire(&mut inst), Ok(true));
    assert_eq!(two.acquire(&mut inst), Err(Error::MaxLocks));
}

#[test]
fn the_low_level_connection_speaks_every_lock_command() {
    let server = dflockd(&[]);
    let mut inst = instance(&[server.addr]);
    let plain = [Setting::ConnectTimeoutMs(5_000)];
    let conn = inst
        .open_connection(&server_of(server.addr), &plain)
        .unwrap()
        .unwrap();
    let c = inst.client.dflockd_client_connection().connection();
    let s = &mut inst.store;
    let grant = c
        .call_lock(&mut *s, conn, "low", 1, Some(30))
        .unwrap()
        .unwrap()
        .expect("granted");
    assert_eq!(grant.lease_s, 30);
    assert!(
        c.call_renew(&mut *s, conn, "low", &grant.token, Some(30))
            .unwrap()
            .unwrap()
            > 0
    );
    assert_eq!(
        c.call_lock(&mut *s, conn, "low", 0, None).unwrap(),
        Ok(None),
        "held: try-lock times out"
    );
    assert_eq!(
        c.call_unlock(&mut *s, conn, "low", &grant.token).unwrap(),
        Ok(())
    );
    assert!(matches!(
        c.call_unlock(&mut *s, conn, "low", &grant.token).unwrap(),
        Err(Error::Server(_))
    ));
    let enqueued = c
        .call_enqueue(&mut *s, conn, "low2", None)
        .unwrap()
        .unwrap();
    let host_tests::Enqueued::Acquired(fast) = enqueued else {
        panic!("free key: {enqueued:?}")
    };
    assert_eq!(
        c.call_wait(&mut *s, conn, "low2", 1)
            .unwrap()
            .unwrap()
            .map(|g| g.token),
        Some(fast.token)
    );
}

#[test]
fn drive_never_waits_for_the_reply_of_a_paused_server() {
    // The server is frozen (SIGSTOP) from the grant until past the renewal
    // time, for less than the lease: `drive` sends the renewal and returns
    // at once on every call (it used to wait for buffer space up to the
    // 10 s reply grace, re-entering itself), and the lease survives.
    let server = dflockd(&[]);
    let mut inst = instance(&[server.addr]);
    let lock = Lock::open(&mut inst, "paused", &opts_with(server.addr, 5, Some(6)));
    assert_eq!(lock.acquire(&mut inst), Ok(true));
    let granted = Instant::now();
    server.pause();
    let (mut calls, mut slowest) = (0, Duration::ZERO);
    while granted.elapsed() < Duration::from_millis(4_500) {
        let wakeup = inst
            .client
            .dflockd_client_driver()
            .call_next_wakeup(&mut inst.store)
            .unwrap();
        let waited = inst.block_on(&wakeup);
        inst.drop_pollable(wakeup).unwrap();
        waited.unwrap();
        let started = Instant::now();
        let lost = inst
            .client
            .dflockd_client_driver()
            .call_drive(&mut inst.store)
            .unwrap();
        slowest = slowest.max(started.elapsed());
        assert!(lost.is_empty(), "lost while paused: {lost:?}");
        calls += 1;
    }
    assert!(
        slowest < Duration::from_secs(1),
        "drive blocked for {slowest:?}"
    );
    // After the renewal went out (3 s), the driver is woken every few ms
    // to look for its reply: many calls, each of them short.
    assert!(calls > 20, "the renewal was never in flight: {calls} calls");
    server.resume();
    // The renewal sent while paused is answered now; an explicit renew
    // goes out behind it and succeeds only if the lease survived.
    assert_eq!(lock.renew(&mut inst), Ok(6));
    assert!(lock.is_held(&mut inst));
    let lost = inst
        .client
        .dflockd_client_driver()
        .call_drive(&mut inst.store)
        .unwrap();
    assert!(lost.is_empty(), "{lost:?}");
    assert_eq!(lock.release(&mut inst), Ok(true));
}
