//! A spike of issue 21's single-waiter host, measured beside the other
//! clients: the workers' locks live in one component instance per core,
//! and one driver thread owns each instance's store. A worker sends a command and rings the
//! driver's bell; the driver starts the command (`start`), waits on
//! `driver.pollables` and the bell in one poll, and answers each
//! completion that `driver.poll-events` gives. Not an API: it says what the
//! shape costs (a thread hand-off each way per command, one thread for all
//! the instance's work) before `dflockd-host` moves onto it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::mpsc::{channel, Receiver, Sender, TryRecvError};
use std::sync::{Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use host_tests::{Bell, Command, Completion, Error, Event, Outcome, Setting};

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
    requests: Sender<Option<Request>>,
    bell: Bell,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drivers {
    /// Starts `instances` drivers; worker `w`'s lock is the `w / instances`th
    /// of instance `w % instances`. All are opened once it returns.
    pub fn start(addr: SocketAddr, workers: usize, instances: usize) -> Drivers {
        let drivers = (0..instances)
            .map(|i| {
                let locks = (i..workers).step_by(instances).count();
                let (requests, inbox) = channel();
                let bell = Bell::default();
                let (opened, ready) = channel();
                let thread = {
                    let bell = bell.clone();
                    std::thread::spawn(move || drive(addr, i, locks, &inbox, &bell, &opened))
                };
                ready.recv().expect("the driver opened its locks");
                Driver {
                    requests,
                    bell,
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
            driver
                .requests
                .send(Some(request))
                .expect("the driver runs");
            driver.bell.ring();
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
            assert_eq!(call(Command::Release), Ok(Outcome::Released(true)));
            out.push(t0.elapsed());
        }
        out
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.requests.send(None);
        self.bell.ring();
        let thread = self.thread.lock().map(|mut t| t.take());
        if let Ok(Some(thread)) = thread {
            thread.join().expect("the driver thread panicked");
        }
    }
}

/// A driver thread: opens its instance's locks, then starts what arrives
/// and answers what completes, waiting on the instance and the bell together.
fn drive(
    addr: SocketAddr,
    instance: usize,
    workers: usize,
    inbox: &Receiver<Option<Request>>,
    bell: &Bell,
    opened: &Sender<()>,
) {
    let mut inst = host_tests::instance(&[addr]);
    let settings = [
        Setting::Servers(vec![host_tests::server_of(addr)]),
        Setting::AcquireTimeoutS(30),
    ];
    let locks: Vec<_> = (0..workers)
        .map(|w| {
            let locks = inst.client.dflockd_client_locks();
            let opened = locks.lock().call_open(
                &mut inst.store,
                &format!("bench-one-{instance}-{w}"),
                &settings,
            );
            opened.expect("call").expect("open")
        })
        .collect();
    opened.send(()).expect("the bench waits");
    let mut waiting: HashMap<u64, Sender<Answer>> = HashMap::new();
    loop {
        loop {
            let request = match inbox.try_recv() {
                Ok(Some(request)) => request,
                Ok(None) | Err(TryRecvError::Disconnected) => return,
                Err(TryRecvError::Empty) => break,
            };
            let locks_api = inst.client.dflockd_client_locks();
            let started =
                locks_api
                    .lock()
                    .call_start(&mut inst.store, locks[request.lock], request.command);
            match started.expect("call") {
                Ok(ticket) => {
                    waiting.insert(ticket, request.reply);
                }
                Err(e) => {
                    let _ = request.reply.send(Err(e));
                }
            }
        }
        for event in inst.turn_or_bell(bell).expect("turn") {
            if let Event::Done(Completion { ticket, outcome }) = event {
                if let Some(reply) = waiting.remove(&ticket) {
                    let _ = reply.send(outcome);
                }
            }
        }
    }
}
