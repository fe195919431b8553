"""The Python host's side of the cross-client tests, through the wrapper.

    python contend.py contend --server HOST:PORT --keys a,b,c --workers W --rounds N
        (host-tests/tests/interop.rs) prints "ready", waits for a line on
        stdin, then each of W threads takes the keys in turn N times (acquire,
        note the time, release) and finally prints one line per critical
        section: "<key> <start_ns> <end_ns>".
    python contend.py soak --server HOST:PORT --keys a,b,c --workers W --seconds S --max-hold-ms H --lease-s L
        (cargo xtask soak) for S seconds each of W threads takes a random key
        (acquire, a random hold up to H ms, release), again after any error;
        prints "<key> <start_ns> <end_ns> confirmed|unconfirmed" per section
        (confirmed: the server accepted the release) and "ops <n> errors <m>"
        on stderr.

Each thread has its own component instance (a Runtime), as the wrapper
wants, and one Lock per key. Times are CLOCK_MONOTONIC (time.monotonic_ns),
the clock the other sides read too.
"""

import argparse
import random
import sys
import threading
import time

from dflockd_component import DflockdError, Lock, Runtime


def locks_of(args: argparse.Namespace) -> list[Lock]:
    host, port = args.server.rsplit(":", 1)
    runtime = Runtime()
    servers = [(host, int(port))]
    return [
        Lock(key, servers=servers, acquire_timeout_s=60, lease_ttl_s=args.lease_s, runtime=runtime)
        for key in args.keys.split(",")
    ]


def contend(w: int, args: argparse.Namespace, out: list[str], errors: list[int]) -> None:
    locks = locks_of(args)
    try:
        for i in range(args.rounds):
            lock = locks[(w + i) % len(locks)]
            if lock.acquire() is None:
                raise RuntimeError(f"{lock.key}: not granted within 60 s")
            start = time.monotonic_ns()
            end = time.monotonic_ns()
            if not lock.release():
                raise RuntimeError(f"{lock.key}: release refused")
            out.append(f"{lock.key} {start} {end}")
    finally:
        for lock in locks:
            lock.close()


def soak(w: int, args: argparse.Namespace, out: list[str], errors: list[int]) -> None:
    rng = random.Random(w + time.monotonic_ns())
    deadline = time.monotonic() + args.seconds
    locks = locks_of(args)
    try:
        while time.monotonic() < deadline:
            lock = rng.choice(locks)
            try:
                if lock.acquire() is None:
                    errors[w] += 1
                    continue
                start = time.monotonic_ns()
                time.sleep(rng.randint(0, args.max_hold_ms) / 1000)
                end = time.monotonic_ns()
                try:
                    confirmed = bool(lock.release())
                except DflockdError:  # a lost lease or a server fault
                    confirmed = False
                if not confirmed:
                    errors[w] += 1
                out.append(f"{lock.key} {start} {end} {'confirmed' if confirmed else 'unconfirmed'}")
            except DflockdError:  # a server fault: counted, then again
                errors[w] += 1
                time.sleep(0.05)
    finally:
        for lock in locks:
            lock.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["contend", "soak"])
    parser.add_argument("--server", required=True)
    parser.add_argument("--keys", required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=0)
    parser.add_argument("--max-hold-ms", type=int, default=0)
    parser.add_argument("--lease-s", type=int, default=10)
    args = parser.parse_args()
    work = contend if args.mode == "contend" else soak
    print("ready", flush=True)
    sys.stdin.readline()
    results: list[list[str]] = [[] for _ in range(args.workers)]
    errors = [0] * args.workers
    threads = [
        threading.Thread(target=work, args=(w, args, results[w], errors)) for w in range(args.workers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = [line for r in results for line in r]
    print("\n".join(lines))
    if args.mode == "soak":
        print(f"ops {len(lines)} errors {sum(errors)}", file=sys.stderr)
        return 0
    return 0 if len(lines) == args.workers * args.rounds else 1


if __name__ == "__main__":
    sys.exit(main())
