//! One TCP connection over `wasi:sockets`: connect with a deadline, write a
//! request, collect a reply line without blocking.
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
use crate::settings::{ConnectSettings, Server};

/// The open streams. Field order is drop order: streams before their socket.
struct Open {
    input: InputStream,
    output: OutputStream,
    _socket: TcpSocket,
}

/// A connection to one server.
pub struct Conn {
    open: Result<Open, Error>,
    reader: LineReader,
}

impl Conn {
    /// Resolves, connects and (with a token) authenticates before `deadline`.
    pub fn connect(server: &Server, settings: &ConnectSettings) -> Result<Self, Error> {
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
                    };
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

    /// Closes the connection; later calls fail with `reason`.
    pub fn fail(&mut self, reason: Error) -> Error {
        if self.open.is_ok() {
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

    /// Validates and writes one request, waiting for buffer space until `deadline`.
    pub fn send(&mut self, request: &Request, deadline: u64) -> Result<(), Error> {
        let mut frame = Vec::new();
        request.encode(&mut frame)?;
        self.write_all(&frame, deadline)
            .map_err(|e| self.fail_if(e))
    }

    fn write_all(&mut self, mut bytes: &[u8], deadline: u64) -> Result<(), Error> {
        let open = self.open.as_ref().map_err(Clone::clone)?;
        while !bytes.is_empty() {
            let permit = open.output.check_write().map_err(stream_error)?;
            if permit == 0 {
                wait_for(&open.output.subscribe(), deadline)?;
                continue;
            }
            let n = bytes
                .len()
                .min(usize::try_from(permit).unwrap_or(usize::MAX));
            open.output.write(&bytes[..n]).map_err(stream_error)?;
            bytes = &bytes[n..];
        }
        open.output.flush().map_err(stream_error)
    }

    /// Reads what has arrived, without blocking; the reply line once complete.
    pub fn poll_line(&mut self) -> Result<Option<String>, Error> {
        let result = self.read_available();
        result
            .and_then(|()| self.reader.take_line())
            .map_err(|e| self.fail_if(e))
    }

    fn read_available(&mut self) -> Result<(), Error> {
        let open = self.open.as_ref().map_err(Clone::clone)?;
        loop {
            match open.input.read(64 * 1024) {
                Ok(bytes) if bytes.is_empty() => return Ok(()),
                Ok(bytes) => self.reader.push(&bytes),
                Err(e) => return Err(stream_error(e)),
            }
        }
    }

    /// Whether this connection, idle between requests, can carry the next
    /// one: nothing may be waiting to be read. A server that closed it
    /// meanwhile (restarted, or its idle read timeout) shows here as EOF, and
    /// stray bytes mean it is out of step; either way it is failed, so the
    /// caller opens a fresh one instead of sending into a dead socket.
    pub fn is_reusable(&mut self) -> bool {
        match self.poll_line() {
            Ok(None) if self.reader.is_empty() => true,
            Ok(_) => {
                self.fail(Error::Protocol("unsolicited bytes from the server".into()));
                false
            }
            Err(_) => false,
        }
    }

    /// A pollable ready when bytes (or EOF) can be read. `None` once failed.
    pub fn readable(&self) -> Option<Pollable> {
        self.open.as_ref().ok().map(|open| open.input.subscribe())
    }

    /// Sends `request` and blocks (servicing other leases) until its reply line.
    pub fn round_trip(&mut self, request: &Request, deadline: u64) -> Result<String, Error> {
        self.send(request, deadline)?;
        self.wait_line(deadline)
    }

    /// Blocks until the reply line, running the reactor; times out at `deadline`.
    pub fn wait_line(&mut self, deadline: u64) -> Result<String, Error> {
        loop {
            if let Some(line) = self.poll_line()? {
                return Ok(line);
            }
            if clock::now() >= deadline {
                return Err(self.fail(Error::Timeout));
            }
            super::reactor::wait(self.readable().as_ref(), deadline);
        }
    }
}

fn stream_error(e: StreamError) -> Error {
    match e {
        StreamError::Closed => Error::Connection("the server closed the connection".into()),
        StreamError::LastOperationFailed(e) => Error::Connection(e.to_debug_string()),
    }
}

/// Waits (running the reactor) for one pollable or the deadline; `Timeout` after it.
fn wait_for(pollable: &Pollable, deadline: u64) -> Result<(), Error> {
    super::reactor::wait(Some(pollable), deadline);
    if !pollable.ready() && clock::now() >= deadline {
        return Err(Error::Timeout);
    }
    Ok(())
}

fn resolve(network: &Network, host: &str, deadline: u64) -> Result<Vec<IpAddr>, Error> {
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

fn connect_one(network: &Network, ip: IpAddr, port: u16, deadline: u64) -> Result<Open, Error> {
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
