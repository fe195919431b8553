"""dflockd locks and semaphores, through the dflockd client WebAssembly component.

    from dflockd_component import Lock

    with Lock("my-key", servers=[("127.0.0.1", 6388)]) as lock:
        ...  # the lease renews in the background

The component (`dflockd_component.wasm`, WASI 0.2) runs in wasmtime-py 47.x.
Objects opened on one thread share that thread's instance of it (see
`Runtime`); every failure is a `DflockdError`.
"""

from ._bindings import WASMTIME_VERSION, uint
from ._errors import DflockdError
from ._locks import Lock, OnLost, Semaphore
from ._runtime import Runtime, for_thread
from ._stats import IdleInfo, LockInfo, SemaphoreInfo, Stats, stats
from ._values import Grant, Loss


def fence_from_token(token: str) -> int:
    """The fence of a 32-lowercase-hex token: its first 16 characters, big-endian."""
    return int(for_thread().call_ok("fencing", "fence-from-token", token))


def shard_index(key: str, n: int) -> int:
    """The server index `key` routes to among `n`: `crc32(utf8(key)) % n`."""
    return int(for_thread().call_ok("sharding", "shard-index", key, uint("n", n, 32)))


__all__ = [
    "WASMTIME_VERSION",
    "DflockdError",
    "Grant",
    "IdleInfo",
    "Lock",
    "LockInfo",
    "Loss",
    "OnLost",
    "Runtime",
    "Semaphore",
    "SemaphoreInfo",
    "Stats",
    "fence_from_token",
    "shard_index",
    "stats",
]
