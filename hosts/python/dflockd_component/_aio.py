"""`AsyncLock` and `AsyncSemaphore`: `Lock` and `Semaphore` for asyncio.

Each async object makes its calls on a worker thread of its own (`_worker`),
with an instance of the component of its own: async objects contending for
one key never wait on each other inside the host (a shared instance would
serialize them: a waiting `acquire` would keep the holder from releasing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, List, Literal, Tuple, TypeVar

from wasmtime.component import Variant

from ._bindings import uint
from ._errors import error
from ._locks import Lock, OnLost, Semaphore, _Leased, opened
from ._options import Servers, ShardingStrategy, TLSOption, object_settings
from ._runtime import Runtime
from ._values import Grant, Loss
from ._worker import _OnWorker

if TYPE_CHECKING:
    import ssl

_T = TypeVar("_T")
_A = TypeVar("_A", bound="_AsyncLeased")


class _AsyncLeased(_OnWorker[_Leased]):
    """What `AsyncLock` and `AsyncSemaphore` share: the sync object the
    worker opens, and the grant as last reported (properties read that:
    asking the component would wait for a blocked call)."""

    _sync_class: type[_Leased]

    def _setup(
        self, key: str, limit: int | None, options: List[Variant], auth_token: str | None, on_lost: OnLost | None
    ) -> None:
        self._start_worker(key, on_lost)
        self._limit = limit
        self._options = options
        self._auth_token = auth_token
        self._grant: Grant | None = None
        self._lost_fence: int | None = None

    async def acquire(self) -> Grant | None:
        """Waits until granted (the `Grant`, truthy), or until the acquire
        timeout passes (`None`). Cancelled (as `enqueue` and `wait`), it
        leaves nothing held: what the call is granted after all is released."""
        return await self._granting(lambda sync: _itself(sync.acquire()))

    async def enqueue(self) -> Literal["acquired", "queued"]:
        """Joins the queue: `"acquired"` (held now) or `"queued"` (await `wait`)."""

        def enqueue(sync: _Leased) -> Tuple[Literal["acquired", "queued"], Grant | None]:
            status = sync.enqueue()
            return status, sync.grant if status == "acquired" else None

        return await self._granting(enqueue)

    async def wait(self, timeout_s: int | None = None) -> Grant | None:
        """After `enqueue`: waits until granted, or `timeout_s` seconds pass
        (`None`; default: the acquire timeout)."""
        return await self._granting(lambda sync: _itself(sync.wait(timeout_s)))

    async def release(self) -> bool:
        """As `Lock.release`."""
        self._grant = None  # from now on, held by no one who can use it
        return await self._run(lambda sync: sync.release())

    async def renew(self) -> int:
        """Renews now (normally automatic). Returns the remaining seconds."""
        return await self._run(lambda sync: sync.renew())

    @property
    def grant(self) -> Grant | None:
        """The current grant, as last reported: set by a granting call, cleared
        by `release`, `aclose` and a loss report."""
        return self._grant

    @property
    def is_held(self) -> bool:
        return self._grant is not None

    @property
    def token(self) -> str | None:
        return self._grant.token if self._grant else None

    @property
    def fence(self) -> int | None:
        return self._grant.fence if self._grant else None

    @property
    def lease(self) -> int | None:
        return self._grant.lease if self._grant else None

    @property
    def losses(self) -> int:
        """How many lost leases this object has been told of."""
        return self._sync.losses if self._sync is not None else 0

    async def __aenter__(self: _A) -> _A:
        try:
            granted = await self.acquire()
        except BaseException:
            self._close_soon()  # not awaited: this may be a cancellation
            raise
        if granted is None:
            await self.aclose()
            raise error("timeout", f"{self.key!r} was not granted within the acquire timeout")
        return self

    async def _granting(self, call: Callable[[_Leased], Tuple[_T, Grant | None]]) -> _T:
        """Runs a call that may grant (`acquire`, `enqueue`, `wait`): it
        returns its result and the grant, if any; cancelled, it is given up
        (see `_run_giving_up_when_cancelled`)."""

        def run(sync: _Leased) -> _T:
            result, grant = call(sync)
            if grant is not None and grant.fence != self._lost_fence:  # not reported lost already
                self._grant = grant
            return result

        return await self._run_giving_up_when_cancelled(run)

    @property
    def _resource(self) -> str:  # type: ignore[override]
        return self._sync_class._resource

    def _forget(self) -> None:
        self._grant = None

    def _opened(self) -> _Leased:  # on the worker
        if self._sync is None:
            self._sync = opened(
                self._sync_class, self.key, self._limit, self._options, self._auth_token, self._lost, Runtime()
            )
        return self._sync

    def _lost(self, loss: Loss) -> None:
        """The sync object's `on_lost`, on the renewal thread: the user's
        callback runs on the event loop when there is one."""
        self._lost_fence = loss.fence
        if self._grant is not None and self._grant.fence == loss.fence:
            self._grant = None
        self._tell(loss)


def _itself(grant: Grant | None) -> Tuple[Grant | None, Grant | None]:
    return grant, grant


class AsyncLock(_AsyncLeased):
    """`Lock` for asyncio, as the Python client's `AsyncDistributedLock`:
    `async with AsyncLock("my-key") as lock:`, `await lock.acquire()`, ...
    The same keywords as `Lock` (no `runtime`: each object has its own);
    `on_lost` is called on the event loop. Settings the component checks
    (the key, ranges) are checked by the first awaited call."""

    _sync_class = Lock

    def __init__(
        self,
        key: str,
        *,
        acquire_timeout_s: int | None = None,
        lease_ttl_s: int | None = None,
        servers: Servers | None = None,
        sharding_strategy: ShardingStrategy | None = None,
        renew_ratio: float | None = None,
        auth_token: str | None = None,
        connect_timeout_s: float | None = None,
        tls: TLSOption = None,
        ssl_context: ssl.SSLContext | None = None,
        on_lost: OnLost | None = None,
    ) -> None:
        options = object_settings(
            key, acquire_timeout_s=acquire_timeout_s, lease_ttl_s=lease_ttl_s, servers=servers,
            sharding_strategy=sharding_strategy, renew_ratio=renew_ratio, auth_token=auth_token,
            connect_timeout_s=connect_timeout_s, tls=tls, ssl_context=ssl_context,
        )
        self._setup(key, None, options, auth_token, on_lost)


class AsyncSemaphore(_AsyncLeased):
    """`Semaphore` for asyncio, as the Python client's `AsyncDistributedSemaphore`."""

    _sync_class = Semaphore

    def __init__(
        self,
        key: str,
        limit: int,
        *,
        acquire_timeout_s: int | None = None,
        lease_ttl_s: int | None = None,
        servers: Servers | None = None,
        sharding_strategy: ShardingStrategy | None = None,
        renew_ratio: float | None = None,
        auth_token: str | None = None,
        connect_timeout_s: float | None = None,
        tls: TLSOption = None,
        ssl_context: ssl.SSLContext | None = None,
        on_lost: OnLost | None = None,
    ) -> None:
        options = object_settings(
            key, acquire_timeout_s=acquire_timeout_s, lease_ttl_s=lease_ttl_s, servers=servers,
            sharding_strategy=sharding_strategy, renew_ratio=renew_ratio, auth_token=auth_token,
            connect_timeout_s=connect_timeout_s, tls=tls, ssl_context=ssl_context,
        )
        self._setup(key, uint("limit", limit, 32), options, auth_token, on_lost)

    @property
    def limit(self) -> int:
        assert self._limit is not None  # always set for a semaphore
        return self._limit
