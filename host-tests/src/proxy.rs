//! A TCP fault proxy between the component and the dflockd server, named as
//! a stand-in: it plays the network, for the faults a server cannot make
//! (delay, a reply cut mid-line, a reset, a black hole, one direction
//! stalled). It relays bytes as they come, both ways, until the test sets
//! a [`Fault`]; every connection sees the fault set at the moment.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

/// What the proxy does to the bytes it relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Relays at once.
    None,
    /// Holds each chunk this long, both ways.
    Delay(Duration),
    /// Swallows everything both ways; connections stay open.
    BlackHole,
    /// Relays nothing from the client to the server (replies still flow).
    StallRequests,
    /// Relays nothing from the server to the client (requests still flow).
    StallReplies,
    /// Relays the first half of the next reply chunk, then closes both ends.
    TruncateReply,
}

/// A listening proxy; it stops with the test process.
pub struct FaultProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    fault: Mutex<Fault>,
    changed: Condvar,
    /// The connections, for [`FaultProxy::reset`].
    conns: Mutex<Vec<Conn>>,
}

/// One relayed connection: both sockets, and whether it is being reset.
struct Conn {
    client: TcpStream,
    server: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Shared {
    fn fault(&self) -> MutexGuard<'_, Fault> {
        self.fault.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Relays from a free loopback port to `upstream`.
pub fn start(upstream: SocketAddr) -> FaultProxy {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let addr = listener.local_addr().expect("proxy address");
    let shared = Arc::new(Shared {
        fault: Mutex::new(Fault::None),
        changed: Condvar::new(),
        conns: Mutex::new(Vec::new()),
    });
    let accepting = shared.clone();
    thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let Ok(server) = TcpStream::connect(upstream) else {
                continue; // the client sees its connection closed
            };
            let clones = (client.try_clone(), server.try_clone());
            let kept = (client.try_clone(), server.try_clone());
            let (Ok(c), Ok(s), Ok(kc), Ok(ks)) = (clones.0, clones.1, kept.0, kept.1) else {
                continue;
            };
            let reset = Arc::new(AtomicBool::new(false));
            accepting.conns.lock().unwrap().push(Conn {
                client: kc,
                server: ks,
                reset: reset.clone(),
            });
            let (up, down) = (accepting.clone(), accepting.clone());
            let (up_reset, down_reset) = (reset.clone(), reset);
            thread::spawn(move || pump(&up, client, server, Direction::Requests, &up_reset));
            thread::spawn(move || pump(&down, s, c, Direction::Replies, &down_reset));
        }
    });
    FaultProxy { addr, shared }
}

impl FaultProxy {
    /// Sets the fault for every connection from now on.
    pub fn set(&self, fault: Fault) {
        *self.shared.fault() = fault;
        self.shared.changed.notify_all();
    }

    /// Resets every client connection (an RST, not a FIN): with a zero
    /// linger, the close of the socket's last descriptor sends one. Both
    /// pumps are woken (a read shut down returns at once) and close theirs.
    pub fn reset(&self) {
        for conn in self.shared.conns.lock().unwrap().drain(..) {
            conn.reset.store(true, Ordering::SeqCst);
            let _ = rustix::net::sockopt::set_socket_linger(&conn.client, Some(Duration::ZERO));
            let _ = conn.client.shutdown(Shutdown::Read);
            let _ = conn.server.shutdown(Shutdown::Read);
        }
        self.shared.changed.notify_all();
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Requests,
    Replies,
}

/// Relays `from` to `to` under the current fault, until either side ends.
fn pump(
    shared: &Shared,
    mut from: TcpStream,
    mut to: TcpStream,
    way: Direction,
    reset: &AtomicBool,
) {
    let mut buf = [0u8; 4096];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // A stalled direction holds what it read and reads no more, so
        // the sender's buffers fill.
        let fault = {
            let mut fault = shared.fault();
            while stalled(*fault, way) && !reset.load(Ordering::SeqCst) {
                fault = shared
                    .changed
                    .wait(fault)
                    .unwrap_or_else(|p| p.into_inner());
            }
            *fault
        };
        let chunk = &buf[..n];
        let sent = match fault {
            Fault::BlackHole => Ok(()),
            Fault::Delay(d) => {
                thread::sleep(d);
                to.write_all(chunk)
            }
            Fault::TruncateReply if way == Direction::Replies => {
                let _ = to.write_all(&chunk[..n / 2]);
                break;
            }
            _ => to.write_all(chunk),
        };
        if sent.is_err() {
            break;
        }
    }
    // A FIN (shutdown) would come before the reset's RST: just close.
    if !reset.load(Ordering::SeqCst) {
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    }
}

fn stalled(fault: Fault, way: Direction) -> bool {
    matches!(
        (fault, way),
        (Fault::StallRequests, Direction::Requests) | (Fault::StallReplies, Direction::Replies)
    )
}
