//! Shared-secret authentication against a dialect-v1 server started
//! with `--auth-token`: the right token works for locks, semaphores and the
//! low-level connection; a wrong or missing one is `Error::Auth` within a
//! bounded time; the token's text appears in no rendered error and in no
//! log line of the host (every `tracing` event is captured here).

use std::time::Duration;

use dflockd_host::Error;
use host_tests::server::dflockd;
use host_tests::{lock_on, runtime, semaphore_on, within};

const TOKEN: &str = "s3cret-Auth-T0ken-4f1c";
const WRONG: &str = "wrong-Auth-T0ken-9e2b";
/// Far above the documented bound for a refused token (the connect timeout).
const HANG: Duration = Duration::from_secs(30);

#[test]
fn right_token_works_wrong_and_missing_are_auth_and_no_token_leaks() {
    let logs = host_tests::logs::capture(tracing::Level::TRACE);
    let server = dflockd(&["--auth-token", TOKEN]);
    let addr = server.addr;
    let mut errors = Vec::new();

    let lock = lock_on(addr, "auth").auth_token(TOKEN).build().unwrap();
    let guard = lock
        .acquire()
        .unwrap()
        .expect("granted with the right token");
    assert_eq!(guard.release(), Ok(true));
    let sem = semaphore_on(addr, "auth-sem", 2)
        .auth_token(TOKEN)
        .build()
        .unwrap();
    assert!(sem.acquire().unwrap().is_some());
    let mut conn = runtime()
        .connect(&addr.ip().to_string(), addr.port(), Some(TOKEN))
        .unwrap();
    assert!(conn.stats().unwrap().connections >= 2);

    for token in [Some(WRONG), None] {
        let outcome = within(HANG, move || {
            let mut b = lock_on(addr, "auth").acquire_timeout_s(1);
            if let Some(t) = token {
                b = b.auth_token(t);
            }
            b.build().unwrap().acquire().map(|g| g.is_some())
        });
        assert_eq!(outcome, Err(Error::Auth), "token {token:?}");
        errors.push(outcome.unwrap_err());
        let outcome = within(HANG, move || {
            runtime()
                .connect(&addr.ip().to_string(), addr.port(), token)
                .and_then(|mut c| c.stats())
                .map(|s| s.connections)
        });
        assert_eq!(outcome, Err(Error::Auth), "token {token:?}");
        errors.push(outcome.unwrap_err());
    }
    // A token that cannot be sent is refused before any byte goes out.
    let bad = lock_on(addr, "auth")
        .auth_token(format!("{TOKEN} two"))
        .build();
    match bad {
        Err(e @ Error::InvalidArgument(_)) => errors.push(e),
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("a token with a space was accepted"),
    }

    for e in &errors {
        for text in [e.to_string(), format!("{e:?}")] {
            assert!(!text.contains(TOKEN) && !text.contains(WRONG), "{text}");
            assert!(
                !text.contains("s3cret") && !text.contains("wrong-Auth"),
                "{text}"
            );
        }
    }
    drop((conn, sem, lock));
    let logged = logs.text();
    assert!(
        !logged.is_empty(),
        "the host logged nothing: the capture is broken"
    );
    for line in logged.lines() {
        assert!(
            !line.contains("s3cret") && !line.contains("wrong-Auth"),
            "{line}"
        );
    }
}
