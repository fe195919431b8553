// The loop that drives one component instance on the application's own thread: the shape
// of the Rust async host's driver (host/src/driver/), on Node's event loop. Commands
// start without waiting (`lock.start`, `connection.start` -> a ticket); the instance's `driver.pollables` are
// what it waits on (sockets with a reply due, connections being opened, one timer at its
// next deadline: a renewal, a timeout); when one is ready, `driver.poll-events` does what
// is due and returns each finished command and each lost lease. Leases renew inside those
// turns, so a held lease is renewed for as long as the process runs.
//
// world.wit's rule: every pollable from `driver.pollables` is dropped before the next call
// into the instance. So every call goes through #enter, which disarms first, and the wait
// is armed again (one `pollables` call) after the calls of this tick, or after a turn once
// the application has reacted to it.
//
// Lifetime: sockets and timers are unref'd (wasi-*.mjs); one ref'd interval keeps the
// process alive while any call is in flight, and only then.
import { instantiate } from './component.mjs';
import { DflockdError, answerOf, fromWit } from './errors.mjs';
import { WATCH } from './wasi-io.mjs';
import { loopImports } from './wasi-loop.mjs';

/** One instance and the objects opened in it. */
export class Driver {
  /** A driver with a fresh instance. */
  static async start() {
    const { imports, closeAll } = loopImports();
    return new Driver(await instantiate(imports), closeAll);
  }

  #exports;
  #closeAll;
  #objects = new Set();
  #tickets = new Map(); // ticket -> its object
  #answers = new Map(); // ticket of a low-level connection's command -> its call
  #armed = null; // the pollables waited on; null while calls may come (none is live)
  #armQueued = false;
  #armLaterQueued = false;
  #turning = false;
  #pending = 0; // calls in flight
  #keepAlive = setInterval(() => {}, 2 ** 31 - 1);
  #dead = null; // the DflockdError every call gets once the instance broke

  constructor(exports, closeAll) {
    this.#exports = exports;
    this.#closeAll = closeAll;
    this.#keepAlive.unref();
  }

  /** Set once the instance broke: its objects are gone; open new ones in a new driver. */
  get dead() {
    return this.#dead;
  }

