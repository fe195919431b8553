//! The low-level connection's answers: what the reply line of each
//! request decodes to, and how long the server may take to send it.

use super::reply::{decode_enqueue, decode_grant, decode_ok, decode_renew, ErrorContext};
use super::stats::stats_json;
use super::{Enqueued, Error, Grant, Request};

/// What one command of the low-level connection came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// `connect`: open (and authenticated).
    Connected,
    /// `l`, `w`, `sl`, `sw`: the grant, or `None` when the timeout passed.
    Acquired(Option<Grant>),
    /// `r`, `sr`, `ping`: `ok`.
    Done,
    /// `n`, `sn`: the seconds the lease has left.
    Renewed(u64),
    /// `e`, `se`.
    Enqueued(Enqueued),
    /// `stats`: the reply's JSON object as text, not parsed (see
    /// [`stats_json`]); [`decode_json`](super::stats::decode_json) types it.
    Stats(String),
}

/// The reply a request waits for: how to decode it, and how long the
/// server itself may wait before it sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    reply: Reply,
    /// The seconds the server may wait before replying (an acquire's or a
    /// wait's timeout); 0 for the rest.
    pub server_wait_s: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    Grant,
    Ok(ErrorContext),
    Renewed,
    Enqueued,
    Stats,
}

impl Expect {
    /// What `request` is answered with.
    pub fn of(request: &Request<'_>) -> Expect {
        let (reply, server_wait_s) = match *request {
            Request::Acquire { timeout_s, .. } | Request::Wait { timeout_s, .. } => {
                (Reply::Grant, timeout_s)
            }
            Request::Release { .. } => (Reply::Ok(ErrorContext::Token), 0),
            Request::Renew { .. } => (Reply::Renewed, 0),
            Request::Enqueue { .. } => (Reply::Enqueued, 0),
            Request::Ping => (Reply::Ok(ErrorContext::Ping), 0),
            Request::Stats => (Reply::Stats, 0),
            Request::Auth { .. } => (Reply::Ok(ErrorContext::Request), 0),
        };
        Expect {
            reply,
            server_wait_s,
        }
    }

    /// Decodes the reply `line`.
    pub fn decode(self, line: &str) -> Result<Answer, Error> {
        Ok(match self.reply {
            Reply::Grant => Answer::Acquired(decode_grant(line)?),
            Reply::Ok(context) => {
                decode_ok(line, context)?;
                Answer::Done
            }
            Reply::Renewed => Answer::Renewed(decode_renew(line)?),
            Reply::Enqueued => Answer::Enqueued(decode_enqueue(line)?),
            Reply::Stats => Answer::Stats(stats_json(line)?.into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Kind, Space};

    const TOKEN: &str = "00000000000000010123456789abcdef";

    #[test]
    fn each_request_decodes_its_own_reply() {
        let acquire = Request::Acquire {
            kind: Kind::Lock,
            key: "k",
            timeout_s: 7,
            lease_ttl_s: None,
        };
        let expect = Expect::of(&acquire);
        assert_eq!(expect.server_wait_s, 7);
        let line = format!("ok {TOKEN} 30");
        match expect.decode(&line) {
            Ok(Answer::Acquired(Some(grant))) => assert_eq!(grant.fence, 1),
            other => panic!("not a grant: {other:?}"),
        }
        assert_eq!(expect.decode("timeout"), Ok(Answer::Acquired(None)));

        let release = Request::Release {
            space: Space::Lock,
            key: "k",
            token: TOKEN,
        };
        assert_eq!(Expect::of(&release).decode("ok"), Ok(Answer::Done));
        assert!(Expect::of(&release).decode("error").is_err());
        assert_eq!(Expect::of(&Request::Ping).decode("ok"), Ok(Answer::Done));
        let renew = Request::Renew {
            space: Space::Semaphore,
            key: "k",
            token: TOKEN,
            lease_ttl_s: None,
        };
        assert_eq!(Expect::of(&renew).server_wait_s, 0);
        assert_eq!(Expect::of(&renew).decode("ok 12"), Ok(Answer::Renewed(12)));
        let enqueue = Request::Enqueue {
            kind: Kind::Lock,
            key: "k",
            lease_ttl_s: None,
        };
        assert_eq!(
            Expect::of(&enqueue).decode("queued"),
            Ok(Answer::Enqueued(Enqueued::Queued))
        );
    }

    #[test]
    fn a_reply_of_another_shape_is_a_protocol_error() {
        let renew = Request::Renew {
            space: Space::Lock,
            key: "k",
            token: TOKEN,
            lease_ttl_s: None,
        };
        let answer = Expect::of(&renew).decode("queued");
        assert!(matches!(answer, Err(Error::Protocol(_))), "{answer:?}");
        let stats = Expect::of(&Request::Stats).decode("ok");
        assert!(stats.is_err(), "{stats:?}");
        let json =
            r#"{"connections":2,"locks":[],"semaphores":[],"idle_locks":[],"idle_semaphores":[]}"#;
        let stats = Expect::of(&Request::Stats).decode(&format!("ok {json}"));
        assert_eq!(stats, Ok(Answer::Stats(json.into())));
        let list = Expect::of(&Request::Stats).decode("ok [1]");
        assert!(matches!(list, Err(Error::Protocol(_))), "{list:?}");
        // Only shaped like an object here: the host's decoding refuses it.
        let torn = r#"{"connections":2}"#;
        let answer = Expect::of(&Request::Stats).decode(&format!("ok {torn}"));
        assert_eq!(answer, Ok(Answer::Stats(torn.into())));
        let typed = crate::protocol::stats::decode_json(torn);
        assert!(matches!(typed, Err(Error::Protocol(_))), "{typed:?}");
    }
}
