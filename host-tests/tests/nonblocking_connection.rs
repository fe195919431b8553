//! The non-blocking `connection.start` on the bare contract: several
//! low-level connections in one instance, every command (`connect`
//! included) started without waiting and answered through
//! `driver.poll-events`, one waiter for all of them, as the host's driver
//! uses it.

use std::collections::HashMap;

use host_tests::matrix::waiters_become;
use host_tests::raw::{
    AcquireRequest, Answer, ConnectionCommand, ConnectionCompletion, ReleaseRequest, RenewRequest,
};
use host_tests::server::{dflockd, dflockd_in, newest_dialect};
use host_tests::{closed_port, instance, server_of, Error, Event, Grant, Instance};
use wasmtime::component::ResourceAny;

fn create(inst: &mut Instance, server: std::net::SocketAddr) -> ResourceAny {
    let conns = inst.client.dflockd_client_connection().connection();
    conns
        .call_create(&mut inst.store, &server_of(server), &[])
        .unwrap()
        .unwrap()
}

fn start(inst: &mut Instance, conn: ResourceAny, command: ConnectionCommand) -> Result<u64, Error> {
    let conns = inst.client.dflockd_client_connection().connection();
    conns.call_start(&mut inst.store, conn, &command).unwrap()
}

/// Turns the instance until every ticket of `tickets` is answered; the
/// answers by ticket. Panics when nothing is pending while one is open.
fn answers(inst: &mut Instance, tickets: &[u64]) -> HashMap<u64, Result<Answer, Error>> {
    let mut done = HashMap::new();
    while !tickets.iter().all(|t| done.contains_key(t)) {
        let events = inst.turn().unwrap();
        if events.is_empty() && inst.pending().unwrap() == 0 {
            panic!("nothing pending, yet not answered: {done:?}");
        }
        for event in events {
            match event {
                Event::Answered(ConnectionCompletion { ticket, answer }) => {
                    assert!(done.insert(ticket, answer).is_none(), "{ticket} twice");
                }
                other => panic!("only connections are used here: {other:?}"),
            }
        }
    }
    done
}

fn answer(inst: &mut Instance, ticket: u64) -> Result<Answer, Error> {
    answers(inst, &[ticket]).remove(&ticket).unwrap()
}

fn connected(inst: &mut Instance, conn: ResourceAny) {
    let ticket = start(inst, conn, ConnectionCommand::Connect).unwrap();
    assert_eq!(answer(inst, ticket), Ok(Answer::Connected));
}

fn lock(key: &str, timeout_s: u64) -> ConnectionCommand {
    ConnectionCommand::Lock(AcquireRequest {
        key: key.into(),
        timeout_s,
        lease_ttl_s: None,
    })
}

fn granted(answer: Result<Answer, Error>) -> Grant {
    match answer {
        Ok(Answer::Acquired(Some(grant))) => grant,
        other => panic!("expected a grant, got {other:?}"),
    }
}

#[test]
fn two_connections_wait_in_one_instance() {
    let server = dflockd(&[]);
    let mut inst = instance(&[server.addr]);
    let (a, b) = (
        create(&mut inst, server.addr),
        create(&mut inst, server.addr),
    );
    let opened = [
        start(&mut inst, a, ConnectionCommand::Connect).unwrap(),
        start(&mut inst, b, ConnectionCommand::Connect).unwrap(),
    ];
    let done = answers(&mut inst, &opened);
    assert!(
        done.values().all(|a| *a == Ok(Answer::Connected)),
        "{done:?}"
    );

    let key = "nb-conn-handover";
    let held = start(&mut inst, a, lock(key, 0)).unwrap();
    let held = granted(answer(&mut inst, held));
    // b's acquire waits in the server's queue; the instance goes on.
    let waiting = start(&mut inst, b, lock(key, 60)).unwrap();
    waiters_become(server.addr, key, 1);
    let renew = RenewRequest {
        key: key.into(),
        token: held.token.clone(),
        lease_ttl_s: None,
    };
    let renewed = start(&mut inst, a, ConnectionCommand::Renew(renew)).unwrap();
    assert!(matches!(answer(&mut inst, renewed), Ok(Answer::Renewed(s)) if s > 0));
    // a's release hands the key to b: both answered.
    let release = ReleaseRequest {
        key: key.into(),
        token: held.token.clone(),
    };
    let released = start(&mut inst, a, ConnectionCommand::Unlock(release)).unwrap();
    let mut done = answers(&mut inst, &[released, waiting]);
    assert_eq!(done.remove(&released), Some(Ok(Answer::Done)));
    let next = granted(done.remove(&waiting).unwrap());
    assert_ne!(next.token, held.token);
}

