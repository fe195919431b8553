"""`Lock` and `Semaphore`: the component's `locks` resources, Python-shaped."""

from __future__ import annotations

import logging
import weakref
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, List, Literal, TypeVar

from wasmtime.component import Variant

from ._bindings import field, uint
from ._errors import DflockdError, error
from ._options import Servers, ShardingStrategy, TLSOption, object_settings
from ._runtime import Runtime, for_thread
from ._values import Grant, Loss

if TYPE_CHECKING:
    import ssl

_log = logging.getLogger("dflockd_component")

OnLost = Callable[[Loss], None]
_L = TypeVar("_L", bound="_Leased")


class _Leased:
    """What `Lock`, `Semaphore` and `LockSet` share: one component resource,
    its calls, its grants and its loss reports."""

    _resource: str  # the WIT resource name: "lock", "semaphore" or "lock-set"

    def _open(
        self,
        key: str,
        limit: int | None,
        options: List[Variant],
        auth_token: str | None,
        on_lost: OnLost | None,
        runtime: Runtime | None,
    ) -> None:
        self.key = key
        self._runtime = runtime or for_thread()
        self._auth_token = auth_token
        self._on_lost = on_lost
        self._losses = 0
        # The latest grant, kept after a loss: a loss report names the grant's
        # fence, which tells this object from others on the same key.
        self._last: Grant | None = None
        self._limit = limit
        self._handle: Any = None  # until `open` succeeds: `close` and `repr` still work
        limit_arg = () if limit is None else (uint("limit", limit, 32),)
        # A lock set opens with its keys (`key` is them, space-separated).
        first = key.split(" ") if self._resource == "lock-set" else key
        self._handle = self._runtime.call_ok(
            "locks", f"[static]{self._resource}.open", first, *limit_arg, options, secrets=(auth_token,)
        )
        self._finalizer = weakref.finalize(self, self._runtime.orphan, self._handle)
        self._runtime.register(self)

    def acquire(self) -> Grant | None:
        """Blocks until granted (the `Grant`, truthy), or until the acquire
        timeout passes (`None`: nothing held)."""
        return self._granted(self._call_ok("acquire"))

    def release(self) -> bool:
        """`True` when the server confirmed, `False` when nothing was held (a
        queue place is given up). A lost lease raises `LockLostError`, once."""
        return bool(self._call_ok("release"))

    def close(self) -> None:
        """Releases what is held (best effort), closes the connection and frees
        the object. Idempotent; the object is unusable afterwards."""
        if self._handle is not None:
            handle, self._handle = self._handle, None
            self._finalizer.detach()
            self._runtime.drop(handle)

    @property
    def is_held(self) -> bool:
        return bool(self._call("is-held"))

    @property
    def losses(self) -> int:
        """How many lost leases this object has been told of."""
        return self._losses

    def __enter__(self: _L) -> _L:
        try:
            granted = self.acquire()
        except BaseException:
            self.close()
            raise
        if granted is None:
            self.close()
            raise error("timeout", f"{self.key!r} was not granted within the acquire timeout")
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
        except DflockdError as failure:
            if failure.kind == "lock-lost":
                self._runtime.renew_in_background()  # `drive` reports the loss to `on_lost`
            raise

    def _method(self, name: str) -> str:
        return f"[method]{self._resource}.{name}"

    def _live(self) -> Any:
        if self._handle is None:
            raise error("invalid-argument", f"the {self._resource} {self.key!r} is closed")
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


class _OneKey(_Leased):
    """What a lock and a semaphore have and a lock set has not: one key, its
    grant, two-phase acquisition and an explicit renew."""

    def enqueue(self) -> Literal["acquired", "queued"]:
        """Joins the queue without blocking: `"acquired"` (held now) or `"queued"`
        (call `wait`)."""
        grant = self._call_ok("enqueue")  # the `enqueued` variant: a grant, or None for `queued`
        if grant is None:
            return "queued"
        self._granted(grant)
        return "acquired"

    def wait(self, timeout_s: int | None = None) -> Grant | None:
        """After `enqueue`: blocks until granted, or `timeout_s` seconds pass
        (`None`; default: the acquire timeout). Returns the grant at once after
        an `"acquired"` enqueue."""
        seconds = None if timeout_s is None else uint("timeout_s", timeout_s, 64)
        return self._granted(self._call_ok("wait", seconds))

    def renew(self) -> int:
        """Renews now (normally automatic). Returns the remaining seconds."""
        return int(self._call_ok("renew"))

    @property
    def grant(self) -> Grant | None:
        """The current grant, while held and not known lost."""
        return _grant(self._call("grant"))

    @property
    def token(self) -> str | None:
        """The grant's token (a secret: whoever has it can release the lock)."""
        grant = self.grant
        return grant.token if grant else None

    @property
    def fence(self) -> int | None:
        grant = self.grant
        return grant.fence if grant else None

    @property
    def lease(self) -> int | None:
        """The lease in seconds, as the server granted it."""
        grant = self.grant
        return grant.lease if grant else None


def _grant(record: Any) -> Grant | None:
    if record is None:
        return None
    return Grant(record.token, record.fence, field(record, "lease-s"))


