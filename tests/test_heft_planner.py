"""The ``heft`` planner: valid plans everywhere, and with free overheads the protocol's timing is HEFT's own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from planning import SLA, CostModel, generate, load_catalog, read_wfformat
from planning.planners import get_planner
from planning.sources.generators import GENERATORS

MEAN = SLA.parse("mean")
SMALL = {"fan_out": {"width": 50}, "deep_chain": {"length": 50}, "random_layered": {"tasks": 60}}
DATA = Path(__file__).resolve().parent.parent / "experiments" / "data"


def free_model() -> CostModel:
    return CostModel(latency_s=0.0, bandwidth_Bps=1e30, cold_start_s=0.0, warm_start_s=0.0)


def heft_own_makespan(plan) -> float:
    return float(re.search(r"([0-9.e+-]+) s$", plan.notes[-1]).group(1))


@pytest.mark.parametrize("name", sorted(GENERATORS))
@pytest.mark.parametrize("workers", [None, 2])
def test_free_overheads_plan_equals_heft_timeline(name: str, workers) -> None:
    wf = generate(name, **SMALL.get(name, {}))
    plan = get_planner("heft", workers_per_profile=workers).plan(wf, load_catalog("lambda"), free_model(), MEAN)
    assert plan.makespan_s == pytest.approx(heft_own_makespan(plan), rel=1e-5)
    if workers is not None:
        assert plan.workers.groupby("profile").size().max() <= workers


@pytest.mark.parametrize("path", sorted(DATA.glob("*.json"))[:6], ids=lambda p: p.stem)
def test_heft_plans_real_workflows(path: Path) -> None:
    wf = read_wfformat(path)
    plan = get_planner("heft", workers_per_profile=2).plan(wf, load_catalog("lambda"), CostModel(), MEAN)
    plan.validate(wf)
    assert plan.makespan_s >= max(plan.lower_bounds.values()) - 1e-9


@pytest.mark.parametrize("workers", [None, 2])
def test_cold_starts_are_part_of_heft_and_of_the_plan(workers) -> None:
    wf = generate("random_layered", tasks=60)
    model = CostModel(latency_s=0.0, bandwidth_Bps=1e30, cold_start_s=2.0, warm_start_s=0.0)
    plan = get_planner("heft", workers_per_profile=workers).plan(wf, load_catalog("lambda"), model, MEAN)
    own = heft_own_makespan(plan)
    # HEFT's timeline respects every constraint the protocol's schedule has, so the schedule is never later
    assert plan.makespan_s <= own * (1 + 1e-5)
    assert (plan.tasks.loc[plan.tasks["cold_start"], "startup_s"] == 2.0).all()
    assert plan.tasks["exec_start_s"].min() >= 2.0


def test_heft_places_a_task_only_where_its_memory_fits():
    import numpy as np
    from planning import Task, Workflow
    from planning.planners.heft import heft
    wf = Workflow("mem")
    wf.add_task(Task("a", "k", runtime_s=1.0))
    wf.add_task(Task("big", "k", runtime_s=1.0, memory_mb=900))
    wf.add_edge("a", "big", 10)
    exec_s = np.array([[1.0, 5.0], [1.0, 5.0]])            # profile 0 is much faster for both
    free = heft(wf, exec_s, ["small", "large"], {("a", "big"): 0.0})
    assert free.worker_profile[free.worker_of["big"]] == "small"
    fits = np.array([[True, True], [False, True]])         # 'big' does not fit in small
    held = heft(wf, exec_s, ["small", "large"], {("a", "big"): 0.0}, allowed=fits)
    assert held.worker_profile[held.worker_of["big"]] == "large"
    assert held.worker_profile[held.worker_of["a"]] == "small"
    with pytest.raises(ValueError, match="allowed on no profile"):
        heft(wf, exec_s, ["small", "large"], {("a", "big"): 0.0}, allowed=np.array([[True, True], [False, False]]))


def test_heft_refuses_a_task_no_profile_can_hold():
    from planning import CostModel, Task, Workflow, load_catalog
    from planning.errors import PlanError
    from planning.planners import get_planner
    wf = Workflow("huge")
    wf.add_task(Task("x", "k", runtime_s=1.0, memory_mb=1e6))
    with pytest.raises(PlanError, match="more than any profile"):
        get_planner("heft").plan(wf, load_catalog("local"), CostModel(), "mean")


def test_host_sized_pools_never_ask_for_more_cpus_per_profile_than_the_host_has():
    """host_cores = 2 on the local catalog: at most 4 'small' (0.5), 2 'medium' (1) and 1 'large' (2) workers."""
    from planning.costs.cost_model import CostModel
    from planning.sources.generators import generate
    from planning.planners import get_planner
    from planning.profiles import load_catalog

    catalog = load_catalog("local")
    plan = get_planner("heft", host_cores=2).plan(generate("fork_join", width=16, units=20_000_000), catalog, CostModel(), "mean")
    per_profile = plan.workers.groupby("profile")["worker"].nunique().to_dict()
    limits = {"small": 4, "medium": 2, "large": 1}
    assert all(count <= limits[profile] for profile, count in per_profile.items())
    unbounded = get_planner("heft").plan(generate("fork_join", width=16, units=20_000_000), catalog, CostModel(), "mean")
    assert len(unbounded.workers) > len(plan.workers)


def test_host_cores_is_checked():
    import pytest

    from planning.errors import PlanError
    from planning.planners import get_planner

    for bad in ("many", 0, -1, float("nan")):
        with pytest.raises(PlanError, match="host_cores"):
            get_planner("heft", host_cores=bad)
    with pytest.raises(PlanError, match="not both"):
        get_planner("heft", host_cores=2, workers_per_profile=3)
    assert get_planner("heft", host_cores="local").host_cores >= 1
