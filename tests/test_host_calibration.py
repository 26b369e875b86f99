"""The runner's host calibration: the warm pool it tracks, its reference profile, and a real fit."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from experiments.host_calibration import RUNS_PER_WORKFLOW, WarmPool, calibrate_host, reference_profile
from planning.cost_model import CostModel
from planning.generators import generate
from planning.profiles import load_catalog
from simulator import Platform


class _Trace:
    def __init__(self, rows: list[tuple[str, float, float]]) -> None:
        self.workers = pd.DataFrame(rows, columns=["profile", "start_s", "stop_s"])


def test_the_pool_grows_to_each_runs_peak_and_never_shrinks():
    pool = WarmPool()
    assert pool.now() == {}
    # three 'medium' workers overlapping two at a time (the third starts when the first stops), one 'small'
    pool.after(_Trace([("medium", 0.0, 1.0), ("medium", 0.5, 2.0), ("medium", 1.0, 3.0), ("small", 0.0, 1.0)]))
    assert pool.now() == {"medium": 2, "small": 1}
    pool.after(_Trace([("medium", 0.0, 1.0)]))
    assert pool.now() == {"medium": 2, "small": 1}
    copy = pool.now()
    copy["medium"] = 99
    assert pool.now()["medium"] == 2


def test_the_reference_profile_is_the_one_closest_to_one_cpu():
    assert reference_profile(load_catalog("local")) == "medium"
    assert reference_profile(load_catalog("lambda")) == "lambda-1769"


def test_calibrate_host_runs_each_workflow_for_real_and_fits_this_host():
    """Two tiny fan-outs, run for real on the embedded server: the fit is this machine's, with finite terms."""
    from executor import Executor

    workflows = {"fj": generate("fork_join", width=4), "chain": generate("chain", length=3)}
    pool = WarmPool()
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
    assert pool.now()["medium"] >= 4        # the fan-out's four branch workers overlapped
    assert fit.per_run[0]["warm_pool"] == {} and fit.per_run[1]["warm_pool"]["medium"] >= 4
