"""WfCommons in: gen:wfcommons:RECIPE:tasks=N through the optional wfcommons package, seeded and reproducible."""

from __future__ import annotations

import json
import random
import sys

import numpy as np
import pytest

from experiments.cli import main
from planning import load_workflow
from planning.errors import WorkflowError
from planning.sources.wfcommons_recipes import RECIPES, wfcommons_workflow

pytest.importorskip("wfcommons", reason="the wfcommons extra is not installed (pip install -e '.[wfcommons]')")


def _signature(workflow) -> tuple:
    return (workflow.structure_hash(), sorted(workflow.edges()),
            sorted((t.id, t.kind, t.runtime_s, t.output_bytes) for t in workflow.tasks))


def test_montage_of_500_tasks_has_montages_shape() -> None:
    workflow = load_workflow("gen:wfcommons:montage:tasks=500")
    assert 400 <= len(workflow) <= 500
    kinds = {t.kind for t in workflow.tasks}
    assert {"mProject", "mDiffFit", "mConcatFit", "mBgModel", "mBackground", "mAdd"} <= kinds
    assert workflow.depth >= 6 and workflow.max_width > 100
    assert all(t.runtime_s is not None and t.runtime_s >= 0 for t in workflow.tasks)
    assert workflow.total_edge_bytes() > 0
    assert workflow.name == "wfcommons-montage-500-s0" and workflow.metadata["recorded_makespan_s"] is None


def test_the_same_spec_gives_the_same_workflow_and_leaves_global_random_state_alone() -> None:
    random.seed(123)
    np.random.seed(123)
    expected_py, expected_np = random.random(), np.random.random()
    random.seed(123)
    np.random.seed(123)
    first = wfcommons_workflow("epigenomics", tasks=120, seed=7)
    assert (random.random(), np.random.random()) == (expected_py, expected_np)
    assert _signature(wfcommons_workflow("epigenomics", tasks=120, seed=7)) == _signature(first)
    assert _signature(wfcommons_workflow("epigenomics", tasks=120, seed=8)) != _signature(first)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_every_recipe_builds(recipe: str) -> None:
    workflow = wfcommons_workflow(recipe, tasks=250)
    assert 150 <= len(workflow) <= 250
    assert workflow.metadata["recipe"] == recipe
    if recipe != "rnaseq":                      # WfCommons 1.6 builds rnaseq without any dependency
        assert workflow.graph.number_of_edges() > 0


def test_factors_scale_runtimes() -> None:
    base = wfcommons_workflow("montage", tasks=120)
    fast = wfcommons_workflow("montage", tasks=120, runtime_factor=0.01)
    ratio = sum(t.runtime_s for t in fast.tasks) / sum(t.runtime_s for t in base.tasks)
    assert ratio == pytest.approx(0.01, rel=0.05)


def test_plan_and_simulate_a_wfcommons_workflow_from_the_cli(capsys) -> None:
    spec = "gen:wfcommons:srasearch:tasks=100"
    assert main(["plan", spec, "--planner", "heft", "--catalog", "lambda", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["workflow"] == "wfcommons-srasearch-100-s0" and info["makespan_s"] > 0
    assert main(["simulate", spec, "--planner", "critical-path", "--replications", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["makespan_s"] > 0


@pytest.mark.parametrize("spec, message", [
    ("gen:wfcommons", "names no WfCommons recipe"),
    ("gen:wfcommons:montag", "unknown WfCommons recipe 'montag' (did you mean 'montage'?)"),
    ("gen:wfcommons:montage:task=100", "no parameter 'task' (did you mean 'tasks'?)"),
    ("gen:wfcommons:montage:tasks=many", "tasks='many' is not an integer"),
    ("gen:wfcommons:montage:tasks=5", "cannot build montage with tasks=5"),
    ("gen:wfcommons:montage:runtime_factor=0", "runtime_factor must be positive"),
])
def test_bad_specs_are_one_line_exit_2(spec: str, message: str, capsys) -> None:
    assert main(["inspect", spec]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_without_the_extra_the_error_names_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "wfcommons", None)          # import wfcommons now raises ImportError
    with pytest.raises(WorkflowError, match=r"needs the optional wfcommons package.*pip install -e '\.\[wfcommons\]'"):
        load_workflow("gen:wfcommons:montage:tasks=100")
