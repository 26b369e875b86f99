"""Executions that ran at the same time, from their recorded starts (experiments/calibration/concurrency.py)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from experiments.calibration import Observation
from experiments.calibration.concurrency import concurrency, others_running, started_at

CORPUS = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "wfinstances-corpus"


def test_overlap_by_hand() -> None:
    # a: 0-100, b: 50-150 (half of each beside the other), c: 1000-1010 alone, d: start unknown
    got = others_running([(0.0, 100.0), (50.0, 100.0), (1000.0, 10.0), (None, 50.0)])
    assert got[:3].tolist() == [0.5, 0.5, 0.0] and math.isnan(got[3])
    # c inside a long run e (0-2000) is beside one run all its makespan; e beside a, b, c for 100+100+10 of 2000 s
    got = others_running([(0.0, 100.0), (50.0, 100.0), (1000.0, 10.0), (0.0, 2000.0)])
    assert got.tolist() == pytest.approx([1.5, 1.5, 1.0, 210 / 2000])


def test_started_at_reads_both_iso_forms_and_nothing_else() -> None:
    def wf(text):
        return SimpleNamespace(metadata={"executed_at": text})

    assert started_at(wf("20200415T184122+0000")) == started_at(wf("2020-04-15T18:41:22+00:00")) == 1586976082.0
    assert started_at(wf(None)) is None and started_at(wf("yesterday")) is None


def test_seismology_300p_and_400p_started_21_s_apart_and_overlapped() -> None:
    runs = [Observation.from_execution(CORPUS / f"seismology-chameleon-{s}-001.json.gz") for s in ("300p", "400p")]
    assert started_at(runs[1].workflow) - started_at(runs[0].workflow) == 21.0
    # 300p ran 518 s, 400p 498 s from 21 s later: they overlapped 498 s (400p ends 1 s after 300p: 497 s)
    shared = min(518.0, 21.0 + 498.0) - 21.0
    assert concurrency(runs) == pytest.approx({runs[0].name: shared / 518.0, runs[1].name: shared / 498.0})
