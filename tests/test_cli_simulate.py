"""``planlab simulate``: JSON keys, Monte Carlo percentiles, recorded replays, platform files, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.cli import main
from simulator import Platform

DATA = Path(__file__).resolve().parent.parent / "experiments" / "data"


def test_simulate_json_has_the_sla_and_percentiles(tmp_path, capsys) -> None:
    assert main(["simulate", "gen:random_layered:tasks=30", "--planner", "heft", "--catalog", "local", "--sla", "p95",
                 "--replications", "60", "--seed", "4", "--trace", str(tmp_path / "trace"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {"makespan_s", "makespan_mean_s", "makespan_p50_s", "makespan_p95_s", "cost", "cost_mean"} <= set(info)
    assert info["makespan_s"] == info["makespan_p95_s"] >= info["makespan_p50_s"] > 0
    assert info["replications"] == 60 and info["cost"] > 0
    assert (tmp_path / "trace" / "tasks.parquet").exists()


def test_deterministic_only_and_text_output(capsys) -> None:
    assert main(["simulate", "gen:chain:length=3", "--planner", "uniform", "--profile", "small",
                 "--replications", "0"]) == 0
    out = capsys.readouterr().out
    assert "makespan_s" in out and "makespan_deterministic_s" in out


def test_recorded_replay_with_a_platform_file(tmp_path, capsys) -> None:
    platform = tmp_path / "platform.toml"
    Platform.zero().with_(level_delay_s=20.0).to_toml(platform)
    path = str(DATA / "helloworld-chain-5-chameleon.json")
    assert main(["simulate", path, "--planner", "recorded", "--platform", str(platform), "--replications", "0",
                 "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["makespan_s"] == pytest.approx(info["planned_makespan_s"] + 5 * 20.0)
    assert info["recorded_makespan_s"] == 661.0 and 0 <= info["relative_error"] < 1


@pytest.mark.parametrize("argv, message", [
    (["simulate", "missing.json", "--planner", "heft"], "no such workflow file"),
    (["simulate", "gen:chain", "--planner", "nope"], "unknown planner"),
    (["simulate", "gen:chain", "--planner", "heft", "--platform", "missing.toml"], "does not exist"),
    (["simulate", "gen:chain", "--planner", "heft", "--replications", "-1"], "replications"),
])
def test_user_mistakes_are_one_line_and_exit_2(argv, message, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_bad_platform_file_names_the_key(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("invoke_s = -1\n")
    assert main(["simulate", "gen:chain", "--planner", "heft", "--platform", str(bad)]) == 2
    assert "invoke_s" in capsys.readouterr().err
    bad.write_text("invoke_s = [\n")
    assert main(["simulate", "gen:chain", "--planner", "heft", "--platform", str(bad)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
