//! The component's API in wasmtime without a dflockd server: validation,
//! routing, fencing, the driver, the sandbox and transport errors.

use std::io::ErrorKind;
use std::net::TcpListener;

use host_tests::{closed_port, instance, options, server_of, Error, Instance, Setting, TlsSetting};

const TOKEN: &str = "000000000000002a0123456789abcdef";

fn quiet_listener() -> TcpListener {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    listener
}

fn assert_nobody_connected(listener: &TcpListener) {
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("expected no connection, got {other:?}"),
    }
}

fn open_lock(
    inst: &mut Instance,
    key: &str,
    opts: &[Setting],
) -> Result<wasmtime::component::ResourceAny, Error> {
    inst.client
        .dflockd_client_locks()
        .lock()
        .call_open(&mut inst.store, key, opts)
        .unwrap()
}

#[test]
fn bad_keys_and_options_are_invalid_arguments_and_nothing_connects() {
    let listener = quiet_listener();
    let addr = listener.local_addr().unwrap();
    let mut inst = instance(&[addr]);
    let long = "k".repeat(257);
    for key in ["", "a b", "a\nl\nk\n10", "a\tb", "a\rb", long.as_str()] {
        let result = open_lock(&mut inst, key, &options(addr));
        assert!(matches!(result, Err(Error::InvalidArgument(_))), "{key:?}");
    }
    let tweaks = [
        Setting::RenewRatio(1.0),
        Setting::RenewRatio(0.0),
        Setting::LeaseTtlS(0),
        Setting::LeaseTtlS(9_223_372_037),
        Setting::AcquireTimeoutS(u64::MAX),
        Setting::ServerIndex(1),
        Setting::ConnectTimeoutMs(0),
        Setting::AuthToken("s3cret with space".into()),
    ];
    let bad = tweaks.map(|tweak| {
        let mut opts = options(addr);
        opts.push(tweak);
        opts
    });
    for opts in &bad {
        match open_lock(&mut inst, "k", opts) {
            Err(Error::InvalidArgument(msg)) => assert!(!msg.contains("s3cret"), "{msg}"),
            other => panic!("{opts:?}: {other:?}"),
        }
    }
    // A connection takes only the connect settings.
    let conns = inst.client.dflockd_client_connection().connection();
    for lock_only in [
        Setting::AcquireTimeoutS(1),
        Setting::LeaseTtlS(5),
        Setting::Servers(vec![server_of(addr)]),
    ] {
        let opened = conns
            .call_create(&mut inst.store, &server_of(addr), &[lock_only])
            .unwrap();
        assert!(
            matches!(opened, Err(Error::InvalidArgument(_))),
            "{opened:?}"
        );
    }
    let semaphores = inst.client.dflockd_client_locks().semaphore();
    let zero = semaphores
        .call_open(&mut inst.store, "k", 0, &options(addr))
        .unwrap();
    assert!(matches!(zero, Err(Error::InvalidArgument(_))));

    // A valid lock connects lazily: opening it sends nothing either.
    let lock = open_lock(&mut inst, "k", &options(addr)).unwrap();
    assert_nobody_connected(&listener);
    let locks = inst.client.dflockd_client_locks().lock();
    assert!(!locks.call_is_held(&mut inst.store, lock).unwrap());
    assert_eq!(locks.call_grant(&mut inst.store, lock).unwrap(), None);
    assert!(matches!(
        locks.call_wait(&mut inst.store, lock, None).unwrap(),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        locks.call_renew(&mut inst.store, lock).unwrap(),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(
        locks.call_release(&mut inst.store, lock).unwrap(),
        Ok(false)
    );
    lock.resource_drop(&mut inst.store).unwrap();
    assert_nobody_connected(&listener);
}

#[test]
fn sharding_matches_the_crc32_formula_of_the_other_clients() {
    let mut inst = instance(&[]);
    let sharding = inst.client.dflockd_client_sharding();
    for key in ["user:42:profile", "foo", "a", "ключ", "row:42"] {
        for n in [1u32, 2, 3, 7] {
            let want = crc32fast::hash(key.as_bytes()) % n;
            assert_eq!(
                sharding.call_shard_index(&mut inst.store, key, n).unwrap(),
                Ok(want),
                "{key} {n}"
            );
        }
    }
    assert_eq!(
        sharding
            .call_shard_index(&mut inst.store, "123456789", 1000)
            .unwrap(),
        Ok(0xCBF4_3926 % 1000)
    );
    assert!(matches!(
        sharding.call_shard_index(&mut inst.store, "k", 0).unwrap(),
        Err(Error::InvalidArgument(_))
    ));

    // A lock routes its key with the same formula, or by an explicit index.
    let servers: Vec<_> = (0..3).map(|_| closed_port()).collect();
    let mut opts = vec![Setting::Servers(
        servers.iter().map(|a| server_of(*a)).collect(),
    )];
    let locks = inst.client.dflockd_client_locks().lock();
    for key in ["user:42:profile", "foo", "bar"] {
        let lock = locks
            .call_open(&mut inst.store, key, &opts)
            .unwrap()
            .unwrap();
        let want = crc32fast::hash(key.as_bytes()) % 3;
        assert_eq!(
            locks.call_server_index(&mut inst.store, lock).unwrap(),
            want,
            "{key}"
        );
        lock.resource_drop(&mut inst.store).unwrap();
    }
    opts.push(Setting::ServerIndex(2));
    let pinned = opts;
    let pinned = locks
        .call_open(&mut inst.store, "foo", &pinned)
        .unwrap()
        .unwrap();
    assert_eq!(locks.call_server_index(&mut inst.store, pinned).unwrap(), 2);
}

#[test]
fn fencing_through_the_component() {
    let mut inst = instance(&[]);
    let fencing = inst.client.dflockd_client_fencing();
    assert_eq!(
        fencing
            .call_fence_from_token(&mut inst.store, TOKEN)
            .unwrap(),
        Ok(42)
    );
    for bad in [
        "",
        "xyz",
        "000000000000002A0123456789ABCDEF",
        "000000000000002a0123456789abcdef00",
    ] {
        assert!(matches!(
            fencing.call_fence_from_token(&mut inst.store, bad).unwrap(),
            Err(Error::InvalidArgument(_))
        ));
    }
    let guards = fencing.fence_guard();
    let guard = guards.call_constructor(&mut inst.store).unwrap();
    assert!(guards
        .call_check(&mut inst.store, guard, "row:42", 7)
        .unwrap()
        .is_ok());
    let stale = guards
        .call_check(&mut inst.store, guard, "row:42", 7)
        .unwrap()
        .unwrap_err();
    assert_eq!((stale.fence, stale.highest), (7, 7));
    let stale = guards
        .call_check(&mut inst.store, guard, "row:42", 3)
        .unwrap()
        .unwrap_err();
    assert_eq!((stale.fence, stale.highest), (3, 7));
    assert!(guards
        .call_check(&mut inst.store, guard, "row:43", 1)
        .unwrap()
        .is_ok());
    assert!(guards
        .call_check(&mut inst.store, guard, "row:42", 8)
        .unwrap()
        .is_ok());
    assert_eq!(
        guards
            .call_highest(&mut inst.store, guard, "row:42")
            .unwrap(),
        Some(8)
    );
    assert_eq!(
        guards.call_highest(&mut inst.store, guard, "nope").unwrap(),
        None
    );
    guard.resource_drop(&mut inst.store).unwrap();
}

#[test]
fn bad_tls_material_is_an_invalid_argument_and_nothing_connects() {
    let listener = quiet_listener();
    let addr = listener.local_addr().unwrap();
    let mut inst = instance(&[addr]);
    let pem = |text: &str| TlsSetting::CaPem(text.to_string());
    let bad = [
        pem("not a certificate"),
        pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        TlsSetting::ClientCert(host_tests::ClientCert {
            cert_chain_pem: "no chain".into(),
            private_key_pem: "PRIVATE-KEY-TEXT".into(),
        }),
    ];
    for tls in bad {
        let connect = vec![Setting::Tls(vec![tls])];
        let mut opts = options(addr);
        opts.extend(connect.iter().cloned());
        match open_lock(&mut inst, "k", &opts) {
            Err(Error::InvalidArgument(why)) => assert!(!why.contains("PRIVATE-KEY"), "{why}"),
            other => panic!("{other:?}"),
        }
        let conns = inst.client.dflockd_client_connection().connection();
        let opened = conns
            .call_create(&mut inst.store, &server_of(addr), &connect)
            .unwrap();
        assert!(
            matches!(opened, Err(Error::InvalidArgument(_))),
            "{opened:?}"
        );
    }
    assert_nobody_connected(&listener);
}

#[test]
fn the_driver_is_idle_while_nothing_is_held() {
    let mut inst = instance(&[]);
    let driver = inst.client.dflockd_client_driver();
    assert_eq!(driver.call_next_deadline(&mut inst.store).unwrap(), None);
    assert!(driver.call_drive(&mut inst.store).unwrap().is_empty());
    let wakeup = driver.call_next_wakeup(&mut inst.store).unwrap();
    assert!(
        !inst.pollable_ready(&wakeup).unwrap(),
        "never ready while nothing is held"
    );
    inst.drop_pollable(wakeup).unwrap();
}

#[test]
fn a_refused_connection_is_a_connection_error() {
    let addr = closed_port();
    let mut inst = instance(&[addr]);
    let lock = open_lock(&mut inst, "k", &options(addr)).unwrap();
    let locks = inst.client.dflockd_client_locks().lock();
    assert!(matches!(
        locks.call_acquire(&mut inst.store, lock).unwrap(),
        Err(Error::Connection(_))
    ));
    assert!(!locks.call_is_held(&mut inst.store, lock).unwrap());
    // The instance is still usable: no trap.
    assert!(matches!(
        locks.call_acquire(&mut inst.store, lock).unwrap(),
        Err(Error::Connection(_))
    ));
}

#[test]
fn the_sandbox_refuses_addresses_outside_the_server_list() {
    let allowed = closed_port();
    let outside = quiet_listener();
    let mut inst = instance(&[allowed]);
    let opts = [Setting::ConnectTimeoutMs(2_000)];
    let result = inst
        .open_connection(&server_of(outside.local_addr().unwrap()), &opts)
        .unwrap();
    assert!(matches!(result, Err(Error::Connection(_))), "{result:?}");
    assert_nobody_connected(&outside);
}
