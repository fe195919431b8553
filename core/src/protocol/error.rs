use thiserror::Error;

/// Every failure of the client: the one error type of the guest, of the
/// host bindings (which re-export it) and of the WIT `error` variant, which
/// it mirrors case by case (plus [`Error::Runtime`], the host's own).
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
    /// The lease of a held lock was lost: why, typed, and in words.
    #[error("the lock was lost: {0}")]
    LockLost(Loss),
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
    /// The embedding failed: the component could not be loaded or
    /// instantiated, or it trapped (its instance is unusable afterwards).
    /// Only a host produces it; the component never does.
    #[error("component runtime: {0}")]
    Runtime(String),
}

/// Why a held lease was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LossCause {
    /// The server refused a renewal: the lease had ended there, or the
    /// token no longer held the key.
    RenewalRefused,
    /// The server refused the release: the lease had ended before it.
    ReleaseRefused,
    /// The connection that held the lease broke (closed, reset, out of
    /// step, TLS failure); the server lets go of what it held.
    ConnectionLost,
    /// A renewal was sent but no reply came before the lease ran out.
    NoReply,
    /// The lease ran out before a renewal was sent: nothing drove it.
    NotRenewed,
    /// The server renewed it for less time than the reply took.
    Expired,
}

impl LossCause {
    /// The cause in a few words.
    pub fn describe(self) -> &'static str {
        match self {
            LossCause::RenewalRefused => "the server refused the renewal",
            LossCause::ReleaseRefused => "the server refused the release",
            LossCause::ConnectionLost => "the connection was lost",
            LossCause::NoReply => "no renewal reply came before the lease ran out",
            LossCause::NotRenewed => "the lease ran out before it was renewed (nothing drove it)",
            LossCause::Expired => "the server renewed it for less time than the reply took",
        }
    }
}

/// A lost lease: the typed cause and what was seen (redacted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    /// Why, typed.
    pub cause: LossCause,
    /// What was seen: the server's answer or the transport's error; may be empty.
    pub detail: String,
}

impl Loss {
    /// A loss of `cause`, with `detail`.
    pub fn new(cause: LossCause, detail: impl Into<String>) -> Self {
        Loss {
            cause,
            detail: detail.into(),
        }
    }

    /// The loss that `error`, met while the lease was held, means.
    pub fn from_error(error: &Error) -> Self {
        let cause = match error {
            Error::LockLost(loss) => return loss.clone(),
            Error::Timeout
            | Error::Protocol(_)
            | Error::Connection(_)
            | Error::Tls(_)
            | Error::Runtime(_) => LossCause::ConnectionLost,
            _ => LossCause::RenewalRefused,
        };
        Loss::new(cause, error.to_string())
    }
}

impl std::fmt::Display for Loss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.cause.describe())?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

impl Error {
    /// A lost lease, for `cause`, with `detail`.
    pub fn lost(cause: LossCause, detail: impl Into<String>) -> Self {
        Error::LockLost(Loss::new(cause, detail))
    }

    /// Whether the connection that produced this error is unusable now.
    pub fn breaks_connection(&self) -> bool {
        matches!(
            self,
            Error::Timeout | Error::Protocol(_) | Error::Connection(_) | Error::Tls(_)
        )
    }
}

/// Escapes `text`, then shortens every token-like run in it (16 or more
/// hex digits, wherever it stands: a token glued to other characters is
/// still a token) to its first 8 characters and an ellipsis, and caps it at
/// 200 characters, so that a reply line can be quoted in an error or a log.
/// Escaping comes first because it adds hex digits (`\0`, `\u{1b}`) that
/// could lengthen a run; the result has no run of 16 hex digits at all.
pub fn redact(text: &str) -> String {
    const KEEP: usize = 8;
    const RUN: usize = 16;
    const CAP: usize = 200;
    fn flush(out: &mut String, run: &mut String) {
        if run.len() >= RUN {
            out.push_str(&run[..KEEP]);
            out.push('…');
        } else {
            out.push_str(run);
        }
        run.clear();
    }
    let mut out = String::new();
    let mut run = String::new();
    for c in text.escape_debug() {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else {
            flush(&mut out, &mut run);
            out.push(c);
        }
    }
    flush(&mut out, &mut run);
    if let Some((cut, _)) = out.char_indices().nth(CAP) {
        out.truncate(cut);
        out.push('…');
    }
    out
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
    fn redact_shortens_a_token_glued_to_other_characters() {
        // Found by the `reply` fuzz target: a word that is not all hex.
        assert_eq!(redact("acque171f286e9c1135226 30"), "acque171f286… 30");
        assert_eq!(redact("ok\t0123456789abcdef0123"), "ok\\t01234567…");
        // Escaping a NUL adds a '0' that must not complete a run.
        assert_eq!(redact("x\u{0}123456789abcdef0"), "x\\01234567…");
        // Short hex runs and words stay as they are.
        assert_eq!(redact("error_max_locks 12345"), "error_max_locks 12345");
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
