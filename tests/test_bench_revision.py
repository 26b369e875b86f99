"""A benchmark records the commit it measured: the one checked out when its process started."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import experiments.provenance as provenance

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))


def test_the_revision_is_taken_once_when_the_benchmark_starts(monkeypatch) -> None:
    calls = []

    def fake_revision(path=None):
        calls.append(path)
        return {"revision": f"{len(calls):040d}", "dirty": False}

    monkeypatch.setattr(provenance, "git_revision", fake_revision)
    sys.modules.pop("_revision", None)
    revision = importlib.import_module("_revision")
    try:
        assert revision.AT_START == {"revision": "0" * 39 + "1", "dirty": False}
        fake_revision()                           # a commit made during the run: HEAD moves on
        assert revision.short() == "0000000"      # the results still name the commit measured
        assert revision.AT_START["revision"].endswith("1")
    finally:
        sys.modules.pop("_revision", None)


def test_no_benchmark_reads_the_revision_when_it_writes_its_results() -> None:
    # git_revision() is called only by _revision (at import) and where a benchmark's main takes it before its runs
    allowed = {"_revision.py", "bench_calibration.py", "bench_cli.py"}
    late = [p.name for p in BENCHMARKS.glob("*.py")
            if p.name not in allowed and re.search(r"\bgit_revision\(", p.read_text())]
    assert late == []
    writers = [p for p in BENCHMARKS.glob("bench_*.py") if '"git":' in p.read_text()]
    assert writers, "the benchmarks record their commit"
    for p in writers:
        if p.name not in allowed:
            assert "import _revision" in p.read_text(), p.name
