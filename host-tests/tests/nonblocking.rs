//! The non-blocking surface of the WIT (`start`, `driver.pollables`,
//! `driver.poll-events`) on the bare contract: many objects in one
//! instance, every command started without waiting, and one waiter for all
//! of them outside any call, as a host's driver does it.

use std::collections::HashMap;
use std::time::Duration;

use host_tests::server::dflockd;
use host_tests::{
    closed_port, instance, server_of, within, Command, Completion, Error, Event, Grant, Instance,
    Outcome, Setting,
};
use wasmtime::component::ResourceAny;

fn settings(server: std::net::SocketAddr) -> Vec<Setting> {
    vec![
        Setting::Servers(vec![server_of(server)]),
        // Far above the test's length: a waiter is never timed out here.
        Setting::AcquireTimeoutS(120),
    ]
}

fn open(inst: &mut Instance, key: &str, settings: &[Setting]) -> ResourceAny {
    inst.client
        .dflockd_client_locks()
        .lock()
        .call_open(&mut inst.store, key, settings)
        .unwrap()
        .unwrap()
}

fn start(inst: &mut Instance, lock: ResourceAny, command: Command) -> Result<u64, Error> {
    inst.client
        .dflockd_client_locks()
        .lock()
        .call_start(&mut inst.store, lock, command)
        .unwrap()
}

/// The blocking `acquire`.
fn acquire(inst: &mut Instance, lock: ResourceAny) -> Result<Option<Grant>, Error> {
    let locks = inst.client.dflockd_client_locks();
    locks.lock().call_acquire(&mut inst.store, lock).unwrap()
}

/// The blocking `release`.
fn release(inst: &mut Instance, lock: ResourceAny) -> Result<bool, Error> {
    let locks = inst.client.dflockd_client_locks();
    locks.lock().call_release(&mut inst.store, lock).unwrap()
}

/// Turns the instance until every ticket of `wanted` has completed (or
/// `enough` says so); returns every completion seen, by ticket. Panics if
/// the instance has nothing pending while a wanted ticket is open: a
/// completion that can never come.
fn turn_until(
    inst: &mut Instance,
    done: &mut HashMap<u64, Result<Outcome, Error>>,
    enough: impl Fn(&HashMap<u64, Result<Outcome, Error>>) -> bool,
) {
    while !enough(done) {
        let events = inst.turn().unwrap();
        if events.is_empty() && inst.pending().unwrap() == 0 {
            panic!("nothing pending, yet not done: {done:?}");
        }
        for event in events {
            if let Event::Done(Completion { ticket, outcome }) = event {
                assert!(
                    done.insert(ticket, outcome).is_none(),
                    "ticket {ticket} twice"
                );
            }
        }
    }
}

/// Turns the instance (20 ms at most each) until the server counts `n`
/// waiters on `key`: the started acquires have gone out. The completions
/// seen meanwhile go to `done`.
fn until_waiters(
    inst: &mut Instance,
    server: std::net::SocketAddr,
    key: &str,
    n: u32,
    done: &mut HashMap<u64, Result<Outcome, Error>>,
) {
    let mut observer = host_tests::connect(server);
    host_tests::eventually(
        &format!("{n} waiter(s) on {key}"),
        Duration::from_secs(20),
        || {
            for event in inst.turn_for(Duration::from_millis(20)).unwrap() {
                if let Event::Done(Completion { ticket, outcome }) = event {
                    done.insert(ticket, outcome);
                }
            }
            (host_tests::matrix::waiters(&mut observer, key)? == n).then_some(())
        },
    );
}

fn granted(outcome: &Result<Outcome, Error>) -> Grant {
    match outcome {
        Ok(Outcome::Acquired(Some(grant))) => grant.clone(),
        other => panic!("expected a grant, got {other:?}"),
    }
}

fn connection_error(outcome: &Result<Outcome, Error>) -> String {
    match outcome {
        Err(Error::Connection(why)) => why.clone(),
        other => panic!("expected a connection error, got {other:?}"),
    }
}

