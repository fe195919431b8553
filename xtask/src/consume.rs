//! The consumption tests: each artifact of `target/dist/` installed as a
//! user installs it, in a fresh directory outside the workspace, and run
//! against the test server. Nothing here reads the workspace's sources.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::dist::{self, Project};
use crate::{root, run, Step};

/// A test server (dialect v2, as the demo) for the consumers; killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start() -> Result<Self, String> {
        let bin = root().join("target/release/dflockd-testserver");
        let mut child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", "0", "--dialect", "v2"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e} (cargo xtask setup builds it)", bin.display()))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .ok_or("the test server exited before listening")?
                .map_err(|e| e.to_string())?;
            if let Some(addr) = line.split("addr=").nth(1) {
                break addr
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
            }
        };
        // Keep draining its log so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let addr = addr
            .parse()
            .map_err(|e| format!("listening on {addr:?}: {e}"))?;
        Ok(Server { child, addr })
    }

    /// The variables the examples read.
    fn env(&self, cmd: &mut Command) {
        cmd.env("DFLOCKD_HOST", self.addr.ip().to_string())
            .env("DFLOCKD_PORT", self.addr.port().to_string())
            .env_remove("DFLOCKD_COMPONENT");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh directory outside the workspace, emptied first.
fn scratch(name: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("dflockd-consume-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// Runs `cmd` and checks that its output says `expected`.
fn run_expecting(cmd: &mut Command, expected: &str) -> Step {
    eprintln!("+ {cmd:?}");
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !stdout.contains(expected) {
        return Err(format!(
            "{cmd:?}: {} (expected {expected:?} in its output)\nstdout:\n{stdout}\nstderr:\n{stderr}",
            out.status
        ));
    }
    eprint!("{stdout}");
    Ok(())
}

pub fn all() -> Step {
    let project = Project::read()?;
    let server = Server::start()?;
    rust(&project, &server)?;
    cli(&project, &server)?;
    npm(&project, &server)?;
    python(&project, &server)?;
    eprintln!("consume: the crates, the npm package and the wheel work outside the workspace");
    Ok(())
}

/// A new Cargo project on the unpacked `.crate` files: builds, and takes
/// and releases a lock with the component the crate carries.
fn rust(project: &Project, server: &Server) -> Step {
    let dir = scratch("rust")?;
    let version = &project.version;
    unpack(&dir, version)?;
    let app = dir.join("app");
    std::fs::create_dir_all(app.join("src")).map_err(|e| e.to_string())?;
    let manifest = format!(
        r#"[package]
name = "consumer"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
dflockd-host = {{ path = "../dflockd-host-{version}" }}

# The packed host crate asks crates.io for dflockd-core {version}: the packed one.
[patch.crates-io]
dflockd-core = {{ path = "../dflockd-core-{version}" }}

# The workspace's dev profile, so that this build reuses its compiled
# dependencies (wasmtime is minutes cold).
[profile.dev]
debug = "line-tables-only"
[profile.dev.package.cranelift-codegen]
opt-level = 2
"#
    );
    std::fs::write(app.join("Cargo.toml"), manifest).map_err(|e| e.to_string())?;
    std::fs::write(app.join("src/main.rs"), CONSUMER).map_err(|e| e.to_string())?;
    // The workspace's lock file: the same dependency versions, so the same builds.
    std::fs::copy(root().join("Cargo.lock"), app.join("Cargo.lock")).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(["run", "--quiet"])
        .current_dir(&app)
        .env("CARGO_TARGET_DIR", root().join("target"));
    server.env(&mut cmd);
    run_expecting(
        &mut cmd,
        &format!("consumer: released (dflockd-host {version})"),
    )
}

/// The packed crates, unpacked into `dir`.
fn unpack(dir: &Path, version: &str) -> Step {
    for name in dist::CRATES {
        run(Command::new("tar")
            .arg("xzf")
            .arg(dist::dir().join(format!("{name}-{version}.crate")))
            .arg("-C")
            .arg(dir))?;
    }
    Ok(())
}

/// The packed `dflock` built as `cargo install` builds it (outside any
/// workspace, the packed library crates in place of crates.io's), then
/// `dflock run` and `dflock stats` against the server.
fn cli(project: &Project, server: &Server) -> Step {
    let dir = scratch("cli")?;
    let version = &project.version;
    unpack(&dir, version)?;
    let package = dir.join(format!("dflock-{version}"));
    // The workspace's lock file: the same dependency versions, so the same builds.
    std::fs::copy(root().join("Cargo.lock"), package.join("Cargo.lock"))
        .map_err(|e| e.to_string())?;
    let patch = |name: &str| {
        let path = dir.join(format!("{name}-{version}"));
        format!(
            "patch.crates-io.{name}.path={:?}",
            path.display().to_string()
        )
    };
    // The workspace's dev profile and target dir: the build reuses the
    // compiled wasmtime instead of a cold release build (minutes).
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--quiet", "--bin", "dflock"])
            .args(["--config", &patch("dflockd-core")])
            .args(["--config", &patch("dflockd-host")])
            .args(["--config", "profile.dev.debug=\"line-tables-only\""])
            .args([
                "--config",
                "profile.dev.package.cranelift-codegen.opt-level=2",
            ])
            .current_dir(&package)
            .env("CARGO_TARGET_DIR", root().join("target")),
    )?;
    let dflock = root().join("target/debug/dflock");
    let servers = server.addr.to_string();
    run_expecting(
        Command::new(&dflock)
            .args(["--servers", &servers, "run", "consume-cli", "--"])
            .args([
                "sh",
                "-c",
                "echo \"dflock ran the command for $DFLOCK_KEY\"",
            ])
            .env_remove("DFLOCKD_COMPONENT"),
        "dflock ran the command for consume-cli",
    )?;
    run_expecting(
        Command::new(&dflock).args(["--servers", &servers, "stats", "--json"]),
        "\"connections\"",
    )
}

const CONSUMER: &str = r#"// A user's program: dflockd-host from its packed crate, nothing else.
use std::sync::Arc;

use dflockd_host::Runtime;

fn main() -> Result<(), dflockd_host::Error> {
    assert!(
        dflockd_host::embedded_component().is_some(),
        "the crate carries the component"
    );
    let host = std::env::var("DFLOCKD_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("DFLOCKD_PORT").map_or(6388, |p| p.parse().expect("a port"));
    let runtime = Runtime::new()?;
    let lock = Arc::new(runtime.lock("consumer").server(host, port).build()?);
    let guard = Arc::clone(&lock).acquire_owned()?.expect("granted");
    println!("consumer: acquired {guard:?}");
    let released = std::thread::spawn(move || guard.release()).join().expect("no panic")?;
    assert!(released && !lock.is_held());
    println!("consumer: released (dflockd-host {})", dflockd_host::VERSION);
    Ok(())
}
"#;

/// `npm install` of the tarball into an empty Node project: a JS example
/// runs, and a TypeScript one type-checks against the package's typings
/// and runs.
fn npm(project: &Project, server: &Server) -> Step {
    let dir = scratch("npm")?;
    let tarball = dist::dir().join(format!("dflockd-component-{}.tgz", project.version));
    let npm = |args: &[&str]| {
        let mut cmd = Command::new("npm");
        cmd.args(args).current_dir(&dir);
        cmd
    };
    run(&mut npm(&["init", "-y", "--silent"]))?;
    // ESM, as the examples' top-level await needs.
    run(&mut npm(&["pkg", "set", "type=module"]))?;
    let mut install = npm(&["install", "--no-audit", "--no-fund", "--loglevel=error"]);
    install.arg(&tarball).args(TYPESCRIPT);
    run(&mut install)?;
    let examples = root().join("hosts/node");
    for file in ["example.mjs", "example.ts"] {
        copy(&examples.join(file), &dir.join(file))?;
    }
    std::fs::write(dir.join("tsconfig.json"), TSCONFIG).map_err(|e| e.to_string())?;
    let mut js = Command::new("node");
    js.arg("example.mjs").current_dir(&dir);
    server.env(&mut js);
    run_expecting(&mut js, "released")?;
    let mut version = Command::new("node");
    version
        .args(["-p", "require('dflockd-component/package.json').version"])
        .current_dir(&dir);
    run_expecting(&mut version, &project.version)?;
    run(Command::new(dir.join("node_modules/.bin/tsc")).current_dir(&dir))?;
    let mut ts = Command::new("node");
    ts.arg("out/example.js").current_dir(&dir);
    server.env(&mut ts);
    run_expecting(&mut ts, "released")
}

/// What the npm consumer type-checks with: the versions `hosts/node` pins
/// for its own check. TypeScript 7 loads no `@types/*` unless named, so
/// the consumer names `node` for `process`.
const TYPESCRIPT: [&str; 2] = ["typescript@7.0.2", "@types/node@20.19.43"];
const TSCONFIG: &str = r#"{"compilerOptions": {"module": "NodeNext", "moduleResolution": "NodeNext",
  "target": "ES2022", "strict": true, "types": ["node"], "outDir": "out"}, "files": ["example.ts"]}
"#;

/// `pip install` of the wheel into a fresh venv; the example runs from a
/// directory that holds nothing else.
fn python(project: &Project, server: &Server) -> Step {
    let dir = scratch("python")?;
    let venv = dir.join("venv");
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    let wheel = std::fs::read_dir(dist::dir())
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.ends_with(".whl") && name.contains(&format!("-{}-", project.version))
        })
        .ok_or("no wheel of this version in target/dist")?;
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(&wheel))?;
    let mut reported = Command::new(venv.join("bin/python"));
    reported
        .args([
            "-c",
            "import dflockd_component; print(dflockd_component.__version__)",
        ])
        .current_dir(&dir);
    run_expecting(&mut reported, &project.version)?;
    let examples = root().join("hosts/python");
    for file in ["example.py", "example_async.py"] {
        copy(&examples.join(file), &dir.join(file))?;
        let mut py = Command::new(venv.join("bin/python"));
        py.arg(file).current_dir(&dir);
        server.env(&mut py);
        run_expecting(&mut py, "released")?;
    }
    newest_wasmtime_py(&dir, &wheel, server)
}

