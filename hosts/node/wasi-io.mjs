// wasi:io (pollables, streams, errors) and the monotonic clock's timers for the component
// instance that runs on the application's own thread (driver.mjs). Nothing here waits:
// a pollable tells whether it is ready now, and lets the driver register one callback for
// when it becomes ready; the socket streams (wasi-sockets.mjs) give what has arrived and
// take what Node's socket buffers. Anything that would have to wait on this thread
// (`pollable.block`, `poll` with nothing ready, a blocking write to a socket) throws
// instead: waiting here would freeze the event loop that the sockets need to make
// progress, a hang. The instance is driven only through its non-blocking surface
// (`start`, `driver.pollables`, `driver.poll-events`), so such a throw is a bug or a
// component path that blocks, and it traps the instance loudly (see driver.mjs).
import { hrtime } from 'node:process';

/** The driver's handle on a pollable: `pollable[WATCH](callback)`, once, until disposed. */
export const WATCH = Symbol('dflockd.watch');

/** The error for an operation that would wait on the event loop's own thread. */
export function refuseBlocking(what) {
  return new Error(
    `dflockd: ${what} would block the event loop; the event-loop instance must only be ` +
      'driven through its non-blocking surface (start, driver.pollables, driver.poll-events)',
  );
}

/**
 * wasi:io/poll `pollable`. Every kind is a subclass (jco checks `instanceof Pollable`):
 * `ready()` answers now; `[WATCH](callback)` asks for one call when it becomes ready;
 * `[Symbol.dispose]()` (the guest's drop, or the driver's) forgets that callback.
 */
export class Pollable {
  ready() {
    return true;
  }

  block() {
    if (!this.ready()) throw refuseBlocking('wasi:io/poll pollable.block');
  }

  [WATCH](callback) {
    queueMicrotask(callback); // always ready
  }

  [Symbol.dispose]() {}
}

/** Something that pollables wait on (a socket's readability, its room to write, ...). */
export class Signal {
  #watchers = new Set();

  add(pollable) {
    this.#watchers.add(pollable);
  }

  delete(pollable) {
    this.#watchers.delete(pollable);
  }

