//! The WIT `lock-set` on the bare contract, against the test server: all
//! or nothing under one deadline, the canonical order that keeps sets
//! sharing keys out of a deadlock, a member's loss as the set's, and the
//! non-blocking form.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use host_tests::server::{dflockd, dflockd_in, newest_dialect};
use host_tests::{
    instance, server_of, within, Command, Completion, Error, Event, Grant, Instance, LossCause,
    Outcome, Setting,
};
use wasmtime::component::ResourceAny;

fn settings(servers: &[SocketAddr], timeout_s: u64) -> Vec<Setting> {
    vec![
        Setting::Servers(servers.iter().copied().map(server_of).collect()),
        Setting::AcquireTimeoutS(timeout_s),
    ]
}

fn open(inst: &mut Instance, keys: &[&str], settings: &[Setting]) -> Result<ResourceAny, Error> {
    let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    let sets = inst.client.dflockd_client_locks().lock_set();
    sets.call_open(&mut inst.store, &keys, settings).unwrap()
}

fn acquire(inst: &mut Instance, set: ResourceAny) -> Result<Option<Vec<Grant>>, Error> {
    let sets = inst.client.dflockd_client_locks().lock_set();
    sets.call_acquire(&mut inst.store, set).unwrap()
}

fn release(inst: &mut Instance, set: ResourceAny) -> Result<bool, Error> {
    let sets = inst.client.dflockd_client_locks().lock_set();
    sets.call_release(&mut inst.store, set).unwrap()
}

fn is_held(inst: &mut Instance, set: ResourceAny) -> bool {
    let sets = inst.client.dflockd_client_locks().lock_set();
    sets.call_is_held(&mut inst.store, set).unwrap()
}

fn keys(inst: &mut Instance, set: ResourceAny) -> Vec<String> {
    let sets = inst.client.dflockd_client_locks().lock_set();
    sets.call_keys(&mut inst.store, set).unwrap()
}

/// Whether `key` is free at `server` now: a try-lock of a plain lock,
/// released again.
fn free(server: SocketAddr, key: &str) -> bool {
    let lock = host_tests::lock_on(server, key)
        .acquire_timeout_s(0)
        .build()
        .expect("build");
    let taken = lock.acquire().expect("try").is_some();
    taken
}

#[test]
fn a_set_is_taken_whole_and_released_whole() {
    let server = dflockd(&[]);
    let mut inst = instance(&[server.addr]);
    let set = open(&mut inst, &["c", "a", "b"], &settings(&[server.addr], 10)).unwrap();
    assert_eq!(keys(&mut inst, set), ["a", "b", "c"], "by server, then key");
    let grants = acquire(&mut inst, set).unwrap().expect("all free");
    assert_eq!(grants.len(), 3);
    assert!(is_held(&mut inst, set));
    for key in ["a", "b", "c"] {
        assert!(!free(server.addr, key), "{key} is not held");
    }
    let again = acquire(&mut inst, set);
    assert!(matches!(again, Err(Error::InvalidArgument(_))), "{again:?}");
    assert_eq!(release(&mut inst, set), Ok(true));
    assert!(!is_held(&mut inst, set));
    for key in ["a", "b", "c"] {
        assert!(free(server.addr, key), "{key} stayed held");
    }
    assert_eq!(release(&mut inst, set), Ok(false), "nothing held");
}

#[test]
fn a_member_held_elsewhere_times_the_set_out_with_nothing_held() {
    let server = dflockd(&[]);
    let other = host_tests::lock_on(server.addr, "b")
        .build()
        .expect("build");
    let _held = other.acquire().expect("acquire").expect("free");
    let mut inst = instance(&[server.addr]);
    let set = open(&mut inst, &["a", "b", "c"], &settings(&[server.addr], 1)).unwrap();
    assert_eq!(acquire(&mut inst, set), Ok(None));
    assert!(!is_held(&mut inst, set));
    // `a` was taken first, and given back before the answer.
    assert!(free(server.addr, "a"));
    assert!(free(server.addr, "c"));
}

