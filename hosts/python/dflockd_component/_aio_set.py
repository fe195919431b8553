"""`AsyncLockSet`: `LockSet` for asyncio, on a worker thread of its own with
an instance of the component of its own, as `AsyncLock` is (see `_aio`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, List, TypeVar

from ._errors import DflockdError, error
from ._locks import LockSet, OnLost
from ._options import Servers, TLSOption
from ._runtime import Runtime
from ._values import Grant, Loss

if TYPE_CHECKING:
    import ssl

_log = logging.getLogger("dflockd_component")

_T = TypeVar("_T")


class AsyncLockSet:
    """`LockSet` for asyncio: `async with AsyncLockSet([...]) as accounts:`,
    `await accounts.acquire()`, ... The same keywords as `LockSet` (no
    `runtime`: each object has its own); `on_lost` is called on the event
    loop. The keys and settings are checked by the first awaited call."""

    def __init__(
        self,
        keys: List[str],
        *,
        acquire_timeout_s: int | None = None,
        lease_ttl_s: int | None = None,
        servers: Servers | None = None,
        renew_ratio: float | None = None,
        auth_token: str | None = None,
        connect_timeout_s: float | None = None,
        tls: TLSOption = None,
        ssl_context: ssl.SSLContext | None = None,
        on_lost: OnLost | None = None,
    ) -> None:
        if isinstance(keys, str) or not all(isinstance(k, str) for k in keys):
            raise TypeError(f"keys must be a list of strings, not {keys!r}")
        self.key = " ".join(keys)
        self._keys = list(keys)
        self._options: dict[str, Any] = dict(
            acquire_timeout_s=acquire_timeout_s, lease_ttl_s=lease_ttl_s, servers=servers,
            renew_ratio=renew_ratio, auth_token=auth_token, connect_timeout_s=connect_timeout_s,
            tls=tls, ssl_context=ssl_context,
        )
        self._on_lost = on_lost
        self._sync: LockSet | None = None  # opened on the worker by the first call
        self._worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="dflockd-async")
        self._closed = False
        self._grants: List[Grant] = []
        self._losses = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    async def acquire(self) -> List[Grant] | None:
        """Waits until every member is held (their grants, in `keys` order),
        or until the acquire timeout passes (`None`: nothing held). Cancelled,
        the attempt is given up: a release queued behind it lets go of what
        it took."""

        def run(sync: LockSet) -> List[Grant] | None:
            grants = sync.acquire()
            self._grants = grants or []
            return grants

        try:
            return await self._run(run)
        except asyncio.CancelledError:
            try:
                self._worker.submit(self._give_up)
            except RuntimeError:
                pass  # closed meanwhile: the close releases
            raise

    async def release(self) -> bool:
        """`True` when the server confirmed each member's release; `False`
        when nothing was held. A lost set raises `LockLostError`, once."""
        self._grants = []
        return await self._run(lambda sync: sync.release())

    async def aclose(self) -> None:
        """Releases what is held (best effort) and closes; idempotent."""
        await asyncio.wrap_future(self._close_soon())

    @property
    def keys(self) -> List[str]:
        """The keys, in the order they are taken once opened (as given before)."""
        return list(self._sync.keys) if self._sync is not None else list(self._keys)

    @property
    def grants(self) -> List[Grant]:
        """Every member's grant, as of the last call, while held and not lost."""
        return list(self._grants)

    @property
    def is_held(self) -> bool:
        return bool(self._grants)

    @property
    def losses(self) -> int:
        return self._losses

    async def __aenter__(self) -> AsyncLockSet:
        try:
            granted = await self.acquire()
        except BaseException:
            await self.aclose()
            raise
        if granted is None:
            await self.aclose()
            raise error("timeout", f"{self.key!r} was not granted within the acquire timeout")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self.release()
        finally:
            await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"AsyncLockSet({self.key!r}, {state})"

    async def _run(self, call: Callable[[LockSet], _T]) -> _T:
        if self._closed:
            raise error("invalid-argument", f"the lock set {self.key!r} is closed")
        self._loop = asyncio.get_running_loop()
        return await self._loop.run_in_executor(self._worker, lambda: call(self._opened()))

    def _opened(self) -> LockSet:  # on the worker
        if self._sync is None:
            self._sync = LockSet(self._keys, on_lost=self._lost, runtime=Runtime(), **self._options)
        return self._sync

    def _give_up(self) -> None:  # on the worker, after the cancelled call
        self._grants = []
        if self._sync is not None:
            try:
                self._sync.release()
            except DflockdError as failure:  # lost meanwhile, or the server is gone
                _log.debug("releasing after a cancelled call on %r: %s", self, failure)

    def _close_soon(self) -> concurrent.futures.Future[Any]:
        if self._closed:
            done: concurrent.futures.Future[Any] = concurrent.futures.Future()
            done.set_result(None)
            return done
        self._closed = True
        self._grants = []
        closing = self._worker.submit(lambda: self._sync.close() if self._sync is not None else None)
        self._worker.shutdown(wait=False)
        return closing

    def _lost(self, loss: Loss) -> None:
        """The sync set's `on_lost`, on the renewal thread: the user's
        callback runs on the event loop when there is one."""
        self._grants = []
        self._losses += 1
        if self._on_lost is None:
            return
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._on_lost, loss)
                return
            except RuntimeError:
                pass  # the loop closed meanwhile
        self._on_lost(loss)
