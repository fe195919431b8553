//! Reply decoders: one line in, a typed value or an [`Error`] out.
//!
//! Statuses that can answer any command are mapped by one table
//! ([`status_error`]); each decoder then accepts only the success shapes of
//! its own command, with exactly the documented fields.

use std::fmt;

use super::fence_from_token;
use super::{redact, Error, MAX_SECONDS, TOKEN_LEN};

/// A grant: the token, its lease and its fence.
#[derive(Clone, PartialEq, Eq)]
pub struct Grant {
    /// 32 lowercase hex characters. A secret: see the `Debug` impl.
    pub token: String,
    /// The lease the server granted, in seconds.
    pub lease_s: u64,
    /// The token's fence prefix.
    pub fence: u64,
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("token", &redact(&self.token))
            .field("lease_s", &self.lease_s)
            .field("fence", &self.fence)
            .finish()
    }
}

/// The answer to `e` / `se`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// Granted at once.
    Acquired(Grant),
    /// Queued; `w` / `sw` follows on the same connection.
    Queued,
}

impl Enqueued {
    /// The grant, when granted at once.
    pub fn grant(&self) -> Option<&Grant> {
        match self {
            Enqueued::Acquired(grant) => Some(grant),
            Enqueued::Queued => None,
        }
    }

    /// Whether it joined the queue (`wait` follows).
    pub fn is_queued(&self) -> bool {
        matches!(self, Enqueued::Queued)
    }
}

/// What a plain `error` means, per command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorContext {
    /// For `r`/`sr`/`n`/`sn`: the token does not hold the key.
    Token,
    /// For `ping`: dflockd 1.x has no `ping` and answers a plain `error`
    /// (the connection stays usable); 2.x answers `ok`.
    Ping,
    /// Anything else.
    Request,
}

/// The error for a status that is not a success, or `None` if `status` is
/// not one of the error statuses.
pub fn status_error(status: &str, rest: &str, context: ErrorContext) -> Option<Error> {
    Some(match status {
        "error_auth" => Error::Auth,
        "error_max_locks" => Error::MaxLocks,
        "error_max_waiters" => Error::MaxWaiters,
        "error_limit_mismatch" => Error::LimitMismatch,
        "error_not_enqueued" => Error::NotEnqueued,
        "error_already_enqueued" => Error::AlreadyEnqueued,
        "error_lease_expired" => Error::LeaseExpired,
        "error_draining" => Error::Draining,
        "error_not_leader" => Error::NotLeader(redact(rest)),
        "error" => Error::Server(
            match context {
                ErrorContext::Token => {
                    "the token does not hold this key (released, expired or never granted)"
                }
                ErrorContext::Ping => {
                    "the server does not support ping (dflockd 1.x answers error; ping needs 2.x)"
                }
                ErrorContext::Request => "the server answered error",
            }
            .into(),
        ),
        _ => return None,
    })
}

fn split(line: &str) -> (&str, &str) {
    line.split_once(' ').unwrap_or((line, ""))
}

fn unexpected(line: &str) -> Error {
    Error::Protocol(format!("unexpected reply: {:?}", redact(line)))
}

fn decode_with<T>(
    line: &str,
    context: ErrorContext,
    success: impl FnOnce(&str, &str) -> Option<Result<T, Error>>,
) -> Result<T, Error> {
    let (status, rest) = split(line);
    if let Some(result) = success(status, rest) {
        return result;
    }
    Err(status_error(status, rest, context).unwrap_or_else(|| unexpected(line)))
}

/// `ok` with no fields: `auth`, `r`, `sr`, `ping`.
pub fn decode_ok(line: &str, context: ErrorContext) -> Result<(), Error> {
    decode_with(line, context, |status, rest| {
        (status == "ok" && rest.is_empty()).then_some(Ok(()))
    })
}

/// `ok <token> <lease>` or `timeout`: `l`, `sl`, `w`, `sw`.
pub fn decode_grant(line: &str) -> Result<Option<Grant>, Error> {
    decode_with(line, ErrorContext::Request, |status, rest| {
        match (status, rest) {
            ("ok", fields) => Some(parse_grant(fields, line).map(Some)),
            ("timeout", "") => Some(Ok(None)),
            _ => None,
        }
    })
}

/// `acquired <token> <lease>` or `queued`: `e`, `se`.
pub fn decode_enqueue(line: &str) -> Result<Enqueued, Error> {
    decode_with(line, ErrorContext::Request, |status, rest| {
        match (status, rest) {
            ("acquired", fields) => Some(parse_grant(fields, line).map(Enqueued::Acquired)),
            ("queued", "") => Some(Ok(Enqueued::Queued)),
            _ => None,
        }
    })
}

/// `ok <remaining_s>`: `n`, `sn`.
pub fn decode_renew(line: &str) -> Result<u64, Error> {
    decode_with(line, ErrorContext::Token, |status, rest| {
        (status == "ok").then(|| parse_seconds(rest).ok_or_else(|| unexpected(line)))
    })
}

fn parse_grant(fields: &str, line: &str) -> Result<Grant, Error> {
    let mut it = fields.split(' ');
    let (Some(token), Some(lease), None) = (it.next(), it.next(), it.next()) else {
        return Err(unexpected(line));
    };
    if token.len() != TOKEN_LEN {
        return Err(unexpected(line));
    }
    let fence = fence_from_token(token).map_err(|_| unexpected(line))?;
    let lease_s = parse_seconds(lease)
        .filter(|&s| s > 0)
        .ok_or_else(|| unexpected(line))?;
    Ok(Grant {
        token: token.to_owned(),
        lease_s,
        fence,
    })
}

