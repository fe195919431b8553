//! Many held locks in one process: memory and threads per lock, the time to
//! acquire them all, and how many leases are lost while they are held for 3
//! lease periods. Run in a child process of its own (`scale` mode), so that
//! the figures are this process's alone.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The lease the held locks ask for; they are held for 3 of them.
pub const LEASE_S: u64 = 2;

/// What one scale run found.
#[derive(Debug, Clone, Copy)]
pub struct Held {
    /// Locks held at once.
    pub locks: usize,
    /// RSS growth per held lock, KiB.
    pub rss_kib_per_lock: f64,
    /// PSS growth per held lock, KiB: RSS with each shared page divided
    /// among its sharers (the compiled image is mapped by every instance).
    pub pss_kib_per_lock: f64,
    /// Memory mappings per held lock (Linux allows 65,530 by default).
    pub maps_per_lock: f64,
    /// OS threads of the process while they are held.
    pub threads: usize,
    /// Time to build and acquire all of them.
    pub acquire_all_s: f64,
    /// Leases reported lost (on_lost) or not held at the end.
    pub lost: usize,
}

impl Held {
    /// One line for the parent process.
    pub fn to_line(self) -> String {
        format!(
            "locks {} rss_kib_per_lock {:.1} pss_kib_per_lock {:.1} maps_per_lock {:.2} threads {} acquire_all_s {:.3} lost {}",
            self.locks,
            self.rss_kib_per_lock,
            self.pss_kib_per_lock,
            self.maps_per_lock,
            self.threads,
            self.acquire_all_s,
            self.lost
        )
    }

    /// Parses [`to_line`](Self::to_line).
    pub fn from_line(line: &str) -> Option<Held> {
        let get = |name: &str| crate::named_value(line, name);
        Some(Held {
            locks: get("locks")? as usize,
            rss_kib_per_lock: get("rss_kib_per_lock")?,
            pss_kib_per_lock: get("pss_kib_per_lock")?,
            maps_per_lock: get("maps_per_lock")?,
            threads: get("threads")? as usize,
            acquire_all_s: get("acquire_all_s")?,
            lost: get("lost")? as usize,
        })
    }
}

/// Why `n` locks cannot be held in one process here, if so: every lock,
/// blocking or async, keeps one open file (its socket; its runtime's
/// instances share their epoll and threads).
pub fn beyond_limits(n: usize) -> Option<String> {
    let files_per_lock = 1;
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let open_files: usize = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())?;
    let needed = n * files_per_lock + 64;
    (needed > open_files).then(|| {
        format!(
            "{files_per_lock} open file(s) per lock need about {needed}, over this process's \
             limit of {open_files} (`ulimit -n`)"
        )
    })
}

