//! TLS inside the component (rustls), against a dialect-v1 server
//! serving TLS with certificates made here by rcgen: every failure is a
//! typed error naming its reason, within the connect timeout, and
//! everything works over TLS: locks, renewal, two-phase, semaphores, auth,
//! stats, the low-level connection, sharding over three servers.

use std::time::Duration;

use dflockd_host::{Enqueued, Error, Tls};
use host_tests::certs::Pki;
use host_tests::server::{dflockd, dflockd_tls};
use host_tests::{lock_on, runtime, semaphore_on, within};

/// Far above the connect timeout used below (3 s): a hang guard.
const HANG: Duration = Duration::from_secs(30);

fn tls_error(outcome: Result<bool, Error>) -> String {
    match outcome {
        Err(Error::Tls(why)) => why,
        other => panic!("expected a tls error, got {other:?}"),
    }
}

/// An acquire through a lock built with `tls`, on another thread, bounded.
fn acquire(addr: std::net::SocketAddr, tls: Tls) -> Result<bool, Error> {
    within(HANG, move || {
        lock_on(addr, "tls")
            .tls(tls)
            .connect_timeout_ms(3_000)
            .acquire_timeout_s(1)
            .build()?
            .acquire()
            .map(|g| g.is_some())
    })
}

#[test]
fn a_trusted_server_serves_locks_renewal_two_phase_and_semaphores() {
    let pki = Pki::new("ca");
    let server = dflockd_tls(&pki.localhost(), &[]);
    let tls = Tls::ca_pem(pki.ca_pem.clone());
    let holder = lock_on(server.addr, "tls:lock")
        .tls(tls.clone())
        .lease_ttl_s(2)
        .build()
        .unwrap();
    let guard = holder.acquire().unwrap().expect("granted over TLS");
    assert_eq!(guard.token().map(|t| t.len()), Some(32));
    // Held through 3 lease lengths by the runtime's driver thread, over TLS.
    let waiter = lock_on(server.addr, "tls:lock")
        .tls(tls.clone())
        .acquire_timeout_s(6)
        .build()
        .unwrap();
    assert!(
        waiter.acquire().unwrap().is_none(),
        "held for 6 s = 3 leases"
    );
    assert!(guard.is_held());
    assert_eq!(waiter.enqueue(), Ok(Enqueued::Queued), "two-phase");
    assert_eq!(guard.release(), Ok(true));
    let next = waiter.wait(Some(5)).unwrap().expect("handed over");
    assert_eq!(next.release(), Ok(true));

    let slots: Vec<_> = (0..3)
        .map(|_| {
            semaphore_on(server.addr, "tls:sem", 2)
                .tls(tls.clone())
                .build()
                .unwrap()
        })
        .collect();
    let queued: Vec<_> = slots
        .iter()
        .map(|s| s.enqueue().unwrap().is_queued())
        .collect();
    assert_eq!(queued, [false, false, true]);
    assert!(slots[0].renew().unwrap() > 0);

    let mut conn = runtime()
        .connect_with("127.0.0.1", server.addr.port(), None, Some(&tls))
        .unwrap();
    let stats = conn.stats().unwrap();
    let sem = stats
        .semaphores
        .iter()
        .find(|s| s.key == "tls:sem")
        .unwrap();
    assert_eq!((sem.holders, sem.waiters), (2, 1));
    let grant = conn.lock("tls:low", 0, Some(10)).unwrap().expect("granted");
    assert_eq!(conn.renew("tls:low", &grant.token, None), Ok(33));
    assert_eq!(conn.unlock("tls:low", &grant.token), Ok(()));
}

