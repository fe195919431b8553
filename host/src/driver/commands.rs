//! What the driver does for its objects: their requests taken in, their
//! commands started one at a time in the order asked, and the instance's
//! events handed out (each completion to its caller, each loss to its
//! object and `on_lost`).

use std::collections::VecDeque;
use std::sync::Arc;

use wasmtime::component::ResourceAny;

use super::objects::{Entry, Queued, Res, Started, What};
use super::Driver;
use crate::error::flat;
use crate::instance::{Finished, Op, Opened, OpenedSet, Reply, Request};
use crate::raw_async::{
    self, Command, Completion, ConnectionCompletion, Event, Outcome, WitEnqueued,
};
use crate::view::Watch;
use crate::{Error, Grant, Kind, LeaseLost};

/// Calls a method of the `lock` or `semaphore` resource, as `$semaphore` says.
macro_rules! resource {
    ($driver:expr, $semaphore:expr, $method:ident($handle:expr $(, $arg:expr)*)) => {{
        let locks = $driver.client.dflockd_client_locks();
        if $semaphore {
            locks.semaphore().$method(&mut $driver.store, $handle $(, $arg)*).await
        } else {
            locks.lock().$method(&mut $driver.store, $handle $(, $arg)*).await
        }
    }};
}

/// A method every object of `locks` has (`start`, `close`), called on the
/// resource type `res` names.
macro_rules! any_lock {
    ($driver:expr, $res:expr, $method:ident($handle:expr $(, $arg:expr)*)) => {{
        let locks = $driver.client.dflockd_client_locks();
        match $res {
            Res::Lock => locks.lock().$method(&mut $driver.store, $handle $(, $arg)*).await,
            Res::Semaphore => {
                locks.semaphore().$method(&mut $driver.store, $handle $(, $arg)*).await
            }
            Res::Set => locks.lock_set().$method(&mut $driver.store, $handle $(, $arg)*).await,
        }
    }};
}

