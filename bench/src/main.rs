//! `cargo xtask bench [--quick]`: the component beside the Python client
//! and a raw socket (and the Go client's `cmd/bench` when
//! `DFLOCKD_GO_BENCH` names one), in one run against one server it starts
//! itself (the test server in dialect v2, or `DFLOCKD_BIN`); writes
//! BENCHMARKS.md and its chart.
//!
//! `--quick` (seconds; CI's smoke test) writes to `target/bench-quick/`
//! instead of the repository. The child modes `startup ADDR` and
//! `scale blocking|async|one-instance N ADDR` measure in a process of their own; `one
//! CLIENT WORKERS ROUNDS ADDR` runs one client alone, for a profiler; `soak
//! MINUTES` is `cargo xtask soak` (see `soak`).

mod clients;
mod hosts;
mod one_instance;
mod report;
mod scale;
mod soak;
mod startup;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

use clients::{Client, Sample};
use report::Results;

/// The number after the word `name` in `text` (`... name 12.5 ...`): how the
/// child modes and the Python bench report their figures.
pub fn named_value(text: &str, name: &str) -> Option<f64> {
    let mut words = text.split_whitespace();
    words.find(|w| *w == name)?;
    words.next()?.parse().ok()
}

pub(crate) fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    let addr = |i: usize| -> SocketAddr { arg(i).parse().expect("a server address") };
    match arg(0) {
        "startup" => println!("{}", startup::measure(addr(1)).to_line()),
        "scale" => {
            let n: usize = arg(2).parse().expect("a lock count");
            let held = match arg(1) {
                "blocking" => scale::blocking(addr(3), n),
                "one-instance" => scale::one_instance(addr(3), n),
                _ => scale::asynchronous(addr(3), n),
            };
            println!("{}", held.to_line());
        }
        "soak" => {
            let minutes: f64 = arg(1).parse().expect("the minutes to run");
            if let Err(e) = soak::run(minutes) {
                eprintln!("soak failed: {e}");
                std::process::exit(1);
            }
        }
        "one" => {
            let client = Client::ALL
                .into_iter()
                .find(|c| c.slug() == arg(1))
                .expect("a client: raw, go, python-low, python-lock, connection, sync-bindings, lock, async-lock, one-instance");
            let number = |i: usize| -> usize { arg(i).parse().expect("a number") };
            let (workers, rounds) = (number(2), number(3));
            let cpu_before = process_cpu();
            let sample = client.run(addr(4), workers, rounds).expect("run");
            let cpu = process_cpu()
                .zip(cpu_before)
                .map(|(after, before)| after - before);
            println!(
                "{} ops/s, p50 {:.3} ms, p99 {:.3} ms{}",
                sample.throughput() as u64,
                sample.p50_ms,
                sample.p99_ms,
                cpu.map_or(String::new(), |cpu| format!(
                    ", CPU {:.1} µs per op",
                    cpu.as_secs_f64() * 1e6 / (workers * rounds) as f64
                ))
            );
        }
        "" | "--quick" => run(arg(0) == "--quick"),
        "-h" | "--help" => println!("{USAGE}"),
        other => {
            // Not a full run: that takes a quarter of an hour.
            eprintln!("dflockd-bench: unknown argument `{other}`\n{USAGE}");
            std::process::exit(2);
        }
    }
}

