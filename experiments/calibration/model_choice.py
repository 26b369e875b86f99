"""Which model predicts an application: the calibrated simulator, or the four-term formula.

Where a workflow system's overheads add to the execution rather than overlap it
(staging done before and after the tasks, not beside them), the simple four-term
formula of :mod:`experiments.calibration.baselines` (replay + start-up + delay per
level + serial dispatch per task + staging per GB) predicts unseen sizes better than
the simulator, whose stager and dispatcher overlap execution: on WfInstances,
leave-one-size-out, epigenomics 4.1 % against 10.0 %, srasearch 14.5 % against 27 %.
Elsewhere (cycles, montage, blast) the simulator is 1.5 to 2x better.

So the calibration chooses between the two the way it chooses terms: by inner
cross-validation on the training executions (leave one size out, the folds of
:func:`experiments.calibration.fit.folds_by`).  The simulator's score is the one
its term selection already computed for the candidate it kept (the mean relative
error on the held-out folds; optimistic, since it is the best of several
candidates, so a tie keeps the simulator); the formula's is measured on the same
folds.  The formula replaces the simulator only when its score is lower by
:data:`FORMULA_MARGIN`.  With no folds (a single execution) the simulator stays, and so
it does when the fit gave machine families their own platforms: the selection's score is the
application's one platform's, not what the families predict, and the formula has no families
(measured on montage, three families: the comparison picked the formula in 6 of 11 folds and the
held-out error went from 13 % to 29 %).  Cost: a few small linear programmes.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from experiments.calibration.baselines import AnalyticBaseline, Features
from experiments.calibration.fit import folds_by, relative_errors

#: The two models a calibration chooses from (what reports name them).
SIMULATOR = "simulator"
FORMULA = "four_term"
#: The formula replaces the simulator only when its cross-validated mean relative error is lower by this much
#: (absolute): a near tie keeps the model that explains where the time goes.
FORMULA_MARGIN = 0.0


def formula_cv_error(features: Sequence[Features], real: Sequence[float], folds: Sequence[np.ndarray]) -> float:
    """Mean relative error of the four-term formula on each fold, fitted on the others (NaN without folds)."""
    real = np.asarray(real, float)
    errors: list[float] = []
    for held in folds:
        held_set = set(np.asarray(held).tolist())
        train = [i for i in range(len(real)) if i not in held_set]
        if not train:
            continue
        model = AnalyticBaseline(FORMULA).fit([features[i] for i in train], real[train])
        predicted = model.predict([features[i] for i in sorted(held_set)])
        errors.extend(relative_errors(predicted, real[sorted(held_set)]).tolist())
    return float(np.mean(errors)) if errors else float("nan")


def simulator_cv_error(fitted: Any) -> float:
    """The inner cross-validated error of the simulator candidate the fit kept (NaN when it had no folds)."""
    scores = getattr(fitted, "scores", None) or {}
    return float(scores.get(fitted.model, float("nan")))


def choose_model(fitted: Any, observations: Sequence[Any], sizes: Sequence[Any]) -> Any:
    """``fitted`` (a :class:`~experiments.calibration.fit.Fitted`) with the model its inner cross-validation
    prefers: ``fitted.formula`` set to the four-term formula fitted on every observation when that wins (never
    when machine families have platforms of their own), and ``fitted.model_scores`` recording both scores."""
    real = [o.real_makespan_s for o in observations]
    features = [o.features() for o in observations]
    simulator = simulator_cv_error(fitted)
    formula = formula_cv_error(features, real, folds_by(list(sizes)))
    fitted.model_scores = {SIMULATOR: simulator, FORMULA: formula}
    comparable = np.isfinite(simulator) and np.isfinite(formula) and not getattr(fitted, "families", None)
    if comparable and formula < simulator - FORMULA_MARGIN:
        fitted.formula = AnalyticBaseline(FORMULA).fit(features, real)
    else:
        fitted.formula = None
    return fitted
