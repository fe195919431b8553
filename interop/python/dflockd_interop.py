"""The Python client's side of the cross-client tests (dflockd-client 2.1.1).

    python dflockd_interop.py contend --server HOST:PORT --keys a,b,c --workers W --rounds N
        prints "ready", waits for a line on stdin, then each of W threads takes
        the keys in turn N times with SyncDistributedLock (acquire, a short
        hold, release) and finally prints one line per critical section:
        "<key> <start_ns> <end_ns>" on CLOCK_MONOTONIC (time.monotonic_ns),
        the clock the Rust side reads too.
    python dflockd_interop.py soak --server HOST:PORT --keys a,b,c --workers W --seconds S --max-hold-ms H --lease-s L
        for S seconds each of W threads takes a random
        key (acquire, a random hold up to H ms, release), retrying after any
        error; prints "<key> <start_ns> <end_ns> confirmed|unconfirmed" per
        section (confirmed: the server accepted the release) and "ops <n>
        errors <m>" on stderr.
    python dflockd_interop.py shard --n N
        reads keys from stdin, one per line, and prints stable_hash_shard(key, N).
    python dflockd_interop.py bench --server HOST:PORT --workers W --rounds N --api low|lock
        acquire+release N times in each of W threads, each on its own key and
        connection, with the low-level functions (`low`) or SyncDistributedLock
        (`lock`); prints "ops <n> wall_s <s> p50_ms <ms> p99_ms <ms>".

Run from the venv that `cargo xtask setup` makes under target/.
"""

import argparse
import random
import sys
import threading
import time

from dflockd_client import SyncDistributedLock, stable_hash_shard
from dflockd_client import _sync as low


