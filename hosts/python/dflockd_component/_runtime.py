"""One instance of the component, the lock around it, and its renewal thread."""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any, Protocol

from wasmtime.component import ResourceAny

from ._bindings import Exports, field
from ._errors import DflockdError, error
from ._values import Loss

# How often the renewal thread calls `driver.drive` while anything is held.
# A Python host can neither wait on the component's pollable nor read the
# WASI monotonic clock its `next-deadline` is given in, so it polls; `drive`
# does nothing when nothing is due, and renewals are due seconds apart.
DRIVE_INTERVAL_S = 0.05
# While a renewal's reply is awaited: the component checks for it every 5 ms.
IN_FLIGHT_INTERVAL_S = 0.005


class _LossOwner(Protocol):
    def _owns(self, key: str, kind: int | None, fence: int) -> bool: ...
    def _lost(self, loss: Loss) -> None: ...


class Runtime:
    """A store and instance of the component, shared by the objects opened on it.

    A wasmtime store is not thread-safe, so every use of it holds `_lock`.
    A blocking call (`acquire`, `wait`) holds it for as long as it blocks, and
    other objects of the same runtime wait meanwhile (their leases are still
    renewed: the component renews during any blocking call). That is why
    objects use one runtime per thread by default (`for_thread`): threads that
    contend for one key, as in the FIFO example, would otherwise wait on each
    other inside the host. Give objects a `Runtime()` of their own to take
    them off their thread's.

    While anything is held, a daemon thread calls `drive` every
    `DRIVE_INTERVAL_S` (`IN_FLIGHT_INTERVAL_S` while a renewal awaits its
    reply) and hands each lost lease to the object that held it; it ends when
    nothing is held.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._exports = Exports()
        self._objects: weakref.WeakSet[_LossOwner] = weakref.WeakSet()
        # Resources of objects collected without `close`: dropped by the next
        # use of the store, since a finalizer may run on any thread at any time.
        self._orphans: list[ResourceAny] = []
        self._renewer: threading.Thread | None = None
        self._trap: str | None = None

    @property
    def trapped(self) -> bool:
        """Whether the component trapped, which leaves the instance unusable."""
        return self._trap is not None

    def call(self, interface: str, name: str, *args: Any) -> Any:
        with self._lock:
            return self._guarded(self._exports.call, interface, name, *args)

    def call_ok(self, interface: str, name: str, *args: Any, secrets: tuple[str | None, ...] = ()) -> Any:
        with self._lock:
            return self._guarded(self._exports.call_ok, interface, name, *args, secrets=secrets)

    def drop(self, resource: ResourceAny) -> None:
        with self._lock:
            if self._trap is None:  # after a trap the resource went with the instance
                self._guarded(self._exports.drop, resource)

    def orphan(self, resource: ResourceAny) -> None:
        """Schedules the drop of a resource whose object was collected unclosed."""
        self._orphans.append(resource)  # no lock: any thread, list.append is atomic

    def register(self, owner: _LossOwner) -> None:
        with self._lock:
            self._objects.add(owner)

    def renew_in_background(self) -> None:
        """Makes sure the renewal thread runs; called after every grant."""
        with self._lock:
            if self._renewer is None:
                self._renewer = threading.Thread(target=self._renew_loop, name="dflockd-renewal", daemon=True)
                self._renewer.start()

    def _guarded(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        # Holds `_lock`. After a trap the instance must not be entered again.
        if self._trap is not None:
            raise error("trap", f"an earlier trap left this instance unusable: {self._trap}")
        try:
            while self._orphans:
                self._exports.drop(self._orphans.pop())
            return call(*args, **kwargs)
        except DflockdError as failure:
            if failure.kind == "trap":
                self._trap = failure.detail
            raise

    def _renew_loop(self) -> None:
        interval = DRIVE_INTERVAL_S
        while True:
            time.sleep(interval)
            with self._lock:
                try:
                    lost = self._guarded(self._exports.call, "driver", "drive")
                    idle = not lost and self._guarded(self._exports.call, "driver", "next-deadline") is None
                    interval = IN_FLIGHT_INTERVAL_S if self._renewal_in_flight() else DRIVE_INTERVAL_S
                except DflockdError:
                    lost, idle = [], True  # a trap: every object's next call reports it
                if idle:
                    self._renewer = None
                deliveries = []
                for lease_lost in lost:
                    loss, kind = _loss(lease_lost)
                    owner = self._owner(loss, kind)
                    if owner is not None:
                        deliveries.append((owner, loss))
            for owner, loss in deliveries:  # outside the lock: a callback may take its time
                owner._lost(loss)
            if idle:
                return

    def _renewal_in_flight(self) -> bool:
        # Every renewal sent ends confirmed or as a lost lease, so more sent
        # than both means one awaits its reply (other losses can hide it:
        # that reply is then read at the slower pace, which is still safe).
        totals = self._guarded(self._exports.call, "driver", "totals")
        settled = field(totals, "renewals-confirmed") + field(totals, "leases-lost")
        return bool(field(totals, "renewals-sent") > settled)

    def _owner(self, loss: Loss, kind: int | None) -> _LossOwner | None:
        return next((o for o in list(self._objects) if o._owns(loss.key, kind, loss.fence)), None)


def _loss(lease_lost: Any) -> tuple[Loss, int | None]:
    """A `driver.lease-lost` record as a `Loss`, with its `kind` (None: a lock; else the limit)."""
    reason = lease_lost.reason
    return Loss(lease_lost.key, reason.cause, reason.detail, lease_lost.fence), lease_lost.kind


_thread_local = threading.local()


def for_thread() -> Runtime:
    """The calling thread's runtime, created on first use (and again after a trap)."""
    runtime: Runtime | None = getattr(_thread_local, "runtime", None)
    if runtime is None or runtime.trapped:
        runtime = _thread_local.runtime = Runtime()
    return runtime
