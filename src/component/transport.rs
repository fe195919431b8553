//! One TCP connection over `wasi:sockets`, optionally with TLS over it
//! ([`crate::tls`] turns plaintext into records; this module moves the
//! bytes): the sockets, the TLS handshake a step at a time (the order of
//! the steps is `dial`'s), and, without blocking, queueing bytes, writing
//! what the socket takes, and collecting a reply line.
//!
//! A connection that failed (I/O error, protocol violation, client-side
//! timeout) is closed at once and stays failed: every later call returns the
//! same error, so an out-of-step connection can never be reused.

use std::net::IpAddr;

use wasip2::io::poll::Pollable;
use wasip2::io::streams::{InputStream, OutputStream, StreamError};
use wasip2::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};
use wasip2::sockets::tcp::TcpSocket;
use wasip2::sockets::{instance_network, tcp_create_socket};

use crate::protocol::{Error, LineReader, MAX_REPLY};
use crate::tls::{Incoming, TlsSession};

/// The open streams, and the TLS session over them. Field order is drop
/// order: streams before their socket.
pub(super) struct Open {
    pub(super) tls: Option<TlsSession>,
    pub(super) input: InputStream,
    pub(super) output: OutputStream,
    pub(super) _socket: TcpSocket,
}

/// A connection to one server.
pub struct Conn {
    open: Result<Open, Error>,
    reader: LineReader,
    /// Bytes queued for the socket (encrypted, under TLS) that it has not
    /// taken yet.
    out: Vec<u8>,
    /// Whether a whole reply line has arrived yet (to explain an early close).
    replied: bool,
    /// The address connected to, for [`Conn::closed_before_reply`].
    peer: (IpAddr, u16),
}

impl Conn {
    /// A connection over freshly opened streams.
    pub(super) fn over(open: Open, peer: (IpAddr, u16)) -> Self {
        Conn {
            open: Ok(open),
            reader: LineReader::new(MAX_REPLY),
            out: Vec::new(),
            replied: false,
            peer,
        }
    }

    /// Starts TLS over the connection (see [`Conn::handshake_step`]).
    pub(super) fn start_tls(&mut self, session: TlsSession) {
        if let Ok(open) = self.open.as_mut() {
            open.tls = Some(session);
        }
    }

    /// Takes the TLS handshake as far as it goes without waiting: queues
    /// and writes what rustls has to send, feeds it what arrived. `true`
    /// once the handshake is over (its last bytes may still be queued: the
    /// next write goes after them). Any failure closes the connection.
    pub(super) fn handshake_step(&mut self) -> Result<bool, Error> {
        loop {
            let open = self.open.as_mut().map_err(|e| e.clone())?;
            let Some(tls) = open.tls.as_mut() else {
                return Ok(true);
            };
            let outgoing = tls.take_outgoing();
            let handshaking = tls.is_handshaking();
            self.out.extend(outgoing);
            self.flush()?;
            if !handshaking {
                return Ok(true);
            }
            match self.read_available() {
                Ok(0) => return Ok(false),
                Ok(_) => {}
                Err(e) => return Err(self.fail(e)),
            }
        }
    }

    /// Closes the connection; later calls fail with `reason`.
    pub fn fail(&mut self, reason: Error) -> Error {
        if let Ok(open) = self.open.as_mut() {
            // Best effort: the alert rustls queued tells the server why.
            if let Some(tls) = open.tls.as_mut() {
                let alert = tls.take_outgoing();
                if let Ok(permit) = open.output.check_write() {
                    let n = alert.len().min(usize::try_from(permit).unwrap_or(0));
                    let _ = open.output.write(&alert[..n]);
                    let _ = open.output.flush();
                }
            }
            self.open = Err(reason.clone());
        }
        reason
    }

    /// Closes the connection if `error` means it is out of step; returns `error`.
    pub fn fail_if(&mut self, error: Error) -> Error {
        if error.breaks_connection() {
            self.fail(error.clone());
        }
        error
    }

    /// Queues `plain` for the socket (encrypting it under TLS); nothing
    /// is written yet: see [`Conn::flush`].
    pub fn queue(&mut self, plain: &[u8]) -> Result<(), Error> {
        let open = self.open.as_mut().map_err(|e| e.clone())?;
        match open.tls.as_mut() {
            None => self.out.extend_from_slice(plain),
            Some(tls) => {
                let written = tls.write_plain(plain);
                if let Err(e) = written {
                    return Err(self.fail(e));
                }
                self.out.extend(tls.take_outgoing());
            }
        }
        Ok(())
    }

