//! Random orders of commands, replies, faults and time against the session:
//! it never panics, never reports as held a lease it knows lost or past its
//! end, reports each lost grant at most once, and never asks to send while
//! a request is already on the wire.

use proptest::prelude::*;

use super::*;
use crate::session::invariants::{Checked, Event};

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

/// Any event; a reply line is one of [`LINES`] with a random token (so
/// each grant's fence is new).
fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        Just(Event::Acquire),
        Just(Event::Enqueue),
        proptest::option::of(0..20u64).prop_map(Event::Wait),
        Just(Event::Release),
        Just(Event::Renew),
        Just(Event::Close),
        any::<bool>().prop_map(Event::Connected),
        (0..LINES.len(), any::<u64>()).prop_map(|(i, fence)| {
            let token = format!("{fence:016x}0123456789abcdef");
            Event::Line(LINES[i].replace("{token}", &token))
        }),
        Just(Event::Disconnected),
        (0..5_000u64).prop_map(Event::Advance),
        Just(Event::ToDeadline),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_event_orders_keep_the_invariants(
        events in proptest::collection::vec(event(), 1..80),
        semaphore in any::<bool>(),
        jitter in any::<u64>(),
    ) {
        let limit = semaphore.then_some(3);
        let mut checked = Checked::new(Session::new(settings(limit, None), jitter), at(5 * S));
        for event in events {
            if let Err(broken) = checked.apply(event) {
                prop_assert!(false, "{}", broken);
            }
        }
    }
}
