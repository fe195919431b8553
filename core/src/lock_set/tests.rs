//! The plan on a virtual clock: every path of an acquire, a release and a
//! loss, with the orders it gives in between.

use super::*;
use crate::protocol::{Grant, Loss, LossCause};

const TOKEN: &str = "00000000000000070123456789abcdef";

fn at(ms: u64) -> Instant {
    Instant::from_nanos(ms * 1_000_000)
}

fn grant() -> Grant {
    Grant {
        token: TOKEN.into(),
        lease_s: 30,
        fence: 7,
    }
}

fn granted() -> Result<Outcome, Error> {
    Ok(Outcome::Enqueued(Enqueued::Acquired(grant())))
}

fn queued() -> Result<Outcome, Error> {
    Ok(Outcome::Enqueued(Enqueued::Queued))
}

fn released(confirmed: bool) -> Result<Outcome, Error> {
    Ok(Outcome::Released(confirmed))
}

fn orders(list: &[Order]) -> Progress {
    Progress::Orders(list.to_vec())
}

fn lost() -> Error {
    Error::LockLost(Loss::new(LossCause::Expired, ""))
}

/// A plan of `n` members with every one taken.
fn held(n: usize) -> Plan {
    let mut plan = Plan::new(n);
    plan.acquire(at(0), 10).expect("idle");
    for member in 0..n {
        plan.member_done(member, granted(), at(1));
    }
    assert!(plan.is_held());
    plan
}

/// Releases all `n` members with `outcomes`; what the last one settles.
fn release_each(plan: &mut Plan, outcomes: Vec<Result<Outcome, Error>>) -> Progress {
    let n = outcomes.len();
    let mut last = orders(&[]);
    for (member, outcome) in outcomes.into_iter().enumerate() {
        last = plan.member_done(member, outcome, at(2));
        if member + 1 < n {
            assert_eq!(last, orders(&[]), "settled early");
        }
    }
    last
}

#[test]
fn free_members_are_taken_one_by_one_in_order() {
    let mut plan = Plan::new(3);
    assert_eq!(plan.acquire(at(0), 10), Ok(orders(&[Order::Enqueue(0)])));
    assert!(plan.is_busy());
    assert_eq!(
        plan.member_done(0, granted(), at(1)),
        orders(&[Order::Enqueue(1)])
    );
    // A member's outcome out of turn changes nothing.
    assert_eq!(plan.member_done(2, granted(), at(1)), orders(&[]));
    assert_eq!(
        plan.member_done(1, Ok(Outcome::Acquired(Some(grant()))), at(1)),
        orders(&[Order::Enqueue(2)])
    );
    assert_eq!(
        plan.member_done(2, granted(), at(1)),
        Progress::Settled(Some(Settled::Held))
    );
    assert!(plan.is_held() && !plan.is_busy());
}

#[test]
fn a_queued_member_waits_for_the_whole_seconds_left_rounded_up() {
    let mut plan = Plan::new(2);
    plan.acquire(at(0), 10).expect("idle");
    plan.member_done(0, granted(), at(100));
    plan.member_done(1, queued(), at(2_500));
    // Asked again later, with less left.
    assert_eq!(
        plan.member_done(1, queued(), at(2_500)),
        orders(&[Order::Wait(1, 8)])
    );
    assert_eq!(seconds_left(at(10_000), at(10_000)), 0);
    assert_eq!(seconds_left(at(10_000), at(12_000)), 0);
    assert_eq!(seconds_left(at(10_000), at(9_999)), 1);
}

#[test]
fn the_deadline_passing_releases_what_was_taken_before_answering() {
    let mut plan = Plan::new(2);
    plan.acquire(at(0), 1).expect("idle");
    plan.member_done(0, granted(), at(10));
    assert_eq!(
        plan.member_done(1, queued(), at(20)),
        orders(&[Order::Wait(1, 1)])
    );
    let all = orders(&[Order::Release(0), Order::Release(1)]);
    assert_eq!(
        plan.member_done(1, Ok(Outcome::Acquired(None)), at(1_020)),
        all
    );
    assert!(plan.is_busy() && !plan.is_held());
    let settled = release_each(&mut plan, vec![released(true), released(false)]);
    assert_eq!(settled, Progress::Settled(Some(Settled::NotAcquired)));
    assert!(!plan.is_busy());
}

