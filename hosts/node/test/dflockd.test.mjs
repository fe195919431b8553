// The wrapper against the test server: options, TLS, connect timeout, auth, the event-loop
// driver (many objects, close, renewal, losses, names), process lifetime. `npm test`
// (node --test). Needs target/release/dflockd-testserver (`cargo xtask setup`;
// DFLOCKD_TESTSERVER overrides) and gen/ (`node transpile.mjs`): without them every test
// fails, saying so.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const BIN = process.env.DFLOCKD_TESTSERVER ?? here('../../../target/release/dflockd-testserver');
const WRAPPER = new URL('../dflockd.mjs', import.meta.url).href;

let api; // the package, imported by its own name once the prerequisites are checked
const cleanups = [];

before(async () => {
  assert.ok(existsSync(BIN), `${BIN} is missing: run \`cargo xtask setup\` or set DFLOCKD_TESTSERVER`);
  assert.ok(existsSync(here('../gen/dflockd.js')), 'gen/ is missing: run `node transpile.mjs <component.wasm>`');
  api = await import('dflockd-component');
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

const servers = new Map(); // port -> the server's process, for the tests that kill one

/** A test server with `flags`, killed after the tests; resolves to its port. */
async function server(...flags) {
  const child = spawn(BIN, ['--port', '0', '--dialect', 'v1', ...flags], { stdio: ['ignore', 'ignore', 'pipe'] });
  cleanups.push(() => child.kill('SIGKILL'));
  let said = '';
  child.stderr.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (chunk) => {
      said += chunk; // and keeps reading, so the pipe never fills
      const port = said.match(/msg=listening addr=127\.0\.0\.1:(\d+)/)?.[1];
      if (port && !servers.has(Number(port))) {
        servers.set(Number(port), child);
        resolve(Number(port));
      }
    });
    child.once('exit', (code) => reject(new Error(`${BIN} exited (${code}) before listening:\n${said}`)));
  });
}

/** A lock on `port` closed after the tests whatever happens. */
function lock(key, port, options = {}) {
  const l = new api.Lock(key, { servers: [['127.0.0.1', port]], ...options });
  cleanups.push(() => l.close().catch(() => {}));
  return l;
}

/** The DflockdError `promise` rejects with. */
async function failure(promise) {
  const e = await promise.then(
    (v) => assert.fail(`resolved ${inspect(v)}, expected a DflockdError`),
    (e) => e,
  );
  assert.ok(e instanceof api.DflockdError, `not a DflockdError: ${inspect(e)}`);
  return e;
}

describe('options', () => {
  test('an unknown option is a TypeError naming it and the known ones', () => {
    assert.throws(() => new api.Lock('k', { leaseTTL: 5 }), (e) => {
      assert.ok(e instanceof TypeError);
      assert.match(e.message, /"leaseTTL"/);
      assert.match(e.message, /leaseTtlS.*connectTimeoutMs|connectTimeoutMs.*leaseTtlS/);
      return true;
    });
    assert.throws(() => new api.Semaphore('k', 2, { tls: { caPEM: '' } }), /TypeError: dflockd: unknown tls option "caPEM"/);
    assert.throws(() => new api.Lock('k', { tls: { clientCert: { certChainPem: '', key: '' } } }), TypeError);
  });

  test('a value of the wrong type is a TypeError', () => {
    for (const options of [
      { leaseTtlS: '5' },
      { connectTimeoutMs: '100' },
      { tls: 'yes' },
      { tls: { caPem: 1 } },
      { tls: { clientCert: { certChainPem: '' } } }, // no privateKeyPem
      { servers: '127.0.0.1:6388' },
      { servers: [['127.0.0.1', '6388']] },
      { authToken: 1 },
      { onLost: true },
    ])
      assert.throws(() => new api.Lock('k', options), TypeError, inspect(options));
    assert.throws(() => new api.Lock(1), TypeError);
    assert.throws(() => new api.Lock('k', null), TypeError);
  });

  test('stats refuses unknown options too', async () => {
    await assert.rejects(api.stats({ hots: 'x' }), /TypeError: dflockd: unknown stats option "hots"/);
  });

  test('a number out of range is invalid-argument, as the component says', async () => {
    assert.throws(() => new api.Lock('k', { connectTimeoutMs: -1 }), (e) => e.kind === 'invalid-argument');
    const e = await failure(api.Lock.open('k', { leaseTtlS: 0 })); // the component's own check
    assert.equal(e.kind, 'invalid-argument');
  });
});

