//! The conformance scenarios (`hosts/scenarios.json`) in every host, each
//! against its own dialect-v1 servers: the Rust host blocking
//! and async, Node through jco (`hosts/node`), Python through wasmtime-py
//! (`hosts/python`). `cargo xtask test-hosts` installs the Node packages,
//! transpiles the component and makes the Python venv first; without
//! them these tests fail saying so.

use std::path::{Path, PathBuf};
use std::process::Command;

use dflockd_host::asynchronous::AsyncHolder;
use dflockd_host::{Builder, Counting, Enqueued, Error, Exclusive, Holder, OneKey};
use host_tests::scenarios::{self, hosts_dir, Flavour, Object, Scenario, Servers};

/// Runs every scenario in-process through `flavour`; panics listing the failures.
fn every_scenario(flavour: &dyn Flavour) {
    let failures: Vec<String> = scenarios::load()
        .iter()
        .filter_map(|scenario| {
            let mut servers = scenarios::start(scenario);
            scenarios::run(scenario, &mut servers, flavour)
                .err()
                .map(|why| format!("{}: {why}", scenario.name))
        })
        .collect();
    assert!(failures.is_empty(), "failed:\n{}", failures.join("\n"));
}

struct Blocking;

/// A blocking holder (a local type: the trait and `Holder` are both foreign here).
struct BlockingObject<K>(Holder<K>);

impl<K: OneKey + 'static> Object for BlockingObject<K> {
    fn acquire(&self) -> Result<bool, Error> {
        // The grant stays held until the scenario releases it.
        Ok(self.0.acquire()?.map(std::mem::forget).is_some())
    }
    fn enqueue(&self) -> Result<Enqueued, Error> {
        self.0.enqueue()
    }
    fn wait(&self, timeout_s: u64) -> Result<bool, Error> {
        Ok(self
            .0
            .wait(Some(timeout_s))?
            .map(std::mem::forget)
            .is_some())
    }
    fn release(&self) -> Result<bool, Error> {
        self.0.release()
    }
    fn is_held(&self) -> bool {
        self.0.is_held()
    }
    fn close(&self) -> Result<(), Error> {
        self.0.close()
    }
}

impl Flavour for Blocking {
    fn lock(&self, builder: Builder<Exclusive>) -> Result<Box<dyn Object>, Error> {
        Ok(Box::new(BlockingObject(builder.build()?)))
    }
    fn semaphore(&self, builder: Builder<Counting>) -> Result<Box<dyn Object>, Error> {
        Ok(Box::new(BlockingObject(builder.build()?)))
    }
}

/// The async API, each call awaited on a multi-thread tokio runtime.
struct Async(tokio::runtime::Runtime);

struct AsyncObject<K> {
    holder: AsyncHolder<K>,
    rt: tokio::runtime::Handle,
}

impl<K: OneKey + 'static> Object for AsyncObject<K> {
    fn acquire(&self) -> Result<bool, Error> {
        let granted = self.rt.block_on(self.holder.acquire())?;
        Ok(granted.map(std::mem::forget).is_some())
    }
    fn enqueue(&self) -> Result<Enqueued, Error> {
        self.rt.block_on(self.holder.enqueue())
    }
    fn wait(&self, timeout_s: u64) -> Result<bool, Error> {
        let granted = self.rt.block_on(self.holder.wait(Some(timeout_s)))?;
        Ok(granted.map(std::mem::forget).is_some())
    }
    fn release(&self) -> Result<bool, Error> {
        self.rt.block_on(self.holder.release())
    }
    fn is_held(&self) -> bool {
        self.holder.is_held()
    }
    fn close(&self) -> Result<(), Error> {
        self.rt.block_on(self.holder.close())
    }
}

impl Flavour for Async {
    fn lock(&self, builder: Builder<Exclusive>) -> Result<Box<dyn Object>, Error> {
        let holder = self.0.block_on(builder.build_async())?;
        let rt = self.0.handle().clone();
        Ok(Box::new(AsyncObject { holder, rt }))
    }
    fn semaphore(&self, builder: Builder<Counting>) -> Result<Box<dyn Object>, Error> {
        let holder = self.0.block_on(builder.build_async())?;
        let rt = self.0.handle().clone();
        Ok(Box::new(AsyncObject { holder, rt }))
    }
}

#[test]
fn the_rust_host_blocking_passes_every_scenario() {
    every_scenario(&Blocking);
}

#[test]
fn the_rust_host_async_passes_every_scenario() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    every_scenario(&Async(rt));
}