#[test]
fn bad_sets_are_refused_before_anything_is_sent() {
    let server = dflockd(&[]);
    let mut inst = instance(&[server.addr]);
    let opts = settings(&[server.addr], 1);
    for keys in [&[][..], &["a", "a"], &["a", "two words"], &["a", ""]] {
        let opened = open(&mut inst, keys, &opts);
        assert!(matches!(opened, Err(Error::InvalidArgument(_))), "{keys:?}");
    }
    let set = open(&mut inst, &["a", "b"], &opts).unwrap();
    let sets = inst.client.dflockd_client_locks().lock_set();
    for command in [Command::Renew, Command::Enqueue, Command::Wait(None)] {
        let started = sets.call_start(&mut inst.store, set, command).unwrap();
        assert!(
            matches!(started, Err(Error::InvalidArgument(_))),
            "{started:?}"
        );
    }
}

#[test]
fn started_without_waiting_it_completes_in_a_turn_with_every_grant_behind() {
    let server = dflockd(&[]);
    let mut inst = instance(&[server.addr]);
    let set = open(&mut inst, &["x", "y"], &settings(&[server.addr], 10)).unwrap();
    let start = |inst: &mut Instance, command| {
        let sets = inst.client.dflockd_client_locks().lock_set();
        sets.call_start(&mut inst.store, set, command).unwrap()
    };
    let ticket = start(&mut inst, Command::Acquire).unwrap();
    let busy = start(&mut inst, Command::Release);
    assert!(matches!(busy, Err(Error::InvalidArgument(_))), "{busy:?}");
    let outcome = completion(&mut inst, ticket);
    assert!(
        matches!(outcome, Ok(Outcome::Acquired(Some(_)))),
        "{outcome:?}"
    );
    let sets = inst.client.dflockd_client_locks().lock_set();
    let grants = sets.call_grants(&mut inst.store, set).unwrap();
    assert_eq!(grants.len(), 2);
    let ticket = start(&mut inst, Command::Release).unwrap();
    assert_eq!(completion(&mut inst, ticket), Ok(Outcome::Released(true)));
    assert!(free(server.addr, "x") && free(server.addr, "y"));
}

/// Turns the instance until `ticket` completes.
fn completion(inst: &mut Instance, ticket: u64) -> Result<Outcome, Error> {
    loop {
        for event in inst.turn().unwrap() {
            if let Event::Done(Completion { ticket: t, outcome }) = event {
                if t == ticket {
                    return outcome;
                }
            }
        }
        assert!(
            inst.pending().unwrap() > 0,
            "ticket {ticket} can no longer complete"
        );
    }
}

#[test]
fn the_loss_of_one_member_is_the_loss_of_the_set() {
    // Two servers, a member on each; the one that dies takes its member.
    let (mut a, b) = (dflockd(&[]), dflockd_in(newest_dialect(), &[]));
    let servers = [a.addr, b.addr];
    let keys = two_keys_one_on_each(2);
    let mut opts = settings(&servers, 5);
    opts.push(Setting::LeaseTtlS(2));
    let mut inst = instance(&servers);
    let set = open(&mut inst, &[&keys[0], &keys[1]], &opts).unwrap();
    acquire(&mut inst, set).unwrap().expect("free");
    a.kill();
    // The renewal of the member on `a` fails; the set lets go of `b`'s.
    let lost = within(Duration::from_secs(30), move || loop {
        let lost = inst.drive_once().unwrap();
        if let Some(lost) = lost.into_iter().next() {
            let held = is_held(&mut inst, set);
            let told = release(&mut inst, set);
            return (lost, held, told);
        }
        inst.wait_ready(None).unwrap();
    });
    let (lost, held, told) = lost;
    assert_eq!(lost.key, keys[0], "the member on the server that died");
    assert_eq!(lost.reason.cause, LossCause::ConnectionLost);
    assert!(!held);
    assert!(matches!(told, Err(Error::LockLost(_))), "{told:?}");
    host_tests::matrix::free_at_server(b.addr, &keys[1]);
}

