"""The calibration fit: terms chosen by inner cross-validation, the prior for few executions, machine
families, and the analytic baselines - on synthetic executions whose true overheads are known."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.calibration import Observation, calibrate
from experiments.calibration.baselines import AnalyticBaseline, Features, fit_baselines, fit_relative_lad
from experiments.calibration.fit import SCALED_PRIOR, fit_platform, folds_by, lad, snap
from experiments.calibration.prior import resolve_prior, shipped_priors
from planning.costs.cost_model import CostModel
from planning.errors import ConfigError
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.tasks import Task
from planning.workflow import Workflow
from simulator import Platform


def fork_join(width: int, machine: str = "node-1", cores: int = 8, runtime: float = 10.0) -> Workflow:
    """A recorded fork-join: a source, ``width`` parallel tasks, a sink, on one machine of ``cores`` cores."""
    tasks = [Task("src", "split", runtime_s=2.0, meta={"machines": [machine]})]
    tasks += [Task(f"t{i}", "work", runtime_s=runtime + i % 3, meta={"machines": [machine]}) for i in range(width)]
    tasks.append(Task("sink", "merge", runtime_s=3.0, meta={"machines": [machine]}))
    parents = {f"t{i}": ["src"] for i in range(width)} | {"sink": [f"t{i}" for i in range(width)]}
    return Workflow.from_tasks(tasks, parents, name=f"fj{width}",
                               metadata={"machines": {machine: {"cores": cores}}, "workflow_system": "Pegasus"})


def observed(workflow: Workflow, truth: Platform, name: str, family: str = "") -> Observation:
    """An execution whose real makespan is the simulator's on ``truth`` (so the right terms fit exactly)."""
    model = CostModel()
    plan = get_planner("recorded").plan(workflow, load_catalog("local"), model, "mean")
    o = Observation(name, workflow, plan, 1.0, None, "app", "Pegasus", model, family)
    o.real_makespan_s = o.simulate(truth)
    return o


def test_inner_cross_validation_keeps_the_term_that_generated_the_runs() -> None:
    truth = Platform.zero().with_(dispatch_s=2.0)
    runs = [observed(fork_join(w), truth, f"app-chameleon-w{w}-001") for w in (4, 8, 16, 32, 48)]
    result = calibrate(runs, prior=None)
    assert "dispatch_s" in result.kept
    assert result.platform.dispatch_s == pytest.approx(2.0, rel=0.05)
    assert result.error_after < 0.01 and result.held_out_error < 0.02
    # every size was predicted by a calibration on the other sizes; the baselines were held out the same way
    assert result.table["held_out_s"].notna().all()
    assert set(result.baselines_held_out) == {"replay", "critical_path_startup", "four_term"}
    assert result.baselines_held_out["replay"] > 0.3


def test_one_execution_scales_the_prior() -> None:
    prior = Platform.zero().with_(workflow_start_s=100.0, dispatch_s=1.0)
    truth = prior.with_(workflow_start_s=200.0, dispatch_s=2.0)
    result = calibrate([observed(fork_join(12), truth, "app-chameleon-w12-001")], prior=prior, held_out=False)
    assert result.kept == (SCALED_PRIOR,)
    assert result.platform.workflow_start_s == pytest.approx(200.0, rel=0.05)
    assert result.platform.dispatch_s == pytest.approx(2.0, rel=0.05)
    assert result.error_after < 0.01


def test_each_machine_family_gets_its_own_platform() -> None:
    slow, fast = Platform.zero().with_(dispatch_s=3.0), Platform.zero().with_(dispatch_s=1.0)
    runs = [observed(fork_join(w, "slow-1"), slow, f"app-chameleon-w{w}-001", "slow/8") for w in (6, 12, 24)]
    runs += [observed(fork_join(w, "fast-1"), fast, f"app-chameleon-w{w}-002", "fast/8") for w in (8, 16, 32)]
    result = calibrate(runs, prior=None, held_out=False)
    assert set(result.families) == {"slow/8", "fast/8"}
    assert result.families["slow/8"].dispatch_s > 2.0 * result.families["fast/8"].dispatch_s
    assert result.error_after < 0.05
    single = calibrate(runs, prior=None, held_out=False, families=False)
    assert not single.families and single.error_after > 2 * result.error_after
    # a family never seen falls back to the application's platform
    stranger = observed(fork_join(10, "new-1"), fast, "app-chameleon-w10-003", "new/8")
    assert result.predict(stranger) == stranger.simulate(result.platform)


