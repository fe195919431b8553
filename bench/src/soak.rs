//! `cargo xtask soak --minutes M`: the component (blocking and async), the
//! Python client, and the component in Node (jco) and in Python
//! (wasmtime-py) on a handful of shared keys against one server (the test
//! server, or `DFLOCKD_BIN`), with random holds, random SIGSTOP pauses
//! shorter than the lease and one restart midway. Every client logs its
//! critical sections on CLOCK_MONOTONIC; a section counts as held only if
//! the server confirmed its release (the grant was live throughout: tokens
//! are per grant, and a lost grant never comes back). The checker proves
//! that no two counted sections on a key overlap, and counts operations;
//! at the end the server must have no connection left but the checker's,
//! and the component's process memory must be flat. Exits non-zero on an
//! overlap, a trap, a leaked connection or growing memory.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dflockd_host::{Error, Exclusive, Holder};
use host_tests::interop::{monotonic_ns, node_host, python_client, python_host};

const KEYS: [&str; 4] = ["soak:a", "soak:b", "soak:c", "soak:d"];
const LEASE_S: u64 = 5;
const MAX_HOLD_MS: u64 = 50;
/// Workers per client (threads or tasks).
const WORKERS: usize = 2;

/// One critical section.
#[derive(Debug, Clone)]
struct Section {
    client: &'static str,
    key: String,
    start: i64,
    end: i64,
    confirmed: bool,
}

/// What a component worker saw besides its sections.
#[derive(Default)]
struct Tallies {
    errors: AtomicU64,
    traps: AtomicU64,
}

/// A small random source (xorshift): holds and pauses need no quality.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn seed() -> u64 {
    u64::try_from(monotonic_ns()).unwrap_or(7)
}