def contend(args: argparse.Namespace) -> int:
    host, port = args.server.rsplit(":", 1)
    keys = args.keys.split(",")
    print("ready", flush=True)
    if not sys.stdin.readline():
        print("dflockd_interop: no start line on stdin", file=sys.stderr)
        return 1
    results: list[list[tuple[str, int, int]]] = [[] for _ in range(args.workers)]
    errors: list[str] = []

    def worker(w: int) -> None:
        locks = {
            key: SyncDistributedLock(
                key, servers=[(host, int(port))], acquire_timeout_s=60, lease_ttl_s=10
            )
            for key in keys
        }
        try:
            for i in range(args.rounds):
                lock = locks[keys[(w + i) % len(keys)]]
                if not lock.acquire():
                    errors.append(f"worker {w}: acquire {lock.key} timed out")
                    return
                start = time.monotonic_ns()
                time.sleep(args.hold_us / 1e6)
                end = time.monotonic_ns()
                if not lock.release():
                    errors.append(f"worker {w}: release {lock.key} was refused")
                    return
                results[w].append((lock.key, start, end))
        except Exception as e:  # reported through the exit code and stderr
            errors.append(f"worker {w}: {e!r}")
        finally:
            for lock in locks.values():
                lock.close()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        print("dflockd_interop: " + "; ".join(errors), file=sys.stderr)
        return 1
    lines = [f"{k} {s} {e}" for sections in results for (k, s, e) in sections]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def soak(args: argparse.Namespace) -> int:
    host, port = args.server.rsplit(":", 1)
    keys = args.keys.split(",")
    print("ready", flush=True)
    if not sys.stdin.readline():
        print("dflockd_interop: no start line on stdin", file=sys.stderr)
        return 1
    deadline = time.monotonic() + args.seconds
    results: list[list[tuple[str, int, int, bool]]] = [[] for _ in range(args.workers)]
    errors = [0] * args.workers

    def worker(w: int) -> None:
        rng = random.Random(w + time.monotonic_ns())
        while time.monotonic() < deadline:
            key = rng.choice(keys)
            lock = SyncDistributedLock(
                key, servers=[(host, int(port))], acquire_timeout_s=10, lease_ttl_s=args.lease_s
            )
            try:
                if not lock.acquire():
                    errors[w] += 1
                    continue
                start = time.monotonic_ns()
                time.sleep(rng.randint(0, args.max_hold_ms) / 1000)
                end = time.monotonic_ns()
                try:
                    confirmed = bool(lock.release())
                except Exception:
                    confirmed = False
                if not confirmed:
                    errors[w] += 1
                results[w].append((key, start, end, confirmed))
            except Exception:  # a server fault: counted, then again
                errors[w] += 1
                time.sleep(0.05)
            finally:
                lock.close()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = [
        f"{k} {s} {e} {'confirmed' if c else 'unconfirmed'}"
        for sections in results
        for (k, s, e, c) in sections
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    print(f"ops {len(lines)} errors {sum(errors)}", file=sys.stderr)
    return 0


def shard(args: argparse.Namespace) -> int:
    out = [str(stable_hash_shard(line.rstrip("\n"), args.n)) for line in sys.stdin]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


def bench(args: argparse.Namespace) -> int:
    host, port = args.server.rsplit(":", 1)
    latencies: list[list[int]] = [[] for _ in range(args.workers)]
    errors: list[str] = []
    start_line = threading.Barrier(args.workers + 1)

    def worker(w: int) -> None:
        key = f"bench-py-{w}"
        try:
            if args.api == "low":
                conn = low.open_conn(host, int(port), ssl_context=None, connect_timeout_s=10)
                start_line.wait()
                for _ in range(args.rounds):
                    t0 = time.perf_counter_ns()
                    token, _ = low.acquire(conn, key, 30)
                    low.release(conn, key, token)
                    latencies[w].append(time.perf_counter_ns() - t0)
                conn.close()
            else:
                lock = SyncDistributedLock(key, servers=[(host, int(port))], acquire_timeout_s=30)
                start_line.wait()
                for _ in range(args.rounds):
                    t0 = time.perf_counter_ns()
                    if not lock.acquire():
                        raise RuntimeError("acquire timed out")
                    lock.release()
                    latencies[w].append(time.perf_counter_ns() - t0)
                lock.close()
        except Exception as e:  # reported through the exit code
            errors.append(f"worker {w}: {e!r}")
            start_line.abort()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(args.workers)]
    for t in threads:
        t.start()
    try:
        start_line.wait()
    except threading.BrokenBarrierError:
        pass
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        print("dflockd_interop: " + "; ".join(errors), file=sys.stderr)
        return 1
    all_ns = sorted(ns for per in latencies for ns in per)
    p = lambda q: all_ns[min(len(all_ns) - 1, int(q * (len(all_ns) - 1)))] / 1e6
    print(f"ops {len(all_ns)} wall_s {wall:.6f} p50_ms {p(0.5):.4f} p99_ms {p(0.99):.4f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("contend")
    c.add_argument("--server", default="127.0.0.1:6388")
    c.add_argument("--keys", default="interop")
    c.add_argument("--workers", type=int, default=2)
    c.add_argument("--rounds", type=int, default=100)
    c.add_argument("--hold-us", type=int, default=200)
    k = sub.add_parser("soak")
    k.add_argument("--server", default="127.0.0.1:6388")
    k.add_argument("--keys", default="soak")
    k.add_argument("--workers", type=int, default=2)
    k.add_argument("--seconds", type=int, default=60)
    k.add_argument("--max-hold-ms", type=int, default=50)
    k.add_argument("--lease-s", type=int, default=5)
    s = sub.add_parser("shard")
    s.add_argument("--n", type=int, default=3)
    b = sub.add_parser("bench")
    b.add_argument("--server", default="127.0.0.1:6388")
    b.add_argument("--workers", type=int, default=1)
    b.add_argument("--rounds", type=int, default=1000)
    b.add_argument("--api", choices=["low", "lock"], default="low")
    args = parser.parse_args()
    modes = {"contend": contend, "soak": soak, "shard": shard, "bench": bench}
    return modes[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
