"""The fit behind :func:`experiments.calibration.calibrate`: linearised least relative deviations, refined on the simulator.

A simulated makespan is close to piecewise linear in each overhead term (a serial
dispatcher adds ``dispatch_s`` per task it delays, a start-up shifts everything).
So the fit measures, by finite differences on the simulator, how much each term
moves each observation's makespan (:func:`effects`: ``k + 1`` simulations per
observation), and solves for the terms that minimise the sum of relative errors
``|predicted - real| / real`` as a linear programme, with non-negative terms and an
optional L1 pull toward a prior (:func:`lad`).  It then re-measures the effects at
the solution and solves again (:func:`refine`), keeping the best point by the
*simulated* error, so the answer is judged by the simulator, not by its linear
stand-in.  A short Nelder-Mead polish on the simulator itself can follow
(``max_evaluations``).

Which terms to fit is chosen by inner cross-validation (:func:`select_terms`): every
candidate (each subset of the terms; with a prior, also the prior as it is and the
prior scaled by one factor) is fitted on all but one size (or execution; at most
:data:`MAX_FOLDS` folds) and judged on the one left out, using the linear stand-in
measured once at the all-terms fit (cheap: small LPs).  With one execution there is
nothing to cross-validate: the prior scaled by one factor is fitted, which one
execution determines.  The kept candidate's inner held-out predictions are then
*simulated* (:func:`held_out_simulated`: each fold refitted on a stand-in measured at
the final terms), for the choice between the simulator and the formula.  Stand-ins are
measured at grid points near the solutions (:func:`snap`), so a command's calibrations
share them.  Cost: about 10 to 15 simulations of each observation with the four
workflow-system terms, plus the machine families' own fits (and, in
:func:`experiments.calibration.calibrate`, the slots per core:
:mod:`experiments.calibration.slots`).

Measured, not adopted: reusing a stand-in at a new point whenever it predicted the
simulated makespans there within 0.5 % (the makespan taken as linear in the terms):
epigenomics never passed the test (5,406 simulations either way); seismology saved 29 %
of its simulations but the fit's kept term flipped (staging to dispatch) and its
held-out error went from 17.7 to 19.7 %.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from scipy.linalg import block_diag
from scipy.optimize import linprog, minimize

from simulator.platform import Platform

#: Secant step per term: the size of the values real workflow systems show (FACTS.md), because a makespan is
#: convex in a serial term - a small dispatch delay hides behind execution, a large one dominates - so a small
#: step would measure only the hidden part.
STEP = {"workflow_start_s": 100.0, "level_delay_s": 20.0, "dispatch_s": 4.0, "staging_s_per_GB": 8.0,
        "machine_dispatch_s": 8.0, "stage_in_s_per_GB": 8.0, "stage_out_s_per_GB": 8.0,
        "background_dispatch_s": 1.0}
#: Step of the other terms (executor terms: start-ups and latencies of milliseconds to seconds).
DEFAULT_STEP = 0.01
#: The name of the candidate that scales every term of the prior by one fitted factor.
SCALED_PRIOR = "prior x scale"
#: The candidate that keeps the prior as it is.
PRIOR_AS_IS = "prior"


def _value(name: str, theta: float) -> float:
    if name == "storage_bandwidth_Bps":
        return math.inf if theta <= 0 else 1e9 / theta
    return float(theta)


def platform_at(base: Platform, names: Sequence[str], theta: np.ndarray) -> Platform:
    """``base`` with the fitted coordinates ``theta`` (bandwidth is fitted as seconds per GB)."""
    return base.with_(**{n: _value(n, float(t)) for n, t in zip(names, theta)})


def coordinates(platform: Platform, names: Sequence[str]) -> np.ndarray:
    """The fitted coordinates of ``platform`` (inverse of :func:`platform_at`)."""
    out = []
    for n in names:
        value = getattr(platform, n)
        out.append((0.0 if math.isinf(value) else 1e9 / value) if n == "storage_bandwidth_Bps" else value)
    return np.array(out, float)


Simulate = Callable[[Platform], np.ndarray]


def effects(simulate: Simulate, base: Platform, names: Sequence[str], theta: np.ndarray,
            which: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Makespans at ``theta`` and their slopes per term (one forward step each): ``k + 1`` simulations per observation
    (``which``: only those terms' slopes, the others' left 0)."""
    sim0 = simulate(platform_at(base, names, theta))
    slopes = np.zeros((len(sim0), len(names)))
    for j in (range(len(names)) if which is None else which):
        moved, step = stepped(names, theta, j)
        slopes[:, j] = (simulate(platform_at(base, names, moved)) - sim0) / step
    return sim0, slopes


