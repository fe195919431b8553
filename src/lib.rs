//! dflockd-component: a dflockd client as a WebAssembly component.
//!
//! The crate has two halves:
//! - a pure core, compiled everywhere and unit-tested natively: [`protocol`]
//!   (validators, encoders, decoders), [`lease`] (renewal scheduling on a
//!   caller-supplied clock), [`fence`], [`shard`], [`settings`] and [`tls`]
//!   (rustls, sans-IO);
//! - the component glue (`wasm32` only): transport over `wasi:sockets`, the
//!   reactor over `wasi:io/poll`, and the resources exported through `wit/`.
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod fence;
pub mod lease;
pub mod protocol;
pub mod settings;
pub mod shard;
pub mod tls;

#[cfg(target_arch = "wasm32")]
mod component;
