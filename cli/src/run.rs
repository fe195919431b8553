//! `dflock run`: take the lock, run the command while holding it, release.
//!
//! The lock is the host library's async object: it renews its lease by
//! itself and reports a loss through `on_lost`, which this module turns
//! into SIGTERM (then SIGKILL) for the command. Signals sent to dflock go
//! on to the command; while still waiting they end dflock, and dropping
//! the waiting acquire closes its connection, so the server forgets it.

use std::process::ExitStatus;
use std::time::Duration;

use dflockd_host::asynchronous::AsyncHolder;
use dflockd_host::{Builder, Error, LeaseLost, Runtime};
use tokio::sync::mpsc;

use crate::args::{OnLost, RunArgs};
use crate::servers::Servers;
use crate::signals::{self, Signals};
use crate::{exit, waiting};

/// "As long as it takes": the longest wait the protocol can say.
const FOREVER_S: u64 = crate::args::MAX_SECONDS;

pub async fn run(runtime: &Runtime, servers: &Servers, args: RunArgs) -> u8 {
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => return fail(format_args!("cannot catch signals: {e}")),
    };
    let (lost_tx, lost_rx) = mpsc::unbounded_channel();
    let wait_s = if args.no_wait {
        0
    } else {
        args.wait.unwrap_or(FOREVER_S)
    };
    let label = label(&args.keys);
    let holder = match (args.keys.as_slice(), args.limit) {
        ([key], None) => {
            let builder = configure(runtime.lock(key), servers, &args, wait_s, lost_tx);
            Held::Lock(builder.build_async().await)
        }
        ([key], Some(limit)) => {
            let builder = runtime.semaphore(key, limit);
            let builder = configure(builder, servers, &args, wait_s, lost_tx);
            Held::Semaphore(builder.build_async().await)
        }
        (keys, None) => {
            let builder = runtime.lock_set(keys.iter().cloned());
            let builder = configure(builder, servers, &args, wait_s, lost_tx);
            Held::Set(builder.build_async().await)
        }
        (_, Some(_)) => {
            eprintln!(
                "dflock: --limit takes one key (a semaphore's); several keys make a lock set"
            );
            return exit::USAGE;
        }
    };
    let how = How {
        runtime,
        servers,
        args: &args,
        wait_s,
        label: &label,
    };
    match holder {
        Held::Lock(Ok(h)) => hold(&how, &h, &mut signals, lost_rx).await,
        Held::Semaphore(Ok(h)) => hold(&how, &h, &mut signals, lost_rx).await,
        Held::Set(Ok(h)) => hold(&how, &h, &mut signals, lost_rx).await,
        Held::Lock(Err(e)) | Held::Semaphore(Err(e)) | Held::Set(Err(e)) => {
            fail(format_args!("{label}: {e}"))
        }
    }
}

/// "k", or "{a, b}" for a lock set.
fn label(keys: &[String]) -> String {
    match keys {
        [key] => key.clone(),
        keys => format!("{{{}}}", keys.join(", ")),
    }
}

enum Held {
    Lock(Result<AsyncHolder<dflockd_host::Exclusive>, Error>),
    Semaphore(Result<AsyncHolder<dflockd_host::Counting>, Error>),
    Set(Result<AsyncHolder<dflockd_host::AllOf>, Error>),
}

/// What the object `run` takes tells the command and the spinner.
trait Target {
    /// `DFLOCK_KEY` and `DFLOCK_FENCE`, once held (a set's: lists, by spaces).
    fn env(&self) -> (String, String);
    /// The key whose queue the spinner shows, and its server (one key only).
    fn watched(&self) -> Option<(&str, u32)>;
}

/// A lock's or a semaphore's: one key.
macro_rules! one_key_target {
    ($($kind:ty),*) => {$(
        impl Target for AsyncHolder<$kind> {
            fn env(&self) -> (String, String) {
                let fence = self.fence().unwrap_or_default();
                (self.key().to_string(), fence.to_string())
            }
            fn watched(&self) -> Option<(&str, u32)> {
                Some((self.key(), self.server_index()))
            }
        }
    )*};
}

one_key_target!(dflockd_host::Exclusive, dflockd_host::Counting);

impl Target for AsyncHolder<dflockd_host::AllOf> {
    fn env(&self) -> (String, String) {
        let fences: Vec<String> = self.grants().iter().map(|g| g.fence.to_string()).collect();
        (self.keys().join(" "), fences.join(" "))
    }
    fn watched(&self) -> Option<(&str, u32)> {
        None
    }
}

