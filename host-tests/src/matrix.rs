//! What the fault matrix's two flavours (`fault_matrix.rs`, blocking, and
//! `fault_matrix_async.rs`) share: a lock whose losses arrive on a channel,
//! and what the server says of a key.

use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;
use std::time::Duration;

use dflockd_host::{Builder, Exclusive, LeaseLost, LossCause};

use crate::server::Dialect;

use crate::{connect, eventually, lock_on};

/// A builder for a lock on `addr` with a 2 s lease and a 1 s server wait,
/// whose losses arrive on the receiver (either flavour builds from it).
pub fn watching(addr: SocketAddr, key: &str) -> (Builder<Exclusive>, Receiver<LeaseLost>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let builder = lock_on(addr, key)
        .lease_ttl_s(2)
        .acquire_timeout_s(1)
        .on_lost(move |l| {
            let _ = tx.lock().unwrap_or_else(|p| p.into_inner()).send(l.clone());
        });
    (builder, rx)
}

/// How a held lease is lost when its server shuts down (SIGTERM): v1 serves
/// the renewals until the drain closes the connection; v2 refuses the next
/// one with `error_draining`.
pub fn shutdown_loss(dialect: Dialect) -> LossCause {
    match dialect {
        Dialect::V1 => LossCause::ConnectionLost,
        Dialect::V2 => LossCause::RenewalRefused,
    }
}

/// The key is free at the server at `server` (nothing left held by a failed client).
pub fn free_at_server(server: SocketAddr, key: &str) {
    let mut observer = connect(server);
    eventually(
        "the server let go of the key",
        Duration::from_secs(15),
        || {
            let held = observer.stats().ok()?.locks.iter().any(|l| l.key == key);
            (!held).then_some(())
        },
    );
}

/// Waits until the server at `server` counts `n` waiters on `key`.
pub fn waiters_become(server: SocketAddr, key: &str, n: u32) {
    let mut observer = connect(server);
    eventually(
        &format!("{n} waiter(s) on {key}"),
        Duration::from_secs(10),
        || (waiters(&mut observer, key)? == n).then_some(()),
    );
}

/// How many waiters the server behind `observer` counts on `key` now
/// (`None` when its stats do not come).
pub fn waiters(observer: &mut dflockd_host::Connection, key: &str) -> Option<u32> {
    let stats = observer.stats().ok()?;
    let lock = stats.locks.iter().find(|l| l.key == key);
    Some(lock.map_or(0, |l| l.waiters))
}
