//! The driver: the one task that owns a runtime's component instance
//! (the quinn `ConnectionDriver` shape). It waits, outside any call, on
//! the instance's pollables (`driver.pollables`: the sockets with a reply
//! due, connections being opened, the earliest deadline) and on its
//! inbox together; starts what objects (locks, semaphores, low-level
//! connections) ask (`start`), one command of an object at a time in the
//! order asked; and hands out what
//! `driver.poll-events` reports: each completion to its caller, each lost
//! lease to its object and `on_lost`. Renewals happen inside those polls:
//! nothing else renews.
//!
//! The driver is a task on a current-thread tokio runtime of the
//! instance's own: a blocking caller runs it on its own thread while it
//! waits, the background thread otherwise (see `lead.rs`); or, for async
//! objects built on a multi-thread tokio runtime, a task on that runtime
//! ([`start_here`]).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::{mpsc, oneshot};
use wasmtime::component::{Resource, ResourceAny};
use wasmtime::Store;

use crate::builder::LostCallback;
use crate::error::flat;
use crate::instance::{Finished, Instance, Op, Opened, OpenedSet, Reply, Request};
use crate::lead::Lead;
use crate::raw_async::{
    self, Client, ClientPre, Command, Completion, ConnectionCompletion, Event, Outcome, WitEnqueued,
};
use crate::runtime::State;
use crate::view::{locked, Watch};
use crate::{Counters, Error, Grant, Kind, LeaseLost, Loss, LossCause};

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

/// Which resource type of `locks` an object is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Res {
    Lock,
    Semaphore,
    Set,
}

/// Starts the driver task with a fresh instance in `store`, on a runtime
/// of its own, and the background thread that runs it when no caller does
/// (see `lead.rs`); returns once the instance is made (or failed to be).
pub(crate) fn start(pre: ClientPre<State>, store: Store<State>) -> Result<Instance, Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(format!("the instance's runtime: {e}")))?;
    let lead = Lead::new(rt);
    let (made, ready) = oneshot::channel();
    let (instance, driver) = prepare(pre, store, made, Some(lead.clone()));
    let ended = lead.clone();
    lead.spawn(async move {
        driver.await;
        ended.finished();
    });
    let background = lead.clone();
    std::thread::Builder::new()
        .name("dflockd-driver".into())
        .spawn(move || background.background())
        .map_err(|e| Error::Runtime(format!("starting the driver thread: {e}")))?;
    futures_lite::future::block_on(ready)
        .map_err(|_| Error::Runtime("the driver ended at once".into()))??;
    Ok(instance)
}

/// Starts the driver task with a fresh instance in `store` on the
/// multi-thread tokio runtime this is called on, whose workers then run
/// it: an async call's answer wakes its task on the same workers, with no
/// hand-off to a thread of the instance's (the runtime's workers always
/// run, so renewals do too). If that runtime shuts down, the driver ends
/// with it: its objects' calls fail and their held leases are reported lost.
pub(crate) async fn start_here(
    pre: ClientPre<State>,
    store: Store<State>,
) -> Result<Instance, Error> {
    let (made, ready) = oneshot::channel();
    let (instance, driver) = prepare(pre, store, made, None);
    tokio::spawn(driver);
    ready
        .await
        .map_err(|_| Error::Runtime("the driver ended at once".into()))??;
    Ok(instance)
}

/// The instance's sending side and its driver task, outside tokio's
/// cooperative budget: one turn polls every pending socket of the
/// instance, and past the budget (128) tokio answers `Pending` for ready
/// ones, so the pollables beyond it were never seen.
fn prepare(
    pre: ClientPre<State>,
    store: Store<State>,
    made: oneshot::Sender<Result<(), Error>>,
    lead: Option<Arc<Lead>>,
) -> (Instance, impl Future<Output = ()> + Send + 'static) {
    let (requests, inbox) = mpsc::unbounded_channel();
    let stopped = Arc::new(OnceLock::new());
    let totals = Arc::new(Mutex::new(Counters::ZERO));
    let shares_workers = lead.is_none();
    let instance = Instance::new(requests, stopped.clone(), totals.clone(), lead);
    let driver = tokio::task::unconstrained(async move {
        let mut ended = Ended {
            stopped,
            finished: false,
        };
        let links = Links {
            made,
            totals,
            shares_workers,
        };
        run(pre, store, inbox, links, &ended.stopped).await;
        ended.finished = true;
    });
    (instance, driver)
}

/// Says why the driver stopped when its task is dropped unfinished.
struct Ended {
    stopped: Arc<OnceLock<String>>,
    finished: bool,
}

impl Drop for Ended {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let why = if std::thread::panicking() {
            "its driver panicked (a tokio runtime without IO and time enabled?)"
        } else {
            "the tokio runtime it ran on shut down"
        };
        let _ = self.stopped.set(why.into());
    }
}

