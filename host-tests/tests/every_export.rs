//! Generated input through every export of the component, called on the
//! bare WIT (the host's wrappers check some of it first, so they would hide
//! a gap): arbitrary strings, and numbers at and past every bound. Each call
//! succeeds exactly when a model of the documented rules, written here
//! independently of the core, says it should, and is otherwise a typed
//! `invalid-argument`; nothing traps, no secret is echoed, and nothing is
//! sent: the listener every setting points at accepts no connection, the
//! one open low-level connection receives no byte, and the driver counts
//! no connect of a lock in the end.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpListener};
use std::sync::OnceLock;

use host_tests::raw::State;
use host_tests::{
    instance, server_of, ClientCert, Command, Error, Instance, Server, Setting, TlsSetting,
};
use proptest::prelude::*;
use wasmtime::component::ResourceAny;
use wasmtime::Store;

const MAX_LINE: usize = 256;
const MAX_AUTH_TOKEN: usize = 64 * 1024;
const MAX_SECONDS: u64 = 9_223_372_036;

// ---- the model -------------------------------------------------------------

/// One protocol word: non-empty, at most `cap` bytes, no whitespace or control character.
fn is_word(s: &str, cap: usize) -> bool {
    !s.is_empty() && s.len() <= cap && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn server_ok(s: &Server) -> bool {
    is_word(&s.host, MAX_LINE) && s.port > 0
}

fn lease_ok(lease: Option<u64>) -> bool {
    lease.is_none_or(|l| (1..=MAX_SECONDS).contains(&l))
}

/// The TLS material this test knows to be good; anything else it generates is not.
struct Good {
    ca_pem: String,
    client: ClientCert,
}

fn good() -> &'static Good {
    static GOOD: OnceLock<Good> = OnceLock::new();
    GOOD.get_or_init(|| {
        let pki = host_tests::certs::Pki::new("every-export");
        let (cert_chain_pem, private_key_pem) = pki.client_cert("client");
        Good {
            ca_pem: pki.ca_pem.clone(),
            client: ClientCert {
                cert_chain_pem,
                private_key_pem,
            },
        }
    })
}

const GOOD_NAMES: [&str; 4] = ["localhost", "dflockd.example", "127.0.0.1", "::1"];
const BAD_NAMES: [&str; 5] = ["", "a b", "a..b", "dflockd.example\n", "[::1]"];

fn tls_item_ok(item: &TlsSetting) -> bool {
    match item {
        TlsSetting::CaPem(pem) => *pem == good().ca_pem,
        TlsSetting::ServerName(name) => GOOD_NAMES.contains(&name.as_str()),
        TlsSetting::ClientCert(cert) => *cert == good().client,
    }
}

/// Whether a settings list is valid for a lock (`connection == false`) or a
/// connection. Later entries of a kind win, as documented, so only the
/// last of each kind is checked; a connection refuses any lock setting.
fn settings_ok(settings: &[Setting], connection: bool) -> bool {
    let last: HashMap<_, _> = settings
        .iter()
        .map(|s| (std::mem::discriminant(s), s))
        .collect();
    let servers = last.values().find_map(|s| match s {
        Setting::Servers(list) => Some(list.len().max(1)),
        _ => None,
    });
    last.values().all(|setting| match setting {
        Setting::ConnectTimeoutMs(ms) => *ms > 0,
        Setting::AuthToken(token) => is_word(token, MAX_AUTH_TOKEN),
        Setting::Tls(items) => {
            let last: HashMap<_, _> = items
                .iter()
                .map(|i| (std::mem::discriminant(i), i))
                .collect();
            last.values().all(|item| tls_item_ok(item))
        }
        _ if connection => false,
        Setting::Servers(list) => list.iter().all(server_ok),
        Setting::AcquireTimeoutS(s) => *s <= MAX_SECONDS,
        Setting::LeaseTtlS(s) => lease_ok(Some(*s)),
        Setting::RenewRatio(r) => *r > 0.0 && *r < 1.0,
        Setting::ServerIndex(i) => (*i as usize) < servers.unwrap_or(1),
    })
}

