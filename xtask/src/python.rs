//! The Python client `dflockd-client` in a venv under `target/`, for the
//! cross-client tests. It needs Python ≥ 3.12: the first such interpreter
//! among `$DFLOCKD_PYTHON`, `python3.13`, `python3.12`, `python3` and
//! pyenv's installed versions.

use std::path::PathBuf;
use std::process::Command;

use crate::{root, run, Step};

/// The pinned client; keep in step with `interop/python`.
const CLIENT: &str = "dflockd-client==2.1.1";

/// The venv (the tests run its `bin/python`).
fn venv() -> PathBuf {
    root().join("target/dflockd-client-py")
}

pub fn setup() -> Step {
    let venv = venv();
    let marker = venv.join(CLIENT);
    if marker.exists() && venv.join("bin/python").exists() {
        return Ok(());
    }
    let python = find_python()?;
    eprintln!(
        "python client: {CLIENT} into {} with {}",
        venv.display(),
        python.display()
    );
    run(Command::new(&python)
        .args(["-m", "venv", "--clear"])
        .arg(&venv))
    .map_err(|e| format!("{e}; Debian: apt-get install -y python3-venv"))?;
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        CLIENT,
    ]))?;
    std::fs::write(&marker, "installed by cargo xtask setup\n").map_err(|e| e.to_string())
}

/// The first interpreter ≥ 3.12 (pyenv's by their full path: a pyenv shim
/// refuses a version that is not selected).
fn find_python() -> Result<PathBuf, String> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("DFLOCKD_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    candidates.extend(["python3.13", "python3.12", "python3"].map(PathBuf::from));
    let pyenv_root = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")));
    if let Some(versions) = pyenv_root.map(|r| r.join("versions")) {
        let found = std::fs::read_dir(&versions).into_iter().flatten().flatten();
        candidates.extend(found.map(|e| e.path().join("bin/python3")));
    }
    candidates
        .into_iter()
        .find(|python| {
            Command::new(python)
                .args([
                    "-c",
                    "import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)",
                ])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .ok_or_else(|| {
            format!(
                "the Python client {CLIENT} needs Python >= 3.12 and none was found: install one \
                 (Debian: apt-get install -y python3.12-venv, or pyenv install 3.13) \
                 or set DFLOCKD_PYTHON to its path"
            )
        })
}
