//! dflockd server processes on free loopback ports, one per test.
//!
//! The server is the project's own test server (`dflockd-testserver`, put
//! at `target/release/dflockd-testserver` by `cargo xtask setup`) in the
//! dialect a test asks for, or, when `DFLOCKD_BIN` names one, a real
//! dflockd binary, whose dialect its `--version` tells. Each [`Server`] is
//! killed when dropped, also when the test panics.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

pub use dflockd_testserver::Dialect;

/// The server binary the tests run.
pub struct Binary {
    /// Its path.
    pub path: PathBuf,
    /// `None` for the test server (either dialect, chosen by `--dialect`);
    /// a real dflockd's dialect.
    pub real: Option<Dialect>,
}

/// `DFLOCKD_BIN` (a real dflockd), else the test server.
pub fn binary() -> &'static Binary {
    static BINARY: OnceLock<Binary> = OnceLock::new();
    BINARY.get_or_init(|| match std::env::var_os("DFLOCKD_BIN") {
        Some(path) => {
            let path = PathBuf::from(path);
            let dialect = real_dialect(&path).unwrap_or_else(|e| panic!("DFLOCKD_BIN: {e}"));
            Binary {
                path,
                real: Some(dialect),
            }
        }
        None => {
            let path = testserver_path();
            assert!(
                path.exists(),
                "{} is missing: run `cargo xtask setup` (it builds the test server)",
                path.display()
            );
            Binary { path, real: None }
        }
    })
}

/// Where `cargo xtask setup` builds the test server.
pub fn testserver_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/dflockd-testserver")
}

/// The dialect of a real dflockd binary, from its `--version`: 1.x before
/// 1.14 is `v1`; 2.x is `v2` (1.14 to 1.16 are between the two: refused).
pub fn real_dialect(path: &std::path::Path) -> Result<Dialect, String> {
    let out = Command::new(path)
        .arg("--version")
        .output()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let numbers: Vec<u32> = said
        .trim_start_matches('v')
        .split(['.', '-', ' '])
        .take(2)
        .map_while(|n| n.parse().ok())
        .collect();
    match numbers[..] {
        [1, minor] if minor < 14 => Ok(Dialect::V1),
        [2, _] => Ok(Dialect::V2),
        _ => Err(format!(
            "{} says its version is {said:?}: the tests know dflockd 1.0-1.13 (dialect v1) and \
             2.x (dialect v2); use a release build",
            path.display()
        )),
    }
}

/// How messages name the server: "the test server (dialect v1)", or the
/// real binary's path and dialect.
pub fn describe(dialect: Dialect) -> String {
    match binary().real {
        None => format!("the test server (dialect {dialect})"),
        Some(_) => format!("dflockd {} (dialect {dialect})", binary().path.display()),
    }
}

/// The dialect a test gets when it names none: the real binary's, else
/// `v1` (the suite was first written against dflockd 1.10.0).
pub fn default_dialect() -> Dialect {
    binary().real.unwrap_or(Dialect::V1)
}

/// The dialects the tests can start: both with the test server, the real
/// binary's own with `DFLOCKD_BIN`.
pub fn dialects() -> Vec<Dialect> {
    match binary().real {
        Some(dialect) => vec![dialect],
        None => vec![Dialect::V1, Dialect::V2],
    }
}

/// The newest dialect the tests can start: `v2` with the test server (the
/// demo and the bench use it: every seed example shows its real
/// behaviour), a real binary's own.
pub fn newest_dialect() -> Dialect {
    *dialects().last().unwrap_or(&Dialect::V1)
}

/// A running server; killed on drop.
pub struct Server {
    child: Child,
    /// Where it listens (127.0.0.1, a free port).
    pub addr: SocketAddr,
    /// Which dflockd it behaves as.
    pub dialect: Dialect,
    flags: Vec<String>,
    log: Arc<Mutex<Vec<String>>>,
}

/// Starts a server in the default dialect on a free loopback port with
/// extra `flags`; returns once it listens.
pub fn dflockd(flags: &[&str]) -> Server {
    dflockd_in(default_dialect(), flags)
}

/// Starts a server in `dialect` on a free loopback port with `flags`.
/// With `DFLOCKD_BIN`, only that binary's own dialect can be started.
pub fn dflockd_in(dialect: Dialect, flags: &[&str]) -> Server {
    start(dialect, crate::closed_port().port(), flags)
}

/// Starts a server serving TLS with `cert`, plus `flags`, on a free port.
pub fn dflockd_tls(cert: &crate::certs::ServerCert, flags: &[&str]) -> Server {
    dflockd_tls_in(default_dialect(), cert, flags)
}

/// [`dflockd_tls`] in `dialect`.
pub fn dflockd_tls_in(dialect: Dialect, cert: &crate::certs::ServerCert, flags: &[&str]) -> Server {
    let tls = cert.flags();
    let all: Vec<&str> = tls
        .iter()
        .map(String::as_str)
        .chain(flags.iter().copied())
        .collect();
    dflockd_in(dialect, &all)
}

/// Starts a server in `dialect` on 127.0.0.1:`port`.
pub fn start(dialect: Dialect, port: u16, flags: &[&str]) -> Server {
    let mut all: Vec<String> = Vec::new();
    match binary().real {
        None => all.extend(["--dialect".to_string(), dialect.to_string()]),
        Some(real) => assert_eq!(
            real, dialect,
            "DFLOCKD_BIN is a dialect-{real} dflockd; this test needs dialect {dialect}"
        ),
    }
    all.extend(flags.iter().map(|f| f.to_string()));
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let log = Arc::new(Mutex::new(Vec::new()));
    let child = spawn(addr, &all, &log);
    Server {
        child,
        addr,
        dialect,
        flags: all,
        log,
    }
}

fn spawn(addr: SocketAddr, flags: &[String], log: &Arc<Mutex<Vec<String>>>) -> Child {
    let path = &binary().path;
    let mut child = Command::new(path)
        .args(["--host", "127.0.0.1", "--port", &addr.port().to_string()])
        .args(flags)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", path.display()));
    let stderr = child.stderr.take().expect("piped stderr");
    let (ready_tx, ready) = mpsc::channel();
    // The server logs `msg=listening` once its socket is bound; keep draining
    // its log afterwards (and keep it for failure messages) so that it never
    // blocks on a full pipe.
    let lines = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("msg=listening") {
                let _ = ready_tx.send(());
            }
            lines.lock().unwrap_or_else(|p| p.into_inner()).push(line);
        }
    });
    if ready.recv_timeout(Duration::from_secs(30)).is_err() {
        let status = child.try_wait();
        let _ = child.kill();
        panic!(
            "{} on {addr} did not start listening ({status:?}); log: {:?}",
            path.display(),
            log.lock().unwrap_or_else(|p| p.into_inner())
        );
    }
    child
}

impl Server {
    /// The server's process id (for a foreign runner's `kill`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the server now (SIGKILL): its clients see their connections reset.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the server to shut down (SIGTERM): it stops accepting, ends
    /// the waits in progress and closes the connections left after its
    /// `--shutdown-timeout`; returns once it has exited.
    pub fn terminate(&mut self) {
        self.term();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and returns at once: the drain goes on.
    pub fn term(&self) {
        self.signal("TERM");
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// Kills the server and starts a fresh one on the same port with the
    /// same flags: every lock and queue is forgotten.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(self.addr, &self.flags, &self.log);
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed: {status}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
