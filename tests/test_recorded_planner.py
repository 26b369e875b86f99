"""The ``recorded`` pseudo-planner: machines as per-core slots, recorded runtimes, no overheads."""

from __future__ import annotations

from pathlib import Path

import pytest

from planning.cost_model import CostModel
from planning.errors import PlanError
from planning.generators import generate
from planning.planners import PLANNERS, get_planner
from planning.planners.recorded import machine_of, recorded_durations, recorded_makespan
from planning.profiles import load_catalog
from planning.wfformat import read_wfformat
from planning.workflow import Task, Workflow
from simulator import Platform, simulate

DATA = Path(__file__).resolve().parent.parent / "experiments" / "data"


def test_registered_and_replays_recorded_runtimes() -> None:
    assert "recorded" in PLANNERS
    wf = read_wfformat(DATA / "blast-chameleon-small-001.json")
    plan = get_planner("recorded").plan(wf, load_catalog("lambda"), CostModel(), "p95")
    machines = machine_of(wf)
    # every task on a slot of the machine it ran on; profiles are the machines
    for t, w in plan.worker_of.items():
        assert w.rsplit("#", 1)[0] == machines[t] == plan.tasks.at[t, "profile"]
    assert set(plan.catalog.names) == set(machines.values())
    runtimes = recorded_durations(wf)
    planned = plan.tasks["exec_end_s"] - plan.tasks["exec_start_s"]
    assert all(planned[t] == pytest.approx(runtimes[t]) for t in runtimes)
    # no transfers, no start-ups: the replay's makespan is a list schedule of recorded runtimes
    assert (plan.tasks["startup_s"] == 0).all()
    assert plan.makespan_s < recorded_makespan(wf)
    trace = simulate(wf, plan, CostModel(), platform=Platform.zero())   # runtimes as recorded by default
    assert trace.makespan_s == plan.makespan_s


def test_a_machine_runs_at_most_its_cores_at_once() -> None:
    # eight independent 10 s tasks on a recorded 2-core machine: 4 rounds of 2
    tasks = [Task(f"t{i}", "k", runtime_s=10.0, meta={"machines": ["m"]}) for i in range(8)]
    wf = Workflow.from_tasks(tasks, {}, name="two-cores", metadata={"machines": {"m": {"cores": 2}},
                                                                    "recorded_makespan_s": 50.0})
    plan = get_planner("recorded").plan(wf, load_catalog("local"), CostModel(), "mean")
    assert sorted(plan.workers["worker"]) == ["m#0", "m#1"]
    assert plan.makespan_s == 40.0
    assert simulate(wf, plan, CostModel(), platform=Platform.zero()).makespan_s == 40.0


def test_a_chain_stays_on_one_slot_so_its_data_is_local() -> None:
    wf = read_wfformat(DATA / "helloworld-chain-5-chameleon.json")
    plan = get_planner("recorded").plan(wf, load_catalog("local"), CostModel(), "mean")
    assert plan.tasks["worker"].nunique() == 1 and not plan.tasks["stored"].iloc[:-1].any()


def test_workflows_without_recorded_runtimes_are_refused() -> None:
    wf = Workflow.from_tasks([Task("a", "k")], {}, name="nothing")
    with pytest.raises(PlanError, match="no recorded runtimes"):
        get_planner("recorded").plan(wf, load_catalog("local"), CostModel(), "mean")
    with pytest.raises(PlanError, match="no recorded makespan"):
        recorded_makespan(generate("chain", length=2))
