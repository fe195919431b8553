//! The server the tests, the demo and the bench start: the project's own
//! test server (`testserver/`, built in release at
//! `target/release/dflockd-testserver`), or a real dflockd binary the user
//! names in `DFLOCKD_BIN` (the harness reads its dialect from `--version`).
//! The test server is built either way: the cross-checks of its
//! faithfulness run on it.

use std::path::PathBuf;
use std::process::Command;

use crate::{cargo, run, Step};

pub fn setup() -> Step {
    if let Some(bin) = std::env::var_os("DFLOCKD_BIN").map(PathBuf::from) {
        let out = Command::new(&bin)
            .arg("--version")
            .output()
            .map_err(|e| format!("DFLOCKD_BIN={}: {e}", bin.display()))?;
        let version = String::from_utf8_lossy(&out.stdout);
        eprintln!(
            "server: DFLOCKD_BIN={} (version {})",
            bin.display(),
            version.trim()
        );
    }
    run(cargo().args(["build", "--release", "-p", "dflockd-testserver"]))
}
