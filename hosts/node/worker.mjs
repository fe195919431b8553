// The component's thread. Its WASI sockets (the preview2-shim's) are synchronous, so a
// blocking call such as `acquire` freezes the thread that makes it: that thread is this
// worker, never the application's. dflockd.mjs sends {seq, op, args}; each op runs to the
// end and is answered {seq, value} or {seq, error}. Loss reports go up as {lost}.
import { parentPort } from 'node:worker_threads';
import { connection, driver, fencing, locks, sharding } from './gen/dflockd.js';

/** Open objects by the id dflockd.mjs gave them: the resource, its key, and its grants. */
const objects = new Map();

// A loss comes back from `drive` as (key, fence), so each object remembers the fences of
// its grants that could still be lost; `current` is the one a `release` gives up.
function granted(o, g) {
  if (!g) return null;
  o.current = g.fence;
  o.live.add(g.fence);
  return { token: g.token, fence: g.fence, leaseS: Number(g.leaseS) };
}

const ops = {
  open({ id, key, limit, settings }) {
    const res = limit === undefined ? locks.Lock.open(key, settings) : locks.Semaphore.open(key, limit, settings);
    objects.set(id, { res, key, current: undefined, live: new Set() });
  },
  acquire({ id }) {
    const o = objects.get(id);
    return granted(o, o.res.acquire());
  },
  enqueue({ id }) {
    const o = objects.get(id);
    const e = o.res.enqueue();
    if (e.tag === 'acquired') granted(o, e.val);
    return e.tag;
  },
  wait({ id, timeoutS }) {
    const o = objects.get(id);
    return granted(o, o.res.wait(timeoutS));
  },
  release({ id }) {
    const o = objects.get(id);
    const confirmed = o.res.release();
    if (confirmed) o.live.delete(o.current); // released for sure: that grant can no longer be lost
    return confirmed;
  },
  isHeld: ({ id }) => objects.get(id).res.isHeld(),
  close({ id }) {
    objects.get(id).res[Symbol.dispose](); // the drop: best-effort release, then the connection closes
    objects.delete(id);
  },
  fenceFromToken: ({ token }) => fencing.fenceFromToken(token),
  shardIndex: ({ key, n }) => sharding.shardIndex(key, n),
  stats({ server, settings }) {
    const conn = connection.Connection.open(server, settings);
    try {
      return plainStats(conn.stats());
    } finally {
      conn[Symbol.dispose]();
    }
  },
};

// Counters and connection ids are u64 in WIT but stay far below 2^53: plain numbers here.
function plainStats(s) {
  return {
    connections: Number(s.connections),
    locks: s.locks.map((l) => ({ ...l, ownerConnId: Number(l.ownerConnId) })),
    semaphores: s.semaphores,
    idleLocks: s.idleLocks,
    idleSemaphores: s.idleSemaphores,
    cluster: s.cluster,
  };
}

// jco throws a WIT `err` as a ComponentError whose `payload` is the `error` variant.
// Anything else (a trap, a binding that refused a value) has no tag of its own.
function errorOf(e) {
  const p = e?.payload;
  if (typeof p?.tag === 'string') return { kind: p.tag, detail: p.val };
  return { kind: 'internal', detail: String(e?.message ?? e) };
}

// Renewal between calls. `next-deadline` is an instant of the component's
// wasi:clocks/monotonic-clock, which the preview2-shim implements as process.hrtime.bigint()
// (dist/nodejs/clocks.js), so that is the clock to compare it with. world.wit says not to
// re-read it while waiting (in flight it is always a few ms ahead of now), so a wake-up
// already set is kept unless a call brought the deadline earlier; one that fires early finds
// nothing due, and the drive sets the next from a fresh reading.
let timer;
let due;

function scheduleDrive() {
  const next = driver.nextDeadline();
  if (next === undefined || (timer !== undefined && due <= next)) return;
  clearTimeout(timer);
  due = next;
  const ms = Number(next - process.hrtime.bigint()) / 1e6;
  timer = setTimeout(drive, Math.max(0, Math.ceil(ms))); // ceil: never wake before it
}

function drive() {
  timer = undefined;
  for (const lost of driver.drive()) report(lost);
  scheduleDrive();
}

function report({ key, fence, reason }) {
  for (const [id, o] of objects) {
    if (o.key === key && o.live.delete(fence)) {
      parentPort.postMessage({ lost: { id, loss: { key, fence, cause: reason.cause, detail: reason.detail } } });
      return;
    }
  }
  // No open object had that grant: it was closed meanwhile, and nobody is left to tell.
}

parentPort.on('message', ({ seq, op, args }) => {
  let reply;
  try {
    reply = { seq, value: ops[op](args) };
  } catch (e) {
    reply = { seq, error: errorOf(e) };
  }
  parentPort.postMessage(reply);
  scheduleDrive();
});
