// acquire + release of one key in a loop, one caller: `node bench.mjs <host> <port> <seconds>`.
// `node-jco`: through the wrapper (a message round trip to the worker per call).
// `node-jco-raw`: the same loop on the bindings directly, blocking this thread, which is
// what the worker itself does per call: the difference is the wrapper's cost.
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

// Imported only now, so the wrapper's loop ran without a second instance loaded.
const { locks } = await import('./gen/dflockd.js');
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