#[test]
fn three_locks_of_one_instance_take_turns_under_one_waiter() {
    within(Duration::from_secs(90), || {
        let server = dflockd(&[]);
        let mut inst = instance(&[server.addr]);
        let settings = settings(server.addr);
        let [a, b, c] = ["nb-turns"; 3].map(|key| open(&mut inst, key, &settings));
        assert_eq!(
            inst.pending().unwrap(),
            0,
            "nothing pending before any command"
        );
        let mut done = HashMap::new();

        let ta = start(&mut inst, a, Command::Acquire).unwrap();
        turn_until(&mut inst, &mut done, |d| d.contains_key(&ta));
        let first = granted(&done[&ta]);
        assert!(
            inst.pending().unwrap() > 0,
            "a held lease has a renewal to wait for"
        );

        // Both queue behind `a` at the server; neither start waits for that.
        let tb = start(&mut inst, b, Command::Acquire).unwrap();
        let tc = start(&mut inst, c, Command::Acquire).unwrap();
        assert!(ta != tb && tb != tc && ta != tc, "tickets are unique");
        match start(&mut inst, b, Command::Release) {
            Err(Error::InvalidArgument(why)) => assert!(why.contains("in progress"), "{why}"),
            other => panic!("a second command on a busy object: {other:?}"),
        }
        until_waiters(&mut inst, server.addr, "nb-turns", 2, &mut done);

        // Releasing `a` lets exactly one of them in.
        let release_a = start(&mut inst, a, Command::Release).unwrap();
        turn_until(&mut inst, &mut done, |d| {
            d.contains_key(&release_a) && (d.contains_key(&tb) || d.contains_key(&tc))
        });
        assert_eq!(done[&release_a], Ok(Outcome::Released(true)));
        let (winner, wt, other, ot) = if done.contains_key(&tb) {
            (b, tb, c, tc)
        } else {
            (c, tc, b, tb)
        };
        assert!(!done.contains_key(&ot), "both waiters granted at once");
        let second = granted(&done[&wt]);

        let release_w = start(&mut inst, winner, Command::Release).unwrap();
        turn_until(&mut inst, &mut done, |d| {
            d.contains_key(&release_w) && d.contains_key(&ot)
        });
        let third = granted(&done[&ot]);
        assert!(first.token != second.token && second.token != third.token);

        let release_o = start(&mut inst, other, Command::Release).unwrap();
        turn_until(&mut inst, &mut done, |d| d.contains_key(&release_o));
        assert_eq!(done[&release_o], Ok(Outcome::Released(true)));
        assert_eq!(
            inst.pending().unwrap(),
            0,
            "nothing held and no command running: nothing to wait on"
        );
    });
}

#[test]
fn a_refused_connection_is_a_completion_not_a_blocked_call() {
    within(Duration::from_secs(60), || {
        let port = closed_port();
        let mut inst = instance(&[port]);
        let lock = open(&mut inst, "nb-refused", &settings(port));
        let ticket = start(&mut inst, lock, Command::Acquire).unwrap();
        let mut done = HashMap::new();
        turn_until(&mut inst, &mut done, |d| d.contains_key(&ticket));
        connection_error(&done[&ticket]);
        assert_eq!(inst.pending().unwrap(), 0);
    });
}

#[test]
fn blocking_calls_run_while_started_commands_wait_in_the_same_instance() {
    within(Duration::from_secs(90), || {
        let server = dflockd(&[]);
        let mut inst = instance(&[server.addr]);
        let settings = settings(server.addr);
        let holder = open(&mut inst, "nb-mixed", &settings);
        let waiter = open(&mut inst, "nb-mixed", &settings);
        let other = open(&mut inst, "nb-mixed-other", &settings);
        let held = acquire(&mut inst, holder);
        assert!(matches!(held, Ok(Some(_))), "{held:?}");
        let ticket = start(&mut inst, waiter, Command::Acquire).unwrap();
        let mut done = HashMap::new();
        until_waiters(&mut inst, server.addr, "nb-mixed", 1, &mut done);

        // A blocking call on another key returns while the waiter waits.
        let grant = acquire(&mut inst, other);
        assert!(matches!(grant, Ok(Some(_))), "{grant:?}");
        assert_eq!(release(&mut inst, other), Ok(true));
        // Its release (blocking) lets the waiter in; the grant is an event.
        assert_eq!(release(&mut inst, holder), Ok(true));
        turn_until(&mut inst, &mut done, |d| d.contains_key(&ticket));
        granted(&done[&ticket]);

        // Dropping an object whose started command runs still reports it.
        let queued = open(&mut inst, "nb-mixed", &settings);
        let dropped = start(&mut inst, queued, Command::Acquire).unwrap();
        until_waiters(&mut inst, server.addr, "nb-mixed", 1, &mut done);
        queued.resource_drop(&mut inst.store).unwrap();
        turn_until(&mut inst, &mut done, |d| d.contains_key(&dropped));
        let why = connection_error(&done[&dropped]);
        assert!(why.contains("dropped"), "{why}");
        assert_eq!(release(&mut inst, waiter), Ok(true));
    });
}

