use thiserror::Error;

/// Every failure of the client, mirroring the WIT `error` variant one to one.
///
/// Server answers, transport faults and caller mistakes are separate cases.
/// No case carries an auth token or a whole lock token: see [`redact`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// A client-side deadline passed; the connection was closed (out of step).
    #[error("timed out waiting for the server; the connection was closed")]
    Timeout,
    /// `error_auth`: the auth token is missing or wrong.
    #[error("authentication failed (error_auth)")]
    Auth,
    /// `error_max_locks`: the server's key cap is reached.
    #[error("the server's lock limit is reached (error_max_locks)")]
    MaxLocks,
    /// `error_max_waiters`: the key's queue is full.
    #[error("the key's waiter queue is full (error_max_waiters)")]
    MaxWaiters,
    /// `error_limit_mismatch`: the semaphore exists with another limit.
    #[error("the semaphore exists with a different limit (error_limit_mismatch)")]
    LimitMismatch,
    /// `error_not_enqueued`: wait without enqueue on this connection.
    #[error("wait without a matching enqueue on this connection (error_not_enqueued)")]
    NotEnqueued,
    /// `error_already_enqueued`: a second enqueue of the key on this connection.
    #[error("already enqueued for this key on this connection (error_already_enqueued)")]
    AlreadyEnqueued,
    /// `error_lease_expired`: the lease ran out.
    #[error("the lease expired (error_lease_expired)")]
    LeaseExpired,
    /// `error_draining`: the server is shutting down.
    #[error("the server is draining (error_draining)")]
    Draining,
    /// `error_not_leader`: a cluster follower; the leader's address.
    #[error("the server is not the cluster leader; leader: {0}")]
    NotLeader(String),
    /// The lease of a held lock was lost.
    #[error("the lock was lost: {0}")]
    LockLost(String),
    /// A plain `error` from the server.
    #[error("the server refused: {0}")]
    Server(String),
    /// The server broke the protocol; the connection was closed.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A transport failure; the connection was closed.
    #[error("connection failed: {0}")]
    Connection(String),
    /// TLS failed.
    #[error("TLS failed: {0}")]
    Tls(String),
    /// The caller passed a bad value; nothing was sent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl Error {
    /// Whether the connection that produced this error is unusable now.
    pub fn breaks_connection(&self) -> bool {
        matches!(
            self,
            Error::Timeout | Error::Protocol(_) | Error::Connection(_) | Error::Tls(_)
        )
    }
}

/// Shortens every token-like word (16 or more hex characters) in `text` to
/// its first 8 characters and an ellipsis, and caps the text at 200
/// characters, so that a reply line can be quoted in an error or a log.
pub fn redact(text: &str) -> String {
    const KEEP: usize = 8;
    const CAP: usize = 200;
    let mut out = String::new();
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let hexish = word.len() >= 16 && word.bytes().all(|b| b.is_ascii_hexdigit());
        match (hexish, word.get(..KEEP)) {
            (true, Some(prefix)) => {
                out.push_str(prefix);
                out.push('…');
            }
            _ => out.push_str(word),
        }
    }
    if let Some((cut, _)) = out.char_indices().nth(CAP) {
        out.truncate(cut);
        out.push('…');
    }
    out.escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_keeps_a_short_prefix_of_tokens() {
        assert_eq!(
            redact("ok 0000000000000001abcdefabcdefabcd 30"),
            "ok 00000000… 30"
        );
        assert_eq!(redact("queued"), "queued");
    }

    #[test]
    fn redact_caps_and_escapes() {
        let long = "x".repeat(1000);
        assert!(redact(&long).chars().count() <= 201);
        assert_eq!(redact("a\u{1b}b"), "a\\u{1b}b");
    }

    #[test]
    fn transport_faults_break_the_connection_server_answers_do_not() {
        assert!(Error::Timeout.breaks_connection());
        assert!(Error::Protocol("x".into()).breaks_connection());
        assert!(!Error::MaxLocks.breaks_connection());
        assert!(!Error::Server("x".into()).breaks_connection());
    }
}