/// Two or more of `keys` in a random order: a seeded xorshift, so that a
/// failing round can be run again.
fn random_pick<'a>(keys: &[&'a str], seed: u64) -> Vec<&'a str> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut mine = keys.to_vec();
    for i in (1..mine.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        mine.swap(i, j);
    }
    let n = 2 + (next() % (mine.len() as u64 - 1)) as usize;
    mine.truncate(n);
    mine
}

/// Keys routed to server 0 and 1 of `n` (CRC-32, as the component routes).
fn two_keys_one_on_each(n: u32) -> [String; 2] {
    let on = |index: u32| {
        (0..)
            .map(|i| format!("member-{i}"))
            .find(|k| crc32fast::hash(k.as_bytes()) % n == index)
            .expect("a key")
    };
    [on(0), on(1)]
}

#[test]
fn sets_sharing_keys_in_any_order_never_deadlock_nor_overlap() {
    let server = dflockd(&[]);
    let addr = server.addr;
    let keys = ["k1", "k2", "k3", "k4"];
    // Which thread holds each key now, as the threads themselves say.
    let holders: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let holders = holders.clone();
            std::thread::spawn(move || {
                let mut inst = instance(&[addr]);
                for round in 0..15 {
                    // Two to four of the keys, in a random order of this round's.
                    let mine = random_pick(&keys, (t * 100 + round) as u64);
                    let set = open(&mut inst, &mine, &settings(&[addr], 60)).unwrap();
                    acquire(&mut inst, set).unwrap().expect("within a minute");
                    for key in &mine {
                        let before = holders.lock().unwrap().insert(key.to_string(), t);
                        assert_eq!(before, None, "{key} held twice");
                    }
                    std::thread::yield_now();
                    for key in &mine {
                        holders.lock().unwrap().remove(*key);
                    }
                    assert_eq!(release(&mut inst, set), Ok(true));
                    set.resource_drop(&mut inst.store).unwrap();
                }
            })
        })
        .collect();
    within(Duration::from_secs(120), move || {
        for thread in threads {
            thread.join().expect("no overlap, no error");
        }
    });
    for key in keys {
        assert!(free(addr, key), "{key} left held");
    }
}

// ---- the Rust host's LockSet and AsyncLockSet ----

fn set_on(server: SocketAddr, keys: &[&str]) -> dflockd_host::Builder<dflockd_host::AllOf> {
    host_tests::runtime()
        .lock_set(keys.iter().copied())
        .server(server.ip().to_string(), server.port())
}

#[test]
fn the_blocking_lock_set_holds_every_key_until_its_guard_drops() {
    let server = dflockd(&[]);
    let set = set_on(server.addr, &["s2", "s1"]).build().unwrap();
    assert_eq!(set.keys(), ["s1", "s2"]);
    let guard = set.acquire().unwrap().expect("free");
    assert!(set.is_held());
    assert_eq!(set.grants().len(), 2);
    let shown = format!("{set:?}");
    assert!(
        shown.contains("s1") && !shown.contains(&set.grants()[0].token),
        "{shown}"
    );
    let rival = set_on(server.addr, &["s2", "s3"])
        .acquire_timeout_s(0)
        .build()
        .unwrap();
    assert!(
        rival.acquire().unwrap().is_none(),
        "s2 is held by the first set"
    );
    assert!(free(server.addr, "s3"), "the rival gave back s3");
    drop(guard);
    assert!(!set.is_held() && set.grants().is_empty());
    assert!(rival.acquire().unwrap().is_some());
    let routed = set_on(server.addr, &["a", "b"])
        .shard_with(|_, _| 0)
        .build();
    assert!(matches!(
        routed,
        Err(dflockd_host::Error::InvalidArgument(_))
    ));
}

