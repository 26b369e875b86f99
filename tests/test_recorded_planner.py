"""The ``recorded`` pseudo-planner: machines as per-core slots, recorded runtimes, no overheads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planning.costs.cost_model import CostModel
from planning.errors import PlanError
from planning.planners import PLANNERS, get_planner
from planning.profiles import load_catalog
from planning.recordings import machine_family, machine_of, recorded_durations, recorded_makespan, staged_bytes
from planning.sources.generators import generate
from planning.sources.wfformat import read_wfformat
from planning.sources.wfformat_write import write_wfformat
from planning.tasks import Task
from planning.workflow import Workflow
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


def _external_input_workflow(tmp_path):
    """root reads a 2 GB file no task writes and writes 1 GB read by leaf (same machine); leaf writes 0.5 GB."""
    doc = {"name": "ext", "schemaVersion": "1.5", "runtimeSystem": {"name": "Pegasus", "version": "5"},
           "workflow": {"specification": {
               "tasks": [{"name": "root", "id": "root", "parents": [], "children": ["leaf"],
                          "inputFiles": ["big.in"], "outputFiles": ["mid"]},
                         {"name": "leaf", "id": "leaf", "parents": ["root"], "children": [],
                          "inputFiles": ["mid"], "outputFiles": ["final"]}],
               "files": [{"id": "big.in", "sizeInBytes": 2_000_000_000}, {"id": "mid", "sizeInBytes": 1_000_000_000},
                         {"id": "final", "sizeInBytes": 500_000_000}]},
               "execution": {"makespanInSeconds": 100.0, "executedAt": "2021-01-01T00:00:00",
                             "machines": [{"nodeName": "node-1", "cpu": {"coreCount": 4}}],
                             "tasks": [{"id": "root", "runtimeInSeconds": 10.0, "machines": ["node-1"]},
                                       {"id": "leaf", "runtimeInSeconds": 5.0, "machines": ["node-1"]}]}}}
    path = tmp_path / "ext.json"
    path.write_text(json.dumps(doc))
    return path


def test_external_inputs_are_recorded_and_survive_export(tmp_path) -> None:
    wf = read_wfformat(_external_input_workflow(tmp_path))
    assert wf.task("root").meta["external_input_bytes"] == 2_000_000_000
    assert "external_input_bytes" not in wf.task("leaf").meta          # its input is written by root
    back = read_wfformat(write_wfformat(wf, tmp_path / "back.json"))
    assert back.task("root").meta["external_input_bytes"] == 2_000_000_000
    stage_in, stage_out = staged_bytes(wf)
    order = wf.topology().ids
    assert dict(zip(order, stage_in)) == {"root": 2e9, "leaf": 0.0}
    assert dict(zip(order, stage_out)) == {"root": 1e9, "leaf": 5e8}


def test_replay_stages_external_inputs_and_outputs_through_the_serial_stager(tmp_path) -> None:
    wf = read_wfformat(_external_input_workflow(tmp_path))
    plan = get_planner("recorded").plan(wf, load_catalog("local"), CostModel(), "mean")
    assert plan.tasks["worker"].nunique() == 1                           # a chain: its data stays local
    free = simulate(wf, plan, CostModel(), platform=Platform.zero())
    assert free.makespan_s == 15.0
    staged = simulate(wf, plan, CostModel(), platform=Platform.zero().with_(staging_s_per_GB=10.0))
    # 2 GB in before root, root's 1 GB out, leaf's 0.5 GB out: 35 s of serial staging on top of 15 s of work
    assert staged.makespan_s == pytest.approx(15.0 + 10.0 * (2.0 + 1.0 + 0.5))


def test_machine_family_strips_numbers_and_keeps_cores() -> None:
    tasks = [Task("a", "k", runtime_s=1.0, meta={"machines": ["worker-3.novalocal"]}),
             Task("b", "k", runtime_s=1.0, meta={"machines": ["compute-12"]})]
    wf = Workflow.from_tasks(tasks, {}, name="fam", metadata={"machines": {
        "worker-3.novalocal": {"cores": 24}, "compute-12": {"cores": 48}, "idle-1": {"cores": 8}}})
    assert machine_family(wf) == "compute/48,worker/24"                  # machines that ran nothing do not count
    assert machine_family(Workflow.from_tasks([Task("a", "k")], {}, name="none")) == ""


def test_the_replay_plan_simulates_as_the_timed_plan_and_times_only_when_read(monkeypatch) -> None:
    import pickle

    from planning.plan import Plan
    from simulator.simulate import compile_plan, run_once

    wf = read_wfformat(DATA / "blast-chameleon-small-001.json")
    timings = []
    real = Plan.from_assignment.__func__
    monkeypatch.setattr(Plan, "from_assignment", classmethod(lambda cls, *a, **k: timings.append(1) or real(cls, *a, **k)))
    for k in (1.0, 2.0):
        planner = get_planner("recorded", slots_per_core=k)
        replay = planner.replay(wf, load_catalog("local"), CostModel(), "mean")
        full = planner.plan(wf, load_catalog("local"), CostModel(), "mean")
        timings.clear()
        assert replay.assignment.worker_of == full.worker_of and replay.params == full.params == {"slots_per_core": k}
        slow = Platform.zero().with_(dispatch_s=2.0, workflow_start_s=30.0, staging_s_per_GB=5.0)
        makespans = [run_once(compile_plan(wf, p, CostModel()), slow, record=False).makespan_s for p in (replay, full)]
        assert makespans[0] == makespans[1] > 0
        assert timings == []                                     # simulated without the analytic timing
        assert pickle.loads(pickle.dumps(replay)).assignment.sequence == replay.assignment.sequence
        assert replay.makespan_s == full.makespan_s and timings == [1]   # read: timed, once
        assert replay.notes == full.notes and timings == [1]
