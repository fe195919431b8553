//! Real dflockd server processes on free loopback ports, one per test.
//!
//! Today the only dflockd installable on these machines is the original
//! Python server, `dflockd` 0.5.0 from PyPI (the Go server's module is
//! refused by the Go module proxy). It speaks the lock commands
//! `l r n e w` (no semaphores, auth, stats, ping, fence-prefix tokens).
//! `cargo xtask setup` installs it into `target/dflockd-py/`.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The pinned Python server: `cargo xtask setup` installs exactly this.
pub const PYTHON_DFLOCKD: &str = "dflockd==0.5.0";

/// A running server; killed on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

/// The Python dflockd executable installed by `cargo xtask setup`.
pub fn python_dflockd_path() -> PathBuf {
    std::env::var_os("DFLOCKD_PY")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/dflockd-py/bin/dflockd")
        })
}

/// Starts the Python dflockd on a free loopback port with extra `flags`
/// and returns once it listens.
pub fn python_dflockd(flags: &[&str]) -> Server {
    python_dflockd_on(free_port(), flags)
}

/// Starts the Python dflockd on 127.0.0.1:`port` and returns once it listens.
pub fn python_dflockd_on(port: u16, flags: &[&str]) -> Server {
    let path = python_dflockd_path();
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask setup` (installs {PYTHON_DFLOCKD} from PyPI)",
        path.display()
    );
    let mut child = Command::new(&path)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(flags)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", path.display()));
    let stderr = child.stderr.take().expect("piped stderr");
    let (ready_tx, ready) = mpsc::channel();
    // The server logs "listening on" once its socket is bound; keep draining
    // its log afterwards so it never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening on") {
                let _ = ready_tx.send(());
            }
        }
    });
    let mut server = Server {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    if ready.recv_timeout(Duration::from_secs(30)).is_err() {
        let status = server.child.try_wait();
        panic!("dflockd on port {port} did not start listening ({status:?})");
    }
    server
}

impl Server {
    /// Kills the server now (to test what a client sees when it dies).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
