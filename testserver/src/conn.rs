//! One client connection: the optional TLS handshake and `auth`, then
//! request after request, each answered before the next is read (as
//! dflockd does: a connection waiting in `l` or `w` reads nothing else).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

use crate::log;
use crate::manager::{Acquired, Target, WaitStart};
use crate::server::Shared;
use crate::wire::{self, Reply, Request, Space, MAX_AUTH_LINE_V2, MAX_LINE};
use crate::Dialect;

/// Serves one accepted connection until it ends; its slots and queue
/// places are cleaned up however it ends (also when the task is aborted).
pub(crate) async fn accept(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    id: u64,
    shared: Arc<Shared>,
) {
    let _leave = Leave {
        shared: shared.clone(),
        id,
    };
    shared.unpaused().await;
    let Some(acceptor) = tls else {
        return serve(stream, id, shared).await;
    };
    // dflockd's TLS listener closes a connection whose first record is no
    // TLS handshake without a word (no alert).
    let read_timeout = shared.opts.read_timeout;
    let mut first = [0u8; 1];
    match timeout(read_timeout, stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] == 0x16 => {}
        _ => return,
    }
    if let Ok(Ok(tls)) = timeout(read_timeout, acceptor.accept(stream)).await {
        serve(tls, id, shared).await;
    }
}

