//! The whole lifecycle on a virtual clock: no socket, no sleep. A harness
//! plays the shell: it carries out the session's actions, records what was
//! sent, and answers as dflockd v1.10.0 would.

use std::time::Duration;

use super::*;
use crate::settings::RawOptions;
use crate::LossCause;

const S: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

/// The moment `since` after the clock's origin.
fn at(since: Duration) -> Instant {
    Instant::default() + since
}
const T1: &str = "00000000000000010123456789abcdef";
const T2: &str = "00000000000000020123456789abcdef";

struct Harness {
    s: Session,
    now: Instant,
    /// Request lines sent, one string per request (`"l k 10"`).
    sent: Vec<String>,
    connects: usize,
    disconnects: usize,
}

fn settings(limit: Option<u32>, lease: Option<u64>) -> Settings {
    Settings::new(
        "k",
        limit,
        RawOptions {
            lease_ttl_s: lease,
            ..Default::default()
        },
    )
    .unwrap()
}

impl Harness {
    fn new() -> Self {
        Self::with(settings(None, None))
    }

    fn with(settings: Settings) -> Self {
        Harness {
            s: Session::new(settings, 0),
            now: at(1_000 * S),
            sent: Vec::new(),
            connects: 0,
            disconnects: 0,
        }
    }

    /// Carries out every action; connecting succeeds.
    fn io(&mut self) {
        while let Some(action) = self.s.poll_action() {
            match action {
                Action::Connect => {
                    self.connects += 1;
                    self.s.handle_connected(self.now);
                }
                Action::Send(bytes) => {
                    let text = String::from_utf8(bytes).unwrap();
                    let lines: Vec<&str> = text.lines().collect();
                    assert_eq!(lines.len(), 3, "{text:?}");
                    self.sent.push(lines.join(" "));
                }
                Action::Disconnect => self.disconnects += 1,
            }
        }
    }

    fn last_sent(&self) -> &str {
        self.sent.last().map_or("", String::as_str)
    }

    fn reply(&mut self, line: &str) {
        self.s.handle_line(self.now, line);
        self.io();
    }

    /// Jumps the clock to the session's next deadline and handles it.
    fn advance(&mut self) {
        self.advance_until(Instant::from_nanos(u64::MAX));
    }

    /// Jumps the clock to the session's next deadline, at most `limit`,
    /// and handles it.
    fn advance_until(&mut self, limit: Instant) {
        let next = self.s.poll_timeout().unwrap_or(limit).min(limit);
        assert!(
            next >= self.now,
            "a deadline in the past: {next:?} < {:?}",
            self.now
        );
        self.now = next;
        self.s.handle_timeout(self.now);
        self.io();
    }

    fn outcome(&mut self) -> Result<Outcome, Error> {
        self.s.poll_outcome().expect("an outcome")
    }

    /// acquire → granted with `token` and `lease_s`.
    fn hold(&mut self, token: &str, lease_s: u64) {
        self.s.acquire(self.now).unwrap();
        self.io();
        assert!(self.last_sent().starts_with("l k "), "{}", self.last_sent());
        self.reply(&format!("ok {token} {lease_s}"));
        let Ok(Outcome::Acquired(Some(grant))) = self.outcome() else {
            panic!("not granted");
        };
        assert_eq!(grant.token, token);
        assert!(self.s.is_held());
    }
}