  /** Fires the watchers that are ready now; each is called once and forgotten. */
  notify() {
    if (this.#watchers.size === 0) return;
    for (const pollable of [...this.#watchers]) pollable.fire();
  }
}

/** Ready when `isReady()` says so; woken by `signal`. */
export class SignalPollable extends Pollable {
  #isReady;
  #signal;
  #callback = null;

  constructor(isReady, signal) {
    super();
    this.#isReady = isReady;
    this.#signal = signal;
  }

  ready() {
    return this.#isReady();
  }

  [WATCH](callback) {
    this.#callback = callback;
    this.#signal.add(this);
  }

  fire() {
    const callback = this.#callback;
    if (callback === null || !this.#isReady()) return;
    this[Symbol.dispose]();
    callback();
  }

  [Symbol.dispose]() {
    this.#callback = null;
    this.#signal.delete(this);
  }
}

// setTimeout takes at most 2^31-1 ms; a later instant is reached in several steps.
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** wasi:clocks/monotonic-clock `subscribe-instant`: ready once hrtime reaches `at`. */
export class TimerPollable extends Pollable {
  #at;
  #timer = null;
  #callback = null;

  constructor(at) {
    super();
    this.#at = at;
  }

  ready() {
    return hrtime.bigint() >= this.#at;
  }

  [WATCH](callback) {
    this.#callback = callback;
    this.#arm();
  }

  // Node's timers run on the loop's cached millisecond clock, which can be a little behind
  // hrtime: a timer that fires early is set again for the rest (ceil: never before `at`).
  #arm() {
    const left = this.#at - hrtime.bigint();
    const ms = left <= 0n ? 0 : Number((left + 999_999n) / 1_000_000n);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (!this.ready()) return this.#arm();
      const callback = this.#callback;
      this.#callback = null;
      callback?.();
    }, Math.min(ms, MAX_TIMEOUT_MS));
    this.#timer.unref(); // a timer alone never keeps the process alive (driver.mjs does)
  }

  [Symbol.dispose]() {
    this.#callback = null;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}

/** wasi:io/poll `poll`: the indices of the ready pollables; never waits. */
export function poll(pollables) {
  const ready = [];
  for (let i = 0; i < pollables.length; i++) if (pollables[i].ready()) ready.push(i);
  if (ready.length === 0) throw refuseBlocking('wasi:io/poll poll (nothing ready)');
  return new Uint32Array(ready);
}

/** wasi:io/error `error`. */
export class IoError {
  #message;

  constructor(message) {
    this.#message = message;
  }

  toDebugString() {
    return this.#message;
  }
}

/**
 * wasi:io/streams `input-stream` over a source: `read(len)` gives what has arrived (empty
 * when nothing has yet; throws the WIT stream-error, `{tag: 'closed'}` at the end) and
 * `readable()` a pollable. The methods are the WIT ones that the component imports.
 */
export class InputStream {
  #source;

  constructor(source) {
    this.#source = source;
  }

  read(len) {
    return this.#source.read(len);
  }

  subscribe() {
    return this.#source.readable();
  }
}

/**
 * wasi:io/streams `output-stream` over a sink: `checkWrite()` (bigint), `write(bytes)`,
 * `flush()`, the blocking forms, and `writable()` for `subscribe`.
 */
export class OutputStream {
  #sink;

  constructor(sink) {
    this.#sink = sink;
  }

  checkWrite() {
    return this.#sink.checkWrite();
  }

  write(contents) {
    this.#sink.write(contents);
  }

  flush() {
    this.#sink.flush();
  }

  blockingWriteAndFlush(contents) {
    this.#sink.blockingWriteAndFlush(contents);
  }

  blockingFlush() {
    this.#sink.blockingFlush();
  }

  subscribe() {
    return this.#sink.writable();
  }
}

/** stdin: the component reads none; it is at its end. */
const noInput = {
  read() {
    throw { tag: 'closed' };
  },
  readable: () => new Pollable(),
};

/**
 * stdout and stderr (a panic's message): handed to Node's own process streams, which
 * queue what they cannot write yet, so even the "blocking" writes return at once.
 */
function stdioSink(stream) {
  const write = (bytes) => void stream.write(bytes); // jco hands over a copy
  return {
    checkWrite: () => 65536n,
    write,
    flush() {},
    blockingWriteAndFlush: write,
    blockingFlush() {},
    writable: () => new Pollable(),
  };
}

/**
 * wasi:clocks/monotonic-clock `now`, with the core-level binding that jco's hybrid import
 * bindings call directly (transpile.mjs): `() -> u64` needs no lowering at all.
 */
function now() {
  return hrtime.bigint();
}
now[Symbol.for('cabiLower')] = () => hrtime.bigint;

/** The wasi:io, wasi:clocks/monotonic-clock and wasi:cli std-stream imports, by WIT name. */
export function ioImports() {
  const stdin = new InputStream(noInput);
  const stdout = new OutputStream(stdioSink(process.stdout));
  const stderr = new OutputStream(stdioSink(process.stderr));
  return {
    'wasi:io/poll': { Pollable, poll },
    'wasi:io/streams': { InputStream, OutputStream },
    'wasi:io/error': { Error: IoError },
    'wasi:clocks/monotonic-clock': {
      now,
      resolution: () => 1n,
      subscribeInstant: (at) => new TimerPollable(at),
      subscribeDuration: (ns) => new TimerPollable(hrtime.bigint() + ns),
    },
    'wasi:cli/stdin': { getStdin: () => stdin },
    'wasi:cli/stdout': { getStdout: () => stdout },
    'wasi:cli/stderr': { getStderr: () => stderr },
  };
}
