//! The table on a virtual clock: `now` is an argument, so leases run out
//! without waiting.

use std::time::{Duration, Instant};

use super::*;

const LEASE: Duration = Duration::from_secs(10);

fn table(dialect: Dialect) -> Table {
    let limits = Limits {
        max_locks: 4,
        max_waiters: 2,
    };
    Table::new(dialect, limits, Tokens::new(dialect))
}

fn on(conn: u64, key: &str) -> Target<'_> {
    Target {
        conn,
        space: Space::Lock,
        key,
    }
}

fn sem(conn: u64, key: &str) -> Target<'_> {
    Target {
        conn,
        space: Space::Semaphore,
        key,
    }
}

fn now_token(a: Result<Acquired, Refusal>) -> String {
    match a {
        Ok(Acquired::Now(token)) => token,
        _ => panic!("not granted at once"),
    }
}

fn queued(a: Result<Acquired, Refusal>) -> Pending {
    match a {
        Ok(Acquired::Queued(p)) => p,
        _ => panic!("not queued"),
    }
}

#[test]
fn waiters_are_granted_in_fifo_order_as_slots_free() {
    let (mut t, t0) = (table(Dialect::V1), Instant::now());
    let first = now_token(t.acquire(on(1, "k"), LEASE, 1, true, t0));
    let mut second = queued(t.acquire(on(2, "k"), LEASE, 1, true, t0));
    let mut third = queued(t.acquire(on(3, "k"), LEASE, 1, true, t0));
    assert!(second.rx.try_recv().is_err(), "nothing freed yet");
    assert!(t.release(Space::Lock, "k", &first, t0));
    let token = second.rx.try_recv().expect("the first waiter is next");
    assert!(third.rx.try_recv().is_err(), "one slot, one grant");
    assert!(t.release(Space::Lock, "k", &token, t0));
    assert!(third.rx.try_recv().is_ok());
    assert!(!t.release(Space::Lock, "k", &token, t0), "released twice");
}

#[test]
fn a_try_lock_does_not_queue_but_the_waiter_cap_still_applies() {
    let (mut t, t0) = (table(Dialect::V1), Instant::now());
    now_token(t.acquire(on(1, "k"), LEASE, 1, true, t0));
    assert!(matches!(
        t.acquire(on(2, "k"), LEASE, 1, false, t0),
        Ok(Acquired::NotNow)
    ));
    let _a = queued(t.acquire(on(2, "k"), LEASE, 1, true, t0));
    let _b = queued(t.acquire(on(3, "k"), LEASE, 1, true, t0));
    for may_wait in [true, false] {
        assert!(matches!(
            t.acquire(on(4, "k"), LEASE, 1, may_wait, t0),
            Err(Some("max_waiters"))
        ));
    }
}

