//! The other client, for cross-client tests: the Python client
//! `dflockd-client` 2.1.1, in a venv put under `target/` by `cargo xtask
//! setup` (its side of the tests in `interop/python`).

use std::path::PathBuf;
use std::process::Command;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn existing(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask setup` (it builds {what})",
        path.display()
    );
    path
}

/// `interop/python/dflockd_interop.py` on the Python client's venv.
pub fn python_client() -> Command {
    let python = existing(
        workspace().join("target/dflockd-client-py/bin/python"),
        "the Python client's venv",
    );
    let mut cmd = Command::new(python);
    cmd.arg(workspace().join("interop/python/dflockd_interop.py"));
    cmd
}

/// CLOCK_MONOTONIC in ns: the clock the Python side logs with.
pub fn monotonic_ns() -> i64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}
