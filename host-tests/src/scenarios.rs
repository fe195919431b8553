//! The conformance scenarios of `hosts/scenarios.json` (what each step
//! means: `hosts/README.md`): loading them, starting their servers, and
//! running them through the Rust host in either flavour. The Node and
//! Python runners read the same file; `tests/hosts.rs` runs them all.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use dflockd_host::{Builder, Enqueued, Error, LeaseLost, LossCause};
use serde_json::{json, Value};

use crate::server::{dflockd, Server};

/// One scenario: its name, its servers (name → extra flags), its steps.
pub struct Scenario {
    /// As in the file.
    pub name: String,
    /// The servers it needs, by name, with their extra dflockd flags.
    pub servers: BTreeMap<String, Vec<String>>,
    /// The steps, as written.
    pub steps: Vec<Value>,
}

/// The repository's `hosts/` folder.
pub fn hosts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../hosts")
}

/// Every scenario of `hosts/scenarios.json`.
pub fn load() -> Vec<Scenario> {
    let path = hosts_dir().join("scenarios.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).expect("scenarios.json is JSON");
    let list = doc["scenarios"].as_array().expect("a scenarios list");
    list.iter()
        .map(|s| Scenario {
            name: s["name"].as_str().expect("a name").to_owned(),
            servers: serde_json::from_value(s["servers"].clone()).expect("servers"),
            steps: s["steps"].as_array().expect("steps").clone(),
        })
        .collect()
}

/// The servers of one scenario, started.
pub type Servers = BTreeMap<String, Server>;

/// Starts the servers `scenario` asks for.
pub fn start(scenario: &Scenario) -> Servers {
    scenario
        .servers
        .iter()
        .map(|(name, flags)| {
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            (name.clone(), dflockd(&flags))
        })
        .collect()
}

/// The servers file a foreign runner reads: `{scenario: {server: {host, port, pid}}}`.
pub fn servers_file(started: &[(&Scenario, Servers)]) -> Value {
    let mut file = serde_json::Map::new();
    for (scenario, servers) in started {
        let entries: serde_json::Map<_, _> = servers
            .iter()
            .map(|(name, s)| {
                let entry =
                    json!({"host": s.addr.ip().to_string(), "port": s.addr.port(), "pid": s.pid()});
                (name.clone(), entry)
            })
            .collect();
        file.insert(scenario.name.clone(), Value::Object(entries));
    }
    Value::Object(file)
}

/// What the runner needs of a lock or semaphore, in either flavour.
pub trait Object {
    /// `acquire`: granted or not (the grant stays held: no guard).
    fn acquire(&self) -> Result<bool, Error>;
    /// `enqueue`.
    fn enqueue(&self) -> Result<Enqueued, Error>;
    /// `wait` with a timeout: granted or not.
    fn wait(&self, timeout_s: u64) -> Result<bool, Error>;
    /// `release`.
    fn release(&self) -> Result<bool, Error>;
    /// `is_held`.
    fn is_held(&self) -> bool;
    /// `close`.
    fn close(&self) -> Result<(), Error>;
}

/// How a flavour of the host builds its objects.
pub trait Flavour {
    /// Builds a lock.
    fn lock(&self, builder: Builder<dflockd_host::Exclusive>) -> Result<Box<dyn Object>, Error>;
    /// Builds a semaphore.
    fn semaphore(&self, builder: Builder<dflockd_host::Counting>)
        -> Result<Box<dyn Object>, Error>;
}

/// The WIT name of an error's case, as the scenarios write it.
pub fn error_tag(e: &Error) -> &'static str {
    match e {
        Error::Timeout => "timeout",
        Error::Auth => "auth",
        Error::MaxLocks => "max-locks",
        Error::MaxWaiters => "max-waiters",
        Error::LimitMismatch => "limit-mismatch",
        Error::NotEnqueued => "not-enqueued",
        Error::AlreadyEnqueued => "already-enqueued",
        Error::LeaseExpired => "lease-expired",
        Error::Draining => "draining",
        Error::NotLeader(_) => "not-leader",
        Error::LockLost(_) => "lock-lost",
        Error::Server(_) => "server",
        Error::Protocol(_) => "protocol",
        Error::Connection(_) => "connection",
        Error::Tls(_) => "tls",
        Error::InvalidArgument(_) => "invalid-argument",
        _ => "runtime",
    }
}

/// The WIT name of a loss cause.
pub fn cause_tag(cause: LossCause) -> &'static str {
    match cause {
        LossCause::RenewalRefused => "renewal-refused",
        LossCause::ReleaseRefused => "release-refused",
        LossCause::ConnectionLost => "connection-lost",
        LossCause::NoReply => "no-reply",
        LossCause::NotRenewed => "not-renewed",
        LossCause::Expired => "expired",
        _ => "unknown",
    }
}

