//! dflockd-component: a dflockd client as a WebAssembly component.
//!
//! The crate is a thin WASI shell over the pure core, `dflockd-core`
//! (protocol, lease scheduling, the sans-IO session, settings, the one
//! error type), which the host bindings share natively. Its own parts:
//! - [`tls`]: rustls, sans-IO, unit-tested natively;
//! - the component glue (`wasm32` only): the transport over
//!   `wasi:sockets`, the reactor over `wasi:io/poll`, the key clients that
//!   run the core's sessions on them, and the exports of `wit/`.
#![deny(unsafe_code)]
#![deny(missing_docs)]

// The core's modules, under the names the glue uses.
#[allow(unused_imports)]
use dflockd_core::{counters, fence, lock_set, protocol, session, settings, shard, time};

pub mod tls;

#[cfg(target_arch = "wasm32")]
mod component;