/// Runs the soak; `Err` says what failed.
pub fn run(minutes: f64) -> Result<(), String> {
    let seconds = (minutes * 60.0).round().max(10.0) as u64;
    checker_sees_an_overlap()?;
    let mut server = host_tests::server::dflockd(&[]);
    let addr = server.addr;
    let rss_before = rss_kib();
    // The Node wrapper serves its calls one at a time: one worker there.
    let mut others: Vec<(&'static str, Child)> = vec![
        ("python", start(python_client(), addr, seconds, WORKERS)),
        ("python host", start(python_host(), addr, seconds, WORKERS)),
        ("node host", start(node_host(), addr, seconds, 1)),
    ];
    for (_, child) in &mut others {
        let stdin = child.stdin.as_mut().expect("piped stdin");
        stdin.write_all(b"go\n").map_err(|e| e.to_string())?;
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tallies = Arc::new(Tallies::default());
    let blocking: Vec<_> = (0..WORKERS)
        .map(|w| {
            let tallies = tallies.clone();
            std::thread::spawn(move || blocking_worker(addr, deadline, w as u64, &tallies))
        })
        .collect();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let asynchronous: Vec<_> = (0..WORKERS)
        .map(|w| tokio.spawn(async_worker(addr, deadline, w as u64, tallies.clone())))
        .collect();

    // The faults: pauses shorter than the lease, one restart midway.
    let mut rng = Rng::new(seed());
    let (mut pauses, mut restarted) = (0, false);
    let mut rss_mid = None;
    while Instant::now() + Duration::from_secs(8) < deadline {
        std::thread::sleep(Duration::from_millis(2_000 + rng.below(3_000)));
        if !restarted && Instant::now() + Duration::from_secs(seconds / 2) > deadline {
            rss_mid = Some(rss_kib());
            server.restart();
            restarted = true;
            continue;
        }
        server.pause();
        std::thread::sleep(Duration::from_millis(200 + rng.below(1_300)));
        server.resume();
        pauses += 1;
    }

    // Read before the other clients' logs are parsed: tens of thousands of
    // sections would count as the component's memory.
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let rss_after = rss_kib();
    let mut all: Vec<Section> = Vec::new();
    for worker in blocking {
        all.extend(worker.join().map_err(|_| "a blocking worker panicked")?);
    }
    for worker in asynchronous {
        let sections = tokio.block_on(worker).map_err(|e| e.to_string())?;
        all.extend(sections);
    }
    drop(tokio);
    let mut reports = Vec::new();
    for (client, child) in others {
        let (sections, report) = finish(client, child)?;
        all.extend(sections);
        reports.push(format!("{client}: {report}"));
    }

    // Every client is gone: the server keeps only the checker's connection.
    let mut observer = host_tests::connect(addr);
    let closed_by = Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let stats = observer.stats().map_err(|e| e.to_string())?;
        // The server notices a closed connection at its next read.
        if stats.connections == 1 || Instant::now() > closed_by {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let overlaps = overlaps(&all);
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for s in &all {
        let c = counts.entry(s.client).or_default();
        if s.confirmed {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
    }
    let against = host_tests::server::describe(server.dialect);
    println!("soak: {seconds} s against {against}, {pauses} pauses (0.2–1.5 s, lease {LEASE_S} s), restarted: {restarted}");
    for (client, (confirmed, unconfirmed)) in &counts {
        println!("  {client:<20} {confirmed:>7} sections confirmed, {unconfirmed:>5} not");
    }
    println!(
        "  component errors {} (typed), traps {}; {}",
        tallies.errors.load(Ordering::SeqCst),
        tallies.traps.load(Ordering::SeqCst),
        reports.join("; ")
    );
    println!(
        "  overlaps {}; server connections at the end {} (the checker's); component process RSS {} KiB before, {} KiB midway, {} KiB after",
        overlaps.len(),
        stats.connections,
        rss_before,
        rss_mid.unwrap_or(0),
        rss_after
    );
    let mut failures = Vec::new();
    if let Some(first) = overlaps.first() {
        failures.push(format!(
            "{} overlapping sections, first: {first}",
            overlaps.len()
        ));
    }
    if tallies.traps.load(Ordering::SeqCst) > 0 {
        failures.push("the component trapped".into());
    }
    if stats.connections != 1 {
        failures.push(format!("{} server connections left", stats.connections));
    }
    let clients = [
        "component blocking",
        "component async",
        "python",
        "python host",
        "node host",
    ];
    for client in clients {
        if counts.get(client).is_none_or(|c| c.0 == 0) {
            failures.push(format!("{client} completed no section"));
        }
    }
    // Flat: what was used midway (every object made, every connection
    // opened) does not grow by more than a quarter by the end.
    if let Some(mid) = rss_mid {
        if rss_after > mid + mid / 4 {
            failures.push(format!("RSS grew from {mid} KiB midway to {rss_after} KiB"));
        }
    }
    if failures.is_empty() {
        println!("soak: ok");
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// The checker itself, first: two counted sections that overlap are found,
/// and an unconfirmed one is not counted.
fn checker_sees_an_overlap() -> Result<(), String> {
    let section = |client, start, end, confirmed| Section {
        client,
        key: KEYS[0].into(),
        start,
        end,
        confirmed,
    };
    let overlapping = [
        section("component blocking", 10, 20, true),
        section("python", 15, 30, true),
    ];
    let apart = [
        section("component blocking", 10, 20, true),
        section("python", 15, 30, false),
    ];
    if overlaps(&overlapping).len() == 1 && overlaps(&apart).is_empty() {
        Ok(())
    } else {
        Err("the overlap checker is broken".into())
    }
}

/// The counted sections of one key that overlap, as text.
fn overlaps(all: &[Section]) -> Vec<String> {
    let mut found = Vec::new();
    for key in KEYS {
        let mut on_key: Vec<&Section> =
            all.iter().filter(|s| s.key == key && s.confirmed).collect();
        on_key.sort_by_key(|s| s.start);
        for pair in on_key.windows(2) {
            if pair[0].end >= pair[1].start {
                found.push(format!("{key}: {:?} and {:?}", pair[0], pair[1]));
            }
        }
    }
    found
}

fn blocking_worker(addr: SocketAddr, deadline: Instant, w: u64, tallies: &Tallies) -> Vec<Section> {
    let mut rng = Rng::new(seed() ^ (w << 32));
    let locks: Vec<Holder<Exclusive>> = KEYS
        .iter()
        .map(|k| {
            host_tests::lock_on(addr, k)
                .lease_ttl_s(LEASE_S)
                .acquire_timeout_s(10)
                .build()
                .expect("a lock")
        })
        .collect();
    let mut sections = Vec::new();
    while Instant::now() < deadline {
        let lock = &locks[rng.below(KEYS.len() as u64) as usize];
        match lock.acquire() {
            Ok(Some(guard)) => {
                let start = monotonic_ns();
                std::thread::sleep(Duration::from_millis(rng.below(MAX_HOLD_MS + 1)));
                let end = monotonic_ns();
                let released = guard.release();
                tally(tallies, released.as_ref().err());
                sections.push(Section {
                    client: "component blocking",
                    key: lock.key().into(),
                    start,
                    end,
                    confirmed: released == Ok(true),
                });
            }
            Ok(None) => tally(tallies, Some(&Error::Timeout)),
            Err(e) => {
                tally(tallies, Some(&e));
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    sections
}

async fn async_worker(
    addr: SocketAddr,
    deadline: Instant,
    w: u64,
    tallies: Arc<Tallies>,
) -> Vec<Section> {
    let mut rng = Rng::new(seed() ^ (w << 40));
    let mut locks = Vec::new();
    for k in KEYS {
        let lock = host_tests::lock_on(addr, k)
            .lease_ttl_s(LEASE_S)
            .acquire_timeout_s(10)
            .build_async()
            .await
            .expect("an async lock");
        locks.push(lock);
    }
    let mut sections = Vec::new();
    while Instant::now() < deadline {
        let lock = &locks[rng.below(KEYS.len() as u64) as usize];
        match lock.acquire().await {
            Ok(Some(guard)) => {
                let start = monotonic_ns();
                tokio::time::sleep(Duration::from_millis(rng.below(MAX_HOLD_MS + 1))).await;
                let end = monotonic_ns();
                let released = guard.release().await;
                tally(&tallies, released.as_ref().err());
                sections.push(Section {
                    client: "component async",
                    key: lock.key().into(),
                    start,
                    end,
                    confirmed: released == Ok(true),
                });
            }
            Ok(None) => tally(&tallies, Some(&Error::Timeout)),
            Err(e) => {
                tally(&tallies, Some(&e));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    sections
}

fn tally(tallies: &Tallies, error: Option<&Error>) {
    match error {
        None => {}
        Some(Error::Runtime(e)) => {
            eprintln!("soak: the component trapped: {e}");
            tallies.traps.fetch_add(1, Ordering::SeqCst);
        }
        Some(_) => {
            tallies.errors.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Starts another client's soak with `workers` workers and waits for its "ready".
fn start(mut cmd: Command, addr: SocketAddr, seconds: u64, workers: usize) -> Child {
    let mut child = cmd
        .args([
            "soak",
            "--server",
            &addr.to_string(),
            "--keys",
            &KEYS.join(","),
        ])
        .args([
            "--workers",
            &workers.to_string(),
            "--seconds",
            &seconds.to_string(),
        ])
        .args([
            "--max-hold-ms",
            &MAX_HOLD_MS.to_string(),
            "--lease-s",
            &LEASE_S.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a soak client");
    let mut ready = String::new();
    BufReader::new(child.stdout.as_mut().expect("piped stdout"))
        .read_line(&mut ready)
        .expect("its ready line");
    assert_eq!(ready.trim(), "ready", "{cmd:?}");
    child
}

/// Its sections and its "ops N errors M" line.
fn finish(client: &'static str, mut child: Child) -> Result<(Vec<Section>, String), String> {
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .map_err(|e| e.to_string())?;
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .map_err(|e| e.to_string())?;
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("{client} failed ({status}): {err}"));
    }
    let mut sections = Vec::new();
    for line in out.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split(' ').collect();
        let parsed = (f.len() == 4)
            .then(|| Some((f[1].parse().ok()?, f[2].parse().ok()?)))
            .flatten();
        let Some((start, end)) = parsed else {
            return Err(format!("{client}: a bad line {line:?}"));
        };
        sections.push(Section {
            client,
            key: f[0].into(),
            start,
            end,
            confirmed: f[3] == "confirmed",
        });
    }
    let report = err
        .lines()
        .rev()
        .find(|l| l.starts_with("ops "))
        .unwrap_or("no report");
    Ok((sections, report.to_string()))
}

/// This process's resident memory (KiB).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}
