//! Random orders of commands, replies, faults and time against the session:
//! it never panics, never reports as held a lease it knows lost or past its
//! end, reports each lost grant at most once, and never asks to send while
//! a request is already on the wire.

use proptest::prelude::*;

use super::*;

/// One thing that can happen to a session.
#[derive(Debug, Clone)]
enum Step {
    Acquire,
    Enqueue,
    Wait(Option<u64>),
    Release,
    Renew,
    Close,
    /// The pending connect succeeds (`true`) or fails.
    Connected(bool),
    /// A reply line (an index into [`LINES`], the token made unique).
    Line(usize),
    Disconnected,
    /// Time passes by this many milliseconds, then `handle_timeout`.
    Advance(u64),
    /// Time jumps to the session's next deadline.
    ToDeadline,
}

/// Replies of every shape, right and wrong for each command.
const LINES: &[&str] = &[
    "ok {token} 2",
    "ok {token} 30",
    "acquired {token} 3",
    "queued",
    "timeout",
    "ok",
    "ok 2",
    "ok 0",
    "error",
    "error_lease_expired",
    "error_max_locks",
    "error_not_enqueued",
    "garbage",
    "ok {token}",
];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Acquire),
        Just(Step::Enqueue),
        proptest::option::of(0..20u64).prop_map(Step::Wait),
        Just(Step::Release),
        Just(Step::Renew),
        Just(Step::Close),
        any::<bool>().prop_map(Step::Connected),
        (0..LINES.len()).prop_map(Step::Line),
        Just(Step::Disconnected),
        (0..5_000u64).prop_map(Step::Advance),
        Just(Step::ToDeadline),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_event_orders_keep_the_invariants(
        steps in proptest::collection::vec(step(), 1..80),
        semaphore in any::<bool>(),
        jitter in any::<u64>(),
    ) {
        let limit = semaphore.then_some(3);
        let mut s = Session::new(settings(limit, None), jitter);
        let mut now = 5 * S;
        let mut connecting = false;
        let mut on_wire = 0usize;
        let mut fences = 0u64;
        let mut reported = std::collections::HashSet::new();
        for step in steps {
            // Commands may be refused; that is fine, a panic is not.
            let _ = match step {
                Step::Acquire => s.acquire(now),
                Step::Enqueue => s.enqueue(now),
                Step::Wait(t) => s.wait(now, t),
                Step::Release => s.release(now),
                Step::Renew => s.renew(now),
                Step::Close => {
                    s.close();
                    Ok(())
                }
                Step::Connected(ok) if connecting => {
                    connecting = false;
                    if ok {
                        s.handle_connected(now);
                    } else {
                        s.handle_connect_failed(Error::Connection("refused".into()));
                    }
                    Ok(())
                }
                Step::Connected(_) => Ok(()),
                Step::Line(i) => {
                    fences += 1;
                    let token = format!("{fences:016x}0123456789abcdef");
                    s.handle_line(now, &LINES[i].replace("{token}", &token));
                    on_wire = on_wire.saturating_sub(1);
                    Ok(())
                }
                Step::Disconnected => {
                    s.handle_disconnected(now, Error::Connection("reset".into()));
                    Ok(())
                }
                Step::Advance(ms) => {
                    now += ms * NS_PER_MS;
                    s.handle_timeout(now);
                    Ok(())
                }
                Step::ToDeadline => {
                    if let Some(at) = s.poll_timeout() {
                        prop_assert!(at != u64::MAX, "an endless deadline is no deadline");
                        now = now.max(at);
                    }
                    s.handle_timeout(now);
                    Ok(())
                }
            };
            while let Some(action) = s.poll_action() {
                match action {
                    Action::Connect => connecting = true,
                    Action::Send(frame) => {
                        prop_assert_eq!(frame.iter().filter(|&&b| b == b'\n').count(), 3);
                        on_wire += 1;
                        prop_assert!(on_wire <= 1, "two requests on the wire");
                    }
                    Action::Disconnect => {
                        on_wire = 0;
                        connecting = false;
                    }
                }
            }
            while let Some(lost) = s.poll_lost() {
                prop_assert!(reported.insert(lost.fence), "fence {} reported twice", lost.fence);
            }
            if let Some(grant) = s.grant() {
                prop_assert!(!reported.contains(&grant.fence), "held after reported lost");
                let end = s.lease_expires_at().unwrap_or(0);
                prop_assert!(now < end, "held at {now}, past the lease end {end}");
            }
        }
    }
}
