//! The options of a lock or semaphore, shared by both flavours: the
//! [`Builder`] and what it makes, the [`Recipe`] an object opens its
//! resource (again) from.

use std::marker::PhantomData;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use crate::raw_async::{self, Setting};
use crate::{AllOf, Counting, Error, Exclusive, Kind, LeaseLost, Runtime};

pub(crate) type LostCallback = Arc<dyn Fn(&LeaseLost) + Send + Sync>;
type ShardFn = Arc<dyn Fn(&str, usize) -> usize + Send + Sync>;

/// Options for a [`Lock`](crate::Lock) or [`Semaphore`](crate::Semaphore); every unset option keeps the
/// component's documented default (see `wit/types.wit`, `setting`).
pub struct Builder<K> {
    runtime: Runtime,
    key: String,
    /// A lock set's keys (then `key` is empty).
    keys: Vec<String>,
    limit: Option<u32>,
    servers: Vec<(String, u16)>,
    /// Each option the caller set, as the WIT setting it becomes.
    settings: Vec<Setting>,
    shard: Option<ShardFn>,
    on_lost: Option<LostCallback>,
    kind: PhantomData<K>,
}

/// Every option but the secrets: the auth token and TLS material show
/// only that they are set.
impl<K> std::fmt::Debug for Builder<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let settings: Vec<String> = self.settings.iter().map(redacted).collect();
        f.debug_struct("Builder")
            .field("key", &self.key)
            .field("keys", &self.keys)
            .field("limit", &self.limit)
            .field("servers", &self.servers)
            .field("settings", &settings)
            .field("shard_with", &self.shard.is_some())
            .field("on_lost", &self.on_lost.is_some())
            .finish()
    }
}

/// A setting as `Debug` shows it, secrets hidden.
fn redacted(setting: &Setting) -> String {
    match setting {
        Setting::AuthToken(_) => "AuthToken(<redacted>)".into(),
        Setting::Tls(list) => format!("Tls({} settings, <redacted>)", list.len()),
        other => format!("{other:?}"),
    }
}

impl Runtime {
    /// A lock on `key`; configure it, then [`Builder::build`].
    pub fn lock(&self, key: impl Into<String>) -> Builder<Exclusive> {
        Builder::new(self.clone(), key.into(), None)
    }

    /// A semaphore of `limit` holders on `key`.
    pub fn semaphore(&self, key: impl Into<String>, limit: u32) -> Builder<Counting> {
        Builder::new(self.clone(), key.into(), Some(limit))
    }

    /// A lock set: every one of `keys` taken, or none (see [`LockSet`](crate::LockSet)).
    pub fn lock_set<S: Into<String>>(&self, keys: impl IntoIterator<Item = S>) -> Builder<AllOf> {
        let mut builder = Builder::new(self.clone(), String::new(), None);
        builder.keys = keys.into_iter().map(Into::into).collect();
        builder
    }
}

impl<K> Builder<K> {
    fn new(runtime: Runtime, key: String, limit: Option<u32>) -> Self {
        Builder {
            runtime,
            key,
            keys: Vec::new(),
            limit,
            servers: Vec::new(),
            settings: Vec::new(),
            shard: None,
            on_lost: None,
            kind: PhantomData,
        }
    }

    fn set(mut self, setting: Setting) -> Self {
        self.settings.push(setting);
        self
    }

    /// The servers (default: `127.0.0.1:6388`). The key routes to one of
    /// them by CRC-32, as in the Go, Python and TypeScript clients.
    pub fn servers<H: Into<String>>(mut self, servers: impl IntoIterator<Item = (H, u16)>) -> Self {
        self.servers = servers.into_iter().map(|(h, p)| (h.into(), p)).collect();
        self
    }

    /// One server.
    pub fn server(self, host: impl Into<String>, port: u16) -> Self {
        self.servers([(host.into(), port)])
    }

    /// Seconds the server may keep `acquire` waiting (default 10; 0 = try-lock).
    pub fn acquire_timeout_s(self, seconds: u64) -> Self {
        self.set(Setting::AcquireTimeoutS(seconds))
    }

