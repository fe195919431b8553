//! The clients under test, each doing acquire+release on its own key over
//! one persistent connection per worker, the way the upstream Go benchmark
//! (`cmd/bench`) does: what is measured is the lock round trip. The Go
//! client is measured only when `DFLOCKD_GO_BENCH` names a `cmd/bench`
//! binary the user has (this project builds none).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use host_tests::interop::python_client;

/// One measured run.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Operations (acquire+release pairs) done.
    pub ops: usize,
    /// Wall time from the common start to the last worker's end.
    pub wall_s: f64,
    /// Median latency of one acquire+release.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
}

impl Sample {
    /// Operations per second.
    pub fn throughput(&self) -> f64 {
        self.ops as f64 / self.wall_s
    }

    fn from_latencies(mut all: Vec<Duration>, wall: Duration) -> Sample {
        all.sort();
        let at = |q: f64| all[((all.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
        Sample {
            ops: all.len(),
            wall_s: wall.as_secs_f64(),
            p50_ms: at(0.5),
            p99_ms: at(0.99),
        }
    }
}

/// Every client the bench compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// A plain std `TcpStream` speaking the protocol: the floor.
    RawSocket,
    /// The upstream Go client, `cmd/bench` (low-level Acquire/Release), at
    /// `$DFLOCKD_GO_BENCH`.
    Go,
    /// The Python client 2.1.1, low-level functions.
    PythonLow,
    /// The Python client 2.1.1, `SyncDistributedLock`.
    PythonLock,
    /// The component: the low-level `Connection` of `dflockd-host`.
    ComponentConnection,
    /// The component's connection resource through wasmtime-wasi's sync
    /// bindings (how `dflockd-host` called it before).
    ComponentSyncBindings,
    /// The component: the blocking `Lock` of `dflockd-host`.
    ComponentLock,
    /// The component: the async `Lock` of `dflockd-host` on tokio.
    ComponentAsyncLock,
    /// The component: the workers' locks in one instance per core, a
    /// driver thread each (a spike of issue 21's host, on the bare WIT).
    OneInstance,
}

impl Client {
    /// All of them, in table order.
    pub const ALL: [Client; 9] = [
        Client::RawSocket,
        Client::Go,
        Client::PythonLow,
        Client::PythonLock,
        Client::ComponentConnection,
        Client::ComponentSyncBindings,
        Client::ComponentLock,
        Client::ComponentAsyncLock,
        Client::OneInstance,
    ];

    /// The clients this run measures: all but the Go client unless
    /// `DFLOCKD_GO_BENCH` is set.
    pub fn measured() -> Vec<Client> {
        let go = go_bench().is_some();
        Client::ALL
            .into_iter()
            .filter(|c| go || *c != Client::Go)
            .collect()
    }

    /// The name in tables and the chart.
    pub fn name(self) -> &'static str {
        match self {
            Client::RawSocket => "raw std TcpStream (floor)",
            Client::Go => "Go client (cmd/bench)",
            Client::PythonLow => "Python 2.1.1 low-level",
            Client::PythonLock => "Python 2.1.1 SyncDistributedLock",
            Client::ComponentConnection => "component Connection",
            Client::ComponentSyncBindings => "component, wasmtime-wasi sync bindings (before)",
            Client::ComponentLock => "component Lock (blocking)",
            Client::ComponentAsyncLock => "component Lock (async, tokio)",
            Client::OneInstance => "component, an instance per core + driver threads (spike)",
        }
    }

    /// The short name of the `one` child mode (for profiling one client).
    pub fn slug(self) -> &'static str {
        match self {
            Client::RawSocket => "raw",
            Client::Go => "go",
            Client::PythonLow => "python-low",
            Client::PythonLock => "python-lock",
            Client::ComponentConnection => "connection",
            Client::ComponentSyncBindings => "sync-bindings",
            Client::ComponentLock => "lock",
            Client::ComponentAsyncLock => "async-lock",
            Client::OneInstance => "one-instance",
        }
    }

