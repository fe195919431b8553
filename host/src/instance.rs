//! The way to one of a runtime's component instances: the locks,
//! semaphores and connections of a [`Runtime`](crate::Runtime) live in them, and one task
//! per instance (the driver, `driver/`) owns its store. An object sends its commands here
//! and awaits the answer; a blocking object blocks on the same future.
//!
//! A call's future that is dropped before its answer (an async call
//! cancelled) sends a cancel: a command not started yet is forgotten, a
//! started one ends with its object's connection (the server then drops
//! the waiter and releases what it held), as the issue-21 design asks:
//! cancellation is a command, not a dropped instance.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use tokio::sync::{mpsc, oneshot};

use crate::builder::LostCallback;
use crate::lead::Lead;
use crate::raw_async::{Command, ConnectionCommand, Outcome, Server, Setting, WitAnswer};
use crate::view::Watch;
use crate::{Counters, Error, Kind};

/// What an object asks of the driver.
pub(crate) enum Request {
    /// Opens the resource (validating key and settings; connects nothing).
    Open {
        key: String,
        kind: Kind,
        settings: Vec<Setting>,
        watch: Arc<Watch>,
        reply: oneshot::Sender<Result<Opened, Error>>,
    },
    /// Opens a lock set (validating keys and settings; connects nothing).
    OpenSet {
        keys: Vec<String>,
        settings: Vec<Setting>,
        on_lost: Option<LostCallback>,
        reply: oneshot::Sender<Result<OpenedSet, Error>>,
    },
    /// Creates a low-level connection (validating; connects nothing).
    Create {
        server: Server,
        settings: Vec<Setting>,
        reply: oneshot::Sender<Result<u64, Error>>,
    },
    /// A command, after the object's earlier ones (calls are sequential).
    Call {
        object: u64,
        call: u64,
        op: Op,
        reply: Option<oneshot::Sender<Reply>>,
    },
    /// The caller gave up on `call` (see the module docs).
    Cancel { object: u64, call: u64 },
    /// Releases what a lock or semaphore holds (after the queued
    /// commands), then drops the resource and its connection; `done` when
    /// gone.
    Drop {
        object: u64,
        done: Option<oneshot::Sender<()>>,
    },
}

/// An opened object: its number with the driver and the index of the
/// server its key routes to.
pub(crate) struct Opened {
    pub(crate) object: u64,
    pub(crate) server_index: u32,
}

/// An opened lock set: its number, its members' keys in the order they
/// are taken, and what it holds (made by the driver, which knows that order).
pub(crate) struct OpenedSet {
    pub(crate) object: u64,
    pub(crate) keys: Vec<String>,
    pub(crate) watch: Arc<Watch>,
}

/// A command of an object.
pub(crate) enum Op {
    /// A lock's or semaphore's `start(command)`; answered by its completion.
    Start(Command),
    /// A connection's `start(command)`; answered by its completion.
    Ask(ConnectionCommand),
    /// `close`: drops the connection without a release.
    Close,
}

/// What a call came to.
pub(crate) enum Finished {
    /// A lock's or semaphore's command.
    Outcome(Outcome),
    /// A connection's command.
    Answer(WitAnswer),
    /// `close`.
    Closed,
}

/// What a call comes to, or why it failed.
pub(crate) type Reply = Result<Finished, Error>;

/// Call numbers, unique in the process.
static NEXT_CALL: AtomicU64 = AtomicU64::new(1);

/// The sending side of a driver. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Instance {
    requests: mpsc::UnboundedSender<Request>,
    /// Why the driver stopped, if it did (a trap: the instance is unusable).
    stopped: Arc<OnceLock<String>>,
    /// The instance's totals as of the driver's last turn.
    totals: Arc<Mutex<Counters>>,
    /// Who runs the driver (see `lead.rs`); `None` when the tokio runtime
    /// it was started on does (`driver::start_here`).
    lead: Option<Arc<Lead>>,
}

/// A call waiting for its answer, so that someone runs the driver.
struct Waiting(Option<Arc<Lead>>);

impl Waiting {
    fn new(lead: &Option<Arc<Lead>>) -> Self {
        if let Some(lead) = lead {
            lead.waiting();
        }
        Waiting(lead.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(lead) = &self.0 {
            lead.answered();
        }
    }
}

impl Instance {
    pub(crate) fn new(
        requests: mpsc::UnboundedSender<Request>,
        stopped: Arc<OnceLock<String>>,
        totals: Arc<Mutex<Counters>>,
        lead: Option<Arc<Lead>>,
    ) -> Self {
        Instance {
            requests,
            stopped,
            totals,
            lead,
        }
    }

