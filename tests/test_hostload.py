"""Host conditions recorded with real runs: /proc/loadavg, the CPU probe, trace meta, optional history columns."""

from __future__ import annotations

import math
import os
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from experiments.hostload import (HOST_COLUMNS, PROBE_ITERATIONS, HostSnapshot, RunHost, add_host_columns,
                                  cpu_probe_s, host_snapshot, measured_run, read_loadavg, record_host)
from planning.costs.history import HOST_COLUMNS as HISTORY_HOST_COLUMNS
from planning.costs.history import concat_histories, load_history, save_history


def _history(n: int = 2) -> pd.DataFrame:
    return pd.DataFrame({"run_id": "r", "workflow": "w", "structure_hash": "h", "task_id": [f"t{i}" for i in range(n)],
                         "kind": "k", "profile": "small", "cpus": 0.5, "memory_mb": 512.0, "input_bytes": 0.0,
                         "output_bytes": 8.0, "download_s": 0.0, "exec_s": 0.1, "upload_s": 0.0, "startup_s": 0.0,
                         "cold_start": False})


def _snapshot(load: float, probe: float) -> HostSnapshot:
    return HostSnapshot(load, load / 2, load / 4, 2, probe, 1.0e9)


def test_read_loadavg_parses_the_three_averages_and_is_nan_without_the_file(tmp_path: Path) -> None:
    fake = tmp_path / "loadavg"
    fake.write_text("3.25 1.50 0.75 2/345 6789\n")
    assert read_loadavg(fake) == (3.25, 1.5, 0.75)
    assert all(math.isnan(v) for v in read_loadavg(tmp_path / "missing"))
    fake.write_text("garbage\n")
    assert all(math.isnan(v) for v in read_loadavg(fake))


def test_the_cpu_probe_is_a_fixed_loop_whose_time_grows_with_its_length() -> None:
    short = min(cpu_probe_s(1_000) for _ in range(3))
    full = cpu_probe_s()
    assert 0 < short < full and math.isfinite(full)
    assert PROBE_ITERATIONS == 200_000, "changing the loop makes old probes incomparable: document it if you do"


def test_host_snapshot_reads_this_host() -> None:
    snap = host_snapshot()
    assert snap.cpu_count == os.cpu_count()
    assert snap.cpu_probe_s > 0
    if Path("/proc/loadavg").is_file():
        assert snap.load_1m >= 0 and snap.load_5m >= 0 and snap.load_15m >= 0
    assert math.isnan(host_snapshot(probe=False).cpu_probe_s)


def test_snapshots_round_trip_and_older_records_read_as_nan() -> None:
    host = RunHost(_snapshot(1.5, 0.014), _snapshot(2.5, 0.020))
    assert RunHost.from_dict(host.to_dict()) == host
    old = HostSnapshot.from_dict({})
    assert math.isnan(old.load_1m) and math.isnan(old.cpu_probe_s) and old.cpu_count == 0
    assert host.columns() == {"host_load_1m": 1.5, "cpu_probe_s": 0.014, "host_load_1m_after": 2.5,
                              "cpu_probe_s_after": 0.020}


def test_measured_run_stores_before_and_after_in_the_trace_meta() -> None:
    trace = SimpleNamespace(meta={"run_id": "x"})   # record_host needs only the trace's meta
    calls = []

    def run():
        calls.append(host_snapshot(probe=False).taken_at)
        return SimpleNamespace(trace=trace)

    result, host = measured_run(run)
    assert result.trace is trace and len(calls) == 1
    assert host.before.taken_at <= calls[0] <= host.after.taken_at
    assert RunHost.from_dict(trace.meta["host"]) == host
    again = record_host(trace, _snapshot(4.0, 0.03), _snapshot(5.0, 0.04))
    assert trace.meta["host"]["before"]["load_1m"] == 4.0 and again.after.load_1m == 5.0


def test_history_host_columns_are_optional_and_survive_a_save(tmp_path: Path) -> None:
    assert HISTORY_HOST_COLUMNS == HOST_COLUMNS
    host = RunHost(_snapshot(1.25, 0.015), _snapshot(3.0, 0.02))
    with_host = add_host_columns(_history(), host)
    assert with_host["host_load_1m"].tolist() == [1.25, 1.25] and with_host["cpu_probe_s"].tolist() == [0.015] * 2
    loaded = load_history(save_history(with_host, tmp_path / "new.parquet"))
    assert loaded["host_load_1m"].dtype == "float64" and loaded["cpu_probe_s"].iloc[0] == pytest.approx(0.015)
    old = load_history(save_history(_history(), tmp_path / "old.parquet"))   # written before the columns existed
    assert not set(HOST_COLUMNS) & set(old.columns)
    both = concat_histories([old, loaded])
    assert both["host_load_1m"].isna().sum() == 2 and both["host_load_1m"].dropna().tolist() == [1.25, 1.25]
