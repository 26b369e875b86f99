"""The simulator's platform model on hand-computed cases: start-ups, keep-alive, bandwidth sharing,
fan-in continuation, workflow-system overheads, protocol overrides and sampling."""

from __future__ import annotations

import math

import pytest

from planning.costs.cost_model import CostModel
from planning.errors import PlanError
from planning.plan import Plan
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.protocol import OutputDecision, WorkerProtocol
from planning.tasks import Task
from planning.workflow import Workflow
from simulator import Platform, simulate

FREE = CostModel(latency_s=0.0, bandwidth_Bps=math.inf, cold_start_s=0.0, warm_start_s=0.0)
CATALOG = load_catalog("local")
ZERO = Platform.zero()


def workflow(edges: dict[tuple[str, str], int], tasks: str) -> Workflow:
    parents: dict[str, list[str]] = {t: [] for t in tasks}
    for (a, b) in edges:
        parents[b].append(a)
    return Workflow.from_tasks([Task(t, "k", output_bytes=0) for t in tasks], parents, dict(edges), name="hand")


def plan_of(wf: Workflow, worker_of: dict[str, str], profiles: dict[str, str] | None = None,
            sequence: dict[str, list[str]] | None = None) -> Plan:
    profiles = profiles or {w: "medium" for w in set(worker_of.values())}
    est = FREE.estimate_workflow(wf, CATALOG, "mean")
    return Plan.from_assignment(wf, CATALOG, est, FREE, "mean", worker_of, profiles, planner="manual",
                                sequence=sequence)


def run(wf: Workflow, plan: Plan, durations: dict[str, float], **platform: float):
    trace = simulate(wf, plan, FREE, platform=ZERO.with_(**platform), durations=durations)
    return trace.validate(), trace.tasks.set_index("task_id"), trace.workers.set_index("worker")


def test_cold_start_and_invocation() -> None:
    wf = workflow({}, "a")
    trace, t, w = run(wf, plan_of(wf, {"a": "w0"}), {"a": 1.0}, cold_start_s=0.5, invoke_s=0.1)
    assert (t.at["a", "worker_start_s"], t.at["a", "exec_start_s"], t.at["a", "done_s"]) == (0.1, 0.6, 1.6)
    assert bool(t.at["a", "cold_start"]) and t.at["a", "startup_s"] == 0.5
    assert trace.makespan_s == 1.6
    assert (w.at["w0", "start_s"], w.at["w0", "ready_s"], w.at["w0", "stop_s"]) == (0.1, 0.6, 1.6)
    assert trace.cost == pytest.approx(1.5 * CATALOG["medium"].price_per_s)


def test_keep_alive_warm_inside_the_window_cold_after() -> None:
    # a (w0) -> x (wx, another profile, 2 s) -> b (w1, w0's profile): w0 stops at 1.5, w1 starts at 4.0
    wf = workflow({("a", "x"): 0, ("x", "b"): 0}, "axb")
    plan = plan_of(wf, {"a": "w0", "x": "wx", "b": "w1"}, {"w0": "medium", "wx": "large", "w1": "medium"})
    durations = {"a": 1.0, "x": 2.0, "b": 1.0}
    common = dict(cold_start_s=0.5, warm_start_s=0.05)
    warm, t, w = run(wf, plan, durations, keep_alive_s=3.0, **common)
    assert not bool(t.at["b", "cold_start"]) and t.at["b", "startup_s"] == 0.05
    assert t.at["b", "exec_start_s"] == pytest.approx(4.05) and warm.makespan_s == pytest.approx(5.05)
    assert bool(w.at["wx", "cold_start"])       # another profile is never warm
    cold, t, _ = run(wf, plan, durations, keep_alive_s=2.0, **common)   # 4.0 - 1.5 = 2.5 > 2
    assert bool(t.at["b", "cold_start"]) and cold.makespan_s == pytest.approx(5.5)