/// The wheel pins wasmtime-py 47.0.1 because later ones refuse every socket
/// (`access-denied`: WASI TCP is off from 48 on, and their C API cannot
/// turn it on). This installs the newest wasmtime-py beside the wheel and
/// fails loudly once that is no longer so: then the pin can move.
fn newest_wasmtime_py(dir: &Path, wheel: &Path, server: &Server) -> Step {
    let venv = dir.join("venv-newest");
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    let pip = venv.join("bin/pip");
    run(Command::new(&pip)
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
        ])
        .arg(wheel))?;
    run(Command::new(&pip).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--upgrade",
        "wasmtime",
    ]))?;
    let mut py = Command::new(venv.join("bin/python"));
    py.args(["-c", PIN_CHECK]).current_dir(dir);
    server.env(&mut py);
    run_expecting(&mut py, "still access-denied")
}

const PIN_CHECK: &str = r#"
import importlib.metadata, os, sys, warnings
warnings.simplefilter("ignore")  # the package warns on any wasmtime-py but 47.x
from dflockd_component import Lock
version = importlib.metadata.version("wasmtime")
server = (os.environ["DFLOCKD_HOST"], int(os.environ["DFLOCKD_PORT"]))
try:
    with Lock("pin-check", servers=[server], acquire_timeout_s=1):
        pass
except Exception as e:
    if "access-denied" in str(e):
        print(f"wasmtime-py {version}: still access-denied; the pin on 47.0.1 stays")
        sys.exit(0)
    sys.exit(f"wasmtime-py {version} fails otherwise now ({e!r}): look at the pin again")
sys.exit(f"wasmtime-py {version} reaches the server: move the pin (hosts/python/pyproject.toml, requirements.txt) to it")
"#;

fn copy(from: &Path, to: &Path) -> Step {
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|e| format!("{} → {}: {e}", from.display(), to.display()))
}