#[test]
fn a_held_set_reports_the_loss_of_a_member_once_and_lets_go_of_the_rest() {
    let (mut a, b) = (dflockd(&[]), dflockd_in(newest_dialect(), &[]));
    let keys = two_keys_one_on_each(2);
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = Mutex::new(tx);
    let set = host_tests::runtime()
        .lock_set(keys.clone())
        .servers([
            (a.addr.ip().to_string(), a.addr.port()),
            (b.addr.ip().to_string(), b.addr.port()),
        ])
        .lease_ttl_s(2)
        .on_lost(move |lost| {
            let _ = tx.lock().unwrap().send(lost.clone());
        })
        .build()
        .unwrap();
    let guard = set.acquire().unwrap().expect("free");
    a.kill();
    let lost = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the loss is reported");
    assert_eq!(lost.key, keys[0]);
    assert!(!set.is_held());
    host_tests::matrix::free_at_server(b.addr, &keys[1]);
    let told = guard.release();
    assert!(
        matches!(told, Err(dflockd_host::Error::LockLost(_))),
        "{told:?}"
    );
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "reported once"
    );
}

#[test]
fn async_sets_sharing_keys_from_many_tasks_never_deadlock_nor_overlap() {
    let server = dflockd(&[]);
    let addr = server.addr;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let holders: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    rt.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let holders = holders.clone();
                tokio::spawn(async move {
                    for round in 0..10 {
                        let keys = ["t1", "t2", "t3", "t4", "t5"];
                        let mine = random_pick(&keys, (1_000 + t * 100 + round) as u64);
                        let set = set_on(addr, &mine)
                            .acquire_timeout_s(60)
                            .build_async()
                            .await
                            .unwrap();
                        let guard = set.acquire().await.unwrap().expect("within a minute");
                        for key in &mine {
                            let before = holders.lock().unwrap().insert(key.to_string(), t);
                            assert_eq!(before, None, "{key} held twice");
                        }
                        tokio::task::yield_now().await;
                        for key in &mine {
                            holders.lock().unwrap().remove(*key);
                        }
                        assert!(guard.release().await.unwrap(), "confirmed");
                    }
                })
            })
            .collect();
        let all = async {
            for task in tasks {
                task.await.expect("no overlap, no error");
            }
        };
        tokio::time::timeout(Duration::from_secs(120), all)
            .await
            .expect("no deadlock");
    });
    for key in ["t1", "t2", "t3", "t4", "t5"] {
        assert!(free(addr, key), "{key} left held");
    }
}

#[test]
fn a_frozen_server_fails_the_set_when_its_reply_is_overdue() {
    let server = dflockd(&[]);
    let addr = server.addr;
    server.pause();
    let answer = within(Duration::from_secs(60), move || {
        let mut inst = instance(&[addr]);
        let set = open(&mut inst, &["f1", "f2"], &settings(&[addr], 1)).unwrap();
        let answer = acquire(&mut inst, set);
        let held = is_held(&mut inst, set);
        (answer, held)
    });
    server.resume();
    assert!(matches!(answer.0, Err(Error::Timeout)), "{answer:?}");
    assert!(!answer.1);
}

#[test]
fn the_host_lock_set_fails_on_a_frozen_server_too() {
    let server = dflockd(&[]);
    let addr = server.addr;
    server.pause();
    let answer = within(Duration::from_secs(60), move || {
        let set = set_on(addr, &["g1", "g2"])
            .acquire_timeout_s(1)
            .build()
            .unwrap();
        let answer = set.acquire().map(|g| g.is_some());
        (answer, set.is_held())
    });
    server.resume();
    assert!(
        matches!(answer.0, Err(dflockd_host::Error::Timeout)),
        "{answer:?}"
    );
    assert!(!answer.1);
}