/// The CPU time of this process and of its children waited for (user and
/// system, from `/proc/self/stat`): for `one`, whose figure is steadier
/// than throughput on a shared machine. It counts the set-up too (objects
/// built, connections opened): a few ms against seconds of rounds.
fn process_cpu() -> Option<std::time::Duration> {
    // Linux reports these in USER_HZ, 100 per second on every architecture.
    const TICKS_PER_S: u64 = 100;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name, which may hold spaces, in parentheses:
    // state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..15)?
        .iter()
        .map(|f| f.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    Some(std::time::Duration::from_millis(ticks * 1000 / TICKS_PER_S))
}

const USAGE: &str = "usage: dflockd-bench [--quick]   (the full run: writes BENCHMARKS.md; \
cargo xtask bench)
       dflockd-bench one CLIENT WORKERS ROUNDS ADDR
       dflockd-bench startup ADDR
       dflockd-bench scale blocking|async|one-instance N ADDR
       dflockd-bench soak MINUTES";

fn run(quick: bool) {
    let dialect = host_tests::server::newest_dialect();
    let server = host_tests::server::dflockd_in(dialect, &["--max-locks", "1000000"]);
    let workers: Vec<usize> = if quick {
        vec![1, 10]
    } else {
        vec![1, 10, 50, 200]
    };
    let repetitions = if quick { 1 } else { 3 };
    let mut failures = Vec::new();
    let mut throughput = Vec::new();
    for client in Client::measured() {
        let mut per_workers = Vec::new();
        for &w in &workers {
            let rounds = if quick {
                (400 / w).max(20)
            } else {
                (12_000 / w).max(100)
            };
            let mut runs: Vec<Sample> = Vec::new();
            for _ in 0..repetitions {
                match client.run(server.addr, w, rounds) {
                    Ok(sample) => runs.push(sample),
                    Err(e) => failures.push(format!("{} at {w} workers: {e}", client.name())),
                }
            }
            runs.sort_by(|a, b| a.throughput().total_cmp(&b.throughput()));
            let median = runs.get(runs.len() / 2).copied();
            if let Some(s) = median {
                eprintln!(
                    "{:<34} {w:>3} workers: {:>9.0} ops/s  p50 {:.3} ms  p99 {:.3} ms",
                    client.name(),
                    s.throughput(),
                    s.p50_ms,
                    s.p99_ms
                );
            }
            per_workers.push(median);
        }
        throughput.push((client, per_workers));
    }
    let startup = match child(&["startup", &server.addr.to_string()]) {
        Ok(line) => startup::Startup::from_line(&line),
        Err(e) => {
            failures.push(format!("start-up: {e}"));
            None
        }
    };
    let sizes: &[usize] = if quick { &[100] } else { &[100, 1_000, 10_000] };
    let mut scale = Vec::new();
    let mut skipped = Vec::new();
    for flavour in ["blocking", "async", "one-instance"] {
        for &n in sizes {
            if let Some(why) = scale::beyond_limits(n) {
                skipped.push(format!("{n} {flavour} locks: {why}"));
                continue;
            }
            let line = child(&["scale", flavour, &n.to_string(), &server.addr.to_string()]);
            match line.map(|l| scale::Held::from_line(&l)) {
                Ok(Some(held)) => scale.push((flavour, held)),
                Ok(None) => failures.push(format!("{n} {flavour} locks: unreadable result")),
                Err(e) => failures.push(format!("{n} {flavour} locks: {e}")),
            }
        }
    }
    let hosts = match hosts::measure(server.addr, if quick { 1.0 } else { 5.0 }) {
        Ok(figures) => figures,
        Err(e) => {
            failures.push(format!("other hosts: {e}"));
            Vec::new()
        }
    };
    let component = host_tests::component_path();
    let results = Results {
        server: host_tests::server::describe(server.dialect),
        hosts,
        quick,
        workers,
        throughput,
        failures,
        skipped,
        startup,
        scale,
        component_bytes: std::fs::metadata(&component).map_or(0, |m| m.len()),
        repetitions,
    };
    let dir = if quick {
        workspace().join("target/bench-quick")
    } else {
        workspace()
    };
    let charts = dir.join("benchmarks");
    std::fs::create_dir_all(&charts).expect("the output folder");
    report::chart(&results, &charts.join("throughput.svg")).expect("the chart");
    let md = report::markdown(&results, "benchmarks/throughput.svg");
    let out = dir.join("BENCHMARKS.md");
    std::fs::write(&out, md).expect("write BENCHMARKS.md");
    eprintln!("wrote {}", out.display());
    if !results.failures.is_empty() {
        eprintln!("failures: {:#?}", results.failures);
        std::process::exit(1);
    }
}

/// Runs this program in a child mode; its last stdout line, or why it failed
/// (the line after its panic message).
fn child(args: &[&str]) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .args(args)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let mut lines = err.lines();
        let why = lines
            .find(|l| l.contains("panicked at"))
            .and_then(|_| lines.next())
            .unwrap_or("no panic message");
        return Err(format!("{} ({why})", out.status));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(String::from)
        .ok_or_else(|| "no output".into())
}
