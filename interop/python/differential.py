"""Differential test: dflockd-testserver --dialect v1 against the Python server dflockd==0.5.0.

    python differential.py --testserver PATH --python-server-python VENV/bin/python [--seed N]

From the seed it generates 8 sequences of 60 raw requests (`l r n e w` over 3
connections and 2 keys; timeouts 0 or 1 s; right tokens, tokens of another
connection or key, and made-up ones). Each sequence gets a fresh pair of servers
(so sequences cannot interact) and runs in its own thread, in lockstep: one
request to each server, both one-line replies read, then the next step. The
replies are compared step for step with the grant tokens masked. These
differences of 0.5.0 (see its server.py; dflockd v1.10.0's lock.go does what v1
does) are counted, not failed:
  - 0.5.0 answers plain `error` where v1 says error_not_enqueued / error_already_enqueued;
  - `n` answers `ok <ttl-1>` in 0.5.0 (it truncates the lease left), `ok <ttl>` in v1;
  - a pre-grant (`e` answered `acquired`) released by `r` before its `w`: v1 drops
    the connection's enqueued state, 0.5.0 keeps it, so a later `w` there answers
    `timeout` (v1 `error_not_enqueued`) and a later `e` would answer `error` (v1
    queued/acquired). Before such an `e` the script sends 0.5.0 alone a `w k 0`,
    which must answer `timeout` (the stale state is there) and drops it, so that
    both servers stay in the same state and the rest stays comparable.
Every other difference is printed with the sequence, step, request and both
replies; the exit status is 1 if there is any. It only uses raw sockets, so any
python runs it; --python-server-python is the interpreter that has dflockd 0.5.0.
"""

import argparse
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

SEQUENCES, STEPS, CONNS, KEYS = 8, 60, 3, ("k0", "k1")
TOKEN = re.compile(r"^(ok|acquired) [0-9a-f]{32} (\d+)$")
V1_ONLY_ERRORS = ("error_not_enqueued", "error_already_enqueued")


def start(cmd: list[str], ready: str, procs: list) -> int:
    """Starts a server on port 0 and reads the port it got from its log (a
    temp file, not a pipe: an undrained pipe would block the server)."""
    log = tempfile.TemporaryFile()
    # 0.5.0 lets its environment variables override its flags: drop them
    env = {k: v for k, v in os.environ.items() if not k.startswith("DFLOCKD_")
           and k not in ("DEFAULT_LEASE_TTL_S", "LEASE_SWEEP_INTERVAL_S", "GC_LOOP_SLEEP",
                         "GC_MAX_UNUSED_TIME", "MAX_LOCKS")}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env)
    procs.append((proc, log))  # the caller kills it and closes the log
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        log.seek(0)
        m = re.search(ready, log.read().decode(errors="replace"))
        if m:
            return int(m.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    log.seek(0)
    raise RuntimeError(f"{cmd[0]} did not start: {log.read().decode(errors='replace')}")


def generate(rng: random.Random) -> list[tuple]:
    """A sequence of symbolic steps (conn, cmd, key, spec). Tokens are named by
    where they come from and resolved against each server's own replies."""
    steps = []
    for _ in range(STEPS):
        conn, key = rng.randrange(CONNS), rng.choice(KEYS)
        cmd = rng.choices("lrnew", weights=[30, 20, 10, 20, 20])[0]
        lease = rng.choice([None, None, 30, 60])  # never runs out within a sequence
        if cmd == "l":  # mostly try-locks; a 1 s wait now and then
            steps.append((conn, cmd, key, (1 if rng.random() < 0.07 else 0, lease)))
        elif cmd == "e":
            steps.append((conn, cmd, key, (None, lease)))
        elif cmd == "w":
            steps.append((conn, cmd, key, (1 if rng.random() < 0.1 else 0, None)))
        else:  # r / n: which token, a made-up fallback, and (n) a lease
            kind = rng.choices(["own", "other_conn", "other_key", "bogus"], [55, 15, 10, 20])[0]
            ref = (kind, rng.randrange(2), "%032x" % rng.getrandbits(128))
            steps.append((conn, cmd, key, (ref, lease if cmd == "n" else None)))
    return steps


def resolve(ref: tuple, conn: int, key: str, grants: dict) -> str:
    kind, age, bogus = ref
    if kind == "own":
        pool = grants.get((conn, key), [])
    elif kind == "other_conn":
        pool = [t for (c, k), ts in grants.items() if k == key and c != conn for t in ts]
    elif kind == "other_key":
        pool = [t for (c, k), ts in grants.items() if k != key and c == conn for t in ts]
    else:
        pool = []
    return pool[-1 - age] if len(pool) > age else bogus


def request(step: tuple, grants: dict) -> str:
    conn, cmd, key, (a, lease) = step
    if cmd in ("r", "n"):
        arg = resolve(a, conn, key, grants)
    else:
        arg = "" if a is None else str(a)
    if lease is not None:
        arg = f"{arg} {lease}".strip()
    return f"{cmd}\n{key}\n{arg}\n"


class Client:
    """One server's 3 connections and the tokens it granted on each (conn, key)."""

    def __init__(self, port: int) -> None:
        self.socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(CONNS)]
        self.files = [s.makefile("rb") for s in self.socks]
        self.grants: dict[tuple[int, str], list[str]] = {}

    def send(self, step: tuple) -> str:
        req = request(step, self.grants)
        try:
            self.socks[step[0]].sendall(req.encode())
        except OSError:
            pass  # the read below reports the closed connection
        return req

    def read(self, step: tuple) -> str:
        try:
            line = self.files[step[0]].readline(4096).decode().rstrip("\r\n")
        except OSError as e:
            return f"<{type(e).__name__}>"
        if not line:
            return "<closed>"
        if TOKEN.match(line):
            self.grants.setdefault((step[0], step[2]), []).append(line.split()[1])
        return line

    def call(self, conn: int, req: str) -> str:
        """A request outside the sequence (its reply records no grant)."""
        self.socks[conn].sendall(req.encode())
        return self.files[conn].readline(4096).decode().rstrip("\r\n")

    def close(self) -> None:
        for f, s in zip(self.files, self.socks):
            f.close()
            s.close()


