//! The objects as the driver knows them: what each is, what it holds,
//! its started command and the ones queued behind it.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::oneshot;
use wasmtime::component::ResourceAny;

use crate::instance::{Op, Reply};
use crate::raw_async::Command;
use crate::view::Watch;
use crate::Kind;

/// Which resource type of `locks` an object is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Res {
    Lock,
    Semaphore,
    Set,
}

/// One object as the driver knows it.
pub(super) struct Entry {
    pub(super) handle: ResourceAny,
    pub(super) what: What,
    /// The started command, until its completion.
    pub(super) current: Option<Started>,
    /// Asked, not started yet.
    pub(super) queue: VecDeque<Queued>,
    /// Set by a drop request: dropped once nothing is queued or started.
    pub(super) dropping: Option<Option<oneshot::Sender<()>>>,
}

/// What an object is.
pub(super) enum What {
    /// A lock or semaphore: its kind, and what it holds (with its key).
    Key { kind: Kind, watch: Arc<Watch> },
    /// A lock set: what its members hold.
    Set { watch: Arc<Watch> },
    /// A low-level connection.
    Connection,
}

impl Entry {
    /// What a lock or semaphore holds; `None` for a connection.
    pub(super) fn watch(&self) -> Option<&Arc<Watch>> {
        match &self.what {
            What::Key { watch, .. } | What::Set { watch } => Some(watch),
            What::Connection => None,
        }
    }

    pub(super) fn is_semaphore(&self) -> bool {
        self.res() == Res::Semaphore
    }

    /// The resource type (a connection's is never asked).
    pub(super) fn res(&self) -> Res {
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

/// A command started in the instance, until its completion event.
pub(super) struct Started {
    pub(super) ticket: u64,
    pub(super) call: u64,
    /// A lock's or semaphore's command, whose outcome changes what it holds.
    pub(super) settles: Option<Command>,
    pub(super) reply: Option<oneshot::Sender<Reply>>,
}

/// A command asked while another of its object runs.
pub(super) struct Queued {
    pub(super) call: u64,
    pub(super) op: Op,
    pub(super) reply: Option<oneshot::Sender<Reply>>,
}
