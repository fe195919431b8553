"""The real Python client (dflockd-client 2.1.1) against dflockd-testserver --dialect v2.

    python conformance_v2.py --server-bin PATH

Each case asserts what dflockd 2.1 is documented to do (docs/PROTOCOL.md and the
client's own behaviour): grants, timeouts, FIFO, semaphores, the two-phase
enqueue/wait, auth, the stats shape, fencing tokens, separate lock and
semaphore key spaces, and graceful shutdown (`error_draining`). The script
starts its own servers (port 0, the address read back from the `msg=listening`
line), one shared and one per case that needs other flags or kills its
server. Output is unittest's (verbosity 2): it ends with `OK` or the failures.
Run it with the venv that has dflockd-client (target/dflockd-client-py).
"""

import argparse
import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import dflockd_client as dc
from dflockd_client import _sync as low

SERVER_BIN = ""
SHARED = None  # the server most cases share; each case uses its own keys


class Server:
    """A test server on a free loopback port; its log goes to a temp file (a
    pipe nobody drains could fill up and block the server)."""

    def __init__(self, *flags: str) -> None:
        self.log = tempfile.TemporaryFile()
        self.started_ns = time.time_ns()
        self.proc = subprocess.Popen(
            [SERVER_BIN, "--dialect", "v2", "--host", "127.0.0.1", "--port", "0", *flags],
            stdout=subprocess.DEVNULL, stderr=self.log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            self.log.seek(0)
            text = self.log.read().decode(errors="replace")
            m = re.search(r"msg=listening .*?addr=(\S+):(\d+)", text)
            if m:
                self.host, self.port = m.group(1), int(m.group(2))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"server did not start: {text}")

    @property
    def servers(self) -> list[tuple[str, int]]:
        return [(self.host, self.port)]

    def conn(self) -> low.SyncConn:
        return low.open_conn(self.host, self.port, ssl_context=None, connect_timeout_s=5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()


def setUpModule() -> None:
    global SHARED
    SHARED = Server()


def tearDownModule() -> None:
    SHARED.stop()


def lock_entry(stats: dict, key: str) -> dict | None:
    return next((e for e in stats["locks"] if e["key"] == key), None)


def wait_until(pred, timeout: float = 5.0) -> bool:
    """Polls pred (bounded): the server state we wait for has no push event."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


def waiters(server: Server, key: str) -> int:
    c = server.conn()
    try:
        return (lock_entry(low.stats(c), key) or {"waiters": 0})["waiters"]
    finally:
        c.close()


def conns(case: unittest.TestCase, server: Server, n: int) -> list[low.SyncConn]:
    out = [server.conn() for _ in range(n)]
    for c in out:
        case.addCleanup(c.close)
    return out


class Locks(unittest.TestCase):
    def lock(self, key: str, **kw) -> dc.SyncDistributedLock:
        kw.setdefault("lease_ttl_s", 20)
        lock = dc.SyncDistributedLock(key, servers=SHARED.servers, **kw)
        self.addCleanup(lock.close)
        return lock

    def test_acquire_release(self) -> None:
        a = self.lock("lk-ar", acquire_timeout_s=5)
        self.assertTrue(a.acquire())
        self.assertRegex(a.token, r"^[0-9a-f]{32}$")
        self.assertEqual(a.lease, 20)
        self.assertFalse(self.lock("lk-ar", acquire_timeout_s=0).acquire())
        self.assertTrue(a.release())
        self.assertTrue(self.lock("lk-ar", acquire_timeout_s=0).acquire())

    def test_context_manager(self) -> None:
        with self.lock("lk-cm", acquire_timeout_s=5) as held:
            self.assertIsNotNone(held.token)
            self.assertFalse(self.lock("lk-cm", acquire_timeout_s=0).acquire())
        self.assertTrue(self.lock("lk-cm", acquire_timeout_s=0).acquire())

    def test_held_key_times_out(self) -> None:
        self.assertTrue(self.lock("lk-to").acquire())
        t0 = time.monotonic()
        self.assertFalse(self.lock("lk-to", acquire_timeout_s=1).acquire())
        self.assertGreaterEqual(time.monotonic() - t0, 0.9)  # the server waited
        with self.assertRaises(TimeoutError):  # the context manager raises instead
            with self.lock("lk-to", acquire_timeout_s=0):
                pass

    def test_fifo_two_waiters(self) -> None:
        key, order = "lk-fifo", []
        holder = self.lock(key)
        self.assertTrue(holder.acquire())

        def waiter(name: str) -> None:
            lk = self.lock(key, acquire_timeout_s=10)
            if lk.acquire():
                order.append(name)
                time.sleep(0.2)  # hold briefly so the other cannot overtake
                lk.release()

        threads = []
        for i, name in enumerate(["first", "second"]):
            threads.append(threading.Thread(target=waiter, args=(name,)))
            threads[-1].start()
            # queue them in a known order: wait until the server counts this one
            self.assertTrue(wait_until(lambda: waiters(SHARED, key) == i + 1))
        holder.release()
        for t in threads:
            t.join(15)
        self.assertEqual(order, ["first", "second"])

    def test_semaphore_limit_two(self) -> None:
        sem = lambda t: dc.SyncDistributedSemaphore(
            "sem-2", limit=2, servers=SHARED.servers, acquire_timeout_s=t)
        a, b, c = sem(0), sem(0), sem(1)
        [self.addCleanup(x.close) for x in (a, b, c)]
        self.assertTrue(a.acquire())
        self.assertTrue(b.acquire())
        self.assertFalse(c.acquire())  # a third holder waits 1 s and times out
        self.assertTrue(a.release())
        self.assertTrue(c.acquire())  # the freed slot is his

    def test_two_phase(self) -> None:
        fast = self.lock("lk-2p-fast")
        self.assertEqual(fast.enqueue(), "acquired")
        self.assertIsNotNone(fast.token)
        self.assertTrue(fast.wait(1))
        holder, queued = self.lock("lk-2p"), self.lock("lk-2p")
        self.assertTrue(holder.acquire())
        self.assertEqual(queued.enqueue(), "queued")
        self.assertIsNone(queued.token)
        threading.Timer(0.3, holder.release).start()
        self.assertTrue(queued.wait(5))  # granted when the holder lets go
        self.assertRegex(queued.token, r"^[0-9a-f]{32}$")
        late = self.lock("lk-2p")
        self.assertEqual(late.enqueue(), "queued")
        self.assertFalse(late.wait(1))  # still held by `queued`: times out

    def test_stats_shape(self) -> None:
        [c] = conns(self, SHARED, 1)
        tok, _ = low.acquire(c, "st-lock", 0, 30)
        low.sem_acquire(c, "st-sem", 0, 2)
        low.sem_acquire(c, "st-sem1", 0, 1)  # limit 1: listed under locks
        t2, _ = low.acquire(c, "st-idle", 0)
        low.release(c, "st-idle", t2)
        s = low.stats(c)
        self.assertLessEqual({"locks", "semaphores", "idle_locks", "idle_semaphores"}, set(s))
        self.assertTrue(isinstance(s["connections"], int) and s["connections"] >= 1, s)
        held = lock_entry(s, "st-lock")
        self.assertTrue(held["owner_conn_id"] > 0 and held["waiters"] == 0, held)
        self.assertTrue(0 < held["lease_expires_in_s"] <= 30, held)
        sems = [(e["key"], e["limit"], e["holders"], e["waiters"]) for e in s["semaphores"]]
        self.assertIn(("st-sem", 2, 1, 0), sems)
        self.assertIsNotNone(lock_entry(s, "st-sem1"), s)  # not among the semaphores:
        self.assertNotIn("st-sem1", [e[0] for e in sems])  # classified by limit 1
        idle = [e["idle_s"] for e in s["idle_locks"] if e["key"] == "st-idle"]
        self.assertTrue(len(idle) == 1 and isinstance(idle[0], (int, float)), s)
        self.assertIsNone(lock_entry(s, "st-idle"))
        low.release(c, "st-lock", tok)

    def test_fences_rise(self) -> None:
        [c], fences = conns(self, SHARED, 1), []
        for i in range(6):  # one key, then alternating keys and kinds
            for key, sem in (("fc-a", False), (f"fc-{i % 2}", False), ("fc-s", True)):
                if sem:
                    tok, _ = low.sem_acquire(c, key, 0, 2)
                    low.sem_release(c, key, tok)
                else:
                    tok, _ = low.acquire(c, key, 0)
                    low.release(c, key, tok)
                self.assertEqual(dc.fence_from_token(tok), int(tok[:16], 16))
                fences.append(dc.fence_from_token(tok))
        self.assertTrue(all(a < b for a, b in zip(fences, fences[1:])), fences)
        # the counter starts at the wall clock's Unix nanoseconds at start
        self.assertGreater(fences[0], SHARED.started_ns - 60 * 10**9)

    def test_lock_and_semaphore_same_key(self) -> None:
        c, d = conns(self, SHARED, 2)
        low.acquire(c, "both", 0)
        low.sem_acquire(c, "both", 0, 3)  # v1 would say error_limit_mismatch
        with self.assertRaises(dc.DflockdTimeoutError):
            low.acquire(d, "both", 0)  # the lock is still exclusive
        low.sem_acquire(d, "both", 0, 3)  # the semaphore has room
        with self.assertRaises(dc.LimitMismatchError):
            low.sem_acquire(d, "both", 0, 4)  # a mismatch only among semaphores

    def test_async_lock(self) -> None:
        async def run() -> tuple:
            new = lambda t: dc.AsyncDistributedLock("lk-async", servers=SHARED.servers,
                                                    acquire_timeout_s=t)
            lock = new(5)
            got, token, released = await lock.acquire(), lock.token, await lock.release()
            async with new(0) as again:  # released: a try-lock gets it
                return got, token, released, again.token

        got, token, released, token2 = asyncio.run(run())
        self.assertTrue(got and released)
        self.assertRegex(token, r"^[0-9a-f]{32}$")
        self.assertGreater(dc.fence_from_token(token2), dc.fence_from_token(token))


class OwnServer(unittest.TestCase):
    def server(self, *flags: str) -> Server:
        self.addCleanup((s := Server(*flags)).stop)
        return s

    def test_auth(self) -> None:
        s = self.server("--auth-token", "s3cret")
        ok = dc.SyncDistributedLock("au", servers=s.servers, auth_token="s3cret")
        self.addCleanup(ok.close)
        self.assertTrue(ok.acquire())
        bad = dc.SyncDistributedLock("au2", servers=s.servers, auth_token="wrong")
        with self.assertRaises(PermissionError):  # 2.1.1 maps every refusal so
            bad.acquire()
        none = dc.SyncDistributedLock("au3", servers=s.servers)
        with self.assertRaises(dc.AuthError):  # no auth first: error_auth
            none.acquire()
        # on the wire: error_auth, then the server closes the connection
        with socket.create_connection((s.host, s.port), timeout=5) as raw:
            raw.sendall(b"auth\n_\nwrong\n")
            with raw.makefile("rb") as f:
                self.assertEqual(f.readline(), b"error_auth\n")
                self.assertEqual(f.readline(), b"")

    def test_draining(self) -> None:
        s = self.server("--shutdown-timeout", "5")
        [c] = conns(self, s, 1)
        raw = socket.create_connection((s.host, s.port), timeout=5)
        self.addCleanup(raw.close)
        low.stats(c)  # the connection is served before the signal
        s.proc.send_signal(signal.SIGTERM)
        deadline, err = time.monotonic() + 5, None
        while err is None and time.monotonic() < deadline:
            try:  # until the server has seen the signal, requests still succeed
                low.acquire(c, f"dr-{time.monotonic_ns()}", 0)
                time.sleep(0.005)
            except dc.DflockdError as e:
                err = e
        self.assertIs(type(err), dc.DrainingError)
        raw.sendall(b"ping\n_\n_\n")
        with raw.makefile("rb") as f:
            self.assertEqual(f.readline(), b"error_draining\n")
            self.assertEqual(f.readline(), b"")  # and the server closed it
        with self.assertRaises(OSError):  # the listener is closed
            s.conn().close()
        self.assertEqual(s.proc.wait(7), 0)  # no connections left: it exits

    def test_blocked_acquire_on_shutdown(self) -> None:
        s = self.server("--shutdown-timeout", "5")
        holder, blocked = conns(self, s, 2)
        low.acquire(holder, "bl", 0)
        result = []

        def block() -> None:
            try:
                result.append(low.acquire(blocked, "bl", 30))
            except BaseException as e:  # what the test is about
                result.append(e)

        (t := threading.Thread(target=block)).start()
        self.assertTrue(wait_until(lambda: waiters(s, "bl") == 1))
        s.proc.send_signal(signal.SIGTERM)
        t.join(5)
        self.assertFalse(t.is_alive())
        self.assertIs(type(result[0]), dc.DflockdError)  # plain `error`
        self.assertIn("'error'", str(result[0]))


def main() -> int:
    global SERVER_BIN
    parser = argparse.ArgumentParser()
    parser.add_argument("--server-bin", required=True)
    args, rest = parser.parse_known_args()
    SERVER_BIN = os.path.abspath(args.server_bin)
    prog = unittest.main(argv=[sys.argv[0], *rest], verbosity=2, exit=False)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
