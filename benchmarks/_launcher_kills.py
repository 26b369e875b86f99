"""The reliability benchmark's launcher kills: an agent launcher SIGKILLed after it popped a start.

Each trial runs a workflow on agent launchers (``planlab agent``'s loop in forked
processes, no local launcher).  The first agent is killed with SIGKILL - half the
trials the moment it acknowledged its first start (after the pop, before any of its
processes claimed it: the start exists nowhere else; its processes die with it),
the others at a random moment of the run - and a second agent is started once it is
dead.  The run must complete with the right result or fail cleanly; one with no end
within the hang bound (its ``run_timeout_s``) counts as a hang.  Before the client's
watchdog of first starts (:mod:`executor.run.first_starts`) a start lost this way
left its run waiting for good.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import threading
import time
from typing import Any

from executor import Executor, ExecutorSettings, keys
from executor.launcher import run_launcher
from executor.server import EmbeddedRedis
from planning.errors import ExecutionError

__all__ = ["bench_launcher_kills"]

SECRET = b"reliability benchmark: launcher kills"
POOL = "launcher-kills"


def _agent(server: EmbeddedRedis, name: str) -> multiprocessing.process.BaseProcess:
    """An agent launcher process, returned once it serves (no parent-death signal: a thread may fork it)."""
    proc = multiprocessing.get_context("fork").Process(target=run_launcher, args=(server.url, SECRET, POOL, name, False),
                                                       kwargs={"serve_pool": True})
    proc.start()
    client, deadline = server.client(), time.monotonic() + 60
    while not client.exists(keys.launcher_alive(name)) and proc.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    return proc


def _kill_first(server: EmbeddedRedis, first: Any, after_pop: bool, delay_s: float, spare: list,
                name: str, stop: threading.Event) -> None:
    """SIGKILL ``first`` on its first acknowledged start (``after_pop``) or after ``delay_s``, then start a spare."""
    client = server.client()
    deadline = time.monotonic() + delay_s
    while not stop.is_set():
        if after_pop:
            acked = any(client.hlen(k) for k in client.scan_iter(match="pl:{*}:taken"))
        else:
            acked = time.monotonic() >= deadline
        if acked:
            os.kill(first.pid, signal.SIGKILL)
            break
        time.sleep(0.0005)
    first.join(10)
    spare.append(_agent(server, name))


def bench_launcher_kills(n: int, rng: random.Random, workflow: Any, plan: Any, expected: Any,
                         hang_s: float) -> dict[str, Any]:
    """``n`` trials of ``workflow`` whose first agent launcher is killed (``expected``: its sink result)."""
    settings = ExecutorSettings(pool=POOL, lease_s=1.0, keep_alive_s=2.0, start_timeout_s=10.0, run_timeout_s=hang_s)
    rows = []
    with EmbeddedRedis() as server:
        for i in range(n):
            after_pop = i % 2 == 0
            delay = rng.uniform(0.0, 0.8)
            first = _agent(server, f"first-{i}")
            spare: list = []
            stop = threading.Event()
            killer = threading.Thread(target=_kill_first,
                                      args=(server, first, after_pop, delay, spare, f"spare-{i}", stop))
            row: dict[str, Any] = {"trial": i, "after_pop": after_pop, "delay_s": None if after_pop else delay}
            t = time.perf_counter()
            with Executor(server.url, settings, local_launcher=False, secret=SECRET) as ex:
                killer.start()
                try:
                    result = ex.run(workflow, plan)
                    row.update(outcome="right" if result.results == {"sink": expected} else "wrong",
                               deaths=result.meta["deaths"])
                except ExecutionError as exc:
                    text = str(exc)
                    row.update(outcome="hang" if "run_timeout_s" in text else "clean failure", error=text[:300])
                row["seconds"] = time.perf_counter() - t
                stop.set()
                killer.join(60)
                for proc in spare:
                    ex.control(f"spare-{i}", {"type": "stop"})
                    proc.join(10)
            for proc in (first, *spare):
                if proc.is_alive():
                    proc.kill()
                    proc.join(5)
            row["keys_left"] = sum(1 for k in server.client().scan_iter(match="pl:{*")
                                   if not k.endswith(b":metrics"))
            rows.append(row)
            print(f"  launcher kill {i:2d} {'after pop' if after_pop else 'random   '} {row['outcome']:<13} "
                  f"{row['seconds']:.2f} s deaths={len(row.get('deaths', []))} keys left={row['keys_left']}",
                  flush=True)
    counts = {k: sum(r["outcome"] == k for r in rows) for k in ("right", "wrong", "clean failure", "hang")}
    return {"trials": n, **counts, "keys_left": sum(r["keys_left"] for r in rows), "rows": rows}
