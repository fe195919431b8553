"""Runs the conformance scenarios (hosts/README.md) through the Python wrapper.

    python run_scenarios.py <scenarios.json> <servers.json>

Prints `ok NAME` or `FAIL NAME: why` per scenario; exits 1 if any failed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any

from dflockd_component import DflockdError, Lock, Loss, Semaphore, fence_from_token, shard_index, stats

Servers = dict[str, dict[str, Any]]


class Failed(Exception):
    pass


class Scenario:
    """One scenario's objects, their loss reports and its servers."""

    def __init__(self, servers: Servers) -> None:
        self.servers = servers
        self.objects: dict[str, Lock | Semaphore] = {}
        self.reports: dict[str, list[Loss]] = {}
        self.reported = threading.Condition()

    def run(self, steps: list[dict[str, Any]]) -> None:
        try:
            for number, step in enumerate(steps, 1):
                try:
                    self.step(step)
                except Failed as why:
                    raise Failed(f"step {number} ({step['op']}): {why}") from None
        finally:
            for obj in self.objects.values():
                obj.close()

    def step(self, step: dict[str, Any]) -> None:
        op, expect = step["op"], step.get("expect")
        if op == "open":
            check(lambda: self.open(step), expect, lambda _: None)
        elif op == "acquire":
            check(self.obj(step).acquire, expect, granted)
        elif op == "enqueue":
            check(self.obj(step).enqueue, expect, lambda status: status)
        elif op == "wait":
            check(lambda: self.obj(step).wait(timeout_s=step["timeout_s"]), expect, granted)
        elif op == "release":
            check(self.obj(step).release, expect, lambda released: released)
        elif op == "held":
            check(lambda: self.obj(step).is_held, expect, lambda held: held)
        elif op == "hold":
            time.sleep(step["seconds"])  # the wrapper's renewal thread keeps the lease
            if not self.obj(step).is_held:
                raise Failed(f"not held after {step['seconds']} s")
        elif op == "kill":
            os.kill(self.servers[step["server"]]["pid"], signal.SIGKILL)
        elif op == "lost":
            self.lost(step)
        elif op == "losses":
            check(lambda: self.obj(step).losses, expect, lambda n: n)
        elif op == "stats":
            self.stats(step)
        elif op == "close":
            self.obj(step).close()
        elif op == "fence-from-token":
            check(lambda: fence_from_token(step["token"]), expect, str)
        elif op == "shard-index":
            check(lambda: shard_index(step["key"], step["n"]), expect, lambda index: index)
        else:
            raise Failed(f"unknown op {op!r}")

    def open(self, step: dict[str, Any]) -> None:
        server = self.servers[step["server"]]
        reports = self.reports.setdefault(step["id"], [])

        def on_lost(loss: Loss) -> None:
            with self.reported:
                reports.append(loss)
                self.reported.notify_all()

        options: dict[str, Any] = dict(
            servers=[(server["host"], server["port"])],
            lease_ttl_s=step.get("lease_ttl_s"),
            acquire_timeout_s=step.get("acquire_timeout_s"),
            auth_token=step.get("auth_token"),
            on_lost=on_lost,
        )
        if "limit" in step:
            self.objects[step["id"]] = Semaphore(step["key"], step["limit"], **options)
        else:
            self.objects[step["id"]] = Lock(step["key"], **options)

    def obj(self, step: dict[str, Any]) -> Lock | Semaphore:
        return self.objects[step["id"]]

    def lost(self, step: dict[str, Any]) -> None:
        reports = self.reports[step["id"]]
        with self.reported:
            if not self.reported.wait_for(lambda: reports, timeout=step["within_s"]):
                raise Failed(f"no loss report within {step['within_s']} s")
        if len(reports) != 1 or reports[0].cause != step["cause"]:
            raise Failed(f"expected one {step['cause']} report, got {[r.cause for r in reports]}")

    def stats(self, step: dict[str, Any]) -> None:
        server = self.servers[step["server"]]
        reply = stats(server["host"], server["port"])
        key = step["key"]
        lock = next((info for info in reply.locks if info.key == key), None)
        semaphore = next((info for info in reply.semaphores if info.key == key), None)
        seen: dict[str, Any] = {"held": lock is not None}
        if lock or semaphore:
            seen["waiters"] = (lock or semaphore).waiters  # type: ignore[union-attr]
        if semaphore:
            seen["holders"], seen["limit"] = semaphore.holders, semaphore.limit
        for name, wanted in step["expect"].items():
            if seen.get(name) != wanted:
                raise Failed(f"stats {name}: expected {wanted!r}, got {seen.get(name)!r} ({reply})")


def granted(grant: Any) -> str:
    return "none" if grant is None else "granted"


def check(call: Any, expect: Any, shown: Any) -> None:
    """Runs `call` and compares `shown(result)` (or its error) with `expect`;
    no `expect` means it must succeed."""
    try:
        result = call()
    except DflockdError as error:
        if not isinstance(expect, dict) or "error" not in expect:
            raise Failed(f"unexpected error {error!r}") from None
        if error.kind != expect["error"]:
            raise Failed(f"expected error {expect['error']}, got {error!r}") from None
        hidden = expect.get("hides")
        if hidden and (hidden in str(error) or hidden in repr(error) or hidden in error.detail):
            raise Failed(f"the {error.kind} error shows {hidden!r}") from None
        return
    if isinstance(expect, dict) and "error" in expect:
        raise Failed(f"expected error {expect['error']}, got {shown(result)!r}")
    if expect is not None and shown(result) != expect:
        raise Failed(f"expected {expect!r}, got {shown(result)!r}")


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(f"usage: {argv[0]} <scenarios.json> <servers.json>", file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        scenarios = json.load(f)["scenarios"]
    with open(argv[2]) as f:
        servers: dict[str, Servers] = json.load(f)
    failed = 0
    for scenario in scenarios:
        name = scenario["name"]
        try:
            Scenario(servers.get(name, {})).run(scenario["steps"])
            print(f"ok {name}", flush=True)
        except Exception as why:  # one scenario's surprise must not hide the others
            failed += 1
            detail = why if isinstance(why, Failed) else f"{type(why).__name__}: {why}"
            print(f"FAIL {name}: {detail}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
