use std::num::NonZeroU32;

use super::{Error, MAX_AUTH_TOKEN, MAX_LINE, MAX_SECONDS};

/// The command family a request uses: lock commands (`l r n e w`) or
/// semaphore commands (`sl sr sn se sw`). dflockd 2.x keeps their keys
/// apart; 1.x (v1.10.0) has one key space, a lock being a semaphore of limit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// Exclusive locks (`l r n e w`).
    Lock,
    /// Counting semaphores (`sl sr sn se sw`).
    Semaphore,
}

/// What an acquire or enqueue asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An exclusive lock.
    Lock,
    /// A semaphore slot; the first holder of a key fixes its limit.
    Semaphore {
        /// Concurrent holders allowed.
        limit: NonZeroU32,
    },
}

impl Kind {
    /// The namespace of this kind.
    pub fn space(self) -> Space {
        match self {
            Kind::Lock => Space::Lock,
            Kind::Semaphore { .. } => Space::Semaphore,
        }
    }
}

/// One request. [`Request::encode`] validates every field before writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// `auth _ <token>`.
    Auth {
        /// The shared secret.
        token: &'a str,
    },
    /// `l` / `sl`.
    Acquire {
        /// Lock or semaphore (with limit).
        kind: Kind,
        /// The key.
        key: &'a str,
        /// Seconds the server may wait; 0 is a try-lock.
        timeout_s: u64,
        /// Requested lease, or the server default.
        lease_ttl_s: Option<u64>,
    },
    /// `r` / `sr`.
    Release {
        /// Namespace.
        space: Space,
        /// The key.
        key: &'a str,
        /// The grant token.
        token: &'a str,
    },
    /// `n` / `sn`.
    Renew {
        /// Namespace.
        space: Space,
        /// The key.
        key: &'a str,
        /// The grant token.
        token: &'a str,
        /// New lease, or the grant's.
        lease_ttl_s: Option<u64>,
    },
    /// `e` / `se`.
    Enqueue {
        /// Lock or semaphore (with limit).
        kind: Kind,
        /// The key.
        key: &'a str,
        /// Requested lease, or the server default.
        lease_ttl_s: Option<u64>,
    },
    /// `w` / `sw`.
    Wait {
        /// Namespace.
        space: Space,
        /// The key.
        key: &'a str,
        /// Seconds the server may wait.
        timeout_s: u64,
    },
    /// `ping`.
    Ping,
    /// `stats`.
    Stats,
}

impl Request<'_> {
    /// Validates the request and appends its three lines to `out`.
    /// On error `out` is left as it was.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), Error> {
        let (cmd, key, arg) = self.lines()?;
        let arg_cap = if matches!(self, Request::Auth { .. }) {
            MAX_AUTH_TOKEN
        } else {
            MAX_LINE
        };
        if arg.len() > arg_cap {
            return Err(invalid(format!(
                "argument line longer than {arg_cap} bytes"
            )));
        }
        for line in [cmd, key, &arg] {
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        Ok(())
    }

    fn lines(&self) -> Result<(&'static str, &str, String), Error> {
        Ok(match *self {
            Request::Auth { token } => {
                check_auth_token(token)?;
                ("auth", "_", token.to_owned())
            }
            Request::Acquire {
                kind,
                key,
                timeout_s,
                lease_ttl_s,
            } => {
                check_key(key)?;
                let mut arg = seconds_arg(timeout_s, "timeout")?;
                if let Kind::Semaphore { limit } = kind {
                    arg.push_str(&format!(" {limit}"));
                }
                push_lease(&mut arg, lease_ttl_s)?;
                (pick(kind.space(), "l", "sl"), key, arg)
            }
            Request::Release { space, key, token } => {
                check_key(key)?;
                check_word("token", token, MAX_LINE)?;
                (pick(space, "r", "sr"), key, token.to_owned())
            }
            Request::Renew {
                space,
                key,
                token,
                lease_ttl_s,
            } => {
                check_key(key)?;
                check_word("token", token, MAX_LINE)?;
                let mut arg = token.to_owned();
                push_lease(&mut arg, lease_ttl_s)?;
                (pick(space, "n", "sn"), key, arg)
            }
            Request::Enqueue {
                kind,
                key,
                lease_ttl_s,
            } => {
                check_key(key)?;
                let mut arg = match kind {
                    Kind::Lock => String::new(),
                    Kind::Semaphore { limit } => limit.to_string(),
                };
                push_lease(&mut arg, lease_ttl_s)?;
                (
                    pick(kind.space(), "e", "se"),
                    key,
                    arg.trim_start().to_owned(),
                )
            }
            Request::Wait {
                space,
                key,
                timeout_s,
            } => {
                check_key(key)?;
                (
                    pick(space, "w", "sw"),
                    key,
                    seconds_arg(timeout_s, "timeout")?,
                )
            }
            Request::Ping => ("ping", "_", "_".to_owned()),
            Request::Stats => ("stats", "_", "_".to_owned()),
        })
    }
}