#[test]
fn auth_over_tls() {
    let pki = Pki::new("ca");
    let server = dflockd_tls(&pki.localhost(), &["--auth-token", "tls-secret"]);
    let tls = Tls::ca_pem(pki.ca_pem.clone());
    let lock = lock_on(server.addr, "tls:auth")
        .tls(tls.clone())
        .auth_token("tls-secret")
        .build()
        .unwrap();
    assert_eq!(lock.acquire().unwrap().map(|g| g.release()), Some(Ok(true)));
    let wrong = lock_on(server.addr, "tls:auth")
        .tls(tls)
        .auth_token("not-the-secret")
        .build()
        .unwrap();
    assert_eq!(wrong.acquire().err(), Some(Error::Auth));
}

#[test]
fn sharding_over_three_tls_servers() {
    let pki = Pki::new("ca");
    let cert = pki.localhost();
    let servers: Vec<_> = (0..3).map(|_| dflockd_tls(&cert, &[])).collect();
    let list: Vec<(String, u16)> = servers
        .iter()
        .map(|s| ("127.0.0.1".to_string(), s.addr.port()))
        .collect();
    let mut seen = [false; 3];
    for key in ["user:42:profile", "orders", "g", "h"] {
        let lock = runtime()
            .lock(key)
            .servers(list.clone())
            .tls(Tls::ca_pem(pki.ca_pem.clone()))
            .build()
            .unwrap();
        let index = lock.server_index();
        assert_eq!(index, crc32fast::hash(key.as_bytes()) % 3, "{key}");
        seen[index as usize] = true;
        assert_eq!(lock.acquire().unwrap().map(|g| g.release()), Some(Ok(true)));
        let mut conn = runtime()
            .connect_with(
                "127.0.0.1",
                list[index as usize].1,
                None,
                Some(&Tls::ca_pem(pki.ca_pem.clone())),
            )
            .unwrap();
        let stats = conn.stats().unwrap();
        assert!(
            stats.idle_locks.iter().any(|l| l.key == key),
            "{key} went to server {index}"
        );
    }
    assert_eq!(seen, [true; 3], "every server took a key");
}

#[test]
fn an_unknown_ca_a_wrong_name_and_an_expired_certificate_are_named() {
    let pki = Pki::new("ca");
    let stranger = Pki::new("stranger");
    let server = dflockd_tls(&pki.localhost(), &[]);
    let why = tls_error(acquire(server.addr, Tls::ca_pem(stranger.ca_pem.clone())));
    assert!(why.contains("unknown issuer"), "{why}");
    let why = tls_error(acquire(
        server.addr,
        Tls::ca_pem(pki.ca_pem.clone()).server_name("db.example"),
    ));
    assert!(why.contains("not valid for the name"), "{why}");
    let why = tls_error(acquire(server.addr, Tls::mozilla_roots()));
    assert!(
        why.contains("unknown issuer"),
        "a private CA is not a Mozilla root: {why}"
    );

    let expired = dflockd_tls(&pki.server_cert("old", &["127.0.0.1"], (2001, 2002)), &[]);
    let why = tls_error(acquire(expired.addr, Tls::ca_pem(pki.ca_pem.clone())));
    assert!(why.contains("expired"), "{why}");
}

#[test]
fn an_ip_literal_is_checked_against_the_certificates_ip_addresses() {
    let pki = Pki::new("ca");
    let dns_only = dflockd_tls(&pki.server_cert("dns", &["localhost"], (2020, 2090)), &[]);
    let why = tls_error(acquire(dns_only.addr, Tls::ca_pem(pki.ca_pem.clone())));
    assert!(
        why.contains("not valid for the name"),
        "127.0.0.1 is no IP SAN: {why}"
    );
    let named = Tls::ca_pem(pki.ca_pem.clone()).server_name("localhost");
    assert_eq!(
        acquire(dns_only.addr, named),
        Ok(true),
        "the override names the DNS SAN"
    );
}

