//! BENCHMARKS.md and its chart.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::clients::{Client, Sample};
use crate::scale::Held;
use crate::startup::Startup;

/// Everything one bench run measured.
pub struct Results {
    /// The server measured against, as the report names it.
    pub server: String,
    /// `--quick` or the full run.
    pub quick: bool,
    /// Worker counts, in order.
    pub workers: Vec<usize>,
    /// Median sample per (client, workers); `None` where the client failed.
    pub throughput: Vec<(Client, Vec<Option<Sample>>)>,
    /// Why a client's runs failed, if they did.
    pub failures: Vec<String>,
    /// Runs not made, and why (a limit of this machine they would exceed).
    pub skipped: Vec<String>,
    /// Start-up costs.
    pub startup: Option<Startup>,
    /// Held-lock scale: (flavour, result).
    pub scale: Vec<(&'static str, Held)>,
    /// The release component's size in bytes.
    pub component_bytes: u64,
    /// How many repetitions each figure is the median of.
    pub repetitions: usize,
    /// The component in the other hosts: (name, ops/s at 1 worker).
    pub hosts: Vec<crate::hosts::Figure>,
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split(':')
                    .nth(1)
                    .map(str::trim)
                    .map(String::from)
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")?
                    .split_whitespace()
                    .next()?
                    .parse::<f64>()
                    .ok()
            })
        })
        .map_or("?".into(), |kib| {
            format!("{:.0} GiB", kib / 1024.0 / 1024.0)
        });
    format!("{cores} cores ({cpu}), {mem} memory, Linux")
}

fn cell(s: &Option<Sample>) -> String {
    match s {
        Some(s) => format!(
            "{:.1}k ({:.3} / {:.3})",
            s.throughput() / 1e3,
            s.p50_ms,
            s.p99_ms
        ),
        None => "–".into(),
    }
}

fn ratio(a: &Option<Sample>, b: &Option<Sample>, by_latency: bool) -> String {
    match (a, b) {
        (Some(a), Some(b)) if by_latency => format!("{:.2}×", a.p50_ms / b.p50_ms),
        (Some(a), Some(b)) => format!("{:.2}×", a.throughput() / b.throughput()),
        _ => "–".into(),
    }
}

