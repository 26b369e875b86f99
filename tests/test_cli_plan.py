"""``planlab plan``: JSON keys, --out, and one clear line with exit 2 for each user mistake."""

from __future__ import annotations

import json

import pytest

from experiments.cli import main
from planning.costs.history import save_history
from planning.plan import Plan
from planning.sources.synthetic import synthetic_history


def test_plan_json_and_out(tmp_path, capsys) -> None:
    out = tmp_path / "plan.json"
    assert main(["plan", "gen:five_branches", "--planner", "uniform", "--profile", "small", "--sla", "p95",
                 "--out", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {"planner", "makespan_s", "cost", "lower_bound_s", "workers"} <= set(info)
    assert info["workers"] == 5 and info["makespan_s"] >= info["lower_bound_s"] > 0
    assert Plan.from_json(out).makespan_s == pytest.approx(info["makespan_s"])


def test_plan_with_deadline_text_output(capsys) -> None:
    assert main(["plan", "gen:chain:length=4", "--planner", "uniform", "--deadline", "1000"]) == 0
    assert "makespan_s" in capsys.readouterr().out


def test_history_of_another_workflow_rejected(tmp_path, capsys) -> None:
    history, _ = synthetic_history(kinds=2, samples_per_cell=2, seed=0)
    path = tmp_path / "h.parquet"
    save_history(history, path)
    assert main(["plan", "gen:chain", "--planner", "uniform", "--profile", "small", "--history", str(path)]) == 2
    assert "another workflow" in capsys.readouterr().err


@pytest.mark.parametrize("argv, needle", [
    (["--planner", "nope"], "unknown planner"),
    (["--planner", "uniform", "--catalog", "missing.toml"], "does not exist"),
    (["--planner", "uniform", "--profile", "huge"], "unknown profile"),
    (["--planner", "uniform", "--profile", "small", "--sla", "p200"], "SLA"),
    (["--planner", "uniform"], "needs a profile or a deadline"),
])
def test_user_mistakes_exit_2_with_one_line(capsys, argv, needle) -> None:
    assert main(["plan", "gen:chain", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err


def test_empty_catalog_rejected(tmp_path, capsys) -> None:
    path = tmp_path / "empty.toml"
    path.write_text('name = "empty"\nprofile = []\n')
    assert main(["plan", "gen:chain", "--planner", "uniform", "--catalog", str(path), "--profile", "x"]) == 2
    assert "empty" in capsys.readouterr().err


@pytest.mark.parametrize("catalog, expected", [("local", "this host"), ("lambda", None)])
def test_prewarm_weighs_this_hosts_cores_with_the_local_catalog(tmp_path, catalog, expected) -> None:
    """``planlab plan --optimizations prewarm`` plans pre-warm for the host ``planlab execute`` runs on: with the
    local catalog this machine's cores (as an experiment cell does), with a cloud catalog none."""
    from simulator.platform import local_cores

    out = tmp_path / "plan.json"
    assert main(["plan", "gen:fork_join:width=6,depth=2", "--planner", "heft", "--catalog", catalog,
                 "--optimizations", "prewarm", "--out", str(out)]) == 0
    prewarm = Plan.from_json(out).annotations["prewarm"]
    assert prewarm["host_cores"] == (float(local_cores()) if expected else None)


def test_simulate_plans_prewarm_for_its_platforms_host(tmp_path, capsys) -> None:
    """``planlab simulate --platform``: pre-warm weighs the cores of the host the simulation runs on."""
    from experiments.commands.plan import add_planning_arguments, make_plan
    import argparse

    parser = argparse.ArgumentParser()
    add_planning_arguments(parser)
    args = parser.parse_args(["gen:fork_join:width=6,depth=2", "--planner", "heft", "--optimizations", "prewarm"])
    assert make_plan(args, host_cores=3.0).plan.annotations["prewarm"]["host_cores"] == 3.0
    assert make_plan(args, host_cores=float("inf")).plan.annotations["prewarm"]["host_cores"] is None


def test_optimizations_help_names_every_optimization() -> None:
    from experiments.commands.plan import OPTIMIZATION_NAMES
    from planning.protocol.optimizations import optimization_names

    assert list(OPTIMIZATION_NAMES) == optimization_names()
