//! One TCP connection over `wasi:sockets`, optionally with TLS over it
//! ([`crate::tls`] turns plaintext into records; this module moves the
//! bytes): connect and handshake with a deadline (blocking, under the
//! reactor); then, without blocking, queue bytes and write what the socket
//! takes, and collect a reply line.
//!
//! A connection that failed (I/O error, protocol violation, client-side
//! timeout) is closed at once and stays failed: every later call returns the
//! same error, so an out-of-step connection can never be reused.

use std::net::IpAddr;

use wasip2::io::poll::Pollable;
use wasip2::io::streams::{InputStream, OutputStream, StreamError};
use wasip2::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress, Network,
};
use wasip2::sockets::tcp::TcpSocket;
use wasip2::sockets::{instance_network, ip_name_lookup, tcp_create_socket};

use super::clock;
use crate::protocol::{Error, LineReader, Request, MAX_REPLY};
use crate::settings::{check_server, ConnectSettings, Server, TlsOptions, Trust};
use crate::time::Instant;
use crate::tls::{Incoming, TlsSession, TlsSettings};

/// Where and how to connect, checked: the server, the connect settings,
/// and the rustls configuration built from them once.
#[derive(Debug, Clone)]
pub struct Dial {
    server: Server,
    settings: ConnectSettings,
    tls: Option<TlsSettings>,
}

impl Dial {
    /// Checks the server entry and builds the TLS configuration:
    /// `invalid-argument` for a bad host, port or PEM, before any connection.
    pub fn new(server: Server, settings: ConnectSettings) -> Result<Self, Error> {
        check_server(&server)?;
        let tls = settings.tls.clone().map(TlsSettings::new).transpose()?;
        Ok(Dial {
            server,
            settings,
            tls,
        })
    }
}

/// The open streams, and the TLS session over them. Field order is drop
/// order: streams before their socket.
struct Open {
    tls: Option<TlsSession>,
    input: InputStream,
    output: OutputStream,
    _socket: TcpSocket,
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
    /// The address connected to, for [`Conn::explain_early_close`].
    peer: (IpAddr, u16),
}

