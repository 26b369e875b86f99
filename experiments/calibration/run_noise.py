"""Run-to-run spread: how much whole runs of one plan really vary, against what the Monte Carlo draws.

The Monte Carlo draws every task's execution time from the cost model on its own,
so its replications of one plan spread as far as those task ratios make them.
Real runs of the same plan can spread wider or narrower:

* **wider** - the host is faster or slower *for a whole run* (other users' jobs
  come and go, the CPU clock, the page cache); a percentile SLA read off too narrow
  a distribution is met less often than it promises (the fidelity benchmark once
  saw 74 of 100 real runs under the forecast p90).  The platform's ``run_noise`` is
  that missing spread: the log standard deviation of one replication's speed factor
  (:func:`simulator.draws.draw`).
* **narrower** - the cost model's ratios are the spread of a *kind*'s measurements,
  which mixes run-to-run noise with steady differences between the kind's tasks,
  and were measured in a profile phase on a host that may have been busier; every
  task drawing its own ratio then spreads the replications too wide (the benchmark
  saw all 100 real runs under the forecast p90).  The platform's ``noise_scale``
  narrows every sampled ratio towards its mean.

Both are fitted here from repeated real runs of the *same plan*, so differences
between plans (a model's bias on one workflow) are not mistaken for noise:

1. each run's log forecast ratio ``log(real / forecast)``, the forecast simulated
   deterministically from its plan on the fitted platform (its own warm pool);
2. the pooled within-plan variance of those ratios (each plan's own mean removed):
   what the runs really vary;
3. what the Monte Carlo varies: the variance of log makespan over ``replications``
   sampled runs of each plan (no run noise, the measured task spread);
4. when (2) exceeds (3), ``run_noise = sqrt((2) - (3))`` and ``noise_scale = 1``;
   otherwise ``run_noise = 0`` and ``noise_scale`` is the factor whose sampled runs
   vary as (2) does (a variance grows about as its square: two secant steps on the
   same seeds);
5. ``run_center``: the median real run over the median sampled run (each relative
   to its deterministic forecast), pooled over the plans weighted by their runs -
   so the Monte Carlo's p50 is the typical real run, not the least-squares one.

With no plan run twice there is nothing to fit and the platform's values stay.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from simulator.platform import Platform
from simulator.simulate import run_once

__all__ = ["RunNoiseFit", "fit_run_noise", "plan_key"]

#: Sampled runs for the Monte Carlo's own spread, shared among the plans (at least :data:`MIN_PER_PLAN` each):
#: a 500-task plan on a shared host takes a second or more per sampled run.
REPLICATIONS = 60
MIN_PER_PLAN = 8


@dataclass(frozen=True)
class RunNoiseFit:
    """The fitted ``run_noise`` and ``noise_scale`` and the spreads they come from (log standard deviations)."""

    run_noise: float
    observed_sd: float      # pooled within-plan sd of log(real / forecast)
    simulated_sd: float     # pooled sd of log makespan over sampled runs (no run noise, noise_scale 1)
    plans: int              # plans that ran at least twice
    runs: int               # runs of those plans
    noise_scale: float = 1.0  # sampled ratios' spread kept (below 1 when the real runs vary less)
    run_center: float = 1.0   # median real run over median sampled run, pooled over the plans

    def summary(self) -> dict[str, Any]:
        return asdict(self)


def plan_key(run: Any) -> str:
    """Which runs are "the same plan": the workflow's structure and the plan's assignment, not its object."""
    plan = run.plan
    text = json.dumps([plan.structure_hash, plan.assignment.to_dict()], sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()


def fit_run_noise(compiled: Sequence[Any], platform: Platform, *, replications: int = REPLICATIONS,
                  seed: int = 0) -> RunNoiseFit | None:
    """Fit ``run_noise`` and ``noise_scale`` on compiled observed runs
    (:class:`~experiments.calibration.trace_calibration._Compiled`).

    ``platform`` is the fitted one (its ``run_noise``, ``noise_scale`` and
    ``run_center`` are ignored); ``replications`` sampled runs are shared among the repeated plans.
    None when no plan ran twice.
    """
    groups: dict[str, list[Any]] = {}
    for item in compiled:
        groups.setdefault(plan_key(item.run), []).append(item)
    repeated = [members for members in groups.values() if len(members) >= 2]
    if not repeated:
        return None
    quiet = platform.with_(run_noise=0.0, noise_scale=1.0, run_center=1.0)
    per_plan = max(MIN_PER_PLAN, int(replications) // len(repeated))
    ratios = [np.array([_log_forecast_ratio(item, quiet) for item in members]) for members in repeated]
    degrees = sum(len(members) - 1 for members in repeated)
    observed_var = sum(float(np.sum((r - r.mean()) ** 2)) for r in ratios) / degrees
    sampled: dict[float, list[np.ndarray]] = {}     # per scale: each plan's sampled log(makespan / forecast)

    def simulated_var(scale: float) -> float:
        sampled[scale] = [_sampled_log_ratios(m[0], quiet.with_(noise_scale=scale), per_plan, seed) for m in repeated]
        return sum((len(m) - 1) * float(np.var(logs, ddof=1)) for m, logs in zip(repeated, sampled[scale])) / degrees

    full_var = simulated_var(1.0)
    run_noise, scale = math.sqrt(max(0.0, observed_var - full_var)), 1.0
    if observed_var < full_var:
        scale = _narrowing(observed_var, full_var, simulated_var)
    if scale not in sampled:
        simulated_var(scale)
    # The centre: how far the real runs' median sits from the sampled runs' median, pooled over plans (each
    # weighted by its runs).  The run factor's median-one noise leaves a median where it is.
    offsets = [float(np.median(r) - np.median(logs)) for r, logs in zip(ratios, sampled[scale])]
    center = math.exp(float(np.average(offsets, weights=[len(m) for m in repeated])))
    return RunNoiseFit(run_noise=run_noise, observed_sd=math.sqrt(observed_var), simulated_sd=math.sqrt(full_var),
                       plans=len(repeated), runs=sum(len(m) for m in repeated), noise_scale=scale, run_center=center)


def _narrowing(target: float, full: float, variance_at: Any, steps: int = 2) -> float:
    """The ``noise_scale`` in [0, 1] whose sampled variance is ``target`` (``full`` at scale 1).

    The variance of a makespan grows about as the square of its ratios' spread, so
    ``sqrt(target / full)`` is close; secant steps in that square-root form correct
    for the spread the scale does not reach (a max over branches, fixed overheads).
    """
    scale, at = 1.0, full
    for _ in range(steps):
        if at <= 0:
            break
        scale = min(1.0, max(0.0, scale * math.sqrt(target / at)))
        if scale == 0.0:
            break
        at = variance_at(scale)
    return scale


def _log_forecast_ratio(item: Any, platform: Platform) -> float:
    forecast = run_once(item.model, item.platform(platform), warm_pool=item.run.warm_pool, record=False).makespan_s
    return math.log(item.real_makespan / forecast) if forecast > 0 else 0.0


def _sampled_log_ratios(item: Any, platform: Platform, replications: int, seed: int) -> np.ndarray:
    """``log(sampled makespan / deterministic forecast)`` of ``replications`` sampled runs of ``item``'s plan."""
    here = item.platform(platform)
    forecast = run_once(item.model, here, warm_pool=item.run.warm_pool, record=False).makespan_s
    spans = [run_once(item.model, here, sample=True, seed=seed + k, record=False,
                      warm_pool=item.run.warm_pool).makespan_s for k in range(max(2, int(replications)))]
    return np.log(np.maximum(np.asarray(spans, dtype=float), 1e-12) / max(forecast, 1e-12))
