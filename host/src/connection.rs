//! The low-level blocking API: one connection, one method per command.

use std::net::ToSocketAddrs;

use wasmtime::component::ResourceAny;

use crate::error::flat;
use crate::raw_async::{self as raw, Setting};
use crate::runtime::{block_on, BlockingInstance};
use crate::{Enqueued, Grant, Stats};
use crate::{Error, Runtime};

/// One connection to one server; see the WIT `connection` resource.
/// After a timeout, protocol or connection error it stays closed.
pub struct Connection {
    inst: BlockingInstance,
    handle: Option<ResourceAny>,
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
        let allowed: Vec<_> = (host, port)
            .to_socket_addrs()
            .map_err(|e| Error::Connection(format!("resolving {host}: {e}")))?
            .collect();
        let mut inst = self.instance_blocking(&allowed)?;
        let server = raw::Server {
            host: host.into(),
            port,
        };
        let mut opts = Vec::new();
        opts.extend(auth_token.map(|t| Setting::AuthToken(t.into())));
        opts.extend(tls.map(|t| Setting::Tls(t.to_wit())));
        let handle = flat(block_on!(&mut inst, |i| async {
            let conns = i.client.dflockd_client_connection().connection();
            conns.call_open(&mut i.store, &server, &opts).await
        }))?;
        Ok(Connection {
            inst,
            handle: Some(handle),
        })
    }
}

/// Calls a method of the connection resource.
macro_rules! call {
    ($self:ident, $method:ident $(, $arg:expr)*) => {{
        let handle = $self.handle.ok_or_else(|| Error::Runtime("the connection is gone".into()))?;
        flat(block_on!(&mut $self.inst, |i| async {
            let conns = i.client.dflockd_client_connection().connection();
            conns.$method(&mut i.store, handle $(, $arg)*).await
        }))
    }};
}

impl Connection {
    /// `ping`.
    pub fn ping(&mut self) -> Result<(), Error> {
        call!(self, call_ping)
    }
    /// `stats`: the server's tables.
    pub fn stats(&mut self) -> Result<Stats, Error> {
        call!(self, call_stats).map(raw::stats)
    }
    /// `l`: `None` when the server's timeout passed.
    pub fn lock(
        &mut self,
        key: &str,
        timeout_s: u64,
        lease_ttl_s: Option<u64>,
    ) -> Result<Option<Grant>, Error> {
        call!(self, call_lock, key, timeout_s, lease_ttl_s).map(|g| g.map(raw::grant))
    }
    /// `r`.
    pub fn unlock(&mut self, key: &str, token: &str) -> Result<(), Error> {
        call!(self, call_unlock, key, token)
    }
    /// `n`: the remaining seconds.
    pub fn renew(
        &mut self,
        key: &str,
        token: &str,
        lease_ttl_s: Option<u64>,
    ) -> Result<u64, Error> {
        call!(self, call_renew, key, token, lease_ttl_s)
    }
    /// `e`.
    pub fn enqueue(&mut self, key: &str, lease_ttl_s: Option<u64>) -> Result<Enqueued, Error> {
        call!(self, call_enqueue, key, lease_ttl_s).map(raw::enqueued)
    }
    /// `w`.
    pub fn wait(&mut self, key: &str, timeout_s: u64) -> Result<Option<Grant>, Error> {
        call!(self, call_wait, key, timeout_s).map(|g| g.map(raw::grant))
    }
    /// `sl`.
    pub fn sem_acquire(
        &mut self,
        key: &str,
        timeout_s: u64,
        limit: u32,
        lease_ttl_s: Option<u64>,
    ) -> Result<Option<Grant>, Error> {
        call!(self, call_sem_acquire, key, timeout_s, limit, lease_ttl_s).map(|g| g.map(raw::grant))
    }
    /// `sr`.
    pub fn sem_release(&mut self, key: &str, token: &str) -> Result<(), Error> {
        call!(self, call_sem_release, key, token)
    }
    /// `sn`.
    pub fn sem_renew(
        &mut self,
        key: &str,
        token: &str,
        lease_ttl_s: Option<u64>,
    ) -> Result<u64, Error> {
        call!(self, call_sem_renew, key, token, lease_ttl_s)
    }
    /// `se`.
    pub fn sem_enqueue(
        &mut self,
        key: &str,
        limit: u32,
        lease_ttl_s: Option<u64>,
    ) -> Result<Enqueued, Error> {
        call!(self, call_sem_enqueue, key, limit, lease_ttl_s).map(raw::enqueued)
    }
    /// `sw`.
    pub fn sem_wait(&mut self, key: &str, timeout_s: u64) -> Result<Option<Grant>, Error> {
        call!(self, call_sem_wait, key, timeout_s).map(|g| g.map(raw::grant))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            let _ = block_on!(&mut self.inst, |i| handle.resource_drop_async(&mut i.store));
        }
    }
}
