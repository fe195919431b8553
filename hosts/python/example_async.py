"""Workers of one event loop take a lock in turn (FIFO), as the Python
client's asyncio example does.

    pip install dflockd-component
    DFLOCKD_HOST=127.0.0.1 DFLOCKD_PORT=6388 python example_async.py
"""

import asyncio
import os

from dflockd_component import AsyncLock

servers = [(os.environ.get("DFLOCKD_HOST", "127.0.0.1"), int(os.environ.get("DFLOCKD_PORT", "6388")))]


async def worker(n: int) -> None:
    async with AsyncLock("my-key", acquire_timeout_s=30, lease_ttl_s=20, servers=servers) as lock:
        # Waiting for the lock does not block the loop: the other workers run meanwhile.
        print(f"acquired ({n}): key={lock.key} fence={lock.fence}")
        await asyncio.sleep(0.2)  # the critical section
        print(f"releasing ({n})")


async def main() -> None:
    await asyncio.gather(*(worker(n) for n in range(3)))
    print("released")


asyncio.run(main())
