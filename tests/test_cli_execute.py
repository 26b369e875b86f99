"""``planlab execute`` and ``planlab agent``: JSON keys, history out, one clear line and exit 2 on mistakes."""

from __future__ import annotations

import json
from pathlib import Path

from experiments.cli import main
from planning.costs.history import load_history

DATA = Path(__file__).resolve().parent.parent / "experiments" / "data"


def test_execute_json_has_the_real_and_planned_numbers(tmp_path, capsys) -> None:
    history = tmp_path / "h.parquet"
    argv = ["execute", "gen:fork_join:width=3,units=500", "--planner", "uniform", "--profile", "small",
            "--catalog", "local", "--sla", "p95", "--history-out", str(history), "--json"]
    assert main(argv) == 0
    info = json.loads(capsys.readouterr().out)
    assert {"makespan_s", "planned_makespan_s", "tasks", "cold_starts", "limits_enforced"} <= set(info)
    assert info["tasks"] == 5 and info["workers"] == 3 and info["cold_starts"] == 3
    assert info["makespan_s"] > 0 and info["planned_makespan_s"] > 0
    assert {"cpu", "memory", "threads"} <= set(info["limits_enforced"])
    assert len(load_history(history)) == 5
    assert main(argv) == 0                                   # a second run appends
    capsys.readouterr()
    assert len(load_history(history)) == 10


def test_execute_replays_a_wfformat_execution_scaled(tmp_path, capsys) -> None:
    argv = ["execute", str(DATA / "helloworld-chain-5-chameleon.json"), "--planner", "heft", "--catalog", "local",
            "--sla", "mean", "--scale", "0.001", "--max-replay-bytes", "65536", "--trace-out", str(tmp_path / "t")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "makespan_s" in out and "limits_enforced" in out
    assert (tmp_path / "t" / "tasks.parquet").exists()


def test_execute_with_an_unreachable_server_is_one_line_exit_2(capsys) -> None:
    argv = ["execute", "gen:chain:length=2", "--planner", "uniform", "--profile", "small",
            "--redis-url", "redis://127.0.0.1:1/0"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "cannot reach a Redis server" in err and "fix:" in err and len(err.strip().splitlines()) == 1


def test_execute_rejects_a_bad_metrics_policy(capsys) -> None:
    argv = ["execute", "gen:chain:length=2", "--planner", "uniform", "--profile", "small", "--metrics", "often"]
    assert main(argv) == 2
    assert "metrics upload policy" in capsys.readouterr().err


def test_agent_with_a_bad_url_is_one_line_exit_2(capsys) -> None:
    assert main(["agent", "--redis-url", "http://example.org"]) == 2
    err = capsys.readouterr().err
    assert "unsupported Redis URL" in err and len(err.strip().splitlines()) == 1