// ---- the generators --------------------------------------------------------

/// A string that is often not a protocol word: arbitrary Unicode, a word
/// with a breaker inside, empty, or one byte past a cap.
fn string(cap: usize) -> impl Strategy<Value = String> {
    let breaker = prop::sample::select(vec![
        " ", "\n", "\r", "\t", "\0", "\u{7f}", "\u{85}", "\u{a0}", "\u{2028}", "\u{3000}",
    ]);
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9:_.-]{1,40}",
        ("[a-z0-9]{0,20}", breaker, "[a-z0-9]{0,20}").prop_map(|(a, b, c)| format!("{a}{b}{c}")),
        Just(String::new()),
        Just("k".repeat(cap)),
        Just("k".repeat(cap + 1)),
    ]
}

/// Seconds at and past the server's bound, and either side of zero.
fn seconds() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(MAX_SECONDS),
        Just(MAX_SECONDS + 1),
        Just(u64::MAX),
        any::<u64>(),
        0..=MAX_SECONDS,
    ]
}

fn lease() -> impl Strategy<Value = Option<u64>> {
    prop::option::of(seconds())
}

fn limit() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0), Just(1), Just(u32::MAX), any::<u32>()]
}

fn server() -> impl Strategy<Value = Server> {
    (string(MAX_LINE), prop_oneof![Just(0u16), any::<u16>()])
        .prop_map(|(host, port)| Server { host, port })
}

fn tls_item() -> impl Strategy<Value = TlsSetting> {
    let names = GOOD_NAMES.iter().chain(&BAD_NAMES).map(|s| s.to_string());
    prop_oneof![
        Just(TlsSetting::CaPem(good().ca_pem.clone())),
        string(64).prop_map(TlsSetting::CaPem),
        prop::sample::select(names.collect::<Vec<_>>()).prop_map(TlsSetting::ServerName),
        Just(TlsSetting::ClientCert(good().client.clone())),
        (string(64), Just(good().client.private_key_pem.clone())).prop_map(|(chain, key)| {
            TlsSetting::ClientCert(ClientCert {
                cert_chain_pem: chain,
                private_key_pem: key,
            })
        }),
    ]
}

fn setting() -> impl Strategy<Value = Setting> {
    prop_oneof![
        prop::collection::vec(server(), 0..4).prop_map(Setting::Servers),
        prop_oneof![Just(0u64), Just(1), any::<u64>()].prop_map(Setting::ConnectTimeoutMs),
        string(MAX_AUTH_TOKEN).prop_map(Setting::AuthToken),
        prop::collection::vec(tls_item(), 0..3).prop_map(Setting::Tls),
        seconds().prop_map(Setting::AcquireTimeoutS),
        seconds().prop_map(Setting::LeaseTtlS),
        prop_oneof![
            Just(0.0),
            Just(1.0),
            Just(f64::MIN_POSITIVE),
            Just(f64::NAN),
            Just(f64::INFINITY),
            any::<f64>(),
            0.0..1.0f64,
        ]
        .prop_map(Setting::RenewRatio),
        prop_oneof![Just(0u32), Just(1), Just(3), any::<u32>()].prop_map(Setting::ServerIndex),
    ]
}

fn settings() -> impl Strategy<Value = Vec<Setting>> {
    prop::collection::vec(setting(), 0..4)
}

// ---- the checks --------------------------------------------------------------

/// `result` is `Ok` exactly when the model says so, else `invalid-argument`
/// that repeats no secret of the input.
fn as_modelled<T: std::fmt::Debug>(
    what: &str,
    ok: bool,
    result: Result<T, Error>,
    secrets: &[&str],
) -> Result<Option<T>, TestCaseError> {
    match result {
        Ok(value) if ok => Ok(Some(value)),
        Err(Error::InvalidArgument(msg)) if !ok => {
            for secret in secrets.iter().filter(|s| s.len() >= 8) {
                prop_assert!(
                    !msg.contains(secret),
                    "{what}: the message repeats a secret"
                );
            }
            Ok(None)
        }
        other => Err(TestCaseError::fail(format!(
            "{what}: the model says {}, the component gave {:?}",
            if ok { "ok" } else { "invalid-argument" },
            other.map(|_| "ok")
        ))),
    }
}

