//! The accept loop, the lease sweep and idle-key collection, and the
//! shutdown: stop accepting, let connections drain for
//! `--shutdown-timeout`, then close what is left.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::manager::{Limits, Table};
use crate::tokens::Tokens;
use crate::{conn, log, Options};

/// How a server is asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// As on SIGTERM: stop accepting, drain, then close what is left.
    Graceful,
    /// At once: every connection closed now (as a killed process's).
    Now,
}

/// What every task of one server shares.
pub(crate) struct Shared {
    pub(crate) opts: Options,
    table: Mutex<Table>,
    /// Open connections (for `--max-connections` and `stats`).
    pub(crate) connections: AtomicUsize,
    /// Set once a shutdown begins.
    pub(crate) draining: watch::Sender<bool>,
    /// Set while paused: nothing is read, answered or swept.
    paused: watch::Sender<bool>,
}

impl Shared {
    pub(crate) fn new(opts: Options) -> Shared {
        let limits = Limits {
            max_locks: opts.max_locks,
            max_waiters: opts.max_waiters,
        };
        let table = Table::new(opts.dialect, limits, Tokens::new(opts.dialect));
        Shared {
            opts,
            table: Mutex::new(table),
            connections: AtomicUsize::new(0),
            draining: watch::channel(false).0,
            paused: watch::channel(false).0,
        }
    }

    /// The lock table. A panic while it was held cannot leave it half
    /// changed in a way worse than the panic itself: go on with it.
    pub(crate) fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    pub(crate) fn set_paused(&self, paused: bool) {
        self.paused.send_replace(paused);
    }

    /// Returns at once unless paused; else when resumed.
    pub(crate) async fn unpaused(&self) {
        if !*self.paused.borrow() {
            return;
        }
        let mut rx = self.paused.subscribe();
        let _ = rx.wait_for(|p| !*p).await;
    }
}

/// The TLS acceptor of `--tls-cert`/`--tls-key`, read once at start.
pub(crate) fn tls_acceptor(opts: &Options) -> Result<Option<TlsAcceptor>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let Some((cert, key)) = &opts.tls else {
        return Ok(None);
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("tls: {}: {e}", cert.display()))?;
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("tls: {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| format!("tls: {e}"))?;
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

/// Serves `listener` until `stop` says how to stop.
pub(crate) async fn run(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    stop: impl Future<Output = Stop>,
) {
    if tls.is_some() {
        log::info("TLS enabled", &[]);
    }
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let dialect = shared.opts.dialect.to_string();
    log::info("listening", &[("addr", &addr), ("dialect", &dialect)]);
    let mut background = JoinSet::new();
    background.spawn(sweep(shared.clone()));
    background.spawn(collect_idle(shared.clone()));
    let mut conns = JoinSet::new();
    let mut next_id = 0u64;
    tokio::pin!(stop);
    let how = loop {
        tokio::select! {
            how = &mut stop => break how,
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
                let max = shared.opts.max_connections;
                if max > 0 && shared.connections.load(Ordering::SeqCst) >= max {
                    // dflockd closes it without a word.
                    log::warn("max connections reached, rejecting", &[("max", &max.to_string())]);
                    drop(stream);
                    continue;
                }
                shared.connections.fetch_add(1, Ordering::SeqCst);
                next_id += 1;
                let _ = stream.set_nodelay(true);
                conns.spawn(conn::accept(stream, tls.clone(), next_id, shared.clone()));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    };
    drop(listener);
    background.abort_all();
    shared.draining.send_replace(true);
    if how == Stop::Graceful {
        log::info("shutting down, draining connections", &[]);
        let drained = async { while conns.join_next().await.is_some() {} };
        let limit = shared.opts.shutdown_timeout;
        if limit.is_zero() {
            drained.await;
        } else if tokio::time::timeout(limit, drained).await.is_err() {
            log::warn("shutdown timeout reached, force-closing connections", &[]);
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

/// Evicts run-out leases every `--lease-sweep-interval`.
async fn sweep(shared: Arc<Shared>) {
    every(shared.opts.lease_sweep_interval, &shared, |table, now| {
        table.sweep(now)
    })
    .await
}

/// Forgets idle keys every `--gc-interval`.
async fn collect_idle(shared: Arc<Shared>) {
    let max_idle = shared.opts.gc_max_idle;
    every(shared.opts.gc_interval, &shared, |table, now| {
        table.collect_idle(now, max_idle)
    })
    .await
}

async fn every(period: Duration, shared: &Shared, mut work: impl FnMut(&mut Table, Instant)) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        ticks.tick().await;
        shared.unpaused().await;
        work(&mut shared.table(), Instant::now());
    }
}
