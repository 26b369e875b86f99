"""WfFormat out: plans and traces as WfFormat 1.5 instances, valid against the official schema, read back the same."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.cli import main
from planning import SLA, CostModel, Trace, load_catalog, load_workflow, read_wfformat
from planning.errors import WorkflowError
from planning.planners import get_planner
from planning.sources.wfformat_export import (SCHEMAS, export_plan, export_trace, plan_to_wfformat, trace_to_wfformat,
                                      validate_wfformat)
from simulator import simulate

DATA = Path(__file__).resolve().parent.parent / "experiments" / "data"
SCHEMA = json.loads(SCHEMAS["1.5"].read_text())


@pytest.fixture(scope="module")
def planned():
    workflow = load_workflow("gen:random_layered:tasks=40,seed=3")
    cost_model = CostModel()
    plan = get_planner("heft").plan(workflow, load_catalog("local"), cost_model, SLA.parse("p95"))
    return workflow, plan, cost_model


def _exec_s(trace: Trace) -> dict[str, float]:
    t = trace.tasks
    return dict(zip(t["task_id"], t["exec_end_s"] - t["exec_start_s"]))


def _same_dag(a, b) -> None:
    assert sorted(a.task_ids) == sorted(b.task_ids)
    assert sorted(a.edges()) == sorted(b.edges())          # (parent, child, bytes): same DAG, same bytes


def test_the_shipped_schema_is_the_official_one_and_accepts_real_instances() -> None:
    assert SCHEMA["title"] == "WfFormat" and SCHEMA["properties"]["schemaVersion"]["enum"] == ["1.5"]
    for name in ("montage-chameleon-2mass-01d-001.json", "epigenomics-chameleon-hep-1seq-100k-001.json"):
        doc = json.loads((DATA / name).read_text())
        jsonschema.Draft4Validator(SCHEMA).validate(doc)
        validate_wfformat(doc)


def test_a_plan_exports_as_a_valid_instance_with_its_planned_runtimes(planned, tmp_path: Path) -> None:
    workflow, plan, _ = planned
    path = export_plan(workflow, plan, tmp_path / "plan.json")
    doc = json.loads(path.read_text())
    jsonschema.Draft4Validator(SCHEMA).validate(doc)       # independently of the exporter's own check
    assert doc["schemaVersion"] == "1.5" and doc["runtimeSystem"]["name"] == "planlab"
    assert doc["workflow"]["execution"]["makespanInSeconds"] == pytest.approx(plan.makespan_s)
    back = read_wfformat(path)
    _same_dag(workflow, back)
    planned_exec = _exec_s(Trace.from_plan(plan))
    assert {t.id: t.runtime_s for t in back.tasks} == pytest.approx(planned_exec)
    assert back.metadata["recorded_makespan_s"] is None     # a plan's makespan is a prediction, not a record
    machines = {m["nodeName"] for m in doc["workflow"]["execution"]["machines"]}
    assert machines == set(plan.workers["worker"].str.replace(r"[^A-Za-z0-9-]+", "-", regex=True))


def test_a_simulated_trace_round_trips_through_planlab_inspect(planned, tmp_path: Path, capsys) -> None:
    workflow, plan, cost_model = planned
    trace = simulate(workflow, plan, cost_model)
    path = export_trace(workflow, trace, tmp_path / "sim.json")
    back = load_workflow(str(path))
    _same_dag(workflow, back)
    assert {t.id: t.runtime_s for t in back.tasks} == pytest.approx(_exec_s(trace))
    ext = json.loads(path.read_text())["planlab"]
    assert ext["engine"] == "simulate" and set(ext["task_phases"]) == set(workflow.task_ids)
    assert main(["inspect", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["tasks"], info["edges"]) == (len(workflow), workflow.graph.number_of_edges())


def test_a_real_run_exports_from_the_cli_and_replays_with_recorded(tmp_path: Path, capsys) -> None:
    out, trace_dir = tmp_path / "real.json", tmp_path / "trace"
    assert main(["execute", "gen:fork_join:width=3,units=500", "--planner", "uniform", "--profile", "small",
                 "--wfformat-out", str(out), "--trace-out", str(trace_dir), "--json"]) == 0
    capsys.readouterr()
    trace, doc = Trace.load(trace_dir), json.loads(out.read_text())
    jsonschema.Draft4Validator(SCHEMA).validate(doc)
    assert all("executedAt" in t for t in doc["workflow"]["execution"]["tasks"])   # a real run knows its clock
    back = read_wfformat(out)
    _same_dag(load_workflow("gen:fork_join:width=3,units=500"), back)
    assert {t.id: t.runtime_s for t in back.tasks} == pytest.approx(_exec_s(trace))
    assert back.metadata["recorded_makespan_s"] == pytest.approx(trace.makespan_s)
    assert main(["simulate", str(out), "--planner", "recorded", "--replications", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["recorded_makespan_s"] == pytest.approx(trace.makespan_s)


@pytest.mark.parametrize("command", ["plan", "simulate"])
def test_cli_exports_plans_and_simulations(command: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / f"{command}.json"
    extra = ["--replications", "0"] if command == "simulate" else []
    assert main([command, "gen:chain:length=4", "--planner", "heft", "--wfformat-out", str(out), *extra]) == 0
    capsys.readouterr()
    validate_wfformat(json.loads(out.read_text()))
    _same_dag(load_workflow("gen:chain:length=4"), read_wfformat(out))


def test_an_invalid_instance_is_one_error_naming_where(planned) -> None:
    workflow, plan, _ = planned
    doc = plan_to_wfformat(workflow, plan)
    doc["workflow"]["execution"]["tasks"][0]["runtimeInSeconds"] = "fast"
    with pytest.raises(WorkflowError, match="not valid WfFormat 1.5 at workflow/execution/tasks/0/runtimeInSeconds"):
        validate_wfformat(doc)
    doc = plan_to_wfformat(workflow, plan)
    doc["workflow"]["execution"]["tasks"][0]["machines"] = ["nowhere"]
    with pytest.raises(WorkflowError, match="undeclared machine 'nowhere'"):
        validate_wfformat(doc)
    with pytest.raises(WorkflowError, match="cannot write WfFormat schema '1.3'"):
        trace_to_wfformat(workflow, Trace.from_plan(plan), schema_version="1.3")


def test_a_trace_of_another_workflow_is_refused(planned) -> None:
    workflow, plan, _ = planned
    with pytest.raises(WorkflowError, match="the trace has no row for task"):
        trace_to_wfformat(load_workflow("gen:chain:length=3"), Trace.from_plan(plan))


def test_cli_unwritable_wfformat_out_is_one_line_exit_2(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["plan", "gen:chain:length=3", "--planner", "heft", "--wfformat-out", str(blocker / "x.json")]) == 2
    err = capsys.readouterr().err
    assert "cannot write the WfFormat instance" in err and err.count("\n") == 1


@settings(max_examples=12, deadline=None)
@given(tasks=st.integers(1, 60), seed=st.integers(0, 10_000), planner=st.sampled_from(["heft", "critical-path", "wukong"]))
def test_any_plan_round_trips(tasks: int, seed: int, planner: str) -> None:
    """Property: whatever the DAG and planner, the export validates and reads back the same DAG and runtimes."""
    import tempfile

    workflow = load_workflow(f"gen:random_layered:tasks={tasks},seed={seed}")
    params = {"profile": "medium"} if planner == "wukong" else {}
    plan = get_planner(planner, **params).plan(workflow, load_catalog("local"), CostModel(), SLA.parse("mean"))
    with tempfile.TemporaryDirectory() as tmp:
        back = read_wfformat(export_plan(workflow, plan, Path(tmp) / "plan.json"))
    _same_dag(workflow, back)
    assert {t.id: t.runtime_s for t in back.tasks} == pytest.approx(_exec_s(Trace.from_plan(plan)))


def test_execute_checks_the_export_before_running(tmp_path: Path, monkeypatch, capsys) -> None:
    """A run is not started when its WfFormat export could not be validated or written afterwards."""
    import executor

    def no_run(*args, **kwargs):
        raise AssertionError("the run started")

    monkeypatch.setattr(executor.Executor, "run", no_run)
    blocker = tmp_path / "file"
    blocker.write_text("")
    argv = ["execute", "gen:chain:length=2", "--planner", "heft", "--wfformat-out"]
    assert main([*argv, str(blocker / "run.json")]) == 2
    assert "not a writable directory" in capsys.readouterr().err
    assert main([*argv, str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "jsonschema", None)
    assert main([*argv, str(tmp_path / "run.json")]) == 2
    err = capsys.readouterr().err
    assert "needs the jsonschema package" in err and ".[wfformat]" in err and err.count("\n") == 1
