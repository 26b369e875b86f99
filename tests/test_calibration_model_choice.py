"""The calibration's choice of model: the simulator, or the four-term formula where the inner cross-validation
prefers it - a hand-computed case, and synthetic executions whose overheads add (formula) or overlap (simulator)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from experiments.calibration import Observation, calibrate
from experiments.calibration.baselines import Features
from experiments.calibration.fit import Fitted, folds_by
from experiments.calibration.model_choice import (FORMULA, SIMULATOR, choose_model, formula_cv_error,
                                                  formula_cv_predictions, paired_units,
                                                  significantly_better)
from planning.costs.cost_model import CostModel
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.tasks import Task
from planning.workflow import Workflow
from simulator import Platform


def fork_join(width: int, cores: int = 8, runtime: float = 10.0) -> Workflow:
    """A recorded fork-join on one machine of ``cores`` cores: a source, ``width`` parallel tasks, a sink."""
    meta = {"machines": ["node-1"]}
    tasks = [Task("src", "split", runtime_s=2.0, meta=meta)]
    tasks += [Task(f"t{i}", "work", runtime_s=runtime + i % 3, meta=meta) for i in range(width)]
    tasks.append(Task("sink", "merge", runtime_s=3.0, meta=meta))
    parents = {f"t{i}": ["src"] for i in range(width)} | {"sink": [f"t{i}" for i in range(width)]}
    return Workflow.from_tasks(tasks, parents, name=f"fj{width}",
                               metadata={"machines": {"node-1": {"cores": cores}}, "workflow_system": "Pegasus"})


def observed(workflow: Workflow, truth: Platform, name: str) -> Observation:
    """An execution whose real makespan is the simulator's on ``truth``."""
    model = CostModel()
    plan = get_planner("recorded").plan(workflow, load_catalog("local"), model, "mean")
    o = Observation(name, workflow, plan, 1.0, None, "app", "Pegasus", model)
    o.real_makespan_s = o.simulate(truth)
    return o

# three sizes, replay 100 s each, one dependency level count (0) and nothing staged: the formula is
# replay + start + c x tasks, and two executions determine (start, c) exactly
TASKS = (10, 20, 40)
REAL = (250.0, 300.0, 500.0)
# leave one out, by hand:
#   fit on 20, 40: start + 20c = 200, start + 40c = 400 -> c = 10, start = 0;  predicts 10 -> 200, |200-250|/250 = 0.2
#   fit on 10, 40: start + 10c = 150, start + 40c = 400 -> c = 25/3, start = 200/3; predicts 20 -> 1000/3, error 1/9
#   fit on 10, 20: start + 10c = 150, start + 20c = 200 -> c = 5, start = 100;  predicts 40 -> 400, error 0.2
HAND_CV = (0.2 + 1 / 9 + 0.2) / 3


def features() -> list[Features]:
    return [Features(100.0, 100.0, 0, n, 0.0) for n in TASKS]


@dataclass
class Run:
    """What the choice reads of an execution: its real makespan and its features."""

    real_makespan_s: float
    feats: Features

    def features(self) -> Features:
        return self.feats


def fitted_with_errors(errors: tuple[float, ...]) -> Fitted:
    """A fit whose kept candidate, simulated on each held-out size, over-predicts it by ``errors``."""
    cv = np.array(REAL) * (1 + np.array(errors))
    return Fitted(Platform.zero(), ("dispatch_s",), "dispatch_s", {"dispatch_s": 0.0}, {}, cv_predicted=cv)


def test_formula_cross_validation_by_hand() -> None:
    folds = folds_by([str(n) for n in TASKS])
    assert formula_cv_error(features(), REAL, folds) == pytest.approx(HAND_CV, rel=1e-6)
    assert formula_cv_predictions(features(), REAL, folds) == pytest.approx([200.0, 1000 / 3, 400.0])
    assert np.isnan(formula_cv_error(features(), REAL, []))


def test_the_one_sided_paired_t_test_by_hand() -> None:
    # gains 0.15, 0.0611, 0.15: mean 0.1204, sd 0.0513, t(0.95, 2) = 2.920 -> bar 0.0865 < mean: significant
    assert significantly_better(np.array([0.15, 0.2 - 0.05 - 0.2 + 1 / 9 + 0.05, 0.15]))
    # gains 0.2, -0.0889, 0.2: mean 0.1037 > 0 but sd 0.1667 -> bar 0.281: not significant
    assert not significantly_better(np.array([0.2, 1 / 9 - 0.2, 0.2]))
    assert significantly_better(np.array([0.01, 0.01])) and not significantly_better(np.array([0.3]))


