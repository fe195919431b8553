"""The wrapper against a server over TCP: the seed's names, asyncio, the
exception classes, the connect timeout, TLS, and a sandbox without TCP.

    python -m unittest -v test_network

Starts `$DFLOCKD_BIN` (default: the repository's
target/release/dflockd-testserver, in dialect v1) on free ports; fails, never
skips, when it is missing. TLS certificates are made for the run with the
`cryptography` package when it is installed, else with the `openssl` CLI.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path
from typing import Any, Callable
from unittest import mock

import wasmtime

import dflockd_component
from dflockd_component import (
    TLS,
    AsyncLock,
    AsyncLockSet,
    AsyncSemaphore,
    AuthError,
    ComponentNotFoundError,
    DflockdConnectionError,
    DflockdError,
    DflockdTimeoutError,
    InvalidArgumentError,
    Lock,
    LockSet,
    Loss,
    Runtime,
    Semaphore,
    TLSError,
    _bindings,
    stats,
)
from dflockd_component._errors import error

REPO = Path(__file__).resolve().parents[2]
DFLOCKD = Path(os.environ.get("DFLOCKD_BIN", REPO / "target" / "release" / "dflockd-testserver"))


class Server:
    """A server on a free loopback port, killed at cleanup."""

    def __init__(self, test: unittest.TestCase, *flags: str) -> None:
        if not DFLOCKD.is_file():
            test.fail(f"no server at {DFLOCKD}: run `cargo xtask setup` (it builds the test server) or set DFLOCKD_BIN")
        self.port = closed_port()
        dialect = ["--dialect", "v1"] if "testserver" in DFLOCKD.name else []  # a real dflockd has its own
        command = [str(DFLOCKD), "--host", "127.0.0.1", "--port", str(self.port), *dialect, *flags]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        test.addCleanup(self.process.wait)
        test.addCleanup(self.process.kill)
        # Its log says when it listens. It is read to the end, as a full pipe
        # would stall the server.
        self.log: list[str] = []
        listening = threading.Event()
        threading.Thread(target=self._read_log, args=(listening,), daemon=True).start()
        if not listening.wait(30):
            test.fail(f"{DFLOCKD} did not start listening: {''.join(self.log)}")
        self.servers = [("127.0.0.1", self.port)]

    def _read_log(self, listening: threading.Event) -> None:
        assert self.process.stderr is not None
        with self.process.stderr:  # closed at the end of the server's log
            for line in self.process.stderr:
                self.log.append(line)
                if "msg=listening" in line:
                    listening.set()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)


def closed_port() -> int:
    """A loopback port nothing listens on (free for a server to take)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def held_by_nobody(test: unittest.TestCase, key: str, servers: list[tuple[str, int]]) -> None:
    """Asserts, with a try-lock, that no one holds `key`."""
    probe = Lock(key, servers=servers, acquire_timeout_s=0)
    try:
        test.assertIsNotNone(probe.acquire(), f"{key!r} is still held")
    finally:
        probe.close()


def wait_until(condition: Callable[[], bool], what: str, within_s: float = 10) -> None:
    """Polls `condition` (no event to wait on: it is the server's state)."""
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within_s} s: {what}")
        time.sleep(0.01)


