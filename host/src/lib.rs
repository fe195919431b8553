//! Rust host bindings for the dflockd client component.
//!
//! The component (a WebAssembly component built from this repository's
//! root crate) speaks the dflockd protocol; this crate embeds it in
//! wasmtime, sandboxed so that it can reach only the configured servers,
//! and gives it a Rust API in the manner of the Python client.
//!
//! # Quickstart
//!
//! ```no_run
//! use dflockd_host::Runtime;
//!
//! # fn main() -> Result<(), dflockd_host::Error> {
//! let runtime = Runtime::new()?; // compiles once, then loads from the cache
//! let lock = runtime.lock("my-key").lease_ttl_s(20).build()?;
//! if let Some(guard) = lock.acquire()? {
//!     // critical section: the lease renews in the background
//!     println!("fence {:?}", guard.fence());
//! } // released here
//! # Ok(()) }
//! ```
//!
//! Every [`Lock`] / [`Semaphore`] of a [`Runtime`] lives in one of its
//! component instances (one per core), each with a connection of its own;
//! each instance's driver waits for all its sockets and deadlines at once,
//! keeps the held leases alive and reports their loss
//! ([`Builder::on_lost`], [`Holder::is_held`]). The types are those of `dflockd-core`: one
//! [`Error`], [`Grant`], [`Enqueued`], [`Stats`], [`LeaseLost`].
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]

pub mod asynchronous;
mod builder;
mod callbacks;
mod clock;
mod connection;
mod driver;
mod error;
mod instance;
mod lead;
mod lock;
mod object;
/// Generated bindings stay private: only core types cross the API.
#[allow(missing_docs)]
mod raw_async;
mod runtime;
mod tls;
mod view;

pub use builder::Builder;
pub use connection::Connection;
pub use dflockd_core::protocol::stats::{IdleInfo, LockInfo, SemaphoreInfo, Stats};
pub use dflockd_core::{Counters, Enqueued, Grant, Kind, LeaseLost, Loss, LossCause};
pub use error::Error;
pub use lock::{
    AllOf, Counting, Exclusive, Guard, Holder, Lock, LockSet, OneKey, OwnedGuard, Semaphore,
};
pub use runtime::{default_component_path, embedded_component, sandbox, Runtime, RuntimeBuilder};
pub use tls::Tls;

/// This crate's version: also the version of the component it carries and
/// of the WIT package `dflockd:client` that component exports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