#[test]
fn what_cannot_start_is_refused_at_once() {
    let server = dflockd(&[]);
    let mut inst = instance(&[server.addr]);
    let conn = create(&mut inst, server.addr);
    let early = start(&mut inst, conn, ConnectionCommand::Ping);
    assert!(matches!(early, Err(Error::InvalidArgument(_))), "{early:?}");
    connected(&mut inst, conn);
    // A reply is never read within `start`: the stats are still pending.
    let stats = start(&mut inst, conn, ConnectionCommand::Stats).unwrap();
    let busy = start(&mut inst, conn, ConnectionCommand::Ping);
    assert!(matches!(busy, Err(Error::InvalidArgument(_))), "{busy:?}");
    assert!(matches!(answer(&mut inst, stats), Ok(Answer::Stats(_))));
    let again = start(&mut inst, conn, ConnectionCommand::Connect);
    assert!(matches!(again, Err(Error::InvalidArgument(_))), "{again:?}");
    // A bad key sends nothing: the connection stays usable.
    let bad = start(&mut inst, conn, lock("two words", 0));
    assert!(matches!(bad, Err(Error::InvalidArgument(_))), "{bad:?}");
    let stats = start(&mut inst, conn, ConnectionCommand::Stats).unwrap();
    assert!(matches!(answer(&mut inst, stats), Ok(Answer::Stats(_))));
}

#[test]
fn close_answers_the_waiting_command_and_the_server_drops_the_waiter() {
    // dflockd 1.x reads nothing from a connection while its command
    // waits: it sees the close only then. 2.x drops the waiter at once.
    let server = dflockd_in(newest_dialect(), &[]);
    let mut inst = instance(&[server.addr]);
    let (a, b) = (
        create(&mut inst, server.addr),
        create(&mut inst, server.addr),
    );
    connected(&mut inst, a);
    connected(&mut inst, b);
    let key = "nb-conn-close";
    let held = start(&mut inst, a, lock(key, 0)).unwrap();
    granted(answer(&mut inst, held));
    let waiting = start(&mut inst, b, lock(key, 60)).unwrap();
    waiters_become(server.addr, key, 1);
    let conns = inst.client.dflockd_client_connection().connection();
    conns.call_close(&mut inst.store, b).unwrap();
    let closed = answer(&mut inst, waiting);
    assert!(matches!(closed, Err(Error::Connection(_))), "{closed:?}");
    let mut observer = host_tests::connect(server.addr);
    host_tests::eventually("0 waiters", std::time::Duration::from_secs(10), || {
        // The instance turns meanwhile, as a host's driver does.
        inst.turn_for(std::time::Duration::from_millis(20)).unwrap();
        (host_tests::matrix::waiters(&mut observer, key)? == 0).then_some(())
    });
    // Every later command of the closed connection fails the same way.
    let later = start(&mut inst, b, ConnectionCommand::Ping);
    assert!(matches!(later, Err(Error::Connection(_))), "{later:?}");
}

#[test]
fn a_failed_connect_is_an_answer_and_stays() {
    let port = closed_port();
    let mut inst = instance(&[port]);
    let conn = create(&mut inst, port);
    let opening = start(&mut inst, conn, ConnectionCommand::Connect).unwrap();
    let failed = answer(&mut inst, opening);
    assert!(matches!(failed, Err(Error::Connection(_))), "{failed:?}");
    let later = start(&mut inst, conn, ConnectionCommand::Ping);
    assert_eq!(later.map(drop), failed.map(drop));
}

/// The same through the host's `AsyncConnection`: a cancelled call is a
/// close command, and the server drops the waiter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_async_wait_leaves_the_servers_queue() {
    let server = dflockd_in(newest_dialect(), &[]);
    let (ip, port) = (server.addr.ip().to_string(), server.addr.port());
    let runtime = host_tests::runtime();
    let mut a = runtime.connect_async(&ip, port, None).await.unwrap();
    let key = "nb-conn-cancel";
    a.lock(key, 0, None).await.unwrap().expect("held");
    let mut b = runtime.connect_async(&ip, port, None).await.unwrap();
    let addr = server.addr;
    let wait = b.lock(key, 60, None);
    let waited = tokio::select! {
        waited = wait => Some(waited),
        queued = tokio::task::spawn_blocking(move || waiters_become(addr, key, 1)) => {
            queued.unwrap();
            None
        }
    };
    assert!(waited.is_none(), "the wait ended: {waited:?}");
    tokio::task::spawn_blocking(move || waiters_become(addr, key, 0))
        .await
        .unwrap();
    let later = b.ping().await;
    assert!(
        matches!(later, Err(dflockd_host::Error::Connection(_))),
        "{later:?}"
    );
}