/// Runs a foreign runner over every scenario, each with servers of its
/// own, and checks that it passed every one by name.
fn foreign(program: &Path, runner: &Path) {
    let all = scenarios::load();
    let started: Vec<(&Scenario, Servers)> = all.iter().map(|s| (s, scenarios::start(s))).collect();
    // One file per runner: the tests run in parallel in one process.
    let name = runner.file_stem().unwrap_or_default().to_string_lossy();
    let file =
        std::env::temp_dir().join(format!("dflockd-hosts-{}-{name}.json", std::process::id()));
    let servers = scenarios::servers_file(&started);
    std::fs::write(&file, servers.to_string()).expect("write the servers file");
    let out = Command::new(program)
        .arg(runner)
        .arg(hosts_dir().join("scenarios.json"))
        .arg(&file)
        .env("DFLOCKD_COMPONENT", host_tests::component_path())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    let _ = std::fs::remove_file(&file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "{} failed:\n{report}",
        runner.display()
    );
    for scenario in &all {
        let ok = format!("ok {}", scenario.name);
        assert!(
            stdout.lines().any(|l| l.trim() == ok),
            "no `{ok}` from {}:\n{report}",
            runner.display()
        );
    }
}

/// A prerequisite `cargo xtask test-hosts` makes; a loud failure without it.
fn prepared(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask test-hosts` (it {what})",
        path.display()
    );
    path
}

#[test]
fn node_through_jco_passes_every_scenario() {
    let node = hosts_dir().join("node");
    prepared(
        node.join("gen/dflockd.js"),
        "installs the npm packages and transpiles the component with jco",
    );
    foreign(Path::new("node"), &node.join("run-scenarios.mjs"));
}

#[test]
fn python_through_wasmtime_py_passes_every_scenario() {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/hosts-venv");
    let python = prepared(
        venv.join("bin/python"),
        "makes a venv with the pinned wasmtime-py",
    );
    foreign(&python, &hosts_dir().join("python/run_scenarios.py"));
}

/// Runs `program args` in `dir` with `env`; its stdout, or a panic with everything it said.
fn output_of(program: &Path, args: &[&str], dir: &Path, env: &[(&str, String)]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("DFLOCKD_COMPONENT", host_tests::component_path())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{stdout}\n{stderr}",
        program.display()
    );
    format!("{stdout}\n{stderr}")
}

fn venv_python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/hosts-venv");
    prepared(
        venv.join("bin/python"),
        "makes a venv with the pinned wasmtime-py",
    )
}

#[test]
fn the_pinned_wasmtime_py_has_tcp_and_a_sandbox_without_it_says_why() {
    // Fails loudly, naming the version, if a wasmtime-py without TCP is installed.
    let bin = host_tests::server::binary().path.display().to_string();
    let said = output_of(
        &venv_python(),
        &["-m", "unittest", "-v", "test_network"],
        &hosts_dir().join("python"),
        &[("DFLOCKD_BIN", bin)],
    );
    assert!(said.contains("OK") && !said.contains("skipped"), "{said}");
}

#[test]
fn the_node_and_python_examples_run_against_the_real_server() {
    let server = host_tests::server::dflockd(&[]);
    let env = [
        ("DFLOCKD_HOST", server.addr.ip().to_string()),
        ("DFLOCKD_PORT", server.addr.port().to_string()),
    ];
    let node = hosts_dir().join("node");
    prepared(
        node.join("gen/dflockd.js"),
        "transpiles the component with jco",
    );
    let said = output_of(Path::new("node"), &["example.mjs"], &node, &env);
    assert!(
        said.contains("acquired my-key") && said.contains("released = true"),
        "{said}"
    );
    let said = output_of(Path::new("node"), &["example-lock-set.mjs"], &node, &env);
    assert!(
        said.contains("holding account:17 and account:42") && said.contains("released both = true"),
        "{said}"
    );
    let said = output_of(
        &venv_python(),
        &["example.py"],
        &hosts_dir().join("python"),
        &env,
    );
    assert!(
        said.contains("acquired: key=my-key") && said.contains("released"),
        "{said}"
    );
    let said = output_of(
        &venv_python(),
        &["example_lock_set.py"],
        &hosts_dir().join("python"),
        &env,
    );
    assert!(
        said.contains("holding account:17 and account:42") && said.contains("released both"),
        "{said}"
    );
}

#[test]
fn the_node_package_passes_its_own_tests_and_type_check() {
    // Options refused by name, TLS both ways, connect timeout, auth, and a
    // process that exits by itself with an unclosed lock (`test/`); and the
    // typings checked against the TypeScript example (`tsc -p .`).
    let node = hosts_dir().join("node");
    prepared(
        node.join("gen/dflockd.js"),
        "transpiles the component with jco",
    );
    let server = host_tests::server::testserver_path().display().to_string();
    let said = output_of(
        Path::new("npm"),
        &["test", "--silent"],
        &node,
        &[("DFLOCKD_TESTSERVER", server)],
    );
    assert!(
        said.contains("# fail 0") && said.contains("# skipped 0"),
        "{said}"
    );
    output_of(
        Path::new("npm"),
        &["run", "--silent", "typecheck"],
        &node,
        &[],
    );
}
