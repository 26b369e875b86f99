"""Which model predicts an application: the calibrated simulator, or the four-term formula.

Where a workflow system's overheads add to the execution rather than overlap it
(staging done before and after the tasks, not beside them), the simple four-term
formula of :mod:`experiments.calibration.baselines` (replay + start-up + delay per
level + serial dispatch per task + staging per GB) predicts unseen sizes as well as
the simulator or better, whose stager and dispatcher overlap execution; elsewhere
(cycles, montage, blast, bwa) the simulator is 1.5 to 4x better.

So the calibration chooses between the two by inner cross-validation on the training
executions (leave one size out, the folds of :func:`experiments.calibration.fit.folds_by`),
both models judged on the same held-out predictions: the formula fitted on the other
folds, and the simulator's kept candidate fitted on the other folds and *simulated*
(:attr:`~experiments.calibration.fit.Fitted.cv_predicted`; the linear stand-in's score
hides a serial queue that saturates outside the sizes it was fitted on).

**The simpler model wins ties.** The formula is the simpler one (four coefficients
of a sum, no queueing), and the simulator's candidate was itself selected on these
folds, so its score is optimistic.  The simulator predicts only when it is better
by a one-sided paired t-test at :data:`SIGNIFICANCE` on the per-fold differences of
mean relative error: the units are the folds (sizes), because the executions of one
size err together; with fewer than :data:`MIN_FOLD_UNITS` folds there is no spread
across folds to test against and the executions are the units.  Measured on
WfInstances leave-one-size-out (benchmarks/results/calibration.json): choosing by the
lower mean alone left 1000genome, srasearch and epigenomics 0.2 to 12 points worse
than the formula - on these applications the two are within the inner noise and the
choice flipped from fold to fold.

The simulator stays, untested, with no folds (a single size) and when the fit gave
machine families their own platforms: the held-out predictions are the application's
one platform's, not what the families predict, and the formula has no families
(montage, three families: a comparison picked the formula in 6 of 11 folds and the
held-out error went from 13 % to 29 %).  Cost: a few small linear programmes.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
# Student's t quantile from scipy.special, which scipy.optimize (the fit's linprog) loads anyway: scipy.stats'
# ``t.ppf`` returns exactly ``stdtrit`` but importing scipy.stats took a fifth of ``planlab calibrate``'s start-up
from scipy.special import stdtrit

from experiments.calibration.baselines import AnalyticBaseline, Features, formula_columns
from experiments.calibration.fit import Candidate, folds_by, relative_errors, select_terms

#: The two models a calibration chooses from (what reports name them).
SIMULATOR = "simulator"
FORMULA = "four_term"
#: One-sided level of the paired t-test the simulator must pass to replace the simpler formula.
SIGNIFICANCE = 0.05
#: With fewer folds than this the test's units are the executions (a t-test on two folds has no power).
MIN_FOLD_UNITS = 3


def formula_cv_predictions(features: Sequence[Features], real: Sequence[float],
                           folds: Sequence[np.ndarray], background: bool = True) -> np.ndarray:
    """Each execution predicted by the four-term formula fitted on the other folds (NaN when in no fold;
    ``background``: see :class:`~experiments.calibration.baselines.AnalyticBaseline`)."""
    real = np.asarray(real, float)
    out = np.full(len(real), np.nan)
    for held in folds:
        held = np.asarray(held, int)
        train = np.setdiff1d(np.arange(len(real)), held)
        if len(train) == 0 or len(held) == 0:
            continue
        model = AnalyticBaseline(FORMULA, background=background).fit([features[i] for i in train], real[train])
        out[held] = model.predict([features[i] for i in held])
    return out


def formula_cv_error(features: Sequence[Features], real: Sequence[float], folds: Sequence[np.ndarray]) -> float:
    """Mean relative error of the four-term formula on each fold, fitted on the others (NaN without folds)."""
    predicted = formula_cv_predictions(features, real, folds)
    errors = relative_errors(predicted, np.asarray(real, float))
    return float(np.nanmean(errors)) if np.isfinite(errors).any() else float("nan")


def paired_units(real: np.ndarray, richer: np.ndarray, simpler: np.ndarray,
                 folds: Sequence[np.ndarray]) -> np.ndarray:
    """How much lower the richer model's relative error is than the simpler one's (here the simulator's than the
    formula's), per test unit: per fold (the mean over its executions) with at least :data:`MIN_FOLD_UNITS`
    folds, else per execution."""
    gain = relative_errors(simpler, real) - relative_errors(richer, real)
    both = np.isfinite(gain)
    per_fold = [float(gain[h][both[h]].mean()) for h in (np.asarray(f, int) for f in folds) if both[h].any()]
    return np.array(per_fold) if len(per_fold) >= MIN_FOLD_UNITS else gain[both]


def significantly_better(gains: np.ndarray, level: float = SIGNIFICANCE) -> bool:
    """One-sided paired t-test of :func:`paired_units`' gains: is their mean above zero at ``level``?
    (False with fewer than two units; a constant positive gain passes.)"""
    n = len(gains)
    if n < 2:
        return False
    mean, sd = float(np.mean(gains)), float(np.std(gains, ddof=1))
    if sd == 0.0:
        return mean > 0
    return mean > stdtrit(n - 1, 1 - level) * sd / np.sqrt(n)


def richer_if_better(simpler: Any, richer: Any, observations: Sequence[Any], sizes: Sequence[Any]) -> Any:
    """Of two simulator fits (:class:`~experiments.calibration.fit.Fitted`) of the same executions, ``richer`` only
    when its simulated inner held-out predictions are significantly better (:func:`significantly_better`);
    used to choose whether the staging's bytes are charged at split rates (``staging_split="auto"``)."""
    if simpler.cv_predicted is None or richer.cv_predicted is None:
        return simpler
    real = np.array([o.real_makespan_s for o in observations], float)
    gains = paired_units(real, np.asarray(richer.cv_predicted, float), np.asarray(simpler.cv_predicted, float),
                         folds_by(list(sizes)))
    return richer if significantly_better(gains) else simpler


def keeps_background(features: Sequence[Features], real: Sequence[float], folds: Sequence[np.ndarray]) -> bool:
    """Whether the four-term formula takes its fifth term, seconds per task and run already running at submission
    (``calibrate(background_runs="auto")``): chosen as the simulator's terms are
    (:func:`~experiments.calibration.fit.select_terms` on the formula's own linear columns, which are exact: the
    lowest inner cross-validated error, the simpler formula when the richer is within one standard error of it).
    False when no execution ran beside another, or without folds.

    Why not always: offered always (with the corpus's counts) the fifth term took seismology from 17.7 to 10.0 %
    and soykb from 7.7 to 4.4 % leave-one-size-out, but 1000genome went from 5.5 to 6.5 % - its counts explain
    nothing its four terms do not, and the fifth coefficient fitted on some sizes mispredicts the next."""
    if not folds or not any(f.background_task_runs > 0 for f in features):
        return False
    base, columns = formula_columns(features, background=True)
    plain = tuple(True for _ in range(columns.shape[1] - 1))
    options = [Candidate(FORMULA, plain + (False,)), Candidate(f"{FORMULA}+background", plain + (True,))]
    chosen, _ = select_terms(base, columns, np.zeros(columns.shape[1]), np.asarray(real, float), folds, options,
                             None, 0.0)
    return chosen.free[-1]


def choose_model(fitted: Any, observations: Sequence[Any], sizes: Sequence[Any], background: str = "always") -> Any:
    """``fitted`` (a :class:`~experiments.calibration.fit.Fitted`) with the model its inner cross-validation
    prefers: ``fitted.formula`` set to the four-term formula fitted on every observation unless the simulator is
    significantly better (never when machine families have platforms of their own, or without folds), and
    ``fitted.model_scores`` recording both models' mean relative errors on the same held-out executions.
    ``background``: where the observations know their background runs, whether the formula takes its fifth term
    ``"always"`` or where :func:`keeps_background` says (``"auto"``)."""
    real = np.array([o.real_makespan_s for o in observations], float)
    features = [o.features() for o in observations]
    folds = folds_by(list(sizes))
    fifth = background != "auto" or keeps_background(features, real, folds)
    formula = formula_cv_predictions(features, real, folds, fifth)
    cv = getattr(fitted, "cv_predicted", None)
    simulator = np.full(len(real), np.nan) if cv is None else np.asarray(cv, float)
    both = np.isfinite(simulator) & np.isfinite(formula)
    score = (lambda p: float(np.mean(relative_errors(p[both], real[both]))) if both.any() else float("nan"))
    fitted.model_scores = {SIMULATOR: score(simulator), FORMULA: score(formula)}
    fitted.formula = None
    if both.any() and not getattr(fitted, "families", None):
        if not significantly_better(paired_units(real, simulator, formula, folds)):
            fitted.formula = AnalyticBaseline(FORMULA, background=fifth).fit(features, real)
    return fitted