def stepped(names: Sequence[str], theta: np.ndarray, j: int) -> tuple[np.ndarray, float]:
    """``theta`` with term ``j`` moved one secant step (:data:`STEP`, or its own value when larger), and the step."""
    step = max(STEP.get(names[j], DEFAULT_STEP), theta[j])
    moved = np.array(theta, float)
    moved[j] += step
    return moved, step


def stand_in_platforms(base: Platform, names: Sequence[str], theta: np.ndarray) -> list[Platform]:
    """The platforms :func:`effects` simulates to measure every term's slope at ``theta``."""
    return [platform_at(base, names, theta)] + [platform_at(base, names, stepped(names, theta, j)[0])
                                                for j in range(len(names))]


#: Grid the stand-ins are measured on: 20 points per decade (12 % apart).  See :func:`snap`.
SNAP_PER_DECADE = 20


def snap(theta: np.ndarray, which: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """``theta`` with each positive term (of ``which``) rounded to a log grid of :data:`SNAP_PER_DECADE` points per
    decade: the point a linear stand-in is measured at (:func:`effects`).

    A stand-in is a secant, good at any nearby point, and the refitted solution is judged on the simulator
    anyway; but measured at the exact solution of every fit, each of a command's calibrations (the fit and its
    held-out folds, whose training sets overlap in all but one size) paid ``k + 1`` simulations per execution
    at points a few per cent apart.  On the grid they land on the same points, which
    :meth:`~experiments.calibration.executions.Observation.simulate` remembers by content (forked folds inherit
    the full fit's).  Each fit still uses only its own training executions to choose its point."""
    out = np.array(theta, float)
    idx = np.arange(len(out)) if which is None else np.asarray(which, int)
    positive = idx[out[idx] > 0]
    out[positive] = 10.0 ** (np.round(np.log10(out[positive]) * SNAP_PER_DECADE) / SNAP_PER_DECADE)
    return out


def lad(sim0: np.ndarray, slopes: np.ndarray, theta0: np.ndarray, real: np.ndarray, free: np.ndarray,
        fixed: np.ndarray, prior: np.ndarray | None = None, pull: float = 0.0,
        unit: np.ndarray | None = None) -> np.ndarray:
    """Terms minimising ``sum |sim0 + slopes (theta - theta0) - real| / real (+ pull * sum |theta - prior| / scale)``.

    ``free`` marks the terms to fit (>= 0); the others take ``fixed``.  The pull to
    ``prior`` counts as ``pull`` observations' worth of relative error per prior value
    (or per ``unit``, when the prior is smaller).  A linear programme.
    """
    free_idx = np.flatnonzero(free)
    m = len(free_idx)
    if m == 0:
        return np.where(free, 0.0, fixed)
    if m == 1:
        a, target = _relative_columns(sim0, slopes, theta0, real, free, fixed)
        theta = np.where(free, 0.0, fixed).astype(float)
        theta[free_idx[0]] = _one_term_lad(a[:, 0], target, prior, pull, unit, free_idx[0])
        return theta
    cost, a_eq, b_eq = _lad_program(sim0, slopes, theta0, real, free, fixed, prior, pull, unit)
    lp = linprog(cost, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    return _lad_solution(lp.x[:m] if lp.success else None, theta0, free, fixed)


def lad_folds(sim0: np.ndarray, slopes: np.ndarray, theta0: np.ndarray, real: np.ndarray, free: np.ndarray,
              fixed: np.ndarray, trains: Sequence[np.ndarray], prior: np.ndarray | None = None, pull: float = 0.0,
              unit: np.ndarray | None = None) -> list[np.ndarray]:
    """:func:`lad` on each training subset ``trains`` (boolean masks of the rows), the same answers, as one
    linear programme when two or more terms are free.

    Why: the inner cross-validation (:func:`select_terms`) solves one small programme per candidate and fold -
    epigenomics' command about 1,100, a fifth of its CPU, of which HiGHS' own solve was a sixth and scipy's
    set-up of each call the rest.  The folds' programmes share no variable, so their sum is minimised by each
    one's minimum: solved side by side (block-diagonal), one set-up serves them all.  Where a fold's minimum is
    not unique the joint solve may return another of its minima, so when some fold has no more rows than free
    terms (underdetermined: many exact fits) each fold is solved alone, as when the joint programme fails.
    Measured on every ``select_terms`` call of the shipped corpus's commands (nine applications): the same
    chosen candidate and scores within 1e-9 of solving each fold alone; epigenomics' programmes 1,132 -> 313."""
    def each_alone() -> list[np.ndarray]:
        return [lad(sim0[t], slopes[t], theta0, real[t], free, fixed, prior, pull, unit) for t in trains]

    m = int(np.count_nonzero(free))
    if m < 2 or len(trains) < 2 or min(int(np.count_nonzero(t)) for t in trains) <= m:
        return each_alone()
    blocks = [_lad_program(sim0[t], slopes[t], theta0, real[t], free, fixed, prior, pull, unit) for t in trains]
    lp = linprog(np.concatenate([c for c, _, _ in blocks]), A_eq=block_diag(*(a for _, a, _ in blocks)),
                 b_eq=np.concatenate([b for _, _, b in blocks]), bounds=(0, None), method="highs")
    if not lp.success:
        return each_alone()
    starts = np.cumsum([0] + [len(c) for c, _, _ in blocks])
    return [_lad_solution(lp.x[start:start + m], theta0, free, fixed) for start in starts[:-1]]


def _relative_columns(sim0: np.ndarray, slopes: np.ndarray, theta0: np.ndarray, real: np.ndarray, free: np.ndarray,
                      fixed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The free terms' columns and the target of :func:`lad`'s residuals, both relative to ``real``."""
    target = (real - sim0 - slopes[:, ~free] @ (fixed[~free] - theta0[~free]) + slopes[:, free] @ theta0[free]) / real
    return slopes[:, np.flatnonzero(free)] / real[:, None], target


def _lad_program(sim0: np.ndarray, slopes: np.ndarray, theta0: np.ndarray, real: np.ndarray, free: np.ndarray,
                 fixed: np.ndarray, prior: np.ndarray | None, pull: float,
                 unit: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`lad`'s linear programme (costs, equality rows, right-hand side; every variable >= 0): the free
    terms first, then each residual's negative and positive parts, then (with a pull) the prior's."""
    n = len(real)
    free_idx = np.flatnonzero(free)
    m = len(free_idx)
    a, target = _relative_columns(sim0, slopes, theta0, real, free, fixed)
    rows = [np.hstack([a, -np.eye(n), np.eye(n)])]
    b = [target]
    cost = [np.zeros(m), np.ones(2 * n)]
    if prior is not None and pull > 0:
        floor = unit[free_idx] if unit is not None else np.ones(m)
        scale = np.maximum(np.abs(prior[free_idx]), floor)
        rows = [np.hstack([r, np.zeros((r.shape[0], 2 * m))]) for r in rows]
        rows.append(np.hstack([np.eye(m) / scale[:, None], np.zeros((m, 2 * n)), -np.eye(m), np.eye(m)]))
        b.append(prior[free_idx] / scale)
        cost.append(np.full(2 * m, pull))
    return np.concatenate(cost), np.vstack(rows), np.concatenate(b)


def _lad_solution(x: np.ndarray | None, theta0: np.ndarray, free: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """The terms from a programme's free-term values (``None``: it failed, the free terms stay at ``theta0``)."""
    theta = np.where(free, 0.0, fixed).astype(float)
    free_idx = np.flatnonzero(free)
    theta[free_idx] = x if x is not None else theta0[free_idx]
    return theta


def _one_term_lad(a: np.ndarray, target: np.ndarray, prior: np.ndarray | None, pull: float,
                  unit: np.ndarray | None, j: int) -> float:
    """The one-term case of :func:`lad` in closed form: ``sum |a_i theta - t_i|`` is ``sum |a_i| |theta - t_i/a_i|``,
    so its minimum is the median of the points ``t_i / a_i`` weighted by ``|a_i|`` (the prior one more point,
    weighted ``pull / scale``), and the convex objective's minimum over ``theta >= 0`` is that clipped at 0.

    Why: a command's term selection solves over a thousand one-term programmes (a third of seismology's
    calibration in HiGHS at 1.5-3 ms each); this is microseconds.  Where the weights split exactly in half any
    point between the two middle ones is optimal: this takes the lower, a vertex as the programme's would be."""
    used = a != 0
    points, weights = target[used] / a[used], np.abs(a[used])
    if prior is not None and pull > 0:
        scale = max(abs(float(prior[j])), float(unit[j]) if unit is not None else 1.0)
        points, weights = np.append(points, prior[j]), np.append(weights, pull / scale)
    if not len(points):
        return 0.0
    order = np.argsort(points, kind="stable")
    cumulative = np.cumsum(weights[order])
    middle = int(np.searchsorted(cumulative, 0.5 * cumulative[-1]))
    return max(0.0, float(points[order][min(middle, len(points) - 1)]))


def relative_errors(predicted: np.ndarray, real: np.ndarray) -> np.ndarray:
    return np.abs(predicted - real) / real


def objective(predicted: np.ndarray, real: np.ndarray) -> float:
    """What fits minimise: the mean relative makespan error (robust to outliers, unlike squares)."""
    return float(relative_errors(predicted, real).mean())


def refine(simulate: Simulate, base: Platform, names: Sequence[str], theta: np.ndarray, real: np.ndarray,
           free: np.ndarray, prior: np.ndarray | None, pull: float, rounds: int = 2) -> tuple[np.ndarray, float]:
    """Re-linearise at ``theta`` and solve again, ``rounds`` times; the best point by simulated error.

    Only the ``free`` terms' slopes are measured: the others stay where they are, so their slopes never enter
    the solution (:func:`lad` charges them ``fixed - theta0 = 0``)."""
    best, best_err = theta, objective(simulate(platform_at(base, names, theta)), real)
    current = theta
    for _ in range(rounds):
        at = snap(current, np.flatnonzero(free))
        sim0, slopes = effects(simulate, base, names, at, np.flatnonzero(free))
        proposal = lad(sim0, slopes, at, real, free, current, prior, pull)
        err = objective(simulate(platform_at(base, names, proposal)), real)
        if err < best_err - 1e-9:
            best, best_err = proposal, err
            current = proposal
        else:
            break
    return best, best_err


def polish(simulate: Simulate, base: Platform, names: Sequence[str], theta: np.ndarray, real: np.ndarray,
           free: np.ndarray, budget: int) -> np.ndarray:
    """A short Nelder-Mead on the simulator over the free terms (``theta = start * x**2``, so terms stay >= 0)."""
    idx = np.flatnonzero(free)
    if budget <= 0 or len(idx) == 0:
        return theta
    scale = np.where(theta[idx] > 0, theta[idx], [STEP.get(names[j], DEFAULT_STEP) for j in idx])

    def at(x: np.ndarray) -> np.ndarray:
        out = theta.copy()
        out[idx] = scale * x * x
        return out

    def f(x: np.ndarray) -> float:
        return objective(simulate(platform_at(base, names, at(x))), real)

    x0 = np.sqrt(theta[idx] / scale)
    simplex = np.tile(x0, (len(idx) + 1, 1))
    for j in range(len(idx)):
        simplex[j + 1, j] = x0[j] * 0.8 if x0[j] > 0 else 0.5
    result = minimize(f, x0, method="Nelder-Mead", options={"maxfev": budget, "initial_simplex": simplex,
                                                          "xatol": 1e-3, "fatol": 1e-5})
    return at(result.x) if result.fun < f(x0) else theta


# ---------------------------------------------------------------------- term selection
#: Choose the simplest candidate whose cross-validated error is within one standard error of the best.
ONE_STANDARD_ERROR = True

@dataclass(frozen=True)
class Candidate:
    """A model to choose: which terms are fitted (the others 0), or the prior as is / scaled."""

    name: str
    free: tuple[bool, ...]
    scaled_prior: bool = False
    prior_as_is: bool = False

    @property
    def size(self) -> int:
        return 1 if self.scaled_prior else (0 if self.prior_as_is else sum(self.free))


def candidates(names: Sequence[str], prior: np.ndarray | None, held: Sequence[str] = ()) -> list[Candidate]:
    """Every non-empty subset of ``names`` but the ``held`` ones; with a prior, also the prior as is and scaled
    by one factor."""
    out = []
    free = [j for j, n in enumerate(names) if n not in held]
    for r in range(1, len(free) + 1):
        for subset in itertools.combinations(free, r):
            out.append(Candidate("+".join(names[j] for j in subset), tuple(j in subset for j in range(len(names)))))
    if prior is not None and np.any(prior > 0):
        out.append(Candidate(PRIOR_AS_IS, tuple(False for _ in names), prior_as_is=True))
        out.append(Candidate(SCALED_PRIOR, tuple(True for _ in names), scaled_prior=True))
    return out


def fit_linear(candidate: Candidate, sim0: np.ndarray, slopes: np.ndarray, theta0: np.ndarray, real: np.ndarray,
               prior: np.ndarray | None, pull: float, unit: np.ndarray | None = None) -> np.ndarray:
    """The candidate's terms fitted on the linear stand-in (measured at ``theta0``)."""
    k = slopes.shape[1]
    if candidate.prior_as_is:
        return prior.copy()
    if candidate.scaled_prior:
        # one column: the effect of scaling the whole prior
        column = slopes @ prior
        shifted = sim0 - slopes @ theta0
        scale = lad(shifted, column[:, None], np.zeros(1), real, np.array([True]), np.zeros(1))[0]
        return prior * scale
    free = np.array(candidate.free)
    return lad(sim0, slopes, theta0, real, free, np.zeros(k), prior, pull if prior is not None else 0.0, unit)


def select_terms(sim0: np.ndarray, slopes: np.ndarray, theta0: np.ndarray, real: np.ndarray, folds: Sequence[np.ndarray],
                 options: Sequence[Candidate], prior: np.ndarray | None, pull: float,
                 unit: np.ndarray | None = None) -> tuple[Candidate, dict[str, float]]:
    """The candidate with the lowest inner cross-validated error (mean relative; fewer terms win ties)."""
    scores: dict[str, float] = {}
    spread: dict[str, float] = {}
    trains = []
    for held in folds:
        train = np.ones(len(real), bool)
        train[held] = False
        trains.append(train)
    for c in options:
        errors = []
        if c.scaled_prior or c.prior_as_is:
            thetas = [fit_linear(c, sim0[t], slopes[t], theta0, real[t], prior, pull, unit) for t in trains]
        else:   # the folds' programmes solved as one (:func:`lad_folds`), as fit_linear would solve each
            thetas = lad_folds(sim0, slopes, theta0, real, np.array(c.free), np.zeros(slopes.shape[1]), trains,
                               prior, pull if prior is not None else 0.0, unit)
        for held, theta in zip(folds, thetas):
            predicted = sim0[held] + slopes[held] @ (theta - theta0)
            errors.extend(relative_errors(predicted, real[held]).tolist())
        scores[c.name] = float(np.mean(errors))
        spread[c.name] = float(np.std(errors) / np.sqrt(len(errors))) if len(errors) > 1 else 0.0
    best = min(options, key=lambda c: (round(scores[c.name], 4), c.size))
    if ONE_STANDARD_ERROR:   # the simplest candidate within one standard error of the best (Breiman's rule)
        bar = scores[best.name] + spread[best.name]
        best = min((c for c in options if scores[c.name] <= bar), key=lambda c: (c.size, scores[c.name]))
    return best, scores


#: At most this many cross-validation folds (more sizes are dealt round-robin into this many): time, not accuracy.
MAX_FOLDS = 8


def folds_by(keys: Sequence[Any], max_folds: int = MAX_FOLDS) -> list[np.ndarray]:
    """Leave-one-key-out folds (keys: each observation's size), at most ``max_folds`` (keys dealt round-robin);
    one fold per execution when all share one key."""
    keys = list(keys)
    distinct = sorted(set(keys), key=str)
    if len(distinct) < 2:
        distinct, keys = list(range(len(keys))), list(range(len(keys)))
        if len(keys) < 2:
            return []
    fold_of = {k: j % max_folds for j, k in enumerate(distinct)}
    return [np.array([i for i, k in enumerate(keys) if fold_of[k] == f]) for f in range(min(max_folds, len(distinct)))]


# ---------------------------------------------------------------------- the whole fit
#: Weight of the pull toward the prior, in observations' worth of relative error per prior value.
PRIOR_PULL = 0.05
#: The prior is used (start, pull, and as a model of its own, as is or scaled) only when the executions have
#: fewer distinct sizes than this; with more, the data decide alone (measured: on WfInstances a prior from
#: other applications made held-out predictions worse once three sizes were known).
PRIOR_BELOW_SIZES = 3
#: Executions a machine family needs before it gets its own platform (else it uses the application's).
FAMILY_MIN_EXECUTIONS = 2


@dataclass
class Fitted:
    """What :func:`fit_platform` chose: the platform, the kept terms, and the platforms per machine family."""

    platform: Platform
    kept: tuple[str, ...]
    model: str
    scores: dict[str, float]
    families: dict[str, Platform]
    #: the task slots per recorded core the executions were replayed with (:mod:`experiments.calibration.slots`),
    #: and each candidate count's training error when it was chosen
    slots_per_core: float = 1.0
    slots_errors: dict[float, float] | None = None
    #: the four-term formula (:class:`~experiments.calibration.baselines.AnalyticBaseline`) when the inner
    #: cross-validation preferred it to the simulator (:mod:`experiments.calibration.model_choice`), else None;
    #: and both models' cross-validated errors
    formula: Any = None
    model_scores: dict[str, float] | None = None
    #: per observation, the kept candidate's prediction when its inner fold was held out - fitted on the other
    #: folds and *simulated* (not read off the linear stand-in), so the model choice compares the simulator and
    #: the formula on the same held-out predictions; NaN for an observation no fold held out (None: no folds)
    cv_predicted: np.ndarray | None = None

    def platform_for(self, family: str) -> Platform:
        """The family's platform, else (a family never seen) the application's."""
        return self.families.get(family, self.platform)


def _simulator(observations: Sequence[Any]) -> Simulate:
    return lambda platform: np.array([o.simulate(platform) for o in observations])


def fit_platform(observations: Sequence[Any], base: Platform, names: Sequence[str], *, select: bool = True,
                 prior: Platform | None = None, max_evaluations: int | None = None, families: bool = True,
                 sizes: Sequence[Any] | None = None, held: Sequence[str] = ()) -> Fitted:
    """Fit ``names`` of ``base`` to the observations' real makespans; see the module docstring.

    ``select``: choose the terms by inner cross-validation over ``sizes`` (leave one
    size out; one execution out when all sizes differ) - else fit them all.
    ``prior``: the platform to start from and pull toward (a cross-application prior).
    ``families``: fit one factor on the overhead terms per machine family
    (``observation.family``) with at least :data:`FAMILY_MIN_EXECUTIONS` executions.
    ``held``: terms of ``names`` these observations cannot identify (kept at their start
    value, never a candidate; e.g. a machine's starter when every run used one machine).
    ``max_evaluations``: simulations of every observation for a final Nelder-Mead
    polish (default 0: the re-linearised fit is already at the simulator's optimum
    within the noise, see benchmarks/results/calibration.json).
    """
    real = np.array([o.real_makespan_s for o in observations], float)
    simulate = _simulator(observations)
    keys = list(sizes) if sizes is not None else [o.name for o in observations]
    few = len(set(keys)) < PRIOR_BELOW_SIZES
    theta_prior = coordinates(prior, names) if prior is not None and few else None
    start = theta_prior if theta_prior is not None else coordinates(base, names)
    unit = np.array([STEP.get(n, DEFAULT_STEP) for n in names])
    every = np.array([n not in held for n in names], bool)
    # 1. all terms, linearised at the start: the operating point
    sim0, slopes = effects(simulate, base, names, start)
    theta_all = lad(sim0, slopes, start, real, every, start, theta_prior, PRIOR_PULL, unit)
    folds = folds_by(keys) if select else []
    options = candidates(names, theta_prior, held) if select else []
    if not options:   # the terms asked for, all of them: refined, then polished on the simulator
        chosen, scores = Candidate("+".join(names), tuple(every)), {}
        theta, _ = refine(simulate, base, names, theta_all, real, every, None, 0.0, rounds=2)
        max_evaluations = max_evaluations if max_evaluations is not None else 60 * len(names) + 40
    else:
        # 2. the candidates judged on the linear stand-in measured at that point
        point = snap(theta_all)
        sim1, slopes1 = effects(simulate, base, names, point)
        if folds:
            chosen, scores = select_terms(sim1, slopes1, point, real, folds, options, theta_prior, PRIOR_PULL, unit)
        else:   # one execution: nothing to cross-validate; the prior scaled (or all terms)
            chosen, scores = next((c for c in options if c.scaled_prior), options[-1]), {}
        theta = fit_linear(chosen, sim1, slopes1, point, real, theta_prior, PRIOR_PULL, unit)
        if chosen.scaled_prior:
            theta = _refine_scale(simulate, base, names, theta_prior, theta, real)
        elif not chosen.prior_as_is:
            theta, _ = refine(simulate, base, names, theta, real, np.array(chosen.free), theta_prior, PRIOR_PULL,
                              rounds=1)
    if max_evaluations and not chosen.prior_as_is:
        theta = polish(simulate, base, names, theta, real, np.array(chosen.free), max_evaluations)
    platform = platform_at(base, names, theta)
    kept = tuple(n for n, f in zip(names, chosen.free) if f) if not chosen.scaled_prior else (SCALED_PRIOR,)
    by_family = _family_platforms(observations, base, names, platform, keys, max_evaluations, held) if families else {}
    cv = (held_out_simulated(observations, base, names, chosen, folds, theta, real, theta_prior, unit)
          if folds and options else None)
    return Fitted(platform, kept, chosen.name, scores, by_family, cv_predicted=cv)


def held_out_simulated(observations: Sequence[Any], base: Platform, names: Sequence[str], chosen: Candidate,
                       folds: Sequence[np.ndarray], theta: np.ndarray, real: np.ndarray,
                       theta_prior: np.ndarray | None, unit: np.ndarray) -> np.ndarray:
    """Each observation simulated on the ``chosen`` candidate's terms fitted without its fold (NaN if in none).

    Each fold's terms are fitted on the linear stand-in measured at (the grid point of :func:`snap` nearest) the
    final ``theta``
    (slopes of the candidate's free terms only: where the whole fit is exact, so is every
    fold's), and the held-out makespans are then simulated: a serial term's queue can
    saturate beyond the stand-in's reach, and the model choice must see that.  Costs the
    free terms' slopes plus one simulation per observation."""
    simulate = _simulator(observations)
    which = range(len(names)) if chosen.scaled_prior else [j for j, f in enumerate(chosen.free) if f]
    point = snap(theta, which)
    sim0, slopes = effects(simulate, base, names, point, which)
    out = np.full(len(real), np.nan)
    for held in folds:
        train = np.ones(len(real), bool)
        train[held] = False
        if not train.any():
            continue
        fold_theta = fit_linear(chosen, sim0[train], slopes[train], point, real[train], theta_prior, PRIOR_PULL, unit)
        out[held] = _simulator([observations[i] for i in held])(platform_at(base, names, fold_theta))
    return out


def _refine_scale(simulate: Simulate, base: Platform, names: Sequence[str], prior: np.ndarray, theta: np.ndarray,
                  real: np.ndarray, rounds: int = 3) -> np.ndarray:
    """The prior's factor re-solved on secants measured on the simulator (``theta = prior * factor``)."""
    top = float(np.max(prior))
    factor = float(np.max(theta)) / top if top > 0 else 0.0
    best, best_err = factor, objective(simulate(platform_at(base, names, prior * factor)), real)
    for _ in range(rounds):
        step = max(0.25 * factor, 0.05)
        here = simulate(platform_at(base, names, prior * factor))
        slope = (simulate(platform_at(base, names, prior * (factor + step))) - here) / step
        factor = float(lad(here - slope * factor, slope[:, None], np.zeros(1), real, np.array([True]), np.zeros(1))[0])
        err = objective(simulate(platform_at(base, names, prior * factor)), real)
        if err >= best_err - 1e-9:
            break
        best, best_err = factor, err
    return prior * best


def _family_platforms(observations: Sequence[Any], base: Platform, names: Sequence[str], platform: Platform,
                      keys: Sequence[Any], max_evaluations: int | None, held: Sequence[str] = ()) -> dict[str, Platform]:
    """A platform per machine family with enough executions, when at least two families have enough.

    With one such family its platform would be a second fit of nearly the same
    executions as the application's (seismology: nine of ten, and half the command's
    time), and every other family falls back to the application's platform anyway.

    Each is :func:`fit_platform` on the family's executions with the application's
    platform as the prior: with fewer than :data:`PRIOR_BELOW_SIZES` sizes, that
    platform as is, scaled, or partly refitted (by inner cross-validation); with more,
    a fit of its own.
    """
    family_of = [getattr(o, "family", "") for o in observations]
    out: dict[str, Platform] = {}
    enough = [f for f in sorted(set(family_of)) if family_of.count(f) >= FAMILY_MIN_EXECUTIONS]
    if len(enough) < 2:
        return out
    for family in enough:
        members = [i for i, f in enumerate(family_of) if f == family]
        fitted = fit_platform([observations[i] for i in members], base, names, select=True, prior=platform,
                              max_evaluations=max_evaluations, families=False, sizes=[keys[i] for i in members],
                              held=held)
        out[family] = fitted.platform
    return out
