//! What the other hosts need (`hosts/`): Node with the pinned jco packages
//! and the component transpiled by jco, and a venv with the pinned
//! wasmtime-py. Installed when missing, or a loud failure saying how.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{root, run, Step};

fn node_dir() -> PathBuf {
    root().join("hosts/node")
}

/// The venv `host-tests/tests/hosts.rs` runs the Python host with.
fn venv() -> PathBuf {
    root().join("target/hosts-venv")
}

fn works(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Node and npm; on a fresh Debian machine as root, from apt.
fn setup_node() -> Step {
    if works("node", "--version") && works("npm", "--version") {
        return Ok(());
    }
    const INSTALL: &str = "apt-get update && apt-get install -y nodejs npm";
    if !is_root() || !works("apt-get", "--version") {
        return Err(format!(
            "Node ≥ 20 and npm are needed for the jco host: run `{INSTALL}`"
        ));
    }
    eprintln!("node is missing: {INSTALL}");
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "nodejs", "npm"])
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// Whether `marker` records exactly `contents` (what was installed last).
fn installed(marker: &Path, contents: &str) -> bool {
    std::fs::read_to_string(marker).is_ok_and(|m| m == contents)
}

/// `npm ci` from the committed lock file, again whenever it changes.
fn setup_npm() -> Step {
    let dir = node_dir();
    let lock = std::fs::read_to_string(dir.join("package-lock.json")).map_err(|e| e.to_string())?;
    let marker = dir.join("node_modules/.installed-lock");
    if installed(&marker, &lock) {
        return Ok(());
    }
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir))?;
    std::fs::write(&marker, lock).map_err(|e| e.to_string())
}

/// The venv with `hosts/python/requirements.txt`, again whenever it changes.
fn setup_python() -> Step {
    let requirements = root().join("hosts/python/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).map_err(|e| e.to_string())?;
    let venv = venv();
    let marker = venv.join("installed-requirements.txt");
    if installed(&marker, &wanted) && venv.join("bin/python").exists() {
        return Ok(());
    }
    eprintln!(
        "python host: {} into {}",
        requirements.display(),
        venv.display()
    );
    run(Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&venv))
    .map_err(|e| format!("{e}; Debian: apt-get install -y python3-venv"))?;
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&requirements))?;
    std::fs::write(&marker, wanted).map_err(|e| e.to_string())
}

/// The pinned wac, built from crates.io into `target/tools` (without the
/// registry client, which `wac plug` does not need).
const WAC: &str = "0.12.0";

fn setup_wac() -> Result<PathBuf, String> {
    let tools = root().join("target/tools");
    let wac = tools.join("bin/wac");
    let version = Command::new(&wac).arg("--version").output();
    if version.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(WAC)) {
        return Ok(wac);
    }
    run(crate::cargo()
        .args([
            "install",
            "wac-cli",
            "--version",
            WAC,
            "--locked",
            "--no-default-features",
        ])
        .arg("--root")
        .arg(&tools))?;
    Ok(wac)
}

/// `examples/compose`: the app component, plugged with `component` by wac.
fn compose(component: &Path) -> Step {
    let wac = setup_wac()?;
    run(crate::cargo().args([
        "build",
        "--release",
        "--target",
        crate::TARGET,
        "-p",
        "compose-app",
    ]))?;
    let app = root()
        .join("target")
        .join(crate::TARGET)
        .join("release/compose-app.wasm");
    let out = root().join("target/compose");
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    run(Command::new(wac)
        .arg("plug")
        .arg(app)
        .arg("--plug")
        .arg(component)
        .arg("-o")
        .arg(out.join("composed.wasm")))?;
    // What was plugged in: `host-tests/tests/compose.rs` checks that it is
    // the dist artifact a user pulls.
    let from = component.canonicalize().map_err(|e| e.to_string())?;
    std::fs::write(out.join("plugged-from"), from.to_string_lossy().as_bytes())
        .map_err(|e| e.to_string())
}

/// Node with the npm packages, and the wasmtime-py venv.
pub fn tools() -> Step {
    setup_node()?;
    setup_npm()?;
    setup_python()
}

/// Everything the hosts need: the npm packages and the component
/// transpiled by jco, the wasmtime-py venv, and the composed app.
pub fn setup(component: &Path) -> Step {
    tools()?;
    run(Command::new("node")
        .arg(node_dir().join("transpile.mjs"))
        .arg(component))?;
    compose(component)
}
