"""`AsyncLockSet`: `LockSet` for asyncio, on a worker thread of its own with
an instance of the component of its own, as `AsyncLock` is (see `_worker`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, List

from ._errors import error
from ._locks import LockSet, OnLost
from ._options import Servers, TLSOption
from ._runtime import Runtime
from ._values import Grant, Loss
from ._worker import _OnWorker

if TYPE_CHECKING:
    import ssl


class AsyncLockSet(_OnWorker[LockSet]):
    """`LockSet` for asyncio: `async with AsyncLockSet([...]) as accounts:`,
    `await accounts.acquire()`, ... The same keywords as `LockSet` (no
    `runtime`: each object has its own); `on_lost` is called on the event
    loop. The keys and settings are checked by the first awaited call."""

    _resource = "lock set"

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
        self._start_worker(" ".join(keys), on_lost)
        self._keys = list(keys)
        self._options: dict[str, Any] = dict(
            acquire_timeout_s=acquire_timeout_s, lease_ttl_s=lease_ttl_s, servers=servers,
            renew_ratio=renew_ratio, auth_token=auth_token, connect_timeout_s=connect_timeout_s,
            tls=tls, ssl_context=ssl_context,
        )
        self._grants: List[Grant] = []
        self._losses = 0

    async def acquire(self) -> List[Grant] | None:
        """Waits until every member is held (their grants, in `keys` order),
        or until the acquire timeout passes (`None`: nothing held). Cancelled,
        the attempt is given up: a release queued behind it lets go of what
        it took."""

        def run(sync: LockSet) -> List[Grant] | None:
            grants = sync.acquire()
            self._grants = grants or []
            return grants

        return await self._run_giving_up_when_cancelled(run)

    async def release(self) -> bool:
        """`True` when the server confirmed each member's release; `False`
        when nothing was held. A lost set raises `LockLostError`, once."""
        self._grants = []
        return await self._run(lambda sync: sync.release())

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

    def _opened(self) -> LockSet:  # on the worker
        if self._sync is None:
            self._sync = LockSet(self._keys, on_lost=self._lost, runtime=Runtime(), **self._options)
        return self._sync

    def _forget(self) -> None:
        self._grants = []

    def _lost(self, loss: Loss) -> None:
        """The sync set's `on_lost`, on the renewal thread: the user's
        callback runs on the event loop when there is one."""
        self._grants = []
        self._losses += 1
        self._tell(loss)