fn parse_seconds(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|&s| s <= MAX_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "00000000000000070123456789abcdef";

    fn grant(lease_s: u64) -> Grant {
        Grant {
            token: TOKEN.into(),
            lease_s,
            fence: 7,
        }
    }

    #[test]
    fn decodes_grants_and_timeouts() {
        assert_eq!(decode_grant(&format!("ok {TOKEN} 30")), Ok(Some(grant(30))));
        assert_eq!(decode_grant("timeout"), Ok(None));
        assert_eq!(
            decode_enqueue(&format!("acquired {TOKEN} 5")),
            Ok(Enqueued::Acquired(grant(5)))
        );
        assert_eq!(decode_enqueue("queued"), Ok(Enqueued::Queued));
        assert_eq!(decode_renew("ok 17"), Ok(17));
        assert_eq!(decode_ok("ok", ErrorContext::Request), Ok(()));
    }

    #[test]
    fn every_error_status_maps_to_its_variant() {
        let table = [
            ("error_auth", Error::Auth),
            ("error_max_locks", Error::MaxLocks),
            ("error_max_waiters", Error::MaxWaiters),
            ("error_limit_mismatch", Error::LimitMismatch),
            ("error_not_enqueued", Error::NotEnqueued),
            ("error_already_enqueued", Error::AlreadyEnqueued),
            ("error_lease_expired", Error::LeaseExpired),
            ("error_draining", Error::Draining),
            (
                "error_not_leader 10.0.0.2:6388",
                Error::NotLeader("10.0.0.2:6388".into()),
            ),
        ];
        for (line, want) in table {
            assert_eq!(decode_grant(line), Err(want.clone()), "{line}");
            assert_eq!(decode_enqueue(line), Err(want.clone()), "{line}");
            assert_eq!(decode_renew(line), Err(want.clone()), "{line}");
            assert_eq!(decode_ok(line, ErrorContext::Request), Err(want), "{line}");
        }
        assert!(
            matches!(decode_ok("error", ErrorContext::Token), Err(Error::Server(m)) if m.contains("token"))
        );
        assert!(matches!(decode_renew("error"), Err(Error::Server(_))));
        assert!(
            matches!(decode_ok("error", ErrorContext::Ping), Err(Error::Server(m)) if m.contains("ping")),
            "a 1.x server's answer to ping is a typed refusal, not a protocol violation"
        );
    }

    #[test]
    fn malformed_replies_are_protocol_errors() {
        let bad = [
            "",
            "ok",
            "ok 30",
            &format!("ok {TOKEN}"),
            &format!("ok {TOKEN} 30 extra"),
            &format!("ok {TOKEN} 0"),
            &format!("ok {TOKEN} -1"),
            &format!("ok {TOKEN} +1"),
            "ok 0000000000000007ABCDEF0123456789 30",
            "ok 00000000000000070123456789abcde 30",
            &format!("ok {TOKEN} 99999999999999999999"),
            "timeout now",
            "banana",
            "OK",
        ];
        for line in bad {
            assert!(
                matches!(decode_grant(line), Err(Error::Protocol(_))),
                "{line:?}"
            );
        }
        for line in ["ok", "ok x", "ok 1 2", "queued", "ok -3"] {
            assert!(
                matches!(decode_renew(line), Err(Error::Protocol(_))),
                "{line:?}"
            );
        }
        for line in ["ok extra", "acquired", "queued x"] {
            assert!(decode_ok(line, ErrorContext::Request).is_err(), "{line:?}");
            assert!(
                matches!(decode_enqueue(line), Err(Error::Protocol(_))),
                "{line:?}"
            );
        }
    }

    /// A small deterministic fuzzer: lines assembled from protocol-ish
    /// pieces and random bytes never make a decoder panic, and every
    /// success has the documented shape.
    #[test]
    fn decoders_never_panic_on_arbitrary_lines() {
        const PIECES: [&str; 14] = [
            "ok",
            "acquired",
            "queued",
            "timeout",
            "error",
            "error_not_leader",
            " ",
            "  ",
            TOKEN,
            "30",
            "0",
            "-1",
            "18446744073709551616",
            "\u{e9}",
        ];
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut line = String::new();
            for _ in 0..next() % 5 {
                match next() % 4 {
                    0 => line.push(char::from_u32((next() % 0x80) as u32).unwrap_or('?')),
                    _ => line.push_str(PIECES[(next() % PIECES.len() as u64) as usize]),
                }
            }
            if let Ok(Some(g)) = decode_grant(&line) {
                assert_eq!(
                    (g.token.len(), g.lease_s > 0),
                    (TOKEN_LEN, true),
                    "{line:?}"
                );
            }
            if let Ok(Enqueued::Acquired(g)) = decode_enqueue(&line) {
                assert_eq!(g.token.len(), TOKEN_LEN, "{line:?}");
            }
            let _ = decode_renew(&line);
            let _ = decode_ok(&line, ErrorContext::Token);
            let _ = crate::protocol::stats::decode_stats(&line);
        }
    }

    #[test]
    fn protocol_errors_and_debug_never_show_a_whole_token() {
        let Err(Error::Protocol(msg)) = decode_grant(&format!("ok {TOKEN} 30 x")) else {
            panic!()
        };
        assert!(!msg.contains(TOKEN), "{msg}");
        assert!(!format!("{:?}", grant(1)).contains(TOKEN));
    }
}
