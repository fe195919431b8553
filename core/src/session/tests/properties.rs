//! Random orders of commands, replies, faults and time against the session:
//! it never panics, never reports as held a lease it knows lost or past its
//! end, reports each lost grant at most once, and never asks to send while
//! a request is already on the wire.

use proptest::prelude::*;

use super::*;
use crate::session::invariants::{Checked, Event};

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
        let mut checked = Checked::new(Session::new(settings(limit, None), jitter), at(5 * S));
        let mut fences = 0u64;
        for step in steps {
            let event = match step {
                Step::Acquire => Event::Acquire,
                Step::Enqueue => Event::Enqueue,
                Step::Wait(t) => Event::Wait(t),
                Step::Release => Event::Release,
                Step::Renew => Event::Renew,
                Step::Close => Event::Close,
                Step::Connected(ok) => Event::Connected(ok),
                Step::Line(i) => {
                    fences += 1;
                    let token = format!("{fences:016x}0123456789abcdef");
                    Event::Line(LINES[i].replace("{token}", &token))
                }
                Step::Disconnected => Event::Disconnected,
                Step::Advance(ms) => Event::Advance(ms),
                Step::ToDeadline => Event::ToDeadline,
            };
            if let Err(broken) = checked.apply(event) {
                prop_assert!(false, "{}", broken);
            }
        }
    }
}