#[test]
fn tls_to_a_plain_server_and_plain_to_a_tls_server_are_told_apart() {
    let pki = Pki::new("ca");
    let plain = dflockd(&[]);
    let why = tls_error(acquire(plain.addr, Tls::ca_pem(pki.ca_pem.clone())));
    assert!(why.contains("plain"), "{why}");

    let tls_server = dflockd_tls(&pki.localhost(), &[]);
    let addr = tls_server.addr;
    let outcome = within(HANG, move || {
        lock_on(addr, "tls")
            .connect_timeout_ms(3_000)
            .acquire_timeout_s(1)
            .build()?
            .acquire()
            .map(|g| g.is_some())
    });
    // The server closes without a word; the client's probe finds it speaks TLS.
    assert_eq!(
        tls_error(outcome),
        "the server speaks TLS: set tls in the connect options"
    );
}

#[test]
fn a_bad_ca_pem_is_refused_before_any_connection() {
    for pem in [
        "",
        "not a certificate",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ] {
        let built = runtime()
            .lock("k")
            .server("127.0.0.1", 9)
            .tls(Tls::ca_pem(pem))
            .build();
        assert!(matches!(built, Err(Error::InvalidArgument(_))), "{pem:?}");
    }
}

#[test]
fn a_client_certificate_passes_a_mutual_tls_proxy_in_front_of_dflockd() {
    let pki = Pki::new("ca");
    let server = dflockd(&[]);
    let proxy = host_tests::mtls::start(&pki.localhost(), &pki.ca_pem, server.addr);
    let trust = Tls::ca_pem(pki.ca_pem.clone());
    let why = tls_error(acquire(proxy.addr, trust.clone()));
    assert!(
        why.contains("refused the TLS session: alert CertificateRequired"),
        "{why}"
    );
    let (chain, key) = pki.client_cert("a client");
    assert_eq!(
        acquire(
            proxy.addr,
            trust.clone().client_cert(chain.clone(), key.clone())
        ),
        Ok(true)
    );
    let stranger = Pki::new("stranger");
    let (wrong_chain, wrong_key) = stranger.client_cert("an intruder");
    let why = tls_error(acquire(
        proxy.addr,
        trust.client_cert(wrong_chain, wrong_key),
    ));
    assert!(
        why.contains("refused the TLS session: alert UnknownCA"),
        "{why}"
    );
}

#[test]
fn renewals_go_on_while_a_tls_handshake_waits() {
    use host_tests::standin::{self, Fault};
    use host_tests::{instance, options, server_of, Setting, TlsSetting};
    let pki = Pki::new("ca");
    let server = dflockd(&[]);
    let silent = standin::start(Fault::Silent);
    let mut inst = instance(&[server.addr, silent.addr]);
    let locks = inst.client.dflockd_client_locks().lock();
    let mut opts = options(server.addr);
    opts.push(Setting::LeaseTtlS(2));
    let held = locks
        .call_open(&mut inst.store, "hs", &opts)
        .unwrap()
        .unwrap();
    assert!(locks
        .call_acquire(&mut inst.store, held)
        .unwrap()
        .unwrap()
        .is_some());
    // A TLS connect to a peer that never answers keeps this instance busy
    // for 6 s = 3 lease lengths; its reactor must renew "hs" meanwhile.
    let connect = [
        Setting::ConnectTimeoutMs(6_000),
        Setting::Tls(vec![TlsSetting::CaPem(pki.ca_pem.clone())]),
    ];
    let outcome = inst
        .open_connection(&server_of(silent.addr), &connect)
        .unwrap();
    assert!(
        matches!(outcome, Err(host_tests::Error::Tls(_))),
        "{outcome:?}"
    );
    let locks = inst.client.dflockd_client_locks().lock();
    assert!(locks.call_is_held(&mut inst.store, held).unwrap());
    let rival = lock_on(server.addr, "hs")
        .acquire_timeout_s(0)
        .build()
        .unwrap();
    assert!(
        rival.acquire().unwrap().is_none(),
        "still held after 3 lease lengths"
    );
    assert_eq!(locks.call_release(&mut inst.store, held).unwrap(), Ok(true));
}
