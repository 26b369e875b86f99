"""A start no process claimed: waited for while a live launcher took it, issued again when lost, a clear error when
no launcher takes it.  Real agent launcher processes on a real server, killed at the worst moment (after the pop)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

import pytest

from executor import Executor, ExecutorSettings, keys
from executor.launcher import run_launcher
from executor.launcher.pool import ProcessPool
from executor.launcher.queues import Launcher
from executor.plans import assigned_plan
from executor.server import EmbeddedRedis
from planning.errors import ExecutionError
from planning.sources.dsl import build_workflow, task
from planning.workflow import run_locally

SECRET = b"first starts test secret"
POOL = "first-starts"


@task
def nap(i):
    time.sleep(0.3)
    return i


@task
def total(*xs):
    return sum(xs)


@task
def mark(path):
    """Appends one mark to ``path`` per execution (how many times the task really ran)."""
    with open(path, "a") as f:
        f.write("x")
    return 7


def _fan(n: int):
    wf = build_workflow(total.named("sum")(*[nap.named(f"n{i}")(i) for i in range(n)]), name=f"fan-{n}")
    return wf, assigned_plan(wf, {t: ("sink" if t == "sum" else t) for t in wf.task_ids}, "small")


def _agent(url: str, name: str, how: str = "") -> None:
    """An agent launcher process; ``how`` makes it die (SIGKILL) right after popping its first start, before
    (``before-ack``) or after (``after-ack``) acknowledging it, or take each start slowly (``slow``)."""
    if how == "before-ack":
        Launcher._acknowledge = lambda self, run, msg: os.kill(os.getpid(), signal.SIGKILL)
    elif how == "after-ack":
        ProcessPool.start = lambda self, msg, blob: os.kill(os.getpid(), signal.SIGKILL)
    elif how.startswith("swallow"):
        # a launcher that acknowledges its first start and drops it, living on (the benchmark's hang: the run's
        # keys held only the ack); "swallow-late" hands the dropped start to a process after all, with the next
        # start (by then superseded: its late claim must be refused, so one process serves the worker)
        real, dropped = ProcessPool.start, []

        def swallow(self, msg, blob):
            if not dropped:
                dropped.append((msg, blob))
                return
            if how == "swallow-late" and len(dropped) == 1:
                dropped.append(None)
                real(self, *dropped[0])
                time.sleep(0.5)   # the stale start claims (and is refused) before the next generation's start
            real(self, msg, blob)
        ProcessPool.start = swallow
    elif how == "slow":   # a launcher that takes each start late (waiting for capacity on a loaded host)
        real = ProcessPool.start

        def slow(self, msg, blob):
            time.sleep(0.6)
            real(self, msg, blob)
        ProcessPool.start = slow
    run_launcher(url, SECRET, POOL, name, False, serve_pool=True)   # (PDEATHSIG would follow the forking thread)


def _spawn(server: EmbeddedRedis, name: str, how: str = "") -> multiprocessing.process.BaseProcess:
    """An agent, once it serves (its liveness key is set)."""
    proc = multiprocessing.get_context("fork").Process(target=_agent, args=(server.url, name, how))
    proc.start()
    proc.name_ = name
    client, deadline = server.client(), time.monotonic() + 60
    while not client.exists(keys.launcher_alive(name)) and time.monotonic() < deadline and proc.is_alive():
        time.sleep(0.05)
    return proc


def _stop(ex: Executor, procs: list) -> None:
    for proc in procs:
        if proc.is_alive():
            ex.control(proc.name_, {"type": "stop"})
    for proc in procs:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join(5)


def _leftovers(server: EmbeddedRedis) -> list[bytes]:
    return [k for k in server.client().scan_iter(match="pl:{*") if not k.endswith(b":metrics")]


@pytest.mark.parametrize("how", ["after-ack", "before-ack"])
def test_a_start_lost_with_the_launcher_that_popped_it_is_issued_again(how: str) -> None:
    """The launcher that took the first start dies before any process claims it; a second agent, started once
    the first is dead, serves the start issued again: at once when the lost start was acknowledged (its launcher's
    liveness key lapses), after start_timeout_s when it was not."""
    wf, plan = _fan(1)
    settings = ExecutorSettings(pool=POOL, start_timeout_s=15.0, run_timeout_s=120.0, lease_s=1.0)
    with EmbeddedRedis() as server:
        dying = _spawn(server, "dying", how)
        procs = [dying]

        def second_when_first_died() -> None:
            dying.join(60)
            procs.append(_spawn(server, "second"))

        helper = threading.Thread(target=second_when_first_died, daemon=True)
        helper.start()
        with Executor(server.url, settings, local_launcher=False, secret=SECRET) as ex:
            try:
                t0 = time.monotonic()
                result = ex.run(wf, plan)
                took = time.monotonic() - t0
            finally:
                helper.join(60)
                _stop(ex, procs)
        assert dying.exitcode == -signal.SIGKILL
        assert result.results == {"sum": run_locally(wf)["sum"]}
        deaths = result.meta["deaths"]
        assert len(deaths) == 1, deaths
        if how == "after-ack":
            assert "taken by launcher dying, which stopped before the worker claimed it" in deaths[0], deaths
        else:
            assert "its start was lost" in deaths[0] and "start_timeout_s=15 s" in deaths[0], deaths
        assert took < 90, took
        assert _leftovers(server) == []


def test_a_start_no_launcher_takes_fails_the_run_in_one_line() -> None:
    wf, plan = _fan(1)
    settings = ExecutorSettings(pool="nobody-serves-this", start_timeout_s=1.0, run_timeout_s=60.0)
    with EmbeddedRedis() as server:
        with Executor(server.url, settings, local_launcher=False, secret=SECRET) as ex:
            t0 = time.monotonic()
            with pytest.raises(ExecutionError, match="no launcher took the start of logical worker") as err:
                ex.run(wf, plan)
            assert time.monotonic() - t0 < 30
        assert "no launcher of pool 'nobody-serves-this' is alive" in str(err.value)
        assert "\n" not in str(err.value)   # one line
        assert _leftovers(server) == []


def test_starts_a_live_launcher_works_through_slowly_are_waited_for() -> None:
    """Six starts queued behind a launcher that takes each 0.6 s late: the last waits ~3.6 s unacknowledged,
    past start_timeout_s=1 s, but the launcher takes starts meanwhile - nothing is issued again or failed."""
    wf, plan = _fan(6)
    settings = ExecutorSettings(pool=POOL, start_timeout_s=1.0, run_timeout_s=120.0)
    with EmbeddedRedis() as server:
        slow = _spawn(server, "slow", "slow")
        with Executor(server.url, settings, local_launcher=False, secret=SECRET) as ex:
            try:
                result = ex.run(wf, plan)
            finally:
                _stop(ex, [slow])
        assert result.results == {"sum": run_locally(wf)["sum"]}
        assert result.meta["deaths"] == []
        assert _leftovers(server) == []


@pytest.mark.parametrize("how", ["swallow", "swallow-late"])
def test_a_start_a_live_launcher_took_and_never_started_is_superseded(tmp_path, how: str) -> None:
    """The launcher acknowledges the first start, lives on, and no process claims it: after start_timeout_s the
    start is superseded and started again (the run finishes, one death says why); when the stale start reaches a
    process after all, its claim is refused, so the root task ran exactly once."""
    marks = tmp_path / "marks"
    wf = build_workflow(total.named("sum")(mark.named("m")(str(marks))), name="mark-once")
    plan = assigned_plan(wf, {"m": "wm", "sum": "ws"}, "small")
    settings = ExecutorSettings(pool=POOL, start_timeout_s=2.0, run_timeout_s=120.0, lease_s=1.0)
    with EmbeddedRedis() as server:
        agent = _spawn(server, "swallower", how)
        with Executor(server.url, settings, local_launcher=False, secret=SECRET) as ex:
            try:
                t0 = time.monotonic()
                result = ex.run(wf, plan)
                took = time.monotonic() - t0
            finally:
                _stop(ex, [agent])
        assert result.results == {"sum": 7}
        deaths = result.meta["deaths"]
        assert len(deaths) == 1 and "did not start it within start_timeout_s=2 s" in deaths[0], deaths
        assert marks.read_text() == "x"     # one execution: the superseded start's late claim was refused
        assert result.meta["started_workers"] == 2
        assert took < 60, took
        assert _leftovers(server) == []
