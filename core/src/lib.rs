//! dflockd-core: the pure core of the dflockd client, shared by the
//! WebAssembly guest and the native host bindings.
//!
//! Nothing here does I/O or reads a clock: time is always an argument
//! (a [`time::Instant`] on the shell's monotonic clock), in the manner of
//! quinn-proto and rustls.
//! - [`protocol`]: validators, request encoders, reply decoders, and
//!   [`Error`], the one error type of the client;
//! - [`lease`]: when to renew one grant;
//! - [`session`]: the lifecycle of one lock or semaphore as a sans-IO state
//!   machine: it says what to send and when it next needs attention, and
//!   takes what was read;
//! - [`lock_set`]: several locks taken all or none, as a plan over their
//!   sessions;
//! - [`settings`]: options with their defaults applied and checked;
//! - [`fence`], [`shard`]: fencing tokens and key routing.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod counters;
pub mod fence;
pub mod lease;
pub mod lock_set;
pub mod protocol;
pub mod session;
pub mod settings;
pub mod shard;
pub mod time;

pub use counters::Counters;
pub use protocol::{Enqueued, Error, Grant, Kind, Loss, LossCause};
pub use session::{LeaseLost, Session};
pub use time::Instant;
