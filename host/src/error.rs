//! One error type, mirroring the WIT `error` variant, plus runtime faults.

use crate::raw;

/// Every failure of the host bindings.
///
/// The first cases mirror the component's WIT `error` one to one (see
/// `wit/types.wit` for each); [`Error::Runtime`] is a fault of the
/// embedding itself (loading, instantiating, or a trap). No case ever
/// carries an auth token or a whole lock token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A client-side deadline passed; the connection was closed.
    #[error("timed out waiting for the server; the connection was closed")]
    Timeout,
    /// The auth token is missing or wrong (`error_auth`).
    #[error("authentication failed")]
    Auth,
    /// The server's key cap is reached (`error_max_locks`).
    #[error("the server's lock limit is reached")]
    MaxLocks,
    /// The key's queue is full (`error_max_waiters`).
    #[error("the key's waiter queue is full")]
    MaxWaiters,
    /// The semaphore exists with another limit (`error_limit_mismatch`).
    #[error("the semaphore exists with a different limit")]
    LimitMismatch,
    /// `wait` without `enqueue` on the connection (`error_not_enqueued`).
    #[error("wait without a matching enqueue")]
    NotEnqueued,
    /// A second `enqueue` of the key (`error_already_enqueued`).
    #[error("already enqueued for this key")]
    AlreadyEnqueued,
    /// The lease ran out (`error_lease_expired`).
    #[error("the lease expired")]
    LeaseExpired,
    /// The server is shutting down (`error_draining`).
    #[error("the server is draining")]
    Draining,
    /// A cluster follower answered; the leader's address.
    #[error("not the cluster leader; leader: {0}")]
    NotLeader(String),
    /// A held lease was lost.
    #[error("the lock was lost: {0}")]
    LockLost(String),
    /// The server answered a plain `error`.
    #[error("the server refused: {0}")]
    Server(String),
    /// The server broke the protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// Connecting, reading or writing failed.
    #[error("connection failed: {0}")]
    Connection(String),
    /// TLS failed.
    #[error("TLS failed: {0}")]
    Tls(String),
    /// A bad argument; nothing was sent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The embedding failed: the component could not be loaded or
    /// instantiated, or it trapped (its instance is unusable afterwards).
    #[error("component runtime: {0}")]
    Runtime(String),
}

/// The WIT error of both binding flavours maps case by case.
macro_rules! from_wit_error {
    ($wit:path) => {
        impl From<$wit> for Error {
            fn from(e: $wit) -> Self {
                use $wit as W;
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
                    W::LockLost(s) => Error::LockLost(s),
                    W::Server(s) => Error::Server(s),
                    W::Protocol(s) => Error::Protocol(s),
                    W::Connection(s) => Error::Connection(s),
                    W::Tls(s) => Error::Tls(s),
                    W::InvalidArgument(s) => Error::InvalidArgument(s),
                }
            }
        }
    };
}

from_wit_error!(raw::Error);
from_wit_error!(crate::raw_async::Error);

impl From<wasmtime::Error> for Error {
    fn from(e: wasmtime::Error) -> Self {
        Error::Runtime(format!("{e:?}"))
    }
}

/// Flattens a call's two layers: the trap layer and the WIT result.
pub(crate) fn flat<T, E: Into<Error>>(r: wasmtime::Result<Result<T, E>>) -> Result<T, Error> {
    r?.map_err(Into::into)
}
