//! The test server's faithfulness, shown by real parts from PyPI (each
//! script starts its own servers; they check the test server even when
//! `DFLOCKD_BIN` points the rest of the suite at a real dflockd):
//! - the Python client `dflockd-client` 2.1.1, written for dflockd 2.x,
//!   runs a conformance script against dialect `v2`
//!   (`interop/python/conformance_v2.py`);
//! - generated sequences of `l r n e w` give the same statuses in the same
//!   order from dialect `v1` and from the Python server `dflockd` 0.5.0,
//!   tokens masked and 0.5.0's known differences folded
//!   (`interop/python/differential.py`).

use std::path::PathBuf;
use std::process::Command;

use host_tests::server::testserver_path;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A venv's interpreter, made by `cargo xtask setup`.
fn venv_python(dir: &str) -> PathBuf {
    let python = workspace().join(dir).join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `cargo xtask setup`",
        python.display()
    );
    python
}

/// Runs a script of `interop/python`; its exit status and all it printed.
fn script(python: PathBuf, name: &str, args: &[&str]) -> (bool, String) {
    let server = testserver_path();
    assert!(
        server.exists(),
        "run `cargo xtask setup`: it builds the test server"
    );
    let out = Command::new(&python)
        .arg(workspace().join("interop/python").join(name))
        .args(args)
        .env_remove("DFLOCKD_BIN")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
    let said = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[test]
fn the_python_client_2_1_1_finds_dialect_v2_as_dflockd_2_1_documents_it() {
    let server = testserver_path().display().to_string();
    let python = venv_python("target/dflockd-client-py");
    let (ok, said) = script(python, "conformance_v2.py", &["--server-bin", &server]);
    let ran = said.lines().find_map(|l| {
        l.strip_prefix("Ran ")?
            .split(' ')
            .next()?
            .parse::<u32>()
            .ok()
    });
    assert!(ok && said.contains("\nOK"), "{said}");
    assert!(ran >= Some(13) && !said.contains("skipped"), "{said}");
}

#[test]
fn dialect_v1_answers_generated_sequences_as_the_python_server_0_5_0_does() {
    let server = testserver_path().display().to_string();
    let old = venv_python("target/dflockd-server-py")
        .display()
        .to_string();
    let python = venv_python("target/dflockd-client-py");
    let args = ["--testserver", &server, "--python-server-python", &old];
    let (ok, said) = script(python, "differential.py", &args);
    assert!(
        ok && said.contains("differential: 8 passed, 0 failed"),
        "{said}"
    );
}
