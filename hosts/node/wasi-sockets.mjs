// wasi:sockets (network, instance-network, tcp, tcp-create-socket, ip-name-lookup) on
// node:net and node:dns, for the instance on the application's thread (wasi-io.mjs says
// why nothing here waits). Only what the component imports: a client TCP connection
// (start-connect / finish-connect, then its two streams) and name resolution.
//
// Process lifetime: every socket is unref'd at once. Sockets never keep the process
// alive; the driver does, while a call is in flight (driver.mjs).
import { lookup } from 'node:dns';
import net from 'node:net';
import { InputStream, IoError, OutputStream, Pollable, Signal, SignalPollable, refuseBlocking } from './wasi-io.mjs';

// Node buffers what a socket cannot send yet; past this much, `check-write` says wait.
const WRITE_WINDOW = 1 << 20;
// Past this much unread, the socket stops reading (a reply is a line; stats is bigger).
const READ_HIGH_WATER = 1 << 20;
const EMPTY = new Uint8Array(0);

/** A Node error (`err.code`) as a WIT `error-code`. */
function errorCode(err) {
  switch (err?.code) {
    case 'ECONNREFUSED':
      return 'connection-refused';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'connection-reset';
    case 'ECONNABORTED':
      return 'connection-aborted';
    case 'ETIMEDOUT':
      return 'timeout';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'ENETDOWN':
      return 'remote-unreachable';
    case 'EACCES':
    case 'EPERM':
      return 'access-denied';
    case 'EADDRINUSE':
      return 'address-in-use';
    case 'EADDRNOTAVAIL':
      return 'address-not-bindable';
    case 'EMFILE':
    case 'ENFILE':
      return 'new-socket-limit';
    case 'ENOMEM':
    case 'ENOBUFS':
      return 'out-of-memory';
    case 'EINVAL':
    case 'EAFNOSUPPORT':
      return 'invalid-argument';
    default:
      return 'unknown';
  }
}

/**
 * One net.Socket: its connect, the bytes that arrived (handed out by `read`), and room
 * to write. The source of the input stream and the sink of the output stream.
 */
class Connection {
  connecting = true;
  /** The WIT error-code of a connect that failed. */
  failure = undefined;
  connected = new Signal();
  #readable = new Signal();
  #writable = new Signal();
  #socket;
  #registry;
  #chunks = [];
  #buffered = 0;
  #ended = false;
  #error = null; // what broke the connection once open, for `last-operation-failed`
  #errorTold = false;

