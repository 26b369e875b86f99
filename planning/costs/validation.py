"""Held-out error of a cost model: k-fold cross-validation of its execution estimates, with a noise floor.

:meth:`CostModel.validate <planning.costs.cost_model.CostModel.validate>` and
:func:`~planning.costs.cost_model.validate_cost_model` call :func:`held_out_errors`
with the model's class and parameters, so a subclass is validated as itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd

from planning.costs.history import validate_history
from planning.sla import SLA

if TYPE_CHECKING:
    from planning.costs.cost_model import CostModel

COLUMNS = ["kind", "statistic", "mape", "samples", "groups", "floor"]


def held_out_errors(model_class: "type[CostModel]", params: Mapping[str, Any], history: pd.DataFrame,
                    folds: int = 5, statistics: Sequence[str] = ("mean", "p95"), seed: int = 0,
                    min_group: int = 5) -> pd.DataFrame:
    """k-fold held-out error of execution estimates, per kind and statistic.

    Every row is predicted by a model (``model_class(**params)``) fitted without its
    fold.  Rows are grouped by (kind, profile, input size) - sizes binned into 16
    log-quantile bins when a kind has more than 64 distinct sizes - and, for each
    group of at least ``min_group`` rows, the statistic of the observed times is
    compared with the mean of the held-out predictions.  ``mape`` is the mean
    absolute percentage error over groups (a fraction: 0.05 = 5 %).  In a binned
    group the mean is compared exactly; a percentile of the mixture is compared with
    the mean of the rows' percentiles, which overstates p95 error a little.

    A group's own empirical statistic is noisy too, so ``floor`` is the MAPE a
    model knowing the truth would score against groups of these sizes (simulated
    from the kind's fitted noise): ``mape`` close to ``floor`` means the model is
    as good as these data can show.  Columns: ``kind``, ``statistic``, ``mape``,
    ``samples`` (rows of the kind), ``groups`` (groups scored), ``floor``.
    """
    h = validate_history(history)
    if len(h) < 2:
        return pd.DataFrame(columns=COLUMNS)
    folds = int(max(2, min(folds, len(h))))
    slas = [SLA.parse(s) for s in statistics]
    rng = np.random.default_rng(seed)
    fold = rng.permutation(len(h)) % folds
    preds = {s: np.empty(len(h)) for s in slas}
    for f in range(folds):
        test = fold == f
        model = model_class(**params).fit_validated(h.loc[~test].reset_index(drop=True))
        for s in slas:
            preds[s][test] = model.predict(h.loc[test], s)["exec_s"].to_numpy()
    full = model_class(**params).fit_validated(h)
    frame = pd.DataFrame({"kind": h["kind"], "profile": h["profile"], "bin": _size_bins(h), "t": h["exec_s"]})
    samples = h.groupby("kind").size()
    rows = []
    for s in slas:
        frame["pred"] = preds[s]
        grouped = frame.groupby(["kind", "profile", "bin"], sort=True)
        stats = grouped.agg(n=("t", "size"), pred=("pred", "mean"))
        stats["obs"] = grouped["t"].mean() if s.kind == "mean" else grouped["t"].quantile(s.q)
        stats = stats[(stats["n"] >= min_group) & (stats["obs"] > 0)]
        stats["ape"] = (stats["pred"] - stats["obs"]).abs() / stats["obs"]
        for kind, per_kind in stats.groupby(level="kind"):
            ratios = full.ratios_[full.kind_index_[kind]]
            by_n = {n: _sampling_error(ratios, int(n), s, rng) for n in np.unique(per_kind["n"])}
            floor = np.mean([by_n[n] for n in per_kind["n"]])
            rows.append({"kind": kind, "statistic": s.name, "mape": float(per_kind["ape"].mean()),
                         "samples": int(samples[kind]), "groups": int(len(per_kind)), "floor": float(floor)})
    return pd.DataFrame(rows, columns=COLUMNS)


def _sampling_error(ratios: np.ndarray, n: int, sla: SLA, rng: np.random.Generator, reps: int = 400) -> float:
    """Mean |relative error| of ``sla`` measured on ``n`` draws from ``ratios`` (a sampling-noise floor)."""
    draws = ratios[rng.integers(0, len(ratios), size=(reps, n))]
    truth = float(sla.of(ratios))
    return float(np.mean(np.abs(sla.of(draws, axis=1) / truth - 1.0)))


def _size_bins(h: pd.DataFrame) -> np.ndarray:
    """Exact input sizes, or 16 log-quantile bins for kinds with more than 64 distinct sizes."""
    bins = h["input_bytes"].to_numpy(float).copy()
    for kind, idx in h.groupby("kind").indices.items():
        sizes = bins[idx]
        if len(np.unique(sizes)) > 64:
            bins[idx] = pd.qcut(np.log1p(sizes), 16, labels=False, duplicates="drop").astype(float)
    return bins