#[test]
fn v1_has_one_key_space_and_v2_two() {
    let t0 = Instant::now();
    let mut v1 = table(Dialect::V1);
    now_token(v1.acquire(on(1, "k"), LEASE, 1, true, t0));
    assert!(matches!(
        v1.acquire(sem(1, "k"), LEASE, 3, true, t0),
        Err(Some("limit_mismatch"))
    ));
    let mut v2 = table(Dialect::V2);
    now_token(v2.acquire(on(1, "k"), LEASE, 1, true, t0));
    now_token(v2.acquire(sem(1, "k"), LEASE, 3, true, t0));
    assert!(matches!(
        v2.acquire(sem(1, "k"), LEASE, 2, true, t0),
        Err(Some("limit_mismatch"))
    ));
    // Listed by limit in both dialects: a limit-1 semaphore is a lock.
    now_token(v2.acquire(sem(1, "one"), LEASE, 1, true, t0));
    let json = serde_json::to_value(v2.stats(1, t0)).unwrap();
    let locks: Vec<&str> = json["locks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["key"].as_str().unwrap())
        .collect();
    assert_eq!(locks.len(), 2, "{json}");
    assert!(locks.contains(&"k") && locks.contains(&"one"), "{json}");
    assert_eq!(json["semaphores"][0]["limit"], 3, "{json}");
}

#[test]
fn a_lease_runs_out_at_the_sweep_and_passes_the_slot_on() {
    let (mut t, t0) = (table(Dialect::V1), Instant::now());
    let held = now_token(t.acquire(on(1, "k"), Duration::from_secs(2), 1, true, t0));
    let mut next = queued(t.acquire(on(2, "k"), LEASE, 1, true, t0));
    let t1 = t0 + Duration::from_secs(1);
    assert_eq!(
        t.renew(Space::Lock, "k", &held, Duration::from_secs(2), t1),
        Some(2)
    );
    t.sweep(t1 + Duration::from_millis(1999));
    assert!(next.rx.try_recv().is_err(), "renewed: still held");
    t.sweep(t1 + Duration::from_secs(2));
    assert!(next.rx.try_recv().is_ok(), "run out: the waiter has it");
    assert_eq!(t.renew(Space::Lock, "k", &held, LEASE, t1 + LEASE), None);
}

#[test]
fn renewing_a_lease_that_ran_out_before_the_sweep_is_refused_and_evicts_it() {
    let (mut t, t0) = (table(Dialect::V1), Instant::now());
    let held = now_token(t.acquire(on(1, "k"), Duration::from_secs(2), 1, true, t0));
    let mut next = queued(t.acquire(on(2, "k"), LEASE, 1, true, t0));
    assert_eq!(
        t.renew(Space::Lock, "k", &held, LEASE, t0 + Duration::from_secs(2)),
        None
    );
    assert!(next.rx.try_recv().is_ok());
}

#[test]
fn two_phase_fast_path_then_wait_and_its_two_ways_to_end() {
    let (mut t, t0) = (table(Dialect::V1), Instant::now());
    let lease = Duration::from_secs(2);
    let token = t
        .enqueue(on(1, "k"), lease, 1, t0)
        .unwrap()
        .expect("acquired");
    assert!(matches!(
        t.enqueue(on(1, "k"), lease, 1, t0),
        Err(Some("already_enqueued"))
    ));
    match t.wait_start(on(1, "k"), t0 + Duration::from_secs(1)) {
        Ok(WaitStart::Now(got, l)) if l == lease => assert_eq!(got, token),
        _ => panic!("the fast-path grant"),
    }
    assert!(matches!(
        t.wait_start(on(1, "k"), t0),
        Err(Some("not_enqueued"))
    ));

    // Ran out before `w`, not yet swept: lease_expired; swept: not_enqueued.
    let (mut t, t0) = (table(Dialect::V1), Instant::now());
    t.enqueue(on(1, "a"), lease, 1, t0)
        .unwrap()
        .expect("acquired");
    assert!(matches!(
        t.wait_start(on(1, "a"), t0 + lease),
        Err(Some("lease_expired"))
    ));
    t.enqueue(on(1, "b"), lease, 1, t0)
        .unwrap()
        .expect("acquired");
    t.sweep(t0 + lease);
    assert!(matches!(
        t.wait_start(on(1, "b"), t0 + lease),
        Err(Some("not_enqueued"))
    ));
}

#[test]
fn a_queued_enqueue_is_granted_while_nobody_waits_and_wait_takes_it() {
    let (mut t, t0) = (table(Dialect::V1), Instant::now());
    let held = now_token(t.acquire(on(1, "k"), LEASE, 1, true, t0));
    assert_eq!(t.enqueue(on(2, "k"), LEASE, 1, t0), Ok(None));
    assert!(t.release(Space::Lock, "k", &held, t0));
    assert!(matches!(
        t.wait_start(on(2, "k"), t0),
        Ok(WaitStart::Now(_, LEASE))
    ));
}

#[test]
fn giving_up_after_the_grant_was_sent_returns_the_grant() {
    let (mut t, t0) = (table(Dialect::V1), Instant::now());
    let held = now_token(t.acquire(on(1, "k"), LEASE, 1, true, t0));
    let mut waiter = queued(t.acquire(on(2, "k"), LEASE, 1, true, t0));
    assert!(t.release(Space::Lock, "k", &held, t0));
    // The timeout fired as the grant was sent: the grant is not lost.
    let token = t.give_up(on(2, "k"), &mut waiter, t0).expect("the grant");
    assert!(t.release(Space::Lock, "k", &token, t0));

    // Given up before any grant: out of the queue, the next one is served.
    let held = now_token(t.acquire(on(1, "k"), LEASE, 1, true, t0));
    let mut gone = queued(t.acquire(on(2, "k"), LEASE, 1, true, t0));
    let mut next = queued(t.acquire(on(3, "k"), LEASE, 1, true, t0));
    assert_eq!(t.give_up(on(2, "k"), &mut gone, t0), None);
    assert!(t.release(Space::Lock, "k", &held, t0));
    assert!(next.rx.try_recv().is_ok());
}

#[test]
fn a_disconnect_frees_slots_only_with_auto_release_and_always_leaves_the_queues() {
    let (mut t, t0) = (table(Dialect::V2), Instant::now());
    let held = now_token(t.acquire(on(1, "k"), LEASE, 1, true, t0));
    let other = now_token(t.acquire(on(3, "other"), LEASE, 1, true, t0));
    let mut theirs = queued(t.acquire(on(1, "other"), LEASE, 1, true, t0));
    t.disconnect(1, false, t0);
    assert!(t.release(Space::Lock, "other", &other, t0));
    assert!(theirs.rx.try_recv().is_err(), "its waiter is gone");
    assert_eq!(
        t.renew(Space::Lock, "k", &held, LEASE, t0),
        Some(10),
        "slot kept"
    );
    let mut next = queued(t.acquire(on(2, "k"), LEASE, 1, true, t0));
    t.disconnect(1, true, t0);
    assert!(
        next.rx.try_recv().is_ok(),
        "slot released to the next waiter"
    );
}

#[test]
fn max_locks_counts_idle_keys_until_they_are_collected() {
    let (mut t, t0) = (table(Dialect::V1), Instant::now());
    for key in ["a", "b", "c", "d"] {
        let token = now_token(t.acquire(on(1, key), LEASE, 1, true, t0));
        assert!(t.release(Space::Lock, key, &token, t0));
    }
    assert!(matches!(
        t.acquire(on(1, "e"), LEASE, 1, true, t0),
        Err(Some("max_locks"))
    ));
    let idle = Duration::from_secs(60);
    t.collect_idle(t0 + idle, idle);
    assert!(matches!(
        t.acquire(on(1, "e"), LEASE, 1, true, t0),
        Err(Some("max_locks"))
    ));
    t.collect_idle(t0 + idle + Duration::from_millis(1), idle);
    now_token(t.acquire(on(1, "e"), LEASE, 1, true, t0));
}