/// The Markdown report; `chart` is the SVG's file name beside it.
pub fn markdown(r: &Results, chart: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Written by `cargo xtask bench{}{}` on {}; {} on loopback (one server, \
         `--max-locks` raised), all clients in one run. Each figure is the median of {} \
         repetition(s). Absolute figures are noisy on a shared 2-core machine: compare ratios \
         within one run.\n",
        if r.quick { " --quick" } else { "" },
        if cfg!(debug_assertions) { " --dev" } else { "" },
        machine(),
        r.server,
        r.repetitions
    );
    if cfg!(debug_assertions) {
        let _ = writeln!(
            md,
            "**A debug build of the hosts (`--dev`): a smoke run; no figure here is a \
             measurement.**\n"
        );
    }
    let _ = writeln!(md, "Release component: {} bytes.\n", r.component_bytes);
    let _ = writeln!(md, "## Acquire+release throughput\n");
    let _ = writeln!(
        md,
        "Each worker does acquire+release on its own key over its own persistent connection \
         (the upstream Go `cmd/bench` shape). Cells: ops/s (p50 ms / p99 ms).\n"
    );
    let _ = write!(md, "| client |");
    for w in &r.workers {
        let _ = write!(md, " {w} worker{} |", if *w == 1 { "" } else { "s" });
    }
    let _ = write!(md, "\n|---|");
    for _ in &r.workers {
        let _ = write!(md, "---|");
    }
    let _ = writeln!(md);
    for (client, samples) in &r.throughput {
        let _ = write!(md, "| {} |", client.name());
        for s in samples {
            let _ = write!(md, " {} |", cell(s));
        }
        let _ = writeln!(md);
    }
    let floor = r
        .throughput
        .iter()
        .find(|(c, _)| *c == Client::RawSocket)
        .map(|(_, s)| s);
    let go = r
        .throughput
        .iter()
        .find(|(c, _)| *c == Client::Go)
        .map(|(_, s)| s);
    let _ = writeln!(md, "\n![throughput against workers]({chart})\n");
    let _ = writeln!(
        md,
        "### The component against the floor and the Go client\n"
    );
    let _ = writeln!(
        md,
        "Throughput ratios (component ÷ other; above 1 is faster), and at 1 worker the p50 \
         ratio to the floor (below 1.15 is the goal).\n"
    );
    let _ = write!(md, "| client | p50 ÷ floor, 1 worker |");
    for w in &r.workers {
        let _ = write!(md, " ÷ floor, {w} | ÷ Go, {w} |");
    }
    let _ = write!(md, "\n|---|---|");
    for _ in &r.workers {
        let _ = write!(md, "---|---|");
    }
    let _ = writeln!(md);
    for (client, samples) in &r.throughput {
        if !matches!(
            client,
            Client::ComponentConnection
                | Client::ComponentSyncBindings
                | Client::ComponentLock
                | Client::ComponentAsyncLock
        ) {
            continue;
        }
        let first_floor = floor.and_then(|f| f.first()).cloned().flatten();
        let _ = write!(
            md,
            "| {} | {} |",
            client.name(),
            ratio(&samples[0], &first_floor, true)
        );
        for (i, s) in samples.iter().enumerate() {
            let f = floor.and_then(|f| f.get(i)).cloned().flatten();
            let g = go.and_then(|g| g.get(i)).cloned().flatten();
            let _ = write!(md, " {} | {} |", ratio(s, &f, false), ratio(s, &g, false));
        }
        let _ = writeln!(md);
    }
    if !r.failures.is_empty() {
        let _ = writeln!(md, "\nRuns that failed:\n");
        for f in &r.failures {
            let _ = writeln!(md, "- {f}");
        }
    }
    if !r.skipped.is_empty() {
        let _ = writeln!(md, "\nRuns not made:\n");
        for s in &r.skipped {
            let _ = writeln!(md, "- {s}");
        }
    }
    hosts_section(&mut md, r);
    if let Some(s) = r.startup {
        let _ = writeln!(md, "\n## Start-up\n");
        let _ = writeln!(md, "| step | ms |\n|---|---|");
        let _ = writeln!(
            md,
            "| compile the component (`Runtime::new`, no cache) | {:.1} |",
            s.compile_ms
        );
        let _ = writeln!(
            md,
            "| load it from the on-disk cache | {:.2} |",
            s.cached_load_ms
        );
        let _ = writeln!(md, "| instantiate (median) | {:.3} |", s.instantiate_ms);
        let _ = writeln!(
            md,
            "| first acquire of a fresh lock: build, connect, acquire, release (median) | {:.3} |",
            s.first_acquire_ms
        );
    }
    if !r.scale.is_empty() {
        let _ = writeln!(md, "\n## Many held locks in one process\n");
        let _ = writeln!(
            md,
            "Each lock is held with a {} s lease for 3 lease periods; \"lost\" counts leases \
             reported lost or not held at the end. Measured in a child process of its own. \
             RSS counts the compiled component's image once per instance, though its pages \
             are shared (page cache); PSS divides each shared page among its sharers, so it \
             is the memory a lock really adds. Linux allows a process 65,530 mappings by \
             default (`vm.max_map_count`). `blocking` and `async` are the host's `Lock` \
             (blocking ones in the runtime's instances, one per core; async ones in an instance \
             per worker thread of the bench's 2-worker tokio runtime); `one-instance` holds all \
             of them in one instance through the WIT's non-blocking surface (`start`, \
             `driver.pollables`, `driver.poll-events`) on the bare contract.\n",
            crate::scale::LEASE_S
        );
        let _ = writeln!(
            md,
            "| flavour | held locks | RSS per lock (KiB) | PSS per lock (KiB) | mappings per lock | OS threads | time to acquire all (s) | lost |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|---|---|---|");
        for (flavour, h) in &r.scale {
            let _ = writeln!(
                md,
                "| {flavour} | {} | {:.1} | {:.1} | {:.1} | {} | {:.2} | {} |",
                h.locks,
                h.rss_kib_per_lock,
                h.pss_kib_per_lock,
                h.maps_per_lock,
                h.threads,
                h.acquire_all_s,
                h.lost
            );
        }
    }
    history(&mut md);
    md
}

