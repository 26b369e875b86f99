"""The fidelity benchmark's core: its arithmetic on hand-made cases, and one tiny real cell end to end.

The figures themselves (errors against targets) are the benchmark's business
(``benchmarks/results/fidelity.json``); here: the numbers it reports are computed right,
its results have the documented structure, and every real run starts with no warm process.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import _fidelity as fid  # noqa: E402
import bench_fidelity as bench  # noqa: E402
from _fidelity_runs import drain_warm_pool  # noqa: E402
from _fidelity_store import load_many, load_runs, save_runs  # noqa: E402
from executor import keys as executor_keys  # noqa: E402
from planning.errors import ConfigError, PlanlabError  # noqa: E402
from simulator import Platform  # noqa: E402


# ---------------------------------------------------------------- arithmetic, by hand
def test_relative_errors_and_their_summary():
    errors = fid.relative_errors(1.1, [1.0, 2.0, 0.5])          # +10 %, -45 %, +120 %
    assert errors == pytest.approx([0.1, -0.45, 1.2])
    s = fid.error_summary(errors)
    assert s["n"] == 3
    assert s["median_abs"] == pytest.approx(0.45)
    assert s["p90_abs"] == pytest.approx(0.45 + 0.8 * (1.2 - 0.45))   # numpy's linear quantile of |e|
    assert s["bias"] == pytest.approx(0.1)                            # median signed error
    assert s["max_abs"] == pytest.approx(1.2)
    assert fid.relative_errors([2.0, 3.0], [1.0, 2.0]) == pytest.approx([1.0, 0.5])   # one prediction per run
    assert math.isnan(fid.error_summary([])["median_abs"]) and fid.error_summary([])["n"] == 0
    with pytest.raises(ValueError, match="positive"):
        fid.relative_errors(1.0, [0.0])


def test_halves_interleave_repetitions():
    assert fid.split_halves([0, 1, 2, 3, 4, 5]) == ([0, 2, 4], [1, 3, 5])


def _tasks(rows):
    cols = ["task_id", "ready_s", "worker_start_s", "startup_s", "download_start_s", "download_end_s",
            "exec_start_s", "exec_end_s", "upload_start_s", "upload_end_s", "done_s"]
    return pd.DataFrame(rows, columns=cols)


def test_critical_path_follows_the_parent_done_last_and_phases_sum_to_the_makespan():
    # a -> c <- b; b finishes after a, so the path is b -> c.  c's worker is cold: started 0.2 s after
    # c was ready (0.05 s waiting for the launcher, then a 0.15 s start-up).
    tasks = _tasks([
        ["a", 0.0, 0.0, 0.00, 0.00, 0.00, 0.00, 0.30, 0.30, 0.31, 0.31],
        ["b", 0.0, 0.0, 0.10, 0.10, 0.10, 0.10, 0.60, 0.60, 0.62, 0.62],
        ["c", 0.63, 0.78, 0.15, 0.83, 0.85, 0.85, 1.25, 1.25, 1.26, 1.26],
    ])
    parents = {"c": ["a", "b"]}
    path = fid.critical_path(tasks, parents)
    assert path == ["b", "c"]
    phases = fid.phase_breakdown(tasks, path, makespan_s=1.30)
    assert phases["startup"] == pytest.approx(0.10 + 0.15)
    assert phases["waiting"] == pytest.approx(0.0 + (0.83 - 0.63 - 0.15))
    assert phases["download"] == pytest.approx(0.02)
    assert phases["execution"] == pytest.approx(0.50 + 0.40)
    assert phases["upload"] == pytest.approx(0.02 + 0.01)
    # submit -> b ready 0, b done -> c ready 0.01, c done -> result 0.04
    assert phases["coordination"] == pytest.approx(0.05)
    assert sum(phases.values()) == pytest.approx(1.30)
    assert fid.median_breakdown([phases, {k: 3 * v for k, v in phases.items()}])["execution"] == pytest.approx(1.8)


def test_coverage_says_what_chance_alone_would_give():
    """20 runs: a perfect p50 lands within 5 points (9, 10 or 11 below) with probability 0.497, a perfect p95 with
    0.925 (18, 19 or 20 below); 19 of 20 below a predicted median is no bad luck (two-sided p = 4e-5)."""
    rows = fid.coverage([1.0] * 19 + [3.0], {0.5: 2.0, 0.95: 2.0})
    assert rows["p50"]["perfect_pass_chance"] == pytest.approx(0.4966, abs=1e-4)
    assert rows["p95"]["perfect_pass_chance"] == pytest.approx(0.9245, abs=1e-4)
    assert rows["p50"]["below"] == 19 and rows["p50"]["p_value"] == pytest.approx(4.005e-5, rel=1e-3)
    assert rows["p95"]["p_value"] == pytest.approx(1.0)


def test_coverage_counts_runs_at_or_below_each_predicted_quantile():
    rows = fid.coverage([1.0, 2.0, 3.0, 4.0], {0.5: 2.0, 0.9: 3.5, 0.95: 4.0})
    assert rows["p50"]["fraction"] == pytest.approx(0.5)       # 1 and 2 (at the bound counts)
    assert rows["p90"]["fraction"] == pytest.approx(0.75)
    assert rows["p90"]["points_off"] == pytest.approx(-0.15)
    assert rows["p95"]["fraction"] == pytest.approx(1.0)


def test_target_checks_pass_and_fail_on_the_issue_thresholds():
    checks = fid.target_checks([0.05, -0.08, 0.5], {"fork_join": {20: 0.05, 100: 0.07, 500: 0.11}},
                               fid.coverage([1.0] * 19 + [9.0], {0.5: 1.0, 0.9: 1.0, 0.95: 1.0}))
    assert checks["median_abs_error"]["value"] == pytest.approx(0.08) and checks["median_abs_error"]["pass"]
    assert checks["p90_abs_error"]["value"] == pytest.approx(0.08 + 0.8 * 0.42) and not checks["p90_abs_error"]["pass"]
    assert checks["size_trend_fork_join"]["value"] == pytest.approx(2.2) and not checks["size_trend_fork_join"]["pass"]
    assert checks["coverage_p50"]["value"] == pytest.approx(0.45) and not checks["coverage_p50"]["pass"]
    assert checks["coverage_p95"]["value"] == pytest.approx(0.0) and checks["coverage_p95"]["pass"]
    on_the_line = fid.target_checks([0.1], {}, fid.coverage([1.0] * 20, {0.95: 1.0}))   # 100 % vs 95 %: 5 points
    assert on_the_line["coverage_p95"]["pass"] and on_the_line["median_abs_error"]["pass"]


# ---------------------------------------------------------------- calibration switch
def test_platform_for_none_returns_the_base_and_host_defaults_shares_this_machine():
    base = Platform(cold_start_s=0.3)
    assert bench.platform_for([], base, "none") is base
    shared = bench.platform_for([], base, "host-defaults")
    assert shared.cold_start_s == 0.3 and shared.host_cores == Platform.for_local_host().host_cores
    with pytest.raises(ConfigError, match="unknown calibration"):
        bench.platform_for([], base, "magic")


def test_host_calibration_is_given_the_runs_their_empty_pool_and_what_to_fit(monkeypatch):
    import types

    calls = []

    class Fitted:
        platform = Platform(cold_start_s=0.05, host_cores=2)

        def summary(self):
            return {"terms": {"cold_start_s": 0.05}}

    def calibrate_on_runs(runs, base, **kwargs):
        calls.append((runs, base, kwargs))
        return Fitted()

    fake = types.SimpleNamespace(ObservedRun=lambda *a, **k: (a, k), calibrate_on_runs=calibrate_on_runs,
                                 HOST_TERMS=("cold_start_s",))
    monkeypatch.setitem(sys.modules, "experiments.calibration.trace_calibration", fake)
    base, report = Platform(), {}
    fitted = bench.platform_for([bench.CalibrationRun("wf", "plan", "model", "trace")], base, "host", report)
    assert fitted is Fitted.platform and report["terms"] == {"cold_start_s": 0.05} and report["seconds"] >= 0
    (args, kwargs), = calls[0][0]
    assert args == ("wf", "plan", "model", "trace") and kwargs == {"warm_pool": {}, "background": None}
    assert calls[0][1] is base and calls[0][2] == {"terms": ("cold_start_s", "host_background")}   # fitted too
    bench.platform_for([bench.CalibrationRun("wf", "plan", "model", "trace", background=1.5)], base, "host")
    assert calls[1][0][0][1]["background"] == 1.5 and calls[1][2] == {}   # known background: default terms


def test_host_calibration_without_the_module_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "experiments.calibration.trace_calibration", None)   # as if this planlab lacked it
    with pytest.raises(ConfigError, match="trace_calibration"):
        bench.platform_for([], Platform(), "host")
    assert bench.main(["--calibration", "host", "--quick", "--out", "/nonexistent/x.json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--calibration none" in err


def test_planner_specs_take_parameters():
    from _fidelity_runs import planner_from_spec

    heft = planner_from_spec("heft:host_cores=4")
    assert heft.host_cores == 4
    assert planner_from_spec("uniform").profile == "medium"            # the 1-CPU profile by default
    assert planner_from_spec("uniform:profile=large").profile == "large"
    with pytest.raises(PlanlabError, match="key=value"):
        planner_from_spec("heft:host_cores")


def test_workflows_are_forecast_in_forked_jobs_in_their_order(monkeypatch):
    import os
    import types

    def fake_forecast(wr, args, settings, say):
        return [{"label": wr.label, "pid": os.getpid()}], Platform(), {}

    monkeypatch.setattr(bench, "forecast_workflow", fake_forecast)
    results = [types.SimpleNamespace(label=f"w{n}", bench=types.SimpleNamespace(workflow=range(n)))
               for n in (3, 50, 7)]
    out = bench._forecast_all(results, types.SimpleNamespace(jobs=2), None, print)
    assert [rows[0]["label"] for rows, _, _ in out] == ["w3", "w50", "w7"]
    assert all(rows[0]["pid"] != os.getpid() for rows, _, _ in out)           # forked
    serial = bench._forecast_all(results, types.SimpleNamespace(jobs=1), None, print)
    assert [rows[0]["pid"] for rows, _, _ in serial] == [os.getpid()] * 3


def test_bad_flags_exit_2():
    for argv in (["--repetitions", "3"], ["--sizes", "1"], ["--planners", "nope"], ["--planners", "heft:nope=1"],
                 ["--workflows", "nope"], ["--calibration", "none,best"], ["--workflows", "fork_join"],
                 ["--from-runs", "a", "--save-runs", "b"], ["--jobs", "0"]):
        with pytest.raises(SystemExit) as exc:
            bench.parse_args(argv)
        assert exc.value.code == 2


# ---------------------------------------------------------------- one tiny cell, for real
def test_tiny_cell_end_to_end_has_the_documented_structure(tmp_path):
    spec = "gen:fork_join:width=2"
    args = bench.parse_args(["--workflows", spec, "--planners", "uniform", "--slas", "mean,p95", "--repetitions", "2",
                             "--replications", "20", "--coverage-workflow", spec, "--coverage-runs", "4",
                             "--out", str(tmp_path / "f.json"), "--save-runs", str(tmp_path / "runs"),
                             "--calibration", "none"])
    messages: list[str] = []
    out = bench.run_benchmark(args, messages.append)
    assert not out["failures"]
    mean_cell, p95_cell = out["cells"]
    assert mean_cell["tasks"] == 4 and p95_cell["same_plan_as"] == mean_cell["cell"]   # uniform: one plan
    assert len(mean_cell["real_calibration_s"]) == 1 and len(mean_cell["real_forecast_s"]) == 1
    expected = (mean_cell["simulated_s"] - mean_cell["real_forecast_s"][0]) / mean_cell["real_forecast_s"][0]
    assert mean_cell["errors"] == pytest.approx([expected])
    assert mean_cell["error"]["median_abs"] == pytest.approx(abs(expected))
    mc = mean_cell["monte_carlo_s"]
    assert mc["p50"] <= mc["p90"] <= mc["p95"]
    for engine in ("real", "simulated"):
        phases = mean_cell["critical_path_s"][engine]
        assert set(phases) == set(fid.PHASES)
    assert sum(mean_cell["critical_path_s"]["simulated"].values()) == pytest.approx(mean_cell["simulated_s"])
    assert out["groups"] == [pytest.approx(out["groups"][0])] and out["groups"][0]["plans"] == 1
    assert out["overall"]["n"] == 1
    assert out["coverage"]["runs"] == 4 and set(out["coverage"]["levels"]) == {"p50", "p90", "p95"}
    assert len(out["coverage"]["folds"]) == 1            # no fit (calibration none): one platform for every run
    below_p90 = mean_cell["real_forecast_s"][0] <= mc["p90"]
    assert out["pooled_coverage"]["p90"] == {"level": 0.9, "fraction": float(below_p90), "runs": 1}
    assert {"median_abs_error", "p90_abs_error", "coverage_p50", "failed_cells"} <= set(out["targets"])
    assert any("profile phase" in m for m in messages)
    assert out["real_runs"]["load1_before_runs"]["max"] >= 0 and out["real_runs"]["from"] is None

    # the saved runs forecast again, without running anything, to the same numbers
    again = bench.run_benchmark(bench.parse_args(["--from-runs", str(tmp_path / "runs"), "--replications", "20",
                                                  "--calibration", "none,host-defaults"]), messages.append)
    assert [c["errors"] for c in again["cells"]] == [c["errors"] for c in out["cells"]]
    assert again["coverage"]["real_s"] == out["coverage"]["real_s"]
    assert again["real_runs"]["from"] == [str(tmp_path / "runs")]
    assert set(again["other_calibrations"]) == {"host-defaults"}
    assert again["other_calibrations"]["host-defaults"]["platforms"][mean_cell["workflow"] + "-4"]["platform"][
        "host_cores"] == Platform.for_local_host().host_cores

    # Folders combine: a later folder's workflow replaces the same one of an earlier folder.
    results, coverage, failures, settings = load_runs(tmp_path / "runs")
    save_runs(tmp_path / "more", results, coverage, failures, settings)
    combined, kept_coverage, _, combined_settings = load_many([tmp_path / "runs", tmp_path / "more"])
    assert len(combined) == 1 and len(kept_coverage[1]) == 4
    assert [s["from"] for s in combined_settings["sources"]] == [str(tmp_path / "runs"), str(tmp_path / "more")]
    # With a fit, the coverage study is a two-fold cross-fit: each fold forecast by a calibration on the
    # workflow's calibration half (1 run) and the other fold (2 runs), never on its own runs.
    host = bench.run_benchmark(bench.parse_args(["--from-runs", str(tmp_path / "runs"), str(tmp_path / "more"),
                                                 "--replications", "20", "--coverage-replications", "40",
                                                 "--calibration", "host"]), messages.append)
    folds = host["coverage"]["folds"]
    assert [f["runs"] for f in folds] == [2, 2] and [f["calibration"]["runs"] for f in folds] == [3, 3]
    assert host["coverage"]["levels"]["p50"]["runs"] == 4 and sorted(host["coverage"]["real_s"]) == sorted(
        out["coverage"]["real_s"])
    settings["executor"] = {**settings["executor"], "keep_alive_s": 1.0}
    save_runs(tmp_path / "other", results, coverage, failures, settings)
    with pytest.raises(ConfigError, match="other executor settings"):
        load_many([tmp_path / "runs", tmp_path / "other"])


def test_from_runs_of_a_folder_without_runs_is_a_clear_error(tmp_path, capsys):
    assert bench.main(["--from-runs", str(tmp_path), "--out", str(tmp_path / "f.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--save-runs" in err


def test_drain_leaves_no_warm_process(tmp_path):
    from executor import Executor
    from planning.sources.generators import generate
    from planning.planners import get_planner
    from planning.costs.cost_model import CostModel
    from planning.profiles import load_catalog

    wf = generate("fork_join", width=2)
    plan = get_planner("uniform", profile="small").plan(wf, load_catalog("local"), CostModel(), "mean")
    with Executor() as ex:
        first = ex.run(wf, plan)
        pids = {int(p) for p in first.trace.workers["pid"]}
        assert drain_warm_pool(ex, pids) == len(pids)
        pattern = executor_keys.idle_list(ex.launcher_id, "*")
        assert not any(ex.client.llen(k) for k in ex.client.scan_iter(match=pattern))
        second = ex.run(wf, plan)
        assert second.trace.workers["cold_start"].all()        # nothing warm was left to reuse
        assert np.isfinite(second.makespan_s)


def test_the_headline_forecast_is_host_calibrated_unless_asked_otherwise():
    """As ``planlab run`` forecasts: a plain run of the benchmark must not record the uncalibrated platform's errors
    (84.6 % on 8de1590) as its headline."""
    assert bench.parse_args([]).calibration == ["host"]
    assert bench.parse_args(["--calibration", "none,host"]).calibration == ["none", "host"]


def test_profile_phase_interleaves_its_repetitions_as_the_runner_does(monkeypatch):
    """Every profile once, then every profile again (a slow spell lands on one run of each profile), the
    runner's default count, and the fit takes every run's rows."""
    import _fidelity_runs
    from executor import Executor
    from experiments.config import DEFAULT_PROFILE_REPETITIONS
    from planning.profiles import load_catalog
    from planning.sources.generators import generate

    assert bench.parse_args([]).profile_repetitions == DEFAULT_PROFILE_REPETITIONS == 3
    order: list[str] = []
    real = _fidelity_runs.run_repeatedly

    def recording(executor, workflow, plan, repetitions, run_id, say, measure_contention=None):
        order.append(run_id)
        return real(executor, workflow, plan, repetitions, run_id, say, measure_contention)

    monkeypatch.setattr(_fidelity_runs, "run_repeatedly", recording)
    bw = _fidelity_runs.BenchWorkflow("fork_join", 2, generate("fork_join", width=2))
    catalog = load_catalog("local")
    with Executor() as ex:
        model, history, info = _fidelity_runs.profile_cost_model(ex, bw, catalog, 2, lambda _m: None)
    names = [p.name for p in catalog]
    assert order == [f"profile.{bw.label}.{n}.{r}" for r in range(2) for n in names]
    assert info["runs_per_profile"] == 2 and all(len(info["makespans_s"][n]) == 2 for n in names)
    assert len(history) == 2 * len(names) * len(bw.workflow)
    assert model.fitted
