"""``planlab calibrate --traces``: the host terms fitted on planlab's own saved runs, judged on held-out ones."""

from __future__ import annotations

import json
import math

import pytest

from experiments.calibrate_runs import calibrate_saved_runs
from experiments.calibration.trace_calibration import HOST_TERMS
from experiments.cli import main
from simulator import Platform

SPEC = "gen:fork_join:width=3"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Four real runs of a small fan-out, each saved by 'planlab execute --save-run'."""
    root = tmp_path_factory.mktemp("runs")
    for k in range(4):
        assert main(["execute", SPEC, "--planner", "uniform", "--profile", "medium", "--catalog", "local",
                     "--sla", "mean", "--save-run", str(root / f"run{k}"), "--json"]) == 0
    return root


def test_calibrating_on_saved_runs_forecasts_the_held_out_half(saved):
    result = calibrate_saved_runs([saved], max_evaluations=60)
    table = result.table
    assert list(table["role"]).count("fit") == 2 and list(table["role"]).count("held out") == 2
    assert result.terms == HOST_TERMS
    assert result.platform.host_cores == Platform.for_local_host().host_cores
    assert all(math.isfinite(getattr(result.platform, t)) and getattr(result.platform, t) >= 0 for t in HOST_TERMS)
    held = table[table["role"] == "held out"]
    assert result.held_out_error == pytest.approx(float(held["error"].abs().median()))
    assert result.error_before == pytest.approx(float(held["error_before"].abs().median()))


def test_the_cli_writes_the_platform_and_reports_held_out_error(saved, tmp_path, capsys):
    out = tmp_path / "platform.toml"
    assert main(["calibrate", "--traces", str(saved), "--out", str(out), "--json", "--max-evaluations", "40"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["runs_fitted"] == 2 and info["runs_held_out"] == 2 and len(info["runs"]) == 4
    assert set(info["terms"]) == set(HOST_TERMS)
    platform = Platform.from_toml(out)
    assert platform.host_cores == info["host_cores"]
    assert platform.warm_start_s == pytest.approx(info["terms"]["warm_start_s"])


def test_calibrate_traces_refuses_what_it_cannot_do(saved, tmp_path, capsys):
    assert main(["calibrate", "--traces", str(tmp_path)]) == 2
    assert "holds no saved run" in capsys.readouterr().err
    assert main(["calibrate", "--traces", str(saved / "run0")]) == 2
    assert "at least two saved runs" in capsys.readouterr().err
    assert main(["calibrate", "x.json", "--traces", str(saved)]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["calibrate"]) == 2
    assert "nothing to calibrate" in capsys.readouterr().err
