"""Run-to-run noise: how much a whole run's speed varies beyond its tasks' own noise.

The Monte Carlo draws every task's execution time from the cost model on its own,
so its replications of one plan spread only as far as independent task noise
averages out - on a run of a dozen tasks, a few percent.  Real runs of the same
plan spread about twice as wide: the host is faster or slower *for a whole run*
(other users' jobs come and go, the CPU clock, the page cache).  A percentile SLA
read off too narrow a distribution is met less often than it promises (the
fidelity benchmark saw 74 of 100 real runs under the forecast p90).

The platform's ``run_noise`` is that missing spread: the log standard deviation of
one replication's speed factor (:func:`simulator.draws.draw`).  It is fitted here
from repeated real runs of the *same plan*, so differences between plans (a
model's bias on one workflow) are not mistaken for noise:

1. each run's log forecast ratio ``log(real / forecast)``, the forecast simulated
   deterministically from its plan on the fitted platform (its own warm pool);
2. the pooled within-plan variance of those ratios (each plan's own mean removed):
   what the runs really vary;
3. minus what the Monte Carlo already varies: the variance of log makespan over
   ``replications`` sampled runs of each plan without run noise;
4. ``run_noise = sqrt(max(0, 2 - 3))``.

With no plan run twice there is nothing to fit and the platform's value stays.
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
    """The fitted ``run_noise`` and the two spreads it comes from (log standard deviations)."""

    run_noise: float
    observed_sd: float      # pooled within-plan sd of log(real / forecast)
    simulated_sd: float     # pooled sd of log makespan over sampled runs without run noise
    plans: int              # plans that ran at least twice
    runs: int               # runs of those plans

    def summary(self) -> dict[str, Any]:
        return asdict(self)


def plan_key(run: Any) -> str:
    """Which runs are "the same plan": the workflow's structure and the plan's assignment, not its object."""
    plan = run.plan
    text = json.dumps([plan.structure_hash, plan.assignment.to_dict()], sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()


def fit_run_noise(compiled: Sequence[Any], platform: Platform, *, replications: int = REPLICATIONS,
                  seed: int = 0) -> RunNoiseFit | None:
    """Fit ``run_noise`` on compiled observed runs (:class:`~experiments.calibration.trace_calibration._Compiled`).

    ``platform`` is the fitted one (its ``run_noise`` is ignored); ``replications``
    sampled runs are shared among the repeated plans.  None when no plan ran twice.
    """
    groups: dict[str, list[Any]] = {}
    for item in compiled:
        groups.setdefault(plan_key(item.run), []).append(item)
    repeated = [members for members in groups.values() if len(members) >= 2]
    if not repeated:
        return None
    quiet = platform.with_(run_noise=0.0)
    per_plan = max(MIN_PER_PLAN, int(replications) // len(repeated))
    observed_ss = simulated_ss = 0.0
    degrees = 0
    for members in repeated:
        ratios = np.array([_log_forecast_ratio(item, quiet) for item in members])
        observed_ss += float(np.sum((ratios - ratios.mean()) ** 2))
        degrees += len(members) - 1
        simulated_ss += (len(members) - 1) * _simulated_log_variance(members[0], quiet, per_plan, seed)
    observed_var, simulated_var = observed_ss / degrees, simulated_ss / degrees
    return RunNoiseFit(run_noise=math.sqrt(max(0.0, observed_var - simulated_var)),
                       observed_sd=math.sqrt(observed_var), simulated_sd=math.sqrt(simulated_var),
                       plans=len(repeated), runs=sum(len(m) for m in repeated))


def _log_forecast_ratio(item: Any, platform: Platform) -> float:
    forecast = run_once(item.model, item.platform(platform), warm_pool=item.run.warm_pool, record=False).makespan_s
    return math.log(item.real_makespan / forecast) if forecast > 0 else 0.0


def _simulated_log_variance(item: Any, platform: Platform, replications: int, seed: int) -> float:
    spans = [run_once(item.model, item.platform(platform), sample=True, seed=seed + k, record=False,
                      warm_pool=item.run.warm_pool).makespan_s for k in range(max(2, int(replications)))]
    logs = np.log(np.maximum(np.asarray(spans, dtype=float), 1e-12))
    return float(np.var(logs, ddof=1))
