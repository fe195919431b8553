//! What the `dflock` tests share: the binary, pointed at a test server,
//! and a command's output read line by line as it comes.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Far above any bound the tests rely on: a hang, not a measurement.
pub const HANG: Duration = Duration::from_secs(60);

/// `dflock --servers ADDR ARGS…`, stdin empty, with no `DFLOCKD_*`
/// setting of the environment it runs in.
pub fn dflock(server: SocketAddr, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dflock"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("DFLOCKD_") && name != "DFLOCKD_COMPONENT" {
            cmd.env_remove(name);
        }
    }
    cmd.args(["--servers", &server.to_string()])
        .args(args)
        .stdin(Stdio::null());
    cmd
}

/// Runs to the end (within [`HANG`]): exit code, stdout, stderr.
pub fn output(mut cmd: Command) -> (i32, String, String) {
    let out = host_tests::within(HANG, move || cmd.output().expect("run dflock"));
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(out.stdout),
        text(out.stderr),
    )
}

/// A started `dflock` whose stdout comes line by line.
pub struct Running {
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    pub fn start(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dflock");
        let lines = each_line(child.stdout.take().expect("piped"));
        Running { child, lines }
    }

    /// The next line of stdout; panics after [`HANG`].
    pub fn line(&self) -> String {
        self.lines
            .recv_timeout(HANG)
            .unwrap_or_else(|_| panic!("no line from the command within {HANG:?}"))
    }

    /// Waits for the exit (within [`HANG`]): code and stderr. A signal
    /// that ended dflock itself is -1.
    pub fn finish(mut self) -> (i32, String) {
        let mut stderr = self.child.stderr.take().expect("piped");
        let status = host_tests::within(HANG, move || self.child.wait().expect("wait"));
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).expect("stderr");
        (status.code().unwrap_or(-1), text)
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).expect("kill");
    }
}

fn each_line(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Holds `key` at `server` with the host library until dropped.
pub fn held(server: SocketAddr, key: &str) -> dflockd_host::OwnedGuard<dflockd_host::Exclusive> {
    let lock = std::sync::Arc::new(host_tests::lock_on(server, key).build().expect("build"));
    lock.acquire_owned()
        .expect("acquire")
        .expect("the key is free")
}