def test_concurrent_transfers_share_the_bandwidth() -> None:
    # a uploads 100 B alone (1 s at 100 B/s); b and c then download 100 B each at once: 2 s each
    wf = workflow({("a", "b"): 100, ("a", "c"): 100}, "abc")
    plan = plan_of(wf, {"a": "w0", "b": "w1", "c": "w2"})
    trace, t, _ = run(wf, plan, {"a": 1.0, "b": 1.0, "c": 1.0}, storage_bandwidth_Bps=100.0)
    assert t.at["a", "done_s"] == pytest.approx(2.0)
    for child in "bc":
        assert (t.at[child, "download_start_s"], t.at[child, "download_end_s"]) == pytest.approx((2.0, 4.0))
    assert trace.makespan_s == pytest.approx(5.0)
    alone = workflow({("a", "b"): 100}, "ab")
    trace, t, _ = run(alone, plan_of(alone, {"a": "w0", "b": "w1"}), {"a": 1.0, "b": 1.0},
                      storage_bandwidth_Bps=100.0)
    assert t.at["b", "download_end_s"] == pytest.approx(3.0) and trace.makespan_s == pytest.approx(4.0)


def test_static_fan_in_continues_on_its_planned_worker() -> None:
    wf = workflow({("a", "b"): 0, ("a", "c"): 0, ("b", "d"): 0, ("c", "d"): 0}, "abcd")
    plan = plan_of(wf, {"a": "w0", "b": "w0", "c": "w1", "d": "w0"})
    trace, t, _ = run(wf, plan, {"a": 1.0, "b": 1.0, "c": 3.0, "d": 1.0}, invoke_s=0.5)
    assert t.loc[list("abcd"), "exec_start_s"].tolist() == [0.5, 1.5, 2.0, 5.5]
    assert t.at["d", "ready_s"] == 5.0 and t.at["d", "worker"] == "w0"   # c (on w1) completed it: invoke w0
    assert trace.makespan_s == 6.5


