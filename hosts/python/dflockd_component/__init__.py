"""dflockd locks and semaphores, through the dflockd client WebAssembly component.

    from dflockd_component import Lock

    with Lock("my-key", acquire_timeout_s=10, lease_ttl_s=20) as lock:
        ...  # the lease renews in the background

    async with AsyncLock("my-key") as lock:  # asyncio
        ...

The component (`dflockd_component.wasm`, WASI 0.2, shipped inside this
package) runs in wasmtime-py 47.x. Every failure is a `DflockdError`, of a
subclass per kind that is also the matching built-in (`TimeoutError`,
`ConnectionError`, `PermissionError`, `ValueError`).
"""

from importlib.metadata import PackageNotFoundError, version

from ._aio import AsyncLock, AsyncSemaphore
from ._aio_set import AsyncLockSet
from ._bindings import WASMTIME_VERSION, uint
from ._errors import (
    AlreadyQueuedError,
    AuthError,
    ComponentNotFoundError,
    DflockdConnectionError,
    DflockdError,
    DflockdTimeoutError,
    DrainingError,
    InvalidArgumentError,
    LeaseExpiredError,
    LimitMismatchError,
    LockLostError,
    MaxLocksError,
    MaxWaitersError,
    NotLeaderError,
    NotQueuedError,
    ProtocolError,
    ServerError,
    TLSError,
    TrapError,
)
from ._locks import Lock, LockSet, OnLost, Semaphore
from ._options import TLS, ClientCert, ShardingStrategy
from ._runtime import Runtime, for_thread
from ._stats import IdleInfo, LockInfo, SemaphoreInfo, Stats, stats
from ._values import Grant, Loss

try:
    __version__ = version("dflockd-component")
except PackageNotFoundError:  # a checkout, not installed
    __version__ = "0.0.0+checkout"

# The Python client's names, so that code written for it changes only its import.
SyncDistributedLock = Lock
SyncDistributedSemaphore = Semaphore
AsyncDistributedLock = AsyncLock
AsyncDistributedSemaphore = AsyncSemaphore


def fence_from_token(token: str) -> int:
    """The fence of a 32-lowercase-hex token: its first 16 characters, big-endian."""
    return int(for_thread().call_ok("fencing", "fence-from-token", token))


def shard_index(key: str, n: int) -> int:
    """The server index `key` routes to among `n`: `crc32(utf8(key)) % n`
    (the Python client's `stable_hash_shard`)."""
    return int(for_thread().call_ok("sharding", "shard-index", key, uint("n", n, 32)))


__all__ = [
    "WASMTIME_VERSION",
    "AlreadyQueuedError",
    "AsyncDistributedLock",
    "AsyncDistributedSemaphore",
    "AsyncLock",
    "AsyncLockSet",
    "AsyncSemaphore",
    "AuthError",
    "ClientCert",
    "ComponentNotFoundError",
    "DflockdConnectionError",
    "DflockdError",
    "DflockdTimeoutError",
    "DrainingError",
    "Grant",
    "IdleInfo",
    "InvalidArgumentError",
    "LeaseExpiredError",
    "LimitMismatchError",
    "Lock",
    "LockSet",
    "LockInfo",
    "LockLostError",
    "Loss",
    "MaxLocksError",
    "MaxWaitersError",
    "NotLeaderError",
    "NotQueuedError",
    "OnLost",
    "ProtocolError",
    "Runtime",
    "Semaphore",
    "SemaphoreInfo",
    "ServerError",
    "ShardingStrategy",
    "Stats",
    "SyncDistributedLock",
    "SyncDistributedSemaphore",
    "TLS",
    "TLSError",
    "TrapError",
    "__version__",
    "fence_from_token",
    "shard_index",
    "stats",
]
