//! Real dflockd server processes on free loopback ports, one per test.
//!
//! The server is dflockd at the version pinned in `dflockd.version` (the
//! Go server, v1.10.0), put at `target/dflockd/<version>/dflockd` by
//! `cargo xtask setup`. Each [`Server`] is killed when dropped, also when
//! the test panics.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// The pinned server version (its one place is `dflockd.version`).
pub fn version() -> &'static str {
    include_str!("../../dflockd.version").trim()
}

/// Where `cargo xtask setup` puts the server and the Go interop program.
pub fn dflockd_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/dflockd")
        .join(version())
}

/// The server binary.
pub fn dflockd_path() -> PathBuf {
    dflockd_dir().join("dflockd")
}

/// A running dflockd; killed on drop.
pub struct Server {
    child: Child,
    /// Where it listens (127.0.0.1, a free port).
    pub addr: SocketAddr,
    flags: Vec<String>,
    log: Arc<Mutex<Vec<String>>>,
}

/// Starts dflockd on a free loopback port with extra `flags` and returns
/// once its log says `listening`.
pub fn dflockd(flags: &[&str]) -> Server {
    dflockd_on(crate::closed_port().port(), flags)
}

/// Starts dflockd serving TLS with `cert`, plus `flags`, on a free port.
pub fn dflockd_tls(cert: &crate::certs::ServerCert, flags: &[&str]) -> Server {
    let tls = cert.flags();
    let all: Vec<&str> = tls
        .iter()
        .map(String::as_str)
        .chain(flags.iter().copied())
        .collect();
    dflockd(&all)
}

/// Starts dflockd on 127.0.0.1:`port`; returns once it listens.
pub fn dflockd_on(port: u16, flags: &[&str]) -> Server {
    let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let log = Arc::new(Mutex::new(Vec::new()));
    let child = spawn(addr, &flags, &log);
    Server {
        child,
        addr,
        flags,
        log,
    }
}

fn spawn(addr: SocketAddr, flags: &[String], log: &Arc<Mutex<Vec<String>>>) -> Child {
    let path = dflockd_path();
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask setup` (builds dflockd {} from DFLOCKD_SRC or \
         ../shared/dflockd, or installs it with go install)",
        path.display(),
        version()
    );
    let mut child = Command::new(&path)
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
            "dflockd on {addr} did not start listening ({status:?}); log: {:?}",
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
        self.signal("TERM");
        let _ = self.child.wait();
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
