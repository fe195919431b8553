//! The other clients, for cross-client tests: the Python client
//! `dflockd-client` 2.1.1, in a venv put under `target/` by `cargo xtask
//! setup` (its side of the tests in `interop/python`), and this component
//! in the other hosts, Node (jco) and Python (wasmtime-py), prepared by
//! `cargo xtask test-hosts` (their sides in `hosts/*/contend.*`).

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

/// The component in Node through the jco wrapper: `hosts/node/contend.mjs`.
pub fn node_host() -> Command {
    let dir = workspace().join("hosts/node");
    existing(
        dir.join("gen/dflockd.js"),
        "the jco transpilation (cargo xtask test-hosts)",
    );
    let mut cmd = Command::new("node");
    cmd.current_dir(&dir).arg("contend.mjs");
    cmd
}

/// The component in Python through wasmtime-py: `hosts/python/contend.py`.
pub fn python_host() -> Command {
    let python = existing(
        workspace().join("target/hosts-venv/bin/python"),
        "the wasmtime-py venv (cargo xtask test-hosts)",
    );
    let mut cmd = Command::new(python);
    cmd.current_dir(workspace().join("hosts/python"))
        .arg("contend.py");
    cmd
}

/// CLOCK_MONOTONIC in ns: the clock the Python side logs with.
pub fn monotonic_ns() -> i64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}
