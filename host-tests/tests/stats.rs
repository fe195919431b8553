//! The typed `stats` of a dialect-v1 server, through the component:
//! exactly the keys held and queued, with their limit, holders and waiters,
//! and the idle lists once everything is released.

use std::time::Duration;

use host_tests::server::dflockd;
use host_tests::{connect, eventually, lock_on, semaphore_on};

#[test]
fn stats_show_what_is_held_and_queued_then_the_idle_keys() {
    let server = dflockd(&[]);
    let mut conn = connect(server.addr);
    let idle = conn.stats().unwrap();
    assert_eq!(idle.connections, 1, "only this connection");
    assert!(idle.locks.is_empty() && idle.semaphores.is_empty());
    assert!(idle.idle_locks.is_empty() && idle.idle_semaphores.is_empty());

    let lock = lock_on(server.addr, "stats:lock")
        .lease_ttl_s(30)
        .build()
        .unwrap();
    let held = lock.acquire().unwrap().expect("granted");
    let slots: Vec<_> = (0..3)
        .map(|_| semaphore_on(server.addr, "stats:sem", 2).build().unwrap())
        .collect();
    let queued: Vec<_> = slots
        .iter()
        .map(|s| s.enqueue().unwrap().is_queued())
        .collect();
    assert_eq!(queued, [false, false, true]);

    let busy = conn.stats().unwrap();
    assert_eq!(
        busy.connections, 5,
        "the stats connection, the lock, three semaphores"
    );
    assert_eq!(busy.locks.len(), 1, "{:?}", busy.locks);
    let l = &busy.locks[0];
    assert_eq!((l.key.as_str(), l.waiters), ("stats:lock", 0));
    assert!(
        l.lease_expires_in_s > 0.0 && l.lease_expires_in_s <= 30.0,
        "{l:?}"
    );
    assert!(l.owner_conn_id > 0);
    assert_eq!(busy.semaphores.len(), 1, "{:?}", busy.semaphores);
    let s = &busy.semaphores[0];
    assert_eq!(
        (s.key.as_str(), s.limit, s.holders, s.waiters),
        ("stats:sem", 2, 2, 1)
    );
    assert!(busy.idle_locks.is_empty() && busy.idle_semaphores.is_empty());
    assert_eq!(busy.cluster, None, "v1.10.0 has no cluster");

    // The queued one leaves (its connection closes), the others release.
    drop(slots.into_iter().rev().collect::<Vec<_>>());
    assert_eq!(held.release(), Ok(true));
    let after = eventually(
        "the server forgets the closed connections",
        Duration::from_secs(10),
        || {
            let stats = conn.stats().unwrap();
            (stats.connections == 2).then_some(stats)
        },
    );
    assert!(after.locks.is_empty(), "{:?}", after.locks);
    assert!(after.semaphores.is_empty(), "{:?}", after.semaphores);
    let idle_lock: Vec<_> = after.idle_locks.iter().map(|i| i.key.as_str()).collect();
    let idle_sem: Vec<_> = after
        .idle_semaphores
        .iter()
        .map(|i| i.key.as_str())
        .collect();
    assert_eq!(
        (idle_lock, idle_sem),
        (vec!["stats:lock"], vec!["stats:sem"])
    );
    assert!(after.idle_locks[0].idle_s >= 0.0);
}