  constructor(host, port, family, registry) {
    this.#registry = registry;
    registry.add(this);
    const socket = net.connect({ host, port, family });
    this.#socket = socket;
    socket.setNoDelay(true); // one request line at a time: Nagle would hold each back
    socket.unref();
    socket.on('connect', () => {
      this.connecting = false;
      this.connected.notify();
    });
    socket.on('data', (chunk) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered > READ_HIGH_WATER) socket.pause();
      this.#readable.notify();
    });
    socket.on('end', () => {
      this.#ended = true;
      this.#readable.notify();
    });
    socket.on('drain', () => this.#writable.notify());
    socket.on('error', (err) => {
      if (this.connecting) this.failure = errorCode(err);
      else this.#error ??= `${err.code ?? 'error'}: ${err.message}`;
    });
    socket.on('close', () => {
      this.#ended = true;
      this.#registry.delete(this);
      if (this.connecting) {
        this.connecting = false;
        this.failure ??= 'connection-aborted';
      }
      this.connected.notify();
      this.#readable.notify();
      this.#writable.notify();
    });
  }

  // ---- the input stream ----

  read(len) {
    if (this.#buffered > 0) return this.#take(Number(len));
    this.#throwIfBroken();
    if (this.#ended) throw { tag: 'closed' };
    return EMPTY;
  }

  #take(max) {
    const first = this.#chunks[0];
    let bytes;
    if (first.length <= max) {
      bytes = first;
      this.#chunks.shift();
    } else {
      bytes = first.subarray(0, max);
      this.#chunks[0] = first.subarray(max);
    }
    this.#buffered -= bytes.length;
    if (this.#socket.isPaused() && this.#buffered <= READ_HIGH_WATER) this.#socket.resume();
    return bytes;
  }

  readable() {
    return new SignalPollable(() => this.#buffered > 0 || this.#ended || this.#error !== null, this.#readable);
  }

  // ---- the output stream ----

  checkWrite() {
    this.#throwIfUnwritable();
    return BigInt(Math.max(0, WRITE_WINDOW - this.#socket.writableLength));
  }

  write(bytes) {
    this.#throwIfUnwritable();
    this.#socket.write(bytes);
  }

  flush() {
    this.#throwIfUnwritable(); // Node sends what it buffered by itself
  }

  blockingWriteAndFlush() {
    throw refuseBlocking('wasi:io/streams blocking-write-and-flush on a socket');
  }

  blockingFlush() {
    throw refuseBlocking('wasi:io/streams blocking-flush on a socket');
  }

  writable() {
    const socket = this.#socket;
    const ready = () => this.#error !== null || socket.destroyed || socket.writableLength < WRITE_WINDOW;
    return new SignalPollable(ready, this.#writable);
  }

  // ---- faults and the end ----

  /** The error that broke the connection, once as `last-operation-failed`; then `closed`. */
  #throwIfBroken() {
    if (this.#error === null) return;
    if (this.#errorTold) throw { tag: 'closed' };
    this.#errorTold = true;
    throw { tag: 'last-operation-failed', val: new IoError(this.#error) };
  }

  #throwIfUnwritable() {
    this.#throwIfBroken();
    if (this.#socket.destroyed || this.#socket.writableEnded) throw { tag: 'closed' };
  }

  /** The guest dropped the socket: what is still queued goes out (a TLS alert), then FIN. */
  close() {
    this.#registry.delete(this);
    const socket = this.#socket;
    if (socket.destroyed) return;
    if (socket.writableLength === 0) return void socket.destroy();
    socket.end();
    setTimeout(() => socket.destroy(), 1000).unref(); // a peer that reads nothing more
  }

  /** The instance is gone: close at once. */
  destroy() {
    this.#socket.destroy();
  }
}

/** The WIT socket address as what net.connect takes; `invalid-argument` as WASI says. */
function peerOf(remote, family) {
  if (remote.tag !== family) throw 'invalid-argument';
  const { port, address } = remote.val;
  if (port === 0 || address.every((part) => part === 0)) throw 'invalid-argument';
  const host = family === 'ipv4' ? address.join('.') : address.map((s) => s.toString(16)).join(':');
  return { host, port, family: family === 'ipv4' ? 4 : 6 };
}

/** wasi:sockets/network `network`: the one network there is. */
export class Network {}
const network = new Network();

/** wasi:sockets/tcp `tcp-socket`: a client connection only. */
export class TcpSocket {
  #family;
  #registry;
  #connection = null;
  #state = 'unbound'; // then 'connecting', 'connected' or 'closed'

  constructor(family, registry) {
    this.#family = family;
    this.#registry = registry;
  }

  startConnect(_network, remote) {
    if (this.#state !== 'unbound') throw 'invalid-state';
    const { host, port, family } = peerOf(remote, this.#family);
    this.#connection = new Connection(host, port, family, this.#registry);
    this.#state = 'connecting';
  }

  finishConnect() {
    if (this.#state !== 'connecting') throw 'not-in-progress';
    const connection = this.#connection;
    if (connection.connecting) throw 'would-block';
    if (connection.failure !== undefined) {
      this.#state = 'closed';
      throw connection.failure;
    }
    this.#state = 'connected';
    return [new InputStream(connection), new OutputStream(connection)];
  }

  subscribe() {
    const connection = this.#connection;
    if (connection === null) return new Pollable();
    return new SignalPollable(() => !connection.connecting, connection.connected);
  }

  [Symbol.dispose]() {
    this.#connection?.close();
  }
}

/** An address Node printed, as a WIT `ip-address`. */
function ipAddress(text) {
  if (net.isIPv4(text)) return { tag: 'ipv4', val: text.split('.').map(Number) };
  return { tag: 'ipv6', val: ipv6Segments(text) };
}

/** The eight 16-bit groups of an IPv6 address (`::` expanded, a dotted IPv4 tail split). */
function ipv6Segments(text) {
  const [address] = text.split('%'); // no zone: the WIT address has none (scope-id is 0)
  const groups = (part) =>
    part === ''
      ? []
      : part.split(':').flatMap((g) => {
          if (!g.includes('.')) return [parseInt(g, 16)];
          const [a, b, c, d] = g.split('.').map(Number);
          return [(a << 8) | b, (c << 8) | d];
        });
  const gap = address.indexOf('::');
  if (gap < 0) return groups(address);
  const head = groups(address.slice(0, gap));
  const tail = groups(address.slice(gap + 2));
  return [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
}

/** A dns.lookup failure as a WIT `error-code`. */
function resolveError(err) {
  switch (err.code) {
    case 'ENOTFOUND':
    case 'ENODATA':
    case 'ENONAME':
      return 'name-unresolvable';
    case 'EAI_AGAIN':
    case 'ETIMEOUT':
      return 'temporary-resolver-failure';
    default:
      return 'permanent-resolver-failure';
  }
}

/** wasi:sockets/ip-name-lookup `resolve-address-stream`: one dns.lookup (IP literals at once). */
export class ResolveAddressStream {
  #addresses = null;
  #error = null;
  #done = new Signal();

  constructor(name) {
    if (net.isIP(name)) {
      this.#addresses = [ipAddress(name)];
      return;
    }
    lookup(name, { all: true, verbatim: true }, (err, found) => {
      if (err) this.#error = resolveError(err);
      else this.#addresses = found.map(({ address }) => ipAddress(address));
      this.#done.notify();
    });
  }

  resolveNextAddress() {
    if (this.#error !== null) throw this.#error;
    if (this.#addresses === null) throw 'would-block';
    return this.#addresses.shift(); // undefined once all were given
  }

  subscribe() {
    return new SignalPollable(() => this.#addresses !== null || this.#error !== null, this.#done);
  }
}

/**
 * The wasi:sockets imports, by WIT name. Every open connection is in `registry` (a Set
 * with `destroy()`able members) until it closes, so that a dead instance's can be closed.
 */
export function socketImports(registry) {
  return {
    'wasi:sockets/network': { Network },
    'wasi:sockets/instance-network': { instanceNetwork: () => network },
    'wasi:sockets/tcp': { TcpSocket },
    'wasi:sockets/tcp-create-socket': {
      createTcpSocket(family) {
        if (family !== 'ipv4' && family !== 'ipv6') throw 'not-supported';
        return new TcpSocket(family, registry);
      },
    },
    'wasi:sockets/ip-name-lookup': {
      ResolveAddressStream,
      resolveAddresses(_network, name) {
        if (name === '') throw 'invalid-argument';
        return new ResolveAddressStream(name);
      },
    },
  };
}
