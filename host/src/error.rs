//! The one error type, [`dflockd_core::Error`], re-exported: the
//! component's WIT `error` maps into it case by case, and a trap or a
//! failure to load is its [`Error::Runtime`] case.

pub use dflockd_core::Error;

use crate::raw_async::{self, exports::dflockd::client::types::Error as WitError};

/// The component's WIT error, case by case: the one table.
impl From<WitError> for Error {
    fn from(e: WitError) -> Self {
        use WitError as W;
        match e {
            W::Timeout => Error::Timeout,
            W::Auth => Error::Auth,
            W::MaxLocks => Error::MaxLocks,
            W::MaxWaiters => Error::MaxWaiters,
            W::LimitMismatch => Error::LimitMismatch,
            W::NotEnqueued => Error::NotEnqueued,
            W::AlreadyEnqueued => Error::AlreadyEnqueued,
            W::LeaseExpired => Error::LeaseExpired,
            W::Draining => Error::Draining,
            W::NotLeader(s) => Error::NotLeader(s),
            W::LockLost(l) => Error::LockLost(raw_async::loss(l)),
            W::Server(s) => Error::Server(s),
            W::Protocol(s) => Error::Protocol(s),
            W::Connection(s) => Error::Connection(s),
            W::Tls(s) => Error::Tls(s),
            W::InvalidArgument(s) => Error::InvalidArgument(s),
        }
    }
}

/// A fault of the embedding (loading, instantiating, a trap) as [`Error::Runtime`].
pub(crate) fn runtime(e: wasmtime::Error) -> Error {
    Error::Runtime(format!("{e:?}"))
}

/// `?` for wasmtime's results (loading, compiling, linking, calling):
/// `.or_runtime()?`.
pub(crate) trait OrRuntime<T> {
    /// The result, with a wasmtime error as [`Error::Runtime`].
    fn or_runtime(self) -> Result<T, Error>;
}

impl<T> OrRuntime<T> for wasmtime::Result<T> {
    fn or_runtime(self) -> Result<T, Error> {
        self.map_err(runtime)
    }
}

/// Flattens a call's two layers: the trap layer and the WIT result.
pub(crate) fn flat<T, E: Into<Error>>(r: wasmtime::Result<Result<T, E>>) -> Result<T, Error> {
    r.map_err(runtime)?.map_err(Into::into)
}