#[test]
fn acquire_renew_release() {
    let mut h = Harness::new();
    h.s.acquire(h.now).unwrap();
    assert_eq!(h.s.poll_action(), Some(Action::Connect));
    assert_eq!(h.s.poll_outcome(), None, "waits for the connection");
    h.s.handle_connected(h.now);
    h.connects += 1;
    h.io();
    assert_eq!(h.sent, ["l k 10"]);
    let granted_at = h.now;
    h.reply(&format!("ok {T1} 4"));
    assert!(matches!(h.outcome(), Ok(Outcome::Acquired(Some(_)))));
    assert_eq!(h.s.grant().map(|g| g.fence), Some(1));
    // Renewed at half the lease, three times, each counted from its send.
    for round in 1..=3 {
        assert_eq!(h.s.poll_timeout(), Some(granted_at + round * 2 * S));
        h.advance();
        assert_eq!(h.last_sent(), format!("n k {T1}"));
        h.reply("ok 4");
        assert!(h.s.is_held());
    }
    h.s.release(h.now).unwrap();
    h.io();
    assert_eq!(h.last_sent(), format!("r k {T1}"));
    assert_eq!(h.s.poll_outcome(), None, "waits for the reply");
    h.reply("ok");
    assert_eq!(h.outcome(), Ok(Outcome::Released(true)));
    assert!(!h.s.is_held());
    assert_eq!(h.s.poll_timeout(), None, "nothing due once released");
    assert_eq!(h.s.poll_lost(), None);
    assert_eq!(
        (h.connects, h.disconnects),
        (1, 0),
        "the connection is kept"
    );
    // Released again: nothing held, nothing sent.
    h.s.release(h.now).unwrap();
    assert_eq!(h.outcome(), Ok(Outcome::Released(false)));
    assert_eq!(h.sent.len(), 5);
}

#[test]
fn a_refused_renewal_is_a_loss_reported_once() {
    let mut h = Harness::new();
    h.hold(T1, 4);
    h.advance();
    h.reply("error");
    assert!(!h.s.is_held());
    let lost = h.s.poll_lost().expect("reported");
    assert_eq!((lost.key.as_str(), lost.fence), ("k", 1));
    assert_eq!(lost.reason.cause, LossCause::RenewalRefused);
    assert_eq!(h.s.poll_lost(), None, "once");
    assert_eq!(h.disconnects, 1, "the connection is dropped");
    // The next release reports it as the caller's error, then nothing.
    let sent = h.sent.len();
    assert!(matches!(h.s.release(h.now), Err(Error::LockLost(_))));
    h.s.release(h.now).unwrap();
    assert_eq!(h.outcome(), Ok(Outcome::Released(false)));
    assert_eq!(h.sent.len(), sent, "no release sent for a lost lease");
}

#[test]
fn a_connection_lost_while_held_is_a_loss() {
    let mut h = Harness::new();
    h.hold(T1, 30);
    h.s.handle_disconnected(h.now, Error::Connection("reset".into()));
    h.io();
    assert!(!h.s.is_held());
    let lost = h.s.poll_lost().unwrap();
    assert_eq!(lost.reason.cause, LossCause::ConnectionLost);
    assert!(lost.reason.detail.contains("reset"), "{:?}", lost.reason);
    assert_eq!(h.s.poll_timeout(), None);
    // A new acquire connects again.
    assert!(matches!(h.s.renew(h.now), Err(Error::LockLost(_))));
    h.hold(T2, 30);
    assert_eq!(h.connects, 2);
}

#[test]
fn a_renewal_without_reply_is_lost_at_the_lease_end_not_before() {
    let mut h = Harness::new();
    h.hold(T1, 10);
    let end = h.s.lease_expires_at().unwrap();
    h.advance(); // renewal sent at 5 s
    assert!(h.last_sent().starts_with("n k"));
    assert_eq!(h.s.poll_timeout(), Some(end));
    h.advance_until(Instant::from_nanos(end.as_nanos() - 1));
    assert!(
        h.s.is_held(),
        "a server paused for less than the lease keeps it"
    );
    h.advance();
    assert_eq!(h.now, end);
    assert!(!h.s.is_held());
    assert_eq!(h.s.poll_lost().unwrap().reason.cause, LossCause::NoReply);
    assert_eq!(h.disconnects, 1);
    // The reply arriving after all is unsolicited: ignored on a dropped link.
    h.reply("ok 10");
    assert!(!h.s.is_held());
}

#[test]
fn a_late_renewal_reply_within_the_lease_keeps_it() {
    let mut h = Harness::new();
    h.hold(T1, 10);
    h.advance(); // renewal out
    h.now += 4 * S; // the server was paused 4 s
    h.s.handle_timeout(h.now);
    h.reply("ok 10");
    assert!(h.s.is_held());
    assert_eq!(h.s.poll_lost(), None);
}