@pytest.mark.parametrize("slow, continues", [("c", "w:c"), ("b", "w:a")])
def test_dynamic_fan_in_runs_where_its_last_dependency_finished(slow: str, continues: str) -> None:
    wf = workflow({("a", "b"): 0, ("a", "c"): 0, ("b", "d"): 0, ("c", "d"): 0}, "abcd")
    plan = get_planner("wukong", profile="medium").plan(wf, CATALOG, FREE, "mean")
    assert plan.dynamic
    durations = {"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0, slow: 3.0}
    trace, t, w = run(wf, plan, durations, cold_start_s=0.25)
    assert t.at["b", "worker"] == "w:a" and t.at["c", "worker"] == "w:c"   # a continues b, starts w:c
    assert t.at["d", "worker"] == continues
    assert t.at["d", "exec_start_s"] == pytest.approx(0.25 + 1.0 + 0.25 * (slow == "c") + 3.0)
    assert len(w) == 2


def test_workflow_system_overheads() -> None:
    roots = workflow({}, "abc")
    plan = plan_of(roots, {"a": "w0", "b": "w1", "c": "w2"})
    trace, t, _ = run(roots, plan, {"a": 1.0, "b": 1.0, "c": 1.0}, dispatch_s=2.0, workflow_start_s=10.0)
    assert sorted(t["done_s"]) == [13.0, 15.0, 17.0]          # one serial dispatcher: releases at 12, 14, 16
    assert trace.makespan_s == 17.0
    chain = workflow({("a", "b"): 0, ("b", "c"): 0}, "abc")
    trace, _, _ = run(chain, plan_of(chain, {"a": "w0", "b": "w0", "c": "w0"}), {"a": 1.0, "b": 1.0, "c": 1.0},
                      level_delay_s=1.0)
    assert trace.makespan_s == 6.0                             # each of 3 levels waits 1 s
    moved = workflow({("a", "b"): 10 ** 9}, "ab")
    trace, t, _ = run(moved, plan_of(moved, {"a": "w0", "b": "w1"}), {"a": 1.0, "b": 1.0}, staging_s_per_GB=5.0)
    assert t.at["a", "done_s"] == 6.0 and t.at["b", "exec_start_s"] == 11.0 and trace.makespan_s == 12.0


class StoreEverything(WorkerProtocol):
    """An optimization-style override: checkpoint every output to storage."""

    def handle_output(self, task_id: str, worker: str) -> OutputDecision:
        return OutputDecision(True, self.output_bytes(task_id))


def test_a_protocol_override_changes_the_simulation() -> None:
    wf = workflow({("a", "b"): 100, ("b", "c"): 100}, "abc")
    plan = plan_of(wf, {t: "w0" for t in "abc"})
    durations = {"a": 1.0, "b": 1.0, "c": 1.0}
    platform = ZERO.with_(storage_bandwidth_Bps=100.0)
    default = simulate(wf, plan, FREE, platform=platform, durations=durations)
    override = simulate(wf, plan, FREE, platform=platform, durations=durations,
                        protocol=StoreEverything.for_plan(wf, plan))
    assert default.makespan_s == 3.0 and override.makespan_s == pytest.approx(5.0)


def test_sampling_is_reproducible_and_the_trace_is_complete() -> None:
    model = CostModel()
    wf = workflow({("a", "b"): 1000, ("a", "c"): 1000, ("b", "d"): 10, ("c", "d"): 10}, "abcd")
    plan = get_planner("heft").plan(wf, CATALOG, model, "p95")
    one = simulate(wf, plan, model, sample=True, seed=1)
    assert one.makespan_s == simulate(wf, plan, model, sample=True, seed=1).makespan_s
    assert one.makespan_s != simulate(wf, plan, model, sample=True, seed=2).makespan_s
    assert one.engine == "simulate" and one.run_id.endswith("-s1") and len(one.tasks) == 4
    assert one.workers["tasks"].sum() == 4 and one.validate() is one
    assert one.to_history("hand", wf.structure_hash())["exec_s"].gt(0).all()


def test_a_plan_of_another_workflow_is_refused() -> None:
    wf = workflow({("a", "b"): 0}, "ab")
    other = workflow({}, "ab")
    with pytest.raises(PlanError, match="another workflow"):
        simulate(other, plan_of(wf, {"a": "w0", "b": "w0"}), FREE)
    with pytest.raises(PlanError, match="durations"):
        simulate(wf, plan_of(wf, {"a": "w0", "b": "w0"}), FREE, durations={"a": 1.0})


@pytest.mark.timeout(60)
def test_tiny_transfers_late_in_a_long_run_finish() -> None:
    # regression: a transfer whose remaining time is below the clock's resolution must complete
    # (it used to wake the link at the same instant forever)
    wf = workflow({("a", "b"): 3, ("a", "c"): 5, ("b", "d"): 7, ("c", "d"): 1}, "abcd")
    plan = plan_of(wf, {"a": "w0", "b": "w1", "c": "w2", "d": "w0"})
    trace, t, _ = run(wf, plan, {k: 1e-7 for k in "abcd"}, workflow_start_s=1e9, storage_bandwidth_Bps=1e12,
                      storage_latency_s=1e-9)
    assert trace.makespan_s >= 1e9 and t["done_s"].notna().all()


def test_trace_string_columns_are_the_ones_pandas_builds() -> None:
    """A str column built through pyarrow (a list, or one string repeated) equals pandas' own, dtype included;
    values pyarrow refuses are handed back for pandas to build as usual."""
    import pandas as pd

    from simulator.simulate import _DTYPES, _strings

    names = ["t0", "t1", "naïve", "t0"]
    for built, expected in ((_strings(names), names), (_strings("sim-1", 3), ["sim-1"] * 3), (_strings("x", 0), [])):
        column, reference = pd.Series(built), pd.Series(expected, dtype=object).astype(str)
        assert column.dtype == _DTYPES["str"] == reference.dtype and column.equals(reference)
    mixed = ["a", 1]
    assert _strings(mixed) is mixed


def test_trace_columns_gathered_by_worker_are_the_ones_pandas_builds() -> None:
    """A task's worker (and profile) column gathered from the workers' names by each task's worker row equals
    pandas' column of the names repeated so, dtype included; values pyarrow refused are gathered as objects."""
    import numpy as np
    import pandas as pd

    from simulator.simulate import _DTYPES, _strings, _strings_at

    names, codes = ["w-a", "w-b", "wé"], np.array([2, 0, 0, 1, 2])
    expected = pd.Series(["wé", "w-a", "w-a", "w-b", "wé"], dtype=object).astype(str)
    column = pd.Series(_strings_at(_strings(names), names, codes))
    assert column.dtype == _DTYPES["str"] == expected.dtype and column.equals(expected)
    mixed = ["a", 1]
    assert _strings_at(_strings(mixed), mixed, np.array([1, 0])) == [1, "a"]


def test_a_trace_takes_each_task_s_worker_and_profile_from_its_worker() -> None:
    """Three tasks on two workers of two profiles: each task's worker, profile, CPUs and memory are its
    worker's (the columns gathered by worker row); the task ids and kinds are the workflow's, shared by its
    traces without one trace's change showing in another's."""
    wf = workflow({("a", "b"): 0, ("a", "c"): 0}, "abc")
    plan = plan_of(wf, {"a": "w1", "b": "w1", "c": "w2"}, {"w1": "small", "w2": "large"})
    _, tasks, workers = run(wf, plan, {"a": 1.0, "b": 1.0, "c": 1.0})
    assert tasks["worker"].tolist() == ["w1", "w1", "w2"] and tasks["profile"].tolist() == ["small", "small", "large"]
    small, large = CATALOG["small"], CATALOG["large"]
    assert tasks["cpus"].tolist() == [small.cpus, small.cpus, large.cpus]
    assert tasks["memory_mb"].tolist() == [small.memory_mb, small.memory_mb, large.memory_mb]
    assert workers.loc["w2", "profile"] == "large" and workers.loc["w1", "tasks"] == 2
    first = simulate(wf, plan, FREE, platform=ZERO, durations={"a": 1.0, "b": 1.0, "c": 1.0})
    first.tasks.loc[0, "task_id"] = "changed"
    again = simulate(wf, plan, FREE, platform=ZERO, durations={"a": 1.0, "b": 1.0, "c": 1.0})
    assert again.tasks["task_id"].tolist() == ["a", "b", "c"] and again.tasks["kind"].tolist() == ["k"] * 3


def test_worker_rows_become_the_workers_columns() -> None:
    """Two workers, one task each (a -> b on w1 then w2): each worker's row as its loop recorded it, the
    workers in the order they stopped, cold starts and start-ups (hand-computed: start-up 1 s, a 2 s, b 3 s)."""
    wf = workflow({("a", "b"): 0}, "ab")
    _, tasks, workers = run(wf, plan_of(wf, {"a": "w1", "b": "w2"}), {"a": 2.0, "b": 3.0}, cold_start_s=1.0)
    assert list(workers.index) == ["w1", "w2"]
    assert workers.loc["w1", ["start_s", "ready_s", "stop_s", "busy_s"]].tolist() == [0.0, 1.0, 3.0, 2.0]
    assert workers.loc["w2", ["start_s", "ready_s", "stop_s", "busy_s"]].tolist() == [3.0, 4.0, 7.0, 3.0]
    assert workers["cold_start"].tolist() == [True, True] and workers["tasks"].tolist() == [1, 1]
    assert tasks.loc["b", "worker"] == "w2" and tasks.loc["b", "exec_start_s"] == 4.0