#[test]
fn a_member_that_fails_fails_the_set_after_the_others_are_released() {
    let mut plan = Plan::new(3);
    plan.acquire(at(0), 10).expect("idle");
    plan.member_done(0, granted(), at(1));
    let refused = Error::LimitMismatch;
    let all = orders(&[Order::Release(0), Order::Release(1), Order::Release(2)]);
    assert_eq!(plan.member_done(1, Err(refused.clone()), at(2)), all);
    let settled = release_each(
        &mut plan,
        vec![released(true), released(false), released(false)],
    );
    assert_eq!(settled, Progress::Settled(Some(Settled::Failed(refused))));
    // Idle again: a new acquire is taken.
    assert!(plan.acquire(at(3), 10).is_ok());
}

#[test]
fn a_release_is_confirmed_only_when_every_member_was() {
    let mut plan = held(2);
    assert_eq!(
        plan.acquire(at(2), 1),
        Err(Error::InvalidArgument(
            "the lock set is held already".into()
        ))
    );
    assert_eq!(
        plan.release(),
        Ok(orders(&[Order::Release(0), Order::Release(1)]))
    );
    assert!(plan.release().is_err(), "a second command while one runs");
    assert_eq!(
        release_each(&mut plan, vec![released(true), released(true)]),
        Progress::Settled(Some(Settled::Released(true)))
    );
    let mut plan = held(2);
    plan.release().expect("held");
    assert_eq!(
        release_each(&mut plan, vec![released(true), released(false)]),
        Progress::Settled(Some(Settled::Released(false)))
    );
    // Nothing held: false at once.
    assert_eq!(
        plan.release(),
        Ok(Progress::Settled(Some(Settled::Released(false))))
    );
}

#[test]
fn a_member_lost_while_held_loses_the_set_and_the_next_release_says_so_once() {
    let mut plan = held(3);
    assert_eq!(
        plan.member_lost(1, lost()),
        orders(&[Order::Release(0), Order::Release(1), Order::Release(2)])
    );
    let settled = release_each(&mut plan, vec![released(true), Err(lost()), released(true)]);
    assert_eq!(settled, Progress::Settled(None), "no command waited for it");
    assert!(!plan.is_held() && !plan.is_busy());
    assert_eq!(plan.release(), Err(lost()));
    assert_eq!(
        plan.release(),
        Ok(Progress::Settled(Some(Settled::Released(false))))
    );
}

#[test]
fn a_member_lost_while_a_later_one_is_taken_aborts_the_acquire() {
    let mut plan = Plan::new(3);
    plan.acquire(at(0), 60).expect("idle");
    plan.member_done(0, granted(), at(1));
    plan.member_done(1, granted(), at(1));
    plan.member_done(2, queued(), at(2));
    // A loss of the member being taken, or a second loss, changes nothing more.
    assert_eq!(plan.member_lost(2, lost()), orders(&[]));
    assert_eq!(plan.member_lost(0, lost()), orders(&[Order::Close(2)]));
    assert_eq!(plan.member_lost(1, lost()), orders(&[]));
    let closed = Err(Error::Connection("closed by the caller".into()));
    let all = orders(&[Order::Release(0), Order::Release(1), Order::Release(2)]);
    assert_eq!(plan.member_done(2, closed, at(3)), all);
    let settled = release_each(
        &mut plan,
        vec![Err(lost()), released(true), released(false)],
    );
    assert_eq!(settled, Progress::Settled(Some(Settled::Failed(lost()))));
}

#[test]
fn a_release_asked_while_the_set_lets_go_after_a_loss_gets_the_loss() {
    let mut plan = held(2);
    plan.member_lost(0, lost());
    assert_eq!(
        plan.release(),
        Ok(orders(&[])),
        "joins the release under way"
    );
    assert!(plan.acquire(at(2), 1).is_err());
    let settled = release_each(&mut plan, vec![Err(lost()), released(true)]);
    assert_eq!(settled, Progress::Settled(Some(Settled::Failed(lost()))));
    assert_eq!(
        plan.release(),
        Ok(Progress::Settled(Some(Settled::Released(false)))),
        "told once"
    );
}
