//! The exported `lock-set`: the core's [`Plan`] carried out on one key
//! client per member. The set is the reactor's work for all its members:
//! it drives them (their renewals included), takes their outcomes, and
//! watches the ones the plan counts on for a loss, in one pass.

use std::cell::RefCell;
use std::rc::Rc;

use wasip2::io::poll::Pollable;

use super::api::locks::GuestLockSet;
use super::api::types::{Command, Error, Grant as WitGrant, Setting};
use super::clock;
use super::events::{self, Event};
use super::key_client::KeyClient;
use super::reactor::{self, Background};
use crate::lock_set::{Order, Plan, Progress, Settled};
use crate::protocol::{self as p};
use crate::session::Outcome;
use crate::settings::Settings;
use crate::time::Instant;

/// The members and the plan over them.
struct SetClient {
    /// In the order they are taken: by server index, then key.
    members: Vec<KeyClient>,
    /// Whether an order of the plan's runs on each member.
    running: Vec<bool>,
    plan: Plan,
    /// The seconds one acquire of the whole set may take.
    timeout_s: u64,
    /// The started command's ticket, or `None` for a blocking call.
    ticket: Option<u64>,
    /// What a blocking call's command came to.
    settled: Option<Result<Outcome, p::Error>>,
    slot: usize,
}

impl SetClient {
    fn start(&mut self, now: Instant, acquire: bool) -> Result<(), p::Error> {
        let progress = if acquire {
            self.plan.acquire(now, self.timeout_s)?
        } else {
            self.plan.release()?
        };
        self.follow(progress, now);
        self.take_outcomes(now);
        Ok(())
    }

    /// Carries out what the plan says, feeding back what ends at once.
    fn follow(&mut self, progress: Progress, now: Instant) {
        let mut next = vec![progress];
        while let Some(progress) = next.pop() {
            match progress {
                Progress::Settled(settled) => self.settle(settled),
                Progress::Orders(orders) => {
                    for order in orders {
                        if let Some(refused) = self.carry_out(order) {
                            let (member, error) = refused;
                            next.push(self.plan.member_done(member, Err(error), now));
                        }
                    }
                }
            }
        }
    }

    /// Starts one order; the member and error when it is refused at once.
    fn carry_out(&mut self, order: Order) -> Option<(usize, p::Error)> {
        let (member, started) = match order {
            Order::Enqueue(i) => (i, self.member(i)?.begin_quiet(|s, now| s.enqueue(now))),
            Order::Wait(i, timeout_s) => (
                i,
                self.member(i)?
                    .begin_quiet(|s, now| s.wait(now, Some(timeout_s))),
            ),
            Order::Release(i) => (i, self.member(i)?.begin_quiet(|s, now| s.release(now))),
            Order::Close(i) => {
                // Its command in flight is dropped with the connection:
                // its outcome is this.
                self.member(i)?.close();
                self.running[i] = false;
                let why = "closed: a member taken before was lost";
                return Some((i, p::Error::Connection(why.into())));
            }
        };
        match started {
            Ok(()) => {
                self.running[member] = true;
                None
            }
            Err(e) => Some((member, e)),
        }
    }

    fn member(&mut self, i: usize) -> Option<&mut KeyClient> {
        self.members.get_mut(i)
    }

    /// The command is over: its completion, or a blocking call's answer.
    fn settle(&mut self, settled: Option<Settled>) {
        let Some(settled) = settled else {
            return; // the release after a loss: no command waited
        };
        let outcome = match settled {
            Settled::Held => Ok(Outcome::Acquired(self.first_grant())),
            Settled::NotAcquired => Ok(Outcome::Acquired(None)),
            Settled::Released(confirmed) => Ok(Outcome::Released(confirmed)),
            Settled::Failed(e) => Err(e),
        };
        match self.ticket.take() {
            Some(ticket) => events::report(Event::Done { ticket, outcome }),
            None => self.settled = Some(outcome),
        }
    }

    fn first_grant(&self) -> Option<crate::protocol::Grant> {
        self.members.first().and_then(|m| m.grant().cloned())
    }

    /// One pass: every member driven, each outcome and loss handed to the plan.
    fn pass(&mut self, now: Instant) {
        for member in &mut self.members {
            Background::drive(member, now);
        }
        self.take_outcomes(now);
        for i in 0..self.plan.counted_on().min(self.members.len()) {
            if !self.running[i] && !self.members[i].is_held() {
                let why = p::Error::LockLost(p::Loss::new(p::LossCause::ConnectionLost, ""));
                let progress = self.plan.member_lost(i, why);
                self.follow(progress, now);
            }
        }
    }

    /// Hands every member's outcome to the plan, until none is left: an
    /// order may end at once (a release of a member that holds nothing),
    /// and an outcome left for a later pass would wait for nothing that
    /// wakes the instance.
    fn take_outcomes(&mut self, now: Instant) {
        let mut progressed = true;
        while progressed {
            progressed = false;
            for i in 0..self.members.len() {
                if !self.running[i] {
                    continue;
                }
                if let Some(outcome) = self.members[i].take_outcome() {
                    self.running[i] = false;
                    progressed = true;
                    let progress = self.plan.member_done(i, outcome, now);
                    self.follow(progress, now);
                }
            }
        }
    }

    /// Runs one command to its end, blocking under the reactor.
    fn run(&mut self, acquire: bool) -> Result<Outcome, p::Error> {
        self.start(clock::now(), acquire)?;
        loop {
            if let Some(settled) = self.settled.take() {
                return settled;
            }
            let deadline = Background::deadline(self).unwrap_or_else(|| clock::after_ms(1_000));
            reactor::wait_for(|out| self.wakeups(out), deadline);
            self.pass(clock::now());
        }
    }
}