/// The loss reports an object has had, with a wake-up for each new one.
#[derive(Default)]
struct Reports {
    seen: Mutex<Vec<LeaseLost>>,
    arrived: Condvar,
}

impl Reports {
    fn push(&self, loss: &LeaseLost) {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(loss.clone());
        self.arrived.notify_all();
    }

    fn all(&self) -> Vec<LeaseLost> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every report once at least one has come, or what there is after `within`.
    fn after_the_first(&self, within: Duration) -> Vec<LeaseLost> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let waited = self
            .arrived
            .wait_timeout_while(seen, within, |seen| seen.is_empty());
        let (seen, _) = waited.unwrap_or_else(|p| p.into_inner());
        seen.clone()
    }
}

/// An object and the loss reports it has had.
struct Opened {
    object: Box<dyn Object>,
    losses: Arc<Reports>,
}

/// Runs one scenario through `flavour`; `Err` says which step failed and why.
pub fn run(
    scenario: &Scenario,
    servers: &mut Servers,
    flavour: &dyn Flavour,
) -> Result<(), String> {
    let mut objects = BTreeMap::new();
    for (i, step) in scenario.steps.iter().enumerate() {
        let done = step_once(step, servers, flavour, &mut objects);
        done.map_err(|why| format!("step {} {step}: {why}", i + 1))?;
    }
    for opened in objects.values() {
        let _ = opened.object.close();
    }
    Ok(())
}

fn str_of<'a>(step: &'a Value, field: &str) -> &'a str {
    step[field].as_str().unwrap_or_default()
}

fn u64_of(step: &Value, field: &str) -> Option<u64> {
    step[field].as_u64()
}

/// An error as the scenarios see it: its WIT case and its text.
pub struct Tagged {
    tag: &'static str,
    text: String,
}

impl From<Error> for Tagged {
    fn from(e: Error) -> Self {
        Tagged {
            tag: error_tag(&e),
            text: format!("{e} {e:?}"),
        }
    }
}

/// Compares an outcome with the step's `expect` (absent: must succeed).
fn expect<E: Into<Tagged>>(step: &Value, outcome: Result<Value, E>) -> Result<(), String> {
    let wanted = &step["expect"];
    match outcome.map_err(Into::into) {
        Ok(got) if wanted.is_null() || *wanted == got => Ok(()),
        Ok(got) => Err(format!("expected {wanted}, got {got}")),
        Err(Tagged { tag, text }) => {
            if wanted["error"] != tag {
                return Err(format!("expected {wanted}, got the error {tag}: {text}"));
            }
            match wanted["hides"].as_str() {
                Some(secret) if text.contains(secret) => {
                    Err(format!("the {tag} error shows what it must hide"))
                }
                _ => Ok(()),
            }
        }
    }
}

fn configure<K>(
    builder: Builder<K>,
    step: &Value,
    server: &Server,
    losses: &Arc<Reports>,
) -> Builder<K> {
    let mut b = builder.server(server.addr.ip().to_string(), server.addr.port());
    if let Some(s) = u64_of(step, "lease_ttl_s") {
        b = b.lease_ttl_s(s);
    }
    if let Some(s) = u64_of(step, "acquire_timeout_s") {
        b = b.acquire_timeout_s(s);
    }
    if let Some(token) = step["auth_token"].as_str() {
        b = b.auth_token(token);
    }
    let losses = losses.clone();
    b.on_lost(move |l| losses.push(l))
}