    /// Runs `workers` × `rounds` acquire+release pairs against `addr`.
    pub fn run(self, addr: SocketAddr, workers: usize, rounds: usize) -> Result<Sample, String> {
        match self {
            Client::RawSocket => Ok(threads(workers, move |w, start| {
                raw_socket(addr, w, rounds, start)
            })),
            Client::Go => go(addr, workers, rounds),
            Client::PythonLow => python(addr, workers, rounds, "low"),
            Client::PythonLock => python(addr, workers, rounds, "lock"),
            Client::ComponentConnection => Ok(threads(workers, move |w, start| {
                component_connection(addr, w, rounds, start)
            })),
            Client::ComponentSyncBindings => Ok(threads(workers, move |w, start| {
                component_sync_bindings(addr, w, rounds, start)
            })),
            Client::ComponentLock => Ok(threads(workers, move |w, start| {
                component_lock(addr, w, rounds, start)
            })),
            Client::ComponentAsyncLock => Ok(component_async(addr, workers, rounds)),
            Client::OneInstance => Ok(threads(workers, {
                let cores = std::thread::available_parallelism().map_or(1, usize::from);
                let drivers =
                    crate::one_instance::Drivers::start(addr, workers, cores.min(workers));
                move |w, start| drivers.worker(w, rounds, start)
            })),
        }
    }
}

/// Runs `work` on `workers` threads that start together; collects latencies.
pub(crate) fn threads(
    workers: usize,
    work: impl Fn(usize, &Barrier) -> Vec<Duration> + Send + Sync + 'static,
) -> Sample {
    let start = Arc::new(Barrier::new(workers + 1));
    let work = Arc::new(work);
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            let (start, work) = (start.clone(), work.clone());
            std::thread::spawn(move || work(w, &start))
        })
        .collect();
    start.wait();
    let began = Instant::now();
    let all: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("a worker panicked"))
        .collect();
    Sample::from_latencies(all, began.elapsed())
}

fn raw_socket(addr: SocketAddr, w: usize, rounds: usize, start: &Barrier) -> Vec<Duration> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let key = format!("bench-raw-{w}");
    let mut line = String::new();
    let mut out = Vec::with_capacity(rounds);
    start.wait();
    for _ in 0..rounds {
        let t0 = Instant::now();
        writer
            .write_all(format!("l\n{key}\n30\n").as_bytes())
            .expect("write");
        line.clear();
        reader.read_line(&mut line).expect("read");
        let token = line
            .split(' ')
            .nth(1)
            .expect("ok <token> <lease>")
            .to_string();
        writer
            .write_all(format!("r\n{key}\n{token}\n").as_bytes())
            .expect("write");
        line.clear();
        reader.read_line(&mut line).expect("read");
        assert_eq!(line, "ok\n");
        out.push(t0.elapsed());
    }
    out
}

fn component_connection(
    addr: SocketAddr,
    w: usize,
    rounds: usize,
    start: &Barrier,
) -> Vec<Duration> {
    let mut conn = host_tests::connect(addr);
    let key = format!("bench-conn-{w}");
    let mut out = Vec::with_capacity(rounds);
    start.wait();
    for _ in 0..rounds {
        let t0 = Instant::now();
        let grant = conn.lock(&key, 30, None).expect("lock").expect("granted");
        conn.unlock(&key, &grant.token).expect("unlock");
        out.push(t0.elapsed());
    }
    out
}

fn component_lock(addr: SocketAddr, w: usize, rounds: usize, start: &Barrier) -> Vec<Duration> {
    let lock = host_tests::lock_on(addr, &format!("bench-lock-{w}"))
        .acquire_timeout_s(30)
        .build()
        .expect("build");
    let mut out = Vec::with_capacity(rounds);
    start.wait();
    for _ in 0..rounds {
        let t0 = Instant::now();
        let guard = lock.acquire().expect("acquire").expect("granted");
        assert!(guard.release().expect("release"));
        out.push(t0.elapsed());
    }
    out
}