#[test]
fn an_object_dropped_mid_command_leaves_nothing_extra_to_wait_on() {
    within(Duration::from_secs(60), || {
        let server = dflockd(&[]);
        let mut inst = instance(&[server.addr]);
        let mut settings = settings(server.addr);
        // No renewal falls inside the test to add a socket of its own.
        settings.push(Setting::LeaseTtlS(120));
        let holders = ["nb-reuse-a", "nb-reuse-b"].map(|key| {
            let holder = open(&mut inst, key, &settings);
            assert!(matches!(acquire(&mut inst, holder), Ok(Some(_))));
            holder
        });
        let mut done = HashMap::new();
        let first = open(&mut inst, "nb-reuse-a", &settings);
        start(&mut inst, first, Command::Acquire).unwrap();
        until_waiters(&mut inst, server.addr, "nb-reuse-a", 1, &mut done);
        let one_waiter = inst.pending().unwrap();

        // Dropped while its acquire waits: the instance forgets it while
        // it is on the list of work to watch, and the next object opened
        // may take its place there. (Another key: a v1 server keeps the
        // dropped waiter queued until its wait ends.)
        first.resource_drop(&mut inst.store).unwrap();
        let second = open(&mut inst, "nb-reuse-b", &settings);
        start(&mut inst, second, Command::Acquire).unwrap();
        until_waiters(&mut inst, server.addr, "nb-reuse-b", 1, &mut done);
        assert_eq!(
            inst.pending().unwrap(),
            one_waiter,
            "the same state (two held, one waiting) waits on the same pollables"
        );
        for holder in holders {
            assert_eq!(release(&mut inst, holder), Ok(true));
        }
    });
}

#[test]
fn a_lease_lost_while_held_is_one_event() {
    within(Duration::from_secs(60), || {
        let mut server = dflockd(&[]);
        let mut inst = instance(&[server.addr]);
        let mut settings = settings(server.addr);
        settings.push(Setting::LeaseTtlS(2));
        let lock = open(&mut inst, "nb-lost", &settings);
        let ticket = start(&mut inst, lock, Command::Acquire).unwrap();
        let mut done = HashMap::new();
        turn_until(&mut inst, &mut done, |d| d.contains_key(&ticket));
        let grant = granted(&done[&ticket]);
        server.kill();
        // The idle connection is read at the renewal (after 1 s): the close
        // is found there, and reported once.
        let lost = loop {
            let events = inst.turn().unwrap();
            let mut losses = events.into_iter().map(|e| match e {
                Event::Lost(lost) => lost,
                Event::Done(c) => panic!("no command was started: {c:?}"),
                Event::Answered(c) => panic!("no connection was used: {c:?}"),
            });
            if let Some(lost) = losses.next() {
                assert!(losses.next().is_none(), "one loss, once");
                break lost;
            }
        };
        assert_eq!((lost.key.as_str(), lost.fence), ("nb-lost", grant.fence));
        assert_eq!(lost.reason.cause, host_tests::LossCause::ConnectionLost);
        assert_eq!(inst.pending().unwrap(), 0, "nothing held any more");
        match start(&mut inst, lock, Command::Release) {
            Err(Error::LockLost(_)) => {}
            other => panic!("the release after a loss: {other:?}"),
        }
    });
}