class SeedNames(unittest.TestCase):
    """The Python client's spellings work; the old ones are gone."""

    def setUp(self) -> None:
        self.server = Server(self)

    def test_a_lock_over_tcp(self) -> None:
        lock = Lock("test-network", servers=self.server.servers, acquire_timeout_s=0, lease_ttl_s=7)
        self.addCleanup(lock.close)
        try:
            grant = lock.acquire()
        except DflockdError as failure:
            if "access-denied" in failure.detail:
                self.fail(f"TCP is denied inside the sandbox: {failure}")
            raise
        self.assertIsNotNone(grant)
        self.assertEqual(lock.lease, 7)
        self.assertTrue(lock.is_held)
        self.assertTrue(lock.release())
        self.assertFalse(lock.is_held)

    def test_with_and_two_phase_as_in_the_seed(self) -> None:
        servers = self.server.servers
        seed_lock = dflockd_component.SyncDistributedLock  # the Python client's name
        with seed_lock("foo", acquire_timeout_s=10, lease_ttl_s=20, servers=servers) as lock:
            self.assertEqual((lock.key, lock.lease, len(lock.token or "")), ("foo", 20, 32))
            second = Lock("foo", acquire_timeout_s=10, lease_ttl_s=20, servers=servers)
            self.addCleanup(second.close)
            self.assertEqual(second.enqueue(), "queued")
        self.assertIsNotNone(second.wait(timeout_s=10))  # granted once the `with` released
        self.assertTrue(second.release())

    def test_a_semaphore_takes_its_limit_by_keyword(self) -> None:
        servers = self.server.servers
        slots = [Semaphore("pool", limit=2, acquire_timeout_s=0, servers=servers) for _ in range(3)]
        for slot in slots:
            self.addCleanup(slot.close)
        self.assertEqual([slot.acquire() is not None for slot in slots], [True, True, False])
        self.assertEqual(slots[0].limit, 2)

    def test_the_old_names_are_type_errors(self) -> None:
        with self.assertRaises(TypeError):
            Lock("k", lease_ttl=5)  # type: ignore[call-arg]
        with self.assertRaises(TypeError):
            Lock("k", acquire_timeout=5)  # type: ignore[call-arg]
        lock = Lock("k", servers=self.server.servers)
        self.addCleanup(lock.close)
        with self.assertRaises(TypeError):
            lock.wait(timeout=1)  # type: ignore[call-arg]

    def test_a_sharding_strategy_picks_the_server(self) -> None:
        servers = [("127.0.0.1", closed_port()), *self.server.servers]
        chosen: list[tuple[str, int]] = []

        def second_server(key: str, n: int) -> int:
            chosen.append((key, n))
            return 1

        lock = Lock("routed", servers=servers, sharding_strategy=second_server, acquire_timeout_s=0)
        self.addCleanup(lock.close)
        self.assertIsNotNone(lock.acquire())
        self.assertEqual(chosen, [("routed", 2)])
        first = Lock("routed", servers=servers, sharding_strategy=lambda key, n: 0)
        self.addCleanup(first.close)
        with self.assertRaises(ConnectionError):
            first.acquire()


class LockSets(unittest.TestCase):
    """Several keys, all or none; a member's loss is the set's, once."""

    def setUp(self) -> None:
        self.server = Server(self)

    def test_every_key_or_none(self) -> None:
        servers = self.server.servers
        with LockSet(["set-b", "set-a"], servers=servers, acquire_timeout_s=1) as held:
            self.assertEqual(held.keys, ["set-a", "set-b"])
            self.assertEqual(len(held.grants), 2)
            self.assertTrue(held.is_held)
            rival = LockSet(["set-b", "set-c"], servers=servers, acquire_timeout_s=0)
            self.addCleanup(rival.close)
            self.assertIsNone(rival.acquire())
            held_by_nobody(self, "set-c", servers)  # the rival gave it back
        held_by_nobody(self, "set-a", servers)
        held_by_nobody(self, "set-b", servers)
        self.assertFalse(hasattr(LockSet, "enqueue"))
        with self.assertRaises(TypeError):
            LockSet("set-a", servers=servers)  # type: ignore[arg-type]
        with self.assertRaises(InvalidArgumentError):
            LockSet(["twice", "twice"], servers=servers)

    def test_the_asyncio_flavour_from_many_tasks_never_overlaps(self) -> None:
        servers = self.server.servers
        holders: dict[str, int] = {}

        async def transfer(n: int) -> None:
            keys = ["acct-1", "acct-2", "acct-3"]
            mine = [keys[n % 3], keys[(n + 1) % 3]][:: 1 if n % 2 else -1]
            async with AsyncLockSet(mine, servers=servers, acquire_timeout_s=30) as held:
                self.assertEqual(len(held.grants), 2)
                for key in mine:
                    self.assertNotIn(key, holders, f"{key} held twice")
                    holders[key] = n
                await asyncio.sleep(0.01)
                for key in mine:
                    del holders[key]

        async def all_of_them() -> None:
            await asyncio.wait_for(asyncio.gather(*(transfer(n) for n in range(6))), 60)

        asyncio.run(all_of_them())
        for key in ("acct-1", "acct-2", "acct-3"):
            held_by_nobody(self, key, servers)

    def test_the_loss_of_a_member_is_reported_once(self) -> None:
        losses: list[Loss] = []
        held = LockSet(["gone-1", "gone-2"], servers=self.server.servers, lease_ttl_s=2, on_lost=losses.append)
        self.addCleanup(held.close)
        self.assertIsNotNone(held.acquire())
        self.server.kill()
        wait_until(lambda: len(losses) >= 1, "the loss is reported", within_s=30)
        time.sleep(0.2)  # time for a second report, if there were one
        self.assertEqual(len(losses), 1, losses)
        self.assertEqual(held.losses, 1)
        self.assertFalse(held.is_held)


