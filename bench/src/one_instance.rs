//! A spike of issue 21's single-waiter host, measured beside the other
//! clients: the workers' locks live in one component instance per core,
//! and one driver thread owns each instance's store. A worker sends a
//! command; the driver starts it (`start`), waits on `driver.pollables` and
//! its inbox together (`tokio::select!` on its own current-thread runtime),
//! and answers each completion that `driver.poll-events` gives. Not an
//! API: it says what the shape costs (a thread hand-off each way per
//! command, one thread for an instance's work) before `dflockd-host` moves
//! onto it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bindings::exports::dflockd::client::driver::{Completion, Event};
use bindings::exports::dflockd::client::types::{Command, Error, Outcome, Setting};
use wasmtime::component::Resource;

type Answer = Result<Outcome, Error>;

/// A worker's command for its lock (the lock numbered as the worker).
struct Request {
    lock: usize,
    command: Command,
    reply: Sender<Answer>,
}

/// The driver threads (one per instance) and the way to them. `None` on
/// a channel stops its driver.
pub struct Drivers {
    drivers: Vec<Driver>,
}

struct Driver {
    requests: tokio::sync::mpsc::UnboundedSender<Option<Request>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drivers {
    /// Starts `instances` drivers; worker `w`'s lock is the `w / instances`th
    /// of instance `w % instances`. All are opened once it returns.
    pub fn start(addr: SocketAddr, workers: usize, instances: usize) -> Drivers {
        let drivers = (0..instances)
            .map(|i| {
                let locks = (i..workers).step_by(instances).count();
                let (requests, inbox) = tokio::sync::mpsc::unbounded_channel();
                let (opened, ready) = channel();
                let thread = std::thread::spawn(move || drive(addr, i, locks, inbox, &opened));
                ready.recv().expect("the driver opened its locks");
                Driver {
                    requests,
                    thread: Mutex::new(Some(thread)),
                }
            })
            .collect();
        Drivers { drivers }
    }

    /// One worker's run: `rounds` acquire+release pairs on its lock.
    pub fn worker(&self, w: usize, rounds: usize, start: &Barrier) -> Vec<Duration> {
        let driver = &self.drivers[w % self.drivers.len()];
        let (reply, answers) = channel();
        let call = |command| {
            let request = Request {
                lock: w / self.drivers.len(),
                command,
                reply: reply.clone(),
            };
            let sent = driver.requests.send(Some(request));
            assert!(sent.is_ok(), "the driver runs");
            answers.recv().expect("an answer")
        };
        let mut out = Vec::with_capacity(rounds);
        start.wait();
        for _ in 0..rounds {
            let t0 = Instant::now();
            match call(Command::Acquire) {
                Ok(Outcome::Acquired(Some(_))) => {}
                other => panic!("acquire: {other:?}"),
            }
            match call(Command::Release) {
                Ok(Outcome::Released(true)) => {}
                other => panic!("release: {other:?}"),
            }
            out.push(t0.elapsed());
        }
        out
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.requests.send(None);
        let thread = self.thread.lock().map(|mut t| t.take());
        if let Ok(Some(thread)) = thread {
            thread.join().expect("the driver thread panicked");
        }
    }
}

/// The WIT with async exports, for a driver on a tokio runtime of its own.
#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "client",
        with: { "wasi:io/poll": wasmtime_wasi::p2::bindings::io::poll },
        exports: { default: async },
    });
}

/// A driver thread: on a current-thread tokio runtime of its own (so that
/// it waits on its sockets itself, epoll on this thread), opens its
/// instance's locks, then starts what arrives and answers what completes,
/// waiting on the instance's pollables and the inbox together.
fn drive(
    addr: SocketAddr,
    instance: usize,
    workers: usize,
    inbox: tokio::sync::mpsc::UnboundedReceiver<Option<Request>>,
    opened: &Sender<()>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    rt.block_on(run(addr, instance, workers, inbox, opened))
        .expect("the driver");
}

async fn run(
    addr: SocketAddr,
    instance: usize,
    workers: usize,
    mut inbox: tokio::sync::mpsc::UnboundedReceiver<Option<Request>>,
    opened: &Sender<()>,
) -> wasmtime::Result<()> {
    use wasmtime_wasi::p2::bindings::io::poll::{Host as _, HostPollable};
    let runtime = host_tests::runtime();
    let mut linker = wasmtime::component::Linker::new(runtime.engine());
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    let pre = bindings::ClientPre::new(linker.instantiate_pre(runtime.component())?)?;
    let state = host_tests::raw::State::new(dflockd_host::sandbox(&[addr]));
    let mut store = wasmtime::Store::new(runtime.engine(), state);
    let client = pre.instantiate_async(&mut store).await?;
    let (api, driver) = (
        client.dflockd_client_locks(),
        client.dflockd_client_driver(),
    );
    let settings = [
        Setting::Servers(vec![bindings::exports::dflockd::client::types::Server {
            host: addr.ip().to_string(),
            port: addr.port(),
        }]),
        Setting::AcquireTimeoutS(30),
    ];
    let mut locks = Vec::with_capacity(workers);
    for w in 0..workers {
        let key = format!("bench-one-{instance}-{w}");
        let lock = api.lock().call_open(&mut store, &key, &settings).await?;
        locks.push(lock.expect("open"));
    }
    opened.send(()).expect("the bench waits");
    let mut waiting: HashMap<u64, Sender<Answer>> = HashMap::new();
    let mut arrived = Vec::new();
    loop {
        while let Ok(request) = inbox.try_recv() {
            arrived.push(request);
        }
        for request in arrived.drain(..) {
            let Some(request) = request else {
                return Ok(());
            };
            let lock = locks[request.lock];
            match api
                .lock()
                .call_start(&mut store, lock, request.command)
                .await?
            {
                Ok(ticket) => {
                    waiting.insert(ticket, request.reply);
                }
                Err(e) => {
                    let _ = request.reply.send(Err(e));
                }
            }
        }
        let pollables = driver.call_pollables(&mut store).await?;
        let table = store.data_mut().table();
        let borrowed = pollables
            .iter()
            .map(|p| Resource::new_borrow(p.rep()))
            .collect::<Vec<_>>();
        tokio::select! {
            ready = table.poll(borrowed), if !pollables.is_empty() => { ready?; }
            request = inbox.recv() => arrived.push(request.flatten()),
        }
        for pollable in pollables {
            HostPollable::drop(table, pollable)?;
        }
        for event in driver.call_poll_events(&mut store).await? {
            if let Event::Done(Completion { ticket, outcome }) = event {
                if let Some(reply) = waiting.remove(&ticket) {
                    let _ = reply.send(outcome);
                }
            }
        }
    }
}
