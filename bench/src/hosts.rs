//! The same component in the other hosts of `hosts/`: Node through jco
//! (the wrapper, whose calls cross to a worker thread, and the bindings
//! called inside that worker) and Python through wasmtime-py, each
//! acquire+release in a loop at 1 worker for a fixed time, in a process of
//! its own. `cargo xtask bench` prepares them (`cargo xtask test-hosts`'s
//! set-up) first.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

/// One host's figure: its name (as the runner prints it) and ops/s.
pub type Figure = (String, f64);

fn hosts_dir() -> PathBuf {
    crate::workspace().join("hosts")
}

/// Every `NAME ops_per_s=X` line of a bench script's output.
fn figures(stdout: &str) -> Vec<Figure> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let value = words.find_map(|w| w.strip_prefix("ops_per_s="))?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// Runs each host's bench script for `seconds` against `addr`; the
/// figures, or why a host gave none.
pub fn measure(addr: SocketAddr, seconds: f64) -> Result<Vec<Figure>, String> {
    let python = crate::workspace().join("target/hosts-venv/bin/python");
    let runs = [
        (PathBuf::from("node"), hosts_dir().join("node/bench.mjs")),
        (python, hosts_dir().join("python/bench.py")),
    ];
    let mut all = Vec::new();
    for (program, script) in runs {
        let out = Command::new(&program)
            .arg(&script)
            .args([
                addr.ip().to_string(),
                addr.port().to_string(),
                seconds.to_string(),
            ])
            .env("DFLOCKD_COMPONENT", host_tests::component_path())
            .output()
            .map_err(|e| {
                format!(
                    "{}: {e} (run `cargo xtask test-hosts` first)",
                    program.display()
                )
            })?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let found = figures(&stdout);
        if !out.status.success() || found.is_empty() {
            return Err(format!(
                "{} gave no figure ({}): {stdout}{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        all.extend(found);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_every_figure_line() {
        let out =
            "node-jco ops_per_s=812 ops=4060\nnoise\nnode-jco-raw ops_per_s=1500.5 ops=7502\n";
        assert_eq!(
            super::figures(out),
            vec![("node-jco".into(), 812.0), ("node-jco-raw".into(), 1500.5)]
        );
    }
}
