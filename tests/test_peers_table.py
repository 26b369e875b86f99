"""The README's peers table is generated from the results files and kept current."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import peers_table  # noqa: E402


def test_the_readme_table_is_what_the_committed_results_say() -> None:
    assert peers_table.main(["--check"]) == 0, "run: python benchmarks/peers_table.py"


def _write(folder: Path, name: str, data: dict) -> None:
    (folder / f"{name}.json").write_text(json.dumps(data))


def test_rows_come_from_the_results_with_their_commit_and_load(tmp_path: Path) -> None:
    _write(tmp_path, "executor", {
        "git": "abcdef123", "machine": {"load_average_start": [0.5, 0.4, 0.3]},
        "overhead": [{"dag": "chain", "tasks": 100, "placement": "1 worker", "makespan_s": 0.01,
                      "dask_ms_per_task": 1.0, "dask_over_executor": 10.0},
                     {"dag": "chain", "tasks": 10000, "placement": "1 worker", "makespan_s": 1.0}],   # no dask: left out
        "handoff": {"rows": [{"flavour": "raw", "bytes": 1 << 20, "handoff_s": 0.004, "raw_set_get_s": 0.002},
                             {"flavour": "pickled", "bytes": 1 << 20, "handoff_s": 0.005, "raw_set_get_s": 0.002}]}})
    _write(tmp_path, "planning", {"git": "1234567", "machine": {"load_average": [1.5]},
                                  "heft_vs_saga": {"tasks": 1000, "profiles": 8, "ours_s": 0.01, "saga_s": 1.0}})
    rows = peers_table.peer_rows(tmp_path)
    assert [(r.peer, r.advantage, r.commit, r.load) for r in rows] == [
        ("dask.distributed", 10.0, "abcdef1", 0.5), ("redis-py SET + GET", 0.5, "abcdef1", 0.5),
        ("anrg-saga HEFT", 100.0, "1234567", 1.5)]
    table = peers_table.markdown(rows)
    assert "| 0.100 ms | dask.distributed | 1.000 ms | 10.0x faster |" in table
    assert "2.0x slower" in table and "100.0x faster" in table and "over 3 comparisons" in table


def test_check_and_rewrite_of_a_readme(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, "planning", {"git": "1234567", "heft_vs_saga": {"tasks": 10, "profiles": 2, "ours_s": 0.5,
                                                                     "saga_s": 1.0}})
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{peers_table.BEGIN}\nold\n{peers_table.END}\nrest\n")
    args = ["--results", str(tmp_path), "--readme", str(readme)]
    assert peers_table.main([*args, "--check"]) == 1
    assert "stale" in capsys.readouterr().err
    assert peers_table.main(args) == 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("rest\n") and "2.0x faster" in text and "old" not in text
    assert peers_table.main([*args, "--check"]) == 0
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit, match="has no"):
        peers_table.main(args)