/// Throughput against workers, one line per client, as SVG.
pub fn chart(r: &Results, path: &Path) -> Result<(), String> {
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let top = r
        .throughput
        .iter()
        .flat_map(|(_, s)| s.iter().flatten().map(Sample::throughput))
        .fold(1.0, f64::max)
        * 1.1;
    let x_max = r.workers.iter().copied().max().unwrap_or(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption("acquire+release ops/s against workers", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((1f64..x_max * 1.2).log_scale(), 0f64..top)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("workers (log scale)")
        .y_desc("ops/s")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{:.0}k", y / 1e3))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (client, samples)) in r.throughput.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> = r
            .workers
            .iter()
            .zip(samples)
            .filter_map(|(w, s)| s.map(|s| (*w as f64, s.throughput())))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(client.name())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// The same component in every host, at 1 worker: the Rust host's figures
/// from the table above beside the hosts of `hosts/`.
fn hosts_section(md: &mut String, r: &Results) {
    let _ = writeln!(md, "\n## The same component in other hosts\n");
    let _ = writeln!(
        md,
        "Acquire+release of one key at 1 worker, the same `dflockd_component.wasm` in each \
         host, against the same server in the same run. Node runs jco 1.35.0's transpilation \
         on V8 (`node-jco`: the wrapper, the component on the application's thread with \
         WASI sockets of its own on the event loop, each call started without waiting; \
         `node-jco-raw`: the blocking exports with jco's preview2-shim, whose sockets are \
         a synchronous round trip to its I/O thread per WASI call); Python runs \
         wasmtime-py 47.0.1 (`python-wasmtime`: the wrapper).\n"
    );
    let _ = writeln!(md, "| host | ops/s, 1 worker |\n|---|---|");
    let at_one = r.workers.iter().position(|w| *w == 1);
    for (client, samples) in &r.throughput {
        if !matches!(client, Client::ComponentLock | Client::ComponentAsyncLock) {
            continue;
        }
        if let Some(Some(s)) = at_one.and_then(|i| samples.get(i)) {
            let _ = writeln!(
                md,
                "| Rust (`dflockd-host`, wasmtime 48): {} | {:.0} |",
                client.name(),
                s.throughput()
            );
        }
    }
    for (name, ops) in &r.hosts {
        let _ = writeln!(md, "| {name} | {ops:.0} |");
    }
}

/// The measurements made by hand and the analyses of earlier runs, below
/// this run's figures (their headings one level down).
fn history(md: &mut String) {
    let _ = writeln!(md, "\n## History and analysis\n");
    let _ = writeln!(
        md,
        "Measured in earlier runs or by hand, kept for what they explain; the figures above \
         are the current ones."
    );
    for (title, text) in [
        (
            "The test server against dflockd v1.10.0",
            include_str!("../test-server.md"),
        ),
        ("Before and after issue 10", include_str!("../issue-10.md")),
        (
            "Many locks in one instance (issue 21)",
            include_str!("../issue-21.md"),
        ),
        (
            "Where the time goes",
            include_str!("../where-the-time-goes.md"),
        ),
    ] {
        let _ = writeln!(md, "\n### {title}\n");
        let _ = write!(md, "{}", text.replace("\n### ", "\n#### "));
    }
}
