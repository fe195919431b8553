//! A protocol-faithful dflockd test server, as a library (an in-process
//! [`TestServer`] for tests) and a binary (`dflockd-testserver`, with
//! dflockd's flags, for other languages' tests, demos and benchmarks).
//!
//! It speaks dflockd's TCP protocol (locks, semaphores, two-phase
//! `e`/`w`, `auth`, `stats`, TLS, leases, FIFO queues, the server's limits)
//! in one of two [`Dialect`]s: `v1`, dflockd 1.10.0 as this project's
//! tests observed it, and `v2`, dflockd 2.1 as documented (fence tokens,
//! `ping`, separate lock and semaphore key spaces, `error_draining`).
//! It is written from the protocol's description (`PROTOCOL.md` of this
//! project), not from dflockd's code.
//!
//! ```no_run
//! use dflockd_testserver::{Dialect, Options, TestServer};
//!
//! let server = TestServer::start(Options { dialect: Dialect::V2, port: 0, ..Options::default() })?;
//! println!("dflockd at {}", server.addr());
//! # Ok::<(), std::io::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;

mod conn;
mod log;
mod manager;
pub mod options;
mod server;
mod tokens;
mod wire;

pub use options::Options;
pub use server::Stop;

/// Which dflockd the server behaves as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// dflockd 1.10.0: random tokens, one key space, no `ping`, a shutdown
    /// closes connections without a status.
    #[default]
    V1,
    /// dflockd 2.1: fence tokens, `ping`, separate key spaces,
    /// `error_draining` during a shutdown.
    V2,
}

impl std::str::FromStr for Dialect {
    type Err = String;
    fn from_str(s: &str) -> Result<Dialect, String> {
        match s {
            "v1" => Ok(Dialect::V1),
            "v2" => Ok(Dialect::V2),
            _ => Err(format!("--dialect {s:?}: v1 or v2")),
        }
    }
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dialect::V1 => "v1",
            Dialect::V2 => "v2",
        })
    }
}

/// Serves `opts` on `listener` until `stop` resolves: the binary's loop,
/// for embedding in a tokio runtime of your own.
pub async fn serve(
    opts: Options,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = Stop>,
) -> Result<(), String> {
    let tls = server::tls_acceptor(&opts)?;
    let shared = Arc::new(server::Shared::new(opts));
    server::run(shared, listener, tls, stop).await;
    Ok(())
}

/// A server in this process, on a thread of its own; stopped (every
/// connection closed at once) when dropped.
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<server::Shared>,
    stop: Option<tokio::sync::oneshot::Sender<Stop>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Binds `opts.host:opts.port` (port 0: a free one) and serves.
    pub fn start(opts: Options) -> std::io::Result<TestServer> {
        let other = std::io::Error::other;
        let tls = server::tls_acceptor(&opts).map_err(other)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind((
            opts.host.as_str(),
            opts.port,
        )))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(server::Shared::new(opts));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let run = server::run(shared.clone(), listener, tls, async move {
            stopped.await.unwrap_or(Stop::Now)
        });
        let thread = std::thread::Builder::new()
            .name(format!("dflockd-testserver {addr}"))
            .spawn(move || runtime.block_on(run))?;
        Ok(TestServer {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Freezes it, as SIGSTOP freezes a process: connections stay open,
    /// nothing is answered and no lease is swept until [`resume`](Self::resume).
    pub fn pause(&self) {
        self.shared.set_paused(true);
    }

    /// Lets a paused server go on.
    pub fn resume(&self) {
        self.shared.set_paused(false);
    }

    /// Shuts down as on SIGTERM (see [`Stop::Graceful`]) and returns once
    /// it has stopped.
    pub fn shutdown(mut self) {
        self.stop_with(Stop::Graceful);
    }

    fn stop_with(&mut self, how: Stop) {
        self.shared.set_paused(false);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(how);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop_with(Stop::Now);
    }
}