/// Everything `hold` needs but the object.
struct How<'a> {
    runtime: &'a Runtime,
    servers: &'a Servers,
    args: &'a RunArgs,
    wait_s: u64,
    label: &'a str,
}

fn configure<K>(
    builder: Builder<K>,
    servers: &Servers,
    args: &RunArgs,
    wait_s: u64,
    lost: mpsc::UnboundedSender<LeaseLost>,
) -> Builder<K> {
    let mut builder = servers.apply(builder).acquire_timeout_s(wait_s);
    if let Some(lease) = args.lease {
        builder = builder.lease_ttl_s(lease);
    }
    builder.on_lost(move |loss| {
        let _ = lost.send(loss.clone());
    })
}

async fn hold<K>(
    how: &How<'_>,
    holder: &AsyncHolder<K>,
    signals: &mut Signals,
    mut lost: mpsc::UnboundedReceiver<LeaseLost>,
) -> u8
where
    AsyncHolder<K>: Target,
{
    let (args, wait_s, key) = (how.args, how.wait_s, how.label);
    let watched = holder.watched();
    let acquired = tokio::select! {
        acquired = holder.acquire() => acquired,
        signal = signals.recv() => {
            eprintln!("dflock: {} while waiting for {key}", signals::name(signal));
            return exit::SIGNALLED + signal as u8;
        }
        () = waiting::show(how.runtime, key, watched, how.servers, args.limit) => {
            unreachable!("shows until dropped")
        }
    };
    let guard = match acquired {
        Ok(Some(guard)) => guard,
        Ok(None) if wait_s == 0 => {
            eprintln!("dflock: {key} is held elsewhere (--no-wait): not run");
            return args.conflict_exit_code;
        }
        Ok(None) => {
            eprintln!("dflock: {key} not acquired within {wait_s} s: not run");
            return args.conflict_exit_code;
        }
        Err(e) => return fail(format_args!("acquiring {key}: {e}")),
    };
    let (keys, fences) = holder.env();
    let (program, rest) = args.command.split_first().expect("clap requires CMD");
    let child = tokio::process::Command::new(program)
        .args(rest)
        .env("DFLOCK_KEY", keys)
        .env("DFLOCK_FENCE", fences)
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            release(guard, key).await;
            eprintln!("dflock: cannot run {program}: {e}");
            return match e.kind() {
                std::io::ErrorKind::NotFound => exit::NOT_FOUND,
                _ => exit::CANNOT_RUN,
            };
        }
    };
    let mut kill_at = None;
    let mut lost_once = false;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            Some(loss) = lost.recv(), if !lost_once => {
                lost_once = true;
                match args.on_lost {
                    OnLost::Warn => eprintln!(
                        "dflock: the lease on {key} was lost ({}); {program} runs on (--on-lost warn)",
                        loss.reason
                    ),
                    OnLost::Kill => {
                        eprintln!(
                            "dflock: the lease on {key} was lost ({}); stopping {program} \
                             (SIGTERM, SIGKILL after {} s)",
                            loss.reason, args.kill_after
                        );
                        signals::send(&mut child, signals::TERM);
                        kill_at = Some(tokio::time::Instant::now() + Duration::from_secs(args.kill_after));
                    }
                }
            }
            signal = signals.recv() => signals::pass_on(&mut child, signal),
            () = sleep_until(kill_at), if kill_at.is_some() => {
                kill_at = None;
                eprintln!("dflock: {program} still runs {} s after SIGTERM: SIGKILL", args.kill_after);
                let _ = child.start_kill();
            }
        }
    };
    if lost_once {
        // Already lost: the release can only say so again.
        let _ = guard.release().await;
    } else {
        release(guard, key).await;
    }
    match status {
        Ok(status) => code_of(status),
        Err(e) => fail(format_args!("waiting for {program}: {e}")),
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Releases, saying so when it fails: the server then frees the key when
/// the lease ends.
async fn release<K>(guard: dflockd_host::asynchronous::AsyncGuard<'_, K>, key: &str) {
    if let Err(e) = guard.release().await {
        eprintln!("dflock: releasing {key}: {e} (the server frees it when the lease ends)");
    }
}

/// The command's exit code, or 128 + the signal that ended it.
fn code_of(status: ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return code as u8;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return exit::SIGNALLED.wrapping_add(signal as u8);
        }
    }
    exit::FAILED
}

fn fail(message: std::fmt::Arguments<'_>) -> u8 {
    eprintln!("dflock: {message}");
    exit::FAILED
}