impl Conn {
    /// Resolves, connects, does the TLS handshake and (with a token)
    /// authenticates, all before one deadline.
    pub fn connect(dial: &Dial) -> Result<Self, Error> {
        let (server, settings) = (&dial.server, &dial.settings);
        let deadline = clock::after_ms(settings.timeout_ms);
        let network = instance_network::instance_network();
        let addrs = resolve(&network, &server.host, deadline)?;
        let mut last = Error::Connection(format!("no address found for {}", server.host));
        for ip in addrs {
            match connect_one(&network, ip, server.port, deadline) {
                Ok(open) => {
                    let mut conn = Conn {
                        open: Ok(open),
                        reader: LineReader::new(MAX_REPLY),
                        out: Vec::new(),
                        replied: false,
                        peer: (ip, server.port),
                    };
                    if let Some(tls) = &dial.tls {
                        conn.handshake(tls.session(&server.host)?, deadline)?;
                    }
                    if let Some(token) = &settings.auth_token {
                        let line = conn.round_trip(&Request::Auth { token }, deadline)?;
                        crate::protocol::reply::decode_ok(
                            &line,
                            crate::protocol::reply::ErrorContext::Request,
                        )
                        .map_err(|e| conn.fail_if(e))?;
                    }
                    return Ok(conn);
                }
                Err(e @ Error::Timeout) => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Runs the TLS handshake to its end, running the reactor while it
    /// waits; every failure is `tls` naming the reason.
    fn handshake(&mut self, session: TlsSession, deadline: Instant) -> Result<(), Error> {
        if let Ok(open) = self.open.as_mut() {
            open.tls = Some(session);
        }
        let result = (|| loop {
            let open = self.open.as_mut().map_err(|e| e.clone())?;
            let Some(tls) = open.tls.as_mut() else {
                return Ok(());
            };
            let out = tls.take_outgoing();
            let handshaking = tls.is_handshaking();
            write_all(&open.output, &out, deadline)?;
            if !handshaking {
                return Ok(());
            }
            if self.read_available()? == 0 {
                if clock::now() >= deadline {
                    return Err(Error::Timeout);
                }
                let readable = self.readable();
                super::reactor::wait(readable.as_ref().as_slice(), deadline);
            }
        })();
        result.map_err(|e| {
            let e = match e {
                Error::Timeout => {
                    Error::Tls("no TLS answer within the connect timeout (a plain server?)".into())
                }
                Error::Connection(why) => Error::Tls(format!(
                    "the connection ended during the TLS handshake ({why}): a plain server, \
                     or one that wants a client certificate?"
                )),
                other => other,
            };
            self.fail(e)
        })
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

    /// Validates and writes one request (encrypted under TLS), waiting
    /// (under the reactor) for buffer space until `deadline`.
    pub fn send(&mut self, request: &Request, deadline: Instant) -> Result<(), Error> {
        let mut frame = Vec::new();
        request.encode(&mut frame)?;
        self.queue(&frame)?;
        loop {
            let writable = match self.flush() {
                Ok(None) => return Ok(()),
                Ok(Some(writable)) => writable,
                Err(e) => return Err(e),
            };
            if clock::now() >= deadline {
                return Err(self.fail(Error::Timeout));
            }
            super::reactor::wait(&[&writable], deadline);
        }
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

    /// Sends `request` and blocks (servicing other leases) until its reply line.
    pub fn round_trip(&mut self, request: &Request, deadline: Instant) -> Result<String, Error> {
        self.send(request, deadline)?;
        self.wait_line(deadline)
    }

    /// Blocks until the reply line, running the reactor; times out at `deadline`.
    pub fn wait_line(&mut self, deadline: Instant) -> Result<String, Error> {
        loop {
            match self.poll_line() {
                Ok(Some(line)) => return Ok(line),
                Ok(None) => {}
                Err(e) => return Err(self.explain_early_close(e, deadline)),
            }
            if clock::now() >= deadline {
                return Err(self.fail(Error::Timeout));
            }
            let readable = self.readable();
            super::reactor::wait(readable.as_ref().as_slice(), deadline);
        }
    }
}

impl Conn {
    /// A plain connection the server closed before its first reply: a TLS
    /// server does that (it closes without a word when the first bytes are
    /// no TLS record), and so does one at its `--max-connections`. To tell
    /// them apart, one more connection offers a TLS ClientHello: a TLS
    /// record back means the server speaks TLS, which is then the error.
    pub fn explain_early_close(&mut self, error: Error, deadline: Instant) -> Error {
        let plain = self.open.as_ref().map_or(true, |open| open.tls.is_none());
        if self.replied || !plain || !matches!(error, Error::Connection(_)) {
            return error;
        }
        let probe_until = deadline.min(clock::after_ms(TLS_PROBE_MS));
        if speaks_tls(self.peer, probe_until) {
            return self.fail(Error::Tls(
                "the server speaks TLS: set tls in the connect options".into(),
            ));
        }
        let Error::Connection(why) = error else {
            return error;
        };
        Error::Connection(format!(
            "the server closed the connection before its first reply ({why}); it does not \
             speak TLS either: is it at its --max-connections?"
        ))
    }
}

/// How long the TLS probe of [`Conn::explain_early_close`] may take.
const TLS_PROBE_MS: u64 = 2_000;

/// The first read of a burst asks for little: wasmtime-wasi zeroes a host
/// buffer of the size asked on every read (a 64 KiB memset per read was 8 %
/// of a lock round trip's CPU), and a reply is one line of a few dozen bytes.
const FIRST_READ: u64 = 4 * 1024;
/// A read that filled [`FIRST_READ`] is followed by bigger ones (stats, TLS).
const BULK_READ: u64 = 64 * 1024;

/// Whether the server at `peer` answers a ClientHello with a TLS record.
fn speaks_tls(peer: (IpAddr, u16), deadline: Instant) -> bool {
    let network = instance_network::instance_network();
    let Ok(open) = connect_one(&network, peer.0, peer.1, deadline) else {
        return false;
    };
    let hello = TlsSettings::new(TlsOptions {
        trust: Trust::MozillaRoots,
        server_name: None,
        client_cert: None,
    })
    .and_then(|settings| settings.session("probe.invalid"))
    .map(|mut session| session.take_outgoing());
    let Ok(hello) = hello else { return false };
    if write_all(&open.output, &hello, deadline).is_err() {
        return false;
    }
    let mut head = Vec::new();
    while head.len() < 2 {
        match open.input.read(2) {
            Ok(bytes) if bytes.is_empty() => {
                if clock::now() >= deadline {
                    return false;
                }
                super::reactor::wait(&[&open.input.subscribe()], deadline);
            }
            Ok(bytes) => head.extend_from_slice(&bytes),
            Err(_) => return false,
        }
    }
    // A TLS record header: handshake (22) or alert (21), version 3.x.
    matches!(head[..2], [21 | 22, 3])
}

/// Writes from the front of `queue` what the socket takes now, never
/// waiting; what it took leaves the queue.
fn write_some(output: &OutputStream, queue: &mut Vec<u8>) -> Result<(), Error> {
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

/// Writes all of `bytes`, waiting (running the reactor) for buffer space
/// until `deadline`.
fn write_all(output: &OutputStream, mut bytes: &[u8], deadline: Instant) -> Result<(), Error> {
    if bytes.is_empty() {
        return Ok(());
    }
    while !bytes.is_empty() {
        let permit = output.check_write().map_err(stream_error)?;
        if permit == 0 {
            wait_for(&output.subscribe(), deadline)?;
            continue;
        }
        let n = bytes
            .len()
            .min(usize::try_from(permit).unwrap_or(usize::MAX));
        output.write(&bytes[..n]).map_err(stream_error)?;
        bytes = &bytes[n..];
    }
    output.flush().map_err(stream_error)
}

fn stream_error(e: StreamError) -> Error {
    match e {
        StreamError::Closed => Error::Connection("the server closed the connection".into()),
        StreamError::LastOperationFailed(e) => Error::Connection(e.to_debug_string()),
    }
}

/// Waits (running the reactor) for one pollable or the deadline; `Timeout` after it.
fn wait_for(pollable: &Pollable, deadline: Instant) -> Result<(), Error> {
    super::reactor::wait(&[pollable], deadline);
    if !pollable.ready() && clock::now() >= deadline {
        return Err(Error::Timeout);
    }
    Ok(())
}

fn resolve(network: &Network, host: &str, deadline: Instant) -> Result<Vec<IpAddr>, Error> {
    let literal = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let stream = ip_name_lookup::resolve_addresses(network, host)
        .map_err(|e| net_error("resolving the host", e))?;
    let mut addrs = Vec::new();
    loop {
        match stream.resolve_next_address() {
            Ok(Some(addr)) => addrs.push(to_std(addr)),
            Ok(None) => return Ok(addrs),
            Err(ErrorCode::WouldBlock) => wait_for(&stream.subscribe(), deadline)?,
            Err(e) => return Err(net_error("resolving the host", e)),
        }
    }
}

fn connect_one(network: &Network, ip: IpAddr, port: u16, deadline: Instant) -> Result<Open, Error> {
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
    socket
        .start_connect(network, addr)
        .map_err(|e| net_error("connecting", e))?;
    loop {
        match socket.finish_connect() {
            Ok((input, output)) => {
                return Ok(Open {
                    tls: None,
                    input,
                    output,
                    _socket: socket,
                })
            }
            Err(ErrorCode::WouldBlock) => wait_for(&socket.subscribe(), deadline)?,
            Err(e) => return Err(net_error("connecting", e)),
        }
    }
}

fn to_std(addr: wasip2::sockets::network::IpAddress) -> IpAddr {
    use wasip2::sockets::network::IpAddress;
    match addr {
        IpAddress::Ipv4((a, b, c, d)) => IpAddr::from([a, b, c, d]),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => IpAddr::from([a, b, c, d, e, f, g, h]),
    }
}

fn net_error(what: &str, code: ErrorCode) -> Error {
    Error::Connection(format!("{what}: {code:?}"))
}
