//! `cargo xtask <command>`: set-up, build, demo, test and lint in one place.
//!
//! Every command installs what it needs (and says what it installs) or fails
//! loudly with what is missing; nothing is skipped silently.

use std::path::{Path, PathBuf};
use std::process::{exit, Command};

mod consume;
mod dist;
mod fuzz;
mod hosts;
mod packages;
mod python;
mod server;

pub(crate) const TARGET: &str = "wasm32-wasip2";
const USAGE: &str = "usage: cargo xtask <build|dist|consume|demo|test|test-hosts|bench|soak|fuzz|lint|setup>
  setup  install what the tests need if missing: the wasm32-wasip2 target, clang, the
         test server (built from testserver/; DFLOCKD_BIN names a real dflockd instead),
         and the Python client in a venv
  build  build the component (profile guest: for size) and print its size
  dist   every artifact a user installs, in target/dist/: the component with its metadata,
         its WIT package, an OCI layout, the crates, the npm tarball, the wheel, SHA256SUMS
  consume  the consumption tests: dist's crates, npm package and wheel installed and run
         outside the workspace (after dist; part of test)
  demo   build, load it in wasmtime and show it working (the README's main command)
  test   unit tests, the component build and dist, the host tests in wasmtime (test-hosts
         included, on the dist component), then the consumption tests (each artifact
         installed and run outside the workspace)
  test-hosts  the conformance scenarios in the Rust host, Node (jco) and Python (wasmtime-py),
         and the composed app; installs the npm packages and the wasmtime-py venv if missing
  bench  [--quick] [--dev] the component beside the Python client and a raw socket (and
         the Go client's cmd/bench if DFLOCKD_GO_BENCH names one), release builds; writes
         BENCHMARKS.md (--quick: target/bench-quick/; --dev: the test profile's build, a
         smoke run whose figures are not measurements)
  soak   [--minutes M] [--dev] the component (blocking and async, and in Node and Python) and the
         Python client on shared keys against one server for M minutes (default 10) with pauses and a
         restart; checks that no two holders overlapped, no connection leaked, memory is flat
  fuzz   [--seconds N] each cargo-fuzz target for N s (default 60) on nightly, from the
         seeds in fuzz/seeds/; installs nightly and cargo-fuzz if missing
  lint   cargo fmt --check, cargo clippy -D warnings (native and wasm32), and the
         published crates' docs without a warning";

fn main() {
    let command = std::env::args().nth(1).unwrap_or_default();
    let result = match command.as_str() {
        "setup" => setup(),
        "build" => setup().and_then(|()| build()).map(drop),
        "demo" => setup().and_then(|()| build()).and_then(|_| demo()),
        "test" => setup().and_then(|()| test()),
        "test-hosts" => setup().and_then(|()| test_hosts()),
        "bench" => setup()
            .and_then(|()| build())
            .and_then(|wasm| hosts::setup(&wasm))
            .and_then(|()| bench()),
        "soak" => setup()
            .and_then(|()| build())
            .and_then(|wasm| hosts::setup(&wasm))
            .and_then(|()| soak()),
        "fuzz" => fuzz::fuzz(),
        "dist" => setup()
            .and_then(|()| build())
            .and_then(|wasm| dist::dist(&wasm)),
        "consume" => setup().and_then(|()| consume::all()),
        "lint" => setup().and_then(|()| lint()),
        _ => Err(USAGE.to_string()),
    };
    if let Err(message) = result {
        eprintln!("xtask {command}: {message}");
        exit(1);
    }
}

pub(crate) type Step = Result<(), String>;

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

pub(crate) fn run(cmd: &mut Command) -> Step {
    eprintln!("+ {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("could not start {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

fn setup() -> Step {
    setup_target()?;
    setup_clang()?;
    server::setup()?;
    python::setup()
}

/// ring (rustls' crypto) compiles C for wasm32 and needs clang for that.
/// As root with apt-get (CI, a fresh machine) it is installed; otherwise
/// the exact command is given.
fn setup_clang() -> Step {
    let works = |cmd: &str| {
        Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works("clang") {
        return Ok(());
    }
    const INSTALL: &str = "apt-get update && apt-get install -y clang";
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !root || !works("apt-get") {
        return Err(format!(
            "clang is needed to build ring (TLS) for {TARGET}: run `{INSTALL}` (Debian) or install clang"
        ));
    }
    eprintln!("clang is missing: {INSTALL}");
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "clang"])
        .env("DEBIAN_FRONTEND", "noninteractive"))
    .map_err(|e| format!("{e}; install clang yourself: {INSTALL}"))
}

/// Installs the wasm target when rustup is there and the target is not.
fn setup_target() -> Step {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| {
            format!("rustc not found ({e}); install Rust with rustup: https://rustup.rs")
        })?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
    if Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .exists()
    {
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", TARGET])).map_err(|e| {
        format!("the {TARGET} target is missing and could not be installed: {e}; run `rustup target add {TARGET}`")
    })
}

/// The release component (profile `guest`: built for size); returns its path.
fn build() -> Result<PathBuf, String> {
    run(cargo().args([
        "build",
        "--profile",
        "guest",
        "--target",
        TARGET,
        "-p",
        "dflockd-component",
    ]))?;
    let wasm = root()
        .join("target")
        .join(TARGET)
        .join("guest/dflockd_component.wasm");
    let size = std::fs::metadata(&wasm)
        .map_err(|e| format!("{}: {e}", wasm.display()))?
        .len();
    eprintln!(
        "component: {} ({size} bytes, {:.0} KiB)",
        wasm.display(),
        size as f64 / 1024.0
    );
    Ok(wasm)
}

fn demo() -> Step {
    run(cargo().args([
        "build",
        "--quiet",
        "-p",
        "dflockd-examples",
        "-p",
        "dflock",
        "--bins",
    ]))?;
    let examples = root().join("target/debug");
    run(cargo()
        .args(["run", "--quiet", "-p", "host-tests", "--bin", "demo"])
        .env("DFLOCKD_EXAMPLES_DIR", examples))
}

fn test() -> Step {
    run(cargo().args([
        "test",
        "-p",
        "dflockd-core",
        "-p",
        "dflockd-component",
        "-p",
        "dflockd-testserver",
    ]))?;
    // The artifacts first: the hosts' tests then run the component as a
    // user gets it (transpiled from it, and plugged by wac from it).
    dist::dist(&build()?)?;
    hosts::setup(&dist::dir().join(dist::COMPONENT_FILE))?;
    run(cargo().args([
        "test",
        "-p",
        "dflockd-host",
        "-p",
        "host-tests",
        "-p",
        "dflockd-examples",
        "-p",
        "dflock",
    ]))?;
    consume::all()
}

fn test_hosts() -> Step {
    dist::dist(&build()?)?;
    hosts::setup(&dist::dir().join(dist::COMPONENT_FILE))?;
    run(cargo().args([
        "test",
        "-p",
        "host-tests",
        "--test",
        "hosts",
        "--test",
        "compose",
    ]))
}

/// `cargo run -p dflockd-bench`: a release build, or with `--dev` the
/// test profile's, whose dependencies `cargo xtask test` has built already:
/// CI's smoke runs (`bench --quick`, `soak`) then skip the ~8-minute cold
/// LTO build of wasmtime, and their figures are not measurements.
fn bench_binary() -> Command {
    let dev = std::env::args().skip(2).any(|a| a == "--dev");
    let mut cmd = cargo();
    cmd.args(["run", "--quiet", "-p", "dflockd-bench"]);
    if !dev {
        cmd.arg("--release");
    }
    cmd.arg("--");
    cmd
}

fn bench() -> Step {
    let quick = std::env::args().skip(2).any(|a| a == "--quick");
    let mut cmd = bench_binary();
    if quick {
        cmd.arg("--quick");
    }
    run(&mut cmd)
}

fn soak() -> Step {
    let args: Vec<String> = std::env::args().skip(2).collect();
    let minutes = match args.iter().position(|a| a == "--minutes") {
        None => "10".to_string(),
        Some(i) => {
            let m = args.get(i + 1).ok_or("--minutes needs a number")?;
            m.parse::<f64>()
                .map_err(|_| format!("--minutes {m}: not a number"))?;
            m.clone()
        }
    };
    run(bench_binary().args(["soak", &minutes]))
}

fn lint() -> Step {
    run(cargo().args(["fmt", "--all", "--check"]))?;
    // The fuzz targets are a workspace of their own (nightly, sanitizers).
    run(cargo().args(["fmt", "--check", "--manifest-path", "fuzz/Cargo.toml"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args([
        "clippy",
        "-p",
        "dflockd-component",
        "--target",
        TARGET,
        "--",
        "-D",
        "warnings",
    ]))?;
    // The published crates' documentation, as docs.rs builds it: no
    // warning, no broken link (the dependencies are already checked above).
    run(cargo()
        .args([
            "doc",
            "--no-deps",
            "-p",
            "dflockd-core",
            "-p",
            "dflockd-host",
        ])
        .env("RUSTDOCFLAGS", "-D warnings"))
}
