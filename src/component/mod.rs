//! The component glue: WIT bindings and thin exports that delegate to the
//! key clients (the WASI shell of the core's sessions), the transport and the
//! pure core. Nothing here may panic: a trap poisons the instance.
//!
//! Imports run one way: `resources` and `lock_set` → `key_client`, `connection` →
//! `conn_client`; both clients → `events`, `dial` → `probe` → `transport` →
//! `reactor` → `clock`; the reactor knows the clients only as its
//! `Background` trait.

mod clock;
mod conn_client;
mod connection;
mod convert;
mod dial;
mod events;
mod key_client;
mod lock_set;
mod probe;
mod reactor;
mod resources;
mod transport;

/// Generated bindings: the only place where `unsafe` (the canonical ABI) is allowed.
#[allow(unsafe_code, missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "client",
        with: { "wasi:io/poll@0.2.12": wasip2::io::poll },
    });

    use super::Component;
    export!(Component with_types_in self);
}

use bindings::exports::dflockd::client as api;

/// The one component struct; it only names the resource types.
struct Component;

impl api::locks::Guest for Component {
    type Lock = resources::Lock;
    type Semaphore = resources::Semaphore;
    type LockSet = lock_set::LockSet;
}

impl api::connection::Guest for Component {
    type Connection = connection::Connection;
}

impl api::fencing::Guest for Component {
    type FenceGuard = resources::FenceGuard;

    fn fence_from_token(token: String) -> Result<u64, api::types::Error> {
        crate::fence::fence_from_token(&token).map_err(Into::into)
    }
}

impl api::sharding::Guest for Component {
    fn shard_index(key: String, n: u32) -> Result<u32, api::types::Error> {
        crate::shard::shard_index(&key, n).ok_or_else(|| {
            crate::protocol::Error::InvalidArgument("the server count must be above 0".into())
                .into()
        })
    }
}

impl api::driver::Guest for Component {
    fn next_wakeup() -> wasip2::io::poll::Pollable {
        clock::timer(next_deadline().unwrap_or(clock::NEVER))
    }

    fn next_deadline() -> Option<u64> {
        next_deadline().map(crate::time::Instant::as_nanos)
    }

    fn pollables() -> Vec<wasip2::io::poll::Pollable> {
        // Events waiting: one pollable ready at once.
        if events::waiting() {
            return vec![clock::timer(crate::time::Instant::default())];
        }
        reactor::pollables()
    }

    fn poll_events() -> Vec<api::driver::Event> {
        reactor::drive_all(clock::now());
        events::take_all().into_iter().map(Into::into).collect()
    }

    fn drive() -> Vec<api::driver::LeaseLost> {
        reactor::drive_all(clock::now());
        events::take_losses().into_iter().map(Into::into).collect()
    }

    fn totals() -> api::driver::Counters {
        key_client::counters().into()
    }
}

/// When the driver must run next: now while events wait to be taken;
/// `None` when nothing is held or pending.
fn next_deadline() -> Option<crate::time::Instant> {
    if events::waiting() {
        return Some(crate::time::Instant::default());
    }
    reactor::next_deadline()
}
