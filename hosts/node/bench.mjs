// acquire + release of one key in a loop, one caller: `node bench.mjs <host> <port> <seconds>`.
// `node-jco`: through the wrapper: the component on this thread, each call started without
// waiting and finished by the event loop's driver (driver.mjs, the sockets on node:net).
// `node-jco-raw`: the same loop on the blocking exports of an instance with the
// preview2-shim's WASI, whose synchronous sockets block this thread (each WASI call a round
// trip to the shim's I/O thread): jco's own way to run the component.
import { Lock } from './dflockd.mjs';

const [host = '127.0.0.1', portArg = '6388', secondsArg = '3'] = process.argv.slice(2);
const port = Number(portArg);
const seconds = Number(secondsArg);
const key = 'bench-node-jco';

function line(name, ops, ns) {
  console.log(`${name} ops_per_s=${Math.round(ops / (Number(ns) / 1e9))} ops=${ops}`);
}

const lock = new Lock(key, { servers: [[host, port]] });
try {
  await lock.acquire(); // connect outside the timed loop
  await lock.release();
  let ops = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(seconds * 1e9);
  while (process.hrtime.bigint() < end) {
    if (!(await lock.acquire())) throw new Error('not granted');
    await lock.release();
    ops++;
  }
  line('node-jco', ops, process.hrtime.bigint() - start);
} finally {
  await lock.close();
}

// Loaded only now, so the wrapper's loop ran without the shim's I/O thread.
const { instantiate, shimImports } = await import('./component.mjs');
const { locks } = await instantiate(await shimImports());
const raw = locks.Lock.open(key, [{ tag: 'servers', val: [{ host, port }] }]);
try {
  raw.acquire();
  raw.release();
  let ops = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(seconds * 1e9);
  while (process.hrtime.bigint() < end) {
    if (!raw.acquire()) throw new Error('not granted');
    raw.release();
    ops++;
  }
  line('node-jco-raw', ops, process.hrtime.bigint() - start);
} finally {
  raw[Symbol.dispose]();
}
