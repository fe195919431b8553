//! The pure dflockd protocol: validators, request encoders, reply decoders.
//!
//! No I/O and no clock. Every request is validated completely before a byte
//! is produced, so a caller mistake can never put a half-written or forged
//! command on the wire. Every reply line decodes into a typed value or an
//! [`Error`]; the status table lives in [`reply`].

pub mod answer;
mod error;
mod line;
pub mod reply;
mod request;
pub mod stats;
mod token;

pub use answer::{Answer, Expect};
pub use error::{redact, Error, Loss, LossCause};
pub use line::LineReader;
pub use reply::{Enqueued, Grant};
pub(crate) use request::{check_auth_token, check_key, check_lease, check_seconds};
pub use request::{Kind, Request, Space};
pub use token::fence_from_token;

/// The server's cap on a request line (command, key, most args), in bytes.
pub const MAX_LINE: usize = 256;
/// The server's cap on the `auth` token line, in bytes.
pub const MAX_AUTH_TOKEN: usize = 64 * 1024;
/// The client's cap on one reply line (a `stats` reply can be large), in bytes.
pub const MAX_REPLY: usize = 1024 * 1024;
/// The largest number of seconds the server accepts for any duration.
pub const MAX_SECONDS: u64 = 9_223_372_036;
/// The length of a grant token: 16 hex fence + 16 hex salt.
pub const TOKEN_LEN: usize = 32;
