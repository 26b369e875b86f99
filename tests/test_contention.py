"""A task's wait for a core others held, measured by the worker and taken out of the profile phase's times."""

from __future__ import annotations

import multiprocessing
import os
import time

import pandas as pd
import pytest

from executor import Executor, ExecutorSettings
from executor.contention import ContentionProbe, alone_seconds
from executor.plans import assigned_plan
from experiments.profiling import alone_history
from planning.errors import ExecutionError
from planning.tasks import Task
from planning.workflow import Workflow

BURN_S = 0.4
needs_schedstat = pytest.mark.skipif(ContentionProbe.open() is None, reason="the kernel reports no schedstat")


def replay(seconds: float) -> Workflow:
    """One replay task burning ``seconds`` of CPU time (executor.replay.burn_cpu)."""
    workflow = Workflow("burn")
    workflow.add_task(Task("b", "burn", runtime_s=seconds, output_bytes=0))
    return workflow


def _spin(stop_at: float) -> None:
    while time.time() < stop_at:
        pass


def test_alone_is_the_time_minus_the_wait_but_never_below_the_quotas_rate():
    """1.0 s of which 0.6 s waiting, 0.3 CPU-s: on 1 CPU alone is 0.4 s; on a 0.5-CPU quota the 0.3 CPU-s take 0.6 s."""
    assert alone_seconds(1.0, 0.6, 0.3, 1.0) == pytest.approx(0.4)
    assert alone_seconds(1.0, 0.6, 0.3, 0.5) == pytest.approx(0.6)
    history = pd.DataFrame({"exec_s": [1.0, 1.0, 2.0], "cpu_wait_s": [0.6, 0.6, float("nan")],
                            "exec_cpu_s": [0.3, 0.3, float("nan")], "cpus": [1.0, 0.5, 1.0]})
    out = alone_history(history)
    assert out["exec_s"].tolist() == pytest.approx([0.4, 0.6, 2.0])      # unmeasured rows keep their time
    assert out["exec_wall_s"].tolist() == [1.0, 1.0, 2.0]
    plain = pd.DataFrame({"exec_s": [1.0], "cpus": [1.0]})
    assert alone_history(plain) is plain


def test_a_run_measures_contention_only_when_asked():
    workflow = replay(0.05)
    plan = assigned_plan(workflow, {"b": "w"}, "medium")
    with Executor() as ex:
        plain = ex.run(workflow, plan).trace.tasks
        measured = ex.run(workflow, plan, measure_contention=True).trace.tasks
    assert "cpu_wait_s" not in plain and "exec_cpu_s" not in plain
    if ContentionProbe.open() is not None:
        row = measured.iloc[0]
        assert row["cpu_wait_s"] >= 0 and row["exec_cpu_s"] >= 0.04      # it burnt 0.05 s of CPU


@needs_schedstat
def test_on_a_contended_core_the_wait_is_measured_and_the_time_alone_recovered():
    """The run's processes and a spinning process share one core: the task takes about twice its CPU time, the
    kernel says it waited about half, and the time alone comes back near the CPU time it burnt."""
    workflow = replay(BURN_S)
    plan = assigned_plan(workflow, {"b": "w"}, "medium")
    original = os.sched_getaffinity(0)
    one_core = {min(original)}
    os.sched_setaffinity(0, one_core)          # the executor's launcher and workers inherit it
    try:
        with Executor() as ex:
            ex.run(workflow, plan, measure_contention=True)      # warm the worker process first
            spinner = multiprocessing.get_context("fork").Process(target=_spin, args=(time.time() + 30,))
            spinner.start()
            try:
                row = ex.run(workflow, plan, measure_contention=True).trace.tasks.iloc[0]
            finally:
                spinner.kill()
                spinner.join()
    finally:
        os.sched_setaffinity(0, original)
    took = row["exec_end_s"] - row["exec_start_s"]
    assert took > 1.3 * BURN_S                                  # the spinner really took the core half the time
    assert row["cpu_wait_s"] > 0.2 * BURN_S
    assert alone_seconds(took, row["cpu_wait_s"], row["exec_cpu_s"], 1.0) == pytest.approx(BURN_S, rel=0.25)


def test_the_setting_is_a_boolean():
    with pytest.raises(ExecutionError, match="measure_contention"):
        ExecutorSettings(measure_contention="yes")