def mask(reply: str) -> str:
    m = TOKEN.match(reply)
    return f"{m.group(1)} TOKEN {m.group(2)}" if m else reply


class Pregrants:
    """Follows, from the v1 requests and replies, the pre-grants (`e` answered
    `acquired`) not yet taken by a `w`, and the released ones 0.5.0 still keeps."""

    def __init__(self) -> None:
        self.pre: dict[tuple[int, str], str] = {}
        self.stale: set[tuple[int, str]] = set()

    def update(self, step: tuple, req: str, reply: str) -> None:
        conn, cmd, key, _ = step
        ck = (conn, key)
        if cmd in "ew":
            self.stale.discard(ck)  # 0.5.0's `w` pops it; before `e` the script did
        if cmd == "e" and reply.startswith("acquired"):
            self.pre[ck] = reply.split()[1]
        elif cmd == "w":
            self.pre.pop(ck, None)
        elif cmd == "r" and reply == "ok":  # any connection may release it
            token = req.split("\n")[2]
            for c2, t in list(self.pre.items()):
                if c2[1] == key and t == token:
                    del self.pre[c2]
                    self.stale.add(c2)


def compare(steps: list[tuple], reqs: list[str], v1: list[str], py: list[str],
            drops: dict[int, str] | None = None) -> dict[str, list[int]]:
    """Sorts the step indices into "bad" (unexplained), "folded", "renew" and
    "stale". reqs are the requests as sent to v1 (its tokens); drops[i] is the
    reply to the `w` sent to 0.5.0 alone before step i."""
    res: dict[str, list[int]] = {"bad": [], "folded": [], "renew": [], "stale": []}
    drops, track = drops or {}, Pregrants()
    for i, (step, req, a, b) in enumerate(zip(steps, reqs, v1, py)):
        conn, cmd, key, _ = step
        stale, a, b = (conn, key) in track.stale, mask(a), mask(b)
        renew = re.fullmatch(r"ok (\d+)", a)
        if i in drops:  # explained only if 0.5.0 really had the stale state
            ok = cmd == "e" and stale and drops[i] == "timeout" and a == b
            res["stale" if ok else "bad"].append(i)
        elif a == b:
            pass
        elif a in V1_ONLY_ERRORS and b == "error":
            res["folded"].append(i)
        elif cmd == "n" and renew and b == f"ok {int(renew.group(1)) - 1}":
            res["renew"].append(i)
        elif cmd == "w" and stale and a == "error_not_enqueued" and b == "timeout":
            res["stale"].append(i)
        else:
            res["bad"].append(i)
        track.update(step, req, v1[i])
    return res


