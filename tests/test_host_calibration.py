"""The runner's host calibration: the warm pool it tracks, its reference profile, and a real fit."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from experiments.host_calibration import RUNS_PER_WORKFLOW, WarmPool, calibrate_host, reference_profile
from planning.costs.cost_model import CostModel
from planning.profiles import load_catalog
from planning.sources.generators import generate
from simulator import Platform


class _Trace:
    def __init__(self, rows: list[tuple[str, bool]]) -> None:
        self.workers = pd.DataFrame(rows, columns=["profile", "cold_start"])


def test_the_pool_keeps_every_process_a_run_forked():
    pool = WarmPool(keep_alive_s=60.0)
    assert pool.now() == {}
    # two 'medium' processes forked (the third worker reused one), one 'small'
    pool.after(_Trace([("medium", True), ("medium", True), ("medium", False), ("small", True)]))
    assert pool.now() == {"medium": 2, "small": 1}
    pool.after(_Trace([("medium", False), ("medium", True)]))
    assert pool.now() == {"medium": 3, "small": 1}
    copy = pool.now()
    copy["medium"] = 99
    assert pool.now()["medium"] == 3


def test_the_pool_is_gone_after_keep_alive():
    pool = WarmPool(keep_alive_s=0.0)
    pool.after(_Trace([("medium", True)]))
    assert pool.now() == {}


def test_the_reference_profile_is_the_one_closest_to_one_cpu():
    assert reference_profile(load_catalog("local")) == "medium"
    assert reference_profile(load_catalog("lambda")) == "lambda-1769"


def test_calibrate_host_runs_each_workflow_for_real_and_fits_this_host():
    """Two tiny fan-outs, run for real on the embedded server: the fit is this machine's, with finite terms."""
    from executor import Executor

    workflows = {"fj": generate("fork_join", width=4), "chain": generate("chain", length=3)}
    pool = WarmPool(keep_alive_s=60.0)
    seen: list[str] = []
    with Executor() as executor:
        fit = calibrate_host(workflows, load_catalog("local"), CostModel(), executor, pool, progress=seen.append)
    assert seen == [f"calibrate.{w}.r{k}" for w in workflows for k in range(RUNS_PER_WORKFLOW)]
    assert len(fit.per_run) == len(seen)
    assert fit.platform.host_cores == Platform.for_local_host().host_cores
    for term in fit.terms:
        value = getattr(fit.platform, term)
        assert math.isfinite(value) and value >= 0, term
    assert fit.error_after <= fit.error_before + 1e-9
    assert pool.now()["medium"] >= 1        # the first run forked its processes; they stay warm
    assert fit.per_run[0]["warm_pool"] == {} and fit.per_run[1]["warm_pool"]["medium"] >= 1


def test_the_run_summary_says_how_close_predictions_came(tmp_path):
    import json

    from experiments.commands.run import fidelity_lines

    summary = pd.DataFrame({"sla": ["mean", "p95", "p95", "p95"],
                            "forecast_error": [0.1, -0.2, 0.3, float("nan")], "plan_error": [0.5, 0.5, -0.5, 0.5],
                            "real_within_predicted": [float("nan"), 1.0, 0.0, float("nan")]})
    (tmp_path / "host_calibration.json").write_text(json.dumps(
        {"runs": 4, "host_cores": 2.0, "terms": {"cold_start_s": 0.05, "spec_load_s_per_task": 0.001}}))
    lines = fidelity_lines(summary, tmp_path)
    assert lines[0].startswith("platform calibrated on 4 real run(s) of this host (2 cores): cold_start_s 0.05")
    assert lines[1] == ("simulated (the plan at the mean) vs real makespan: median error 20.0%, p90 28.0% "
                        "over 3 real run(s)")
    assert lines[2].startswith("planned vs real makespan: median error 50.0%")
    assert lines[3] == "real makespans at or below the simulated p95: 1 of 2 (nominal 95%)"
    assert fidelity_lines(pd.DataFrame({"forecast_error": [float("nan")]}), tmp_path / "none") == []


def test_a_percentile_cell_is_forecast_at_the_mean_and_checked_against_its_percentile():
    """A p95 prediction is a margin, not a forecast of one run: the error uses the plan at the mean."""
    from experiments.runner import relative_errors

    row = {"real_makespan_s": 2.0, "simulated_makespan_s": 3.0, "sim_forecast_s": 2.2, "planned_makespan_s": 2.5}
    errors = relative_errors(row)
    assert errors["sim_error"] == pytest.approx(0.5) and errors["forecast_error"] == pytest.approx(0.1)
    assert errors["real_within_predicted"] == 1.0
    assert relative_errors({**row, "real_makespan_s": 3.5})["real_within_predicted"] == 0.0
    assert math.isnan(relative_errors({**row, "real_makespan_s": float("nan")})["real_within_predicted"])


def test_the_runner_fits_every_host_term():
    from experiments.host_calibration import FITTED_TERMS
    from experiments.calibration.trace_calibration import HOST_TERMS

    assert FITTED_TERMS == HOST_TERMS
