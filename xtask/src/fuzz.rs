//! `cargo xtask fuzz --seconds N`: every cargo-fuzz target in `fuzz/` for N
//! seconds each, on nightly with AddressSanitizer, from the seeds kept in
//! `fuzz/seeds/` (real dflockd v1.10.0 replies) into a corpus under
//! `target/fuzz-corpus/`. Installs nightly and cargo-fuzz when missing.

use std::process::Command;

use crate::{root, run, Step};

/// The targets, in `fuzz/Cargo.toml`.
const TARGETS: [&str; 4] = ["reply", "stats", "request", "session"];

pub fn fuzz() -> Step {
    let seconds = seconds()?;
    setup()?;
    let mut total: u64 = 0;
    for target in TARGETS {
        let corpus = root().join("target/fuzz-corpus").join(target);
        std::fs::create_dir_all(&corpus).map_err(|e| format!("{}: {e}", corpus.display()))?;
        let mut cmd = Command::new("cargo");
        cmd.current_dir(root())
            .args(["+nightly", "fuzz", "run", "-O", target])
            .arg(&corpus);
        let seeds = root().join("fuzz/seeds").join(target);
        if seeds.is_dir() {
            cmd.arg(&seeds);
        }
        cmd.args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-print_final_stats=1",
        ]);
        eprintln!("+ {cmd:?}");
        let out = cmd
            .output()
            .map_err(|e| format!("could not start cargo fuzz: {e}"))?;
        let log = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!(
                "the {target} target failed ({}); the input is under fuzz/artifacts/{target}/:\n{}",
                out.status,
                tail.join("\n")
            ));
        }
        let runs = executions(&log)
            .ok_or_else(|| format!("the {target} target printed no execution count"))?;
        eprintln!("{target}: {runs} executions in {seconds} s, no crash");
        total += runs;
    }
    eprintln!("fuzz: {total} executions in all, no crash");
    Ok(())
}

/// `--seconds N` after the command; 60 by default.
fn seconds() -> Result<u64, String> {
    let args: Vec<String> = std::env::args().skip(2).collect();
    match args.iter().position(|a| a == "--seconds") {
        None => Ok(60),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .ok_or_else(|| "--seconds takes a positive whole number".into()),
    }
}

/// libFuzzer's `stat::number_of_executed_units: N`.
fn executions(log: &str) -> Option<u64> {
    log.lines()
        .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .and_then(|n| n.trim().parse().ok())
}

/// A nightly toolchain and cargo-fuzz.
fn setup() -> Step {
    let works = |args: &[&str]| {
        Command::new("cargo")
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !works(&["+nightly", "--version"]) {
        run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
        ]))
        .map_err(|e| {
            format!("{e}; cargo-fuzz needs nightly: `rustup toolchain install nightly`")
        })?;
    }
    if !works(&["+nightly", "fuzz", "--version"]) {
        run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))
            .map_err(|e| format!("{e}; install it with `cargo install cargo-fuzz`"))?;
    }
    Ok(())
}
