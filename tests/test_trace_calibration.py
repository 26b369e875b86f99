"""Calibration from executor traces recovers known host terms from traces the simulator itself made."""

from __future__ import annotations

import pytest

from experiments.calibration.trace_calibration import ObservedRun, calibrate_on_runs, forecast_errors, processes_started, warm_pool_of
from planning.costs.cost_model import CostModel
from planning.errors import ConfigError
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.sources.generators import generate
from simulator import Platform, simulate

CATALOG = load_catalog("local")
MODEL = CostModel()
TRUE = Platform(host_cores=2.0, cold_start_s=0.2, warm_start_s=0.05, launch_s=0.01, process_start_s=0.03,
                spec_load_s_per_task=0.002)


def observed(spec: dict, planner: str, warm_pool: dict[str, int] | None) -> ObservedRun:
    workflow = generate(**spec)
    params = {"profile": "medium"} if planner == "uniform" else {}
    plan = get_planner(planner, **params).plan(workflow, CATALOG, MODEL, "mean")
    trace = simulate(workflow, plan, MODEL, platform=TRUE, warm_pool=warm_pool)
    return ObservedRun(workflow, plan, MODEL, trace, warm_pool=warm_pool, name=f"{spec['name']}-{planner}")


@pytest.fixture(scope="module")
def runs() -> list[ObservedRun]:
    specs = [{"name": "fork_join", "width": 12}, {"name": "random_layered", "tasks": 40, "seed": 1},
             {"name": "chain", "length": 6}]
    return [observed(spec, planner, pool) for spec in specs for planner in ("uniform", "heft")
            for pool in (None, {"medium": 4, "large": 2}, {"medium": 40, "large": 40})]


def test_calibration_recovers_known_host_terms_within_5_percent(runs):
    start = Platform(host_cores=2.0, cold_start_s=0.5, warm_start_s=0.01, process_start_s=0.1)
    result = calibrate_on_runs(runs, start, max_evaluations=900)
    for term in ("cold_start_s", "warm_start_s", "launch_s", "process_start_s", "spec_load_s_per_task"):
        assert getattr(result.platform, term) == pytest.approx(getattr(TRUE, term), rel=0.05), term
    assert result.error_after < 0.01 < result.error_before
    assert max(abs(e) for e in forecast_errors(runs, result.platform)) < 0.02


def test_the_warm_pool_is_read_off_a_trace(runs):
    cold = next(r for r in runs if r.name == "fork_join-uniform" and not r.warm_pool)
    warm = next(r for r in runs if r.name == "fork_join-uniform" and r.warm_pool)
    assert warm_pool_of(cold.trace) == {}
    read = warm_pool_of(warm.trace)               # a lower bound: workers ready before the first stop
    assert set(read) == {"medium"} and 1 <= read["medium"] <= 4


def test_calibration_needs_runs_and_known_terms(runs):
    with pytest.raises(ConfigError, match="nothing to calibrate"):
        calibrate_on_runs([])
    with pytest.raises(ConfigError, match="bogus"):
        calibrate_on_runs(runs[:1], terms=("bogus",))


def test_the_processes_a_run_started_are_its_cold_starts(runs):
    """fork_join width 12 uniform from no pool: the launcher forks while no process is idle; the chain's three
    tasks run on one worker: one process."""
    cold = next(r for r in runs if r.name == "fork_join-uniform" and not r.warm_pool)
    started = processes_started(cold.trace)
    assert started == {"medium": int(cold.trace.workers["cold_start"].sum())} and started["medium"] >= 2
    chain = next(r for r in runs if r.name == "chain-uniform" and not r.warm_pool)
    assert processes_started(chain.trace) == {"medium": 1}
    warm = next(r for r in runs if r.name == "chain-uniform" and r.warm_pool)
    assert processes_started(warm.trace) == {}
