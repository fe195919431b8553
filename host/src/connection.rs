//! The low-level API, blocking ([`Connection`]) and async
//! ([`AsyncConnection`]): one connection, one method per command. Both are
//! made from one list of commands, so their surfaces cannot drift apart.
//! A connection lives in one of its runtime's instances, beside the locks
//! and the other connections, and its commands go through that instance's
//! driver (`driver/`): a started command never blocks the instance.

use std::net::{SocketAddr, ToSocketAddrs};

use crate::instance::{Finished, Instance, Op};
use crate::raw_async::{self as raw, ConnectionCommand, Setting, WitAnswer};
use crate::raw_async::{
    AcquireRequest, EnqueueRequest, ReleaseRequest, RenewRequest, SemAcquireRequest,
    SemEnqueueRequest, WaitRequest,
};
use crate::{Enqueued, Error, Grant, Runtime, Stats};

/// One connection to one server; see the WIT `connection` resource.
/// After a timeout, protocol or connection error it stays closed.
/// Dropping it closes the socket (and returns once closed): the server
/// then cancels its waiters and (by default) releases what it held.
#[derive(Debug)]
pub struct Connection {
    conn: Conn,
}

/// [`Connection`] with an async API, on the caller's tokio runtime.
/// Dropping it closes the socket at the driver's next turn; dropping a
/// call's future before its answer closes the connection under it.
#[derive(Debug)]
pub struct AsyncConnection {
    conn: Conn,
}

/// A connection in its runtime's instance.
struct Conn {
    instance: Instance,
    id: u64,
    /// `host:port`, for `Debug`.
    server: String,
    /// The blocking flavour's drop waits until the socket is closed.
    wait_on_drop: bool,
    /// Keeps the runtime (and its instance) alive.
    _runtime: Runtime,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// Creates the connection in `instance` and connects it.
    async fn open(
        runtime: &Runtime,
        instance: Instance,
        wait_on_drop: bool,
        to: Dial,
    ) -> Result<Conn, Error> {
        runtime.allow(&to.allowed);
        let server = format!("{}:{}", to.server.host, to.server.port);
        let id = instance.create(to.server, to.settings).await?;
        let mut conn = Conn {
            instance,
            id,
            server,
            // Dropped here (a failed connect), it must not wait: this
            // future may be what runs the driver.
            wait_on_drop: false,
            _runtime: runtime.clone(),
        };
        match conn.ask(ConnectionCommand::Connect).await? {
            WitAnswer::Connected => {
                conn.wait_on_drop = wait_on_drop;
                Ok(conn)
            }
            _ => Err(mismatch("connect")),
        }
    }

    /// Runs `command` to its answer.
    async fn ask(&self, command: ConnectionCommand) -> Result<WitAnswer, Error> {
        match self.instance.call(self.id, Op::Ask(command)).await? {
            Finished::Answer(answer) => Ok(answer),
            _ => Err(mismatch("start")),
        }
    }
}

impl Drop for Conn {
    /// Drops the resource, closing its socket; the blocking flavour waits
    /// for that, except in an `on_lost` callback, which would wait for itself.
    fn drop(&mut self) {
        let gone = self.instance.drop_object(self.id);
        let wait = self.wait_on_drop && !crate::callbacks::on_callback_thread();
        if let (true, Some(gone)) = (wait, gone) {
            let _ = self.instance.block_on(gone);
        }
    }
}

/// A component that answered a command with another command's answer.
fn mismatch(command: &str) -> Error {
    Error::Runtime(format!(
        "the component answered `{command}` with another answer"
    ))
}

/// The server, the addresses the sandbox may reach, and the connect settings.
struct Dial {
    server: raw::Server,
    allowed: Vec<SocketAddr>,
    settings: Vec<Setting>,
}

fn dial(
    host: &str,
    port: u16,
    auth_token: Option<&str>,
    tls: Option<&crate::Tls>,
) -> Result<Dial, Error> {
    let allowed: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| Error::Connection(format!("resolving {host}: {e}")))?
        .collect();
    let server = raw::Server {
        host: host.into(),
        port,
    };
    let mut settings = Vec::new();
    settings.extend(auth_token.map(|t| Setting::AuthToken(t.into())));
    settings.extend(tls.map(|t| Setting::Tls(t.to_wit())));
    Ok(Dial {
        server,
        allowed,
        settings,
    })
}

impl Runtime {
    /// Connects to `host:port` (authenticating when `auth_token` is set).
    pub fn connect(
        &self,
        host: &str,
        port: u16,
        auth_token: Option<&str>,
    ) -> Result<Connection, Error> {
        self.connect_with(host, port, auth_token, None)
    }

    /// [`connect`](Self::connect), over TLS when `tls` is set.
    pub fn connect_with(
        &self,
        host: &str,
        port: u16,
        auth_token: Option<&str>,
        tls: Option<&crate::Tls>,
    ) -> Result<Connection, Error> {
        let to = dial(host, port, auth_token, tls)?;
        let instance = self.instance()?;
        let conn = instance.block_on(Conn::open(self, instance.clone(), true, to))?;
        Ok(Connection { conn })
    }

