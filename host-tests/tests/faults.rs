//! Faults only a stand-in server can produce (the real dflockd never sends
//! garbage, over-long lines or silence): each must become a typed error, the
//! broken connection must stay closed, and the instance must not trap.

use std::sync::mpsc::TryRecvError;
use std::time::Duration;

use host_tests::standin::{self, Fault};
use host_tests::{instance, options, server_of, Error, Instance, Setting};
use wasmtime::component::ResourceAny;

const TOKEN: &str = "000000000000002a0123456789abcdef";
const WAIT: Duration = Duration::from_secs(30);

fn connect(
    inst: &mut Instance,
    addr: std::net::SocketAddr,
    opts: Vec<Setting>,
) -> Result<ResourceAny, Error> {
    inst.open_connection(&server_of(addr), &opts).unwrap()
}

fn plain() -> Vec<Setting> {
    vec![Setting::ConnectTimeoutMs(5_000)]
}

fn ping(inst: &mut Instance, conn: ResourceAny) -> Result<(), Error> {
    inst.client
        .dflockd_client_connection()
        .connection()
        .call_ping(&mut inst.store, conn)
        .unwrap()
}

#[test]
fn a_garbage_reply_is_a_protocol_error_and_the_connection_stays_closed() {
    let standin = standin::start(Fault::Reply(b"banana\n".to_vec()));
    let mut inst = instance(&[standin.addr]);
    let conn = connect(&mut inst, standin.addr, plain()).unwrap();
    assert!(matches!(ping(&mut inst, conn), Err(Error::Protocol(_))));
    assert!(
        matches!(ping(&mut inst, conn), Err(Error::Protocol(_))),
        "sticky"
    );
    assert_eq!(standin.requests.recv_timeout(WAIT).unwrap(), "ping\n_\n_\n");
    assert!(matches!(
        standin.requests.try_recv(),
        Err(TryRecvError::Empty | TryRecvError::Disconnected)
    ));
    conn.resource_drop(&mut inst.store).unwrap();
}

#[test]
fn over_long_and_non_utf8_replies_are_protocol_errors() {
    for reply in [
        vec![b'x'; 1024 * 1024 + 1],
        b"ok \xff\xfe\n".to_vec(),
        b"ok\nok\n".to_vec(),
    ] {
        let standin = standin::start(Fault::Reply(reply));
        let mut inst = instance(&[standin.addr]);
        let conn = connect(&mut inst, standin.addr, plain()).unwrap();
        assert!(matches!(ping(&mut inst, conn), Err(Error::Protocol(_))));
    }
}

#[test]
fn a_peer_that_closes_is_a_connection_error() {
    let standin = standin::start(Fault::Close);
    let mut inst = instance(&[standin.addr]);
    let conn = connect(&mut inst, standin.addr, plain()).unwrap();
    assert!(matches!(ping(&mut inst, conn), Err(Error::Connection(_))));
}

#[test]
fn silence_during_auth_is_a_client_side_timeout_that_never_shows_the_token() {
    let standin = standin::start(Fault::Silent);
    let mut inst = instance(&[standin.addr]);
    let opts = vec![
        Setting::ConnectTimeoutMs(300),
        Setting::AuthToken("s3cret-token".into()),
    ];
    let result = connect(&mut inst, standin.addr, opts);
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    assert_eq!(
        standin.requests.recv_timeout(WAIT).unwrap(),
        "auth\n_\ns3cret-token\n"
    );
}

#[test]
fn malformed_grants_are_protocol_errors_without_the_token_and_nothing_is_held() {
    for reply in [
        "ok nothex 30\n".to_string(),
        format!("ok {TOKEN} 30 extra\n"),
        format!("ok {TOKEN} 0\n"),
    ] {
        let standin = standin::start(Fault::Reply(reply.into_bytes()));
        let mut inst = instance(&[standin.addr]);
        let locks = inst.client.dflockd_client_locks().lock();
        let lock = locks
            .call_open(&mut inst.store, "k", &options(standin.addr))
            .unwrap()
            .unwrap();
        match locks.call_acquire(&mut inst.store, lock).unwrap() {
            Err(Error::Protocol(msg)) => assert!(!msg.contains(TOKEN), "{msg}"),
            other => panic!("{other:?}"),
        }
        assert!(!locks.call_is_held(&mut inst.store, lock).unwrap());
        assert_eq!(standin.requests.recv_timeout(WAIT).unwrap(), "l\nk\n10\n");
        // The next attempt opens a fresh connection instead of reusing the broken one.
        let _ = locks.call_acquire(&mut inst.store, lock).unwrap();
        standin.connections.recv_timeout(WAIT).unwrap();
        standin.connections.recv_timeout(WAIT).unwrap();
    }
}

#[test]
fn invalid_arguments_on_an_open_connection_send_no_byte() {
    let standin = standin::start(Fault::Reply(b"ok\n".to_vec()));
    let mut inst = instance(&[standin.addr]);
    let conn = connect(&mut inst, standin.addr, plain()).unwrap();
    let c = inst.client.dflockd_client_connection().connection();
    let s = &mut inst.store;
    assert!(matches!(
        c.call_lock(&mut *s, conn, "a b", 1, None).unwrap(),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        c.call_lock(&mut *s, conn, "k\nping", 1, None).unwrap(),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        c.call_lock(&mut *s, conn, "k", 9_223_372_037, None)
            .unwrap(),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        c.call_lock(&mut *s, conn, "k", 1, Some(0)).unwrap(),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        c.call_unlock(&mut *s, conn, "k", "to ken").unwrap(),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        c.call_renew(&mut *s, conn, "k", "", None).unwrap(),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        c.call_sem_acquire(&mut *s, conn, "k", 1, 0, None).unwrap(),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        c.call_sem_enqueue(&mut *s, conn, "", 1, None).unwrap(),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        c.call_wait(&mut *s, conn, "k", u64::MAX).unwrap(),
        Err(Error::InvalidArgument(_))
    ));
    // The connection is still in step: the first bytes the peer sees are the ping's.
    assert_eq!(c.call_ping(&mut *s, conn).unwrap(), Ok(()));
    assert_eq!(standin.requests.recv_timeout(WAIT).unwrap(), "ping\n_\n_\n");
    assert!(matches!(
        standin.requests.try_recv(),
        Err(TryRecvError::Empty)
    ));
}

#[test]
fn a_stats_reply_that_is_no_json_object_is_a_protocol_error_in_every_layer() {
    // The component checks only that it is an object, and passes it on.
    let standin = standin::start(Fault::Reply(b"ok [1]\n".to_vec()));
    let mut inst = instance(&[standin.addr]);
    let conn = connect(&mut inst, standin.addr, plain()).unwrap();
    let stats = inst
        .client
        .dflockd_client_connection()
        .connection()
        .call_stats(&mut inst.store, conn)
        .unwrap();
    assert!(matches!(stats, Err(Error::Protocol(_))), "{stats:?}");
    // An object the server would never send: the host's decoding says so.
    let torn = standin::start(Fault::Reply(b"ok {\"connections\":2}\n".to_vec()));
    let mut observer = host_tests::connect(torn.addr);
    let typed = observer.stats();
    assert!(
        matches!(&typed, Err(dflockd_host::Error::Protocol(why)) if why.contains("bad stats JSON")),
        "{typed:?}"
    );
}
