//! What happened in the instance, for `driver.poll-events`: the outcomes
//! of commands started with a ticket (by a key client or a connection)
//! and the leases lost, in one queue, oldest first.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use crate::protocol::{Answer, Error};
use crate::session::{LeaseLost, Outcome};

/// Losses kept for the driver to report; older ones are dropped first.
const MAX_UNREPORTED_LOSSES: usize = 1024;

/// What happened in the instance, for the driver to report.
pub enum Event {
    /// A command a key client started with a ticket finished.
    Done {
        /// The ticket it was started with.
        ticket: u64,
        /// What the blocking call would have returned.
        outcome: Result<Outcome, Error>,
    },
    /// A command a connection started with a ticket finished.
    Answered {
        /// The ticket it was started with.
        ticket: u64,
        /// What the blocking call would have returned.
        answer: Result<Answer, Error>,
    },
    /// A lease was lost.
    Lost(LeaseLost),
}

thread_local! {
    /// Oldest first. Losses past [`MAX_UNREPORTED_LOSSES`] drop the oldest
    /// loss; completions are never dropped (one per started command).
    static EVENTS: RefCell<VecDeque<Event>> = const { RefCell::new(VecDeque::new()) };
    /// The next command ticket: unique in the instance.
    static NEXT_TICKET: Cell<u64> = const { Cell::new(1) };
}

/// A ticket no command of the instance had.
pub fn new_ticket() -> u64 {
    let ticket = NEXT_TICKET.get();
    NEXT_TICKET.set(ticket.wrapping_add(1));
    ticket
}

/// Queues `event`; a loss past the cap drops the oldest loss.
pub fn report(event: Event) {
    EVENTS.with_borrow_mut(|events| {
        if matches!(event, Event::Lost(_)) {
            let losses = events.iter().filter(|e| matches!(e, Event::Lost(_)));
            if losses.count() == MAX_UNREPORTED_LOSSES {
                if let Some(oldest) = events.iter().position(|e| matches!(e, Event::Lost(_))) {
                    events.remove(oldest);
                }
            }
        }
        events.push_back(event);
    });
}

/// The losses found since the last call; completions stay for [`take_all`].
pub fn take_losses() -> Vec<LeaseLost> {
    EVENTS.with_borrow_mut(|events| {
        let mut losses = Vec::new();
        let mut kept = VecDeque::new();
        for event in events.drain(..) {
            match event {
                Event::Lost(lost) => losses.push(lost),
                done => kept.push_back(done),
            }
        }
        *events = kept;
        losses
    })
}

/// Everything that happened since the last call, oldest first.
pub fn take_all() -> Vec<Event> {
    EVENTS.with_borrow_mut(|events| events.drain(..).collect())
}

/// Whether events wait to be taken.
pub fn waiting() -> bool {
    EVENTS.with_borrow(|events| !events.is_empty())
}