    /// [`connect`](Self::connect), async (inside a tokio runtime).
    pub async fn connect_async(
        &self,
        host: &str,
        port: u16,
        auth_token: Option<&str>,
    ) -> Result<AsyncConnection, Error> {
        self.connect_with_async(host, port, auth_token, None).await
    }

    /// [`connect_with`](Self::connect_with), async.
    pub async fn connect_with_async(
        &self,
        host: &str,
        port: u16,
        auth_token: Option<&str>,
        tls: Option<&crate::Tls>,
    ) -> Result<AsyncConnection, Error> {
        let to = dial(host, port, auth_token, tls)?;
        let instance = self.async_instance().await?;
        let conn = Conn::open(self, instance, false, to).await?;
        Ok(AsyncConnection { conn })
    }
}

/// Every command: its method, arguments, the WIT command it starts, and
/// the answer it takes.
macro_rules! commands {
    ($make:ident) => {
        $make! {
            /// `ping` (dflockd 1.x has none: a typed `Error::Server`).
            fn ping() -> () = ConnectionCommand::Ping, WitAnswer::Done => ();
            /// `stats`: the server's tables.
            fn stats() -> Stats = ConnectionCommand::Stats,
                WitAnswer::Stats(json) => dflockd_core::protocol::stats::decode_json(&json)?;
            /// `l`: `None` when the server's timeout passed.
            fn lock(key: &str, timeout_s: u64, lease_ttl_s: Option<u64>) -> Option<Grant>
                = ConnectionCommand::Lock(AcquireRequest { key: key.into(), timeout_s, lease_ttl_s }),
                WitAnswer::Acquired(g) => g.map(raw::grant);
            /// `r`.
            fn unlock(key: &str, token: &str) -> ()
                = ConnectionCommand::Unlock(ReleaseRequest { key: key.into(), token: token.into() }),
                WitAnswer::Done => ();
            /// `n`: the remaining seconds.
            fn renew(key: &str, token: &str, lease_ttl_s: Option<u64>) -> u64
                = ConnectionCommand::Renew(RenewRequest { key: key.into(), token: token.into(), lease_ttl_s }),
                WitAnswer::Renewed(s) => s;
            /// `e`.
            fn enqueue(key: &str, lease_ttl_s: Option<u64>) -> Enqueued
                = ConnectionCommand::Enqueue(EnqueueRequest { key: key.into(), lease_ttl_s }),
                WitAnswer::Enqueued(e) => raw::enqueued(e);
            /// `w`: `None` when the timeout passed.
            fn wait(key: &str, timeout_s: u64) -> Option<Grant>
                = ConnectionCommand::Wait(WaitRequest { key: key.into(), timeout_s }),
                WitAnswer::Acquired(g) => g.map(raw::grant);
            /// `sl`.
            fn sem_acquire(key: &str, timeout_s: u64, limit: u32, lease_ttl_s: Option<u64>) -> Option<Grant>
                = ConnectionCommand::SemAcquire(SemAcquireRequest { key: key.into(), timeout_s, limit, lease_ttl_s }),
                WitAnswer::Acquired(g) => g.map(raw::grant);
            /// `sr`.
            fn sem_release(key: &str, token: &str) -> ()
                = ConnectionCommand::SemRelease(ReleaseRequest { key: key.into(), token: token.into() }),
                WitAnswer::Done => ();
            /// `sn`.
            fn sem_renew(key: &str, token: &str, lease_ttl_s: Option<u64>) -> u64
                = ConnectionCommand::SemRenew(RenewRequest { key: key.into(), token: token.into(), lease_ttl_s }),
                WitAnswer::Renewed(s) => s;
            /// `se`.
            fn sem_enqueue(key: &str, limit: u32, lease_ttl_s: Option<u64>) -> Enqueued
                = ConnectionCommand::SemEnqueue(SemEnqueueRequest { key: key.into(), limit, lease_ttl_s }),
                WitAnswer::Enqueued(e) => raw::enqueued(e);
            /// `sw`.
            fn sem_wait(key: &str, timeout_s: u64) -> Option<Grant>
                = ConnectionCommand::SemWait(WaitRequest { key: key.into(), timeout_s }),
                WitAnswer::Acquired(g) => g.map(raw::grant);
        }
    };
}

macro_rules! blocking_commands {
    ($($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $out:ty = $command:expr, $answer:pat => $value:expr;)*) => {
        impl Connection {
            $(
                $(#[$doc])*
                pub fn $name(&mut self, $($arg: $ty),*) -> Result<$out, Error> {
                    let conn = &self.conn;
                    match conn.instance.block_on(conn.ask($command))? {
                        $answer => Ok($value),
                        #[allow(unreachable_patterns)]
                        _ => Err(mismatch(stringify!($name))),
                    }
                }
            )*
        }
    };
}

macro_rules! async_commands {
    ($($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $out:ty = $command:expr, $answer:pat => $value:expr;)*) => {
        impl AsyncConnection {
            $(
                $(#[$doc])*
                pub async fn $name(&mut self, $($arg: $ty),*) -> Result<$out, Error> {
                    match self.conn.ask($command).await? {
                        $answer => Ok($value),
                        #[allow(unreachable_patterns)]
                        _ => Err(mismatch(stringify!($name))),
                    }
                }
            )*
        }
    };
}

commands!(blocking_commands);
commands!(async_commands);
