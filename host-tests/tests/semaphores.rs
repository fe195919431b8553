//! Counting semaphores through the component against a dialect-v1 server:
//! the limit holds under contention, the first holder fixes the limit,
//! two-phase and renewal work. Whether a lock shares its key with a
//! semaphore depends on the dialect: `dialects.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use dflockd_host::{Enqueued, Error};
use host_tests::server::dflockd;
use host_tests::{connect, semaphore_on};

#[test]
fn nine_workers_share_three_slots_and_never_more_than_three_hold() {
    let server = dflockd(&[]);
    let inside = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..9)
        .map(|n| {
            let (inside, most, served) = (inside.clone(), most.clone(), served.clone());
            let addr = server.addr;
            thread::spawn(move || {
                let sem = semaphore_on(addr, "pool", 3)
                    .acquire_timeout_s(60)
                    .build()
                    .unwrap();
                let guard = sem.acquire().unwrap().unwrap_or_else(|| panic!("{n}"));
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                assert!(now <= 3, "{now} holders at once");
                thread::sleep(Duration::from_millis(50)); // the work
                inside.fetch_sub(1, Ordering::SeqCst);
                served.fetch_add(1, Ordering::SeqCst);
                assert_eq!(guard.release(), Ok(true));
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(served.load(Ordering::SeqCst), 9);
    assert!(most.load(Ordering::SeqCst) <= 3);
}

#[test]
fn the_first_three_are_granted_and_the_fourth_queues() {
    let server = dflockd(&[]);
    let sems: Vec<_> = (0..4)
        .map(|_| semaphore_on(server.addr, "slots", 3).build().unwrap())
        .collect();
    let queued: Vec<_> = sems
        .iter()
        .map(|s| s.enqueue().unwrap().is_queued())
        .collect();
    assert_eq!(queued, [false, false, false, true]);
    let stats = connect(server.addr).stats().unwrap();
    let slots = stats.semaphores.iter().find(|s| s.key == "slots").unwrap();
    assert_eq!((slots.limit, slots.holders, slots.waiters), (3, 3, 1));
    // A slot freed goes to the queued one; renewal works on a slot.
    assert!(sems[0].renew().unwrap() > 0);
    assert_eq!(sems[1].release(), Ok(true));
    let guard = sems[3].wait(Some(5)).unwrap().expect("the freed slot");
    assert!(guard.is_held());
    assert_eq!(guard.release(), Ok(true));
}

#[test]
fn a_second_limit_on_the_same_key_is_limit_mismatch() {
    let server = dflockd(&[]);
    let three = semaphore_on(server.addr, "fixed", 3).build().unwrap();
    let _held = three.acquire().unwrap().expect("granted");
    let two = semaphore_on(server.addr, "fixed", 2).build().unwrap();
    assert_eq!(two.acquire().err(), Some(Error::LimitMismatch));
    assert_eq!(two.enqueue().err(), Some(Error::LimitMismatch));
}

#[test]
fn two_phase_on_a_semaphore_takes_the_fast_and_the_queued_path() {
    let server = dflockd(&[]);
    let a = semaphore_on(server.addr, "two-phase", 2).build().unwrap();
    let b = semaphore_on(server.addr, "two-phase", 2).build().unwrap();
    let c = semaphore_on(server.addr, "two-phase", 2).build().unwrap();
    assert!(matches!(a.enqueue(), Ok(Enqueued::Acquired(_))));
    assert!(matches!(b.enqueue(), Ok(Enqueued::Acquired(_))));
    assert_eq!(c.enqueue(), Ok(Enqueued::Queued));
    let a_slot = a.wait(Some(1)).unwrap().expect("fast path: held already");
    assert!(!c.is_held());
    assert_eq!(
        c.wait(Some(1)).map(|g| g.is_some()),
        Ok(false),
        "no slot frees within 1 s"
    );
    // The timed-out waiter left the queue; a new one takes the freed slot.
    assert_eq!(c.enqueue(), Ok(Enqueued::Queued));
    assert_eq!(a_slot.release(), Ok(true));
    let guard = c.wait(Some(5)).unwrap().expect("the slot a freed");
    assert_eq!(guard.release(), Ok(true));
    assert_eq!(b.release(), Ok(true));
}