    /// Lease per grant in seconds (default: the server's).
    pub fn lease_ttl_s(self, seconds: u64) -> Self {
        self.set(Setting::LeaseTtlS(seconds))
    }

    /// Renew after this fraction of the lease, in (0, 1) (default 0.5).
    pub fn renew_ratio(self, ratio: f64) -> Self {
        self.set(Setting::RenewRatio(ratio))
    }

    /// Connect timeout in milliseconds (default 10 000).
    pub fn connect_timeout_ms(self, ms: u64) -> Self {
        self.set(Setting::ConnectTimeoutMs(ms))
    }

    /// Shared secret for servers started with `--auth-token`.
    pub fn auth_token(self, token: impl Into<String>) -> Self {
        self.set(Setting::AuthToken(token.into()))
    }

    /// TLS to the server (see [`Tls`](crate::Tls)); default: plain TCP.
    pub fn tls(self, tls: crate::Tls) -> Self {
        self.set(Setting::Tls(tls.to_wit()))
    }

    /// Custom sharding: `f(key, server_count)` picks the server index (not
    /// for a lock set, whose members route by CRC-32: its build refuses it).
    pub fn shard_with(mut self, f: impl Fn(&str, usize) -> usize + Send + Sync + 'static) -> Self {
        self.shard = Some(Arc::new(f));
        self
    }

    /// Called (on the runtime's `dflockd-on-lost` thread, in the order of
    /// the losses) when a held lease is lost.
    pub fn on_lost(mut self, f: impl Fn(&LeaseLost) + Send + Sync + 'static) -> Self {
        self.on_lost = Some(Arc::new(f));
        self
    }

    /// The runtime the object will live in.
    pub(crate) fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Applies the server default and the custom shard choice.
    pub(crate) fn into_parts(mut self) -> Result<(Runtime, Recipe, Option<LostCallback>), Error> {
        if self.servers.is_empty() {
            self.servers.push(("127.0.0.1".into(), 6388));
        }
        if self.shard.is_some() && !self.keys.is_empty() {
            return Err(Error::InvalidArgument(
                "a lock set routes each key by CRC-32: shard_with is for one key".into(),
            ));
        }
        if let Some(shard) = &self.shard {
            let index = shard(&self.key, self.servers.len());
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            self.settings.push(Setting::ServerIndex(index));
        }
        let servers = self
            .servers
            .iter()
            .map(|(host, port)| raw_async::Server {
                host: host.clone(),
                port: *port,
            })
            .collect();
        self.settings.push(Setting::Servers(servers));
        let kind = match self.limit {
            None => Kind::Lock,
            Some(limit) => Kind::Semaphore {
                limit: std::num::NonZeroU32::new(limit).ok_or_else(|| {
                    Error::InvalidArgument("semaphore limit must be above 0".into())
                })?,
            },
        };
        let recipe = Recipe {
            key: self.key,
            keys: self.keys,
            kind,
            servers: self.servers,
            settings: self.settings,
        };
        Ok((self.runtime, recipe, self.on_lost))
    }
}

/// Everything needed to open the resource (again).
pub(crate) struct Recipe {
    pub(crate) key: String,
    /// A lock set's keys; empty for a lock or semaphore.
    pub(crate) keys: Vec<String>,
    /// Lock, or semaphore with its limit: the one place the flavours ask.
    pub(crate) kind: Kind,
    pub(crate) servers: Vec<(String, u16)>,
    pub(crate) settings: Vec<Setting>,
}

/// Every address the servers resolve to: the only ones the sandbox lets the
/// component reach.
pub(crate) fn allowed_addresses(servers: &[(String, u16)]) -> Result<Vec<SocketAddr>, Error> {
    let mut all = Vec::new();
    for (host, port) in servers {
        let addrs = (host.as_str(), *port)
            .to_socket_addrs()
            .map_err(|e| Error::Connection(format!("resolving {host}: {e}")))?;
        all.extend(addrs);
    }
    Ok(all)
}
