"""What every asyncio object shares: a worker thread of its own on which its
sync twin (with an instance of the component of its own) makes every call,
one at a time; cancellation, close, and `on_lost` handed to the event loop.

A component call blocks (an `acquire` for up to its timeout), so the event
loop never makes one itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from types import TracebackType
from typing import Any, Callable, Generic, TypeVar

from ._errors import DflockdError, error
from ._locks import OnLost
from ._values import Loss

_log = logging.getLogger("dflockd_component")

_T = TypeVar("_T")
_S = TypeVar("_S")


class _OnWorker(Generic[_S]):
    """The worker and the sync object `_opened` makes there. Subclasses say
    what they are called (`_resource`), how to open the sync object, and
    what `_forget` clears (the grants as last reported)."""

    _resource: str

    def _start_worker(self, key: str, on_lost: OnLost | None) -> None:
        self.key = key
        self._on_lost = on_lost
        self._sync: _S | None = None  # opened on the worker by the first call
        self._worker = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="dflockd-async")
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def _opened(self) -> _S:  # on the worker
        raise NotImplementedError

    def _forget(self) -> None:
        """Clears what is reported held: nobody who can use it holds it."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Releases what is held (best effort), closes the connection and ends
        the worker thread. Idempotent; the object is unusable afterwards."""
        await asyncio.wrap_future(self._close_soon())

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self.release()
        finally:
            await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"{type(self).__name__}({self.key!r}, {state})"

    async def _run(self, call: Callable[[_S], _T]) -> _T:
        if self._closed:
            raise error("invalid-argument", f"the {self._resource} {self.key!r} is closed")
        self._loop = asyncio.get_running_loop()
        return await self._loop.run_in_executor(self._worker, lambda: call(self._opened()))

    async def _run_giving_up_when_cancelled(self, call: Callable[[_S], _T]) -> _T:
        """`_run` for a call that may grant (an acquire, an enqueue, a wait).

        A blocked component call cannot be interrupted: cancelled, it still
        runs to its end on the worker. Cancelling gives the attempt up, so a
        `release` queued behind the call on the same worker lets go of what
        it was granted, or of the queue place it holds; calls made after the
        cancellation queue behind that release.
        """
        try:
            return await self._run(call)
        except asyncio.CancelledError:
            try:
                self._worker.submit(self._give_up)
            except RuntimeError:
                pass  # closed meanwhile: the close releases
            raise

    def _give_up(self) -> None:  # on the worker, after the cancelled call
        self._forget()
        if self._sync is not None:
            try:
                self._sync.release()
            except DflockdError as failure:  # lost meanwhile, or the server is gone: nothing held either way
                _log.debug("releasing after a cancelled call on %r: %s", self, failure)

    def _close_soon(self) -> concurrent.futures.Future[Any]:
        """Queues the close behind any running call and lets the worker end."""
        if self._closed:
            done: concurrent.futures.Future[Any] = concurrent.futures.Future()
            done.set_result(None)
            return done
        self._closed = True
        self._forget()
        closing = self._worker.submit(lambda: self._sync.close() if self._sync is not None else None)
        self._worker.shutdown(wait=False)
        return closing

    def _tell(self, loss: Loss) -> None:
        """Calls the user's `on_lost` on the event loop when there is one
        (the sync object reports on its renewal thread)."""
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