    /// Writes as much of the queue as the socket takes now, never waiting.
    /// `Ok(None)` when all is written; otherwise a pollable that is ready
    /// when the socket takes more.
    pub fn flush(&mut self) -> Result<Option<Pollable>, Error> {
        if self.out.is_empty() {
            return Ok(None);
        }
        let written = match self.open.as_mut() {
            Ok(open) => write_some(&open.output, &mut self.out),
            Err(e) => Err(e.clone()),
        };
        match written {
            Ok(()) if self.out.is_empty() => Ok(None),
            Ok(()) => Ok(self.open.as_ref().ok().map(|o| o.output.subscribe())),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Whether queued bytes wait for room in the socket.
    pub fn has_queued(&self) -> bool {
        !self.out.is_empty()
    }

    /// A pollable ready when the socket takes more, while bytes are queued.
    pub fn writable(&self) -> Option<Pollable> {
        if self.out.is_empty() {
            return None;
        }
        self.open.as_ref().ok().map(|open| open.output.subscribe())
    }

    /// Reads what has arrived, without blocking; the reply line once complete.
    pub fn poll_line(&mut self) -> Result<Option<String>, Error> {
        if let Err(e) = self.read_available() {
            return Err(self.fail_if(e));
        }
        self.buffered_line()
    }

    /// The next complete line already read, without asking the socket.
    pub fn buffered_line(&mut self) -> Result<Option<String>, Error> {
        let line = self.reader.take_line().map_err(|e| self.fail_if(e))?;
        self.replied |= line.is_some();
        Ok(line)
    }

    /// Moves what the socket has into the line reader (decrypting under
    /// TLS); returns how many bytes the socket gave.
    fn read_available(&mut self) -> Result<usize, Error> {
        let Conn {
            open, reader, out, ..
        } = self;
        let open = open.as_mut().map_err(|e| e.clone())?;
        let mut total = 0;
        let mut ask = FIRST_READ;
        loop {
            let bytes = match open.input.read(ask) {
                Ok(bytes) if bytes.is_empty() => break,
                Ok(bytes) => bytes,
                Err(e) => return Err(stream_error(e)),
            };
            total += bytes.len();
            // Less than asked: the socket is drained for now, and one more
            // read would only come back empty (a wasted syscall per reply).
            let drained = (bytes.len() as u64) < ask;
            ask = BULK_READ;
            match open.tls.as_mut() {
                None => reader.push(&bytes),
                Some(tls) => {
                    let mut plain = Vec::new();
                    let incoming = tls.handle_incoming(&bytes, &mut plain);
                    reader.push(&plain);
                    if incoming? == Incoming::Closed {
                        return Err(Error::Connection(
                            "the server closed the TLS session".into(),
                        ));
                    }
                }
            }
            if drained {
                break;
            }
        }
        // TLS may owe the server records now (alerts, key updates): queued,
        // and written as far as the socket takes them, never waiting.
        if let Some(tls) = open.tls.as_mut() {
            out.extend(tls.take_outgoing());
            write_some(&open.output, out)?;
        }
        Ok(total)
    }

    /// A pollable ready when bytes (or EOF) can be read. `None` once failed.
    pub fn readable(&self) -> Option<Pollable> {
        self.open.as_ref().ok().map(|open| open.input.subscribe())
    }
}

impl Conn {
    /// The peer to probe for TLS when `error` is a plain connection closing
    /// before its first reply line (see `probe`); `None` for anything else.
    pub fn closed_before_reply(&self, error: &Error) -> Option<(IpAddr, u16)> {
        let plain = self.open.as_ref().map_or(true, |open| open.tls.is_none());
        (plain && !self.replied && matches!(error, Error::Connection(_))).then_some(self.peer)
    }
}

/// The first read of a burst asks for little: wasmtime-wasi zeroes a host
/// buffer of the size asked on every read (a 64 KiB memset per read was 8 %
/// of a lock round trip's CPU), and a reply is one line of a few dozen bytes.
const FIRST_READ: u64 = 4 * 1024;
/// A read that filled [`FIRST_READ`] is followed by bigger ones (stats, TLS).
const BULK_READ: u64 = 64 * 1024;

/// Writes from the front of `queue` what the socket takes now, never
/// waiting; what it took leaves the queue.
pub(super) fn write_some(output: &OutputStream, queue: &mut Vec<u8>) -> Result<(), Error> {
    let mut written = 0;
    while written < queue.len() {
        let permit = output.check_write().map_err(stream_error)?;
        if permit == 0 {
            break;
        }
        let n = (queue.len() - written).min(usize::try_from(permit).unwrap_or(usize::MAX));
        output
            .write(&queue[written..written + n])
            .map_err(stream_error)?;
        written += n;
    }
    queue.drain(..written);
    if written > 0 {
        output.flush().map_err(stream_error)?;
    }
    Ok(())
}

fn stream_error(e: StreamError) -> Error {
    match e {
        StreamError::Closed => Error::Connection("the server closed the connection".into()),
        StreamError::LastOperationFailed(e) => Error::Connection(e.to_debug_string()),
    }
}

/// Creates a socket and starts its connect to `ip:port`.
pub fn start_connect(ip: IpAddr, port: u16) -> Result<TcpSocket, Error> {
    let (family, addr) = match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            (
                IpAddressFamily::Ipv4,
                IpSocketAddress::Ipv4(Ipv4SocketAddress {
                    port,
                    address: (o[0], o[1], o[2], o[3]),
                }),
            )
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let address = (s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
            (
                IpAddressFamily::Ipv6,
                IpSocketAddress::Ipv6(Ipv6SocketAddress {
                    port,
                    address,
                    flow_info: 0,
                    scope_id: 0,
                }),
            )
        }
    };
    let socket = tcp_create_socket::create_tcp_socket(family)
        .map_err(|e| net_error("creating a socket", e))?;
    let network = instance_network::instance_network();
    socket
        .start_connect(&network, addr)
        .map_err(|e| net_error("connecting", e))?;
    Ok(socket)
}

/// A socket error as `connection`, saying what was being done: "connecting
/// to 10.0.0.5:6388: connection-refused" (WASI's name of the error).
pub fn net_error(what: &str, code: ErrorCode) -> Error {
    Error::Connection(format!("{what}: {}", code.name()))
}
