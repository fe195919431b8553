// The conformance scenarios (hosts/README.md) through the wrapper:
// `node run-scenarios.mjs <scenarios.json> <servers.json>`. One line per scenario,
// `ok NAME` or `FAIL NAME: why`; exit status 1 if any failed.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { inspect, isDeepStrictEqual } from 'node:util';
import { DflockdError, Lock, Semaphore, fenceFromToken, shardIndex, stats } from './dflockd.mjs';

const [scenariosPath, serversPath] = process.argv.slice(2);
if (!serversPath) {
  console.error('usage: node run-scenarios.mjs <scenarios.json> <servers.json>');
  process.exit(2);
}
const { scenarios } = JSON.parse(readFileSync(scenariosPath, 'utf8'));
const servers = JSON.parse(readFileSync(serversPath, 'utf8'));

class Mismatch extends Error {}

const show = (v) => inspect(v, { breakLength: Infinity });

// What a call gave, `{value}` or `{error}`, against `expect`: `{"error": TAG, "hides"?: S}`
// wants a DflockdError of that kind whose text lacks S; anything else, a value (`map` turns
// the value into the scenario's terms first); no `expect`, any value.
async function check(step, call, map = (v) => v) {
  let value;
  try {
    value = map(await call());
  } catch (e) {
    if (!(e instanceof DflockdError)) throw e;
    const want = step.expect?.error;
    if (want === undefined) throw new Mismatch(`unexpected error ${e.kind}: ${e.message}`);
    if (e.kind !== want) throw new Mismatch(`error ${e.kind} (${e.message}), expected ${want}`);
    if (step.expect.hides !== undefined && inspect(e, { depth: Infinity }).includes(step.expect.hides))
      throw new Mismatch(`the ${e.kind} error shows ${show(step.expect.hides)}`);
    return undefined;
  }
  if (step.expect?.error !== undefined) throw new Mismatch(`got ${show(value)}, expected error ${step.expect.error}`);
  if ('expect' in step && !isDeepStrictEqual(value, step.expect))
    throw new Mismatch(`got ${show(value)}, expected ${show(step.expect)}`);
  return value;
}

const grantOrNone = (g) => (g === null ? 'none' : 'granted');

// The flag's value, so stats can authenticate to a server started with --auth-token.
function authTokenOf(flags) {
  const i = flags.indexOf('--auth-token');
  return i < 0 ? undefined : flags[i + 1];
}

async function runScenario(scenario) {
  const where = servers[scenario.name] ?? {};
  const serverOf = (name) => {
    const s = where[name];
    if (!s) throw new Mismatch(`no server ${name} in the servers file`);
    return s;
  };
  const objects = new Map(); // id -> {obj, losses: Loss[]}
  const objectOf = (id) => {
    const o = objects.get(id);
    if (!o) throw new Mismatch(`no open object ${id}`);
    return o;
  };

  const steps = {
    async open(step) {
      const s = serverOf(step.server);
      const entry = { losses: [] };
      const options = {
        servers: [[s.host, s.port]],
        leaseTtlS: step.lease_ttl_s,
        acquireTimeoutS: step.acquire_timeout_s,
        authToken: step.auth_token,
        onLost: (loss) => entry.losses.push(loss),
      };
      const obj = step.limit === undefined ? new Lock(step.key, options) : new Semaphore(step.key, step.limit, options);
      entry.obj = obj;
      objects.set(step.id, entry); // before the check, so it is closed whatever happens
      await check(step, () => obj.ready().then(() => undefined));
    },
    acquire: (step) => check(step, () => objectOf(step.id).obj.acquire(), grantOrNone),
    enqueue: (step) => check(step, () => objectOf(step.id).obj.enqueue()),
    wait: (step) => check(step, () => objectOf(step.id).obj.wait(step.timeout_s), grantOrNone),
    release: (step) => check(step, () => objectOf(step.id).obj.release()),
    held: (step) => check(step, () => objectOf(step.id).obj.isHeld()),
    async hold(step) {
      await sleep(step.seconds * 1000); // the driver renews from the event loop meanwhile
      if (!(await objectOf(step.id).obj.isHeld())) throw new Mismatch(`not held after ${step.seconds} s`);
    },
    kill(step) {
      process.kill(serverOf(step.server).pid, 'SIGKILL');
    },
    async lost(step) {
      const { losses } = objectOf(step.id);
      const deadline = Date.now() + step.within_s * 1000;
      while (losses.length === 0 && Date.now() < deadline) await sleep(20);
      if (losses.length !== 1) throw new Mismatch(`${losses.length} loss reports within ${step.within_s} s, expected 1`);
      if (losses[0].cause !== step.cause) throw new Mismatch(`lost by ${losses[0].cause}, expected ${step.cause}`);
    },
    losses: (step) => check(step, async () => objectOf(step.id).obj.losses),
    async stats(step) {
      const s = serverOf(step.server);
      const authToken = authTokenOf(scenario.servers[step.server] ?? []);
      const st = await stats({ host: s.host, port: s.port, authToken });
      const lock = st.locks.find((l) => l.key === step.key);
      const sem = st.semaphores.find((l) => l.key === step.key);
      const seen = {
        held: lock !== undefined,
        waiters: (lock ?? sem)?.waiters ?? 0,
        holders: sem?.holders ?? (lock ? 1 : 0),
        limit: sem?.limit ?? (lock ? 1 : undefined),
      };
      for (const [field, want] of Object.entries(step.expect ?? {})) {
        if (!(field in seen)) throw new Mismatch(`unknown stats expectation ${field}`);
        if (seen[field] !== want) throw new Mismatch(`stats ${field} of ${step.key} is ${seen[field]}, expected ${want}`);
      }
    },
    async close(step) {
      await objectOf(step.id).obj.close();
      objects.delete(step.id);
    },
    // Fences are u64: the scenario writes them as decimal strings.
    'fence-from-token': (step) => check(step, () => fenceFromToken(step.token), String),
    'shard-index': (step) => check(step, () => shardIndex(step.key, step.n)),
  };

  try {
    for (const [i, step] of scenario.steps.entries()) {
      const run = steps[step.op];
      try {
        if (!run) throw new Mismatch('unknown op');
        await run(step);
      } catch (e) {
        const why = e instanceof Mismatch || e instanceof DflockdError ? e.message : inspect(e);
        throw new Mismatch(`step ${i + 1} (${step.op}${step.id ? ` ${step.id}` : ''}): ${why}`);
      }
    }
  } finally {
    for (const { obj } of objects.values()) await obj.close().catch(() => {});
  }
}

let failed = 0;
for (const scenario of scenarios) {
  try {
    await runScenario(scenario);
    console.log(`ok ${scenario.name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${scenario.name}: ${e instanceof Mismatch ? e.message : inspect(e)}`);
  }
}
process.exitCode = failed ? 1 : 0; // and exits by itself: every object was closed