#[test]
fn a_release_waits_for_the_renewal_in_flight() {
    let mut h = Harness::new();
    h.hold(T1, 4);
    h.advance();
    let sent = h.sent.len();
    h.s.release(h.now).unwrap();
    h.io();
    assert_eq!(h.sent.len(), sent, "one request on the wire at a time");
    h.reply("ok 4");
    assert_eq!(h.last_sent(), format!("r k {T1}"));
    h.reply("ok");
    assert_eq!(h.outcome(), Ok(Outcome::Released(true)));
}

#[test]
fn a_release_behind_a_refused_renewal_reports_the_loss_and_sends_nothing() {
    let mut h = Harness::new();
    h.hold(T1, 4);
    h.advance();
    h.s.release(h.now).unwrap();
    h.io();
    let sent = h.sent.len();
    h.reply("error");
    assert!(matches!(h.outcome(), Err(Error::LockLost(_))));
    assert_eq!(h.sent.len(), sent);
    assert!(h.s.poll_lost().is_some());
    h.s.release(h.now).unwrap();
    assert_eq!(h.outcome(), Ok(Outcome::Released(false)));
}

#[test]
fn two_phase_queued_then_granted() {
    let mut h = Harness::with(settings(Some(2), Some(7)));
    h.s.enqueue(h.now).unwrap();
    h.io();
    assert_eq!(h.sent, ["se k 2 7"]);
    h.reply("queued");
    assert_eq!(h.outcome(), Ok(Outcome::Enqueued(Enqueued::Queued)));
    assert!(matches!(h.s.acquire(h.now), Err(Error::InvalidArgument(_))));
    h.s.wait(h.now, Some(3)).unwrap();
    h.io();
    assert_eq!(h.last_sent(), "sw k 3");
    // The client waits the server's 3 s plus the grace.
    assert_eq!(
        h.s.poll_timeout(),
        Some(h.now + 3 * S + REPLY_GRACE_MS as u32 * MS)
    );
    h.reply(&format!("ok {T1} 7"));
    assert!(matches!(h.outcome(), Ok(Outcome::Acquired(Some(_)))));
    assert!(h.s.is_held());
    h.advance();
    assert_eq!(h.last_sent(), format!("sn k {T1} 7"));
}

#[test]
fn two_phase_fast_path_waits_without_io() {
    let mut h = Harness::new();
    h.s.enqueue(h.now).unwrap();
    h.io();
    h.reply(&format!("acquired {T1} 5"));
    assert!(matches!(
        h.outcome(),
        Ok(Outcome::Enqueued(Enqueued::Acquired(_)))
    ));
    let sent = h.sent.len();
    h.s.wait(h.now, None).unwrap();
    assert!(matches!(h.outcome(), Ok(Outcome::Acquired(Some(_)))));
    assert_eq!(h.sent.len(), sent);
    assert!(h.s.is_held(), "still held after wait");
}

#[test]
fn a_wait_after_the_queued_connection_closed_says_so() {
    let mut h = Harness::new();
    h.s.enqueue(h.now).unwrap();
    h.io();
    h.reply("queued");
    h.s.poll_outcome();
    h.s.handle_disconnected(h.now, Error::Connection("closed".into()));
    h.io();
    assert_eq!(h.s.poll_lost(), None, "nothing was held");
    let Err(Error::Connection(why)) = h.s.wait(h.now, None) else {
        panic!("not a connection error");
    };
    assert!(why.contains("enqueue again"), "{why}");
    h.s.enqueue(h.now).unwrap();
    h.io();
    assert_eq!(h.connects, 2);
}

#[test]
fn a_release_while_queued_leaves_the_queue_by_disconnecting() {
    let mut h = Harness::new();
    h.s.enqueue(h.now).unwrap();
    h.io();
    h.reply("queued");
    h.s.poll_outcome();
    h.s.release(h.now).unwrap();
    h.io();
    assert_eq!(h.outcome(), Ok(Outcome::Released(false)));
    assert_eq!(h.disconnects, 1);
}