/// One object as the driver knows it.
struct Entry {
    handle: ResourceAny,
    what: What,
    /// The started command, until its completion.
    current: Option<Started>,
    /// Asked, not started yet.
    queue: VecDeque<Queued>,
    /// Set by a drop request: dropped once nothing is queued or started.
    dropping: Option<Option<oneshot::Sender<()>>>,
}

/// What an object is.
enum What {
    /// A lock or semaphore: its kind, and what it holds (with its key).
    Key { kind: Kind, watch: Arc<Watch> },
    /// A lock set: what its members hold.
    Set { watch: Arc<Watch> },
    /// A low-level connection.
    Connection,
}

impl Entry {
    /// What a lock or semaphore holds; `None` for a connection.
    fn watch(&self) -> Option<&Arc<Watch>> {
        match &self.what {
            What::Key { watch, .. } | What::Set { watch } => Some(watch),
            What::Connection => None,
        }
    }

    fn is_semaphore(&self) -> bool {
        self.res() == Res::Semaphore
    }

    /// The resource type (a connection's is never asked).
    fn res(&self) -> Res {
        match self.what {
            What::Key {
                kind: Kind::Semaphore { .. },
                ..
            } => Res::Semaphore,
            What::Set { .. } => Res::Set,
            _ => Res::Lock,
        }
    }
}

struct Started {
    ticket: u64,
    call: u64,
    /// A lock's or semaphore's command, whose outcome changes what it holds.
    settles: Option<Command>,
    reply: Option<oneshot::Sender<Reply>>,
}

struct Queued {
    call: u64,
    op: Op,
    reply: Option<oneshot::Sender<Reply>>,
}

struct Driver {
    store: Store<State>,
    client: Client,
    objects: HashMap<u64, Entry>,
    /// Started tickets and their objects.
    tickets: HashMap<u64, u64>,
    next_object: u64,
    /// The `on_lost` callbacks' thread, made with the first loss.
    callbacks: Option<std_mpsc::Sender<Callback>>,
    /// The instance's totals as of the last turn, for
    /// [`Runtime::counters`](crate::Runtime::counters) (see [`Driver::publish`]).
    totals: Arc<Mutex<Counters>>,
    /// Runs on the workers of an application's runtime (`start_here`),
    /// beside the callers' tasks.
    shares_workers: bool,
}

/// What [`run`] answers to and shares with the instance's handles.
struct Links {
    /// Told once the instance is made (or failed to be).
    made: oneshot::Sender<Result<(), Error>>,
    totals: Arc<Mutex<Counters>>,
    shares_workers: bool,
}

/// Makes the instance, then serves until every sender is gone or the
/// instance traps (then `stopped` says why, before any caller can ask).
async fn run(
    pre: ClientPre<State>,
    mut store: Store<State>,
    mut inbox: mpsc::UnboundedReceiver<Request>,
    links: Links,
    stopped: &OnceLock<String>,
) {
    let Links {
        made,
        totals,
        shares_workers,
    } = links;
    let client = match pre.instantiate_async(&mut store).await {
        Ok(client) => client,
        Err(e) => {
            let _ = made.send(Err(crate::error::runtime(e)));
            return;
        }
    };
    let _ = made.send(Ok(()));
    let mut driver = Driver {
        store,
        client,
        objects: HashMap::new(),
        tickets: HashMap::new(),
        next_object: 0,
        callbacks: None,
        totals,
        shares_workers,
    };
    if let Err(e) = driver.serve(&mut inbox).await {
        tracing::error!(error = %e, "the component trapped; its objects are gone");
        let _ = stopped.set(format!("{e:?}"));
    }
}

impl Driver {
    /// The loop: what arrived, then wait on the instance and the inbox
    /// together, then what the instance reports.
    async fn serve(
        &mut self,
        inbox: &mut mpsc::UnboundedReceiver<Request>,
    ) -> wasmtime::Result<()> {
        use wasmtime_wasi::p2::bindings::io::poll::{Host as _, HostPollable};
        let mut open = true;
        let mut arrived = Vec::new();
        loop {
            while let Ok(request) = inbox.try_recv() {
                arrived.push(request);
            }
            for request in arrived.drain(..) {
                self.handle(request).await?;
            }
            let driver = self.client.dflockd_client_driver();
            let pollables = driver.call_pollables(&mut self.store).await?;
            // Every sender gone (the runtime and all its objects): stop once
            // the last drops' releases are answered.
            if !open && (self.objects.is_empty() || pollables.is_empty()) {
                return Ok(());
            }
            let table = self.store.data_mut().table();
            let borrowed: Vec<Resource<_>> = pollables
                .iter()
                .map(|p| Resource::new_borrow(p.rep()))
                .collect();
            tokio::select! {
                ready = table.poll(borrowed), if !pollables.is_empty() => { ready?; }
                request = inbox.recv(), if open => match request {
                    Some(request) => {
                        arrived.push(request);
                        if self.shares_workers {
                            // Lets the other ready tasks (callers) run and
                            // ask first, so that one turn starts them all:
                            // else each caller's request woke the driver
                            // straight away (tokio's LIFO slot), a turn each.
                            tokio::task::yield_now().await;
                        }
                    }
                    None => open = false,
                },
            }
            for pollable in pollables {
                HostPollable::drop(table, pollable)?;
            }
            let events = driver.call_poll_events(&mut self.store).await?;
            // Before the answers: what a call counted is there when it returns.
            self.publish().await?;
            for event in events {
                self.event(event).await?;
            }
        }
    }