def test_units_are_folds_from_three_folds_else_executions() -> None:
    real = np.array([100.0, 100.0, 100.0, 100.0])
    formula, simulator = np.array([110.0, 130.0, 100.0, 120.0]), np.array([100.0, 100.0, 100.0, 100.0])
    # two folds of two executions: the executions' gains
    assert paired_units(real, simulator, formula, [np.array([0, 1]), np.array([2, 3])]) == pytest.approx(
        [0.1, 0.3, 0.0, 0.2])
    # three folds: each fold's mean gain (an execution without a simulated prediction is skipped)
    simulator[3] = np.nan
    folds = [np.array([0]), np.array([1]), np.array([2, 3])]
    assert paired_units(real, simulator, formula, folds) == pytest.approx([0.1, 0.3, 0.0])


def test_the_simulator_must_be_significantly_better() -> None:
    runs = [Run(r, f) for r, f in zip(REAL, features())]
    sizes = [str(n) for n in TASKS]
    kept = choose_model(fitted_with_errors((0.05, 0.05, 0.05)), runs, sizes)   # gains 0.15, 0.061, 0.15
    assert kept.formula is None
    assert kept.model_scores == pytest.approx({SIMULATOR: 0.05, FORMULA: HAND_CV})
    # lower on average (0.067 < 0.170) but not significantly: the simpler formula, fitted on all
    chosen = choose_model(fitted_with_errors((0.0, 0.2, 0.0)), runs, sizes)
    assert chosen.model_scores[SIMULATOR] < chosen.model_scores[FORMULA]
    assert chosen.formula is not None and chosen.formula.name == FORMULA
    predicted = chosen.formula.predict(features())
    assert np.mean(np.abs(predicted - np.array(REAL)) / np.array(REAL)) < HAND_CV
    worse = choose_model(fitted_with_errors((0.3, 0.3, 0.3)), runs, sizes)
    assert worse.formula is not None
    one = choose_model(Fitted(Platform.zero(), (), "prior", {}, {}), runs[:1], sizes[:1])   # no folds: simulator
    assert one.formula is None and np.isnan(one.model_scores[SIMULATOR])
    families = fitted_with_errors((0.3, 0.3, 0.3))
    families.families = {"slow/8": Platform.zero(), "fast/8": Platform.zero()}   # scored without its families
    kept = choose_model(families, runs, sizes)
    assert kept.formula is None and kept.model_scores == pytest.approx({SIMULATOR: 0.3, FORMULA: HAND_CV})


# (width, runtime): long tasks hide a serial dispatch on two cores, short ones expose it, so no one dispatch
# delay of the simulator fits them all, while an overhead that adds per task fits every size exactly
SHAPES = ((8, 60.0), (16, 5.0), (24, 40.0), (32, 8.0), (48, 30.0))


def test_additive_overheads_choose_the_formula_and_recover_it() -> None:
    runs = []
    for width, runtime in SHAPES:
        o = observed(fork_join(width, cores=2, runtime=runtime), Platform.zero(), f"app-chameleon-w{width}-001")
        o.real_makespan_s = o.real_makespan_s + 60.0 + 3.0 * len(o.workflow)   # replay + start + 3 s per task
        runs.append(o)
    result = calibrate(runs, prior=None)
    assert result.model == FORMULA and result.summary()["model"] == FORMULA
    assert result.model_scores[FORMULA] < result.model_scores[SIMULATOR]
    coefficients = result.formula.coefficients_
    assert coefficients["tasks"] == pytest.approx(3.0, rel=0.05)
    assert coefficients["start"] + 3 * coefficients["levels"] == pytest.approx(60.0, rel=0.05)   # depth 3 throughout
    assert result.error_after < 0.01 and result.held_out_error < 0.05
    # the simulator alone cannot follow them
    alone = calibrate(runs, prior=None, choose=False)
    assert alone.model == SIMULATOR and alone.held_out_error > 2 * result.held_out_error


def test_overheads_that_overlap_keep_the_simulator() -> None:
    truth = Platform.zero().with_(dispatch_s=2.0)
    runs = [observed(fork_join(w), truth, f"app-chameleon-w{w}-001") for w in (4, 8, 16, 32, 48)]
    result = calibrate(runs, prior=None)
    assert result.model == SIMULATOR and result.formula is None
    assert result.platform.dispatch_s == pytest.approx(2.0, rel=0.05)
    assert result.model_scores[SIMULATOR] < result.model_scores[FORMULA]