def test_one_family_with_enough_executions_gets_no_platform_of_its_own() -> None:
    # three slow runs and one fast: the fast family is too small for a fit, so a slow platform would be a second
    # fit of nearly the application's executions - the application's platform serves both
    slow, fast = Platform.zero().with_(dispatch_s=3.0), Platform.zero().with_(dispatch_s=1.0)
    runs = [observed(fork_join(w, "slow-1"), slow, f"app-chameleon-w{w}-001", "slow/8") for w in (6, 12, 24)]
    runs.append(observed(fork_join(16, "fast-1"), fast, "app-chameleon-w16-002", "fast/8"))
    result = calibrate(runs, prior=None, held_out=False)
    assert result.families == {}
    # a second fast run makes two families with enough: each gets its own
    runs.append(observed(fork_join(32, "fast-1"), fast, "app-chameleon-w32-002", "fast/8"))
    assert set(calibrate(runs, prior=None, held_out=False).families) == {"slow/8", "fast/8"}


def test_stand_ins_are_measured_on_a_shared_grid() -> None:
    # 20 points per decade: 10 ** (k / 20); zero (a term left out) stays zero
    assert snap(np.array([0.0, 1.0, 1.06, 123.0])) == pytest.approx([0.0, 1.0, 10 ** 0.05, 10 ** 2.1])
    # two fits a few per cent apart measure their stand-ins at the same point; only the ``which`` terms move
    assert snap(np.array([20.0, 3.0])).tolist() == snap(np.array([20.9, 3.05])).tolist()
    assert snap(np.array([1.06, 1.06]), [1]) == pytest.approx([1.06, 10 ** 0.05])


def test_a_one_term_fit_is_the_weighted_median() -> None:
    # relative misses t = (real - sim0) / real = 0.1, 0.2, 1.2 and slopes a = slopes / real = 1, 1, 3: the
    # points t / a = 0.1, 0.2, 0.4 weighted 1, 1, 3 have the weighted median 0.4
    real = np.array([100.0, 100.0, 100.0])
    slopes = np.array([[100.0], [100.0], [300.0]])
    sim0 = real - np.array([10.0, 20.0, 120.0])
    one = (np.zeros(1), real, np.array([True]), np.zeros(1))
    assert lad(sim0, slopes, *one)[0] == pytest.approx(0.4)
    # a prior pulling harder than all the points (30 / scale 5 = 6 > 5) wins; a negative median is clipped at 0
    assert lad(sim0, slopes, *one, np.array([5.0]), 30.0)[0] == 5.0
    assert lad(real + 50.0, slopes, *one)[0] == 0.0


def test_a_one_term_fit_is_optimal_among_every_breakpoint() -> None:
    rng = np.random.default_rng(3)
    for _ in range(300):
        n, k = int(rng.integers(1, 10)), int(rng.integers(1, 4))
        sim0, real = rng.uniform(10, 100, n), rng.uniform(10, 200, n)
        slopes, theta0, fixed = rng.uniform(-1, 5, (n, k)), rng.uniform(0, 10, k), rng.uniform(0, 5, k)
        free = np.arange(k) == int(rng.integers(k))
        theta = lad(sim0, slopes, theta0, real, free, fixed)
        assert np.array_equal(theta[~free], fixed[~free])
        a = slopes[:, free][:, 0] / real
        target = (real - sim0 - slopes[:, ~free] @ (fixed[~free] - theta0[~free]) + slopes[:, free] @ theta0[free]) / real

        def cost(x: float) -> float:
            return float(np.abs(a * x - target).sum())
        breakpoints = [0.0] + [t / x for t, x in zip(target, a) if x != 0 and t / x > 0]
        assert theta[free][0] >= 0
        assert cost(theta[free][0]) <= min(map(cost, breakpoints)) + 1e-9


def test_folds_leave_one_size_out_else_one_execution_out() -> None:
    assert [f.tolist() for f in folds_by(["a", "b", "a"])] == [[0, 2], [1]]
    assert [f.tolist() for f in folds_by(["a", "a"])] == [[0], [1]]
    assert [f.tolist() for f in folds_by(list("abcde"), max_folds=2)] == [[0, 2, 4], [1, 3]]
    assert folds_by(["only"]) == []


def test_baselines_fit_relative_deviations_with_non_negative_terms() -> None:
    rng = np.random.default_rng(0)
    feats = [Features(float(r), float(r) * 0.8, int(lv), int(n), float(gb))
             for r, lv, n, gb in zip(rng.uniform(50, 500, 12), rng.integers(2, 9, 12), rng.integers(10, 900, 12),
                                     rng.uniform(0, 40, 12))]
    real = [f.replay_s + 120 + 15 * f.levels + 0.9 * f.tasks + 7 * f.staged_GB for f in feats]
    four = AnalyticBaseline("four_term").fit(feats, real)
    assert four.coefficients_ == pytest.approx({"start": 120, "levels": 15, "tasks": 0.9, "staged_GB": 7}, rel=1e-6)
    assert np.allclose(four.predict(feats), real)
    fits = fit_baselines(feats, real)
    assert fits["replay"].coefficients_ == {} and np.allclose(fits["replay"].predict(feats), [f.replay_s for f in feats])
    assert fits["critical_path_startup"].coefficients_["start"] > 0
    # a term that would have to be negative is held at zero
    assert fit_relative_lad(np.full(3, 10.0), np.ones((3, 1)), np.full(3, 5.0)).tolist() == [0.0]
    with pytest.raises(ValueError, match="unknown baseline"):
        AnalyticBaseline("magic")


