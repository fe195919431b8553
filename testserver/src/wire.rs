//! The request side of the wire protocol, pure: three lines in, one typed
//! [`Request`] (or the reason it is refused) out; and the reply line out.
//!
//! What is refused and how is dflockd's (PROTOCOL.md): a request whose
//! lines were all read but do not parse answers `error` and the connection
//! goes on; a line over [`MAX_LINE`] bytes or a read timeout answers
//! `error` and closes it (the stream may be out of step).

use std::time::Duration;

use crate::Dialect;

/// The longest request line, `\n` not counted (dflockd's cap, every line's
/// but a v2 auth token's).
pub const MAX_LINE: usize = 256;

/// The longest auth token line in dialect v2 (dflockd 1.15 and later).
pub const MAX_AUTH_LINE_V2: usize = 64 * 1024;

/// The most seconds a v2 server takes (dflockd 1.15 and later refuse more;
/// v1 takes any i64 and saturates here).
pub const MAX_SECONDS: i64 = 9_223_372_036;

/// Which resource a command addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Space {
    /// `l r n e w`: a lock (a semaphore of limit 1 in dialect v1).
    Lock,
    /// `sl sr sn se sw`.
    Semaphore,
}

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `auth _ <token>`.
    Auth { token: String },
    /// `stats _ _`.
    Stats,
    /// `ping _ _` (dialect v2 only; v1 refuses it as unknown).
    Ping,
    /// `l`/`sl`: wait up to `timeout` for a slot.
    Acquire {
        space: Space,
        key: String,
        timeout: Duration,
        lease: Duration,
        limit: u32,
    },
    /// `r`/`sr`.
    Release {
        space: Space,
        key: String,
        token: String,
    },
    /// `n`/`sn`.
    Renew {
        space: Space,
        key: String,
        token: String,
        lease: Duration,
    },
    /// `e`/`se`: join the queue (or take a free slot at once).
    Enqueue {
        space: Space,
        key: String,
        lease: Duration,
        limit: u32,
    },
    /// `w`/`sw`: wait for what `e`/`se` queued on this connection.
    Wait {
        space: Space,
        key: String,
        timeout: Duration,
    },
}

/// Why three complete lines are not a request (answered `error`, the
/// connection goes on). The text is for the log only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// Parses the three lines of one request; `default_lease` fills a lease
/// left out. Dialect v2 also knows `ping`, refuses more than
/// [`MAX_SECONDS`] and takes at most one argument to `e`.
pub fn parse(
    cmd: &str,
    key: &str,
    arg: &str,
    default_lease: Duration,
    dialect: Dialect,
) -> Result<Request, Refused> {
    let v2 = dialect == Dialect::V2;
    let n = Numbers { v2 };
    let (space, op) = match cmd {
        "auth" => {
            return Ok(Request::Auth {
                token: arg.trim().to_string(),
            })
        }
        "stats" => return Ok(Request::Stats),
        "ping" if v2 => return Ok(Request::Ping),
        "l" | "r" | "n" | "e" | "w" => (Space::Lock, cmd),
        "sl" | "sr" | "sn" | "se" | "sw" => (Space::Semaphore, &cmd[1..]),
        _ => return Err(Refused(format!("invalid cmd {cmd:?}"))),
    };
    if key.is_empty() {
        return Err(Refused("empty key".into()));
    }
    if key.contains([' ', '\t', '\n', '\r']) {
        return Err(Refused("key contains whitespace".into()));
    }
    let key = key.to_string();
    let parts: Vec<&str> = arg.split_whitespace().collect();
    let sem = space == Space::Semaphore;
    match op {
        "l" => {
            // l: <timeout> [<lease>]; sl: <timeout> <limit> [<lease>]
            let (min, max) = if sem { (2, 3) } else { (1, 2) };
            arity(&parts, min, max, cmd)?;
            let timeout = n.non_negative(parts[0], "timeout")?;
            let limit = if sem { n.limit(parts[1])? } else { 1 };
            let lease = n.lease(parts.get(min).copied(), default_lease)?;
            Ok(Request::Acquire {
                space,
                key,
                timeout,
                lease,
                limit,
            })
        }
        "r" => Ok(Request::Release {
            space,
            key,
            token: token(arg.trim())?,
        }),
        "n" => {
            arity(&parts, 1, 2, cmd)?;
            let token = token(parts[0])?;
            let lease = n.lease(parts.get(1).copied(), default_lease)?;
            Ok(Request::Renew {
                space,
                key,
                token,
                lease,
            })
        }
        "e" => {
            // e: [<lease>] (may be empty); se: <limit> [<lease>]
            let (limit, rest) = if sem {
                arity(&parts, 1, 2, cmd)?;
                (n.limit(parts[0])?, parts.get(1).copied())
            } else if v2 {
                arity(&parts, 0, 1, cmd)?;
                (1, parts.first().copied())
            } else {
                let stripped = arg.trim();
                (1, (!stripped.is_empty()).then_some(stripped))
            };
            let lease = n.lease(rest, default_lease)?;
            Ok(Request::Enqueue {
                space,
                key,
                lease,
                limit,
            })
        }
        _ => {
            let stripped = arg.trim();
            if stripped.is_empty() {
                return Err(Refused(format!("{cmd} arg must be: <timeout>")));
            }
            Ok(Request::Wait {
                space,
                key,
                timeout: n.non_negative(stripped, "timeout")?,
            })
        }
    }
}