describe('TLS', () => {
  let port;
  let caPem;
  let cert;
  let key;

  before(async () => {
    // A throwaway CA and a certificate for 127.0.0.1 (an IP SAN) signed by it.
    const dir = mkdtempSync(join(tmpdir(), 'dflockd-tls-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const openssl = (...args) => {
      const run = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
      assert.equal(run.status, 0, `openssl ${args.join(' ')}: ${run.error ?? run.stderr}`);
    };
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=dflockd test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
    openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
    openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
      '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf');
    [caPem, cert, key] = ['ca.pem', 'server.pem', 'server.key'].map((f) => readFileSync(join(dir, f), 'utf8'));
    port = await server('--tls-cert', join(dir, 'server.pem'), '--tls-key', join(dir, 'server.key'));
  });

  test('with the private CA: granted and released', async () => {
    const l = lock('tls-ok', port, { tls: { caPem } });
    assert.ok(await l.acquire());
    assert.equal(await l.release(), true);
  });

  test('serverName and a client certificate reach the component', async () => {
    // The server asks for no client certificate; this proves the options map and are accepted.
    const clientCert = { certChainPem: cert, privateKeyPem: key };
    const l = lock('tls-client-cert', port, { tls: { caPem, serverName: '127.0.0.1', clientCert } });
    assert.ok(await l.acquire());
    assert.equal(await l.release(), true);
  });

  test('the bundled roots do not know the private CA: tls error', async () => {
    const e = await failure(lock('tls-unknown-ca', port, { tls: true }).acquire());
    assert.equal(e.kind, 'tls');
    assert.match(e.message, /unknown issuer/);
  });

  test('a plain connection to a TLS server: tls error, and nothing else of the instance is touched', async () => {
    // The component probes a plain connection closed before its first reply for TLS, as a
    // step of its own (probe.rs): nothing blocks the event loop, a lease held meanwhile on
    // another server stays held.
    const plainPort = await server();
    const losses = [];
    const held = lock('probe-held', plainPort, { onLost: (loss) => losses.push(loss) });
    assert.ok(await held.acquire());
    const e = await failure(lock('probe-plain', port).acquire());
    assert.equal(e.kind, 'tls');
    assert.match(e.message, /speaks TLS/);
    assert.equal(await held.release(), true);
    assert.deepEqual(losses, []);
  });

  test('a name the certificate does not carry: tls error', async () => {
    const e = await failure(lock('tls-wrong-name', port, { tls: { caPem, serverName: 'elsewhere.example' } }).acquire());
    assert.equal(e.kind, 'tls');
  });
});

describe('connect timeout and auth', () => {
  test('connectTimeoutMs bounds a server that never answers', async () => {
    // Accepts the TCP connection, then says nothing: the auth reply (or the TLS handshake)
    // never comes, which only the connect timeout ends. The default would be 10 s.
    const silent = net.createServer((socket) => cleanups.push(() => socket.destroy())).listen(0, '127.0.0.1');
    await once(silent, 'listening');
    cleanups.push(() => silent.close());
    const { port } = silent.address();
    for (const [options, kind] of [[{ authToken: 'never-checked' }, 'timeout'], [{ tls: true }, 'tls']]) {
      const start = Date.now();
      const e = await failure(lock('silent', port, { connectTimeoutMs: 200, ...options }).acquire());
      const took = Date.now() - start;
      assert.equal(e.kind, kind, e.message);
      assert.ok(took >= 200 && took < 5000, `${kind} after ${took} ms, with connectTimeoutMs 200`);
    }
  });

  test('a wrong auth token is an auth error that does not show it; the right one works', async () => {
    const port = await server('--auth-token', 'the-right-secret');
    const e = await failure(lock('auth', port, { authToken: 'a-wrong-secret' }).acquire());
    assert.equal(e.kind, 'auth');
    assert.ok(!inspect(e, { depth: Infinity }).includes('a-wrong-secret'), inspect(e));
    const l = lock('auth', port, { authToken: 'the-right-secret' });
    assert.ok(await l.acquire());
    assert.equal(await l.release(), true);
  });
});