def test_the_shipped_prior_and_its_errors() -> None:
    priors = shipped_priors()
    assert {"Pegasus", "Makeflow"} <= set(priors)
    assert priors["Makeflow"]["dispatch_s"] > priors["Pegasus"]["dispatch_s"] > 0   # FACTS.md: Makeflow 5-20 s/task
    run = observed(fork_join(4), Platform.zero(), "app-chameleon-w4-001")
    base = Platform.zero()
    assert resolve_prior("default", [run], base).dispatch_s == priors["Pegasus"]["dispatch_s"]
    assert resolve_prior("none", [run], base) is None and resolve_prior(None, [run], base) is None
    assert resolve_prior({"dispatch_s": 4.0}, [run], base).dispatch_s == 4.0
    with pytest.raises(ConfigError, match="unknown calibration prior"):
        resolve_prior("magic", [run], base)


def test_inner_held_out_predictions_are_simulated_without_their_fold() -> None:
    truth = Platform.zero().with_(dispatch_s=2.0)
    runs = [observed(fork_join(w), truth, f"app-chameleon-w{w}-001") for w in (4, 8, 16, 32, 48)]
    truth_makespans = [o.real_makespan_s for o in runs]
    names = ("workflow_start_s", "dispatch_s", "level_delay_s", "staging_s_per_GB")
    sizes = [o.name for o in runs]
    fitted = fit_platform(runs, Platform.zero(), names, families=False, sizes=sizes)
    # where the fit is exact, so is every fold
    assert fitted.cv_predicted == pytest.approx(truth_makespans, rel=1e-6)
    # an outlier's own inner prediction comes from the other folds: the truth, not its recorded makespan
    runs[2].real_makespan_s = 3 * truth_makespans[2]
    fitted = fit_platform(runs, Platform.zero(), names, families=False, sizes=sizes)
    assert fitted.kept == ("dispatch_s",) and fitted.platform.dispatch_s == pytest.approx(2.0, rel=1e-6)
    assert fitted.cv_predicted[2] == pytest.approx(truth_makespans[2], rel=1e-6)
    # no inner folds (one execution): nothing held out
    assert fit_platform(runs[:1], Platform.zero(), names, families=False, sizes=sizes[:1]).cv_predicted is None


def test_the_folds_programmes_solved_as_one_give_each_folds_own_fit() -> None:
    # select_terms solves a candidate's inner folds side by side: every fold's terms as lad finds them alone
    from experiments.calibration.fit import lad_folds

    rng = np.random.default_rng(11)
    for case in range(60):
        n, k = int(rng.integers(12, 25)), 4
        sim0, slopes = rng.uniform(100, 1000, n), rng.uniform(0, 50, (n, k))
        real = (sim0 + slopes @ rng.uniform(0, 3, k)) * rng.uniform(0.8, 1.2, n)
        free = np.array([True, True, case % 2 == 0, case % 3 > 0])
        prior = rng.uniform(0, 3, k) if case % 4 == 0 else None
        pull, unit = (0.05, np.ones(k)) if prior is not None else (0.0, None)
        trains = [np.arange(n) % 5 != f for f in range(5)]
        alone = [lad(sim0[t], slopes[t], np.zeros(k), real[t], free, np.zeros(k), prior, pull, unit) for t in trains]
        joint = lad_folds(sim0, slopes, np.zeros(k), real, free, np.zeros(k), trains, prior, pull, unit)
        for a, b in zip(alone, joint):
            assert b == pytest.approx(a, rel=1e-7, abs=1e-9)
            assert np.array_equal(b[~free], np.zeros(k)[~free])
    # a fold with no more rows than free terms has many exact fits: solved alone, so the same one as lad's
    trains = [np.arange(n) < 3, np.arange(n) >= 3]
    alone = [lad(sim0[t], slopes[t], np.zeros(k), real[t], np.ones(k, bool), np.zeros(k)) for t in trains]
    joint = lad_folds(sim0, slopes, np.zeros(k), real, np.ones(k, bool), np.zeros(k), trains)
    assert all(np.array_equal(a, b) for a, b in zip(alone, joint))