class Lock(_OneKey):
    """An exclusive FIFO lock on one key, as the Python client's `SyncDistributedLock`.

    `with Lock("my-key") as lock:` acquires (raising `DflockdTimeoutError`, a
    `TimeoutError`, when not granted in time) and releases and closes on exit.
    While held, the lease is renewed in a background thread; a lost one is
    reported once to `on_lost(loss)` (from that thread).

    Every keyword is optional; `None` keeps the component's default:
    `acquire_timeout_s` (10; 0 is a try-lock) and `lease_ttl_s` (the server's)
    are whole seconds; `servers` defaults to `[("127.0.0.1", 6388)]`, a key
    routing to one of them by CRC-32 unless `sharding_strategy(key, n)` says
    otherwise; `renew_ratio` (0.5) is when in the lease to renew;
    `connect_timeout_s` (10) covers resolving, TCP, TLS and auth; `tls` is
    `True` or a `TLS(...)`, or `ssl_context` an `ssl.SSLContext` as far as it
    carries over (see `TLS`). `runtime` is the component instance to use
    (default: the calling thread's).
    """

    _resource = "lock"

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
        runtime: Runtime | None = None,
    ) -> None:
        options = object_settings(
            key, acquire_timeout_s=acquire_timeout_s, lease_ttl_s=lease_ttl_s, servers=servers,
            sharding_strategy=sharding_strategy, renew_ratio=renew_ratio, auth_token=auth_token,
            connect_timeout_s=connect_timeout_s, tls=tls, ssl_context=ssl_context,
        )
        self._open(key, None, options, auth_token, on_lost, runtime)


class Semaphore(_OneKey):
    """Up to `limit` holders of one key at a time, FIFO, as the Python
    client's `SyncDistributedSemaphore`; otherwise as `Lock`."""

    _resource = "semaphore"

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
        runtime: Runtime | None = None,
    ) -> None:
        options = object_settings(
            key, acquire_timeout_s=acquire_timeout_s, lease_ttl_s=lease_ttl_s, servers=servers,
            sharding_strategy=sharding_strategy, renew_ratio=renew_ratio, auth_token=auth_token,
            connect_timeout_s=connect_timeout_s, tls=tls, ssl_context=ssl_context,
        )
        self._open(key, limit, options, auth_token, on_lost, runtime)

    @property
    def limit(self) -> int:
        assert self._limit is not None  # always set for a semaphore
        return self._limit


class LockSet(_Leased):
    """Several locks taken as one: every key, or none (Redisson's MultiLock).

    The members are taken one at a time in one order (by server, then key),
    so that two sets sharing keys never wait for each other in a cycle,
    under one deadline (`acquire_timeout_s`, for the whole set); when it
    passes, or a member fails, what was taken is released before `acquire`
    answers. While held, every member renews; the loss of any member is the
    loss of the set (`on_lost` once, the other members released). `with
    LockSet([...]) as held:` acquires, and releases and closes on exit. The
    keywords are `Lock`'s, but `sharding_strategy`: each member routes by
    CRC-32.
    """

    _resource = "lock-set"

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
        runtime: Runtime | None = None,
    ) -> None:
        if isinstance(keys, str) or not all(isinstance(k, str) for k in keys):
            raise TypeError(f"keys must be a list of strings, not {keys!r}")
        keys = list(keys)
        if any(not k or any(c.isspace() for c in k) for k in keys):
            # `key` joins them with spaces; the component refuses such keys anyway.
            raise error("invalid-argument", "a key is empty or has whitespace")
        options = object_settings(
            keys[0] if keys else "", acquire_timeout_s=acquire_timeout_s, lease_ttl_s=lease_ttl_s,
            servers=servers, sharding_strategy=None, renew_ratio=renew_ratio, auth_token=auth_token,
            connect_timeout_s=connect_timeout_s, tls=tls, ssl_context=ssl_context,
        )
        self._members: set[tuple[str, int]] = set()
        self._open(" ".join(keys), None, options, auth_token, on_lost, runtime)
        self.keys: List[str] = list(self._call("keys"))
        """The keys, in the order they are taken."""

    def acquire(self) -> List[Grant] | None:  # type: ignore[override]
        """Blocks until every member is held (their grants, in `keys` order,
        a non-empty list) or until the acquire timeout passes (`None`:
        nothing held)."""
        records = self._call_ok("acquire")
        if records is None:
            return None
        grants = [g for g in (_grant(r) for r in records) if g is not None]
        self._members = {(k, g.fence) for k, g in zip(self.keys, grants)}
        self._tokens = tuple(g.token for g in grants)
        self._runtime.renew_in_background()
        return grants

    @property
    def grants(self) -> List[Grant]:
        """Every member's grant while the whole set is held; else `[]`."""
        return [g for g in (_grant(r) for r in self._call("grants")) if g is not None]

    def _secrets(self) -> tuple[str | None, ...]:
        return (self._auth_token, *getattr(self, "_tokens", ()))

    def _owns(self, key: str, kind: int | None, fence: int) -> bool:
        # The set is lost with any member: the first loss that names one is
        # its, the others (members of a server that died with it) are not.
        if kind is None and (key, fence) in self._members:
            self._members.clear()
            return True
        return False


def opened(
    cls: type[_L], key: str, limit: int | None, options: List[Variant], auth_token: str | None,
    on_lost: OnLost | None, runtime: Runtime,
) -> _L:
    """A `Lock` or `Semaphore` from settings already built (the asyncio
    classes build them on the caller's thread, open on their worker's)."""
    obj = cls.__new__(cls)
    obj._open(key, limit, options, auth_token, on_lost, runtime)
    return obj
