//! Opening a connection as a state machine, in the manner of rustls'
//! connection or quinn-proto's handshake: resolve the host, connect to
//! each address in turn, do the TLS handshake, authenticate. Each
//! [`Connecting::step`] goes as far as it can without waiting and says
//! what it waits on ([`Connecting::wakeups`], [`Connecting::deadline`]),
//! so that a caller can wait for it together with everything else the
//! instance does; [`connect`] is the blocking loop over it.

use std::net::IpAddr;

use wasip2::io::poll::Pollable;
use wasip2::sockets::ip_name_lookup::ResolveAddressStream;
use wasip2::sockets::network::ErrorCode;
use wasip2::sockets::tcp::TcpSocket;
use wasip2::sockets::{instance_network, ip_name_lookup};

use super::clock;
use super::probe::Probe;
use super::reactor::Steps;
use super::transport::{net_error, start_connect, Conn, Open};
use crate::protocol::reply::{decode_ok, ErrorContext};
use crate::protocol::{Error, Request};
use crate::settings::{check_server, ConnectSettings, Server};
use crate::time::Instant;
use crate::tls::TlsSettings;

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

/// A connection being opened; all of it before one deadline.
pub struct Connecting {
    dial: Dial,
    deadline: Instant,
    stage: Stage,
    /// Why the last address failed, for when none is left.
    last: Error,
}

/// Where the opening is. Field order in each variant is drop order.
enum Stage {
    /// The host is a name being resolved.
    Resolving(ResolveAddressStream),
    /// A TCP connect to `ip` is under way; `rest` are tried after it.
    Connecting {
        socket: TcpSocket,
        ip: IpAddr,
        rest: Vec<IpAddr>,
    },
    /// Connected; the TLS handshake runs.
    Handshaking(Conn),
    /// The auth request is sent; its reply is awaited.
    Authenticating(Conn),
    /// The server closed before answering it: is it a TLS server?
    Probing(Probe),
    /// Over: [`Connecting::step`] returned the outcome.
    Done,
}

impl Connecting {
    /// Starts opening a connection for `dial`, with its connect timeout from `now`.
    pub fn start(dial: &Dial, now: Instant) -> Self {
        let deadline = now + std::time::Duration::from_millis(dial.settings.timeout_ms);
        let host = &dial.server.host;
        let mut connecting = Connecting {
            dial: dial.clone(),
            deadline,
            stage: Stage::Done,
            last: Error::Connection(format!("no address found for {host}")),
        };
        let literal = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let stage = match literal.parse::<IpAddr>() {
            Ok(ip) => connecting.connect_next(vec![ip]),
            Err(_) => {
                let network = instance_network::instance_network();
                ip_name_lookup::resolve_addresses(&network, host)
                    .map(Stage::Resolving)
                    .map_err(|e| net_error("resolving the host", e))
            }
        };
        connecting.stage = stage.unwrap_or_else(|e| {
            connecting.last = e;
            Stage::Done
        });
        connecting
    }

    /// One step of one stage.
    fn advance(&mut self, stage: Stage, now: Instant) -> Result<Progress, Error> {
        match stage {
            Stage::Done => Err(self.last.clone()),
            Stage::Resolving(stream) => {
                let mut addrs = Vec::new();
                loop {
                    match stream.resolve_next_address() {
                        Ok(Some(addr)) => addrs.push(to_std(addr)),
                        Ok(None) => break,
                        Err(ErrorCode::WouldBlock) if addrs.is_empty() => {
                            return Ok(Progress::Waits(Stage::Resolving(stream)))
                        }
                        // Addresses so far are tried first; the rest would
                        // only be needed if all of them fail, rarely.
                        Err(ErrorCode::WouldBlock) => break,
                        Err(e) => return Err(net_error("resolving the host", e)),
                    }
                }
                drop(stream);
                self.connect_next(addrs).map(Progress::Moved)
            }
            Stage::Connecting { socket, ip, rest } => match socket.finish_connect() {
                Ok((input, output)) => {
                    let open = Open {
                        tls: None,
                        input,
                        output,
                        _socket: socket,
                    };
                    let mut conn = Conn::over(open, (ip, self.dial.server.port));
                    match &self.dial.tls {
                        Some(tls) => {
                            conn.start_tls(tls.session(&self.dial.server.host)?);
                            Ok(Progress::Moved(Stage::Handshaking(conn)))
                        }
                        None => self.authenticate(conn),
                    }
                }
                Err(ErrorCode::WouldBlock) => {
                    Ok(Progress::Waits(Stage::Connecting { socket, ip, rest }))
                }
                Err(e) => {
                    let to = std::net::SocketAddr::new(ip, self.dial.server.port);
                    self.last = net_error(&format!("connecting to {to}"), e);
                    drop(socket);
                    self.connect_next(rest).map(Progress::Moved)
                }
            },
            Stage::Handshaking(mut conn) => {
                if conn
                    .handshake_step()
                    .map_err(|e| conn.fail(handshake_error(e)))?
                {
                    self.authenticate(conn)
                } else {
                    Ok(Progress::Waits(Stage::Handshaking(conn)))
                }
            }
            Stage::Authenticating(mut conn) => match conn.poll_line() {
                Ok(Some(line)) => {
                    decode_ok(&line, ErrorContext::Request).map_err(|e| conn.fail_if(e))?;
                    Ok(Progress::Open(conn))
                }
                Ok(None) => {
                    conn.flush()?;
                    Ok(Progress::Waits(Stage::Authenticating(conn)))
                }
                Err(e) => match Probe::of(&conn, &e, self.deadline) {
                    Some(probe) => Ok(Progress::Moved(Stage::Probing(probe))),
                    None => Err(e),
                },
            },
            Stage::Probing(mut probe) => match probe.step(now) {
                Some(explained) => Err(explained),
                None => Ok(Progress::Waits(Stage::Probing(probe))),
            },
        }
    }

