"""The exceptions: one base class, one subclass per WIT `error` case.

Each subclass also derives from the built-in exception a Python caller
already catches for that kind of failure (`TimeoutError`, `ConnectionError`,
`PermissionError`, `ValueError`), as the Python client's do, so
`except TimeoutError:` works without importing anything from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class DflockdError(Exception):
    """Every failure of the component, and of the wrapper around it.

    `kind` is the WIT `error` case (`"timeout"`, `"auth"`, `"lock-lost"`,
    `"invalid-argument"`, `"connection"`, `"server"`, ...), plus `"trap"` when
    the component itself failed (its instance is then unusable) and
    `"component-missing"` when there is no component file. `detail` is the
    case's text, if any; for `lock-lost`, `cause` is the WIT `loss-cause`.
    Neither ever holds an auth token or a whole lock token.
    """

    def __init__(self, kind: str, detail: str = "", cause: str | None = None) -> None:
        self.kind = kind
        self.detail = detail
        self.cause = cause
        parts = [kind] + [p for p in (cause, detail) if p]
        super().__init__(": ".join(parts))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickling (multiprocessing, concurrent.futures) rebuilds from the
        # three fields, not from `args`, which holds the joined message.
        return (type(self), (self.kind, self.detail, self.cause))


class DflockdTimeoutError(DflockdError, TimeoutError):
    """`timeout`: a client-side deadline passed (connecting, or a reply that
    never came); also raised by `with Lock(...)` when not granted in time."""


class AuthError(DflockdError, PermissionError):
    """`auth`: the auth token is missing or wrong."""


class MaxLocksError(DflockdError):
    """`max-locks`: the server's cap on distinct keys is reached."""


class MaxWaitersError(DflockdError):
    """`max-waiters`: the key's queue is full."""


class LimitMismatchError(DflockdError, ValueError):
    """`limit-mismatch`: the semaphore key exists with another limit."""


class NotQueuedError(DflockdError):
    """`not-enqueued`: `wait` without a matching `enqueue` on the connection."""


class AlreadyQueuedError(DflockdError):
    """`already-enqueued`: a second `enqueue` for the key on the connection."""


class LeaseExpiredError(DflockdError):
    """`lease-expired`: the lease ran out before the operation."""


class DrainingError(DflockdError):
    """`draining`: the server is shutting down."""


class NotLeaderError(DflockdError):
    """`not-leader`: a cluster follower answered; `leader` is its `host:port`."""

    @property
    def leader(self) -> str:
        return self.detail


class LockLostError(DflockdError):
    """`lock-lost`: the lease of a held lock was lost; `cause` says why."""


class ServerError(DflockdError):
    """`server`: the server answered a plain `error` (e.g. token not held)."""


class ProtocolError(DflockdError, ConnectionError):
    """`protocol`: the server's reply broke the protocol; the connection was closed."""


class DflockdConnectionError(DflockdError, ConnectionError):
    """`connection`: connecting, resolving, reading or writing failed."""


class TLSError(DflockdError, ConnectionError):
    """`tls`: TLS could not be set up (unknown issuer, wrong name, ...) or failed."""


class InvalidArgumentError(DflockdError, ValueError):
    """`invalid-argument`: a bad value (empty key, out-of-range number,
    wrong state). Nothing was sent."""


class TrapError(DflockdError, RuntimeError):
    """`trap`: the component itself failed; its instance is unusable."""


class ComponentNotFoundError(DflockdError, FileNotFoundError):
    """`component-missing`: no `dflockd_component.wasm` to load."""


_BY_KIND: dict[str, type[DflockdError]] = {
    "timeout": DflockdTimeoutError,
    "auth": AuthError,
    "max-locks": MaxLocksError,
    "max-waiters": MaxWaitersError,
    "limit-mismatch": LimitMismatchError,
    "not-enqueued": NotQueuedError,
    "already-enqueued": AlreadyQueuedError,
    "lease-expired": LeaseExpiredError,
    "draining": DrainingError,
    "not-leader": NotLeaderError,
    "lock-lost": LockLostError,
    "server": ServerError,
    "protocol": ProtocolError,
    "connection": DflockdConnectionError,
    "tls": TLSError,
    "invalid-argument": InvalidArgumentError,
    "trap": TrapError,
    "component-missing": ComponentNotFoundError,
}


def error(kind: str, detail: str = "", cause: str | None = None) -> DflockdError:
    """The exception for `kind`: its subclass (`DflockdError` for a case a
    newer component may add)."""
    return _BY_KIND.get(kind, DflockdError)(kind, detail, cause)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Removes known secrets from `text`.

    The component already keeps them out of its errors; this is a second
    guard, since an error message tends to end up in a log.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text