/// Runs when a connection's task ends, however it ends.
struct Leave {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Leave {
    fn drop(&mut self) {
        self.shared.connections.fetch_sub(1, Ordering::SeqCst);
        let opts = &self.shared.opts;
        // v1 skips the whole clean-up without auto-release; v2 (1.15 and
        // later) always drops the queue places and keeps only the slots.
        let release = opts.auto_release_on_disconnect;
        if release || opts.dialect == Dialect::V2 {
            self.shared
                .table()
                .disconnect(self.id, release, Instant::now());
        }
    }
}

enum ReadError {
    /// The client closed (or reset) the connection: end quietly.
    Closed,
    /// Three lines that are no request: `error`, the connection goes on.
    Refused(String),
    /// A read timeout or a line over the cap: `error`, then close.
    Fatal(&'static str),
}

struct Conn<S> {
    io: BufReader<S>,
    id: u64,
    shared: Arc<Shared>,
    line: Vec<u8>,
    out: Vec<u8>,
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(stream: S, id: u64, shared: Arc<Shared>) {
    let mut conn = Conn {
        io: BufReader::with_capacity(4096, stream),
        id,
        shared,
        line: Vec::with_capacity(MAX_LINE),
        out: Vec::with_capacity(64),
    };
    if let Some(secret) = conn.shared.opts.auth_token.clone() {
        match conn.read_request().await {
            Ok(Request::Auth { token }) if token.as_bytes() == secret.as_bytes() => {
                if conn.write(&Reply::Ok).await.is_err() {
                    return;
                }
            }
            Err(ReadError::Closed) => return,
            _ => {
                log::warn("auth failed", &[("conn_id", &id.to_string())]);
                let _ = conn.write(&Reply::Error(Some("auth"))).await;
                // dflockd slows down guessing before it closes.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return;
            }
        }
    }
    loop {
        let request = match conn.read_request().await {
            Ok(request) => request,
            Err(ReadError::Closed) => return,
            Err(ReadError::Refused(why)) => {
                log::warn("protocol error", &[("err", &why)]);
                if conn.write(&Reply::Error(None)).await.is_err() {
                    return;
                }
                continue;
            }
            Err(ReadError::Fatal(why)) => {
                log::warn("protocol error", &[("err", why)]);
                let _ = conn.write(&Reply::Error(None)).await;
                return;
            }
        };
        conn.shared.unpaused().await;
        if conn.shared.opts.dialect == Dialect::V2 && conn.shared.is_draining() {
            // dflockd 1.16 and later: every request after a shutdown began
            // is answered `error_draining`, and the connection closed.
            let _ = conn.write(&Reply::Error(Some("draining"))).await;
            return;
        }
        let reply = conn.handle(request).await;
        conn.shared.unpaused().await;
        if conn.write(&reply).await.is_err() {
            return;
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    async fn read_request(&mut self) -> Result<Request, ReadError> {
        let dialect = self.shared.opts.dialect;
        let cmd = self.read_line(MAX_LINE).await?;
        let key = self.read_line(MAX_LINE).await?;
        let arg_cap = match (dialect, cmd.as_str()) {
            (Dialect::V2, "auth") => MAX_AUTH_LINE_V2,
            _ => MAX_LINE,
        };
        let arg = self.read_line(arg_cap).await?;
        let default_lease = self.shared.opts.default_lease_ttl;
        wire::parse(&cmd, &key, &arg, default_lease, dialect)
            .map_err(|refused| ReadError::Refused(refused.0))
    }

    async fn read_line(&mut self, cap: usize) -> Result<String, ReadError> {
        let read = read_capped_line(&mut self.io, &mut self.line, cap);
        match timeout(self.shared.opts.read_timeout, read).await {
            Err(_) => Err(ReadError::Fatal("read timeout")),
            Ok(Err(e)) => Err(e),
            Ok(Ok(())) => {
                let text = String::from_utf8_lossy(&self.line);
                Ok(text.trim_end_matches('\r').to_string())
            }
        }
    }

    async fn write(&mut self, reply: &Reply) -> std::io::Result<()> {
        self.out.clear();
        reply.encode(&mut self.out);
        let stream = self.io.get_mut();
        let write = async {
            stream.write_all(&self.out).await?;
            stream.flush().await
        };
        match self.shared.opts.write_timeout {
            d if d.is_zero() => write.await,
            d => timeout(d, write)
                .await
                .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into())),
        }
    }

    async fn handle(&mut self, request: Request) -> Reply {
        let now = Instant::now();
        match request {
            // `auth` after the handshake, or to a server without a token:
            // dflockd knows it only as the handshake.
            Request::Auth { .. } => Reply::Error(None),
            Request::Ping => Reply::Ok,
            Request::Stats => {
                let connections = self.shared.connections.load(Ordering::SeqCst);
                let stats = self.shared.table().stats(connections, now);
                match serde_json::to_string(&stats) {
                    Ok(json) => Reply::OkWith(json),
                    Err(_) => Reply::Error(None),
                }
            }
            Request::Acquire {
                space,
                key,
                timeout,
                lease,
                limit,
            } => {
                self.acquire(self.target(space, &key), timeout, lease, limit, now)
                    .await
            }
            Request::Release { space, key, token } => {
                match self.shared.table().release(space, &key, &token, now) {
                    true => Reply::Ok,
                    false => Reply::Error(None),
                }
            }
            Request::Renew {
                space,
                key,
                token,
                lease,
            } => match self.shared.table().renew(space, &key, &token, lease, now) {
                Some(seconds) => Reply::OkWith(seconds.to_string()),
                None => Reply::Error(None),
            },
            Request::Enqueue {
                space,
                key,
                lease,
                limit,
            } => {
                let at = self.target(space, &key);
                match self.shared.table().enqueue(at, lease, limit, now) {
                    Err(refusal) => Reply::Error(refusal),
                    Ok(None) => Reply::Queued,
                    Ok(Some(token)) => Reply::granted(token, lease, true),
                }
            }
            Request::Wait {
                space,
                key,
                timeout,
            } => self.wait(space, key, timeout, now).await,
        }
    }

    /// What this connection asks about.
    fn target<'k>(&self, space: Space, key: &'k str) -> Target<'k> {
        Target {
            conn: self.id,
            space,
            key,
        }
    }

    /// `l`/`sl`: a slot now, or a place in the queue and a wait for it.
    async fn acquire(
        &mut self,
        at: Target<'_>,
        timeout: Duration,
        lease: Duration,
        limit: u32,
        now: Instant,
    ) -> Reply {
        let may_wait = !timeout.is_zero();
        let acquired = self.shared.table().acquire(at, lease, limit, may_wait, now);
        let mut pending = match acquired {
            Err(refusal) => return Reply::Error(refusal),
            Ok(Acquired::Now(token)) => return Reply::granted(token, lease, false),
            Ok(Acquired::NotNow) => return Reply::Timeout,
            Ok(Acquired::Queued(pending)) => pending,
        };
        match self.wait_for(&mut pending.rx, timeout).await {
            Waited::Granted(token) => {
                self.shared.table().touch(at, Instant::now());
                Reply::granted(token, lease, false)
            }
            Waited::GaveUp(draining) => {
                let taken = self
                    .shared
                    .table()
                    .give_up(at, &mut pending, Instant::now());
                match taken {
                    Some(token) => Reply::granted(token, lease, false),
                    None => self.gave_up(draining),
                }
            }
            Waited::Closed => Reply::Error(None),
        }
    }

