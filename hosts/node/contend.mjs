// The Node host's side of the cross-client tests, through the wrapper; one caller, taking
// the keys in turn (interop.rs runs one of this process). Times are on
// CLOCK_MONOTONIC (process.hrtime.bigint()), the clock the other sides read.
//
//   node contend.mjs contend --server HOST:PORT --keys a,b,c --rounds N
//     (host-tests/tests/interop.rs) prints "ready", waits for a line on stdin, takes the
//     keys in turn N times (acquire, note the time, release) and prints one line per
//     critical section: "<key> <start_ns> <end_ns>".
//   node contend.mjs soak --server HOST:PORT --keys a,b,c --seconds S --max-hold-ms H --lease-s L
//     (cargo xtask soak) for S seconds takes a random key (acquire, a random hold up to H
//     ms, release), again after any error; prints "<key> <start_ns> <end_ns>
//     confirmed|unconfirmed" per section (confirmed: the server accepted the release) and
//     "ops <n> errors <m>" on stderr.
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { Lock } from './dflockd.mjs';

const [mode, ...args] = process.argv.slice(2);
const flag = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const [host, port] = flag('--server').split(':');
const keys = flag('--keys').split(',');
const servers = [[host, Number(port)]];
const leaseTtlS = Number(flag('--lease-s') ?? 10);
const locks = keys.map((key) => new Lock(key, { servers, acquireTimeoutS: 60, leaseTtlS }));

console.log('ready');
await new Promise((go) => createInterface({ input: process.stdin }).once('line', go));
const sections = [];
let exitCode = 0;
try {
  if (mode === 'contend') await contend(Number(flag('--rounds')));
  else if (mode === 'soak') await soak(Number(flag('--seconds')), Number(flag('--max-hold-ms')));
  else throw new Error(`unknown mode ${mode}`);
} catch (e) {
  console.error(`contend.mjs: ${e.stack ?? e}`);
  exitCode = 1;
} finally {
  await Promise.all(locks.map((lock) => lock.close()));
}
console.log(sections.join('\n'));
process.stdin.destroy();
process.exitCode = exitCode;

async function contend(rounds) {
  for (let i = 0; i < rounds; i++) {
    const lock = locks[i % locks.length];
    if (!(await lock.acquire())) throw new Error(`${lock.key}: not granted within 60 s`);
    const start = process.hrtime.bigint();
    const end = process.hrtime.bigint();
    if (!(await lock.release())) throw new Error(`${lock.key}: release refused`);
    sections.push(`${lock.key} ${start} ${end}`);
  }
}

async function soak(seconds, maxHoldMs) {
  const deadline = process.hrtime.bigint() + BigInt(seconds) * 1_000_000_000n;
  let ops = 0;
  let errors = 0;
  while (process.hrtime.bigint() < deadline) {
    const lock = locks[Math.floor(Math.random() * locks.length)];
    try {
      if (!(await lock.acquire())) {
        errors++;
        continue;
      }
      const start = process.hrtime.bigint();
      await sleep(Math.floor(Math.random() * (maxHoldMs + 1)));
      const end = process.hrtime.bigint();
      let confirmed = false;
      try {
        confirmed = await lock.release();
      } catch {
        // a lost lease or a server fault: the section is not counted
      }
      if (!confirmed) errors++;
      sections.push(`${lock.key} ${start} ${end} ${confirmed ? 'confirmed' : 'unconfirmed'}`);
      ops++;
    } catch {
      errors++; // a server fault: counted, then again
      await sleep(50);
    }
  }
  console.error(`ops ${ops} errors ${errors}`);
}
