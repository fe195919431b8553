//! Generated bad input through the host's `Connection` and builders (the
//! bare WIT exports have theirs in `every_export.rs`): every call is a
//! typed `InvalidArgument`, no trap, and not one byte reaches the peer.
//! The peer is a plain listener that only counts what it receives (no
//! server is needed: nothing may be sent).

use std::cell::RefCell;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;

use dflockd_host::{Connection, Error};
use proptest::prelude::*;

/// The server's limits, as the component enforces them.
const MAX_LINE: usize = 256;
const MAX_SECONDS: u64 = 9_223_372_036;
const MAX_AUTH_TOKEN: usize = 64 * 1024;

/// Accepts connections and counts every byte they carry, until each closes.
fn byte_counter() -> (SocketAddr, JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let counter = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().expect("accept");
        let mut received = Vec::new();
        let _ = socket.read_to_end(&mut received);
        received.len()
    });
    (addr, counter)
}

/// Not one protocol word: empty, too long, or with whitespace or a control
/// character somewhere.
fn bad_word() -> impl Strategy<Value = String> {
    let breaker = prop::sample::select(vec![
        " ", "\n", "\r", "\t", "\0", "\u{7f}", "\u{85}", "\u{a0}", "\u{2028}", "\u{3000}",
    ]);
    prop_oneof![
        Just(String::new()),
        "[a-z0-9:]{257,400}",
        ("[a-z0-9]{0,20}", breaker, "[a-z0-9]{0,20}").prop_map(|(a, b, c)| format!("{a}{b}{c}")),
    ]
}

fn good_key() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9:_-]{1,40}"
}

fn too_many_seconds() -> impl Strategy<Value = u64> {
    prop_oneof![Just(MAX_SECONDS + 1), (MAX_SECONDS + 1)..=u64::MAX]
}

fn invalid<T: std::fmt::Debug>(what: &str, result: Result<T, Error>) -> Result<(), TestCaseError> {
    match result {
        Err(Error::InvalidArgument(_)) => Ok(()),
        other => Err(TestCaseError::fail(format!(
            "{what}: expected InvalidArgument, got {other:?}"
        ))),
    }
}

/// Every request of the connection resource with one bad argument.
fn every_call_refuses(
    conn: &mut Connection,
    key: &str,
    word: &str,
    seconds: u64,
) -> Result<(), TestCaseError> {
    invalid("lock: key", conn.lock(word, 0, None))?;
    invalid("lock: timeout", conn.lock(key, seconds, None))?;
    invalid("lock: lease", conn.lock(key, 0, Some(seconds)))?;
    invalid("lock: lease 0", conn.lock(key, 0, Some(0)))?;
    invalid(
        "unlock: key",
        conn.unlock(word, "0123456789abcdef0123456789abcdef"),
    )?;
    invalid("unlock: token", conn.unlock(key, word))?;
    invalid("renew: token", conn.renew(key, word, None))?;
    invalid("renew: lease", conn.renew(key, "t", Some(seconds)))?;
    invalid("enqueue: key", conn.enqueue(word, None))?;
    invalid("wait: key", conn.wait(word, 0))?;
    invalid("wait: timeout", conn.wait(key, seconds))?;
    invalid("sem-acquire: key", conn.sem_acquire(word, 0, 2, None))?;
    invalid("sem-acquire: limit 0", conn.sem_acquire(key, 0, 0, None))?;
    invalid(
        "sem-acquire: timeout",
        conn.sem_acquire(key, seconds, 2, None),
    )?;
    invalid("sem-release: token", conn.sem_release(key, word))?;
    invalid("sem-renew: key", conn.sem_renew(word, "t", None))?;
    invalid("sem-enqueue: limit 0", conn.sem_enqueue(key, 0, None))?;
    invalid("sem-wait: key", conn.sem_wait(word, 0))?;
    Ok(())
}

#[test]
fn generated_bad_arguments_are_refused_before_a_byte_is_sent() {
    let (addr, counter) = byte_counter();
    let conn = RefCell::new(host_tests::connect(addr));
    let cases = ProptestConfig {
        cases: 128,
        ..ProptestConfig::default()
    };
    proptest!(cases, |(key in good_key(), word in bad_word(), seconds in too_many_seconds())| {
        every_call_refuses(&mut conn.borrow_mut(), &key, &word, seconds)?;
    });
    drop(conn);
    assert_eq!(
        counter.join().expect("counter"),
        0,
        "bytes reached the peer"
    );
}

#[test]
fn bad_builder_options_are_refused_without_connecting() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let addr = listener.local_addr().expect("addr");
    let words = [
        String::new(),
        "a b".into(),
        "a\nb".into(),
        "k".repeat(MAX_LINE + 1),
    ];
    for word in &words {
        let built = host_tests::lock_on(addr, word).build();
        assert!(
            matches!(built, Err(Error::InvalidArgument(_))),
            "key {word:?}: {:?}",
            built.err()
        );
    }
    let auth_tokens = [
        String::new(),
        "a b".into(),
        "a\nb".into(),
        "k".repeat(MAX_AUTH_TOKEN + 1),
    ];
    for word in &auth_tokens {
        let built = host_tests::lock_on(addr, "k")
            .auth_token(word.clone())
            .build();
        assert!(
            matches!(built, Err(Error::InvalidArgument(_))),
            "an auth token of {} bytes: {:?}",
            word.len(),
            built.err().map(|_| "an error that is not InvalidArgument")
        );
    }
    let lease = host_tests::lock_on(addr, "k")
        .lease_ttl_s(MAX_SECONDS + 1)
        .build();
    assert!(matches!(lease, Err(Error::InvalidArgument(_))));
    let limit = host_tests::semaphore_on(addr, "k", 0).build();
    assert!(matches!(limit, Err(Error::InvalidArgument(_))));
    for ratio in [0.0, 1.0, -0.5, f64::NAN, f64::INFINITY] {
        let built = host_tests::lock_on(addr, "k").renew_ratio(ratio).build();
        assert!(
            matches!(built, Err(Error::InvalidArgument(_))),
            "renew ratio {ratio}"
        );
    }
    assert!(
        matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "a builder connected"
    );
}
