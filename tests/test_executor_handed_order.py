"""A completion's hand-off notice read late never overrides a newer start its launcher handed the same process.

A completion hands a start straight to an idle process and leaves its launcher a notice,
read every ``HANDED_EVERY_S``.  The process may finish that worker, go idle again and be
handed the next run's start by the launcher before the notice is read: the launcher then
took the stale notice for what the process serves, renewed the old run's lease instead of
the new one's, and judged a death against the finished run - unreported, so a start whose
process died before claiming it was lost (the executor benchmark's hang: only the launcher's
ack of the start left, every process idle; the watchdog starts it again after
``start_timeout_s``).  Real agent launcher, real processes, real server; the interleaving is
forced by reading the notices right after each start the launcher takes (and never otherwise).
"""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from executor import Executor, ExecutorSettings, keys, worker
from executor.launcher import queues, run_launcher
from executor.heartbeat import Slot
from executor.launcher.pool import ProcessPool, _Child
from executor.launcher.queues import Launcher
from executor.plans import assigned_plan
from executor.server import EmbeddedRedis
from planning.sources.dsl import build_workflow, task

SECRET = b"handed order test secret"
POOL = "handed-order"
AGENT = "handed-order-agent"


@task
def make(n):
    return n


@task
def slow_plus_one(x):
    time.sleep(0.3)   # its process rejoins the idle list after the other one
    return x + 1


@task
def hold(x):
    time.sleep(2.0)   # four leases of 0.5 s: its launcher must renew them
    return x


def _agent(url: str, dies: bool) -> None:
    """An agent that reads its notices only right after each start it takes from a launch queue.  ``dies``: its
    process given worker ``wz``'s first start exits before claiming it (status 0, as on a lost connection)."""
    queues.HANDED_EVERY_S = 1e9
    real = Launcher._start_from

    def start_then_read_notices(self, run, blob):
        real(self, run, blob)
        self.take_handed()
    Launcher._start_from = start_then_read_notices
    if dies:
        opening = worker.open_start

        def open_or_die(ctx, msg):
            if msg["worker"] == "wz" and int(msg.get("gen", 0)) == 0:
                os._exit(0)
            return opening(ctx, msg)
        worker.open_start = open_or_die
    run_launcher(url, SECRET, POOL, AGENT, False, serve_pool=True)


def _idle_pids(client) -> list[int]:
    found = []
    for key in client.scan_iter(match=f"pl:idle:{AGENT}:*"):
        found += [int(p) for p in client.lrange(key, 0, -1)]
    return found


def test_the_hand_off_takes_the_notices_waiting_and_records_them_before_its_start() -> None:
    """One script call pops the process and takes the notices (oldest first), recorded before the pool assigns its own
    start; a pool with nothing to record them leaves them for the launcher's reader."""
    start = {"type": "start", "run": "r2", "worker": "wz", "task": "h", "profile": "small", "cpus": 1.0,
             "memory_mb": 512, "threads": None, "limits": True, "lease_s": 3.0, "heartbeat_timeout_s": 10.0, "gen": 0}
    with EmbeddedRedis() as server:
        client = server.client()
        pool = ProcessPool(client, server.url, "L", SECRET, "h")
        child = _Child(os.getpid(), keys.process_pool_key(start), None, Slot())
        pool.children[child.pid] = child
        pool.reap = lambda: None   # the child is this test's own process
        idle, notices = keys.idle_list("L", child.pool_key), keys.launcher_handed("L")
        recorded = []
        pool.record_handed = lambda taken: recorded.append((list(taken), child.serving))
        client.rpush(idle, child.pid)
        client.rpush(notices, f"{child.pid}\nr1\nold".encode(), b"7\nr1\nother")
        pool.start(start, b"sealed")
        assert recorded == [([f"{child.pid}\nr1\nold".encode(), b"7\nr1\nother"], None)]   # before its own start
        assert child.serving == ("r2", "wz", 0, "h") and not client.exists(notices)
        assert client.lrange(keys.process_inbox("L", child.pid), 0, -1) == [keys.inbox_item("r2", keys.BY_LAUNCHER,
                                                                                            b"sealed")]
        pool.record_handed = None
        client.rpush(idle, child.pid)
        client.rpush(notices, b"8\nr1\nlater")
        pool.start(start, b"sealed")
        assert client.lrange(notices, 0, -1) == [b"8\nr1\nlater"] and len(recorded) == 1


@pytest.mark.parametrize("dies", [False, True])
def test_a_late_notice_does_not_override_the_start_the_launcher_handed_after_it(dies: bool) -> None:
    """``dies=False``: the launcher renews the new start's lease (before, that run failed when its lease of 0.5 s
    lapsed with no other launcher to start the worker again).  ``dies=True``: the process dies before claiming the
    new start and its launcher reports it at once (before: no report, the watchdog's start_timeout_s later)."""
    settings = ExecutorSettings(pool=POOL, lease_s=0.5, start_timeout_s=20.0, run_timeout_s=60.0)
    two = build_workflow([make.named("x")(1), make.named("y")(2)], name="two")
    pair = build_workflow(slow_plus_one.named("b")(make.named("a")(1)), name="pair")
    one = build_workflow(hold.named("h")(5), name="one")
    with EmbeddedRedis() as server:
        agent = multiprocessing.get_context("fork").Process(target=_agent, args=(server.url, dies))
        agent.start()
        client = server.client()
        deadline = time.monotonic() + 60
        while not client.exists(keys.launcher_alive(AGENT)) and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            with Executor(server.url, settings, local_launcher=False, secret=SECRET) as ex:
                warm = ex.run(two, assigned_plan(two, {"x": "w1", "y": "w2"}, "small"))   # two warm processes
                first = ex.run(pair, assigned_plan(pair, {"a": "wa", "b": "wb"}, "small"))
                workers = first.trace.workers.set_index("worker")
                assert workers.loc["wb", "start_via"] == "completion", workers   # its notice is not read yet
                handed_pid = int(workers.loc["wb", "pid"])
                # Every process of the two runs idle (a loaded host may have forked a third one for "a", idle later
                # than b's), then b's moved to the tail: the launcher's hand-off pops the newest idle process.
                every = {int(p) for run in (warm, first) for p in run.trace.workers["pid"]}
                deadline = time.monotonic() + 10
                while set(_idle_pids(client)) != every and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert set(_idle_pids(client)) == every, (_idle_pids(client), every)
                [idle_key] = list(client.scan_iter(match=f"pl:idle:{AGENT}:*"))   # one profile: one idle list
                client.lrem(idle_key, 0, handed_pid)
                client.rpush(idle_key, handed_pid)
                assert _idle_pids(client)[-1] == handed_pid   # the launcher hands the next start to it
                t0 = time.monotonic()
                result = ex.run(one, assigned_plan(one, {"h": "wz"}, "small"))
                took = time.monotonic() - t0
                row = result.trace.workers.set_index("worker").loc["wz"]
                assert result.results == {"h": 5}
                if not dies:
                    assert int(row["pid"]) == handed_pid and row["start_via"] == "launcher"
                    assert result.meta["deaths"] == []
                else:
                    deaths = result.meta["deaths"]
                    assert len(deaths) == 1 and f"worker process {handed_pid} " in deaths[0], deaths
                    assert "exited (status 0)" in deaths[0] and "during its start" in deaths[0], deaths
                    assert int(row["pid"]) != handed_pid and took < 15, took
                ex.control(AGENT, {"type": "stop"})
        finally:
            agent.join(10)
            if agent.is_alive():
                agent.kill()
                agent.join(5)
