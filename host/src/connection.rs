//! The low-level API, blocking ([`Connection`]) and async
//! ([`AsyncConnection`]): one connection, one method per command. Both are
//! made from one list of commands, so their surfaces cannot drift apart.

use std::net::{SocketAddr, ToSocketAddrs};

use wasmtime::component::ResourceAny;

use crate::error::flat;
use crate::raw_async::{self as raw, Setting};
use crate::runtime::{block_on, query, AsyncInstance, BlockingInstance};
use crate::{Enqueued, Error, Grant, Runtime, Stats};

/// One connection to one server; see the WIT `connection` resource.
/// After a timeout, protocol or connection error it stays closed.
pub struct Connection {
    inst: BlockingInstance,
    handle: Option<ResourceAny>,
}

/// [`Connection`] with an async API, on the caller's tokio runtime.
/// Dropping it drops its instance, which closes the socket: the server
/// then cancels its waiters and (by default) releases what it held.
pub struct AsyncConnection {
    inst: AsyncInstance,
    handle: Option<ResourceAny>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("open", &self.handle.is_some())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AsyncConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncConnection")
            .field("open", &self.handle.is_some())
            .finish_non_exhaustive()
    }
}

/// The server, the addresses the sandbox may reach, and the connect settings.
fn dial(
    host: &str,
    port: u16,
    auth_token: Option<&str>,
    tls: Option<&crate::Tls>,
) -> Result<(raw::Server, Vec<SocketAddr>, Vec<Setting>), Error> {
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
    Ok((server, allowed, settings))
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
        let (server, allowed, settings) = dial(host, port, auth_token, tls)?;
        let mut inst = self.instance_blocking(&allowed)?;
        let handle = flat(block_on!(&mut inst, |i| async {
            let conns = i.client.dflockd_client_connection().connection();
            conns.call_open(&mut i.store, &server, &settings).await
        }))?;
        Ok(Connection {
            inst,
            handle: Some(handle),
        })
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
        let (server, allowed, settings) = dial(host, port, auth_token, tls)?;
        let mut inst = self.instance_async(&allowed).await?;
        let conns = inst.client.dflockd_client_connection().connection();
        let handle = flat(conns.call_open(&mut inst.store, &server, &settings).await)?;
        Ok(AsyncConnection {
            inst,
            handle: Some(handle),
        })
    }
}

/// Every command: its method, arguments, result, export and conversion.
macro_rules! commands {
    ($make:ident) => {
        $make! {
            /// `ping` (dflockd 1.x has none: a typed `Error::Server`).
            fn ping() -> () = call_ping, |()| ();
            /// `stats`: the server's tables.
            fn stats() -> Stats = call_stats, raw::stats;
            /// `l`: `None` when the server's timeout passed.
            fn lock(key: &str, timeout_s: u64, lease_ttl_s: Option<u64>) -> Option<Grant>
                = call_lock, grant;
            /// `r`.
            fn unlock(key: &str, token: &str) -> () = call_unlock, |()| ();
            /// `n`: the remaining seconds.
            fn renew(key: &str, token: &str, lease_ttl_s: Option<u64>) -> u64
                = call_renew, |s| s;
            /// `e`.
            fn enqueue(key: &str, lease_ttl_s: Option<u64>) -> Enqueued
                = call_enqueue, raw::enqueued;
            /// `w`: `None` when the timeout passed.
            fn wait(key: &str, timeout_s: u64) -> Option<Grant> = call_wait, grant;
            /// `sl`.
            fn sem_acquire(key: &str, timeout_s: u64, limit: u32, lease_ttl_s: Option<u64>)
                -> Option<Grant> = call_sem_acquire, grant;
            /// `sr`.
            fn sem_release(key: &str, token: &str) -> () = call_sem_release, |()| ();
            /// `sn`.
            fn sem_renew(key: &str, token: &str, lease_ttl_s: Option<u64>) -> u64
                = call_sem_renew, |s| s;
            /// `se`.
            fn sem_enqueue(key: &str, limit: u32, lease_ttl_s: Option<u64>) -> Enqueued
                = call_sem_enqueue, raw::enqueued;
            /// `sw`.
            fn sem_wait(key: &str, timeout_s: u64) -> Option<Grant> = call_sem_wait, grant;
        }
    };
}

fn grant(g: Option<raw::WitGrant>) -> Option<Grant> {
    g.map(raw::grant)
}

macro_rules! blocking_commands {
    ($($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $out:ty = $export:ident, $convert:expr;)*) => {
        impl Connection {
            $(
                $(#[$doc])*
                pub fn $name(&mut self, $($arg: $ty),*) -> Result<$out, Error> {
                    let handle = self.handle.ok_or_else(|| Error::Runtime("the connection is gone".into()))?;
                    // No yield first (see `runtime::fresh`): a connection
                    // checks nothing before a request, and a reply is waited
                    // for under `poll`, which lets the runtime run.
                    let answer = flat(query!(&mut self.inst, |i| async {
                        let conns = i.client.dflockd_client_connection().connection();
                        conns.$export(&mut i.store, handle $(, $arg)*).await
                    }))?;
                    Ok(($convert)(answer))
                }
            )*
        }
    };
}

macro_rules! async_commands {
    ($($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $out:ty = $export:ident, $convert:expr;)*) => {
        impl AsyncConnection {
            $(
                $(#[$doc])*
                pub async fn $name(&mut self, $($arg: $ty),*) -> Result<$out, Error> {
                    let handle = self.handle.ok_or_else(|| Error::Runtime("the connection is gone".into()))?;
                    let conns = self.inst.client.dflockd_client_connection().connection();
                    let answer = flat(conns.$export(&mut self.inst.store, handle $(, $arg)*).await)?;
                    Ok(($convert)(answer))
                }
            )*
        }
    };
}

commands!(blocking_commands);
commands!(async_commands);

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            let _ = block_on!(&mut self.inst, |i| handle.resource_drop_async(&mut i.store));
        }
    }
}