fn arity(parts: &[&str], min: usize, max: usize, cmd: &str) -> Result<(), Refused> {
    if (min..=max).contains(&parts.len()) {
        Ok(())
    } else {
        Err(Refused(format!("{cmd}: wrong number of arguments")))
    }
}

/// How a dialect reads numbers.
struct Numbers {
    v2: bool,
}

impl Numbers {
    /// A decimal integer as Go's `strconv.Atoi` reads it (optional sign);
    /// v2 refuses more than [`MAX_SECONDS`].
    fn integer(&self, text: &str, what: &str) -> Result<i64, Refused> {
        let n = text
            .parse::<i64>()
            .map_err(|_| Refused(format!("invalid {what}: {text:?}")))?;
        if self.v2 && n > MAX_SECONDS {
            return Err(Refused(format!("{what} too large: {n}")));
        }
        Ok(n)
    }

    fn non_negative(&self, text: &str, what: &str) -> Result<Duration, Refused> {
        let n = self.integer(text, what)?;
        if n < 0 {
            return Err(Refused(format!("{what} must be >= 0")));
        }
        Ok(seconds(n))
    }

    fn lease(&self, text: Option<&str>, default: Duration) -> Result<Duration, Refused> {
        let Some(text) = text else { return Ok(default) };
        let n = self.integer(text, "lease_ttl")?;
        if n <= 0 {
            return Err(Refused("lease_ttl must be > 0".into()));
        }
        Ok(seconds(n))
    }

    fn limit(&self, text: &str) -> Result<u32, Refused> {
        let n = self.integer(text, "limit")?;
        if n <= 0 {
            return Err(Refused("limit must be > 0".into()));
        }
        u32::try_from(n).map_err(|_| Refused(format!("limit too large: {n}")))
    }
}

/// Whole seconds as a duration, saturating at [`MAX_SECONDS`] (beyond it
/// dflockd 1.10's nanosecond durations would overflow).
fn seconds(n: i64) -> Duration {
    Duration::from_secs(n.clamp(0, MAX_SECONDS) as u64)
}

fn token(text: &str) -> Result<String, Refused> {
    if text.is_empty() {
        return Err(Refused("empty token".into()));
    }
    Ok(text.to_string())
}

/// Every reply the server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `ok`.
    Ok,
    /// `ok <token> <lease_s>` (`l`, `w`) or `acquired <token> <lease_s>` (`e`).
    Granted {
        token: String,
        lease_s: u64,
        acquired: bool,
    },
    /// `ok <text>`: a renewal's remaining seconds, or the stats JSON.
    OkWith(String),
    /// `queued`.
    Queued,
    /// `timeout`.
    Timeout,
    /// `error` or `error_<reason>`.
    Error(Option<&'static str>),
}

impl Reply {
    /// A grant: `ok <token> <lease_s>`, or `acquired …` for an enqueue.
    pub fn granted(token: String, lease: Duration, acquired: bool) -> Reply {
        Reply::Granted {
            token,
            lease_s: lease.as_secs(),
            acquired,
        }
    }

