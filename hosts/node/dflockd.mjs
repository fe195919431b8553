// dflockd locks and semaphores for Node.js, from the dflockd client component (transpiled
// by jco into gen/). The component runs in one worker thread (worker.mjs) because its
// sockets block the thread that calls it; every method here is async and costs a message
// round trip. Leases renew in that worker between calls.
//
// Lifetime: the worker keeps the process alive only while a call is pending or an object
// is open (not yet closed), so close what you open — or use `withLock`.
import { Worker } from 'node:worker_threads';

/** Every failure: `kind` is the WIT `error` case, `detail` its payload. */
export class DflockdError extends Error {
  /**
   * @param {string} kind `timeout`, `auth`, `lock-lost`, `invalid-argument`, `connection`, ...
   *   (the WIT `error` tags), or `internal` when the component or its worker broke.
   * @param {string | {cause: string, detail: string} | undefined} detail the message, or
   *   for `lock-lost` the loss record. The component redacts secrets from it.
   */
  constructor(kind, detail) {
    super(`dflockd: ${kind}${describe(detail)}`);
    this.name = 'DflockdError';
    this.kind = kind;
    this.detail = detail;
  }
}

function describe(detail) {
  if (detail === undefined || detail === '') return '';
  if (typeof detail === 'string') return `: ${detail}`;
  return `: ${detail.cause}${detail.detail ? ` (${detail.detail})` : ''}`;
}

// ---- the worker, shared by every object ----

let worker;
let failure; // once the worker died, its objects are gone: every call fails with this
let users = 0; // open objects + pending calls; the worker is ref'ed while there are any
let nextSeq = 1;
let nextId = 1;
const pending = new Map(); // seq -> {resolve, reject}
const lossHandlers = new Map(); // object id -> (loss) => void

function use(delta) {
  const before = users;
  users += delta;
  if (users === 0) worker?.unref();
  else if (before === 0) worker?.ref();
}

function fail(error) {
  failure ??= error;
  for (const { reject } of pending.values()) reject(failure);
  users -= pending.size;
  pending.clear();
}

function request(op, args) {
  return new Promise((resolve, reject) => {
    if (failure) throw failure;
    if (!worker) {
      worker = new Worker(new URL('./worker.mjs', import.meta.url));
      if (users === 0) worker.unref();
      worker.on('message', onMessage);
      worker.on('error', (e) => fail(new DflockdError('internal', `component worker failed: ${e.message}`)));
      worker.on('exit', (code) => fail(new DflockdError('internal', `component worker exited (${code})`)));
    }
    pending.set(nextSeq, { resolve, reject });
    use(1);
    worker.postMessage({ seq: nextSeq++, op, args });
  });
}

function onMessage(msg) {
  if (msg.lost) {
    lossHandlers.get(msg.lost.id)?.(msg.lost.loss);
    return;
  }
  const { resolve, reject } = pending.get(msg.seq);
  pending.delete(msg.seq);
  use(-1);
  if (msg.error) reject(new DflockdError(msg.error.kind, msg.error.detail));
  else resolve(msg.value);
}

// ---- values in: plain JS numbers (or BigInt) become the WIT integers ----

function integer(name, value, max) {
  const ok =
    (typeof value === 'bigint' || Number.isSafeInteger(value)) && value >= 0 && BigInt(value) <= max;
  if (!ok) throw new DflockdError('invalid-argument', `${name} must be an integer in 0..${max}`);
  return BigInt(value);
}
const u64 = (name, value) => integer(name, value, 2n ** 64n - 1n);
const u32 = (name, value) => Number(integer(name, value, 2n ** 32n - 1n));
const u16 = (name, value) => Number(integer(name, value, 65535n));

const server = ([host, port]) => ({ host, port: u16('port', port) });

/**
 * @typedef {object} Options
 * @property {Array<[string, number]>} [servers] `[host, port]` pairs; a key routes to one
 *   of them by the CRC-32 formula. Default `[['127.0.0.1', 6388]]`.
 * @property {number} [leaseTtlS] lease per grant, in seconds (default: the server's)
 * @property {number} [acquireTimeoutS] how long `acquire` may wait, in seconds (default
 *   10; 0 is a try-lock)
 * @property {string} [authToken] for servers started with `--auth-token`
 * @property {number} [renewRatio] renew when this fraction of the lease has passed (default 0.5)
 * @property {(loss: Loss) => void} [onLost] called once for each lease this object loses
 */

/**
 * @typedef {object} Loss
 * @property {string} key
 * @property {string} cause `connection-lost`, `renewal-refused`, `no-reply`, ... (WIT `loss-cause`)
 * @property {string} detail what was seen, redacted; may be empty
 * @property {bigint} fence the fence of the lost grant
 */

/**
 * @typedef {object} Grant
 * @property {string} token 32 hex characters; a secret (whoever has it can release the lock)
 * @property {bigint} fence the token's first 16 hex characters as a u64
 * @property {number} leaseS the lease the server granted, in seconds
 */

function settingsOf({ servers = [['127.0.0.1', 6388]], leaseTtlS, acquireTimeoutS, authToken, renewRatio }) {
  const settings = [{ tag: 'servers', val: servers.map(server) }];
  if (leaseTtlS !== undefined) settings.push({ tag: 'lease-ttl-s', val: u64('leaseTtlS', leaseTtlS) });
  if (acquireTimeoutS !== undefined)
    settings.push({ tag: 'acquire-timeout-s', val: u64('acquireTimeoutS', acquireTimeoutS) });
  if (authToken !== undefined) settings.push({ tag: 'auth-token', val: authToken });
  if (renewRatio !== undefined) settings.push({ tag: 'renew-ratio', val: renewRatio });
  return settings;
}

