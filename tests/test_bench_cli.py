"""``benchmarks/bench_cli.py``: its processes really run, its peak RSS is each command's own, its file says its commit.

Two rounds only (the recorded run takes at least ten); the times are not asserted
(timing belongs in the benchmark), what the measurement measures is.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_cli as bench  # noqa: E402


def test_every_variant_runs_and_each_reports_its_own_peak_rss() -> None:
    results, loads = bench.measure(2, bench.planlab_script(), ROOT, seed=1)
    assert set(results) == {"help", "inspect", "floor_python", "floor_numpy_networkx", "baseline_help",
                            "baseline_inspect"}
    assert len(loads) == 2
    for label, result in results.items():
        assert len(result["runs_s"]) == 2 and result["median_s"] > 0 and result["cpu_median_s"] >= 0, label
    assert results["help"]["command"] == "planlab --help"
    assert results["floor_python"]["command"] == "python -c pass"
    # the RSS is the child's own, not this pytest process's (which holds pandas, several times more)
    assert results["floor_python"]["peak_rss_mib"] < results["floor_numpy_networkx"]["peak_rss_mib"]
    assert results["help"]["peak_rss_mib"] < results["floor_numpy_networkx"]["peak_rss_mib"]


def test_a_failing_command_stops_the_benchmark_with_its_message() -> None:
    with pytest.raises(SystemExit, match="exited 2"):
        bench.run_once([sys.executable, str(bench.planlab_script()), "inspect", "no-such-file.json"], {})


def test_too_few_rounds_or_a_wrong_baseline_are_refused(tmp_path: Path, capsys) -> None:
    for argv in (["--runs", "3"], ["--baseline", str(tmp_path)]):
        with pytest.raises(SystemExit) as info:
            bench.main([*argv, "--out", str(tmp_path / "cli.json")])
        assert info.value.code == 2
    assert not (tmp_path / "cli.json").exists()


def test_the_recorded_results_name_their_commit_load_and_targets() -> None:
    record = json.loads((ROOT / "benchmarks" / "results" / "cli.json").read_text())
    assert record["benchmark"] == "cli" and len(record["git"]) == 40 and record["runs"] >= 10
    assert set(record["targets"]) == {"help_s", "inspect_s"}
    assert {"before", "after", "load_1m_during"} <= set(record["host"])
    assert all(len(c["runs_s"]) == record["runs"] for c in record["commands"].values())
