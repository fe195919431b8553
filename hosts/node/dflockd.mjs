// dflockd locks and semaphores for Node.js, from the dflockd client component (transpiled
// by jco into gen/). The component runs on the application's own thread, driven from
// Node's event loop through its non-blocking surface (driver.mjs): a method starts its
// command and resolves when the instance reports it done. Leases renew in those turns of
// the loop, between calls; `stats` goes through a low-level connection in the same
// instance. Types: dflockd.d.ts.
//
// Lifetime: the loop keeps the process alive only while a call is in flight. A held
// lease does not: a program with nothing left to do exits, its connections close, and the
// server releases what they held (dflockd's default). So close() is tidy, not required.
import { Driver } from './driver.mjs';
import { DflockdError } from './errors.mjs';

export { DflockdError };

// ---- the instance on this thread, shared by every object ----

let current; // the Driver, once made; replaced once its instance broke (its objects stay broken)
let starting; // Promise<Driver> while one is made

function loop() {
  if (current && !current.dead) return Promise.resolve(current);
  starting ??= Driver.start().then(
    (made) => {
      starting = undefined;
      return (current = made);
    },
    (e) => {
      // gen/ missing or broken: said to every caller, and tried again by the next one.
      starting = undefined;
      throw new DflockdError('internal', `the component could not be loaded: ${e.message}`);
    },
  );
  return starting;
}

// ---- options in: checked here, so a typo is not silently a default ----
// A wrong name or JS type is a TypeError (a bug in the caller, what TypeScript catches); a
// number out of range is `invalid-argument`, as the component says for its own checks.

const typeName = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

function expect(name, value, type) {
  if (typeof value !== type) throw new TypeError(`dflockd: ${name} must be a ${type}, not ${typeName(value)}`);
  return value;
}

function known(what, options, names) {
  if (typeName(options) !== 'object') throw new TypeError(`dflockd: ${what}s must be in an object, not ${typeName(options)}`);
  for (const name of Object.keys(options))
    if (!names.includes(name))
      throw new TypeError(`dflockd: unknown ${what} ${JSON.stringify(name)}; known: ${names.join(', ')}`);
  return options;
}

function integer(name, value, max) {
  if (typeof value !== 'number' && typeof value !== 'bigint')
    throw new TypeError(`dflockd: ${name} must be a number, not ${typeName(value)}`);
  const ok = (typeof value === 'bigint' || Number.isSafeInteger(value)) && value >= 0 && BigInt(value) <= max;
  if (!ok) throw new DflockdError('invalid-argument', `${name} must be an integer in 0..${max}`);
  return BigInt(value);
}
const u64 = (name, value) => integer(name, value, 2n ** 64n - 1n);
const u32 = (name, value) => Number(integer(name, value, 2n ** 32n - 1n));
const u16 = (name, value) => Number(integer(name, value, 65535n));

function servers(list) {
  if (!Array.isArray(list)) throw new TypeError(`dflockd: servers must be an array of [host, port], not ${typeName(list)}`);
  return list.map((pair, i) => {
    if (!Array.isArray(pair) || pair.length !== 2)
      throw new TypeError(`dflockd: servers[${i}] must be a [host, port] pair`);
    return { host: expect(`servers[${i}] host`, pair[0], 'string'), port: u16(`servers[${i}] port`, pair[1]) };
  });
}

// `true`: TLS with the built-in roots; an object: the WIT tls-setting cases; `false`: plain TCP.
function tls(value) {
  if (typeof value === 'boolean') return value ? [] : undefined;
  if (typeName(value) !== 'object') throw new TypeError(`dflockd: tls must be a boolean or an object, not ${typeName(value)}`);
  const { caPem, serverName, clientCert } = known('tls option', value, ['caPem', 'serverName', 'clientCert']);
  const list = [];
  if (caPem !== undefined) list.push({ tag: 'ca-pem', val: expect('tls.caPem', caPem, 'string') });
  if (serverName !== undefined) list.push({ tag: 'server-name', val: expect('tls.serverName', serverName, 'string') });
  if (clientCert !== undefined) {
    const { certChainPem, privateKeyPem } = known('tls.clientCert field', clientCert, ['certChainPem', 'privateKeyPem']);
    const val = {
      certChainPem: expect('tls.clientCert.certChainPem', certChainPem, 'string'),
      privateKeyPem: expect('tls.clientCert.privateKeyPem', privateKeyPem, 'string'),
    };
    list.push({ tag: 'client-cert', val });
  }
  return list;
}

