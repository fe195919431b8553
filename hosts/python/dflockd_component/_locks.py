"""`Lock` and `Semaphore`: the component's `locks` resources, Python-shaped."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Literal, Self

from ._bindings import field, settings, uint
from ._errors import DflockdError
from ._runtime import Runtime, for_thread
from ._values import Grant, Loss

_log = logging.getLogger("dflockd_component")

OnLost = Callable[[Loss], None]


class _Leased:
    """What `Lock` and `Semaphore` share: one component resource, its calls,
    its grant and its loss reports."""

    _resource: str  # the WIT resource name: "lock" or "semaphore"

    def __init__(
        self,
        key: str,
        limit: int | None,
        servers: Sequence[tuple[str, int]] | None,
        lease_ttl: int | None,
        acquire_timeout: int | None,
        auth_token: str | None,
        renew_ratio: float | None,
        on_lost: OnLost | None,
        runtime: Runtime | None,
    ) -> None:
        self._runtime = runtime or for_thread()
        self._auth_token = auth_token
        self._on_lost = on_lost
        self._losses = 0
        # The latest grant, kept after a loss: a loss report names the grant's
        # fence, which tells this object from others on the same key.
        self._last: Grant | None = None
        self._limit = limit
        options = settings(
            list(servers) if servers is not None else None, lease_ttl, acquire_timeout, auth_token, renew_ratio
        )
        limit_arg = () if limit is None else (uint("limit", limit, 32),)
        self._handle = self._runtime.call_ok(
            "locks", f"[static]{self._resource}.open", key, *limit_arg, options, secrets=(auth_token,)
        )
        self.key = key
        self._finalizer = weakref.finalize(self, self._runtime.orphan, self._handle)
        self._runtime.register(self)

    def acquire(self) -> Grant | None:
        """Blocks until granted, or until the acquire timeout passes (`None`)."""
        return self._granted(self._call_ok("acquire"))

    def enqueue(self) -> Literal["acquired", "queued"]:
        """Joins the queue without blocking: `"acquired"` (held now) or `"queued"`."""
        grant = self._call_ok("enqueue")  # the `enqueued` variant: a grant, or None for `queued`
        if grant is None:
            return "queued"
        self._granted(grant)
        return "acquired"

    def wait(self, timeout: int | None = None) -> Grant | None:
        """After `enqueue`: blocks until granted, or `timeout` seconds pass (`None`;
        default: the acquire timeout)."""
        seconds = None if timeout is None else uint("timeout", timeout, 64)
        return self._granted(self._call_ok("wait", seconds))

    def release(self) -> bool:
        """`True` when the server confirmed, `False` when nothing was held (a
        queue place is given up). A lost lease raises `lock-lost`, once."""
        return bool(self._call_ok("release"))

    def renew(self) -> int:
        """Renews now (normally automatic). Returns the remaining seconds."""
        return int(self._call_ok("renew"))

    def close(self) -> None:
        """Releases what is held (best effort), closes the connection and frees
        the object. Idempotent; the object is unusable afterwards."""
        if self._handle is not None:
            handle, self._handle = self._handle, None
            self._finalizer.detach()
            self._runtime.drop(handle)

    @property
    def grant(self) -> Grant | None:
        """The current grant, while held and not known lost."""
        return _grant(self._call("grant"))

    @property
    def is_held(self) -> bool:
        return bool(self._call("is-held"))

    @property
    def token(self) -> str | None:
        grant = self.grant
        return grant.token if grant else None

    @property
    def fence(self) -> int | None:
        grant = self.grant
        return grant.fence if grant else None

    @property
    def lease(self) -> int | None:
        grant = self.grant
        return grant.lease if grant else None

    @property
    def losses(self) -> int:
        """How many lost leases this object has been told of."""
        return self._losses

    def __enter__(self) -> Self:
        try:
            granted = self.acquire()
        except BaseException:
            self.close()
            raise
        if granted is None:
            self.close()
            raise DflockdError("timeout", f"{self.key!r} was not granted within the acquire timeout")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.release()
        finally:
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self._handle is None else "open"
        return f"{type(self).__name__}({self.key!r}, {state})"

    def _call(self, method: str, *args: Any) -> Any:
        return self._runtime.call("locks", self._method(method), self._live(), *args)

    def _call_ok(self, method: str, *args: Any) -> Any:
        try:
            return self._runtime.call_ok("locks", self._method(method), self._live(), *args, secrets=self._secrets())
        except DflockdError as error:
            if error.kind == "lock-lost":
                self._runtime.renew_in_background()  # `drive` reports the loss to `on_lost`
            raise

    def _method(self, name: str) -> str:
        return f"[method]{self._resource}.{name}"

    def _live(self) -> Any:
        if self._handle is None:
            raise DflockdError("invalid-argument", f"the {self._resource} {self.key!r} is closed")
        return self._handle

    def _secrets(self) -> tuple[str | None, ...]:
        return (self._auth_token, self._last.token if self._last else None)

    def _granted(self, record: Any) -> Grant | None:
        grant = _grant(record)
        if grant is not None:
            self._last = grant
            self._runtime.renew_in_background()
        return grant

    # Called by the runtime's renewal thread.
    def _owns(self, key: str, kind: int | None, fence: int) -> bool:
        return self.key == key and self._limit == kind and self._last is not None and self._last.fence == fence

    def _lost(self, loss: Loss) -> None:
        self._losses += 1
        if self._on_lost is not None:
            try:
                self._on_lost(loss)
            except Exception:
                _log.exception("the on_lost callback of %r failed", self)


def _grant(record: Any) -> Grant | None:
    if record is None:
        return None
    return Grant(record.token, record.fence, field(record, "lease-s"))


class Lock(_Leased):
    """An exclusive FIFO lock on one key, as the Python client's `SyncDistributedLock`.

    `with Lock("my-key") as lock:` acquires (raising `DflockdError` of kind
    `timeout` when not granted in time) and always releases on exit. While
    held, the lease is renewed in the background; a lost one is reported once
    to `on_lost`. `servers=None` is the component's default, 127.0.0.1:6388.
    Durations are whole seconds.
    """

    _resource = "lock"

    def __init__(
        self,
        key: str,
        servers: Sequence[tuple[str, int]] | None = None,
        lease_ttl: int | None = None,
        acquire_timeout: int | None = None,
        auth_token: str | None = None,
        renew_ratio: float | None = None,
        on_lost: OnLost | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        super().__init__(key, None, servers, lease_ttl, acquire_timeout, auth_token, renew_ratio, on_lost, runtime)


class Semaphore(_Leased):
    """Up to `limit` holders of one key at a time, FIFO, as the Python
    client's `SyncDistributedSemaphore`; otherwise as `Lock`."""

    _resource = "semaphore"

    def __init__(
        self,
        key: str,
        limit: int,
        servers: Sequence[tuple[str, int]] | None = None,
        lease_ttl: int | None = None,
        acquire_timeout: int | None = None,
        auth_token: str | None = None,
        renew_ratio: float | None = None,
        on_lost: OnLost | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        super().__init__(key, limit, servers, lease_ttl, acquire_timeout, auth_token, renew_ratio, on_lost, runtime)

    @property
    def limit(self) -> int:
        assert self._limit is not None  # always set for a semaphore
        return self._limit