impl Background for SetClient {
    fn wakeups(&self, out: &mut Vec<Pollable>) {
        for member in &self.members {
            member.wakeups(out);
        }
    }

    fn deadline(&self) -> Option<Instant> {
        let each = self.members.iter().map(Background::deadline);
        each.fold(None, reactor::sooner)
    }

    fn awaits_io(&self) -> bool {
        self.members.iter().any(Background::awaits_io)
    }

    fn active(&self) -> bool {
        self.ticket.is_some() || self.plan.is_busy() || self.members.iter().any(Background::active)
    }

    fn drive(&mut self, now: Instant) {
        self.pass(now);
    }
}

impl Drop for SetClient {
    /// Each member releases what it holds as it drops (see `KeyClient`);
    /// a started command ends here.
    fn drop(&mut self) {
        reactor::forget(self.slot);
        if let Some(ticket) = self.ticket.take() {
            let outcome = Err(p::Error::Connection("the object was dropped".into()));
            events::report(Event::Done { ticket, outcome });
        }
    }
}

/// The exported resource.
pub struct LockSet(Rc<RefCell<SetClient>>);

impl LockSet {
    /// Borrows the set for one call; the reactor re-reads it afterwards.
    fn with<T>(&self, f: impl FnOnce(&mut SetClient) -> T) -> T {
        let value = f(&mut self.0.borrow_mut());
        let slot = self.0.borrow().slot;
        reactor::touch(&self.0, slot);
        value
    }
}

fn unexpected() -> p::Error {
    p::Error::Protocol("internal: the lock set answered with another command's outcome".into())
}

impl GuestLockSet for LockSet {
    fn open(
        keys: Vec<String>,
        settings: Vec<Setting>,
    ) -> Result<super::api::locks::LockSet, Error> {
        if keys.is_empty() {
            return Err(p::Error::InvalidArgument("a lock set needs a key".into()).into());
        }
        let raw = super::convert::raw_options(settings);
        let mut all = Vec::with_capacity(keys.len());
        for key in &keys {
            all.push(Settings::new(key, None, raw.clone())?);
        }
        // By server, then key: two sets that share keys take them in the
        // same order, so neither waits for the other in a cycle.
        all.sort_unstable_by(|a, b| (a.server_index, &a.key).cmp(&(b.server_index, &b.key)));
        if all.windows(2).any(|pair| pair[0].key == pair[1].key) {
            return Err(
                p::Error::InvalidArgument("a key appears twice in the lock set".into()).into(),
            );
        }
        let timeout_s = all.first().map_or(0, |s| s.acquire_timeout_s);
        let members = all
            .into_iter()
            .map(KeyClient::member)
            .collect::<Result<Vec<_>, _>>()?;
        let client = Rc::new(RefCell::new(SetClient {
            running: vec![false; members.len()],
            plan: Plan::new(members.len()),
            members,
            timeout_s,
            ticket: None,
            settled: None,
            slot: usize::MAX,
        }));
        let slot = reactor::register(&client);
        client.borrow_mut().slot = slot;
        Ok(super::api::locks::LockSet::new(LockSet(client)))
    }

    fn acquire(&self) -> Result<Option<Vec<WitGrant>>, Error> {
        match self.with(|set| set.run(true))? {
            Outcome::Acquired(Some(_)) => Ok(Some(self.grants())),
            Outcome::Acquired(None) => Ok(None),
            _ => Err(unexpected().into()),
        }
    }

    fn release(&self) -> Result<bool, Error> {
        match self.with(|set| set.run(false))? {
            Outcome::Released(confirmed) => Ok(confirmed),
            _ => Err(unexpected().into()),
        }
    }

    fn start(&self, command: Command) -> Result<u64, Error> {
        let acquire = match command {
            Command::Acquire => true,
            Command::Release => false,
            _ => {
                let why = "a lock set takes only acquire and release";
                return Err(p::Error::InvalidArgument(why.into()).into());
            }
        };
        let ticket = events::new_ticket();
        self.with(|set| {
            if set.ticket.is_some() {
                let why = "another command of this lock set is under way";
                return Err(p::Error::InvalidArgument(why.into()));
            }
            set.ticket = Some(ticket);
            let started = set.start(clock::now(), acquire);
            if started.is_err() {
                set.ticket = None;
            }
            started
        })?;
        Ok(ticket)
    }

    fn close(&self) {
        self.with(|set| {
            for member in &mut set.members {
                member.close();
            }
            // Nothing runs any more: the plan starts over, and a started
            // command ends here.
            set.running.fill(false);
            set.plan = Plan::new(set.members.len());
            if let Some(ticket) = set.ticket.take() {
                let outcome = Err(p::Error::Connection("closed by the caller".into()));
                events::report(Event::Done { ticket, outcome });
            }
        });
    }

    fn keys(&self) -> Vec<String> {
        let set = self.0.borrow();
        set.members
            .iter()
            .map(|m| m.settings().key.clone())
            .collect()
    }

    fn grants(&self) -> Vec<WitGrant> {
        self.with(|set| {
            set.pass(clock::now());
            if !set.plan.is_held() {
                return Vec::new();
            }
            set.members
                .iter()
                .filter_map(|m| m.grant().cloned())
                .map(Into::into)
                .collect()
        })
    }

    fn is_held(&self) -> bool {
        self.with(|set| {
            set.pass(clock::now());
            set.plan.is_held()
        })
    }
}