// Option name -> the WIT setting: its tag and the conversion. The names are the WIT
// settings' in camelCase, unit included: seconds the server counts (`S`), the client's own
// milliseconds (`Ms`).
const SETTINGS = {
  servers: ['servers', servers],
  serverIndex: ['server-index', (v) => u32('serverIndex', v)],
  connectTimeoutMs: ['connect-timeout-ms', (v) => u64('connectTimeoutMs', v)],
  authToken: ['auth-token', (v) => expect('authToken', v, 'string')],
  tls: ['tls', tls],
  acquireTimeoutS: ['acquire-timeout-s', (v) => u64('acquireTimeoutS', v)],
  leaseTtlS: ['lease-ttl-s', (v) => u64('leaseTtlS', v)],
  renewRatio: ['renew-ratio', (v) => expect('renewRatio', v, 'number')],
};
const OPTIONS = [...Object.keys(SETTINGS), 'onLost'];
const STATS_OPTIONS = ['host', 'port', 'connectTimeoutMs', 'authToken', 'tls'];

/** The WIT settings of the options named in `names` that are set (`undefined` is unset). */
function settingsOf(options, names) {
  const settings = [];
  for (const name of names) {
    if (options[name] === undefined || !(name in SETTINGS)) continue;
    const [tag, convert] = SETTINGS[name];
    const val = convert(options[name]);
    if (val !== undefined) settings.push({ tag, val });
  }
  return settings;
}

// ---- locks and semaphores ----

const closed = (key) => new DflockdError('invalid-argument', `${key} is closed`);

// The WIT grant as the API's: leaseS a number (a lease is seconds), the fence a BigInt.
const grantOf = (g) => (g === undefined ? null : { token: g.token, fence: g.fence, leaseS: Number(g.leaseS) });

class Primitive {
  #opened; // Promise<{driver, object}>: the object in the instance of this thread
  #live; // the same, once opened: calls skip the await
  #closed = false;
  #losses = 0;

  /** `open(driver, settings, lost)` opens the object in the driver's instance. */
  constructor(key, open, options) {
    known('option', options, OPTIONS);
    const settings = settingsOf(options, OPTIONS);
    const { onLost } = options;
    if (onLost !== undefined) expect('onLost', onLost, 'function');
    this.key = key;
    const lost = (loss) => {
      this.#losses++;
      onLost?.(loss);
    };
    // The component validates the key and settings; an error there surfaces at the first call.
    this.#opened = loop().then((driver) => (this.#live = { driver, object: open(driver, settings, lost) }));
    this.#opened.catch(() => (this.#closed = true));
  }