class Errors(unittest.TestCase):
    """Failures are both `DflockdError` (with `kind`) and the built-in a caller catches."""

    def setUp(self) -> None:
        self.server = Server(self, "--auth-token", "s3cret-token")

    def test_auth_is_a_permission_error(self) -> None:
        lock = Lock("k", servers=self.server.servers, auth_token="wrong-token", acquire_timeout_s=0)
        self.addCleanup(lock.close)
        with self.assertRaises(PermissionError) as raised:
            lock.acquire()
        self.assertIsInstance(raised.exception, AuthError)
        self.assertEqual(getattr(raised.exception, "kind"), "auth")
        self.assertNotIn("wrong-token", repr(raised.exception))
        with Lock("k", servers=self.server.servers, auth_token="s3cret-token", acquire_timeout_s=0) as held:
            self.assertTrue(held.is_held)

    def test_not_granted_in_a_with_is_a_timeout_error(self) -> None:
        servers, token = self.server.servers, "s3cret-token"
        with Lock("busy", servers=servers, auth_token=token):
            with self.assertRaises(TimeoutError) as raised:
                with Lock("busy", servers=servers, auth_token=token, acquire_timeout_s=0):
                    self.fail("granted a held lock")
        self.assertIsInstance(raised.exception, DflockdTimeoutError)
        self.assertEqual(getattr(raised.exception, "kind"), "timeout")

    def test_nothing_listening_is_a_connection_error(self) -> None:
        lock = Lock("k", servers=[("127.0.0.1", closed_port())])
        self.addCleanup(lock.close)
        with self.assertRaises(ConnectionError) as raised:
            lock.acquire()
        self.assertIsInstance(raised.exception, DflockdConnectionError)
        self.assertEqual(getattr(raised.exception, "kind"), "connection")

    def test_a_bad_argument_is_a_value_error(self) -> None:
        with self.assertRaises(ValueError) as raised:
            Lock("has space", servers=self.server.servers)
        self.assertIsInstance(raised.exception, InvalidArgumentError)
        with self.assertRaises(ValueError):
            Lock("k", lease_ttl_s=-1)
        with self.assertRaises(ValueError):
            Semaphore("k", 0)

    def test_every_wit_error_case_has_its_class(self) -> None:
        builtins = {"timeout": TimeoutError, "auth": PermissionError, "connection": ConnectionError,
                    "tls": ConnectionError, "protocol": ConnectionError, "invalid-argument": ValueError,
                    "limit-mismatch": ValueError, "trap": RuntimeError}
        cases = ["max-locks", "max-waiters", "not-enqueued", "already-enqueued", "lease-expired",
                 "draining", "not-leader", "lock-lost", "server", *builtins]
        for kind in cases:
            failure = error(kind, "detail")
            self.assertIsNot(type(failure), DflockdError, kind)
            self.assertIsInstance(failure, builtins.get(kind, DflockdError))
            self.assertEqual((failure.kind, failure.detail), (kind, "detail"))
        self.assertIs(type(error("a-case-from-a-newer-component")), DflockdError)

    def test_the_connect_timeout_bounds_connecting(self) -> None:
        # A listener that never answers: the TCP connect succeeds (the kernel
        # accepts), the auth reply never comes.
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen()
            lock = Lock("k", servers=[silent.getsockname()], auth_token="t", connect_timeout_s=0.3)
            self.addCleanup(lock.close)
            started = time.monotonic()
            with self.assertRaises(TimeoutError):
                lock.acquire()
        self.assertLess(time.monotonic() - started, 5)  # not the default 10 s