fn pick(space: Space, lock: &'static str, semaphore: &'static str) -> &'static str {
    match space {
        Space::Lock => lock,
        Space::Semaphore => semaphore,
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidArgument(msg.into())
}

/// A key: non-empty, at most [`MAX_LINE`] bytes, no whitespace or control characters.
pub(crate) fn check_key(key: &str) -> Result<(), Error> {
    check_word("key", key, MAX_LINE)
}

/// An auth token: non-empty, at most [`MAX_AUTH_TOKEN`] bytes, one word.
pub(crate) fn check_auth_token(token: &str) -> Result<(), Error> {
    check_word("auth token", token, MAX_AUTH_TOKEN)
}

/// A single protocol word. The message names the field but never repeats
/// the value: it may be a secret.
fn check_word(what: &str, value: &str, cap: usize) -> Result<(), Error> {
    if value.is_empty() {
        return Err(invalid(format!("{what} is empty")));
    }
    if value.len() > cap {
        return Err(invalid(format!("{what} is longer than {cap} bytes")));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(format!(
            "{what} contains whitespace or a control character"
        )));
    }
    Ok(())
}

/// A duration the server accepts: `0..=MAX_SECONDS`.
pub(crate) fn check_seconds(value: u64, what: &str) -> Result<u64, Error> {
    if value > MAX_SECONDS {
        return Err(invalid(format!(
            "{what} of {value} s is above the server's maximum of {MAX_SECONDS} s"
        )));
    }
    Ok(value)
}

/// A lease TTL the server accepts: `1..=MAX_SECONDS`.
pub(crate) fn check_lease(value: u64) -> Result<u64, Error> {
    if value == 0 {
        return Err(invalid("lease TTL must be at least 1 s"));
    }
    check_seconds(value, "lease TTL")
}

fn seconds_arg(value: u64, what: &str) -> Result<String, Error> {
    Ok(check_seconds(value, what)?.to_string())
}