  /** Starts `command` (a WIT command) once the object is open; its WIT outcome's value. */
  _run(command) {
    const live = this.#live;
    if (live !== undefined && !this.#closed) return live.driver.command(live.object, command).then((o) => o.val);
    return this.#opened.then(({ driver, object }) => {
      if (this.#closed) throw closed(this.key);
      return driver.command(object, command).then((o) => o.val);
    });
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
  async acquire() {
    return grantOf(await this._run({ tag: 'acquire' }));
  }

  /**
   * Releases the grant (or gives up the queue place). Throws `lock-lost` (once) if the
   * lease was lost meanwhile.
   * @returns {Promise<boolean>} `true` when the server confirmed; `false`: nothing was held
   */
  release() {
    return this._run({ tag: 'release' });
  }

  /** @returns {Promise<boolean>} whether a grant is held and not known lost */
  isHeld() {
    return this._query((res) => res.isHeld());
  }

  /** `fn(resource)` once the object's earlier calls are done. */
  async _query(fn) {
    const { driver, object } = await this.#opened;
    if (this.#closed) throw closed(this.key);
    return driver.query(object, fn);
  }

  /** How many leases this object has lost (each also went to `onLost`). */
  get losses() {
    return this.#losses;
  }

  /** Releases what is held (best effort) and closes the connection; idempotent. */
  async close() {
    if (this.#closed) return;
    this.#closed = true;
    let opened;
    try {
      opened = await this.#opened;
    } catch {
      return; // never opened: nothing to close
    }
    await opened.driver.close(opened.object);
  }

  [Symbol.asyncDispose]() {
    return this.close();
  }
}

/** What a lock and a semaphore have and a lock set has not: one key, two-phase acquisition. */
class OneKey extends Primitive {
  constructor(key, limit, options) {
    expect('key', key, 'string');
    super(key, (driver, settings, lost) => driver.open(key, limit, settings, lost), options);
  }

  /**
   * Joins the queue without waiting.
   * @returns {Promise<'acquired' | 'queued'>} `acquired`: held now; `queued`: call `wait`
   */
  async enqueue() {
    return (await this._run({ tag: 'enqueue' })).tag;
  }

  /**
   * After `enqueue`: waits for the grant.
   * @param {number} [timeoutS] default: the acquire timeout
   * @returns {Promise<Grant | null>} `null` on timeout
   */
  async wait(timeoutS) {
    const val = timeoutS === undefined ? undefined : u64('timeoutS', timeoutS);
    return grantOf(await this._run({ tag: 'wait', val }));
  }
}

/** An exclusive FIFO lock on one key. */
export class Lock extends OneKey {
  /**
   * Connects nothing yet: the first `acquire` or `enqueue` does. Throws a TypeError for
   * an unknown option or a value of the wrong type.
   * @param {string} key
   * @param {object} [options] see dflockd.d.ts
   */
  constructor(key, options = {}) {
    super(key, undefined, options);
  }

  /** `new Lock(...)` that has been validated: rejects on a bad key or setting. */
  static async open(key, options) {
    return new Lock(key, options).ready();
  }
}

/** A counting semaphore: up to `limit` holders of one key at a time, FIFO. */
export class Semaphore extends OneKey {
  /**
   * @param {string} key
   * @param {number} limit > 0; the first holder of a key fixes it
   * @param {object} [options] see dflockd.d.ts
   */
  constructor(key, limit, options = {}) {
    super(key, u32('limit', limit), options);
    this.limit = u32('limit', limit); // a number, even when given as a BigInt
  }

  /** `new Semaphore(...)` that has been validated: rejects on a bad key, limit or setting. */
  static async open(key, limit, options) {
    return new Semaphore(key, limit, options).ready();
  }
}

/**
 * Several locks taken as one: every key, or none. The members are taken one at a time in one
 * order (by server, then key), so that two sets sharing keys never wait for each other in a
 * cycle, under one deadline (`acquireTimeoutS`, for the whole set); when it passes or a member
 * fails, what was taken is released before `acquire` answers. Held, every member renews; the
 * loss of any member is the loss of the set (`onLost` once, the others released).
 */
export class LockSet extends Primitive {
  /**
   * @param {string[]} keys at least one, none twice
   * @param {object} [options] as a Lock's (see dflockd.d.ts)
   */
  constructor(keys, options = {}) {
    if (!Array.isArray(keys)) throw new TypeError(`dflockd: keys must be an array of strings, not ${typeName(keys)}`);
    keys.forEach((key, i) => expect(`keys[${i}]`, key, 'string'));
    const list = [...keys];
    super(list.join(' '), (driver, settings, lost) => driver.openSet(list, settings, lost), options);
  }

  /** `new LockSet(...)` that has been validated: rejects on a bad key or setting. */
  static async open(keys, options) {
    return new LockSet(keys, options).ready();
  }

  /**
   * Waits until every member is held, up to the acquire timeout.
   * @returns {Promise<Grant[] | null>} every member's grant, in `keys()` order; `null` when
   *   the timeout passed (nothing held)
   */
  async acquire() {
    return (await super.acquire()) === null ? null : this.grants();
  }

  /** @returns {Promise<string[]>} the keys, in the order they are taken */
  keys() {
    return this._query((res) => res.keys());
  }

  /** @returns {Promise<Grant[]>} every member's grant while the whole set is held; else [] */
  grants() {
    return this._query((res) => res.grants().map(grantOf));
  }
}

/**
 * Acquires `key`, runs `fn(grant)`, and always releases and closes. Throws a `timeout`
 * DflockdError when not granted in time, and `lock-lost` when the lease was lost while
 * `fn` ran (its result is then not protected by the lock).
 * @template T
 * @param {string} key
 * @param {object} options see dflockd.d.ts
 * @param {(grant: Grant) => Promise<T>} fn
 * @returns {Promise<T>}
 */
export async function withLock(key, options, fn) {
  expect('fn', fn, 'function');
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

// ---- stateless helpers: pure functions of the component, on this thread's instance ----

/**
 * The fence of a 32-hex token: its first 16 hex characters as a big-endian u64.
 * @param {string} token
 * @returns {Promise<bigint>}
 */
export async function fenceFromToken(token) {
  expect('token', token, 'string');
  return (await loop()).call(({ fencing }) => fencing.fenceFromToken(token));
}

/**
 * The index among `n` servers that `key` routes to (`crc32(utf8(key)) % n`).
 * @param {string} key
 * @param {number} n
 * @returns {Promise<number>}
 */
export async function shardIndex(key, n) {
  expect('key', key, 'string');
  const count = u32('n', n);
  return (await loop()).call(({ sharding }) => sharding.shardIndex(key, count));
}

// ---- stats ----

// Counters and connection ids are u64 in the server's JSON but far below 2^53: numbers.
function list(reply, name) {
  const value = reply[name];
  if (!Array.isArray(value)) throw new TypeError(`no list "${name}"`);
  return value;
}

/** The server's JSON object (the component passes it on unparsed) as `Stats`. */
function statsOf(json) {
  try {
    const reply = JSON.parse(json);
    if (typeof reply.connections !== 'number') throw new TypeError('no number "connections"');
    const idle = (i) => ({ key: i.key, idleS: i.idle_s });
    const stats = {
      connections: reply.connections,
      locks: list(reply, 'locks').map((l) => ({
        key: l.key,
        ownerConnId: l.owner_conn_id,
        leaseExpiresInS: l.lease_expires_in_s,
        waiters: l.waiters,
      })),
      semaphores: list(reply, 'semaphores').map(({ key, limit, holders, waiters }) => ({ key, limit, holders, waiters })),
      idleLocks: list(reply, 'idle_locks').map(idle),
      idleSemaphores: list(reply, 'idle_semaphores').map(idle),
    };
    if (reply.cluster !== undefined) stats.cluster = JSON.stringify(reply.cluster);
    return stats;
  } catch (e) {
    throw new DflockdError('protocol', `bad stats JSON: ${e.message}`);
  }
}

/**
 * The server's tables, through one short-lived low-level connection.
 * @param {{host?: string, port?: number, connectTimeoutMs?: number, authToken?: string,
 *   tls?: boolean | object}} [where]
 */
export async function stats(where = {}) {
  const { host = '127.0.0.1', port = 6388 } = known('stats option', where, STATS_OPTIONS);
  const server = { host: expect('host', host, 'string'), port: u16('port', port) };
  return statsOf(await (await loop()).stats(server, settingsOf(where, STATS_OPTIONS)));
}
