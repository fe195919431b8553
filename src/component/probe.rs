//! Why a plain connection closed before its first reply. A TLS server does
//! that (it closes without a word when the first bytes are no TLS record),
//! and so does one at its `--max-connections`. To tell them apart, one
//! more connection offers a TLS ClientHello: a TLS record back means the
//! server speaks TLS, which is then the error.
//!
//! The probe is a state machine like [`super::dial::Connecting`]: each
//! [`Probe::step`] goes as far as it can without waiting, so a command
//! started without waiting never blocks inside the component for it (a
//! host on an event loop cannot block at all); [`explain_blocking`] is
//! the blocking calls' loop over it.

use std::net::IpAddr;

use wasip2::io::poll::Pollable;
use wasip2::sockets::network::ErrorCode;
use wasip2::sockets::tcp::TcpSocket;

use super::clock;
use super::reactor::Steps;
use super::transport::{start_connect, write_some, Conn, Open};
use crate::protocol::Error;
use crate::settings::{TlsOptions, Trust};
use crate::time::Instant;
use crate::tls::TlsSettings;

/// How long a probe may take at most.
const PROBE_MS: u64 = 2_000;

/// A probe under way.
pub struct Probe {
    stage: Stage,
    /// When it gives up (and the server is taken not to speak TLS).
    deadline: Instant,
    /// The error being explained.
    why: Error,
}

/// The streams are children of their socket, which must go last: they
/// stay together in an [`Open`], whose field order is drop order (apart,
/// as a destructured variant's bindings, they would drop socket first,
/// which traps).
enum Stage {
    /// The probe's TCP connect is under way.
    Connecting(TcpSocket),
    /// The ClientHello is (being) written; the first two bytes back are awaited.
    Reading {
        hello: Vec<u8>,
        head: Vec<u8>,
        /// Boxed: a plain `Open` still has room for a TLS session.
        open: Box<Open>,
    },
    /// Decided: [`Probe::step`] returned the explanation.
    Done,
}

impl Probe {
    /// The probe `conn`'s `error` calls for, if any: only a plain
    /// connection that closed before any reply line is explained.
    pub fn of(conn: &Conn, error: &Error, until: Instant) -> Option<Probe> {
        let peer = conn.closed_before_reply(error)?;
        Some(Probe::start(peer, error.clone(), until))
    }

    fn start(peer: (IpAddr, u16), why: Error, until: Instant) -> Probe {
        let stage = match start_connect(peer.0, peer.1) {
            Ok(socket) => Stage::Connecting(socket),
            Err(_) => Stage::Done,
        };
        Probe {
            stage,
            deadline: until.min(clock::after_ms(PROBE_MS)),
            why,
        }
    }

    fn advance(&mut self, stage: Stage) -> Step {
        match stage {
            Stage::Done => Step::Decided(false),
            Stage::Connecting(socket) => match socket.finish_connect() {
                Ok((input, output)) => {
                    let open = Box::new(Open {
                        tls: None,
                        input,
                        output,
                        _socket: socket,
                    });
                    match client_hello() {
                        Some(hello) => Step::Moved(Stage::Reading {
                            hello,
                            head: Vec::new(),
                            open,
                        }),
                        None => Step::Decided(false),
                    }
                }
                Err(ErrorCode::WouldBlock) => Step::Waits(Stage::Connecting(socket)),
                Err(_) => Step::Decided(false),
            },
            Stage::Reading {
                mut hello,
                mut head,
                open,
            } => {
                if write_some(&open.output, &mut hello).is_err() {
                    return Step::Decided(false);
                }
                match open.input.read((2 - head.len()) as u64) {
                    Ok(bytes) => head.extend_from_slice(&bytes),
                    Err(_) => return Step::Decided(false),
                }
                if head.len() >= 2 {
                    // A TLS record header: handshake (22) or alert (21), version 3.x.
                    return Step::Decided(matches!(head[..2], [21 | 22, 3]));
                }
                Step::Waits(Stage::Reading { hello, head, open })
            }
        }
    }

    fn explain(&mut self, speaks_tls: bool) -> Error {
        self.stage = Stage::Done;
        if speaks_tls {
            return Error::Tls("the server speaks TLS: set tls in the connect options".into());
        }
        match &self.why {
            Error::Connection(why) => Error::Connection(format!(
                "the server closed the connection before its first reply ({why}); it does not \
                 speak TLS either: is it at its --max-connections?"
            )),
            other => other.clone(),
        }
    }
}

impl Steps for Probe {
    type Output = Error;

    /// When it gives up at the latest.
    fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The pollables of what it waits on.
    fn wakeups(&self, out: &mut Vec<Pollable>) {
        match &self.stage {
            Stage::Connecting(socket) => out.push(socket.subscribe()),
            Stage::Reading { hello, open, .. } => {
                out.push(open.input.subscribe());
                if !hello.is_empty() {
                    out.push(open.output.subscribe());
                }
            }
            Stage::Done => {}
        }
    }

    /// Goes as far as it can without waiting: `Some` with the explained
    /// error once decided, `None` while it must wait.
    fn step(&mut self, now: Instant) -> Option<Error> {
        loop {
            let stage = std::mem::replace(&mut self.stage, Stage::Done);
            match self.advance(stage) {
                Step::Decided(speaks_tls) => return Some(self.explain(speaks_tls)),
                Step::Moved(stage) => self.stage = stage,
                Step::Waits(stage) => {
                    self.stage = stage;
                    return (now >= self.deadline).then(|| self.explain(false));
                }
            }
        }
    }
}

/// What one step did.
enum Step {
    Decided(bool),
    Moved(Stage),
    Waits(Stage),
}

/// A TLS 1.3 ClientHello for no server in particular.
fn client_hello() -> Option<Vec<u8>> {
    let settings = TlsSettings::new(TlsOptions {
        trust: Trust::MozillaRoots,
        server_name: None,
        client_cert: None,
    });
    let mut session = settings.and_then(|s| s.session("probe.invalid")).ok()?;
    Some(session.take_outgoing())
}