    /// Blocks on `future` (a call's), running the driver meanwhile when
    /// no other thread does (see `lead.rs`).
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        match &self.lead {
            Some(lead) => lead.block_on(future),
            None => futures_lite::future::block_on(future),
        }
    }

    /// Whether its driver still takes requests.
    pub(crate) fn is_running(&self) -> bool {
        !self.requests.is_closed()
    }

    /// The instance's totals as of its driver's last turn (never waits).
    pub(crate) fn counters(&self) -> Counters {
        *crate::view::locked(&self.totals)
    }

    /// The error of a request the driver can no longer answer.
    pub(crate) fn gone(&self) -> Error {
        let why = self.stopped.get().map_or("it stopped", String::as_str);
        Error::Runtime(format!("the component instance is gone: {why}"))
    }

    fn send(&self, request: Request) -> Result<(), Error> {
        self.requests.send(request).map_err(|_| self.gone())
    }

    /// Sends the request `make` builds around its reply channel, and
    /// waits (running the driver when no one else does) for the answer.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Request,
    ) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        self.send(make(reply))?;
        let _waiting = Waiting::new(&self.lead);
        answer.await.map_err(|_| self.gone())?
    }

    /// Opens a lock or semaphore in the instance.
    pub(crate) async fn open(
        &self,
        key: String,
        kind: Kind,
        settings: Vec<Setting>,
        watch: Arc<Watch>,
    ) -> Result<Opened, Error> {
        self.ask(|reply| Request::Open {
            key,
            kind,
            settings,
            watch,
            reply,
        })
        .await
    }

    /// Opens a lock set in the instance.
    pub(crate) async fn open_set(
        &self,
        keys: Vec<String>,
        settings: Vec<Setting>,
        on_lost: Option<LostCallback>,
    ) -> Result<OpenedSet, Error> {
        self.ask(|reply| Request::OpenSet {
            keys,
            settings,
            on_lost,
            reply,
        })
        .await
    }

    /// Creates a low-level connection in the instance; its object number.
    pub(crate) async fn create(
        &self,
        server: Server,
        settings: Vec<Setting>,
    ) -> Result<u64, Error> {
        self.ask(|reply| Request::Create {
            server,
            settings,
            reply,
        })
        .await
    }

    /// Runs `op` on `object`; dropping the future before it is answered
    /// cancels it.
    pub(crate) fn call(&self, object: u64, op: Op) -> Pending {
        let call = NEXT_CALL.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        let sent = self.send(Request::Call {
            object,
            call,
            op,
            reply: Some(reply),
        });
        Pending {
            instance: self.clone(),
            object,
            call,
            waiting: sent.is_ok().then(|| Waiting::new(&self.lead)),
            answer: sent.map(|()| answer),
        }
    }

    /// Runs `op` on `object` with nothing waiting for the answer (a
    /// guard's release on drop). Fails only when the driver is gone.
    pub(crate) fn send_only(&self, object: u64, op: Op) -> Result<(), Error> {
        let call = NEXT_CALL.fetch_add(1, Ordering::Relaxed);
        self.send(Request::Call {
            object,
            call,
            op,
            reply: None,
        })
    }

    /// Releases (a lock or semaphore) and drops `object`; the receiver
    /// answers once it is gone.
    pub(crate) fn drop_object(&self, object: u64) -> Option<oneshot::Receiver<()>> {
        let (done, gone) = oneshot::channel();
        let sent = self.send(Request::Drop {
            object,
            done: Some(done),
        });
        sent.ok().map(|()| gone)
    }
}

/// A call in progress: resolves to its [`Reply`]; cancels when dropped first.
pub(crate) struct Pending {
    instance: Instance,
    object: u64,
    call: u64,
    /// Until answered: while it is there, dropping the future cancels.
    waiting: Option<Waiting>,
    /// `Err`: the request was never sent (the driver is gone).
    answer: Result<oneshot::Receiver<Reply>, Error>,
}

impl Future for Pending {
    type Output = Reply;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Reply> {
        let this = &mut *self;
        let answer = match &mut this.answer {
            Ok(answer) => answer,
            Err(e) => return Poll::Ready(Err(e.clone())),
        };
        match Pin::new(answer).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(answer) => {
                // Answered: nothing to cancel when dropped.
                this.waiting = None;
                Poll::Ready(answer.unwrap_or_else(|_| Err(this.instance.gone())))
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.waiting.is_some() {
            tracing::debug!("call cancelled: its command is abandoned");
            let _ = self.instance.requests.send(Request::Cancel {
                object: self.object,
                call: self.call,
            });
        }
    }
}
