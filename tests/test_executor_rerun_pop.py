"""A re-run worker whose completion carried its next blocking pop reads its recovery queries in step."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from executor import Executor, ExecutorSettings
from executor.plans import assigned_plan
from planning.sources.dsl import build_workflow, task


@task
def step(x: int) -> int:
    return x + 1


def _dies_first_time(marker: Path):
    @task
    def die_once(x: int) -> int:
        if not marker.exists():
            marker.write_text("killed")
            os.kill(os.getpid(), signal.SIGKILL)
        return x + 1
    return die_once


def test_a_rerun_alternating_worker_checks_its_next_tasks_parents_after_its_pending_pop(tmp_path: Path) -> None:
    # t0..t5 alternate between wa and wb; wb dies in t3.  Its re-run runs t3, whose completion sends
    # the pop for t5 (not ready yet) in the same write; checking t5's parents must not read that pop's reply.
    t0 = step.named("t0")(0)
    t1 = step.named("t1")(t0)
    t2 = step.named("t2")(t1)
    t3 = _dies_first_time(tmp_path / "m").named("t3")(t2)
    t4 = step.named("t4")(t3)
    wf = build_workflow(step.named("t5")(t4), name="alternating-rerun")
    plan = assigned_plan(wf, {f"t{i}": "wa" if i % 2 == 0 else "wb" for i in range(6)}, "small")
    with Executor(settings=ExecutorSettings(lease_s=1.0)) as ex:
        result = ex.run(wf, plan)
    assert result.results == {"t5": 6}
    assert result.meta["restarts"] == 1 and result.meta["task_kills"] == {"t3": 1}