fn step_once(
    step: &Value,
    servers: &mut Servers,
    flavour: &dyn Flavour,
    objects: &mut BTreeMap<String, Opened>,
) -> Result<(), String> {
    let op = str_of(step, "op");
    if op == "open" {
        let server = servers
            .get(str_of(step, "server"))
            .ok_or("no such server")?;
        let losses = Arc::default();
        let key = str_of(step, "key");
        let runtime = crate::runtime();
        let built = match u64_of(step, "limit") {
            None => flavour.lock(configure(runtime.lock(key), step, server, &losses)),
            Some(limit) => {
                let limit = u32::try_from(limit).map_err(|_| "limit past u32")?;
                flavour.semaphore(configure(
                    runtime.semaphore(key, limit),
                    step,
                    server,
                    &losses,
                ))
            }
        };
        return match built {
            Ok(object) => {
                objects.insert(str_of(step, "id").to_owned(), Opened { object, losses });
                expect(step, Ok::<_, Error>(Value::Null))
            }
            Err(e) => expect(step, Err(e)),
        };
    }
    match op {
        "kill" => {
            let name = str_of(step, "server");
            servers.get_mut(name).ok_or("no such server")?.kill();
            return Ok(());
        }
        "stats" => {
            let server = servers
                .get(str_of(step, "server"))
                .ok_or("no such server")?;
            return stats(step, server.addr);
        }
        "fence-from-token" | "shard-index" => return pure(step),
        _ => {}
    }
    let opened = objects.get(str_of(step, "id")).ok_or("no such object")?;
    let object = &opened.object;
    let losses = &opened.losses;
    match op {
        "acquire" => expect(
            step,
            object
                .acquire()
                .map(|g| json!(if g { "granted" } else { "none" })),
        ),
        "enqueue" => expect(
            step,
            object.enqueue().map(|e| match e {
                Enqueued::Acquired(_) => json!("acquired"),
                _ => json!("queued"),
            }),
        ),
        "wait" => {
            let timeout = u64_of(step, "timeout_s").ok_or("no timeout_s")?;
            expect(
                step,
                object
                    .wait(timeout)
                    .map(|g| json!(if g { "granted" } else { "none" })),
            )
        }
        "release" => expect(step, object.release().map(Value::Bool)),
        "held" => expect(step, Ok::<_, Error>(Value::Bool(object.is_held()))),
        "close" => expect(step, object.close().map(|()| Value::Null)),
        "hold" => {
            let seconds = u64_of(step, "seconds").ok_or("no seconds")?;
            // The length of the scenario's hold, not a wait for an event.
            std::thread::sleep(Duration::from_secs(seconds));
            object
                .is_held()
                .then_some(())
                .ok_or_else(|| format!("not held after {seconds} s"))
        }
        "lost" => {
            let within = Duration::from_secs(u64_of(step, "within_s").unwrap_or(10));
            match losses.after_the_first(within).as_slice() {
                [one] if cause_tag(one.reason.cause) == str_of(step, "cause") => Ok(()),
                reports => Err(format!(
                    "expected one {:?} loss, got {reports:?}",
                    step["cause"]
                )),
            }
        }
        "losses" => expect(step, Ok::<_, Error>(json!(losses.all().len()))),
        other => Err(format!("unknown op {other:?}")),
    }
}

fn stats(step: &Value, addr: std::net::SocketAddr) -> Result<(), String> {
    let stats = crate::connect(addr)
        .stats()
        .map_err(|e| format!("stats: {e}"))?;
    let key = str_of(step, "key");
    let lock = stats.locks.iter().find(|l| l.key == key);
    let semaphore = stats.semaphores.iter().find(|s| s.key == key);
    let wanted = step["expect"].as_object().ok_or("stats needs an expect")?;
    for (field, value) in wanted {
        let got = match field.as_str() {
            "held" => json!(lock.is_some()),
            "waiters" => json!(lock.map(|l| l.waiters).or(semaphore.map(|s| s.waiters))),
            "holders" => json!(semaphore.map(|s| s.holders)),
            "limit" => json!(semaphore.map(|s| s.limit)),
            other => return Err(format!("unknown stats field {other:?}")),
        };
        if got != *value {
            return Err(format!("stats {field}: expected {value}, got {got}"));
        }
    }
    Ok(())
}

/// `fence-from-token` and `shard-index`, through the component's own exports.
fn pure(step: &Value) -> Result<(), String> {
    let mut inst = crate::instance(&[]);
    let store = &mut inst.store;
    let outcome = if str_of(step, "op") == "fence-from-token" {
        let fencing = inst.client.dflockd_client_fencing();
        let fence = fencing.call_fence_from_token(&mut *store, str_of(step, "token"));
        fence
            .map_err(|e| format!("trap: {e:?}"))?
            .map(|f| json!(f.to_string()))
    } else {
        let n = u32::try_from(u64_of(step, "n").ok_or("no n")?).map_err(|_| "n past u32")?;
        let sharding = inst.client.dflockd_client_sharding();
        let index = sharding.call_shard_index(&mut *store, str_of(step, "key"), n);
        index.map_err(|e| format!("trap: {e:?}"))?.map(|i| json!(i))
    };
    expect(step, outcome.map_err(raw_tagged))
}

/// The component's own error, for the pure exports: only `invalid-argument` is expected.
fn raw_tagged(e: crate::Error) -> Tagged {
    let tag = match e {
        crate::Error::InvalidArgument(_) => "invalid-argument",
        _ => "other",
    };
    Tagged {
        tag,
        text: format!("{e:?}"),
    }
}