/// A field of a `/proc/self` file of `name: value` lines.
fn proc_field(file: &str, field: &str) -> usize {
    let text = std::fs::read_to_string(format!("/proc/self/{file}")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A field of `/proc/self/status` (`VmRSS` in KiB, `Threads`).
fn status(field: &str) -> usize {
    proc_field("status", field)
}

/// The process's memory: RSS and PSS in KiB, and its count of mappings.
#[derive(Clone, Copy)]
struct Memory {
    rss: usize,
    pss: usize,
    maps: usize,
}

impl Memory {
    fn now() -> Memory {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
        Memory {
            rss: status("VmRSS"),
            pss: proc_field("smaps_rollup", "Pss"),
            maps: maps.lines().count(),
        }
    }
}

impl Held {
    /// The figures once `n` locks are held: memory added since `before`,
    /// threads, and the time since `began`. `lost` is counted later.
    fn acquired(n: usize, before: Memory, began: Instant) -> Held {
        let acquire_all_s = began.elapsed().as_secs_f64();
        let now = Memory::now();
        let per = |after: usize, before: usize| after.saturating_sub(before) as f64 / n as f64;
        Held {
            locks: n,
            rss_kib_per_lock: per(now.rss, before.rss),
            pss_kib_per_lock: per(now.pss, before.pss),
            maps_per_lock: per(now.maps, before.maps),
            threads: status("Threads"),
            acquire_all_s,
            lost: 0,
        }
    }
}

/// Holds `n` blocking locks (one object and connection each, in the
/// runtime's instances, one per core).
pub fn blocking(addr: SocketAddr, n: usize) -> Held {
    let lost = Arc::new(AtomicUsize::new(0));
    let before = Memory::now();
    let began = Instant::now();
    let mut locks = Vec::with_capacity(n);
    for i in 0..n {
        let lost = lost.clone();
        let lock = host_tests::lock_on(addr, &format!("held-{i}"))
            .lease_ttl_s(LEASE_S)
            .on_lost(move |_| {
                lost.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .expect("build");
        let guard = lock.acquire().expect("acquire").expect("granted");
        std::mem::forget(guard); // held until the lock object drops
        locks.push(lock);
    }
    let held = Held::acquired(n, before, began);
    std::thread::sleep(Duration::from_secs(3 * LEASE_S));
    let not_held = locks.iter().filter(|l| !l.is_held()).count();
    Held {
        lost: lost.load(Ordering::SeqCst).max(not_held),
        ..held
    }
}

/// Holds `n` async locks on a 2-worker tokio runtime.
pub fn asynchronous(addr: SocketAddr, n: usize) -> Held {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(async move {
        let lost = Arc::new(AtomicUsize::new(0));
        let before = Memory::now();
        let began = Instant::now();
        let mut locks = Vec::with_capacity(n);
        for i in 0..n {
            let lost = lost.clone();
            let lock = host_tests::lock_on(addr, &format!("held-async-{i}"))
                .lease_ttl_s(LEASE_S)
                .on_lost(move |_| {
                    lost.fetch_add(1, Ordering::SeqCst);
                })
                .build_async()
                .await
                .expect("build");
            let guard = lock.acquire().await.expect("acquire").expect("granted");
            std::mem::forget(guard);
            locks.push(lock);
        }
        let held = Held::acquired(n, before, began);
        tokio::time::sleep(Duration::from_secs(3 * LEASE_S)).await;
        let mut not_held = 0;
        for lock in &locks {
            if !lock.is_held() {
                not_held += 1;
            }
        }
        Held {
            lost: lost.load(Ordering::SeqCst).max(not_held),
            ..held
        }
    })
}

/// Holds `n` locks in one component instance through the WIT's
/// non-blocking surface (`start`, `driver.pollables`, `driver.poll-events`),
/// one waiter for all of them: the shape the host API moves to (issue 21),
/// measured on the bare contract. Acquires are started 256 at a time, so
/// that the server's accept backlog never holds a connect past its timeout.
pub fn one_instance(addr: SocketAddr, n: usize) -> Held {
    use host_tests::{Command, Completion, Event, Outcome, Setting};
    const WINDOW: usize = 256;
    let before = Memory::now();
    let began = Instant::now();
    let mut inst = host_tests::instance(&[addr]);
    let settings = [
        Setting::Servers(vec![host_tests::server_of(addr)]),
        Setting::LeaseTtlS(LEASE_S),
    ];
    let mut lost = 0;
    let mut objects = Vec::with_capacity(n);
    let mut running = 0;
    let mut count = |events: Vec<Event>, running: &mut usize| {
        for event in events {
            match event {
                Event::Done(Completion { outcome, .. }) => {
                    *running -= 1;
                    if !matches!(outcome, Ok(Outcome::Acquired(Some(_)))) {
                        lost += 1;
                    }
                }
                Event::Lost(_) => lost += 1,
                // No low-level connection is used here.
                Event::Answered(_) => {}
            }
        }
    };
    for i in 0..n {
        let locks = inst.client.dflockd_client_locks();
        let lock = locks
            .lock()
            .call_open(&mut inst.store, &format!("held-one-{i}"), &settings)
            .expect("call")
            .expect("open");
        locks
            .lock()
            .call_start(&mut inst.store, lock, Command::Acquire)
            .expect("call")
            .expect("start");
        objects.push(lock);
        running += 1;
        while running >= WINDOW {
            let events = inst.turn().expect("turn");
            count(events, &mut running);
        }
    }
    while running > 0 {
        let events = inst.turn().expect("turn");
        count(events, &mut running);
    }
    let held = Held::acquired(n, before, began);
    let end = Instant::now() + Duration::from_secs(3 * LEASE_S);
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        let events = inst.turn_for(left).expect("turn");
        count(events, &mut running);
    }
    let locks = inst.client.dflockd_client_locks();
    let not_held = objects
        .iter()
        .filter(|&&lock| {
            let held = locks.lock().call_is_held(&mut inst.store, lock);
            !held.expect("call")
        })
        .count();
    Held {
        lost: lost.max(not_held),
        ..held
    }
}