    /// `w`/`sw`.
    async fn wait(&mut self, space: Space, key: String, timeout: Duration, now: Instant) -> Reply {
        let at = self.target(space, &key);
        let started = self.shared.table().wait_start(at, now);
        let mut pending = match started {
            Err(refusal) => return Reply::Error(refusal),
            Ok(WaitStart::Now(token, lease)) => return Reply::granted(token, lease, false),
            Ok(WaitStart::Pending(pending)) => pending,
        };
        let waited = if timeout.is_zero() {
            Waited::GaveUp(false)
        } else {
            self.wait_for(&mut pending.rx, timeout).await
        };
        let (got, draining) = match waited {
            Waited::Granted(token) => (Some(token), false),
            Waited::GaveUp(draining) => (None, draining),
            Waited::Closed => (None, false),
        };
        let taken = self
            .shared
            .table()
            .wait_end(at, &mut pending, got, Instant::now());
        match taken {
            Some(token) => Reply::granted(token, pending.lease, false),
            None => self.gave_up(draining),
        }
    }

    /// Waits for a grant, the timeout, or the start of a shutdown.
    /// In v2 (dflockd 1.15 and later) a client that closes its connection
    /// gives the wait up at once; v1 notices only when the wait ends.
    async fn wait_for(&mut self, rx: &mut oneshot::Receiver<String>, limit: Duration) -> Waited {
        let mut draining = self.shared.draining.subscribe();
        let watch_peer = self.shared.opts.dialect == Dialect::V2;
        let io = &mut self.io;
        tokio::select! {
            granted = rx => match granted {
                Ok(token) => Waited::Granted(token),
                Err(_) => Waited::Closed,
            },
            _ = tokio::time::sleep(limit) => Waited::GaveUp(false),
            _ = draining.wait_for(|d| *d) => Waited::GaveUp(true),
            _ = peer_closed(io), if watch_peer => Waited::GaveUp(false),
        }
    }

    /// The reply of a wait that ended without a grant: `timeout`, or plain
    /// `error` when a shutdown ended it (both dialects: dflockd cancels the
    /// wait's context; v2 answers the connection's next request
    /// `error_draining`).
    fn gave_up(&self, draining: bool) -> Reply {
        if draining {
            Reply::Error(None)
        } else {
            Reply::Timeout
        }
    }
}

enum Waited {
    Granted(String),
    /// Timed out, or (`true`) a shutdown began.
    GaveUp(bool),
    /// The grant channel closed unsent (the waiter was removed).
    Closed,
}

/// Returns when the peer has closed (or reset) the connection; never if it
/// sends bytes instead (they stay buffered for the next request).
async fn peer_closed<R: AsyncBufRead + Unpin>(reader: &mut R) {
    match reader.fill_buf().await {
        Ok([]) | Err(_) => {}
        Ok(_) => std::future::pending().await,
    }
}

/// Reads one `\n`-terminated line into `line` (without the `\n`). A line
/// over `cap` bytes is read to its end and refused as fatal.
async fn read_capped_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
    cap: usize,
) -> Result<(), ReadError> {
    line.clear();
    let mut too_long = false;
    loop {
        let buf = reader.fill_buf().await.map_err(|_| ReadError::Closed)?;
        if buf.is_empty() {
            return Err(ReadError::Closed);
        }
        let newline = buf.iter().position(|&b| b == b'\n');
        let chunk = &buf[..newline.unwrap_or(buf.len())];
        if line.len() + chunk.len() > cap {
            too_long = true;
            line.clear();
        } else if !too_long {
            line.extend_from_slice(chunk);
        }
        let used = newline.map_or(buf.len(), |i| i + 1);
        reader.consume(used);
        if newline.is_some() {
            return if too_long {
                Err(ReadError::Fatal("line too long"))
            } else {
                Ok(())
            };
        }
    }
}