describe('on the event loop', () => {
  let port;
  before(async () => {
    port = await server();
  });

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  test('many objects of one instance at once: all granted; one key in FIFO order', async () => {
    const many = Array.from({ length: 20 }, (_, i) => lock(`many-${i}`, port));
    const grants = await Promise.all(many.map((l) => l.acquire()));
    assert.ok(grants.every((g) => g !== null));
    assert.deepEqual(await Promise.all(many.map((l) => l.release())), many.map(() => true));
    const [first, second] = [lock('fifo', port), lock('fifo', port, { acquireTimeoutS: 5 })];
    assert.ok(await first.acquire());
    const order = [];
    const waiting = second.acquire().then((g) => order.push(g ? 'second granted' : 'second timed out'));
    await sleep(100);
    order.push('first releases');
    assert.equal(await first.release(), true);
    await waiting;
    assert.deepEqual(order, ['first releases', 'second granted']);
    assert.equal(await second.release(), true);
  });

  test('close() of a held lock releases it at the server', async () => {
    const holder = lock('close-held', port);
    assert.ok(await holder.acquire());
    await holder.close();
    const next = lock('close-held', port, { acquireTimeoutS: 0 }); // a try-lock
    assert.ok(await next.acquire(), 'still held after close()');
    await next.release();
  });

  test('close() during a call waits for it, then releases', async () => {
    const holder = lock('close-pending', port);
    assert.ok(await holder.acquire());
    const waiter = lock('close-pending', port, { acquireTimeoutS: 5 });
    const granted = waiter.acquire();
    await sleep(50);
    const closed = waiter.close();
    await holder.release();
    assert.ok(await granted);
    await closed;
    const next = lock('close-pending', port, { acquireTimeoutS: 0 });
    assert.ok(await next.acquire(), 'still held after close()');
    await next.release();
  });

  test('a lease renews while nothing else happens', async () => {
    const l = lock('renews', port, { leaseTtlS: 1 });
    assert.ok(await l.acquire());
    await sleep(2500); // past two leases of 1 s: only the driver's timer renewed it
    assert.equal(await l.isHeld(), true);
    assert.equal(await l.release(), true);
  });

  test('each lost lease reaches its own object once', async () => {
    const doomed = await server(); // killed below
    const losses = { a: [], b: [] };
    const options = (who) => ({ leaseTtlS: 2, onLost: (loss) => losses[who].push(loss) });
    const [a, b] = [lock('lost-a', doomed, options('a')), lock('lost-b', doomed, options('b'))];
    const [ga, gb] = [await a.acquire(), await b.acquire()];
    servers.get(doomed).kill('SIGKILL');
    for (let i = 0; i < 100 && losses.a.length + losses.b.length < 2; i++) await sleep(50);
    await sleep(100); // time for a second report, if there were one
    assert.deepEqual(losses.a.map((l) => [l.key, l.fence, l.cause]), [['lost-a', ga.fence, 'connection-lost']]);
    assert.deepEqual(losses.b.map((l) => [l.key, l.fence, l.cause]), [['lost-b', gb.fence, 'connection-lost']]);
    assert.equal(a.losses, 1);
    assert.equal(await a.isHeld(), false);
  });

  test('a lock set takes every key or none, and its loss is reported once', async () => {
    const set = new api.LockSet(['set-b', 'set-a'], { servers: [['127.0.0.1', port]], acquireTimeoutS: 1 });
    cleanups.push(() => set.close().catch(() => {}));
    assert.deepEqual(await set.keys(), ['set-a', 'set-b']);
    const grants = await set.acquire();
    assert.equal(grants.length, 2);
    assert.equal(await set.isHeld(), true);
    const rival = new api.LockSet(['set-b', 'set-c'], { servers: [['127.0.0.1', port]], acquireTimeoutS: 0 });
    cleanups.push(() => rival.close().catch(() => {}));
    assert.equal(await rival.acquire(), null, 'set-b is held');
    const c = lock('set-c', port, { acquireTimeoutS: 0 });
    assert.ok(await c.acquire(), 'the rival gave set-c back');
    await c.release();
    assert.equal(await set.release(), true);
    assert.deepEqual(await set.grants(), []);
    assert.equal(typeof set.enqueue, 'undefined', 'a set has no two-phase acquisition');
    // A member's loss is the set's, once.
    const doomed = await server();
    const losses = [];
    const lost = new api.LockSet(['gone-1', 'gone-2'], {
      servers: [['127.0.0.1', doomed]],
      leaseTtlS: 2,
      onLost: (loss) => losses.push(loss),
    });
    cleanups.push(() => lost.close().catch(() => {}));
    assert.ok(await lost.acquire());
    servers.get(doomed).kill('SIGKILL');
    for (let i = 0; i < 100 && losses.length < 1; i++) await sleep(50);
    await sleep(100); // time for a second report, if there were one
    assert.equal(losses.length, 1, inspect(losses));
    assert.equal(await lost.isHeld(), false);
  });

  test('names resolve through dns.lookup, each address tried in turn', async () => {
    // Where localhost is ::1 first (nothing listens there), 127.0.0.1 is tried next.
    const byName = new api.Lock('by-name', { servers: [['localhost', port]] });
    cleanups.push(() => byName.close().catch(() => {}));
    assert.ok(await byName.acquire());
    assert.equal(await byName.release(), true);
    const e = await failure(new api.Lock('k', { servers: [['no-such-host.invalid', port]] }).acquire());
    assert.equal(e.kind, 'connection');
    assert.match(e.message, /resolving/);
  });

  test('stats (through a low-level connection of the same instance) and the pure functions answer', async () => {
    const held = lock('stats-held', port);
    assert.ok(await held.acquire());
    const st = await api.stats({ port });
    assert.ok(st.locks.some((l) => l.key === 'stats-held'));
    await held.release();
    assert.equal(await api.fenceFromToken('0000000000000001abcdefabcdefabcd'), 1n);
    assert.equal(typeof (await api.shardIndex('k', 3)), 'number');
  });
});