#[test]
fn the_servers_timeout_is_no_error_a_missing_reply_is() {
    let mut h = Harness::new();
    h.s.acquire(h.now).unwrap();
    h.io();
    h.reply("timeout");
    assert_eq!(h.outcome(), Ok(Outcome::Acquired(None)));
    assert!(!h.s.is_held());
    // No reply at all: the acquire timeout plus the grace, then `timeout`.
    h.s.acquire(h.now).unwrap();
    h.io();
    let sent_at = h.now;
    h.advance();
    assert_eq!(h.now, sent_at + 10 * S + REPLY_GRACE_MS as u32 * MS);
    assert_eq!(h.outcome(), Err(Error::Timeout));
    assert_eq!(h.disconnects, 1, "an out-of-step connection is closed");
    // The next call connects afresh.
    h.hold(T1, 5);
    assert_eq!(h.connects, 2);
}

#[test]
fn a_failed_connect_fails_the_command() {
    let mut h = Harness::new();
    h.s.acquire(h.now).unwrap();
    assert_eq!(h.s.poll_action(), Some(Action::Connect));
    h.s.handle_connect_failed(Error::Connection("refused".into()));
    assert_eq!(h.outcome(), Err(Error::Connection("refused".into())));
    assert_eq!(h.s.poll_action(), None);
    h.hold(T1, 5);
}

#[test]
fn close_drops_the_connection_and_reports_no_loss() {
    let mut h = Harness::new();
    h.hold(T1, 5);
    let sent = h.sent.len();
    h.s.close();
    h.io();
    assert_eq!(h.disconnects, 1);
    assert!(!h.s.is_held());
    assert_eq!(h.s.poll_lost(), None);
    assert_eq!(h.s.poll_timeout(), None);
    assert_eq!(h.sent.len(), sent, "no release");
}

#[test]
fn bytes_nobody_asked_for_break_the_connection() {
    let mut h = Harness::new();
    h.hold(T1, 30);
    h.reply("ok");
    assert_eq!(h.disconnects, 1);
    assert!(!h.s.is_held());
    let lost = h.s.poll_lost().unwrap();
    assert_eq!(lost.reason.cause, LossCause::ConnectionLost);
    assert!(
        lost.reason.detail.contains("unsolicited"),
        "{:?}",
        lost.reason
    );
}

#[test]
fn garbage_in_reply_to_a_command_is_a_protocol_error() {
    let mut h = Harness::new();
    h.s.acquire(h.now).unwrap();
    h.io();
    h.reply("ok not-a-token 5");
    assert!(matches!(h.outcome(), Err(Error::Protocol(_))));
    assert_eq!(h.disconnects, 1);
    assert!(!h.s.is_held());
}

#[test]
fn an_explicit_renew_returns_the_remaining_seconds() {
    let mut h = Harness::with(settings(None, Some(8)));
    h.hold(T1, 8);
    h.s.renew(h.now).unwrap();
    h.io();
    assert_eq!(h.last_sent(), format!("n k {T1} 8"));
    h.reply("ok 8");
    assert_eq!(h.outcome(), Ok(Outcome::Renewed(8)));
    // A refused one is the loss, reported by renew itself and by poll_lost.
    h.s.renew(h.now).unwrap();
    h.io();
    h.reply("error");
    assert!(matches!(h.outcome(), Err(Error::LockLost(_))));
    assert!(h.s.poll_lost().is_some());
    assert!(matches!(h.s.renew(h.now), Err(Error::InvalidArgument(_))));
}

#[test]
fn an_explicit_renew_moves_the_lease_end_from_when_it_was_sent() {
    // Held with a 10 s lease at t=1000; renewed by the caller at t=1004
    // ("ok 10"): the lease lasts to 1014, and the next scheduled renewal
    // counts from 1004 too (lease × ratio 0.5 = 1009, this session's jitter
    // being 0).
    let mut h = Harness::with(settings(None, Some(10)));
    h.hold(T1, 10);
    assert_eq!(h.s.lease_expires_at(), Some(at(1_010 * S)));
    h.now = at(1_004 * S);
    h.s.renew(h.now).unwrap();
    h.io();
    assert_eq!(h.last_sent(), format!("n k {T1} 10"));
    h.reply("ok 10");
    assert_eq!(h.outcome(), Ok(Outcome::Renewed(10)));
    assert_eq!(h.s.lease_expires_at(), Some(at(1_014 * S)));
    assert_eq!(h.s.poll_timeout(), Some(at(1_009 * S)));
}

