//! A lock set's plan: several locks taken all or none, as a sans-IO state
//! machine over its members' sessions (time is an argument).
//!
//! Members are taken one at a time in the order the shell gives them (by
//! server, then key: two sets that share keys then never wait on each
//! other in a cycle), each by `enqueue` and, if queued, `wait` for the
//! whole seconds left of the set's one deadline. When the deadline passes,
//! a member fails, or a member taken earlier is lost meanwhile, every
//! member is released before the answer. Held, the loss of any member is
//! the loss of the set: the others are released. The plan says what to do
//! to which member ([`Order`]); the shell does it and hands back each
//! member's outcome and each loss it sees.

use std::time::Duration;

use crate::protocol::{Enqueued, Error};
use crate::session::Outcome;
use crate::time::Instant;

/// What to do to one member (by its index in the set's order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    /// Start its `enqueue`.
    Enqueue(usize),
    /// Start its `wait` for this many seconds.
    Wait(usize, u64),
    /// Start its `release` (answered at once when it holds nothing).
    Release(usize),
    /// Close its connection: its command in flight ends with an error.
    Close(usize),
}

/// What a set command came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    /// `acquire`: every member is held.
    Held,
    /// `acquire`: the deadline passed; nothing is held.
    NotAcquired,
    /// `release`: `true` when every member's release was confirmed.
    Released(bool),
    /// The command failed; nothing is held.
    Failed(Error),
}

