"""Calibration from planlab's own executor runs: fit the host and start-up terms of the platform.

A prediction of a real run of planlab's executor is a forecast: the plan, the
cost model's execution estimates and a :class:`~simulator.platform.Platform`,
simulated before the run.  What the cost model cannot know is the world around
the tasks - how long a worker process takes to start, cold or warm, how the
launcher serialises cold starts, what each task costs its worker beyond its own
execution, and that everything shares the host's cores.  This module fits those
terms on real runs so that the forecasts of *other* runs match:

* each :class:`ObservedRun` is simulated from its plan and the cost model's
  estimates (never its own measured task times, which a forecast does not have),
  on the shared host (``host_cores``), from the warm pool it started with;
* the residuals are every task's completion-time error and each run's makespan
  error, relative to the real makespan, so the fit sees where in the run time
  goes, not one number per run;
* the terms (:data:`HOST_TERMS` by default) are fitted by bounded, robust
  (soft-L1) trust-region least squares from the base platform's values;
* then the run-to-run noise (``run_noise``) from plans that ran more than once
  (:mod:`experiments.calibration.run_noise`), so a Monte Carlo's percentiles spread
  as wide as real runs do.

Cost: one simulation per run per residual evaluation (``max_evaluations``, default
120, each with a finite-difference step per term).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.optimize import least_squares, minimize

from experiments.calibration.run_noise import RunNoiseFit, fit_run_noise
from planning.errors import ConfigError
from simulator.platform import Platform
from simulator.simulate import compile_plan, run_once

__all__ = ["HOST_TERMS", "ObservedRun", "HostCalibration", "calibrate_on_runs", "forecast_errors",
           "processes_started", "warm_pool_of"]

#: The terms fitted by default: start-ups (cold, warm), the launcher's serial handling and fork, the spec load,
#: and the CPU other processes take on the host (the client, the server, other users).  (A per-task overhead
#: fitted on runs of one task per worker absorbs the start-up and explodes on plans that chain many tasks on
#: one worker; the executor's own is ~0.1-0.3 ms, FACTS.md: fit it only on runs that tell it apart.)
HOST_TERMS = ("cold_start_s", "warm_start_s", "launch_s", "process_start_s", "spec_load_s", "spec_load_s_per_task",
              "host_background")


def warm_pool_of(trace: Any) -> dict[str, int]:
    """Idle processes per profile a real run must have started with (a lower bound read off its trace).

    A warm-started logical worker that was ready before any worker of its profile had
    stopped in this run was handed a process left by an earlier run.  (Its request
    time is no proof: requests wait at the launcher, which reuses processes freed
    meanwhile.)
    """
    workers = trace.workers
    pool: dict[str, int] = {}
    for profile, rows in workers.groupby("profile"):
        first_stop = float(rows["stop_s"].min())
        warm_early = rows[(~rows["cold_start"].astype(bool)) & (rows["ready_s"] < first_stop)]
        if len(warm_early):
            pool[str(profile)] = int(len(warm_early))
    return pool


def processes_started(trace: Any) -> dict[str, int]:
    """Per profile, the worker processes a run started (its cold starts): the executor keeps them all warm after.

    (Not the logical workers alive at once: the launcher hands a burst of short
    workers to the few processes its first ones free, so 400 workers may run on 3.)
    """
    workers = trace.workers
    cold = workers[workers["cold_start"].astype(bool)]
    return {str(profile): int(count) for profile, count in cold.groupby("profile").size().items()}


@dataclass
class ObservedRun:
    """One real run: what was planned, the cost model it was planned with, and what happened."""

    workflow: Any
    plan: Any
    cost_model: Any
    trace: Any
    #: idle processes per profile when it started (default: read off the trace, :func:`warm_pool_of`)
    warm_pool: Mapping[str, int] | None = None
    name: str = ""
    #: cores' worth of other work on the host during the run, when known; None leaves the platform's
    #: ``host_background`` (which a fit may then fit)
    background: float | None = None

    def __post_init__(self) -> None:
        if self.warm_pool is None:
            self.warm_pool = warm_pool_of(self.trace)
        if not self.name:
            self.name = str(self.trace.meta.get("run_id", "run"))
        if not (self.trace.makespan_s > 0 and math.isfinite(self.trace.makespan_s)):
            raise ConfigError(f"run {self.name!r} has no positive makespan ({self.trace.makespan_s!r})",
                              "calibrate on completed real runs")


class _Compiled:
    """A run compiled once for many simulations, with its real completion times in topological order."""

    def __init__(self, run: ObservedRun) -> None:
        self.run = run
        self.model = compile_plan(run.workflow, run.plan, run.cost_model)
        real = run.trace.tasks.drop_duplicates("task_id", keep="last").set_index("task_id")["done_s"]
        self.real_done = real.reindex(self.model.ids).to_numpy(dtype=float)
        self.real_makespan = float(run.trace.makespan_s)

    def platform(self, platform: Platform) -> Platform:
        """``platform`` with this run's background load, when it is known."""
        if self.run.background is None:
            return platform
        return platform.with_(host_background=float(self.run.background))

    def residuals(self, platform: Platform) -> np.ndarray:
        """Every task's completion error and the makespan error, relative to the real makespan.

        Weighted so that every run counts alike whatever its size (the task errors of a
        run sum, squared, to their mean square) and its makespan - the number a forecast
        is judged by - counts as much as all its tasks together.
        """
        result = run_once(self.model, self.platform(platform), warm_pool=self.run.warm_pool)
        done = np.asarray(result.tasks["done_s"], dtype=float)
        ok = np.isfinite(done) & np.isfinite(self.real_done)
        tasks = (done[ok] - self.real_done[ok]) / self.real_makespan / math.sqrt(max(int(ok.sum()), 1))
        return np.append(tasks, (result.makespan_s - self.real_makespan) / self.real_makespan)

    def errors(self, platform: Platform) -> tuple[float, float]:
        """(signed relative makespan error, mean relative task completion error) on ``platform``."""
        residuals = self.residuals(platform)
        tasks = residuals[:-1] * math.sqrt(max(len(residuals) - 1, 1))
        return float(residuals[-1]), (float(np.mean(np.abs(tasks))) if len(tasks) else 0.0)


