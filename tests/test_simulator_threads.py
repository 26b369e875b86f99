"""The executor's thread rule in the simulator: a threaded kind on a plan bigger than the host (simulator.threads)."""

from __future__ import annotations

import pandas as pd
import pytest

from executor.run.budgets import thread_counts
from planning.costs.cost_model import CostModel
from planning.costs.threads import fair_thread_counts, quota_threads
from planning.errors import ConfigError
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.tasks import Task
from planning.workflow import Workflow
from simulator import Platform, simulate


def history(rows: list[tuple[str, float, float]], repeats: int = 6) -> pd.DataFrame:
    """(kind, cpus, exec_s) rows, each measured ``repeats`` times alike (a noise-free law: ratios all 1)."""
    profile = {0.5: "small", 1.0: "medium", 2.0: "large"}
    return pd.DataFrame([{"run_id": "r", "workflow": "w", "structure_hash": "h", "task_id": f"t{i}-{k}", "kind": kind,
                          "profile": profile[cpus], "cpus": cpus, "memory_mb": 1024.0, "input_bytes": 0.0,
                          "output_bytes": 0.0, "download_s": 0.0, "exec_s": seconds, "upload_s": 0.0,
                          "startup_s": 0.0, "cold_start": False}
                         for i, (kind, cpus, seconds) in enumerate(rows) for k in range(repeats)])


#: blas: 1.0 s on 1 CPU, 0.6 s on 2 (threaded); loop: 1.0 s on both (single-threaded)
MODEL = CostModel(latency_s=0.0, cold_start_s=0.0, warm_start_s=0.0).fit(
    history([("blas", 1.0, 1.0), ("blas", 2.0, 0.6), ("loop", 1.0, 1.0), ("loop", 2.0, 1.0)]))


def two_large_tasks(kind: str):
    """Two independent tasks, each on its own 2-CPU worker: the plan holds 4 CPUs at once."""
    workflow = Workflow("two")
    for name in ("a", "b"):
        workflow.add_task(Task(name, kind, output_bytes=0))
    plan = get_planner("uniform", profile="large").plan(workflow, load_catalog("local"), MODEL, "mean")
    assert plan.peak_cpus == 4.0
    return workflow, plan


def test_the_fair_rule_gives_each_worker_its_share_of_the_host_in_threads():
    cpus = {"small": 0.5, "medium": 1.0, "large": 2.0, "huge": 8.0}
    assert fair_thread_counts(cpus, peak_cpus=4.0, host_cores=2.0) == {"small": 1, "medium": 1, "large": 1, "huge": 4}
    assert fair_thread_counts(cpus, peak_cpus=2.0, host_cores=2.0) == {"small": 1, "medium": 1, "large": 2, "huge": 8}
    assert fair_thread_counts(cpus, peak_cpus=4.0, host_cores=float("inf"))["huge"] == 8
    assert [quota_threads(c) for c in (0.25, 1.0, 1.5, 2.0)] == [1, 1, 1, 2]


def test_the_executor_sizes_pools_by_the_same_rule():
    _, plan = two_large_tasks("blas")
    assert thread_counts(plan, "fair", host_cpus=2) == {"small": 1, "medium": 1, "large": 1}
    assert thread_counts(plan, "quota", host_cpus=2) == {"small": 1, "medium": 1, "large": 2}
    assert thread_counts(plan, "fair", host_cpus=4) == {"small": 1, "medium": 1, "large": 2}


def test_a_threaded_task_on_one_thread_takes_its_one_cpu_time_on_one_core():
    """Two blas tasks at once on 2-CPU workers on a 2-core host: 4 CPUs planned, so one thread each.  Each takes its
    1-CPU time (1.0 s) on one core, side by side: 1.0 s.  Pools sized to the quota: 0.6 s of two cores each, sharing
    two cores: 1.2 s.  On a 4-core host the rule keeps two threads: 0.6 s."""
    workflow, plan = two_large_tasks("blas")
    catalog = load_catalog("local")
    one_cpu, two_cpus = (MODEL.estimate("blas", catalog[p], 0.0, "mean").exec_s for p in ("medium", "large"))
    assert one_cpu == pytest.approx(1.0, rel=0.01) and two_cpus == pytest.approx(0.6, rel=0.01)   # the fitted law
    fair = Platform.zero().with_(host_cores=2.0, fair_threads=1.0)
    assert simulate(workflow, plan, MODEL, platform=fair).makespan_s == pytest.approx(one_cpu)
    quota = fair.with_(fair_threads=0.0)
    assert simulate(workflow, plan, MODEL, platform=quota).makespan_s == pytest.approx(2 * two_cpus)
    roomy = fair.with_(host_cores=4.0)
    assert simulate(workflow, plan, MODEL, platform=roomy).makespan_s == pytest.approx(two_cpus)


def test_a_sampled_run_keeps_each_tasks_drawn_ratio_on_fewer_threads():
    """Same seed, same draws: on one thread each task is its 1-CPU mean times the ratio it drew on two threads."""
    workflow, plan = two_large_tasks("blas")
    catalog = load_catalog("local")
    ratio = MODEL.estimate("blas", catalog["medium"], 0.0, "mean").exec_s / MODEL.estimate(
        "blas", catalog["large"], 0.0, "mean").exec_s
    fair = Platform.zero().with_(host_cores=2.0, fair_threads=1.0)
    one = simulate(workflow, plan, MODEL, platform=fair, sample=True, seed=7).tasks.set_index("task_id")
    two = simulate(workflow, plan, MODEL, platform=fair.with_(host_cores=4.0), sample=True, seed=7).tasks.set_index(
        "task_id")
    took = lambda t: t["exec_end_s"] - t["exec_start_s"]   # noqa: E731
    assert (took(one) / took(two)).tolist() == pytest.approx([ratio, ratio])
    assert took(two).nunique() == 2                           # the draws differ per task: a real sample


def test_single_threaded_kinds_and_given_durations_keep_their_times():
    """loop is single-threaded: one core each, its 2-CPU time (about 1 s), whatever the rule.  Given durations (a replay) are kept as
    measured; only the cores change: blas at 1 s given, one thread each side by side: 1.0 s (quota: 2.0 s)."""
    workflow, plan = two_large_tasks("loop")
    fair = Platform.zero().with_(host_cores=2.0, fair_threads=1.0)
    loop_alone = MODEL.estimate("loop", load_catalog("local")["large"], 0.0, "mean").exec_s
    assert simulate(workflow, plan, MODEL, platform=fair).makespan_s == pytest.approx(loop_alone)
    workflow, plan = two_large_tasks("blas")
    given = {"a": 1.0, "b": 1.0}
    assert simulate(workflow, plan, MODEL, platform=fair, durations=given).makespan_s == pytest.approx(1.0)
    assert simulate(workflow, plan, MODEL, platform=fair.with_(fair_threads=0.0),
                    durations=given).makespan_s == pytest.approx(2.0)


@pytest.mark.parametrize("value", [0.5, 2.0])
def test_fair_threads_is_a_switch(value):
    with pytest.raises(ConfigError, match="fair_threads must be 0 or 1"):
        Platform(fair_threads=value)
