"""Saved runs: a real run saved and read back whole (plan, trace, workflow, cost model, settings, host)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from executor import Executor, ExecutorSettings
from experiments.cli import main
from experiments.hostload import measured_run
from experiments.saved_runs import (MANIFEST, SavedRunError, WorkflowRef, cli_workflow_reference, find_saved_runs,
                                    load_saved_run, load_saved_runs, save_run)
from planning.costs.cost_model import CostModel
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.sla import SLA
from planning.sources.loading import load_workflow

SPEC = "gen:chain:length=3"
SETTINGS = ExecutorSettings(keep_alive_s=5.0, metrics="task")


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict:
    """Two real runs of a 3-task chain: the first fits the cost model the second is planned with, then saved."""
    root = tmp_path_factory.mktemp("saved")
    workflow, catalog, sla = load_workflow(SPEC), load_catalog("local"), SLA.parse("p95")
    planner = get_planner("uniform", profile="small")
    with Executor(settings=SETTINGS) as ex:
        first = ex.run(workflow, planner.plan(workflow, catalog, CostModel(), sla), run_id="first")
        history = first.trace.to_history(workflow.name, workflow.structure_hash())
        model = CostModel(prior_sigma=0.25).fit(history)
        plan = planner.plan(workflow, catalog, model, sla)
        result, host = measured_run(lambda: ex.run(workflow, plan, run_id="second"))
    path = save_run(root / "run", workflow=workflow, workflow_ref=WorkflowRef(SPEC), plan=plan, trace=result.trace,
                    cost_model=model, settings=SETTINGS, sla=sla, catalog_spec="local", phase="execute",
                    cost_model_history=history)
    return {"root": root, "path": path, "workflow": workflow, "plan": plan, "trace": result.trace, "model": model,
            "host": host}


def test_a_real_run_round_trips(saved) -> None:
    run = load_saved_run(saved["path"])
    assert run.run_id == "second" and run.phase == "execute" and run.path == saved["path"]
    assert run.plan.to_dict() == saved["plan"].to_dict()
    pd.testing.assert_frame_equal(run.trace.tasks, saved["trace"].tasks)
    pd.testing.assert_frame_equal(run.trace.workers, saved["trace"].workers)
    assert run.trace.makespan_s == saved["trace"].makespan_s and run.trace.meta["run_id"] == "second"
    assert run.workflow.to_dict() == saved["workflow"].to_dict()
    assert run.settings == SETTINGS and run.sla == SLA.parse("p95")
    assert run.catalog.name == "local" and run.catalog_spec == "local"
    assert run.host == saved["host"] and run.trace.meta["host"] == saved["host"].to_dict()
    assert run.workflow_ref == WorkflowRef(SPEC)


def test_the_cost_model_is_rebuilt_exactly(saved) -> None:
    model, again = saved["model"], load_saved_run(saved["path"]).cost_model
    assert again.fitted and again.params == model.params
    pd.testing.assert_frame_equal(again.describe(), model.describe())
    for sla in ("mean", "p95"):
        est = again.estimate_workflow(saved["workflow"], load_catalog("local"), sla)
        ref = model.estimate_workflow(saved["workflow"], load_catalog("local"), sla)
        assert (est.exec_s == ref.exec_s).all() and (est.output_bytes == ref.output_bytes).all()
    assert again.startup_s("small", True, "p95") == model.startup_s("small", True, "p95")


def test_the_workflow_falls_back_to_its_spec_and_a_changed_one_is_refused(saved, tmp_path) -> None:
    copy = Path(shutil.copytree(saved["path"], tmp_path / "copy"))
    (copy / "workflow.json").unlink()
    assert load_saved_run(copy).workflow.structure_hash() == saved["workflow"].structure_hash()
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["workflow"]["spec"] = "gen:chain:length=4"      # no longer the workflow the plan was made for
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(SavedRunError, match="cannot rebuild its workflow"):
        load_saved_run(copy)


def test_find_accepts_a_run_a_results_folder_or_a_list(saved, tmp_path) -> None:
    path, root = saved["path"], saved["root"]
    nested = tmp_path / "results" / "runs"
    shutil.copytree(path, nested / "a")
    shutil.copytree(path, nested / "b")
    assert find_saved_runs(path) == [path.resolve()]
    assert find_saved_runs(path / MANIFEST) == [path.resolve()]
    assert find_saved_runs(tmp_path / "results") == [(nested / "a").resolve(), (nested / "b").resolve()]
    both = find_saved_runs([root, tmp_path / "results", str(path)])
    assert both == sorted({path.resolve(), (nested / "a").resolve(), (nested / "b").resolve()})
    assert [r.run_id for r in load_saved_runs(tmp_path / "results")] == ["second", "second"]


def test_missing_empty_and_foreign_folders_are_one_clear_error(tmp_path) -> None:
    with pytest.raises(SavedRunError, match="no such saved run"):
        find_saved_runs(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SavedRunError, match="holds no saved run"):
        find_saved_runs(tmp_path / "empty")
    with pytest.raises(SavedRunError, match="is not a saved run"):
        load_saved_run(tmp_path / "empty")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / MANIFEST).write_text(json.dumps({"format": "something/else"}))
    with pytest.raises(SavedRunError, match="has format 'something/else'"):
        load_saved_run(tmp_path / "foreign")


def test_cli_workflow_reference_makes_files_absolute(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli_workflow_reference("gen:chain:length=3") == WorkflowRef("gen:chain:length=3")
    assert cli_workflow_reference("wf.json").spec == str(tmp_path / "wf.json")
    assert cli_workflow_reference("flows.py:main").spec == f"{tmp_path / 'flows.py'}:main"


def test_planlab_execute_save_run(tmp_path, capsys) -> None:
    out = tmp_path / "runs" / "one"
    argv = ["execute", "gen:fork_join:width=2", "--planner", "uniform", "--profile", "small", "--sla", "p95",
            "--metrics", "task", "--save-run", str(out), "--json"]
    assert main(argv) == 0
    info = json.loads(capsys.readouterr().out)
    run = load_saved_run(out)
    assert run.run_id == info["run_id"] and run.phase == "execute" and len(run.trace.tasks) == 4
    assert run.trace.makespan_s == pytest.approx(info["makespan_s"])
    assert run.plan.planner == "uniform" and run.sla.name == "p95" and run.settings.metrics == "task"
    assert run.host.before.load_1m == info["host_load_1m"] and run.host.before.cpu_probe_s == info["cpu_probe_s"]
    assert not run.cost_model.fitted and run.manifest["cost_model"]["history"] is None
    assert main(argv) == 2, "an existing run folder is refused before anything runs"
    err = capsys.readouterr().err
    assert "already exists" in err and len(err.strip().splitlines()) == 1
    assert find_saved_runs(tmp_path / "runs") == [out.resolve()]
