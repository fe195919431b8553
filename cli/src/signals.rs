//! The signals dflock catches (SIGINT, SIGTERM, SIGHUP) and passes on to
//! its command.

use tokio::process::Child;

#[cfg(unix)]
pub use unix::*;

#[cfg(unix)]
mod unix {
    use tokio::signal::unix::{signal, Signal, SignalKind};

    /// SIGTERM's number.
    pub const TERM: i32 = nix::libc::SIGTERM;

    /// The three signals, caught from now on.
    pub struct Signals {
        int: Signal,
        term: Signal,
        hup: Signal,
    }

    impl Signals {
        pub fn new() -> std::io::Result<Signals> {
            Ok(Signals {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
                hup: signal(SignalKind::hangup())?,
            })
        }

        /// The next one's number.
        pub async fn recv(&mut self) -> i32 {
            tokio::select! {
                _ = self.int.recv() => nix::libc::SIGINT,
                _ = self.term.recv() => nix::libc::SIGTERM,
                _ = self.hup.recv() => nix::libc::SIGHUP,
            }
        }
    }

    /// "SIGINT" for 2, and so on.
    pub fn name(signal: i32) -> String {
        nix::sys::signal::Signal::try_from(signal)
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|_| format!("signal {signal}"))
    }

    /// Passes `signal` on to the command. Not a SIGINT while dflock runs
    /// in the foreground of a terminal: Ctrl-C there went to the whole
    /// process group, the command included, and a second one makes many
    /// programs skip their clean-up ("press Ctrl-C again to quit").
    pub fn pass_on(child: &mut super::Child, signal: i32) {
        if signal == nix::libc::SIGINT && in_terminal_foreground() {
            return;
        }
        send(child, signal);
    }

    fn in_terminal_foreground() -> bool {
        let Ok(tty) = std::fs::File::open("/dev/tty") else {
            return false;
        };
        nix::unistd::tcgetpgrp(&tty).is_ok_and(|group| group == nix::unistd::getpgrp())
    }

    /// Sends `signal` to the command, unless it has exited already.
    pub fn send(child: &mut super::Child, signal: i32) {
        let (Some(pid), Ok(signal)) = (child.id(), nix::sys::signal::Signal::try_from(signal))
        else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(pid as i32);
        let _ = nix::sys::signal::kill(pid, signal);
    }
}

#[cfg(not(unix))]
pub use other::*;

/// Elsewhere only Ctrl-C is caught, and stopping the command kills it.
#[cfg(not(unix))]
mod other {
    pub const TERM: i32 = 15;

    pub struct Signals;

    impl Signals {
        pub fn new() -> std::io::Result<Signals> {
            Ok(Signals)
        }

        pub async fn recv(&mut self) -> i32 {
            let _ = tokio::signal::ctrl_c().await;
            2
        }
    }

    pub fn name(signal: i32) -> String {
        format!("signal {signal}")
    }

    pub fn send(child: &mut super::Child, _signal: i32) {
        let _ = child.start_kill();
    }

    pub fn pass_on(child: &mut super::Child, signal: i32) {
        send(child, signal);
    }
}
