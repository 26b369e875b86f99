"""Run-to-run noise: one speed factor per sampled replication, fitted from repeated real runs of one plan."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments.calibration.run_noise import fit_run_noise, plan_key
from experiments.calibration.trace_calibration import ObservedRun, _Compiled, calibrate_on_runs
from planning.costs.cost_model import CostModel
from planning.errors import ConfigError
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.sources.generators import generate
from simulator import Platform, simulate
from simulator.monte_carlo import monte_carlo
from simulator.simulate import compile_plan, run_once

CATALOG = load_catalog("local")
MODEL = CostModel()
HOST = Platform(host_cores=2.0, cold_start_s=0.2, warm_start_s=0.05, launch_s=0.01, process_start_s=0.03)


def _plan(spec: dict, planner: str = "uniform"):
    workflow = generate(**spec)
    params = {"profile": "medium"} if planner == "uniform" else {}
    return workflow, get_planner(planner, **params).plan(workflow, CATALOG, MODEL, "mean")


def _makespans(model, platform: Platform, seeds: range) -> np.ndarray:
    return np.array([run_once(model, platform, sample=True, seed=s, record=False).makespan_s for s in seeds])


def test_one_factor_scales_every_duration_of_a_replication() -> None:
    workflow, plan = _plan({"name": "fork_join", "width": 6})
    model = compile_plan(workflow, plan, MODEL)
    quiet = _makespans(model, Platform.zero(), range(300))
    small = np.log(_makespans(model, Platform.zero().with_(run_noise=0.2), range(300)) / quiet)
    large = np.log(_makespans(model, Platform.zero().with_(run_noise=0.4), range(300)) / quiet)
    # On a platform with no constant overheads a whole replication stretches by exactly its factor, and the
    # same seed draws the same standard normal whatever the noise: twice the noise, twice the log factor.
    np.testing.assert_allclose(large, 2 * small, rtol=1e-9, atol=1e-12)
    assert np.std(small, ddof=1) == pytest.approx(0.2, rel=0.12)
    assert abs(np.median(small)) < 0.04                       # median one: the p50 barely moves
    assert run_once(model, Platform.zero().with_(run_noise=0.4)).makespan_s == run_once(model, Platform.zero()).makespan_s


def test_monte_carlo_percentiles_spread_wider_with_run_noise() -> None:
    workflow, plan = _plan({"name": "fork_join", "width": 6})
    without = monte_carlo(workflow, plan, MODEL, replications=200, platform=HOST, processes=1).summary()
    with_noise = monte_carlo(workflow, plan, MODEL, replications=200, platform=HOST.with_(run_noise=0.15),
                             processes=1).summary()
    spread = lambda s: s["makespan_p95_s"] / s["makespan_p50_s"]  # noqa: E731
    assert spread(with_noise) > spread(without) + 0.1
    assert with_noise["makespan_p50_s"] == pytest.approx(without["makespan_p50_s"], rel=0.05)


def _observed(spec: dict, planner: str, truth: Platform, seeds: range) -> list[ObservedRun]:
    workflow, plan = _plan(spec, planner)
    return [ObservedRun(workflow, plan, MODEL, simulate(workflow, plan, MODEL, platform=truth, sample=True, seed=s),
                        warm_pool={}, name=f"{spec['name']}-{planner}-{s}") for s in seeds]


def test_the_fit_recovers_a_known_run_noise_and_ignores_differences_between_plans() -> None:
    truth = HOST.with_(run_noise=0.15)
    runs = (_observed({"name": "fork_join", "width": 8}, "uniform", truth, range(40))
            + _observed({"name": "random_layered", "tasks": 30, "seed": 2}, "heft", truth, range(100, 140)))
    assert len({plan_key(r) for r in runs}) == 2
    # A model biased differently on each plan (one 30 % slow) is bias, not noise: within-plan spread only.
    biased = [ObservedRun(r.workflow, r.plan, r.cost_model, r.trace, warm_pool={}, name=r.name,
                          background=0.6 if r.plan.workflow_name == "fork_join" else 0.0) for r in runs]
    for sample in (runs, biased):
        fit = fit_run_noise([_Compiled(r) for r in sample], HOST)
        assert fit is not None and fit.plans == 2 and fit.runs == 80
        assert fit.run_noise == pytest.approx(0.15, rel=0.2)
        assert fit.observed_sd > fit.run_noise > 0 and fit.simulated_sd > 0


def test_runs_without_noise_fit_none_and_single_runs_leave_the_platform_alone() -> None:
    quiet = _observed({"name": "fork_join", "width": 8}, "uniform", HOST, range(12))
    assert fit_run_noise([_Compiled(r) for r in quiet], HOST).run_noise < 0.03
    singles = [quiet[0], *_observed({"name": "chain", "length": 5}, "uniform", HOST, range(1))]
    assert fit_run_noise([_Compiled(r) for r in singles], HOST) is None
    kept = calibrate_on_runs(singles, HOST.with_(run_noise=0.07), terms=("warm_start_s",), max_evaluations=6)
    assert kept.platform.run_noise == 0.07 and kept.noise is None and kept.summary()["run_noise"] is None


def test_calibration_on_repeated_runs_sets_the_platforms_run_noise() -> None:
    runs = _observed({"name": "fork_join", "width": 8}, "uniform", HOST.with_(run_noise=0.2), range(24))
    result = calibrate_on_runs(runs, HOST, terms=("warm_start_s",), max_evaluations=6)
    assert result.noise is not None and result.platform.run_noise == result.noise.run_noise
    assert result.platform.run_noise == pytest.approx(0.2, rel=0.3)
    assert result.summary()["run_noise"]["plans"] == 1
    assert not calibrate_on_runs(runs, HOST, terms=("warm_start_s",), max_evaluations=6,
                                 run_noise=False).platform.run_noise


def test_run_noise_is_a_checked_platform_number() -> None:
    with pytest.raises(ConfigError, match="run_noise must be >= 0"):
        Platform(run_noise=-0.1)
    with pytest.raises(ConfigError, match="run_noise must be finite"):
        Platform(run_noise=math.inf)
    assert Platform.from_dict(Platform(run_noise=0.12).to_dict()).run_noise == 0.12
    assert Platform.zero().run_noise == 0.0


def test_noise_scale_narrows_every_sampled_ratio_towards_its_mean() -> None:
    workflow, plan = _plan({"name": "fork_join", "width": 6})
    model = compile_plan(workflow, plan, MODEL)
    from simulator.draws import draw
    full = draw(model, np.random.default_rng(5))
    half = draw(model, np.random.default_rng(5), noise_scale=0.5)
    base = model.estimates.base_exec_s[np.arange(model.n), model.planned_column]
    # Hand-computed: the same draws, each deviation from the mean halved.
    np.testing.assert_allclose(half.exec_s - base, 0.5 * (full.exec_s - base), rtol=1e-12, atol=1e-15)
    for name in ("download", "upload", "cold", "warm"):
        np.testing.assert_allclose(getattr(half, name) - 1.0, 0.5 * (getattr(full, name) - 1.0), atol=1e-12)
    # At 0 a sampled run is the deterministic one.
    flat = HOST.with_(noise_scale=0.0)
    assert run_once(model, flat, sample=True, seed=3).makespan_s == pytest.approx(run_once(model, flat).makespan_s,
                                                                                rel=1e-9)


def test_the_fit_narrows_the_spread_when_real_runs_vary_less_than_the_draws() -> None:
    truth = HOST.with_(noise_scale=0.35)
    runs = _observed({"name": "fork_join", "width": 8}, "uniform", truth, range(60))
    fit = fit_run_noise([_Compiled(r) for r in runs], HOST)
    assert fit is not None and fit.run_noise == 0.0
    assert fit.observed_sd < fit.simulated_sd
    assert fit.noise_scale == pytest.approx(0.35, abs=0.1)
    calibrated = calibrate_on_runs(runs, HOST, terms=("warm_start_s",), max_evaluations=6)
    assert calibrated.platform.noise_scale == calibrated.noise.noise_scale < 1.0


def test_noise_scale_is_a_checked_platform_number_between_0_and_1() -> None:
    with pytest.raises(ConfigError, match="noise_scale must be <= 1"):
        Platform(noise_scale=1.5)
    with pytest.raises(ConfigError, match="noise_scale must be >= 0"):
        Platform(noise_scale=-0.1)
    assert Platform.zero().noise_scale == 1.0 and Platform().noise_scale == 1.0
    assert Platform.from_dict(Platform(noise_scale=0.3).to_dict()).noise_scale == 0.3


def test_run_center_moves_every_sampled_run_and_leaves_the_deterministic_one() -> None:
    workflow, plan = _plan({"name": "fork_join", "width": 6})
    model = compile_plan(workflow, plan, MODEL)
    plain = _makespans(model, Platform.zero(), range(20))
    slower = _makespans(model, Platform.zero().with_(run_center=1.25), range(20))
    # No constant overheads on the zero platform: a run whose every duration is 1.25x takes 1.25x.
    np.testing.assert_allclose(slower, 1.25 * plain, rtol=1e-9)
    assert run_once(model, Platform.zero().with_(run_center=1.25)).makespan_s == run_once(model, Platform.zero()).makespan_s


def test_the_fit_puts_the_sampled_median_on_the_real_median() -> None:
    truth = HOST.with_(run_center=0.9, run_noise=0.05)
    runs = (_observed({"name": "fork_join", "width": 8}, "uniform", truth, range(50))
            + _observed({"name": "random_layered", "tasks": 30, "seed": 2}, "heft", truth, range(100, 150)))
    fit = fit_run_noise([_Compiled(r) for r in runs], HOST)
    assert fit.run_center == pytest.approx(0.9, abs=0.03)
    unbiased = fit_run_noise([_Compiled(r) for r in _observed({"name": "fork_join", "width": 8}, "uniform", HOST,
                                                              range(40))], HOST)
    assert unbiased.run_center == pytest.approx(1.0, abs=0.03)
    with pytest.raises(ConfigError, match="run_center must be > 0"):
        Platform(run_center=0.0)