describe('the event-loop WASI refuses to block', () => {
  test('poll with nothing ready and pollable.block throw at once', async () => {
    const { poll, TimerPollable } = await import('../wasi-io.mjs');
    const later = new TimerPollable(process.hrtime.bigint() + 60_000_000_000n);
    assert.throws(() => poll([later]), /poll \(nothing ready\) would block the event loop/);
    assert.throws(() => later.block(), /pollable\.block would block the event loop/);
    const now = new TimerPollable(0n);
    assert.deepEqual([...poll([later, now])], [1]);
    now.block(); // ready: returns
  });
});

describe('process lifetime', () => {
  let port;
  before(async () => {
    port = await server();
  });

  /**
   * Runs `body` as an ES module with `Lock` and `port` in scope; calls `onLine` for each
   * line it prints. The timeout only guards against a hang: it is not what is measured.
   */
  async function child(body, onLine = () => {}) {
    const code = `import { Lock } from ${JSON.stringify(WRAPPER)};\nconst port = ${port};\n${body}`;
    const proc = spawn(process.execPath, ['--input-type=module', '-e', code], { timeout: 30_000 });
    let out = '';
    let err = '';
    proc.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    proc.stdout.setEncoding('utf8').on('data', (d) => {
      const lines = (out + d).split('\n').slice(out.split('\n').length - 1, -1); // the completed ones
      out += d;
      lines.forEach(onLine);
    });
    const [exit, signal] = await once(proc, 'exit');
    assert.equal(signal, null, `killed by ${signal} (a hang?); said:\n${out}${err}`);
    assert.equal(exit, 0, `exit ${exit}; said:\n${out}${err}`);
    return out;
  }

  test('acquired, released, never closed: the process exits by itself', async () => {
    const out = await child(`
      const lock = new Lock('life-released', { servers: [['127.0.0.1', port]] });
      await lock.acquire();
      console.log('released', await lock.release());`);
    assert.match(out, /released true/);
  });

  test('an object never used and never closed does not keep the process alive', async () => {
    await child(`new Lock('life-unused', { servers: [['127.0.0.1', port]] });`);
  });

  test('a held lease does not keep it alive either; exiting releases it at the server', async () => {
    const out = await child(`
      const lock = new Lock('life-held', { servers: [['127.0.0.1', port]] });
      console.log('granted', (await lock.acquire()) !== null);`);
    assert.match(out, /granted true/);
    // The server let go when the connection closed: granted again, not after the 33 s lease.
    const again = lock('life-held', port, { acquireTimeoutS: 20 });
    assert.ok(await again.acquire(), 'still held after its process exited');
    await again.release();
  });

  test('a call in flight keeps the process alive until it answers', async () => {
    const holder = lock('life-waiting', port);
    assert.ok(await holder.acquire());
    // The child waits in the queue behind `holder`; released once it says so.
    const out = await child(
      `
      const lock = new Lock('life-waiting', { servers: [['127.0.0.1', port]], acquireTimeoutS: 20 });
      console.log('waiting');
      console.log('granted', (await lock.acquire()) !== null);`,
      (line) => line === 'waiting' && holder.release(),
    );
    assert.match(out, /granted true/);
  });
});