#[test]
fn a_lease_that_runs_out_under_a_release_in_flight_fails_the_release() {
    let mut h = Harness::new();
    h.hold(T1, 2);
    h.s.release(h.now).unwrap();
    h.io();
    h.advance();
    assert!(matches!(h.outcome(), Err(Error::LockLost(_))));
    assert!(h.s.poll_lost().is_some());
    assert_eq!(h.disconnects, 1);
}

#[test]
fn a_broken_connection_under_a_release_fails_it_without_a_loss() {
    let mut h = Harness::new();
    h.hold(T1, 30);
    h.s.release(h.now).unwrap();
    h.io();
    h.s.handle_disconnected(h.now, Error::Connection("reset".into()));
    assert_eq!(h.outcome(), Err(Error::Connection("reset".into())));
    assert_eq!(h.s.poll_lost(), None, "the caller let go of it anyway");
    assert!(!h.s.is_held());
}

#[test]
fn a_release_the_server_refuses_is_a_loss_and_an_undriven_lease_ends() {
    let mut h = Harness::new();
    h.hold(T1, 30);
    h.s.release(h.now).unwrap();
    h.io();
    h.reply("error");
    let Err(Error::LockLost(loss)) = h.outcome() else {
        panic!("not lock-lost");
    };
    assert_eq!(loss.cause, LossCause::ReleaseRefused);
    // Nothing drives this one: past its end without a renewal sent.
    h.hold(T2, 2);
    h.now += 2 * S;
    h.s.handle_timeout(h.now);
    assert!(!h.s.is_held());
    let lost = h.s.poll_lost().unwrap();
    assert_eq!((lost.fence, lost.reason.cause), (2, LossCause::NotRenewed));
    assert_eq!(lost.kind, Kind::Lock);
}

#[test]
fn misuse_is_refused_before_anything_is_sent() {
    let mut h = Harness::new();
    assert!(matches!(
        h.s.wait(h.now, None),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(h.s.renew(h.now), Err(Error::InvalidArgument(_))));
    assert!(matches!(
        h.s.wait(h.now, Some(crate::protocol::MAX_SECONDS + 1)),
        Err(Error::InvalidArgument(_))
    ));
    h.s.acquire(h.now).unwrap();
    assert!(
        matches!(h.s.acquire(h.now), Err(Error::InvalidArgument(_))),
        "one call at a time"
    );
    assert!(matches!(h.s.release(h.now), Err(Error::InvalidArgument(_))));
    assert_eq!(h.s.poll_action(), Some(Action::Connect));
    assert_eq!(h.s.poll_action(), None);
    assert!(h.sent.is_empty());
}

#[test]
fn a_renewal_is_never_due_while_another_request_is_out() {
    let mut h = Harness::new();
    h.hold(T1, 4);
    h.s.release(h.now).unwrap();
    h.io();
    h.now += 3 * S; // past the renewal time, release reply still missing
    h.s.handle_timeout(h.now);
    h.io();
    assert_eq!(h.last_sent(), format!("r k {T1}"), "no renewal behind it");
    assert!(h.s.poll_timeout().unwrap() > h.now, "nothing to spin on");
}

mod properties;

#[test]
fn counters_count_connects_renewals_with_their_round_trips_and_losses() {
    let mut h = Harness::new();
    h.hold(T1, 4);
    // Two renewals answered 3 ms and 7 ms after they went out.
    for ms in [3, 7] {
        h.advance();
        assert_eq!(h.last_sent(), format!("n k {T1}"));
        h.now += ms * MS;
        h.reply("ok 4");
    }
    // A third one refused: sent, not confirmed, and the lease is lost.
    h.advance();
    h.reply("error");
    // The caller's own renew is not the schedule's.
    assert!(matches!(h.s.renew(h.now), Err(Error::LockLost(_))));
    h.hold(T2, 4);
    let counters = h.s.counters();
    assert_eq!(
        counters,
        Counters {
            connects: 2,
            renewals_sent: 3,
            renewals_confirmed: 2,
            renew_latency_ns_total: 10_000_000,
            renew_latency_ns_max: 7_000_000,
            leases_lost: 1,
        }
    );
    assert_eq!(counters.renew_latency_ns_mean(), Some(5_000_000));
}
