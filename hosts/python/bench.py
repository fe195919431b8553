"""Acquire + release of one key in a loop, at 1 worker, through the wrapper.

    python bench.py <host> <port> <seconds>

Prints `python-wasmtime ops_per_s=<number> ops=<n>`.
"""

import sys
import time

from dflockd_component import Lock


def main(host: str, port: int, seconds: float) -> None:
    lock = Lock("bench-python-wasmtime", servers=[(host, port)])
    try:
        lock.acquire()  # the first acquire connects: keep it out of the timing
        lock.release()
        ops = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            if lock.acquire() is None:
                raise SystemExit("not granted: is another client holding the bench key?")
            lock.release()
            ops += 1
        elapsed = time.perf_counter() - start
    finally:
        lock.close()
    print(f"python-wasmtime ops_per_s={ops / elapsed:.0f} ops={ops}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(f"usage: {sys.argv[0]} <host> <port> <seconds>")
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