  /**
   * Opens a lock (`limit` undefined) or a semaphore; throws the component's refusal as a
   * DflockdError. `onLost(loss)` is called once for each lease the object loses.
   */
  open(key, limit, settings, onLost) {
    const { locks } = this.#exports;
    const res = this.#enter(() =>
      limit === undefined ? locks.Lock.open(key, settings) : locks.Semaphore.open(key, limit, settings),
    );
    // `fence`: the last grant's, which a confirmed release gives up; `live`: the grants
    // that could still be lost, as "key fence" (a loss names its lease by key and fence).
    const object = { res, key, set: false, onLost, queue: [], current: null, fence: undefined, live: new Set() };
    this.#objects.add(object);
    return object;
  }

  /**
   * Opens a lock set of `keys`: all of them or none. `onLost(loss)` is called once for each
   * loss of the set (naming the member that was lost).
   */
  openSet(keys, settings, onLost) {
    const res = this.#enter(() => this.#exports.locks.LockSet.open(keys, settings));
    const object = { res, key: keys.join(' '), set: true, onLost, queue: [], current: null, live: new Set() };
    this.#objects.add(object);
    return object;
  }

  /** Starts the WIT `command` once the object's earlier calls are done; its WIT outcome. */
  command(object, command) {
    return this.#queue(object, { command });
  }

  /** `fn(resource)`, synchronously, once the object's earlier calls are done. */
  query(object, fn) {
    return this.#queue(object, { query: fn });
  }

  /** Releases what the object holds (best effort), then drops it: its connection closes. */
  close(object) {
    if (this.#dead || !this.#objects.has(object)) return Promise.resolve();
    return this.#queue(object, { close: true });
  }

  /**
   * The server's `stats` JSON text, through a low-level connection of this instance:
   * created, connected and asked without waiting (`connection.start`, each answered in a
   * turn), then dropped.
   */
  async stats(server, settings) {
    const conn = this.#enter(() => this.#exports.connection.Connection.create(server, settings));
    try {
      await this.#ask(conn, { tag: 'connect' });
      return (await this.#ask(conn, { tag: 'stats' })).val;
    } finally {
      if (!this.#dead) this.#enter(() => conn[Symbol.dispose]());
    }
  }

  /** Starts a low-level connection's `command`; its WIT answer. */
  #ask(conn, command) {
    if (this.#dead) return Promise.reject(this.#dead);
    return new Promise((resolve, reject) => {
      const ticket = this.#enter(() => conn.start(command));
      if (this.#pending++ === 0) this.#keepAlive.ref();
      this.#answers.set(ticket, { resolve, reject });
    });
  }

  /** `fn(exports)` for the exports without I/O (fencing, sharding). */
  call(fn) {
    return this.#enter(() => fn(this.#exports));
  }

  // ---- calls in flight, one started command per object at a time ----

  #queue(object, op) {
    if (this.#dead) return Promise.reject(this.#dead);
    return new Promise((resolve, reject) => {
      Object.assign(op, { resolve, reject });
      if (this.#pending++ === 0) this.#keepAlive.ref();
      object.queue.push(op);
      this.#advance(object);
    });
  }

  #finish(op, error, value) {
    if (--this.#pending === 0) this.#keepAlive.unref();
    if (error) op.reject(error);
    else op.resolve(value);
  }

  /** What a call left waiting gets when the instance broke; a close is done by then. */
  #abandon(op) {
    this.#finish(op, op.close ? null : this.#dead);
  }

  /** Runs the object's next calls until one is a started command (or none is left). */
  #advance(object) {
    while (object.current === null && object.queue.length > 0) {
      const op = object.queue.shift();
      try {
        if (op.query) {
          this.#finish(op, null, this.#enter(() => op.query(object.res)));
        } else if (op.close && !this.#enter(() => object.res.isHeld())) {
          this.#drop(object);
          this.#finish(op, null);
        } else {
          // A close releases first, as the blocking drop would, but without blocking:
          // the drop itself comes when the release completed (#done).
          const command = op.close ? { tag: 'release' } : op.command;
          const ticket = this.#enter(() => object.res.start(command));
          object.current = op;
          this.#tickets.set(ticket, object);
        }
      } catch (e) {
        if (this.#dead) return this.#abandon(op); // the others were abandoned by #fail
        this.#finish(op, e);
      }
    }
  }

  #drop(object) {
    this.#objects.delete(object);
    this.#enter(() => object.res[Symbol.dispose]());
  }

  // ---- the instance's turns ----

  /** Every call into the instance: pollables dropped first; a trap breaks the driver. */
  #enter(fn) {
    if (this.#dead) throw this.#dead;
    this.#disarm();
    try {
      return fn();
    } catch (e) {
      const answer = answerOf(e);
      if (answer) throw answer;
      this.#fail(e);
      throw this.#dead;
    } finally {
      this.#armSoon();
    }
  }

  #disarm() {
    const armed = this.#armed;
    this.#armed = null;
    if (armed) for (const pollable of armed) pollable[Symbol.dispose]();
  }

  /** After this tick's calls (a turn arms by itself when it ends). */
  #armSoon() {
    if (this.#armQueued || this.#turning) return;
    this.#armQueued = true;
    queueMicrotask(() => {
      this.#armQueued = false;
      if (this.#armed === null && !this.#turning && !this.#dead) this.#arm();
    });
  }

  /**
   * After a turn: once the application's reactions to it have run (setImmediate comes after
   * every promise job), so that a call started in reaction (a release after an acquire)
   * arms once, not twice. A wait armed meanwhile is kept.
   */
  #armLater() {
    if (this.#armLaterQueued) return;
    this.#armLaterQueued = true;
    // Ref'd: libuv runs an unref'd immediate only after the next event (the poll phase
    // does not return for it), which may be long after a renewal was due. A ref'd one costs
    // an idle process one more round of the loop.
    setImmediate(() => {
      this.#armLaterQueued = false;
      if (this.#armed === null && !this.#turning && !this.#dead) this.#arm();
    });
  }

  #arm() {
    let pollables;
    try {
      pollables = this.#exports.driver.pollables();
    } catch (e) {
      return this.#fail(e);
    }
    this.#armed = pollables; // empty: nothing started, nothing held
    if (pollables.some((p) => p.ready())) {
      // On a later round of the loop, not in a microtask: a pollable that stayed ready
      // would otherwise starve the I/O. Ref'd, as in #armLater.
      setImmediate(this.#wake);
      return;
    }
    for (const pollable of pollables) pollable[WATCH](this.#wake);
  }

  #wake = () => {
    if (this.#armed !== null && !this.#turning && !this.#dead) this.#turn();
  };

  #turn() {
    this.#turning = true;
    try {
      this.#disarm();
      const events = this.#exports.driver.pollEvents();
      for (const event of events) {
        if (event.tag === 'done') this.#done(event.val);
        else if (event.tag === 'answered') this.#answered(event.val);
        else if (event.tag === 'lost') this.#lost(event.val);
      }
    } catch (e) {
      this.#fail(e); // poll-events returns no result: any throw is a trap
    } finally {
      this.#turning = false;
    }
    if (!this.#dead && this.#armed === null) this.#armLater();
  }

  #done({ ticket, outcome }) {
    const object = this.#tickets.get(ticket);
    if (!object) return;
    this.#tickets.delete(ticket);
    const op = object.current;
    object.current = null;
    if (op.close) {
      // Released or not (lost, refused, a broken connection), the object goes now.
      try {
        this.#drop(object);
      } catch {
        // the instance broke: #fail closed everything
      }
      return this.#finish(op, null);
    }
    if (outcome.tag === 'err') {
      this.#finish(op, fromWit(outcome.val));
    } else {
      this.#track(object, outcome.val);
      this.#finish(op, null, outcome.val);
    }
    this.#advance(object);
  }

  #answered({ ticket, answer }) {
    const op = this.#answers.get(ticket);
    if (!op) return;
    this.#answers.delete(ticket);
    if (answer.tag === 'err') this.#finish(op, fromWit(answer.val));
    else this.#finish(op, null, answer.val);
  }

  /** Remembers the grants that could be lost, and forgets the ones a release gave up. */
  #track(object, outcome) {
    if (object.set) {
      // Its outcome names the first member's grant; the set has them all.
      object.live.clear();
      if (outcome.tag === 'acquired' && outcome.val) {
        const keys = this.#enter(() => object.res.keys());
        const grants = this.#enter(() => object.res.grants());
        grants.forEach((g, i) => object.live.add(`${keys[i]} ${g.fence}`));
      }
      return;
    }
    let grant;
    if (outcome.tag === 'acquired') grant = outcome.val;
    else if (outcome.tag === 'enqueued' && outcome.val.tag === 'acquired') grant = outcome.val.val;
    else if (outcome.tag === 'released' && outcome.val) object.live.delete(`${object.key} ${object.fence}`);
    if (grant) {
      object.fence = grant.fence;
      object.live.add(`${object.key} ${grant.fence}`);
    }
  }

  /** A lost lease, to the open object that held it, once. None: it was closed meanwhile. */
  #lost({ key, fence, reason }) {
    for (const object of this.#objects) {
      if (object.live.delete(`${key} ${fence}`)) {
        if (object.set) object.live.clear(); // a set is lost with any member
        this.#tell(object, { key, fence, cause: reason.cause, detail: reason.detail });
        return;
      }
    }
  }

  /** Never inside a turn: a callback may call its object. */
  #tell(object, loss) {
    queueMicrotask(() => object.onLost(loss));
  }

  /**
   * The instance trapped (a panic, or an import that refused to block): it can take no
   * more calls. Every call waiting gets `internal`; every held lease is reported lost,
   * and every connection closed, so that the server lets go of what they held.
   */
  #fail(cause) {
    if (this.#dead) return;
    const why = cause instanceof Error ? cause.message : String(cause);
    this.#dead = new DflockdError('internal', `the component instance stopped: ${why}`);
    this.#disarm();
    this.#closeAll();
    for (const object of this.#objects) {
      const waiting = object.current ? [object.current, ...object.queue] : object.queue;
      object.current = null;
      object.queue = [];
      for (const op of waiting) this.#abandon(op);
      const detail = 'the component instance stopped, and its connections with it';
      // One report per object: a set is lost with its first member.
      for (const held of object.set ? [...object.live].slice(0, 1) : object.live) {
        const [key, fence] = held.split(' ');
        this.#tell(object, { key, fence: BigInt(fence), cause: 'connection-lost', detail });
      }
      object.live.clear();
    }
    for (const op of this.#answers.values()) this.#abandon(op);
    this.#answers.clear();
    this.#objects.clear();
    this.#tickets.clear();
    clearInterval(this.#keepAlive);
  }
}