fn secrets_of(settings: &[Setting]) -> Vec<&str> {
    settings
        .iter()
        .filter_map(|s| match s {
            Setting::AuthToken(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// Points every server list at the quiet listener, keeping what was generated otherwise.
fn aimed(mut settings: Vec<Setting>, quiet: SocketAddr) -> Vec<Setting> {
    settings.insert(0, Setting::Servers(vec![server_of(quiet)]));
    for setting in &mut settings {
        if let Setting::Servers(list) = setting {
            for server in list.iter_mut().filter(|s| server_ok(s)) {
                *server = server_of(quiet);
            }
        }
    }
    settings
}

/// One call of the connection resource, boxed so that all ten fit one list.
type Call<'a> = Box<dyn FnOnce(&mut Store<State>) -> wasmtime::Result<Result<(), Error>> + 'a>;

struct Harness {
    inst: Instance,
    quiet: TcpListener,
    /// A low-level connection to a listener that counts the bytes it gets.
    conn: ResourceAny,
    /// Locks opened and refused: the run must have seen both sides of the model.
    opened: usize,
    refused: usize,
}

impl Harness {
    fn new() -> (Harness, std::thread::JoinHandle<usize>) {
        let quiet = TcpListener::bind("127.0.0.1:0").expect("bind");
        quiet.set_nonblocking(true).expect("nonblocking");
        let counting = TcpListener::bind("127.0.0.1:0").expect("bind");
        let counted = counting.local_addr().expect("addr");
        let counter = std::thread::spawn(move || {
            let (mut socket, _) = counting.accept().expect("accept");
            let mut received = Vec::new();
            let _ = socket.read_to_end(&mut received);
            received.len()
        });
        let mut inst = instance(&[quiet.local_addr().expect("addr"), counted]);
        let conn = inst
            .open_connection(&server_of(counted), &[])
            .expect("no trap")
            .expect("a connection to the counting listener");
        (
            Harness {
                inst,
                quiet,
                conn,
                opened: 0,
                refused: 0,
            },
            counter,
        )
    }

    fn quiet(&self) -> SocketAddr {
        self.quiet.local_addr().expect("addr")
    }
}

fn trap(e: wasmtime::Error) -> TestCaseError {
    TestCaseError::fail(format!("the component trapped: {e:?}"))
}

fn opens(
    h: &mut Harness,
    key: &str,
    limit: u32,
    settings: Vec<Setting>,
) -> Result<(), TestCaseError> {
    let settings = aimed(settings, h.quiet());
    let secrets = secrets_of(&settings);
    let model = is_word(key, MAX_LINE) && settings_ok(&settings, false);
    let (store, locks) = (&mut h.inst.store, h.inst.client.dflockd_client_locks());

    let lock = locks
        .lock()
        .call_open(&mut *store, key, &settings)
        .map_err(trap)?;
    if let Some(lock) = as_modelled("lock.open", model, lock, &secrets)? {
        // Opened: a wait past the bound is refused before anything is sent.
        let wait = locks
            .lock()
            .call_wait(&mut *store, lock, Some(MAX_SECONDS + 1))
            .map_err(trap)?;
        as_modelled("lock.wait", false, wait, &[])?;
        lock.resource_drop(&mut *store).map_err(trap)?;
        h.opened += 1;
    } else {
        h.refused += 1;
    }
    let semaphore = locks
        .semaphore()
        .call_open(&mut *store, key, limit, &settings)
        .map_err(trap)?;
    if let Some(s) = as_modelled("semaphore.open", model && limit > 0, semaphore, &secrets)? {
        s.resource_drop(&mut *store).map_err(trap)?;
    }
    // Lock sets: every key a word, none twice, at least one.
    let longer = format!("{key}x");
    for keys in [vec![], vec![key], vec![key, &longer], vec![key, key]] {
        let unique = keys.iter().collect::<std::collections::HashSet<_>>().len() == keys.len();
        let model = !keys.is_empty()
            && unique
            && keys.iter().all(|k| is_word(k, MAX_LINE))
            && settings_ok(&settings, false);
        let keys: Vec<String> = keys.into_iter().map(str::to_string).collect();
        let set = locks
            .lock_set()
            .call_open(&mut *store, &keys, &settings)
            .map_err(trap)?;
        if let Some(set) = as_modelled("lock-set.open", model, set, &secrets)? {
            // Opened: a command a set does not take is refused, sending nothing.
            let renew = locks
                .lock_set()
                .call_start(&mut *store, set, Command::Renew)
                .map_err(trap)?;
            as_modelled("lock-set.start", false, renew, &[])?;
            set.resource_drop(&mut *store).map_err(trap)?;
        }
    }
    Ok(())
}

/// `connection.create` where the model refuses it (a valid one is made
/// and dropped by the other tests).
fn connection_refuses(
    h: &mut Harness,
    server: Server,
    settings: Vec<Setting>,
) -> Result<(), TestCaseError> {
    if server_ok(&server) && settings_ok(&settings, true) {
        return Ok(());
    }
    let conns = h.inst.client.dflockd_client_connection().connection();
    let opened = conns
        .call_create(&mut h.inst.store, &server, &settings)
        .map_err(trap)?;
    as_modelled("connection.create", false, opened, &secrets_of(&settings)).map(drop)
}

/// Each connection call with these arguments, where the model refuses it
/// (a valid call would send its request).
fn connection_calls_refuse(
    h: &mut Harness,
    key: &str,
    token: &str,
    seconds: u64,
    lease: Option<u64>,
    limit: u32,
) -> Result<(), TestCaseError> {
    let (store, conn) = (&mut h.inst.store, h.conn);
    let c = h.inst.client.dflockd_client_connection().connection();
    let key_ok = is_word(key, MAX_LINE);
    let token_ok = is_word(token, MAX_LINE);
    let wait_ok = key_ok && seconds <= MAX_SECONDS;
    let acquire_ok = wait_ok && lease_ok(lease);
    let lease_arg = lease.map_or(0, |l| 1 + l.to_string().len());
    let renew_ok = key_ok && token_ok && lease_ok(lease) && token.len() + lease_arg <= MAX_LINE;
    let calls: [(&str, bool, Call<'_>); 10] = [
        (
            "lock",
            acquire_ok,
            Box::new(|s| {
                c.call_lock(s, conn, key, seconds, lease)
                    .map(|r| r.map(drop))
            }),
        ),
        (
            "unlock",
            key_ok && token_ok,
            Box::new(|s| c.call_unlock(s, conn, key, token)),
        ),
        (
            "renew",
            renew_ok,
            Box::new(|s| {
                c.call_renew(s, conn, key, token, lease)
                    .map(|r| r.map(drop))
            }),
        ),
        (
            "enqueue",
            key_ok && lease_ok(lease),
            Box::new(|s| c.call_enqueue(s, conn, key, lease).map(|r| r.map(drop))),
        ),
        (
            "wait",
            wait_ok,
            Box::new(|s| c.call_wait(s, conn, key, seconds).map(|r| r.map(drop))),
        ),
        (
            "sem-acquire",
            acquire_ok && limit > 0,
            Box::new(|s| {
                c.call_sem_acquire(s, conn, key, seconds, limit, lease)
                    .map(|r| r.map(drop))
            }),
        ),
        (
            "sem-release",
            key_ok && token_ok,
            Box::new(|s| c.call_sem_release(s, conn, key, token)),
        ),
        (
            "sem-renew",
            renew_ok,
            Box::new(|s| {
                c.call_sem_renew(s, conn, key, token, lease)
                    .map(|r| r.map(drop))
            }),
        ),
        (
            "sem-enqueue",
            key_ok && lease_ok(lease) && limit > 0,
            Box::new(|s| {
                c.call_sem_enqueue(s, conn, key, limit, lease)
                    .map(|r| r.map(drop))
            }),
        ),
        (
            "sem-wait",
            wait_ok,
            Box::new(|s| c.call_sem_wait(s, conn, key, seconds).map(|r| r.map(drop))),
        ),
    ];
    for (what, valid, call) in calls {
        if !valid {
            as_modelled(what, false, call(&mut *store).map_err(trap)?, &[token])?;
        }
    }
    Ok(())
}

/// Fencing and sharding: pure functions of their input, checked against the model.
fn pure_exports(
    h: &mut Harness,
    text: &str,
    n: u32,
    fences: &[(String, u64)],
) -> Result<(), TestCaseError> {
    let store = &mut h.inst.store;
    let fencing = h.inst.client.dflockd_client_fencing();
    let is_token = text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let fence = fencing
        .call_fence_from_token(&mut *store, text)
        .map_err(trap)?;
    if let Some(fence) = as_modelled("fence-from-token", is_token, fence, &[text])? {
        prop_assert_eq!(Some(fence), u64::from_str_radix(&text[..16], 16).ok());
    }
    let shard = h
        .inst
        .client
        .dflockd_client_sharding()
        .call_shard_index(&mut *store, text, n)
        .map_err(trap)?;
    if let Some(i) = as_modelled("shard-index", n > 0, shard, &[])? {
        prop_assert_eq!(i, crc32fast::hash(text.as_bytes()) % n);
    }
    let guards = fencing.fence_guard();
    let guard = guards.call_constructor(&mut *store).map_err(trap)?;
    let mut highest: HashMap<&str, u64> = HashMap::new();
    for (key, fence) in fences {
        let checked = guards
            .call_check(&mut *store, guard, key, *fence)
            .map_err(trap)?;
        match highest.get(key.as_str()) {
            Some(&top) if *fence <= top => {
                let stale = checked.err().map(|s| (s.fence, s.highest));
                prop_assert_eq!(stale, Some((*fence, top)));
            }
            _ => {
                prop_assert!(checked.is_ok());
                highest.insert(key, *fence);
            }
        }
        let seen = guards.call_highest(&mut *store, guard, key).map_err(trap)?;
        prop_assert_eq!(seen, highest.get(key.as_str()).copied());
    }
    guard.resource_drop(&mut *store).map_err(trap)
}

#[test]
fn every_export_refuses_what_the_rules_refuse_and_sends_nothing() {
    let (harness, counter) = Harness::new();
    let harness = RefCell::new(harness);
    let config = ProptestConfig {
        cases: 1024,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(
        key in string(MAX_LINE),
        limit in limit(),
        opts in settings(),
        server in server(),
        token in string(MAX_LINE),
        secs in seconds(),
        lease in lease(),
        fences in prop::collection::vec((string(8), any::<u64>()), 0..8),
    )| {
        let h = &mut *harness.borrow_mut();
        opens(h, &key, limit, opts.clone())?;
        connection_refuses(h, server, opts)?;
        connection_calls_refuse(h, &key, &token, secs, lease, limit)?;
        pure_exports(h, &token, limit, &fences)?;
    });

    let Harness {
        mut inst,
        quiet,
        conn,
        opened,
        refused,
    } = harness.into_inner();
    assert!(
        opened > 0 && refused > 0,
        "opened {opened}, refused {refused}"
    );
    println!("locks opened {opened}, refused {refused}");
    let driver = inst.client.dflockd_client_driver();
    assert_eq!(
        driver.call_next_deadline(&mut inst.store).unwrap(),
        None,
        "a deadline with nothing held"
    );
    assert!(
        driver.call_drive(&mut inst.store).unwrap().is_empty(),
        "a loss with nothing held"
    );
    let totals = driver.call_totals(&mut inst.store).unwrap();
    // The driver counts the locks' connects; the low-level connection is not one.
    assert_eq!(totals.connects, 0, "a lock connected");
    assert_eq!(totals.renewals_sent, 0);
    match quiet.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("a lock connected: {other:?}"),
    }
    conn.resource_drop(&mut inst.store).unwrap();
    drop(inst);
    assert_eq!(
        counter.join().expect("counter"),
        0,
        "bytes reached the counting listener"
    );
}