/// What the shell does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Carry these out; member outcomes come later.
    Orders(Vec<Order>),
    /// The command is over (with no command running: nothing to report).
    Settled(Option<Settled>),
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Idle,
    /// Taking `member` (every one before it is held).
    Taking {
        member: usize,
        deadline: Instant,
        /// A member taken before was lost: abort once `member` answers.
        lost: Option<Error>,
    },
    Held,
    /// Waiting for `waiting` releases, then settling as `then` says.
    Releasing {
        waiting: usize,
        confirmed: bool,
        error: Option<Error>,
        then: Then,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Then {
    Released,
    NotAcquired,
    Failed(Error),
    /// A loss while held: no command waits for an answer.
    Lost,
    /// A loss while held, and a `release` asked meanwhile: it gets the loss.
    LostAsked,
}

/// The plan of one lock set of `members` members.
#[derive(Debug)]
pub struct Plan {
    members: usize,
    phase: Phase,
    /// The loss of the set, told once by the next `release`.
    lost: Option<Error>,
}

fn invalid(what: &str) -> Error {
    Error::InvalidArgument(what.into())
}

impl Plan {
    /// A plan for `members` members (at least one), nothing held.
    pub fn new(members: usize) -> Plan {
        Plan {
            members: members.max(1),
            phase: Phase::Idle,
            lost: None,
        }
    }

    /// Whether every member is held.
    pub fn is_held(&self) -> bool {
        self.phase == Phase::Held
    }

    /// How many members, from the first, hold a grant the set counts on:
    /// any of them found not held was lost ([`Plan::member_lost`]).
    pub fn counted_on(&self) -> usize {
        match self.phase {
            Phase::Held => self.members,
            Phase::Taking { member, .. } => member,
            _ => 0,
        }
    }

    /// Whether a command (or the release after a loss) is under way.
    pub fn is_busy(&self) -> bool {
        matches!(self.phase, Phase::Taking { .. } | Phase::Releasing { .. })
    }

    /// `acquire`, under a deadline `timeout_s` from `now`.
    pub fn acquire(&mut self, now: Instant, timeout_s: u64) -> Result<Progress, Error> {
        match self.phase {
            Phase::Idle => {}
            Phase::Held => return Err(invalid("the lock set is held already")),
            _ => return Err(invalid("another command of this lock set is under way")),
        }
        self.lost = None;
        self.phase = Phase::Taking {
            member: 0,
            deadline: now.saturating_add(Duration::from_secs(timeout_s)),
            lost: None,
        };
        Ok(Progress::Orders(vec![Order::Enqueue(0)]))
    }

    /// `release`: every member. Nothing held: `Released(false)` at once,
    /// or the loss of the set, once.
    pub fn release(&mut self) -> Result<Progress, Error> {
        match self.phase {
            Phase::Held => Ok(self.release_all(Then::Released)),
            Phase::Idle => match self.lost.take() {
                Some(lost) => Err(lost),
                None => Ok(Progress::Settled(Some(Settled::Released(false)))),
            },
            // The release after a loss runs: this one is answered with the
            // loss when it ends.
            Phase::Releasing { ref mut then, .. } if *then == Then::Lost => {
                *then = Then::LostAsked;
                Ok(Progress::Orders(Vec::new()))
            }
            _ => Err(invalid("another command of this lock set is under way")),
        }
    }

    fn release_all(&mut self, then: Then) -> Progress {
        self.phase = Phase::Releasing {
            waiting: self.members,
            confirmed: true,
            error: None,
            then,
        };
        Progress::Orders((0..self.members).map(Order::Release).collect())
    }

    /// Member `member`'s command came to `outcome` at `now`.
    pub fn member_done(
        &mut self,
        member: usize,
        outcome: Result<Outcome, Error>,
        now: Instant,
    ) -> Progress {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Taking {
                member: taking,
                deadline,
                lost,
            } if taking == member => self.taken(member, deadline, lost, outcome, now),
            Phase::Releasing {
                waiting,
                confirmed,
                error,
                then,
            } => self.released(waiting, confirmed, error, then, outcome),
            // Nothing of this member's was awaited: as it was.
            other => {
                self.phase = other;
                Progress::Orders(Vec::new())
            }
        }
    }

    fn taken(
        &mut self,
        member: usize,
        deadline: Instant,
        lost: Option<Error>,
        outcome: Result<Outcome, Error>,
        now: Instant,
    ) -> Progress {
        if let Some(lost) = lost {
            return self.release_all(Then::Failed(lost));
        }
        match outcome {
            Ok(Outcome::Enqueued(Enqueued::Acquired(_)) | Outcome::Acquired(Some(_))) => {
                let next = member + 1;
                if next == self.members {
                    self.phase = Phase::Held;
                    return Progress::Settled(Some(Settled::Held));
                }
                self.phase = Phase::Taking {
                    member: next,
                    deadline,
                    lost: None,
                };
                Progress::Orders(vec![Order::Enqueue(next)])
            }
            Ok(Outcome::Enqueued(Enqueued::Queued)) => {
                self.phase = Phase::Taking {
                    member,
                    deadline,
                    lost: None,
                };
                Progress::Orders(vec![Order::Wait(member, seconds_left(deadline, now))])
            }
            Ok(Outcome::Acquired(None)) => self.release_all(Then::NotAcquired),
            Ok(_) => self.release_all(Then::Failed(Error::Protocol(
                "internal: a lock set member answered with another command's outcome".into(),
            ))),
            Err(e) => self.release_all(Then::Failed(e)),
        }
    }

    fn released(
        &mut self,
        waiting: usize,
        confirmed: bool,
        error: Option<Error>,
        then: Then,
        outcome: Result<Outcome, Error>,
    ) -> Progress {
        let confirmed = confirmed && outcome == Ok(Outcome::Released(true));
        let error = error.or(outcome.err());
        let waiting = waiting.saturating_sub(1);
        if waiting > 0 {
            self.phase = Phase::Releasing {
                waiting,
                confirmed,
                error,
                then,
            };
            return Progress::Orders(Vec::new());
        }
        self.phase = Phase::Idle;
        Progress::Settled(match then {
            Then::Released => Some(match error {
                Some(e) => Settled::Failed(e),
                None => Settled::Released(confirmed),
            }),
            Then::NotAcquired => Some(Settled::NotAcquired),
            Then::Failed(e) => Some(Settled::Failed(e)),
            Then::Lost => {
                // The lost member's own release said why, in its words.
                if let Some(e) = error {
                    self.lost = Some(e);
                }
                None
            }
            Then::LostAsked => {
                let lost = error.or(self.lost.take());
                Some(Settled::Failed(lost.unwrap_or_else(|| {
                    Error::LockLost(crate::protocol::Loss::new(
                        crate::protocol::LossCause::ConnectionLost,
                        "",
                    ))
                })))
            }
        })
    }

    /// Member `member` lost its lease (`why`): while held, the set is
    /// lost and the others are released; while taking, the set gives up
    /// once the member being taken answers (its connection is closed).
    pub fn member_lost(&mut self, member: usize, why: Error) -> Progress {
        match &mut self.phase {
            Phase::Held => {
                self.lost = Some(why);
                self.release_all(Then::Lost)
            }
            Phase::Taking {
                member: taking,
                lost,
                ..
            } if member < *taking && lost.is_none() => {
                *lost = Some(why);
                Progress::Orders(vec![Order::Close(*taking)])
            }
            _ => Progress::Orders(Vec::new()),
        }
    }
}

/// The whole seconds left until `deadline`, rounded up (the server counts
/// whole seconds; rounding down would make a member's wait a try-lock
/// whenever the set's budget is not a whole number of seconds any more).
fn seconds_left(deadline: Instant, now: Instant) -> u64 {
    let left = deadline.saturating_duration_since(now);
    left.as_secs() + u64::from(left.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests;