// ---- locks and semaphores ----

class Primitive {
  #id = nextId++;
  #opened;
  #closed = false;
  #losses = 0;

  constructor(key, limit, options) {
    const settings = settingsOf(options);
    const { onLost } = options;
    this.key = key;
    lossHandlers.set(this.#id, (loss) => {
      this.#losses++;
      onLost?.(loss);
    });
    use(1);
    // The component validates the key and settings; an error there surfaces at the first call.
    this.#opened = request('open', { id: this.#id, key, limit, settings });
    this.#opened.catch(() => this.#forget());
  }

  #forget() {
    this.#closed = true;
    lossHandlers.delete(this.#id);
    use(-1);
  }

  async #call(op, args) {
    await this.#opened;
    if (this.#closed) throw new DflockdError('invalid-argument', `${this.key} is closed`);
    return request(op, { id: this.#id, ...args });
  }

  /** Resolves once the component accepted the key and settings; rejects otherwise. */
  async ready() {
    await this.#opened;
    return this;
  }

  /**
   * Waits for the grant, up to the acquire timeout. Renewal starts on grant.
   * @returns {Promise<Grant | null>} `null` when the timeout passed (nothing held)
   */
  acquire() {
    return this.#call('acquire');
  }

  /**
   * Joins the queue without waiting.
   * @returns {Promise<'acquired' | 'queued'>} `acquired`: held now; `queued`: call `wait`
   */
  enqueue() {
    return this.#call('enqueue');
  }

  /**
   * After `enqueue`: waits for the grant.
   * @param {number} [timeoutS] default: the acquire timeout
   * @returns {Promise<Grant | null>} `null` on timeout
   */
  wait(timeoutS) {
    return this.#call('wait', { timeoutS: timeoutS === undefined ? undefined : u64('timeoutS', timeoutS) });
  }

  /**
   * Releases the grant (or gives up the queue place). Throws `lock-lost` (once) if the
   * lease was lost meanwhile.
   * @returns {Promise<boolean>} `true` when the server confirmed; `false`: nothing was held
   */
  release() {
    return this.#call('release');
  }

  /** @returns {Promise<boolean>} whether a grant is held and not known lost */
  isHeld() {
    return this.#call('isHeld');
  }

  /** How many leases this object has lost (each also went to `onLost`). */
  get losses() {
    return this.#losses;
  }

  /** Releases what is held (best effort) and closes the connection; idempotent. */
  async close() {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#opened;
    } catch {
      return; // never opened: nothing to close
    }
    try {
      await request('close', { id: this.#id });
    } finally {
      lossHandlers.delete(this.#id);
      use(-1);
    }
  }

  [Symbol.asyncDispose]() {
    return this.close();
  }
}

/** An exclusive FIFO lock on one key. */
export class Lock extends Primitive {
  /**
   * Connects nothing yet: the first `acquire` or `enqueue` does.
   * @param {string} key
   * @param {Options} [options]
   */
  constructor(key, options = {}) {
    super(key, undefined, options);
  }

  /** `new Lock(...)` that has been validated: rejects on a bad key or setting. */
  static open(key, options) {
    return new Lock(key, options).ready();
  }
}

/** A counting semaphore: up to `limit` holders of one key at a time, FIFO. */
export class Semaphore extends Primitive {
  /**
   * @param {string} key
   * @param {number} limit > 0; the first holder of a key fixes it
   * @param {Options} [options]
   */
  constructor(key, limit, options = {}) {
    super(key, u32('limit', limit), options);
    this.limit = limit;
  }

  /** `new Semaphore(...)` that has been validated: rejects on a bad key, limit or setting. */
  static open(key, limit, options) {
    return new Semaphore(key, limit, options).ready();
  }
}

/**
 * Acquires `key`, runs `fn(grant)`, and always releases and closes. Throws a `timeout`
 * DflockdError when not granted in time, and `lock-lost` when the lease was lost while
 * `fn` ran (its result is then not protected by the lock).
 * @template T
 * @param {string} key
 * @param {Options} options
 * @param {(grant: Grant) => Promise<T>} fn
 * @returns {Promise<T>}
 */
export async function withLock(key, options, fn) {
  const lock = new Lock(key, options);
  try {
    const grant = await lock.acquire();
    if (!grant) throw new DflockdError('timeout', `${key} was not granted within the acquire timeout`);
    const result = await fn(grant);
    await lock.release();
    return result;
  } finally {
    await lock.close(); // after a throw, this is what releases
  }
}

// ---- stateless helpers ----

/**
 * The fence of a 32-hex token: its first 16 hex characters as a big-endian u64.
 * @param {string} token
 * @returns {Promise<bigint>}
 */
export function fenceFromToken(token) {
  return request('fenceFromToken', { token });
}

/**
 * The index among `n` servers that `key` routes to (`crc32(utf8(key)) % n`).
 * @param {string} key
 * @param {number} n
 * @returns {Promise<number>}
 */
export async function shardIndex(key, n) {
  return request('shardIndex', { key, n: u32('n', n) });
}

/**
 * The server's tables, through one short-lived low-level connection.
 * @param {{host?: string, port?: number, authToken?: string}} [where]
 * @returns {Promise<{connections: number, locks: object[], semaphores: object[],
 *   idleLocks: object[], idleSemaphores: object[], cluster?: string}>}
 */
export async function stats({ host = '127.0.0.1', port = 6388, authToken } = {}) {
  const settings = authToken === undefined ? [] : [{ tag: 'auth-token', val: authToken }];
  return request('stats', { server: server([host, port]), settings });
}
