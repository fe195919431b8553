//! A lock or semaphore, written once: the commands as async methods over
//! the runtime's instance (`instance.rs`) with their answers typed, and
//! the accessors over what the driver last saw it hold (`view.rs`). The
//! async flavour ([`AsyncHolder`](crate::asynchronous::AsyncHolder)) adds
//! guards to it; the blocking one ([`Holder`](crate::Holder)) blocks on
//! the same futures.

use std::sync::Arc;

use crate::builder::{allowed_addresses, Builder};
use crate::instance::{Finished, Instance, Op};
use crate::raw_async::{self, Command, Outcome};
use crate::view::Watch;
use crate::{Enqueued, Error, Grant, Kind, Runtime};

/// One object in its runtime's instance.
pub(crate) struct Object {
    instance: Instance,
    id: u64,
    watch: Arc<Watch>,
    /// The key (a lock set's first member's).
    key: String,
    /// Every key: the object's, or a lock set's in the order they are taken.
    keys: Vec<String>,
    kind: Kind,
    server_index: u32,
    /// The blocking flavour's drop waits until the release is answered.
    wait_on_drop: bool,
    /// Keeps the runtime (and its instance) alive.
    _runtime: Runtime,
}

impl<K> Builder<K> {
    /// Validates everything (in the component) and opens the object in
    /// `instance`, one of its runtime's. Connects lazily, on the first
    /// acquire or enqueue.
    pub(crate) async fn open(
        self,
        instance: Instance,
        wait_on_drop: bool,
    ) -> Result<Object, Error> {
        let (runtime, recipe, on_lost) = self.into_parts()?;
        runtime.allow(&allowed_addresses(&recipe.servers)?);
        if !recipe.keys.is_empty() {
            let opened = instance
                .open_set(recipe.keys, recipe.settings, on_lost)
                .await?;
            return Ok(Object {
                instance,
                id: opened.object,
                watch: opened.watch,
                key: opened.keys.first().cloned().unwrap_or_default(),
                keys: opened.keys,
                kind: Kind::Lock,
                server_index: 0,
                wait_on_drop,
                _runtime: runtime,
            });
        }
        let key = recipe.key.clone();
        let watch = Arc::new(Watch::new(vec![key.clone()], on_lost));
        let opened = instance
            .open(recipe.key, recipe.kind, recipe.settings, watch.clone())
            .await?;
        Ok(Object {
            instance,
            id: opened.object,
            watch,
            keys: vec![key.clone()],
            key,
            kind: recipe.kind,
            server_index: opened.server_index,
            wait_on_drop,
            _runtime: runtime,
        })
    }
}

/// A component that answered a command with another command's outcome.
fn mismatch(command: &str) -> Error {
    Error::Runtime(format!(
        "the component answered `{command}` with another outcome"
    ))
}

impl Object {
    /// Blocks on one of this object's futures (the blocking flavour).
    pub(crate) fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.instance.block_on(future)
    }

    async fn run(&self, command: Command) -> Result<Outcome, Error> {
        match self.instance.call(self.id, Op::Start(command)).await? {
            Finished::Outcome(outcome) => Ok(outcome),
            _ => Err(mismatch("start")),
        }
    }

    async fn granted(&self, command: Command, how: &str) -> Result<Option<Grant>, Error> {
        match self.run(command).await? {
            Outcome::Acquired(grant) => {
                let grant = grant.map(raw_async::grant);
                if let Some(grant) = &grant {
                    tracing::debug!(key = %self.key, how, fence = grant.fence, "granted");
                }
                Ok(grant)
            }
            _ => Err(mismatch(how)),
        }
    }

    pub(crate) async fn acquire(&self) -> Result<Option<Grant>, Error> {
        self.granted(Command::Acquire, "acquire").await
    }

    pub(crate) async fn wait(&self, timeout_s: Option<u64>) -> Result<Option<Grant>, Error> {
        self.granted(Command::Wait(timeout_s), "wait").await
    }

    pub(crate) async fn enqueue(&self) -> Result<Enqueued, Error> {
        let Outcome::Enqueued(answer) = self.run(Command::Enqueue).await? else {
            return Err(mismatch("enqueue"));
        };
        let answer = raw_async::enqueued(answer);
        if let Enqueued::Acquired(grant) = &answer {
            tracing::debug!(key = %self.key, how = "enqueue", fence = grant.fence, "granted");
        }
        Ok(answer)
    }

    pub(crate) async fn release(&self) -> Result<bool, Error> {
        let released = match self.run(Command::Release).await {
            Ok(Outcome::Released(confirmed)) => Ok(confirmed),
            Ok(_) => Err(mismatch("release")),
            Err(e) => Err(e),
        };
        tracing::debug!(key = %self.key, ?released, "release");
        released
    }

    pub(crate) async fn renew(&self) -> Result<u64, Error> {
        match self.run(Command::Renew).await? {
            Outcome::Renewed(remaining_s) => Ok(remaining_s),
            _ => Err(mismatch("renew")),
        }
    }

    pub(crate) async fn close(&self) -> Result<(), Error> {
        self.instance.call(self.id, Op::Close).await.map(drop)
    }

    /// A guard's drop: the release is sent, and nothing waits for it (its
    /// failure goes to `tracing`, in the driver).
    pub(crate) fn release_in_background(&self) {
        if let Err(e) = self
            .instance
            .send_only(self.id, Op::Start(Command::Release))
        {
            tracing::warn!(key = %self.key, error = %e, "release on guard drop failed");
        }
    }

    pub(crate) fn grant(&self) -> Option<Grant> {
        self.watch.grant()
    }

    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    pub(crate) fn keys(&self) -> &[String] {
        &self.keys
    }

    /// Every grant held, in [`keys`](Self::keys) order (a lock set's).
    pub(crate) fn grants(&self) -> Vec<Grant> {
        self.watch
            .held()
            .into_iter()
            .map(|(_, grant)| grant)
            .collect()
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    pub(crate) fn server_index(&self) -> u32 {
        self.server_index
    }

    pub(crate) fn limit(&self) -> u32 {
        match self.kind {
            Kind::Semaphore { limit } => limit.get(),
            Kind::Lock => 1,
        }
    }
}

impl Drop for Object {
    /// Releases what is held (after any command still queued) and drops
    /// the resource with its connection. The blocking flavour waits for
    /// that and for every `on_lost` call before it, except in an `on_lost`
    /// callback, which would wait for itself.
    fn drop(&mut self) {
        let gone = self.instance.drop_object(self.id);
        let wait = self.wait_on_drop && !crate::callbacks::on_callback_thread();
        if let (true, Some(gone)) = (wait, gone) {
            let _ = self.instance.block_on(gone);
        }
    }
}

impl Object {
    /// The object as `name`: key, kind, server and fence (a lock set: its
    /// keys and fences), never a token (a secret).
    pub(crate) fn debug_as(&self, name: &str, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct(name);
        if let [key] = self.keys.as_slice() {
            d.field("key", key)
                .field("kind", &self.kind)
                .field("server_index", &self.server_index)
                .field("fence", &self.grant().map(|g| g.fence));
        } else {
            let fences: Vec<u64> = self.grants().iter().map(|g| g.fence).collect();
            d.field("keys", &self.keys).field("fences", &fences);
        }
        d.finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.debug_as("Object", f)
    }
}
