"""Threaded kinds: which tasks keep their whole CPU quota busy on a shared host (planning.costs.threads)."""

from __future__ import annotations

import pandas as pd
import pytest

from planning.costs.cost_model import CostModel
from planning.costs.threads import threaded_kinds


def history(rows: list[tuple[str, float, float]]) -> pd.DataFrame:
    """(kind, cpus, exec_s) rows as a minimal valid history (one task per row, no data, warm starts)."""
    profile = {0.5: "small", 1.0: "medium", 2.0: "large"}
    return pd.DataFrame([{"run_id": "r", "workflow": "w", "structure_hash": "h", "task_id": f"t{i}", "kind": kind,
                          "profile": profile[cpus], "cpus": cpus, "memory_mb": 1024.0, "input_bytes": 0.0,
                          "output_bytes": 0.0, "download_s": 0.0, "exec_s": seconds, "upload_s": 0.0,
                          "startup_s": 0.0, "cold_start": False}
                         for i, (kind, cpus, seconds) in enumerate(rows)])


def test_a_kind_faster_on_more_cpus_is_threaded_and_one_that_is_not_is_not():
    """blas: 1.0 s on 1 CPU, 0.7 s on 2 (1.43x >= 1.2): threaded.  loop: 2.0 s on 0.5 CPU (the quota), 1.0 s on 1 and
    on 2: the quota says nothing, 1 -> 2 CPUs gains nothing: not threaded.  once: one CPU count >= 1: not shown."""
    h = history([("blas", 1.0, 1.0), ("blas", 1.0, 1.0), ("blas", 2.0, 0.7), ("blas", 2.0, 0.7),
                 ("loop", 0.5, 2.0), ("loop", 1.0, 1.0), ("loop", 2.0, 1.0),
                 ("once", 0.5, 2.0), ("once", 1.0, 1.0)])
    assert threaded_kinds(h) == {"blas"}
    assert threaded_kinds(h, speedup=1.5) == frozenset()      # 1.43x is below a 1.5x threshold


def test_a_speed_up_of_a_few_milliseconds_is_noise_not_threads():
    """tiny: 8 ms on 1 CPU, 6 ms on 2 (1.33x but 2 ms saved, under the 5 ms floor): not threaded; numpy: 45 -> 33 ms."""
    h = history([("tiny", 1.0, 0.008), ("tiny", 2.0, 0.006), ("numpy", 1.0, 0.045), ("numpy", 2.0, 0.033)])
    assert threaded_kinds(h) == {"numpy"}
    assert threaded_kinds(h, min_saving_s=0.001) == {"numpy", "tiny"}


def test_the_cost_model_learns_them_and_says_so():
    model = CostModel().fit(history([("blas", 1.0, 1.0), ("blas", 2.0, 0.6), ("loop", 1.0, 1.0), ("loop", 2.0, 0.95)]))
    assert model.threaded(["blas", "loop", "never-seen"]).tolist() == [True, False, False]
    assert model.to_dict()["threaded_kinds"] == ["blas"]
    assert CostModel().threaded(["blas"]).tolist() == [False]          # unfitted: every task one thread
    assert CostModel().fit(history([("loop", 1.0, 1.0)])).threaded_kinds_ == frozenset()


@pytest.mark.parametrize("kind, seconds", [("blas", 2.0), ("loop", 1.0)])
def test_two_threaded_tasks_share_a_two_core_host_as_two_cores_of_work_each(kind, seconds):
    """Two tasks at once on 2-CPU workers, 1 s each alone, on a 2-core host.  A threaded kind keeps both its cores
    busy: 2 core-seconds each, one core each while both run: 2 s.  A single-threaded kind uses one core: 1 s."""
    from planning.planners import get_planner
    from planning.profiles import load_catalog
    from planning.tasks import Task
    from planning.workflow import Workflow
    from simulator import Platform, simulate

    model = CostModel(latency_s=0.0, cold_start_s=0.0, warm_start_s=0.0).fit(
        history([("blas", 1.0, 1.0), ("blas", 2.0, 0.6), ("loop", 1.0, 1.0), ("loop", 2.0, 1.0)]))
    workflow = Workflow("two")
    for name in ("a", "b"):
        workflow.add_task(Task(name, kind, output_bytes=0))
    plan = get_planner("uniform", profile="large").plan(workflow, load_catalog("local"), model, "mean")
    platform = Platform.zero().with_(host_cores=2.0)
    trace = simulate(workflow, plan, model, platform=platform, durations={"a": 1.0, "b": 1.0})
    assert trace.makespan_s == pytest.approx(seconds)


def test_the_law_bends_at_one_cpu():
    """A single-threaded kind: 2.0 s on 0.5 CPU (the quota), 1.0 s on 1 and on 2 CPUs; a BLAS kind: 2.0 / 1.0 / 0.6 s.
    One exponent through all three was wrong everywhere (map: +26 % on 1 CPU, -11 % on 2); the knee fits each side."""
    from planning.profiles import load_catalog

    model = CostModel().fit(history([(k, c, s) for k, c, s in (("loop", 0.5, 2.0), ("loop", 1.0, 1.0),
                                                                  ("loop", 2.0, 1.0), ("blas", 0.5, 2.0),
                                                                  ("blas", 1.0, 1.0), ("blas", 2.0, 0.6))
                                     for _ in range(6)]))
    catalog = load_catalog("local")
    for kind, expected in (("loop", [2.0, 1.0, 1.0]), ("blas", [2.0, 1.0, 0.6])):
        got = [model.estimate(kind, catalog[p], 0.0, "mean").exec_s for p in ("small", "medium", "large")]
        assert got == pytest.approx(expected, rel=0.03), kind
    k = model.kind_index_["loop"]
    assert model.exponent_low_[k] == pytest.approx(1.0) and model.exponent_[k] == pytest.approx(0.0, abs=0.05)
    described = model.describe().set_index("kind")
    assert described.loc["loop", "cpus_min"] == 0.5 and described.loc["loop", "n_cpus"] == 3   # measured range


def test_a_kind_measured_on_one_side_of_one_cpu_gets_the_quota_default_below_it():
    """Measured on 1 and 2 CPUs only: on half a CPU the quota throttles its work, twice the 1-CPU time."""
    from planning.costs.quota import DEFAULT_LOW_EXPONENT
    from planning.profiles import load_catalog

    model = CostModel().fit(history([("loop", 1.0, 1.0), ("loop", 2.0, 1.0)] * 6))
    assert DEFAULT_LOW_EXPONENT == 1.0
    small = model.estimate("loop", load_catalog("local")["small"], 0.0, "mean")
    assert small.exec_s == pytest.approx(2.0, rel=0.03) and small.source == "extrapolated"
