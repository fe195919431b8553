//! Python venvs under `target/`, for the cross-checks against real parts
//! from PyPI: the Python client `dflockd-client` 2.1.1 (interop, soak,
//! bench, and its conformance run against the test server's dialect v2;
//! Python ≥ 3.12) and the Python server `dflockd` 0.5.0 (the differential
//! test against dialect v1; Python ≥ 3.13). The interpreter is the first
//! recent enough among `$DFLOCKD_PYTHON`, `python3.13`, `python3.12`,
//! `python3` and pyenv's installed versions.

use std::path::PathBuf;
use std::process::Command;

use crate::{root, run, Step};

/// One venv with one pinned package.
pub struct Venv {
    /// Under the workspace root; the tests run its `bin/python`.
    dir: &'static str,
    /// The pinned requirement; keep in step with `interop/python`.
    package: &'static str,
    /// The oldest Python the package installs on.
    min: (u32, u32),
}

const CLIENT: Venv = Venv {
    dir: "target/dflockd-client-py",
    package: "dflockd-client==2.1.1",
    min: (3, 12),
};

const SERVER: Venv = Venv {
    dir: "target/dflockd-server-py",
    package: "dflockd==0.5.0",
    min: (3, 13),
};

/// `python -m build`, for the wheel (`cargo xtask dist`).
pub const BUILD: Venv = Venv {
    dir: "target/build-venv",
    package: "build==1.6.1",
    min: (3, 9),
};

pub fn setup() -> Step {
    install(&CLIENT)?;
    install(&SERVER)
}

impl Venv {
    /// The venv's interpreter.
    pub fn python(&self) -> PathBuf {
        root().join(self.dir).join("bin/python")
    }
}

/// Makes `venv` with its package, unless that was done already.
pub fn install(venv: &Venv) -> Step {
    let dir = root().join(venv.dir);
    let marker = dir.join(venv.package);
    if marker.exists() && dir.join("bin/python").exists() {
        return Ok(());
    }
    let python = find_python(venv)?;
    eprintln!(
        "python: {} into {} with {}",
        venv.package,
        dir.display(),
        python.display()
    );
    run(Command::new(&python)
        .args(["-m", "venv", "--clear"])
        .arg(&dir))
    .map_err(|e| format!("{e}; Debian: apt-get install -y python3-venv"))?;
    run(Command::new(dir.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        venv.package,
    ]))?;
    std::fs::write(&marker, "installed by cargo xtask setup\n").map_err(|e| e.to_string())
}

/// The first interpreter recent enough (pyenv's by their full path: a
/// pyenv shim refuses a version that is not selected).
fn find_python(venv: &Venv) -> Result<PathBuf, String> {
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
    let (major, minor) = venv.min;
    let check = format!("import sys; sys.exit(0 if sys.version_info >= ({major}, {minor}) else 1)");
    candidates
        .into_iter()
        .find(|python| {
            Command::new(python)
                .args(["-c", &check])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .ok_or_else(|| {
            format!(
                "{} needs Python >= {major}.{minor} and none was found: install one \
                 (Debian: apt-get install -y python3.{minor}-venv, or pyenv install 3.13) \
                 or set DFLOCKD_PYTHON to its path",
                venv.package
            )
        })
}
