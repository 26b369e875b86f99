"""The Trace schema shared by every engine: coercion, ordering checks, history rows, storage, join."""

from __future__ import annotations

import pandas as pd
import pytest

from planning.costs.history import REQUIRED_COLUMNS
from planning.trace import Trace, TraceError, compare_traces


def make_trace(engine: str = "simulate", shift: float = 0.0) -> Trace:
    tasks = pd.DataFrame([
        dict(run_id="r1", engine=engine, task_id=t, kind="k", worker="w0", profile="small", cpus=0.5,
             memory_mb=512, cold_start=(i == 0), startup_s=0.2 if i == 0 else 0.0, attempt=1,
             ready_s=s, worker_start_s=s, download_start_s=s + shift, download_end_s=s + 0.1 + shift,
             exec_start_s=s + 0.1 + shift, exec_end_s=s + 1.1 + shift, upload_start_s=s + 1.1 + shift,
             upload_end_s=s + 1.2 + shift, done_s=s + 1.2 + shift, input_bytes=10, output_bytes=20)
        for i, (t, s) in enumerate([("a", 0.0), ("b", 1.2)])])
    workers = pd.DataFrame([dict(run_id="r1", engine=engine, worker="w0", profile="small", cpus=0.5, memory_mb=512,
                                 cold_start=True, start_s=0.0, ready_s=0.2, stop_s=2.4, busy_s=2.4, tasks=2,
                                 gb_s=1.2, cost=2e-5)])
    return Trace(tasks, workers, makespan_s=2.5 + shift, meta={"run_id": "r1", "engine": engine, "t0_epoch": 1000.0})


def test_trace_views_and_validation() -> None:
    trace = make_trace().validate()
    assert (trace.run_id, trace.engine, trace.cold_starts) == ("r1", "simulate", 1)
    assert trace.cost == pytest.approx(2e-5)


def test_missing_column_is_named() -> None:
    trace = make_trace()
    with pytest.raises(TraceError, match="done_s"):
        Trace(trace.tasks.drop(columns=["done_s"]), trace.workers, 1.0)


def test_phases_out_of_order_rejected() -> None:
    trace = make_trace()
    tasks = trace.tasks.copy()
    tasks.loc[0, "exec_end_s"] = tasks.loc[0, "exec_start_s"] - 1
    with pytest.raises(TraceError, match="'a'"):
        Trace(tasks, trace.workers, 1.0).validate()


def test_to_history_has_the_schema_and_phase_durations() -> None:
    hist = make_trace().to_history("wf", "hash")
    assert set(REQUIRED_COLUMNS) <= set(hist.columns)
    assert hist["exec_s"].tolist() == pytest.approx([1.0, 1.0])
    assert hist["download_s"].tolist() == pytest.approx([0.1, 0.1])
    assert hist.loc[0, "exec_start_ts"] == pytest.approx(1000.1)


def test_save_load_round_trip(tmp_path) -> None:
    trace = make_trace()
    back = Trace.load(trace.save(tmp_path / "t"))
    pd.testing.assert_frame_equal(back.tasks, trace.tasks)
    assert back.makespan_s == trace.makespan_s and back.meta == trace.meta


def test_compare_is_a_join_with_errors() -> None:
    joined = compare_traces(make_trace("plan"), make_trace("execute", shift=0.5))
    assert joined["done_s_error"].tolist() == pytest.approx([0.5, 0.5])