fn component_async(addr: SocketAddr, workers: usize, rounds: usize) -> Sample {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(async move {
        let start = Arc::new(tokio::sync::Barrier::new(workers + 1));
        let mut tasks = Vec::new();
        for w in 0..workers {
            let start = start.clone();
            tasks.push(tokio::spawn(async move {
                let lock = host_tests::lock_on(addr, &format!("bench-async-{w}"))
                    .acquire_timeout_s(30)
                    .build_async()
                    .await
                    .expect("build");
                let mut out = Vec::with_capacity(rounds);
                start.wait().await;
                for _ in 0..rounds {
                    let t0 = Instant::now();
                    let guard = lock.acquire().await.expect("acquire").expect("granted");
                    assert!(guard.release().await.expect("release"));
                    out.push(t0.elapsed());
                }
                out
            }));
        }
        start.wait().await;
        let began = Instant::now();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("a task panicked"));
        }
        Sample::from_latencies(all, began.elapsed())
    })
}

/// The user's Go `cmd/bench` binary, if any.
fn go_bench() -> Option<std::path::PathBuf> {
    std::env::var_os("DFLOCKD_GO_BENCH").map(Into::into)
}

fn go(addr: SocketAddr, workers: usize, rounds: usize) -> Result<Sample, String> {
    let bin = go_bench().ok_or("set DFLOCKD_GO_BENCH to a dflockd cmd/bench binary")?;
    let out = Command::new(&bin)
        .args([
            "--workers",
            &workers.to_string(),
            "--rounds",
            &rounds.to_string(),
        ])
        .args([
            "--servers",
            &addr.to_string(),
            "--timeout",
            "30",
            "--lease",
            "30",
        ])
        .output()
        .map_err(|e| format!("DFLOCKD_GO_BENCH={}: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "Go bench: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let field = |label: &str| -> Result<f64, String> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|rest| {
                let value = rest.trim_start_matches([' ', ':']).split(' ').next()?;
                // "0.038s" (wall time) or "0.084" before " ms".
                value.trim_end_matches('s').parse().ok()
            })
            .ok_or_else(|| format!("Go bench: no {label:?} in {text:?}"))
    };
    Ok(Sample {
        ops: field("total ops")? as usize,
        wall_s: field("wall time")?,
        p50_ms: field("p50")?,
        p99_ms: field("p99")?,
    })
}

fn python(addr: SocketAddr, workers: usize, rounds: usize, api: &str) -> Result<Sample, String> {
    let out = python_client()
        .args(["bench", "--server", &addr.to_string(), "--api", api])
        .args([
            "--workers",
            &workers.to_string(),
            "--rounds",
            &rounds.to_string(),
        ])
        .output()
        .map_err(|e| format!("python: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "Python bench: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let value = |name: &str| -> Result<f64, String> {
        crate::named_value(&text, name)
            .ok_or_else(|| format!("Python bench: no {name} in {text:?}"))
    };
    Ok(Sample {
        ops: value("ops")? as usize,
        wall_s: value("wall_s")?,
        p50_ms: value("p50_ms")?,
        p99_ms: value("p99_ms")?,
    })
}

/// The low-level connection through wasmtime-wasi's sync bindings, the way
/// `dflockd-host` called the component before it gave each blocking
/// instance a runtime of its own: kept to show what that change is worth.
fn component_sync_bindings(
    addr: SocketAddr,
    w: usize,
    rounds: usize,
    start: &Barrier,
) -> Vec<Duration> {
    let mut inst = host_tests::instance(&[addr]);
    let server = host_tests::Server {
        host: addr.ip().to_string(),
        port: addr.port(),
    };
    let open = inst.open_connection(&server, &[]);
    let handle = open.expect("call").expect("open");
    let conns = inst.client.dflockd_client_connection().connection();
    let key = format!("bench-sync-{w}");
    let mut out = Vec::with_capacity(rounds);
    start.wait();
    for _ in 0..rounds {
        let t0 = Instant::now();
        let grant = conns
            .call_lock(&mut inst.store, handle, &key, 30, None)
            .expect("call")
            .expect("lock")
            .expect("granted");
        conns
            .call_unlock(&mut inst.store, handle, &key, &grant.token)
            .expect("call")
            .expect("unlock");
        out.push(t0.elapsed());
    }
    out
}
