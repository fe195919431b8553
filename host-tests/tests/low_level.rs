//! The low-level `connection` through the component against the real
//! a dialect-v1 server: every command it speaks (`l r n e w sl sr sn se sw
//! stats`; `auth` is in `auth.rs`; `ping`, which differs by dialect, in `dialects.rs`).

use dflockd_host::{Enqueued, Error};
use host_tests::connect;
use host_tests::server::dflockd;

fn is_token(token: &str) -> bool {
    token.len() == 32
        && token
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[test]
fn every_lock_command() {
    let server = dflockd(&[]);
    let mut a = connect(server.addr);
    let mut b = connect(server.addr);
    let grant = a.lock("ll", 1, Some(30)).unwrap().expect("granted");
    assert!(is_token(&grant.token) && grant.lease_s == 30);
    assert_eq!(b.lock("ll", 0, None), Ok(None), "try-lock on a held key");
    assert_eq!(a.renew("ll", &grant.token, Some(20)), Ok(20));
    assert_eq!(
        a.renew("ll", &grant.token, None),
        Ok(33),
        "the server's default lease"
    );
    assert!(matches!(
        b.unlock("ll", &"0".repeat(32)),
        Err(Error::Server(_))
    ));
    assert!(matches!(b.enqueue("ll", Some(5)), Ok(Enqueued::Queued)));
    assert_eq!(a.unlock("ll", &grant.token), Ok(()));
    let next = b.wait("ll", 5).unwrap().expect("handed over in FIFO order");
    assert_eq!(next.lease_s, 5);
    assert!(
        matches!(a.renew("ll", &grant.token, None), Err(Error::Server(_))),
        "old token"
    );
    assert_eq!(b.unlock("ll", &next.token), Ok(()));
    let Ok(Enqueued::Acquired(fast)) = a.enqueue("ll", None) else {
        panic!("a free key is granted at enqueue")
    };
    assert_eq!(
        a.wait("ll", 1).map(|g| g.map(|g| g.token)),
        Ok(Some(fast.token.clone()))
    );
    assert_eq!(a.unlock("ll", &fast.token), Ok(()));
}

#[test]
fn every_semaphore_command() {
    let server = dflockd(&[]);
    let mut a = connect(server.addr);
    let mut b = connect(server.addr);
    let mut c = connect(server.addr);
    let one = a
        .sem_acquire("ss", 1, 2, Some(30))
        .unwrap()
        .expect("slot 1");
    let two = b.sem_acquire("ss", 1, 2, None).unwrap().expect("slot 2");
    assert_ne!(one.token, two.token);
    assert_eq!(
        c.sem_acquire("ss", 0, 2, None),
        Ok(None),
        "full: try-lock times out"
    );
    assert_eq!(c.sem_acquire("ss", 0, 3, None), Err(Error::LimitMismatch));
    assert_eq!(a.sem_renew("ss", &one.token, Some(10)), Ok(10));
    assert!(matches!(c.sem_enqueue("ss", 2, None), Ok(Enqueued::Queued)));
    assert_eq!(b.sem_release("ss", &two.token), Ok(()));
    let three = c.sem_wait("ss", 5).unwrap().expect("the freed slot");
    assert!(
        matches!(b.sem_release("ss", &two.token), Err(Error::Server(_))),
        "released"
    );
    assert!(matches!(
        b.sem_renew("ss", &two.token, None),
        Err(Error::Server(_))
    ));
    assert_eq!(a.sem_release("ss", &one.token), Ok(()));
    assert_eq!(c.sem_release("ss", &three.token), Ok(()));
    let Ok(Enqueued::Acquired(fast)) = b.sem_enqueue("ss", 2, Some(7)) else {
        panic!("a free slot is granted at enqueue")
    };
    assert_eq!(fast.lease_s, 7);
    assert_eq!(b.sem_wait("ss", 1).map(|g| g.is_some()), Ok(true));
    assert_eq!(b.stats().unwrap().semaphores[0].holders, 1);
}