@dataclass
class HostCalibration:
    """The fitted platform, its errors on the runs it was fitted on, and on held-out runs when given."""

    platform: Platform
    terms: tuple[str, ...]
    error_before: float
    error_after: float
    evaluations: int
    per_run: list[dict[str, Any]] = field(default_factory=list)
    #: the run-to-run noise fit (None: no plan ran twice, or not asked for)
    noise: RunNoiseFit | None = None

    def summary(self) -> dict[str, Any]:
        return {"terms": {name: getattr(self.platform, name) for name in self.terms},
                "host_cores": self.platform.host_cores, "median_error_before": self.error_before,
                "median_error_after": self.error_after, "evaluations": self.evaluations, "runs": len(self.per_run),
                "run_noise": None if self.noise is None else self.noise.summary()}


def forecast_errors(runs: Sequence[ObservedRun], platform: Platform) -> list[float]:
    """Signed relative makespan error of each run's forecast on ``platform``."""
    return [_Compiled(run).errors(platform)[0] for run in runs]


def calibrate_on_runs(runs: Sequence[ObservedRun], base: Platform | None = None, *,
                      terms: Sequence[str] = HOST_TERMS, max_evaluations: int = 120,
                      run_noise: bool = True) -> HostCalibration:
    """Fit ``terms`` of ``base`` (default: this machine as the host) so forecasts of ``runs`` match them.

    ``run_noise``: also fit the platform's run-to-run noise when some plan ran more
    than once (:func:`experiments.calibration.run_noise.fit_run_noise`); otherwise
    the base's value stays.
    """
    if not runs:
        raise ConfigError("nothing to calibrate on", "give at least one real run (planlab execute --save-run DIR)")
    unknown = [t for t in terms if t not in Platform.__dataclass_fields__]
    if unknown:
        raise ConfigError(f"cannot fit platform term {unknown[0]!r}", f"fit some of {', '.join(HOST_TERMS)}")
    base = base if base is not None else Platform.for_local_host()
    if not base.shared_host:
        base = base.with_(host_cores=Platform.for_local_host().host_cores)
    compiled = [_Compiled(run) for run in runs]

    # Each term in its own unit: seconds terms around their start (at least 10 ms), cores around one core.
    scale = np.array([1.0 if t in _CORE_TERMS else max(getattr(base, t), 0.01) for t in terms])

    def platform_at(u: np.ndarray) -> Platform:
        return base.with_(**{t: max(float(v), 0.0) for t, v in zip(terms, u * scale)})

    def residuals(u: np.ndarray) -> np.ndarray:
        return np.concatenate([c.residuals(platform_at(u)) for c in compiled])

    before = [c.errors(base)[0] for c in compiled]
    # Completion times are piecewise linear in the terms, so a trust-region least-squares fit on every task's
    # residual converges in a few dozen simulations where a simplex on one summed error stalls on ridges.
    # soft_l1 keeps one run's outliers (a hiccup of the shared host) from pulling every term.  The fit is
    # started from the base and from a few other points (more background load, slower start-ups), since a
    # kinked objective has local minima; the best end wins.
    best, evaluations = None, 0
    for start in _starts(terms, base, scale):
        result = least_squares(residuals, start, bounds=(0.0, np.inf), method="trf", loss="soft_l1",
                               f_scale=0.05, diff_step=1e-2, max_nfev=max(1, int(max_evaluations) // 3))
        evaluations += int(result.nfev) * (len(terms) + 1)
        if best is None or result.cost < best.cost:
            best = result
    # The trust region stops where the kinks make every finite-difference step look flat; a simplex around
    # its end, on the same robust cost, gets over such ridges.
    polished = minimize(lambda u: _robust_cost(residuals(np.maximum(u, 0.0))), best.x, method="Nelder-Mead",
                        options={"maxfev": max(1, int(max_evaluations) // 3), "xatol": 1e-4, "fatol": 1e-9,
                                 "initial_simplex": _around(best.x)})
    evaluations += int(polished.nfev)
    x = np.maximum(polished.x, 0.0) if polished.fun < best.cost else best.x
    fitted = platform_at(x)
    noise = fit_run_noise(compiled, fitted) if run_noise else None
    if noise is not None:
        fitted = fitted.with_(run_noise=noise.run_noise, noise_scale=noise.noise_scale,
                               run_center=noise.run_center)
    after = [c.errors(fitted) for c in compiled]
    per_run = [{"run": c.run.name, "real_makespan_s": c.real_makespan, "error_before": b, "error_after": a,
                "task_error_after": t, "warm_pool": dict(c.run.warm_pool or {})}
               for c, b, (a, t) in zip(compiled, before, after)]
    return HostCalibration(fitted, tuple(terms), float(np.median(np.abs(before))),
                           float(np.median(np.abs([a for a, _ in after]))), evaluations, per_run, noise)


#: Terms measured in cores (the rest are seconds).
_CORE_TERMS = frozenset({"host_background", "host_cores", "task_parallelism"})


def _starts(terms: Sequence[str], base: Platform, scale: np.ndarray) -> list[np.ndarray]:
    """Starting points of the fit, in scaled units: the base; start-ups three times slower; a busy host."""
    start = np.array([getattr(base, t) for t in terms]) / scale
    slower = np.where([t in _CORE_TERMS for t in terms], start, np.maximum(start, 1.0) * 3.0)
    busy = np.where([t == "host_background" for t in terms], base.host_cores * 2.0, start)
    points = [start, slower]
    if "host_background" in terms:
        points.append(busy)
    return points


def _robust_cost(residuals: np.ndarray, scale: float = 0.05) -> float:
    """least_squares' soft_l1 cost of ``residuals`` at ``f_scale = scale`` (so the two fits compare)."""
    z = (residuals / scale) ** 2
    return float(0.5 * scale ** 2 * np.sum(2.0 * (np.sqrt(1.0 + z) - 1.0)))


def _around(u: np.ndarray) -> np.ndarray:
    """A simplex around ``u``: each coordinate moved by a third (or by 0.3 of its unit when near zero)."""
    points = [u]
    for k in range(len(u)):
        point = u.copy()
        point[k] = u[k] * 1.3 if u[k] > 0.1 else u[k] + 0.3
        points.append(point)
    return np.array(points)
