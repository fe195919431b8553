// Two accounts or neither: a lock set. `node example-lock-set.mjs`
// (DFLOCKD_HOST / DFLOCKD_PORT name the server; default 127.0.0.1:6388).
import { LockSet } from 'dflockd-component';

const host = process.env.DFLOCKD_HOST ?? '127.0.0.1';
const port = Number(process.env.DFLOCKD_PORT ?? 6388);

// Whatever order they are named in, the set takes them in one order: two transfers on the
// same accounts never wait for each other in a cycle.
const accounts = new LockSet(['account:42', 'account:17'], { servers: [[host, port]], acquireTimeoutS: 10 });
try {
  const grants = await accounts.acquire();
  if (grants === null) {
    console.log('the accounts were not both free within 10 s');
  } else {
    const fences = grants.map((g) => g.fence).join(', ');
    console.log(`holding ${(await accounts.keys()).join(' and ')} (fences ${fences}): moving money`);
    console.log(`released both = ${await accounts.release()}`);
  }
} finally {
  await accounts.close();
}