#[test]
fn a_server_named_by_host_name_is_resolved_in_steps() {
    within(Duration::from_secs(60), || {
        let server = dflockd(&[]);
        let mut inst = instance(&[server.addr]);
        let named = |host: &str| {
            vec![
                Setting::Servers(vec![host_tests::Server {
                    host: host.into(),
                    port: server.addr.port(),
                }]),
                Setting::ConnectTimeoutMs(10_000),
            ]
        };
        let local = open(&mut inst, "nb-named", &named("localhost"));
        let nowhere = open(&mut inst, "nb-named", &named("no-such-host.invalid"));
        let granted_ticket = start(&mut inst, local, Command::Acquire).unwrap();
        let refused_ticket = start(&mut inst, nowhere, Command::Acquire).unwrap();
        let mut done = HashMap::new();
        turn_until(&mut inst, &mut done, |d| {
            d.contains_key(&granted_ticket) && d.contains_key(&refused_ticket)
        });
        granted(&done[&granted_ticket]);
        let why = connection_error(&done[&refused_ticket]);
        assert!(why.contains("resolving"), "{why}");
        assert_eq!(release(&mut inst, local), Ok(true));
    });
}

#[test]
fn a_reply_found_by_the_next_start_is_reported_under_its_own_ticket() {
    within(Duration::from_secs(60), || {
        let server = dflockd(&[]);
        let mut inst = instance(&[server.addr]);
        let lock = open(&mut inst, "nb-own-ticket", &settings(server.addr));
        let acquire = start(&mut inst, lock, Command::Acquire).unwrap();
        // Nobody takes the events: each release started after a wake-up
        // is refused while the acquire runs (connecting, then on the
        // wire), and accepted by the call that reads its grant first.
        let release = loop {
            inst.wait_ready(None).unwrap();
            match start(&mut inst, lock, Command::Release) {
                Ok(ticket) => break ticket,
                Err(Error::InvalidArgument(why)) => assert!(why.contains("in progress"), "{why}"),
                Err(e) => panic!("release: {e:?}"),
            }
        };
        let mut done = HashMap::new();
        turn_until(&mut inst, &mut done, |d| {
            d.contains_key(&acquire) && d.contains_key(&release)
        });
        granted(&done[&acquire]);
        assert_eq!(done[&release], Ok(Outcome::Released(true)));
    });
}

/// The promise a host's driver relies on when a wake of its own (a
/// caller's request) lets it skip `poll-events`: while events wait to be
/// taken, `pollables` gives one that is ready at once, so nothing waiting
/// is left without a wake.
#[test]
fn events_waiting_to_be_taken_make_a_pollable_ready_at_once() {
    within(Duration::from_secs(60), || {
        let server = dflockd(&[]);
        let mut inst = instance(&[server.addr]);
        let started = open(&mut inst, "nb-events-ready", &settings(server.addr));
        let other = open(&mut inst, "nb-events-ready-other", &settings(server.addr));
        let acquire = start(&mut inst, started, Command::Acquire).unwrap();
        // Blocking calls on another lock (and `is-held`, which brings the
        // lock up to date) drive the started acquire until its grant is
        // read: its completion then waits, untaken, with no socket of the
        // instance awaiting anything.
        while !is_held(&mut inst, started) {
            assert!(acquire_then_release(&mut inst, other));
        }
        // Else the only pollable is the held lease's renewal timer, half
        // its 33 s lease away: the bound passes first.
        let ready = inst.which_ready(Duration::from_secs(5)).unwrap();
        assert!(
            ready.contains(&true),
            "an event waits, yet none of the instance's pollables was ready: {ready:?}"
        );
        let driver = inst.client.dflockd_client_driver();
        let events = driver.call_poll_events(&mut inst.store).unwrap();
        assert!(
            matches!(&events[..], [Event::Done(Completion { ticket, outcome: Ok(_) })] if *ticket == acquire),
            "{events:?}"
        );
        assert_eq!(release(&mut inst, started), Ok(true));
    });
}

fn is_held(inst: &mut Instance, lock: ResourceAny) -> bool {
    let locks = inst.client.dflockd_client_locks();
    locks.lock().call_is_held(&mut inst.store, lock).unwrap()
}

/// The blocking `acquire`, then `release`: whether both succeeded.
fn acquire_then_release(inst: &mut Instance, lock: ResourceAny) -> bool {
    matches!(acquire(inst, lock), Ok(Some(_))) && release(inst, lock) == Ok(true)
}