    /// Publishes the instance's totals (so that reading them never waits
    /// for the driver, which may run on the reader's own thread) and traces
    /// the connects and renewals since the last turn: the instance's, so
    /// without a key (grants, losses and releases have theirs).
    async fn publish(&mut self) -> wasmtime::Result<()> {
        let driver = self.client.dflockd_client_driver();
        let now = raw_async::counters(driver.call_totals(&mut self.store).await?);
        let new = now.since(std::mem::replace(&mut *locked(&self.totals), now));
        if new.connects > 0 {
            tracing::debug!(connects = new.connects, "connected");
        }
        if new.renewals_confirmed > 0 {
            tracing::debug!(
                renewals = new.renewals_confirmed,
                latency_ns_max = new.renew_latency_ns_max,
                "renewed"
            );
        }
        Ok(())
    }

    async fn handle(&mut self, request: Request) -> wasmtime::Result<()> {
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
                        self.after_callbacks(done);
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

    async fn event(&mut self, event: Event) -> wasmtime::Result<()> {
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
    fn lost(&mut self, lost: LeaseLost) {
        tracing::warn!(key = %lost.key, fence = lost.fence, reason = %lost.reason, "lease lost");
        let owner = self.objects.values().find_map(|e| match &e.what {
            What::Key { watch, .. } | What::Set { watch } if watch.lose(&lost) => Some(watch),
            _ => None,
        });
        let Some(callback) = owner.and_then(|watch| watch.on_lost.clone()) else {
            return;
        };
        if self.callbacks.is_none() {
            self.callbacks = callback_thread();
        }
        if let Some(callbacks) = &self.callbacks {
            let _ = callbacks.send(Callback::Lost(callback, lost));
        }
    }

    /// Answers `done` once every callback asked so far has returned: a
    /// dropped object's drop returns after its last `on_lost`.
    fn after_callbacks(&self, done: oneshot::Sender<()>) {
        match &self.callbacks {
            Some(callbacks) => {
                if let Err(std_mpsc::SendError(Callback::Then(done))) =
                    callbacks.send(Callback::Then(done))
                {
                    let _ = done.send(());
                }
            }
            None => {
                let _ = done.send(());
            }
        }
    }
}

impl Drop for Driver {
    /// A driver that stops with objects still held (a trap, or its tokio
    /// runtime shut down) reports each held lease lost, once: its
    /// connection goes with the instance.
    fn drop(&mut self) {
        let held: Vec<LeaseLost> = self
            .objects
            .values()
            .filter_map(|entry| {
                let (kind, watch) = match &entry.what {
                    What::Key { kind, watch, .. } => (*kind, watch),
                    What::Set { watch } => (Kind::Lock, watch),
                    What::Connection => return None,
                };
                // A set is lost with its first member: one report per object.
                let (key, grant) = watch.held().into_iter().next()?;
                Some(LeaseLost {
                    key,
                    kind,
                    fence: grant.fence,
                    reason: Loss::new(
                        LossCause::ConnectionLost,
                        "the instance's driver stopped, and its connections with it",
                    ),
                })
            })
            .collect();
        for lost in held {
            self.lost(lost);
        }
    }
}

thread_local! {
    /// Set on the callbacks' thread.
    static ON_CALLBACK_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this is the thread that runs `on_lost` callbacks: an object
/// dropped in a callback must not wait for the callbacks to finish.
pub(crate) fn on_callback_thread() -> bool {
    ON_CALLBACK_THREAD.with(|on| on.get())
}

/// What the callbacks' thread does, in order.
enum Callback {
    /// Calls `on_lost`.
    Lost(LostCallback, LeaseLost),
    /// Answers: every callback before it has returned.
    Then(oneshot::Sender<()>),
}

/// The thread that runs `on_lost` callbacks, in the order of the losses.
fn callback_thread() -> Option<std_mpsc::Sender<Callback>> {
    let (send, jobs) = std_mpsc::channel::<Callback>();
    let spawned = std::thread::Builder::new()
        .name("dflockd-on-lost".into())
        .spawn(move || {
            ON_CALLBACK_THREAD.with(|on| on.set(true));
            for job in jobs {
                match job {
                    Callback::Lost(callback, lost) => callback(&lost),
                    Callback::Then(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
    match spawned {
        Ok(_) => Some(send),
        Err(e) => {
            tracing::error!(error = %e, "no thread for on_lost callbacks");
            None
        }
    }
}
