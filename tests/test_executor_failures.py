"""Failures reach the client quickly and clearly: raising tasks, killed and stopped workers, OOM kills."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor import Executor, ExecutorSettings
from executor.limits import probe_limits
from executor.plans import assigned_plan
from planning.errors import ExecutionError
from planning.sources.dsl import build_workflow, task
from planning.workflow import run_locally


@pytest.fixture(scope="module")
def ex() -> Iterator[Executor]:
    with Executor(settings=ExecutorSettings(retries=0, lease_s=1.0)) as executor:
        yield executor


def _leftover_keys(ex: Executor) -> list[str]:
    return [k.decode() for k in ex.client.scan_iter(match="pl:{*") if not k.decode().endswith(":metrics")]


@task
def source(i):
    return i


@task
def explode(x):
    raise ValueError(f"bad input {x}")


@task
def wait_forever(x):
    time.sleep(60)
    return x


@task
def join(*xs):
    return sum(xs)


def _failing_workflow(middle):
    """Two sources on their own workers, ``middle`` on a third, a join waiting on the first worker."""
    a, b = source.named("a")(1), source.named("b")(2)
    wf = build_workflow(join.named("j")(a, middle.named("m")(b)), name="failing")
    plan = assigned_plan(wf, {"a": "wa", "j": "wa", "b": "wb", "m": "wm"}, "small")
    return wf, plan


def test_a_raising_task_gives_its_traceback_at_once_not_at_a_timeout() -> None:
    """The error is pushed to the client, not found by a lease or heartbeat running out: with both at a minute,
    it arrives in seconds (a bound loose enough for a loaded 2-core CI; the latency itself is a benchmark's job)."""
    wf, plan = _failing_workflow(explode)
    with Executor(settings=ExecutorSettings(retries=0, lease_s=60.0, heartbeat_timeout_s=60.0)) as patient:
        t = time.perf_counter()
        with pytest.raises(ExecutionError) as info:
            patient.run(wf, plan)
        assert time.perf_counter() - t < 20.0
        message = str(info.value)
        assert "task 'm'" in message and "ValueError: bad input 2" in message and "Traceback" in message
        assert _leftover_keys(patient) == []
        # the executor is healthy afterwards (the waiting worker 'wa' was stopped, not leaked)
        ok, ok_plan = _failing_workflow(source)
        assert patient.run(ok, ok_plan).results == {"j": run_locally(ok)["j"]}


def test_a_task_failing_once_is_retried_with_backoff(tmp_path: Path) -> None:
    marker = tmp_path / "failed-once"

    @task
    def flaky(x):
        if not marker.exists():
            marker.write_text("x")
            raise RuntimeError("transient")
        return x * 10

    wf = build_workflow(flaky(source(4)), name="flaky")
    plan = assigned_plan(wf, {t: "w0" for t in wf.task_ids}, "medium")
    # only errors the user marks as transient are retried (issue 15)
    with Executor(settings=ExecutorSettings(retries=2, retry_backoff_s=0.01, retry_on=("RuntimeError",))) as ex:
        result = ex.run(wf, plan)
    assert result.results == {"flaky": 40}
    rows = result.trace.tasks.set_index("task_id")
    assert rows.at["flaky", "attempt"] == 1 and rows.at["source", "attempt"] == 0


def test_retries_run_out_then_the_error_names_the_attempts() -> None:
    wf, plan = _failing_workflow(explode)
    with Executor(settings=ExecutorSettings(retries=2, retry_backoff_s=0.01, retry_on=("ValueError",))) as ex:
        with pytest.raises(ExecutionError, match=r"after 3 attempt"):
            ex.run(wf, plan)
        assert _leftover_keys(ex) == []


@task
def die(x):
    os.kill(os.getpid(), signal.SIGKILL)
    return x


@task
def freeze(x):
    os.kill(os.getppid(), signal.SIGSTOP)   # the launcher stops answering, as on a lost host
    time.sleep(30)
    return x


def test_a_killed_worker_fails_the_run_clearly(ex: Executor) -> None:
    wf, plan = _failing_workflow(die)
    t = time.perf_counter()
    with pytest.raises(ExecutionError, match=r"logical worker 'wm'.*killed by signal 9"):
        ex.run(wf, plan)
    assert time.perf_counter() - t < 15.0   # no hang (a loaded CI is slow, not stuck)
    assert _leftover_keys(ex) == []


def test_a_lost_launcher_is_caught_by_the_lease_of_its_worker() -> None:
    wf, plan = _failing_workflow(freeze)
    with Executor(settings=ExecutorSettings(retries=0, lease_s=0.5)) as own:
        t = time.perf_counter()
        try:
            with pytest.raises(ExecutionError, match=r"logical worker 'w[am]'.*lease of 0.5 s expired"):
                own.run(wf, plan)
            assert time.perf_counter() - t < 15.0   # no hang (a loaded CI is slow, not stuck)
            assert _leftover_keys(own) == []
        finally:
            os.kill(own._launcher.pid, signal.SIGCONT)   # let it kill the frozen worker and stop cleanly


@task
def hog(x):
    block = b"\x01" * (900 * 2**20)   # written, so really charged: more than small's 512 MB
    return len(block) + x


def test_a_task_over_its_memory_limit_is_reported_as_such(ex: Executor) -> None:
    support = probe_limits()
    if support.memory == "none":
        pytest.skip(f"memory limits are not enforceable here: {support.memory_reason}")
    wf, plan = _failing_workflow(hog)
    with pytest.raises(ExecutionError, match=r"memory limit \(512 MB\)"):
        ex.run(wf, plan)
    assert _leftover_keys(ex) == []


def test_a_run_id_in_use_is_refused_without_touching_the_run_that_has_it(ex: Executor) -> None:
    """Another client's live run holds the id: the second run fails with one clear line, and the live run's
    keys are left exactly as they were (its clean-up must not cancel or delete someone else's run)."""
    from executor.keys import RunKeys

    keys = RunKeys("taken")
    ex.client.set(keys.live, b"1")
    try:
        wf = build_workflow(source.named("only")(1), name="reuse")
        with pytest.raises(ExecutionError, match="already in use"):
            ex.run(wf, assigned_plan(wf, {"only": "w0"}, "small"), run_id="taken")
        assert ex.client.get(keys.live) == b"1"
    finally:
        ex.client.delete(keys.live)