    /// The reply line, `\n` included.
    pub fn encode(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        let _ = match self {
            Reply::Ok => writeln!(out, "ok"),
            Reply::Granted {
                token,
                lease_s,
                acquired,
            } => {
                let status = if *acquired { "acquired" } else { "ok" };
                writeln!(out, "{status} {token} {lease_s}")
            }
            Reply::OkWith(text) => writeln!(out, "ok {text}"),
            Reply::Queued => writeln!(out, "queued"),
            Reply::Timeout => writeln!(out, "timeout"),
            Reply::Error(None) => writeln!(out, "error"),
            Reply::Error(Some(reason)) => writeln!(out, "error_{reason}"),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: Duration = Duration::from_secs(33);

    fn p(cmd: &str, key: &str, arg: &str) -> Result<Request, Refused> {
        parse(cmd, key, arg, LEASE, Dialect::V1)
    }

    #[test]
    fn lock_commands_take_dflockds_arguments() {
        assert_eq!(
            p("l", "k", "5 7"),
            Ok(Request::Acquire {
                space: Space::Lock,
                key: "k".into(),
                timeout: Duration::from_secs(5),
                lease: Duration::from_secs(7),
                limit: 1
            })
        );
        assert_eq!(
            p("sl", "k", "0 3"),
            Ok(Request::Acquire {
                space: Space::Semaphore,
                key: "k".into(),
                timeout: Duration::ZERO,
                lease: LEASE,
                limit: 3
            })
        );
        assert_eq!(
            p("e", "k", ""),
            Ok(Request::Enqueue {
                space: Space::Lock,
                key: "k".into(),
                lease: LEASE,
                limit: 1
            })
        );
        assert_eq!(
            p("se", "k", "2 9"),
            Ok(Request::Enqueue {
                space: Space::Semaphore,
                key: "k".into(),
                lease: Duration::from_secs(9),
                limit: 2
            })
        );
        assert!(matches!(p("n", "k", "tok"), Ok(Request::Renew { lease, .. }) if lease == LEASE));
        assert!(
            matches!(p("sw", "k", " 4 "), Ok(Request::Wait { timeout, .. }) if timeout.as_secs() == 4)
        );
    }

    #[test]
    fn bad_requests_are_refused_without_closing() {
        for (cmd, key, arg) in [
            ("ping", "_", "_"),
            ("x", "k", "1"),
            ("l", "", "1"),
            ("l", "a b", "1"),
            ("l", "k", ""),
            ("l", "k", "-1"),
            ("l", "k", "1 0"),
            ("l", "k", "1 2 3"),
            ("l", "k", "one"),
            ("sl", "k", "1 0"),
            ("sl", "k", "1"),
            ("r", "k", "  "),
            ("e", "k", "0"),
            ("w", "k", ""),
        ] {
            assert!(p(cmd, key, arg).is_err(), "{cmd} {key:?} {arg:?}");
        }
        let v2 = |cmd, arg| parse(cmd, "k", arg, LEASE, Dialect::V2);
        assert_eq!(v2("ping", "_"), Ok(Request::Ping));
        assert!(v2("l", "9223372037").is_err());
        assert!(v2("e", "30 junk").is_err());
        assert!(
            p("e", "k", "30 junk").is_err(),
            "v1: one argument, not a number"
        );
    }

    #[test]
    fn huge_seconds_saturate() {
        let Ok(Request::Wait { timeout, .. }) = p("w", "k", "9223372036854775807") else {
            panic!()
        };
        assert_eq!(timeout.as_secs(), 9_223_372_036);
    }

    #[test]
    fn replies_are_dflockds_lines() {
        let line = |r: Reply| {
            let mut v = Vec::new();
            r.encode(&mut v);
            String::from_utf8(v).unwrap()
        };
        assert_eq!(line(Reply::Error(Some("max_locks"))), "error_max_locks\n");
        assert_eq!(
            line(Reply::Granted {
                token: "ab".into(),
                lease_s: 3,
                acquired: true
            }),
            "acquired ab 3\n"
        );
        assert_eq!(line(Reply::OkWith("33".into())), "ok 33\n");
    }
}