impl Driver {
    pub(super) async fn handle(&mut self, request: Request) -> wasmtime::Result<()> {
        match request {
            Request::Open {
                key,
                kind,
                settings,
                watch,
                reply,
            } => {
                let opened = self.open(key, kind, &settings, watch).await?;
                let _ = reply.send(opened);
            }
            Request::OpenSet {
                keys,
                settings,
                on_lost,
                reply,
            } => {
                let opened = self.open_set(keys, &settings, on_lost).await?;
                let _ = reply.send(opened);
            }
            Request::Create {
                server,
                settings,
                reply,
            } => {
                let conns = self.client.dflockd_client_connection().connection();
                let created = conns.call_create(&mut self.store, &server, &settings).await;
                let created = flat(created).map(|handle| self.add(handle, What::Connection));
                let _ = reply.send(created);
            }
            Request::Call {
                object,
                call,
                op,
                reply,
            } => {
                let Some(entry) = self.objects.get_mut(&object) else {
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(Error::Runtime("the object is gone".into())));
                    }
                    return Ok(());
                };
                entry.queue.push_back(Queued { call, op, reply });
                self.advance(object).await?;
            }
            Request::Cancel { object, call } => self.cancel(object, call).await?,
            Request::Drop { object, done } => {
                if let Some(entry) = self.objects.get_mut(&object) {
                    // What a lock holds is released first, as a blocking drop did.
                    if entry.watch().is_some() {
                        entry.queue.push_back(Queued {
                            call: 0,
                            op: Op::Start(Command::Release),
                            reply: None,
                        });
                    }
                    entry.dropping = Some(done);
                    self.advance(object).await?;
                }
            }
        }
        Ok(())
    }

    async fn open(
        &mut self,
        key: String,
        kind: Kind,
        settings: &[raw_async::Setting],
        watch: Arc<Watch>,
    ) -> wasmtime::Result<Result<Opened, Error>> {
        let locks = self.client.dflockd_client_locks();
        let (opened, semaphore) = match kind {
            Kind::Lock => (
                locks
                    .lock()
                    .call_open(&mut self.store, &key, settings)
                    .await,
                false,
            ),
            Kind::Semaphore { limit } => {
                let semaphores = locks.semaphore();
                (
                    semaphores
                        .call_open(&mut self.store, &key, limit.get(), settings)
                        .await,
                    true,
                )
            }
        };
        let handle = match flat(opened) {
            Ok(handle) => handle,
            Err(e) => return Ok(Err(e)),
        };
        let server_index = resource!(self, semaphore, call_server_index(handle))?;
        let object = self.add(handle, What::Key { kind, watch });
        Ok(Ok(Opened {
            object,
            server_index,
        }))
    }

    async fn open_set(
        &mut self,
        keys: Vec<String>,
        settings: &[raw_async::Setting],
        on_lost: Option<crate::builder::LostCallback>,
    ) -> wasmtime::Result<Result<OpenedSet, Error>> {
        let sets = self.client.dflockd_client_locks().lock_set();
        let opened = sets.call_open(&mut self.store, &keys, settings).await;
        let handle = match flat(opened) {
            Ok(handle) => handle,
            Err(e) => return Ok(Err(e)),
        };
        let keys = sets.call_keys(&mut self.store, handle).await?;
        let watch = Arc::new(Watch::new(keys.clone(), on_lost));
        let object = self.add(
            handle,
            What::Set {
                watch: watch.clone(),
            },
        );
        Ok(Ok(OpenedSet {
            object,
            keys,
            watch,
        }))
    }

    /// Registers a new object; its number.
    fn add(&mut self, handle: ResourceAny, what: What) -> u64 {
        self.next_object += 1;
        let entry = Entry {
            handle,
            what,
            current: None,
            queue: VecDeque::new(),
            dropping: None,
        };
        self.objects.insert(self.next_object, entry);
        self.next_object
    }

    /// `close` on the object: its connection goes without a release.
    async fn close(&mut self, object: u64) -> wasmtime::Result<()> {
        let Some(entry) = self.objects.get(&object) else {
            return Ok(());
        };
        let (handle, res) = (entry.handle, entry.res());
        if let What::Connection = entry.what {
            let conns = self.client.dflockd_client_connection().connection();
            return conns.call_close(&mut self.store, handle).await;
        }
        any_lock!(self, res, call_close(handle))
    }

    /// Starts the object's next queued command once none is started;
    /// drops the object when it is being dropped and nothing is left.
    async fn advance(&mut self, object: u64) -> wasmtime::Result<()> {
        loop {
            let Some(entry) = self.objects.get_mut(&object) else {
                return Ok(());
            };
            if entry.current.is_some() {
                return Ok(());
            }
            let Some(next) = entry.queue.pop_front() else {
                if let Some(done) = entry.dropping.take() {
                    let entry = self.objects.remove(&object).expect("just seen");
                    entry.handle.resource_drop_async(&mut self.store).await?;
                    if let Some(done) = done {
                        self.callbacks.then(done);
                    }
                }
                return Ok(());
            };
            let (handle, res) = (entry.handle, entry.res());
            let (started, settles) = match next.op {
                Op::Close => {
                    self.close(object).await?;
                    if let Some(watch) = self.objects.get(&object).and_then(Entry::watch) {
                        watch.set(None);
                    }
                    if let Some(reply) = next.reply {
                        let _ = reply.send(Ok(Finished::Closed));
                    }
                    continue;
                }
                Op::Start(command) => {
                    let started = any_lock!(self, res, call_start(handle, command))?;
                    (started, Some(command))
                }
                Op::Ask(command) => {
                    let conns = self.client.dflockd_client_connection().connection();
                    let started = conns.call_start(&mut self.store, handle, &command).await?;
                    (started, None)
                }
            };
            match started {
                Ok(ticket) => {
                    self.tickets.insert(ticket, object);
                    if let Some(entry) = self.objects.get_mut(&object) {
                        entry.current = Some(Started {
                            ticket,
                            call: next.call,
                            settles,
                            reply: next.reply,
                        });
                    }
                    return Ok(());
                }
                Err(refused) => {
                    let answer = Err(Error::from(refused));
                    if let Some(command) = settles {
                        self.settle(object, &command, &answer).await?;
                    }
                    if let Some(reply) = next.reply {
                        let _ = reply.send(answer);
                    }
                }
            }
        }
    }

    /// A caller gave up: forgets its queued command, or closes the
    /// object's connection under its started one.
    async fn cancel(&mut self, object: u64, call: u64) -> wasmtime::Result<()> {
        let Some(entry) = self.objects.get_mut(&object) else {
            return Ok(());
        };
        entry.queue.retain(|queued| queued.call != call);
        let started = entry.current.as_mut().filter(|s| s.call == call);
        if let Some(started) = started {
            started.reply = None;
            // Reported as a completion at the next poll.
            self.close(object).await?;
        }
        Ok(())
    }

    pub(super) async fn event(&mut self, event: Event) -> wasmtime::Result<()> {
        match event {
            Event::Done(Completion { ticket, outcome }) => {
                let reply = outcome.map(Finished::Outcome).map_err(Error::from);
                self.completed(ticket, reply).await?;
            }
            Event::Answered(ConnectionCompletion { ticket, answer }) => {
                let reply = answer.map(Finished::Answer).map_err(Error::from);
                self.completed(ticket, reply).await?;
            }
            Event::Lost(lost) => self.lost(raw_async::lease_lost(lost)),
        }
        Ok(())
    }

    /// The started command `ticket` finished: what it leaves held is
    /// recorded, its caller answered, its object's next command started.
    async fn completed(&mut self, ticket: u64, reply: Reply) -> wasmtime::Result<()> {
        let Some(object) = self.tickets.remove(&ticket) else {
            return Ok(());
        };
        let started = self.objects.get_mut(&object).and_then(|e| e.current.take());
        let Some(started) = started.filter(|s| s.ticket == ticket) else {
            return Ok(());
        };
        if let Some(command) = &started.settles {
            self.settle(object, command, &reply).await?;
        }
        if let Some(reply_to) = started.reply {
            let _ = reply_to.send(reply);
        }
        self.advance(object).await
    }

    /// Records what a finished (or refused) command leaves held.
    async fn settle(
        &mut self,
        object: u64,
        command: &Command,
        reply: &Reply,
    ) -> wasmtime::Result<()> {
        if let Some(Entry {
            handle,
            what: What::Set { watch },
            ..
        }) = self.objects.get(&object)
        {
            // A set's outcome names its first grant; the set has them all.
            let (handle, watch) = (*handle, watch.clone());
            let mut grants = Vec::new();
            if let Ok(Finished::Outcome(Outcome::Acquired(Some(_)))) = reply {
                let sets = self.client.dflockd_client_locks().lock_set();
                grants = sets.call_grants(&mut self.store, handle).await?;
            }
            watch.set_all(grants.into_iter().map(raw_async::grant).collect());
            return Ok(());
        }
        let held = match (command, reply) {
            (_, Ok(Finished::Outcome(Outcome::Acquired(grant)))) => {
                grant.clone().map(raw_async::grant)
            }
            (_, Ok(Finished::Outcome(Outcome::Enqueued(WitEnqueued::Acquired(grant))))) => {
                Some(raw_async::grant(grant.clone()))
            }
            (Command::Renew, Ok(_)) => return Ok(()),
            // A renewal refused may or may not have lost the lease: ask.
            (Command::Renew, Err(_)) => self.asked_grant(object).await?,
            _ => None,
        };
        if let Some(watch) = self.objects.get(&object).and_then(Entry::watch) {
            watch.set(held);
        }
        Ok(())
    }

    async fn asked_grant(&mut self, object: u64) -> wasmtime::Result<Option<Grant>> {
        let Some(entry) = self.objects.get(&object) else {
            return Ok(None);
        };
        let (handle, semaphore) = (entry.handle, entry.is_semaphore());
        let grant = resource!(self, semaphore, call_grant(handle))?;
        Ok(grant.map(raw_async::grant))
    }

    /// A lease lost: to its object's view, `tracing` and `on_lost` (on a
    /// thread of its own, so that a callback may call its object).
    pub(super) fn lost(&mut self, lost: LeaseLost) {
        tracing::warn!(key = %lost.key, fence = lost.fence, reason = %lost.reason, "lease lost");
        let owner = self.objects.values().find_map(|e| match &e.what {
            What::Key { watch, .. } | What::Set { watch } if watch.lose(&lost) => Some(watch),
            _ => None,
        });
        if let Some(callback) = owner.and_then(|watch| watch.on_lost.clone()) {
            self.callbacks.lost(callback, lost);
        }
    }
}
