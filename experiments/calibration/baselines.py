"""Analytic baselines for calibrated simulation: what a formula predicts without the simulator.

A calibrated simulator is only worth its complexity if it predicts unseen real
executions better than simple formulas fitted to the same executions.  Three
baselines, each computed from a few numbers per execution (:class:`Features`):

* ``replay``: the recorded replay with no overheads at all (the simulator on
  :meth:`Platform.zero`); nothing is fitted.  It under-predicts every real run.
* ``critical_path_startup``: the critical path of the recorded runtimes plus one
  fitted start-up delay.
* ``four_term``: the replay plus the four workflow-system terms as a linear
  formula: start-up + delay x levels + serial dispatch x tasks + serial staging x
  GB staged (external inputs, every task's output, the inputs read from parents); with
  the runs already running at submission known (``calibrate(background_runs=...)``), a
  fifth: seconds per task and background run.

Fits minimise the sum of relative errors ``|predicted - real| / real`` with
non-negative coefficients: a linear programme (``scipy.optimize.linprog``,
O(observations x terms)).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.optimize import linprog

#: The baselines, in the order reports print them.
BASELINES = ("replay", "critical_path_startup", "four_term")


@dataclass(frozen=True)
class Features:
    """What the analytic baselines know about one execution."""

    replay_s: float          # the simulator's replay with no overheads
    critical_path_s: float   # the heaviest path of recorded runtimes
    levels: int              # dependency levels (depth)
    tasks: int
    staged_GB: float         # bytes the staging term charges, / 1e9 (see staged_bytes in the recorded planner)
    #: tasks x other runs already running at submission (``calibrate(background_runs=...)``; 0 when not asked)
    background_task_runs: float = 0.0


_BASE = {"replay": "replay_s", "critical_path_startup": "critical_path_s", "four_term": "replay_s"}
_TERMS = {"replay": (), "critical_path_startup": ("start",), "four_term": ("start", "levels", "tasks", "staged_GB")}


def _columns(features: Sequence[Features], terms: Sequence[str]) -> np.ndarray:
    values = {"start": [1.0] * len(features), "levels": [f.levels for f in features],
              "tasks": [f.tasks for f in features], "staged_GB": [f.staged_GB for f in features],
              "background": [f.background_task_runs for f in features]}
    return np.array([values[t] for t in terms], float).T.reshape(len(features), len(terms))


def fit_relative_lad(base: np.ndarray, columns: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Coefficients ``c >= 0`` minimising ``sum |base + columns @ c - real| / real`` (a linear programme)."""
    n, k = columns.shape
    if k == 0:
        return np.zeros(0)
    a_eq = np.hstack([columns / real[:, None], -np.eye(n), np.eye(n)])
    b_eq = (real - base) / real
    lp = linprog(np.concatenate([np.zeros(k), np.ones(2 * n)]), A_eq=a_eq, b_eq=b_eq,
                 bounds=[(0, None)] * (k + 2 * n), method="highs")
    return lp.x[:k] if lp.success else np.zeros(k)


@dataclass
class AnalyticBaseline:
    """One baseline (a name of :data:`BASELINES`); ``fit`` then ``predict``, as the cost model does.

    ``background``: whether the four-term formula takes its fifth term (seconds per task and background run) when
    the features know the counts; False fits the plain four terms on the same features (what the calibration's
    ``background_runs="auto"`` compares it with, :func:`experiments.calibration.model_choice.keeps_background`)."""

    name: str
    coefficients_: dict[str, float] = field(default_factory=dict)
    background: bool = True

    def __post_init__(self) -> None:
        if self.name not in BASELINES:
            raise ValueError(f"unknown baseline {self.name!r}; one of {', '.join(BASELINES)}")

    def fit(self, features: Sequence[Features], real: Sequence[float]) -> "AnalyticBaseline":
        terms = _TERMS[self.name]
        if self.name == "four_term" and self.background and any(f.background_task_runs > 0 for f in features):
            terms = terms + ("background",)   # a fifth term: seconds per task and run already running at submission
        base = np.array([getattr(f, _BASE[self.name]) for f in features], float)
        coef = fit_relative_lad(base, _columns(features, terms), np.asarray(real, float))
        self.coefficients_ = dict(zip(terms, map(float, coef)))
        return self

    def predict(self, features: Sequence[Features]) -> np.ndarray:
        terms = _TERMS[self.name] + tuple(t for t in self.coefficients_ if t not in _TERMS[self.name])
        base = np.array([getattr(f, _BASE[self.name]) for f in features], float)
        coef = np.array([self.coefficients_.get(t, 0.0) for t in terms], float)
        return base + _columns(features, terms) @ coef


def fit_baselines(features: Sequence[Features], real: Sequence[float],
                  background: bool = True) -> dict[str, AnalyticBaseline]:
    """Every baseline of :data:`BASELINES`, fitted on the same executions (``background``: see
    :class:`AnalyticBaseline`)."""
    return {name: AnalyticBaseline(name, background=background).fit(features, real) for name in BASELINES}


def formula_columns(features: Sequence[Features], background: bool) -> tuple[np.ndarray, np.ndarray]:
    """The four-term formula as a linear stand-in: each execution's replay, and its column per term (start-up,
    levels, tasks, GB staged, and with ``background`` tasks x background runs) - what a term selection over the
    formula's terms reads (:func:`experiments.calibration.model_choice.keeps_background`)."""
    terms = _TERMS["four_term"] + (("background",) if background else ())
    return np.array([f.replay_s for f in features], float), _columns(features, terms)