def self_check() -> None:
    """The comparison must be able to fail: masking hides the tokens and nothing
    else, and each fold covers only its own case."""
    t1, t2 = "%032x" % 1, "%032x" % 2
    l, n = (0, "l", "k0", None), (0, "n", "k0", None)

    def bad(steps: list, v1: list, py: list, reqs: list | None = None, drops=None) -> list:
        return compare(steps, reqs or [""] * len(steps), v1, py, drops)["bad"]

    assert bad([l], [f"ok {t1} 33"], [f"ok {t2} 33"]) == []
    assert bad([l], [f"ok {t1} 33"], ["timeout"]) == [0]
    assert bad([l], [f"ok {t1} 33"], [f"acquired {t1} 33"]) == [0]
    assert bad([l], [f"ok {t1} 33"], [f"ok {t1} 30"]) == [0]
    assert bad([l], ["error_not_enqueued"], ["error_max_locks"]) == [0]
    assert bad([l], ["error"], ["error_not_enqueued"]) == [0]  # folded one way only
    assert bad([n], ["ok 33"], ["ok 32"]) == [] and bad([n], ["ok 33"], ["ok 31"]) == [0]
    e, r, w = (0, "e", "k0", None), (1, "r", "k0", None), (0, "w", "k0", None)
    assert bad([w], ["error_not_enqueued"], ["timeout"]) == [0]  # nothing pre-granted
    reqs = ["e\nk0\n\n", f"r\nk0\n{t1}\n", "w\nk0\n0\n"]
    v1 = [f"acquired {t1} 33", "ok", "error_not_enqueued"]
    py = [f"acquired {t2} 33", "ok", "timeout"]
    assert bad([e, r, w], v1, py, reqs) == []
    assert bad([e, r, w], v1, py, [reqs[0], f"r\nk0\n{t2}\n", reqs[2]]) == [2]  # not stale
    v1[2] = py[2] = "queued"
    assert bad([e, r, e], v1, py, reqs, {2: "timeout"}) == []
    assert bad([e, r, e], v1, py, reqs, {2: "error"}) == [2]  # 0.5.0 had nothing stale


def run_sequence(n: int, steps: list[tuple], args: argparse.Namespace, out: dict) -> None:
    procs = []
    try:
        v1c = Client(start([args.testserver, "--dialect", "v1", "--host", "127.0.0.1",
                            "--port", "0", "--default-lease-ttl", "33"],
                           r"msg=listening .*?addr=\S+:(\d+)", procs))
        pyc = Client(start([args.python_server_python, "-m", "dflockd.server", "--host",
                            "127.0.0.1", "--port", "0", "--default-lease-ttl", "33"],
                           r"listening on \('127\.0\.0\.1', (\d+)\)", procs))
        reqs, v1, py, drops, track = [], [], [], {}, Pregrants()
        for i, step in enumerate(steps):  # lockstep: one request to each, both replies
            conn, cmd, key, _ = step
            if cmd == "e" and (conn, key) in track.stale:
                drops[i] = pyc.call(conn, f"w\n{key}\n0\n")
            reqs.append((v1c.send(step), pyc.send(step)))
            v1.append(v1c.read(step))
            py.append(pyc.read(step))
            track.update(step, reqs[-1][0], v1[-1])
        v1c.close()
        pyc.close()
        out[n] = (reqs, v1, py, drops)
    except Exception as e:  # reported as a failed sequence
        out[n] = e
    finally:
        for p, log in procs:
            p.kill()
            p.wait()
            log.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--testserver", required=True)
    parser.add_argument("--python-server-python", required=True)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    self_check()
    t0 = time.monotonic()
    seqs = [generate(random.Random(args.seed * 1000 + n)) for n in range(SEQUENCES)]
    out: dict = {}
    threads = [threading.Thread(target=run_sequence, args=(n, s, args, out))
               for n, s in enumerate(seqs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    passed = failed = 0
    totals = {"folded": 0, "renew": 0, "stale": 0}
    for n, steps in enumerate(seqs):
        if not isinstance(out.get(n), tuple):
            print(f"sequence {n}: could not run: {out.get(n)!r}")
            failed += 1
            continue
        reqs, v1, py, drops = out[n]
        res = compare(steps, [q[0] for q in reqs], v1, py, drops)
        for k in totals:
            totals[k] += len(res[k])
        for i in res["bad"]:
            extra = f" (after `w` to 0.5.0 alone: {drops[i]!r})" if i in drops else ""
            print(f"MISMATCH sequence {n} step {i} conn {steps[i][0]} request "
                  f"{reqs[i][0]!r} (to 0.5.0 {reqs[i][1]!r}): v1 {v1[i]!r} / "
                  f"0.5.0 {py[i]!r}{extra}")
        passed, failed = passed + (not res["bad"]), failed + bool(res["bad"])
        print(f"sequence {n}: {len(steps)} steps, {len(res['bad'])} mismatches, "
              + ", ".join(f"{len(res[k])} {k}" for k in totals))
    print(f"known 0.5.0 differences (seed {args.seed}): {totals['folded']} steps `error` "
          f"for v1's error_not_enqueued/error_already_enqueued; {totals['renew']} renews "
          f"answering `ok <ttl-1>`; {totals['stale']} `w`/`e` meeting a pre-grant "
          f"released before its `w`; wall {time.monotonic() - t0:.1f} s")
    print(f"differential: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
