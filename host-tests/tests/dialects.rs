//! What differs between dflockd 1.10.0 (dialect `v1`) and 2.1 (`v2`), each
//! test run against every dialect the harness can start (both with the test
//! server; a real binary's own with `DFLOCKD_BIN`) and asserting that
//! dialect's behaviour: `ping`, lock and semaphore key spaces, rising
//! fences, and what a shutdown does to a holder, a waiter and an idle
//! connection.

use std::sync::Arc;
use std::time::Duration;

use dflockd_host::Error;
use host_tests::matrix::{shutdown_loss, waiters_become, watching};
use host_tests::server::{dflockd_in, dialects, Dialect};
use host_tests::{connect, lock_on, semaphore_on, within};

#[test]
fn ping_is_ok_on_v2_and_a_typed_refusal_on_v1_and_the_connection_stays_usable() {
    for dialect in dialects() {
        let server = dflockd_in(dialect, &[]);
        let mut conn = connect(server.addr);
        match (dialect, conn.ping()) {
            (Dialect::V1, Err(Error::Server(why))) => assert!(why.contains("ping"), "{why}"),
            (Dialect::V2, Ok(())) => {}
            (_, other) => panic!("{dialect}: ping -> {other:?}"),
        }
        assert!(
            conn.lock("after-ping", 0, None).unwrap().is_some(),
            "{dialect}"
        );
    }
}

#[test]
fn a_lock_and_a_semaphore_on_one_key_collide_on_v1_only() {
    for dialect in dialects() {
        let server = dflockd_in(dialect, &[]);
        let mut conn = connect(server.addr);
        assert!(conn.lock("shared", 0, None).unwrap().is_some());
        let semaphore = conn.sem_acquire("shared", 0, 3, None);
        match dialect {
            Dialect::V1 => assert_eq!(semaphore, Err(Error::LimitMismatch)),
            Dialect::V2 => assert!(matches!(semaphore, Ok(Some(_))), "{semaphore:?}"),
        }
        // The high-level objects, both held at once on v2.
        let lock = lock_on(server.addr, "both").build().unwrap();
        let sem = semaphore_on(server.addr, "both", 2).build().unwrap();
        let _held = lock.acquire().unwrap().expect("the lock");
        let slot = sem.acquire();
        match dialect {
            Dialect::V1 => assert_eq!(slot.err(), Some(Error::LimitMismatch)),
            Dialect::V2 => assert!(matches!(slot, Ok(Some(_))), "{:?}", slot.err()),
        }
        // A semaphore of limit 1 on a held lock's key: the lock itself on
        // v1 (held: the try-lock times out), a free semaphore on v2.
        let solo = lock_on(server.addr, "solo").build().unwrap();
        let _also_held = solo.acquire().unwrap().expect("the lock");
        let one = semaphore_on(server.addr, "solo", 1)
            .acquire_timeout_s(0)
            .build()
            .unwrap();
        let got = one.acquire().unwrap().is_some();
        assert_eq!(got, dialect == Dialect::V2, "{dialect}");
    }
}

#[test]
fn fences_rise_on_every_grant_on_v2_and_are_random_on_v1() {
    for dialect in dialects() {
        let server = dflockd_in(dialect, &[]);
        let locks: Vec<_> = ["fa", "fb"]
            .iter()
            .map(|key| lock_on(server.addr, key).build().unwrap())
            .collect();
        let mut fences = Vec::new();
        for i in 0..12 {
            let guard = locks[i % 2].acquire().unwrap().expect("granted");
            let token = guard.token().unwrap().to_string();
            assert!(token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()));
            fences.push(guard.fence().unwrap());
            assert_eq!(guard.release(), Ok(true));
        }
        let rising = fences.windows(2).all(|w| w[0] < w[1]);
        match dialect {
            Dialect::V2 => assert!(rising, "v2 fences rise across keys: {fences:?}"),
            // Twelve random fences rise by chance once in 12! (~5e8).
            Dialect::V1 => assert!(!rising, "v1 tokens are random: {fences:?}"),
        }
    }
}

#[test]
fn a_shutdown_ends_a_wait_with_error_and_then_drains_by_dialect() {
    for dialect in dialects() {
        let server = dflockd_in(dialect, &["--shutdown-timeout", "4"]);
        let (builder, lost) = watching(server.addr, "drain");
        let holder = builder.build().unwrap();
        std::mem::forget(holder.acquire().unwrap().expect("granted"));
        let waiter = Arc::new(
            lock_on(server.addr, "drain")
                .acquire_timeout_s(30)
                .build()
                .unwrap(),
        );
        let mut idle = connect(server.addr);
        let waiting = waiter.clone();
        let waited = std::thread::spawn(move || waiting.acquire().map(|g| g.is_some()));
        waiters_become(server.addr, "drain", 1);
        server.term();
        // Both dialects cancel a wait in progress with a plain `error`.
        let seen = within(Duration::from_secs(10), move || waited.join().unwrap());
        assert!(matches!(seen, Err(Error::Server(_))), "{dialect}: {seen:?}");
        // A request on an open connection: served by v1 until the drain
        // closes it; refused (and the connection closed) by v2.
        let asked = idle.stats();
        match dialect {
            Dialect::V1 => assert!(asked.is_ok(), "{asked:?}"),
            Dialect::V2 => assert_eq!(asked.err(), Some(Error::Draining)),
        }
        // v1 renews until the drain closes the connection; v2 refuses the
        // next renewal with `error_draining`.
        let loss = lost
            .recv_timeout(Duration::from_secs(15))
            .expect("the lease is lost");
        assert_eq!(
            loss.reason.cause,
            shutdown_loss(dialect),
            "{dialect}: {loss:?}"
        );
        assert!(lost.try_recv().is_err(), "one report");
    }
}
