"""``execute --scale`` plans the scaled workflow; a recorded replay far off its makespan points at calibrate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.cli import main
from experiments.config import scaled_workflow
from planning import SLA, CostModel, load_catalog, load_workflow
from planning.planners import get_planner
from simulator import Platform

DATA = Path(__file__).resolve().parent.parent / "experiments" / "data"
CHAIN = str(DATA / "helloworld-chain-5-chameleon.json")
SRASEARCH = str(DATA / "srasearch-chameleon-10a-001.json")


def _planned(spec: str, scale: float) -> float:
    workflow = scaled_workflow(load_workflow(spec), scale)
    return get_planner("heft").plan(workflow, load_catalog("local"), CostModel(), SLA.parse("mean")).makespan_s


def test_execute_scale_scales_the_plan_with_the_run(capsys) -> None:
    assert main(["execute", CHAIN, "--planner", "heft", "--scale", "0.002", "--max-replay-bytes", "65536",
                 "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["planned_makespan_s"] == pytest.approx(_planned(CHAIN, 0.002))
    assert info["planned_makespan_s"] < 0.01 * _planned(CHAIN, 1.0)
    # the run replays the same scaled runtimes: it cannot beat the plan's critical path of them
    recorded_critical_path = load_workflow(CHAIN).critical_path()[0]
    assert info["makespan_s"] >= 0.002 * recorded_critical_path


@pytest.mark.parametrize("value", ["0", "-1", "nan"])
def test_execute_rejects_a_scale_that_is_not_positive(value: str, capsys) -> None:
    assert main(["execute", CHAIN, "--planner", "heft", "--scale", value]) == 2
    err = capsys.readouterr().err
    # (the command line's own range check or make_plan's, whichever sees it first: one line naming --scale)
    assert "--scale" in err and any(w in err for w in ("positive number", "out of range", "not a finite number"))
    assert err.count("\n") == 1


def test_a_large_replay_error_points_at_planlab_calibrate(capsys) -> None:
    assert main(["simulate", SRASEARCH, "--planner", "recorded", "--replications", "0", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["relative_error"] > 0.25
    assert "planlab calibrate" in info["hint"] and "--platform" in info["hint"]
    assert main(["simulate", SRASEARCH, "--planner", "recorded", "--replications", "0"]) == 0
    assert "planlab calibrate" in capsys.readouterr().out


def test_a_calibrated_replay_gives_no_hint(tmp_path: Path, capsys) -> None:
    Platform.zero().to_toml(tmp_path / "zero.toml")
    assert main(["simulate", SRASEARCH, "--planner", "recorded", "--replications", "0", "--json",
                 "--platform", str(tmp_path / "zero.toml")]) == 0
    zero = json.loads(capsys.readouterr().out)
    # a platform whose start-up accounts for the missing overhead replays within the threshold
    start = zero["recorded_makespan_s"] - zero["makespan_deterministic_s"]
    fitted = tmp_path / "fitted.toml"
    Platform.zero().with_(workflow_start_s=start).to_toml(fitted)
    assert main(["simulate", SRASEARCH, "--planner", "recorded", "--replications", "0", "--json",
                 "--platform", str(fitted)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["relative_error"] < 0.05 and "hint" not in info
