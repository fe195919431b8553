"""The raw component: loading it, instantiating it, calling its exports.

Everything that knows how wasmtime-py 47 represents component values lives
here, so the rest of the package deals in plain Python values:

- results come back untagged: `ok` is the bare value, `err` a `Variant`
  (none of our `ok` types is itself a tagged variant, so that is unambiguous);
- `option<T>` is `None` or the value, `enqueued` is a grant record
  (`acquired`) or `None` (`queued`), `kind` is `None` (lock) or the limit;
- records are `Record` objects whose dashed field names need `getattr`;
- resources are `ResourceAny` handles: passed as they are to methods (a
  `borrow`, which wasmtime-py clones), freed with `drop(store)`, which runs
  the component's destructor;
- every call must be followed by `post_return`;
- integers are not range-checked by wasmtime-py (ctypes truncates them), so
  `uint` checks them first;
- wasmtime-py re-reads a function's type through the C API on every call,
  which for our `result<_, error>` (16 error cases) costs about as much as
  the call itself: `_freeze_signature` reads it once.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import os
import platform
import threading
import warnings
from pathlib import Path
from typing import Any

import wasmtime
import wasmtime._bindings as capi
from wasmtime.component import Component, Func, Instance, Linker, Record, ResourceAny, ValType, Variant
from wasmtime.component._types import VariantLikeType

from ._errors import DflockdError, error, redact

WASMTIME_VERSION = importlib.metadata.version("wasmtime")

if WASMTIME_VERSION.split(".")[0] != "47":
    warnings.warn(
        f"dflockd_component needs wasmtime-py 47.x, found {WASMTIME_VERSION}: from 48.0 on "
        "wasmtime turns WASI TCP off and its C API cannot turn it back on, so every "
        "connection fails with access-denied (pip install wasmtime==47.0.1)",
        RuntimeWarning,
        stacklevel=2,
    )

_INTERFACE = "dflockd:client/{}@0.3.0"

_WASM = "dflockd_component.wasm"
# In a checkout of the repository (this file is hosts/python/dflockd_component/
# _bindings.py there), the build's output. `.parent` rather than `.parents[3]`:
# an installed package may sit less than three levels below the root.
_CHECKOUT = Path(__file__).resolve().parent.parent.parent.parent

# One engine and linker per process: compiling is per engine, and a
# serialized component only loads into an engine with the same settings.
_engine = wasmtime.Engine()
_linker = Linker(_engine)
_linker.add_wasip2()
_component: Component | None = None
_setup = threading.Lock()  # one compile, and instantiate is not documented thread-safe


def component_bytes() -> bytes:
    """The component's bytes.

    `$DFLOCKD_COMPONENT` first (an explicit choice: the test harness points it
    at the build under test), else the copy inside this package (the wheel's),
    else, in a checkout of the repository, the build's output.
    """
    chosen = os.environ.get("DFLOCKD_COMPONENT")
    if chosen:
        try:
            return Path(chosen).read_bytes()
        except OSError as why:
            raise error("component-missing", f"DFLOCKD_COMPONENT={chosen}: {why.strerror or why}") from None
    packaged = importlib.resources.files(__package__) / _WASM
    if packaged.is_file():
        return packaged.read_bytes()
    built = _CHECKOUT / "target" / "wasm32-wasip2" / "guest" / _WASM
    if (_CHECKOUT / "wit" / "world.wit").is_file() and built.is_file():
        return built.read_bytes()
    raise error(
        "component-missing",
        f"no {_WASM} in the package: install the dflockd-component wheel (it includes one), "
        "set DFLOCKD_COMPONENT to a built component, or, in a checkout of the repository, "
        "build it with `cargo xtask build`",
    )


def _cache_dir() -> Path:
    """As the Rust host's: `$DFLOCKD_CACHE_DIR`, else `$XDG_CACHE_HOME/dflockd-component`,
    else `~/.cache/dflockd-component` (the file names differ: one per wasmtime)."""
    if os.environ.get("DFLOCKD_CACHE_DIR"):
        return Path(os.environ["DFLOCKD_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dflockd-component"


def _load_component() -> Component:
    """Compiles the component, or loads it from the cache (a few seconds saved).

    The cache entry is keyed by the wasm file's hash, the wasmtime version and
    the machine, so a rebuilt component or another wasmtime compiles afresh.
    The cache holds native code that is loaded without checks: it must be the
    user's own directory.
    """
    wasm = component_bytes()
    key = f"{hashlib.sha256(wasm).hexdigest()[:32]}-wasmtime-{WASMTIME_VERSION}-{platform.machine()}"
    cached = _cache_dir() / f"{key}.cwasm"
    if cached.is_file():
        try:
            return Component.deserialize_file(_engine, str(cached))
        except wasmtime.WasmtimeError:
            pass  # corrupt or incompatible: compile and overwrite it
    component = Component(_engine, wasm)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(component.serialize())
        os.replace(partial, cached)  # atomic: a concurrent reader never sees half a file
    except OSError:
        pass  # an unwritable cache only costs the next start its compile
    return component


def _network_wasi() -> wasmtime.WasiConfig:
    """WASI with the host's network: TCP sockets and name lookup.

    wasmtime-py has no public call for either; the C API does (47.x).
    """
    wasi = wasmtime.WasiConfig()
    capi.wasi_config_inherit_network(wasi.ptr())
    capi.wasi_config_allow_ip_name_lookup(wasi.ptr(), True)
    return wasi


class Exports:
    """One store and one instance of the component. Not thread-safe: the
    caller serializes every use (see `_runtime.Runtime`)."""

    def __init__(self) -> None:
        global _component
        self.store = wasmtime.Store(_engine)
        self.store.set_wasi(_network_wasi())
        with _setup:
            if _component is None:
                _component = _load_component()
            self._instance: Instance = _linker.instantiate(self.store, _component)
        self._funcs: dict[tuple[str, str], Func] = {}

    def _func(self, interface: str, name: str) -> Func:
        func = self._funcs.get((interface, name))
        if func is None:
            store, instance = self.store, self._instance
            iface = instance.get_export_index(store, _INTERFACE.format(interface))
            index = instance.get_export_index(store, name, iface) if iface else None
            found = instance.get_func(store, index) if index else None
            if found is None:
                raise error("trap", f"the component exports no {interface}#{name}")
            _freeze_signature(found, store)
            func = self._funcs[(interface, name)] = found
        return func

    def call(self, interface: str, name: str, *args: Any) -> Any:
        """Calls an export; a trap is a `TrapError`."""
        func = self._func(interface, name)
        try:
            value = func(self.store, *args)
            func.post_return(self.store)
        except wasmtime.WasmtimeError as trap:
            raise error("trap", str(trap)) from None
        return value

    def call_ok(self, interface: str, name: str, *args: Any, secrets: tuple[str | None, ...] = ()) -> Any:
        """Calls an export returning `result<T, error>`: `T`, or raises its error."""
        value = self.call(interface, name, *args)
        if isinstance(value, Variant):
            raise error_from(value, secrets)
        return value

    def drop(self, resource: ResourceAny) -> None:
        """Runs the component's destructor of an owned resource."""
        try:
            resource.drop(self.store)
        except wasmtime.WasmtimeError as trap:
            raise error("trap", str(trap)) from None


class _Signature:
    """What `Func.__call__` reads from `Func.type(store)`: its params and result."""

    def __init__(self, params: list[tuple[str, ValType]], result: ValType | None) -> None:
        self.params = params
        self.result = result


def _freeze_signature(func: Func, store: wasmtime.Store) -> None:
    """Makes `func` read its type once instead of on every call.

    wasmtime-py 47.0.1 (pinned) calls `self.type(store)` on each call, and
    lifting a variant, option or result walks its cases through the C API
    twice per value (`_tagged`, `_cases`); for `result<option<grant>, error>`
    that is ~150 us of a ~350 us call. A function's type never changes, so
    the instance attributes set here answer from memory (3x the lock
    throughput); values are lowered and lifted by wasmtime-py as before.
    """
    ty = func.type(store)
    signature = _Signature([(n, _frozen(t)) for n, t in ty.params], None if ty.result is None else _frozen(ty.result))
    setattr(func, "type", lambda _store: signature)  # an instance attribute: shadows the method


def _frozen(ty: ValType) -> ValType:
    if isinstance(ty, VariantLikeType):
        cases = [(name, None if case is None else _frozen(case)) for name, case in ty._cases()]
        ty._cases = lambda: cases  # type: ignore[method-assign]
        tagged = VariantLikeType._tagged(ty)  # reads the frozen cases
        ty._tagged = lambda: tagged  # type: ignore[method-assign]
    return ty


def error_from(err: Variant, secrets: tuple[str | None, ...]) -> DflockdError:
    """The WIT `error` as a `DflockdError`; a sandbox without TCP says so loudly."""
    if err.tag == "lock-lost":
        loss: Any = err.payload
        return error("lock-lost", redact(loss.detail, secrets), cause=loss.cause)
    detail = redact(err.payload or "", secrets)
    if err.tag == "connection" and "access-denied" in detail:
        detail = (
            f"{detail} -- the sandbox has no TCP: wasmtime-py must be 47.x (48+ turned WASI "
            f"TCP off and its C API cannot turn it back on); installed: wasmtime {WASMTIME_VERSION}"
        )
    return error(err.tag, detail)


def uint(name: str, value: Any, bits: int) -> int:
    """`value` as a WIT `u<bits>`, or `invalid-argument` (wasmtime-py would truncate it)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise error("invalid-argument", f"{name} must be an integer in 0..2^{bits}")
    return value


def server(host: str, port: int) -> Record:
    record = Record()  # wasmtime-py lowers a record from its attributes
    setattr(record, "host", host)
    setattr(record, "port", uint("port", port, 16))
    return record


def field(record: Record, name: str) -> Any:
    """A record field by its WIT name (`lease-s`): wasmtime-py keeps the dashes."""
    return getattr(record, name)
