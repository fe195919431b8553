// Acquire "my-key", hold it for a second, release it: `node example.mjs`
// (DFLOCKD_HOST / DFLOCKD_PORT name the server; default 127.0.0.1:6388).
import { setTimeout as sleep } from 'node:timers/promises';
import { Lock } from 'dflockd-component';

const host = process.env.DFLOCKD_HOST ?? '127.0.0.1';
const port = Number(process.env.DFLOCKD_PORT ?? 6388);

const lock = new Lock('my-key', { servers: [[host, port]], acquireTimeoutS: 10 });
try {
  const grant = await lock.acquire();
  if (grant === null) {
    console.log('my-key: not acquired within the acquire timeout');
  } else {
    // The token is a secret (it can release the lock): show only its start.
    console.log(`acquired my-key: fence=${grant.fence} token=${grant.token.slice(0, 8)}… lease=${grant.leaseS} s`);
    await sleep(1000); // the critical section; the lease renews in the background meanwhile
    console.log(`released = ${await lock.release()}`);
  }
} finally {
  await lock.close();
}
