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

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::{mpsc, oneshot};
use wasmtime::component::Resource;
use wasmtime::Store;

use crate::callbacks::Callbacks;
use crate::instance::{Instance, Request};
use crate::lead::Lead;
use crate::raw_async::{self, Client, ClientPre};
use crate::runtime::State;
use crate::view::locked;
use crate::{Counters, Error, Kind, LeaseLost, Loss, LossCause};

mod commands;
mod objects;

use objects::{Entry, What};

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

/// The driver task's state: the instance, and what it knows of each object.
struct Driver {
    store: Store<State>,
    client: Client,
    objects: HashMap<u64, Entry>,
    /// Started tickets and their objects.
    tickets: HashMap<u64, u64>,
    next_object: u64,
    callbacks: Callbacks,
    /// The instance's totals as of the last turn that I/O woke, for
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
        callbacks: Callbacks::default(),
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
            // Woken by a request alone, the instance has nothing to report
            // (events waiting would have made a pollable ready): the turn
            // skips `poll-events` and `totals`, two calls and a read of
            // every socket with a reply due, and starts what was asked.
            let woken_by_io = tokio::select! {
                ready = table.poll(borrowed), if !pollables.is_empty() => { ready?; true }
                request = inbox.recv(), if open => {
                    match request {
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
                    }
                    false
                }
            };
            for pollable in pollables {
                HostPollable::drop(table, pollable)?;
            }
            if !woken_by_io {
                continue;
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
