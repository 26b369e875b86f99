"""Trace.from_plan: the planner's analytical schedule in the engines' schema, so planned vs real is a join."""

from __future__ import annotations

import pytest

from planning.costs.cost_model import CostModel
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.sla import SLA
from planning.sources.loading import load_workflow
from planning.trace import TASK_COLUMNS, WORKER_COLUMNS, Trace, compare_traces


@pytest.fixture(scope="module")
def plan():
    wf = load_workflow("gen:five_branches:size=20,rounds=2")
    return get_planner("critical-path").plan(wf, load_catalog("local"), CostModel(), SLA.parse("p95"))


def test_columns_makespan_cost_and_engine(plan) -> None:
    trace = Trace.from_plan(plan, run_id="cell-1").validate()
    assert list(trace.tasks.columns) == list(TASK_COLUMNS) and list(trace.workers.columns) == list(WORKER_COLUMNS)
    assert (trace.engine, trace.run_id) == ("plan", "cell-1")
    assert set(trace.tasks["engine"]) == {"plan"} and set(trace.tasks["run_id"]) == {"cell-1"}
    assert trace.makespan_s == pytest.approx(plan.makespan_s)
    assert trace.cost == pytest.approx(plan.cost) and trace.gb_s == pytest.approx(plan.gb_s)
    assert len(trace.tasks) == len(plan.tasks) and len(trace.workers) == len(plan.workers)


def test_phase_times_and_resources_follow_the_plan(plan) -> None:
    trace = Trace.from_plan(plan)
    rows = trace.tasks.set_index("task_id")
    for col in ("exec_start_s", "exec_end_s", "done_s", "worker_start_s"):
        assert rows[col].to_dict() == pytest.approx(plan.tasks[col].to_dict())
    catalog = plan.catalog
    assert all(rows.at[t, "cpus"] == catalog[p].cpus for t, p in plan.tasks["profile"].items())
    assert all(rows.at[t, "memory_mb"] == catalog[p].memory_mb for t, p in plan.tasks["profile"].items())
    # a worker is ready when its first task's start-up is over
    w0 = trace.workers.set_index("worker").loc["w0"]
    first = plan.tasks[plan.tasks["worker"] == "w0"].sort_values("worker_start_s").iloc[0]
    assert w0["ready_s"] == pytest.approx(first["worker_start_s"] + first["startup_s"])


def test_joins_with_itself_with_zero_error(plan) -> None:
    trace = Trace.from_plan(plan)
    joined = compare_traces(trace, trace)
    assert len(joined) == len(plan.tasks)
    assert joined["done_s_error"].abs().max() == 0.0


def test_history_rows_from_a_plan_trace(plan) -> None:
    hist = Trace.from_plan(plan).to_history(plan.workflow_name, plan.structure_hash)
    assert len(hist) == len(plan.tasks) and set(hist["engine"]) == {"plan"}


def test_resources_of_known_and_unknown_profiles() -> None:
    """Each name's CPUs and memory from the catalog, NaN for a name not in it, in order; nothing for no names."""
    import numpy as np

    from planning.billing import resources
    from planning.profiles import load_catalog

    catalog = load_catalog("lambda")
    a, b = catalog.names[0], catalog.names[-1]
    cpus, memory = resources([b, "nope", a, b], catalog)
    assert cpus[0] == catalog[b].cpus and memory[0] == catalog[b].memory_mb and cpus[3] == cpus[0]
    assert cpus[2] == catalog[a].cpus and memory[2] == catalog[a].memory_mb
    assert np.isnan(cpus[1]) and np.isnan(memory[1])
    assert cpus.dtype == memory.dtype == np.float64
    empty = resources([], catalog)
    assert empty[0].shape == empty[1].shape == (0,)


def test_bill_of_known_and_unknown_profiles() -> None:
    """GB-seconds and dollars: lifetime times the profile's memory (GB) and price; nothing for an unknown name."""
    from planning.billing import bill
    from planning.profiles import load_catalog

    catalog = load_catalog("lambda")
    p = catalog[catalog.names[0]]
    gb_s, cost = bill([p.name, "nope"], [1.0, 0.0], [3.0, 5.0], catalog)
    assert gb_s.tolist() == [2.0 * p.memory_mb / 1024.0, 0.0] and cost.tolist() == [2.0 * float(p.price_per_s), 0.0]
