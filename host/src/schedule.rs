//! The renewal schedule of one [`Runtime`](crate::Runtime): each object's
//! next deadline (`next-deadline`, on the host's clock by construction:
//! see `clock`) in a heap, for the renewal thread (`driver`). It does no
//! I/O and reads no clock (`now` is an argument).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// What one renewal pass over an object found.
pub(crate) enum Renewed {
    /// A call holds the object; it reschedules it when it ends.
    Busy,
    /// Driven; this is its next deadline (`None`: nothing to renew).
    Next(Option<u64>),
    /// The instance trapped or the object is gone: it is no longer renewed.
    Gone,
}

/// What the renewer does next.
pub(crate) enum Next<O> {
    /// Nothing is due: wait to be woken.
    Idle,
    /// Sleep until this deadline (or until woken).
    At(u64),
    /// Drive this object now, then report with [`Schedule::after`].
    Due(u64, O),
}

/// The objects (as handles `O`, weak ones in the renewer, so that a
/// dropped object is forgotten) and their deadlines.
pub(crate) struct Schedule<O> {
    /// (deadline, id); an entry whose deadline is no longer its object's is stale.
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    objects: HashMap<u64, Slot<O>>,
    next_id: u64,
}

struct Slot<O> {
    object: O,
    due: Option<u64>,
}

impl<O: Clone> Schedule<O> {
    pub(crate) fn new() -> Self {
        Schedule {
            heap: BinaryHeap::new(),
            objects: HashMap::new(),
            next_id: 0,
        }
    }

    /// Registers an object with nothing due yet; returns its id.
    pub(crate) fn add(&mut self, object: O) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.objects.insert(id, Slot { object, due: None });
        id
    }

    /// Sets an object's next deadline. `true` when it comes before
    /// everything else planned: the renewer must wake to see it.
    pub(crate) fn set(&mut self, id: u64, due: Option<u64>) -> bool {
        let Some(slot) = self.objects.get_mut(&id) else {
            return false;
        };
        if slot.due == due {
            return false;
        }
        slot.due = due;
        let Some(due) = due else { return false };
        let sooner = self
            .heap
            .peek()
            .is_none_or(|Reverse((first, _))| due < *first);
        self.heap.push(Reverse((due, id)));
        sooner
    }

    /// Forgets an object.
    pub(crate) fn remove(&mut self, id: u64) {
        self.objects.remove(&id);
    }

    /// How many objects are known.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.objects.len()
    }

    /// The next thing to do at `now`. A due object leaves the plan until
    /// [`after`](Self::after) (or a call) sets its deadline again.
    pub(crate) fn next(&mut self, now: u64) -> Next<O> {
        loop {
            let Some(&Reverse((due, id))) = self.heap.peek() else {
                return Next::Idle;
            };
            let live = self.objects.get(&id).is_some_and(|s| s.due == Some(due));
            if !live {
                self.heap.pop();
                continue;
            }
            if due > now {
                return Next::At(due);
            }
            self.heap.pop();
            if let Some(slot) = self.objects.get_mut(&id) {
                slot.due = None;
                return Next::Due(id, slot.object.clone());
            }
        }
    }

    /// What driving a due object found.
    pub(crate) fn after(&mut self, id: u64, renewed: Renewed) {
        match renewed {
            Renewed::Gone => self.remove(id),
            Renewed::Busy => {}
            Renewed::Next(next) => {
                // A call that ended meanwhile has set a fresher deadline.
                let fresh = self.objects.get(&id).is_some_and(|s| s.due.is_some());
                if !fresh {
                    self.set(id, next);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(schedule: &mut Schedule<u8>, now: u64) -> Option<u64> {
        match schedule.next(now) {
            Next::Due(id, _) => Some(id),
            _ => None,
        }
    }

    #[test]
    fn objects_come_due_in_deadline_order_and_only_when_due() {
        let mut schedule = Schedule::new();
        let ids: Vec<u64> = (0..3).map(|o| schedule.add(o)).collect();
        assert!(matches!(schedule.next(0), Next::Idle));
        assert!(schedule.set(ids[0], Some(30)), "the first deadline wakes");
        assert!(schedule.set(ids[1], Some(10)), "a sooner one wakes");
        assert!(!schedule.set(ids[2], Some(20)), "a later one does not");
        assert!(matches!(schedule.next(5), Next::At(10)));
        assert_eq!(due(&mut schedule, 25), Some(ids[1]));
        assert_eq!(due(&mut schedule, 25), Some(ids[2]));
        assert!(matches!(schedule.next(25), Next::At(30)));
        assert_eq!(due(&mut schedule, 30), Some(ids[0]));
        assert!(matches!(schedule.next(30), Next::Idle));
    }

    #[test]
    fn a_moved_deadline_leaves_its_old_entry_stale() {
        let mut schedule = Schedule::new();
        let id = schedule.add(0);
        schedule.set(id, Some(3_600));
        schedule.set(id, Some(10));
        assert_eq!(due(&mut schedule, 10), Some(id));
        assert!(
            matches!(schedule.next(u64::MAX), Next::Idle),
            "the old deadline is not driven"
        );
    }

    #[test]
    fn a_call_that_rescheduled_meanwhile_wins_over_the_pass() {
        let mut schedule = Schedule::new();
        let id = schedule.add(0);
        schedule.set(id, Some(1));
        assert_eq!(due(&mut schedule, 1), Some(id));
        schedule.set(id, Some(50)); // a call ended while it was driven
        schedule.after(id, Renewed::Next(Some(5)));
        assert!(matches!(schedule.next(1), Next::At(50)));
        // Busy leaves it to the call; Gone forgets it.
        assert_eq!(due(&mut schedule, 50), Some(id));
        schedule.after(id, Renewed::Busy);
        assert!(matches!(schedule.next(u64::MAX), Next::Idle));
        schedule.set(id, Some(60));
        schedule.after(id, Renewed::Gone);
        assert_eq!(schedule.len(), 0);
        assert!(matches!(schedule.next(u64::MAX), Next::Idle));
    }
}