class Tls(unittest.TestCase):
    """TLS inside the component: verified against a CA made for the run."""

    dir: tempfile.TemporaryDirectory[str]
    ca_pem: str

    @classmethod
    def setUpClass(cls) -> None:
        cls.dir = tempfile.TemporaryDirectory()
        cls.ca_pem = make_certs(Path(cls.dir.name))

    @classmethod
    def tearDownClass(cls) -> None:
        cls.dir.cleanup()

    def setUp(self) -> None:
        certs = Path(self.dir.name)
        self.server = Server(self, "--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key"))

    def test_a_lock_over_tls(self) -> None:
        for name in (None, "localhost"):
            with Lock("tls", servers=self.server.servers, tls=TLS(ca_pem=self.ca_pem, server_name=name)) as lock:
                self.assertTrue(lock.is_held)

    def test_an_ssl_context_carries_its_ca(self) -> None:
        context = ssl.create_default_context(cadata=self.ca_pem)
        with Lock("tls", servers=self.server.servers, ssl_context=context) as lock:
            self.assertTrue(lock.is_held)
        self.assertEqual(stats("127.0.0.1", self.server.port, tls=TLS(ca_pem=self.ca_pem)).locks, [])

    def test_an_unknown_issuer_or_name_is_refused(self) -> None:
        for tls in (True, TLS(ca_pem=self.ca_pem, server_name="elsewhere.example")):
            lock = Lock("tls", servers=self.server.servers, tls=tls)
            self.addCleanup(lock.close)
            with self.assertRaises(ConnectionError) as raised:
                lock.acquire()
            self.assertIsInstance(raised.exception, TLSError)
            self.assertEqual(getattr(raised.exception, "kind"), "tls")

    def test_an_ssl_context_without_verification_is_refused(self) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with self.assertRaises(ValueError):
            Lock("tls", servers=self.server.servers, ssl_context=context)


class Asyncio(unittest.IsolatedAsyncioTestCase):
    """`AsyncLock`/`AsyncSemaphore`: the event loop never waits on the component."""

    def setUp(self) -> None:
        self.server = Server(self)

    async def test_async_with_holds_and_releases(self) -> None:
        servers = self.server.servers
        seed_lock = dflockd_component.AsyncDistributedLock  # the Python client's name
        async with seed_lock("a", acquire_timeout_s=10, lease_ttl_s=20, servers=servers) as lock:
            self.assertEqual((lock.is_held, lock.lease, len(lock.token or "")), (True, 20, 32))
            probe = Lock("a", servers=servers, acquire_timeout_s=0)
            self.addCleanup(probe.close)
            self.assertIsNone(probe.acquire())
        self.assertFalse(lock.is_held)
        held_by_nobody(self, "a", servers)
        with self.assertRaises(InvalidArgumentError):  # closed by the `async with`
            await lock.acquire()

    async def test_a_waiting_acquire_leaves_the_loop_free(self) -> None:
        servers = self.server.servers
        holder = Lock("b", servers=servers)
        self.addCleanup(holder.close)
        self.assertIsNotNone(holder.acquire())
        waiter = AsyncLock("b", servers=servers, acquire_timeout_s=10)
        self.addAsyncCleanup(waiter.aclose)
        task = asyncio.create_task(waiter.acquire())
        await asyncio.sleep(0)  # one turn: the task hands its call to the worker
        # Had the call blocked the loop, the task would be done by now (not granted).
        self.assertFalse(task.done())
        self.assertTrue(holder.release())
        self.assertIsNotNone(await task)
        self.assertTrue(waiter.is_held)
        self.assertTrue(await waiter.release())

    async def test_a_cancelled_acquire_leaves_nothing_held(self) -> None:
        servers = self.server.servers
        holder = Lock("c", servers=servers)
        self.addCleanup(holder.close)
        self.assertIsNotNone(holder.acquire())
        waiter = AsyncLock("c", servers=servers, acquire_timeout_s=10)
        self.addAsyncCleanup(waiter.aclose)
        task = asyncio.create_task(waiter.acquire())
        # The acquire must be queued at the server, so that the release below grants it.
        await asyncio.to_thread(wait_until, lambda: _waiters(self.server, "c") == 1, "the acquire is queued")
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task
        self.assertTrue(holder.release())  # grants the key to the cancelled call, still running
        # `renew` queues behind the undo on the object's worker and sends no release itself.
        with self.assertRaises(DflockdError):
            await waiter.renew()
        self.assertFalse(waiter.is_held)
        held_by_nobody(self, "c", servers)

    async def test_a_cancelled_wait_gives_up_the_queue_place(self) -> None:
        servers = self.server.servers
        holder = Lock("d", servers=servers)
        self.addCleanup(holder.close)
        self.assertIsNotNone(holder.acquire())
        waiter = AsyncSemaphore("d", 1, servers=servers)
        self.addAsyncCleanup(waiter.aclose)
        self.assertEqual(await waiter.enqueue(), "queued")
        task = asyncio.create_task(waiter.wait(timeout_s=10))
        await asyncio.sleep(0)
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task
        self.assertTrue(holder.release())
        with self.assertRaises(DflockdError):
            await waiter.renew()
        held_by_nobody(self, "d", servers)

    async def test_a_loss_is_reported_on_the_loop(self) -> None:
        reported = asyncio.Event()
        seen: list[tuple[Loss, threading.Thread]] = []

        def on_lost(loss: Loss) -> None:
            seen.append((loss, threading.current_thread()))
            reported.set()

        lock = AsyncLock("e", servers=self.server.servers, lease_ttl_s=2, on_lost=on_lost)
        self.addAsyncCleanup(lock.aclose)
        self.assertIsNotNone(await lock.acquire())
        self.server.kill()
        await asyncio.wait_for(reported.wait(), 15)
        self.assertEqual(len(seen), 1)
        self.assertIs(seen[0][1], threading.current_thread())  # the loop's thread
        self.assertEqual((lock.is_held, lock.losses), (False, 1))
        with self.assertRaises(DflockdError) as raised:
            await lock.release()
        self.assertEqual(raised.exception.kind, "lock-lost")