    /// Sends the auth request when there is a token; otherwise it is open.
    fn authenticate(&self, mut conn: Conn) -> Result<Progress, Error> {
        let Some(token) = &self.dial.settings.auth_token else {
            return Ok(Progress::Open(conn));
        };
        let mut frame = Vec::new();
        Request::Auth { token }.encode(&mut frame)?;
        conn.queue(&frame)?;
        conn.flush()?;
        Ok(Progress::Moved(Stage::Authenticating(conn)))
    }

    /// Starts a TCP connect to the first of `addrs` that takes one.
    fn connect_next(&mut self, addrs: Vec<IpAddr>) -> Result<Stage, Error> {
        let mut addrs = addrs.into_iter();
        for ip in addrs.by_ref() {
            match start_connect(ip, self.dial.server.port) {
                Ok(socket) => {
                    let rest = addrs.collect();
                    return Ok(Stage::Connecting { socket, ip, rest });
                }
                Err(e) => self.last = e,
            }
        }
        Err(self.last.clone())
    }

    /// The error of an opening past its deadline, by stage.
    fn time_out(&mut self) -> Error {
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Handshaking(mut conn) => conn.fail(handshake_error(Error::Timeout)),
            Stage::Authenticating(mut conn) => conn.fail(Error::Timeout),
            // Its own deadline is no later: it has decided by now.
            Stage::Probing(mut probe) => probe.step(clock::NEVER).unwrap_or(Error::Timeout),
            _ => Error::Timeout,
        }
    }
}

impl Steps for Connecting {
    type Output = Result<Conn, Error>;

    /// When the whole opening times out.
    fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The pollables of what the current stage waits on.
    fn wakeups(&self, out: &mut Vec<Pollable>) {
        match &self.stage {
            Stage::Resolving(stream) => out.push(stream.subscribe()),
            Stage::Connecting { socket, .. } => out.push(socket.subscribe()),
            Stage::Handshaking(conn) | Stage::Authenticating(conn) => {
                out.extend(conn.readable());
                out.extend(conn.writable());
            }
            Stage::Probing(probe) => probe.wakeups(out),
            Stage::Done => {}
        }
    }

    /// Goes as far as it can without waiting: `Some` with the open
    /// connection or the error once over, `None` while it must wait.
    fn step(&mut self, now: Instant) -> Option<Result<Conn, Error>> {
        loop {
            let stage = std::mem::replace(&mut self.stage, Stage::Done);
            let next = match self.advance(stage, now) {
                Ok(next) => next,
                Err(e) => return Some(Err(e)),
            };
            match next {
                Progress::Open(conn) => return Some(Ok(conn)),
                Progress::Moved(stage) => self.stage = stage,
                Progress::Waits(stage) => {
                    self.stage = stage;
                    return (now >= self.deadline).then(|| Err(self.time_out()));
                }
            }
        }
    }
}

/// What one step did.
enum Progress {
    /// Open: the outcome.
    Open(Conn),
    /// On to another stage, which may go on at once.
    Moved(Stage),
    /// The stage waits for I/O.
    Waits(Stage),
}

/// Every handshake failure is `tls`, naming the likely reason.
fn handshake_error(e: Error) -> Error {
    match e {
        Error::Timeout => {
            Error::Tls("no TLS answer within the connect timeout (a plain server?)".into())
        }
        Error::Connection(why) => Error::Tls(format!(
            "the connection ended during the TLS handshake ({why}): a plain server, \
             or one that wants a client certificate?"
        )),
        other => other,
    }
}

fn to_std(addr: wasip2::sockets::network::IpAddress) -> IpAddr {
    use wasip2::sockets::network::IpAddress;
    match addr {
        IpAddress::Ipv4((a, b, c, d)) => IpAddr::from([a, b, c, d]),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => IpAddr::from([a, b, c, d, e, f, g, h]),
    }
}
