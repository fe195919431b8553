// The TypeScript example: a lock through `withLock`, a semaphore by hand, typed errors.
// `tsc` checks it (tsconfig.json); DFLOCKD_HOST / DFLOCKD_PORT name the server.
import { DflockdError, Semaphore, withLock, type Grant, type Options } from 'dflockd-component';

const options: Options = {
  servers: [[process.env.DFLOCKD_HOST ?? '127.0.0.1', Number(process.env.DFLOCKD_PORT ?? 6388)]],
  acquireTimeoutS: 10,
  onLost: (loss) => console.error(`lost ${loss.key}: ${loss.cause}`),
};

try {
  // Released and closed whatever the function does; a `timeout` DflockdError if not granted.
  const fence: bigint = await withLock('my-key', options, async (grant: Grant) => {
    console.log(`acquired my-key: fence=${grant.fence} lease=${grant.leaseS} s`);
    return grant.fence;
  });
  console.log(`released my-key (fence ${fence})`);

  // `await using` closes the semaphore when the block ends.
  {
    await using pool = new Semaphore('my-pool', 3, options);
    const slot = await pool.acquire();
    console.log(slot ? `got a slot of my-pool (limit ${pool.limit})` : 'my-pool: no slot in time');
    if (slot) await pool.release();
  }
} catch (e) {
  if (!(e instanceof DflockdError)) throw e;
  // `kind` is the WIT error case: `connection`, `auth`, `timeout`, `tls`, ...
  console.error(`dflockd failed (${e.kind}): ${e.message}`);
  process.exitCode = 1;
}
