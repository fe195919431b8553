"""The wrapper reaches a real dflockd over TCP, and a sandbox without TCP says why.

    python -m unittest test_network

Starts dflockd from `$DFLOCKD_BIN` (default: the repository's
target/release/dflockd-testserver) on a free port.
"""

import os
import socket
import subprocess
import tempfile
import time
import unittest
from pathlib import Path
from unittest import mock

import wasmtime

import dflockd_component
from dflockd_component import DflockdError, Lock, Runtime, _bindings

DFLOCKD = Path(
    os.environ.get("DFLOCKD_BIN", Path(__file__).resolve().parents[2] / "target" / "release" / "dflockd-testserver")
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NetworkTest(unittest.TestCase):
    def setUp(self) -> None:
        if not DFLOCKD.is_file():
            self.fail(f"no dflockd at {DFLOCKD}: run `cargo xtask setup` or set DFLOCKD_BIN")
        self.port = free_port()
        # The log goes to a file: a pipe nobody drains (or closed) would stall or kill the server.
        log = tempfile.TemporaryFile(mode="w+")
        self.addCleanup(log.close)
        self.server = subprocess.Popen([str(DFLOCKD), "--host", "127.0.0.1", "--port", str(self.port)], stderr=log)
        self.addCleanup(self.server.wait)
        self.addCleanup(self.server.kill)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.server.poll() is None:
            log.seek(0)
            if "msg=listening" in log.read():
                return
            time.sleep(0.02)
        self.fail("dflockd did not start listening")

    def test_a_lock_over_tcp(self) -> None:
        lock = Lock("test-network", servers=[("127.0.0.1", self.port)], acquire_timeout=0)
        self.addCleanup(lock.close)
        try:
            grant = lock.acquire()
        except DflockdError as error:
            if "access-denied" in error.detail:
                self.fail(f"TCP is denied inside the sandbox: {error}")
            raise
        self.assertIsNotNone(grant)
        self.assertTrue(lock.is_held)
        self.assertTrue(lock.release())

    def test_access_denied_names_the_wasmtime_version(self) -> None:
        # A store without the network, as wasmtime-py 48+ gives: the error must say why.
        with mock.patch.object(_bindings, "_network_wasi", wasmtime.WasiConfig):
            runtime = Runtime()
        lock = Lock("test-network", servers=[("127.0.0.1", self.port)], runtime=runtime)
        self.addCleanup(lock.close)
        with self.assertRaises(DflockdError) as raised:
            lock.acquire()
        self.assertEqual(raised.exception.kind, "connection")
        self.assertIn("wasmtime-py must be 47.x", str(raised.exception))
        self.assertIn(dflockd_component.WASMTIME_VERSION, str(raised.exception))


if __name__ == "__main__":
    unittest.main()