fn push_lease(arg: &mut String, lease_ttl_s: Option<u64>) -> Result<(), Error> {
    if let Some(lease) = lease_ttl_s {
        arg.push_str(&format!(" {}", check_lease(lease)?));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(req: Request) -> Result<String, Error> {
        let mut out = Vec::new();
        req.encode(&mut out)
            .map(|()| String::from_utf8(out).unwrap())
    }

    const TOKEN: &str = "0000000000000001abcdefabcdefabcd";
    fn sem(limit: u32) -> Kind {
        Kind::Semaphore {
            limit: NonZeroU32::new(limit).unwrap(),
        }
    }

    #[test]
    fn encodes_every_command() {
        let cases = [
            (Request::Auth { token: "s3cret" }, "auth\n_\ns3cret\n"),
            (
                Request::Acquire {
                    kind: Kind::Lock,
                    key: "k",
                    timeout_s: 10,
                    lease_ttl_s: None,
                },
                "l\nk\n10\n",
            ),
            (
                Request::Acquire {
                    kind: Kind::Lock,
                    key: "k",
                    timeout_s: 0,
                    lease_ttl_s: Some(30),
                },
                "l\nk\n0 30\n",
            ),
            (
                Request::Acquire {
                    kind: sem(3),
                    key: "k",
                    timeout_s: 5,
                    lease_ttl_s: Some(2),
                },
                "sl\nk\n5 3 2\n",
            ),
            (
                Request::Release {
                    space: Space::Lock,
                    key: "k",
                    token: TOKEN,
                },
                "r\nk\n0000000000000001abcdefabcdefabcd\n",
            ),
            (
                Request::Release {
                    space: Space::Semaphore,
                    key: "k",
                    token: TOKEN,
                },
                "sr\nk\n0000000000000001abcdefabcdefabcd\n",
            ),
            (
                Request::Renew {
                    space: Space::Lock,
                    key: "k",
                    token: TOKEN,
                    lease_ttl_s: None,
                },
                "n\nk\n0000000000000001abcdefabcdefabcd\n",
            ),
            (
                Request::Renew {
                    space: Space::Semaphore,
                    key: "k",
                    token: TOKEN,
                    lease_ttl_s: Some(9),
                },
                "sn\nk\n0000000000000001abcdefabcdefabcd 9\n",
            ),
            (
                Request::Enqueue {
                    kind: Kind::Lock,
                    key: "k",
                    lease_ttl_s: None,
                },
                "e\nk\n\n",
            ),
            (
                Request::Enqueue {
                    kind: Kind::Lock,
                    key: "k",
                    lease_ttl_s: Some(7),
                },
                "e\nk\n7\n",
            ),
            (
                Request::Enqueue {
                    kind: sem(2),
                    key: "k",
                    lease_ttl_s: None,
                },
                "se\nk\n2\n",
            ),
            (
                Request::Enqueue {
                    kind: sem(2),
                    key: "k",
                    lease_ttl_s: Some(7),
                },
                "se\nk\n2 7\n",
            ),
            (
                Request::Wait {
                    space: Space::Lock,
                    key: "k",
                    timeout_s: 3,
                },
                "w\nk\n3\n",
            ),
            (
                Request::Wait {
                    space: Space::Semaphore,
                    key: "k",
                    timeout_s: 3,
                },
                "sw\nk\n3\n",
            ),
            (Request::Ping, "ping\n_\n_\n"),
            (Request::Stats, "stats\n_\n_\n"),
        ];
        for (req, wire) in cases {
            assert_eq!(encoded(req).as_deref(), Ok(wire), "{req:?}");
        }
    }

    #[test]
    fn bad_keys_are_refused_and_nothing_is_written() {
        let long = "k".repeat(MAX_LINE + 1);
        for key in [
            "",
            "a b",
            "a\nl",
            "a\tb",
            "a\rb",
            "a\u{0}b",
            "a\u{a0}b",
            long.as_str(),
        ] {
            let mut out = b"before".to_vec();
            let req = Request::Acquire {
                kind: Kind::Lock,
                key,
                timeout_s: 1,
                lease_ttl_s: None,
            };
            assert!(
                matches!(req.encode(&mut out), Err(Error::InvalidArgument(_))),
                "{key:?}"
            );
            assert_eq!(out, b"before");
        }
        let max = "k".repeat(MAX_LINE);
        assert!(encoded(Request::Wait {
            space: Space::Lock,
            key: &max,
            timeout_s: 1
        })
        .is_ok());
    }

    #[test]
    fn numbers_outside_the_servers_ranges_are_refused() {
        let bad = [
            Request::Acquire {
                kind: Kind::Lock,
                key: "k",
                timeout_s: MAX_SECONDS + 1,
                lease_ttl_s: None,
            },
            Request::Acquire {
                kind: Kind::Lock,
                key: "k",
                timeout_s: 1,
                lease_ttl_s: Some(0),
            },
            Request::Acquire {
                kind: Kind::Lock,
                key: "k",
                timeout_s: 1,
                lease_ttl_s: Some(u64::MAX),
            },
            Request::Renew {
                space: Space::Lock,
                key: "k",
                token: TOKEN,
                lease_ttl_s: Some(0),
            },
            Request::Enqueue {
                kind: Kind::Lock,
                key: "k",
                lease_ttl_s: Some(0),
            },
            Request::Wait {
                space: Space::Lock,
                key: "k",
                timeout_s: u64::MAX,
            },
        ];
        for req in bad {
            assert!(
                matches!(encoded(req), Err(Error::InvalidArgument(_))),
                "{req:?}"
            );
        }
        let edge = Request::Acquire {
            kind: Kind::Lock,
            key: "k",
            timeout_s: MAX_SECONDS,
            lease_ttl_s: Some(MAX_SECONDS),
        };
        assert!(encoded(edge).is_ok());
    }

    #[test]
    fn secrets_are_never_echoed() {
        for token in ["has space", "new\nline"] {
            let Err(Error::InvalidArgument(msg)) = encoded(Request::Auth { token }) else {
                panic!()
            };
            assert!(!msg.contains(token));
            let Err(Error::InvalidArgument(msg)) = encoded(Request::Release {
                space: Space::Lock,
                key: "k",
                token,
            }) else {
                panic!()
            };
            assert!(!msg.contains(token));
        }
    }

    #[test]
    fn auth_token_cap_is_64_kib() {
        let ok = "t".repeat(MAX_AUTH_TOKEN);
        assert!(encoded(Request::Auth { token: &ok }).is_ok());
        let long = "t".repeat(MAX_AUTH_TOKEN + 1);
        assert!(matches!(
            encoded(Request::Auth { token: &long }),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn renew_argument_line_respects_the_line_cap() {
        let token = "t".repeat(MAX_LINE - 2);
        let req = Request::Renew {
            space: Space::Lock,
            key: "k",
            token: &token,
            lease_ttl_s: Some(30),
        };
        assert!(matches!(encoded(req), Err(Error::InvalidArgument(_))));
    }
}
