"""`stats`: the server's tables, through the component's low-level `connection`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ._bindings import server
from ._errors import error
from ._options import TLSOption, settings
from ._runtime import Runtime, for_thread

if TYPE_CHECKING:
    import ssl


@dataclass(frozen=True)
class LockInfo:
    """A held lock."""

    key: str
    owner_conn_id: int
    lease_expires_in_s: float
    waiters: int


@dataclass(frozen=True)
class SemaphoreInfo:
    """A semaphore with holders."""

    key: str
    limit: int
    holders: int
    waiters: int


@dataclass(frozen=True)
class IdleInfo:
    """A key nobody holds that the server still remembers."""

    key: str
    idle_s: float


@dataclass(frozen=True)
class Stats:
    """The server's `stats` reply; `cluster` is a clustered server's raw JSON."""

    connections: int
    locks: list[LockInfo]
    semaphores: list[SemaphoreInfo]
    idle_locks: list[IdleInfo]
    idle_semaphores: list[IdleInfo]
    cluster: str | None


_T = TypeVar("_T")


def _plain(cls: type[_T], record: Any) -> _T:
    """A JSON object as `cls`, whose fields it must have (others are ignored)."""
    return cls(**{f.name: record[f.name] for f in dataclasses.fields(cls)})  # type: ignore[arg-type]


def _decode(text: str) -> Stats:
    """The server's JSON object (the component passes it on unparsed) as
    `Stats`; what does not fit is a `ProtocolError`, as in the other hosts."""
    try:
        reply = json.loads(text)
        cluster = reply.get("cluster")
        return Stats(
            connections=int(reply["connections"]),
            locks=[_plain(LockInfo, r) for r in reply["locks"]],
            semaphores=[_plain(SemaphoreInfo, r) for r in reply["semaphores"]],
            idle_locks=[_plain(IdleInfo, r) for r in reply["idle_locks"]],
            idle_semaphores=[_plain(IdleInfo, r) for r in reply["idle_semaphores"]],
            cluster=None if cluster is None else json.dumps(cluster),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise error("protocol", f"bad stats JSON: {e!r}") from None


def stats(
    host: str,
    port: int,
    *,
    auth_token: str | None = None,
    connect_timeout_s: float | None = None,
    tls: TLSOption = None,
    ssl_context: ssl.SSLContext | None = None,
    runtime: Runtime | None = None,
) -> Stats:
    """Opens a connection to one server, asks for its `stats`, closes it.
    The keywords are `Lock`'s that apply to one connection."""
    runtime = runtime or for_thread()
    secrets = (auth_token,)
    options = settings(auth_token=auth_token, connect_timeout_s=connect_timeout_s, tls=tls, ssl_context=ssl_context)
    connection = runtime.call_ok(
        "connection", "[static]connection.create", server(host, port), options, secrets=secrets
    )
    try:
        runtime.call_ok("connection", "[method]connection.connect", connection, secrets=secrets)
        reply = runtime.call_ok("connection", "[method]connection.stats", connection, secrets=secrets)
    finally:
        runtime.drop(connection)  # the destructor closes the connection
    return _decode(reply)