def _waiters(server: Server, key: str) -> int:
    return sum(info.waiters for info in stats("127.0.0.1", server.port).locks if info.key == key)


class Sandbox(unittest.TestCase):
    """Without TCP, or without the component, the error says why and what to do."""

    def test_access_denied_names_the_wasmtime_version(self) -> None:
        server = Server(self)
        # A store without the network, as wasmtime-py 48+ gives: the error must say why.
        with mock.patch.object(_bindings, "_network_wasi", wasmtime.WasiConfig):
            runtime = Runtime()
        lock = Lock("test-network", servers=server.servers, runtime=runtime)
        self.addCleanup(lock.close)
        with self.assertRaises(DflockdError) as raised:
            lock.acquire()
        self.assertEqual(raised.exception.kind, "connection")
        self.assertIn("wasmtime-py must be 47.x", str(raised.exception))
        self.assertIn(dflockd_component.WASMTIME_VERSION, str(raised.exception))

    def test_no_component_is_our_error_saying_how_to_get_one(self) -> None:
        with mock.patch.dict(os.environ, {"DFLOCKD_COMPONENT": "/nonexistent/dflockd_component.wasm"}):
            with self.assertRaises(ComponentNotFoundError) as raised:
                _bindings.component_bytes()
        self.assertIn("DFLOCKD_COMPONENT=/nonexistent", str(raised.exception))
        if Path(_bindings.__file__).with_name("dflockd_component.wasm").is_file():
            return  # a copy for a wheel build is there: the package would load it
        # Neither the variable, nor a copy in the package, nor a checkout's build.
        with tempfile.TemporaryDirectory() as elsewhere, mock.patch.dict(os.environ, {"DFLOCKD_COMPONENT": ""}):
            with mock.patch.object(_bindings, "_CHECKOUT", Path(elsewhere)):
                with self.assertRaises(FileNotFoundError) as missing:
                    _bindings.component_bytes()
        self.assertIsInstance(missing.exception, ComponentNotFoundError)
        for way_out in ("dflockd-component wheel", "DFLOCKD_COMPONENT", "cargo xtask build"):
            self.assertIn(way_out, str(missing.exception))


def make_certs(dir: Path) -> str:
    """A CA and a server certificate for 127.0.0.1 and localhost (server.pem,
    server.key in `dir`); returns the CA's PEM."""
    try:
        return _certs_with_cryptography(dir)
    except ImportError:
        return _certs_with_openssl(dir)


def _certs_with_cryptography(dir: Path) -> str:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(subject: str, key: Any, issuer: str, signer: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("dflockd test CA", ca_key, "dflockd test CA", ca_key, True)
    leaf = cert("localhost", key, "dflockd test CA", ca_key, False)
    (dir / "server.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    pkcs8 = serialization.PrivateFormat.PKCS8
    (dir / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption()))
    return ca.public_bytes(serialization.Encoding.PEM).decode()


def _certs_with_openssl(dir: Path) -> str:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise AssertionError("making test certificates needs the `cryptography` package or the `openssl` CLI")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=dir, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=dflockd test CA")
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (dir / "server.ext").write_text(
        "basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
    )
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "1", "-extfile", "server.ext")
    return (dir / "ca.pem").read_text()


if __name__ == "__main__":
    unittest.main()
