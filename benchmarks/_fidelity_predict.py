"""The fidelity benchmark's calibration and prediction of one cell (used by ``bench_fidelity.py``).

``platform_for`` turns a workflow's calibration runs into the platform its forecasts use
(``--calibration none | host-defaults | host``); ``predict`` simulates a plan once and by Monte
Carlo; ``evaluate_cell`` compares a prediction with the forecast half of the cell's real runs.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

import _fidelity as fid
from _fidelity_runs import Cell, RealRun
from executor import ExecutorSettings
from planning.costs.cost_model import CostModel
from planning.errors import ConfigError
from planning.sla import SLA
from planning.trace import Trace
from planning.workflow import Workflow
from simulator import Platform, monte_carlo, simulate

#: The warm pool every real run starts with (``_fidelity_runs.drain_warm_pool``), given to every prediction.
WARM_POOL: dict[str, int] = {}
CALIBRATIONS = ("none", "host-defaults", "host")


@dataclass(frozen=True)
class CalibrationRun:
    """What calibration needs of one real run (the fields of ``experiments.calibration.trace_calibration.ObservedRun``)."""

    workflow: Workflow
    plan: Any
    cost_model: CostModel
    trace: Trace
    background: float | None = None   # cores of other work during the run; None: fitted (see --background)


def host_calibration() -> tuple[Any, Callable[..., Any], tuple[str, ...] | None]:
    """``(ObservedRun, calibrate_on_runs, HOST_TERMS)`` of the host model, or a clear error when this planlab
    lacks it (``HOST_TERMS`` None when the module does not name its default terms)."""
    try:
        host_model = importlib.import_module("experiments.calibration.trace_calibration")
        observed_run, calibrate_on_runs = host_model.ObservedRun, host_model.calibrate_on_runs
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"--calibration host needs experiments.calibration.trace_calibration.calibrate_on_runs, which this "
                          f"planlab does not have ({exc})",
                          "use a planlab with the host model (issue 13), or --calibration none") from None
    terms = getattr(host_model, "HOST_TERMS", None)
    return observed_run, calibrate_on_runs, (tuple(terms) if terms is not None else None)


def platform_for(calibration_runs: Sequence[CalibrationRun], base_platform: Platform, mode: str = "none",
                 report: dict[str, Any] | None = None) -> Platform:
    """The platform to forecast with, from the calibration half of the real runs.

    ``none``: ``base_platform`` as is (the cost model's default platform, every worker its own CPUs);
    ``host-defaults``: the same on this machine's cores (the host model with its default terms, no fit);
    ``host``: the host model's ``calibrate_on_runs(runs, base_platform)`` on those runs, each from the
    empty warm pool it really started with; when no run says what other work the host had
    (``background`` None), ``host_background`` is fitted too, as ``planlab run`` does.  ``report`` (a
    dict) receives the calibration's summary.
    """
    if mode == "none":
        return base_platform
    if mode == "host-defaults":
        return base_platform.with_(host_cores=Platform.for_local_host().host_cores)
    if mode == "host":
        observed_run, calibrate_on_runs, terms = host_calibration()
        runs = [observed_run(r.workflow, r.plan, r.cost_model, r.trace, warm_pool=dict(WARM_POOL),
                             background=r.background) for r in calibration_runs]
        started = time.perf_counter()
        if terms is not None and all(r.background is None for r in calibration_runs):
            fitted = calibrate_on_runs(runs, base_platform, terms=(*terms, "host_background"))
        else:
            fitted = calibrate_on_runs(runs, base_platform)
        if report is not None:
            report.update(fitted.summary() if hasattr(fitted, "summary") else {})
            report["seconds"] = time.perf_counter() - started
        return getattr(fitted, "platform", fitted)      # a platform, or a result that holds one
    raise ConfigError(f"unknown calibration {mode!r}", f"use --calibration {' or '.join(CALIBRATIONS)}")


def base_platform(cost_model: CostModel, settings: ExecutorSettings) -> Platform:
    """The cost model's platform at the mean, with the executor's keep-alive (the run's real condition)."""
    return Platform.from_cost_model(cost_model, "mean").with_(keep_alive_s=float(settings.keep_alive_s))


@dataclass
class Prediction:
    deterministic_s: float
    trace: Trace
    mc: dict[str, float]
    seconds: float


def predict(workflow: Workflow, plan: Any, cost_model: CostModel, platform: Platform, replications: int,
            seed: int) -> Prediction:
    """A deterministic simulation and Monte Carlo percentiles of ``plan`` retargeted to the mean.

    Retargeting keeps the plan's workers, profiles and order and only asks for mean durations, so a
    p95 plan is forecast like a mean one: what its runs will typically take.
    """
    started = time.perf_counter()
    at_mean = dataclasses.replace(plan, sla=SLA.parse("mean"))
    trace = simulate(workflow, at_mean, cost_model, platform=platform, sample=False, seed=seed,
                     warm_pool=dict(WARM_POOL))
    spans = monte_carlo(workflow, at_mean, cost_model, replications=replications, seed=seed, platform=platform,
                        processes=1, warm_pool=dict(WARM_POOL)).makespans
    mc = {"mean": float(spans.mean()), **{f"p{round(q * 100)}": float(np.quantile(spans, q))
                                          for q in fid.COVERAGE_LEVELS}}
    return Prediction(float(trace.makespan_s), trace, mc, time.perf_counter() - started)


def evaluate_cell(cell: Cell, prediction: Prediction, runs: Sequence[RealRun]) -> dict[str, Any]:
    """One cell's row: its forecast errors, Monte Carlo percentiles and critical-path phases."""
    wf = cell.bench.workflow
    _, forecast = fid.split_halves(list(runs))
    real = [r.makespan_s for r in forecast]
    parents = {t: wf.parents(t) for t in wf.task_ids}
    real_phases = [fid.phase_breakdown(r.trace.tasks, fid.critical_path(r.trace.tasks, parents), r.makespan_s)
                   for r in forecast]
    sim = prediction.trace
    errors = fid.relative_errors(prediction.deterministic_s, real) if real else np.array([])
    return {
        "cell": cell.id, "workflow": cell.bench.name, "size": cell.bench.size, "tasks": len(wf),
        "planner": cell.planner, "sla": cell.sla.name, "plan": cell.plan_key, "same_plan_as": cell.same_plan_as,
        "workers": int(len(cell.plan.workers)), "planned_makespan_s": float(cell.plan.makespan_s),
        "simulated_s": prediction.deterministic_s, "monte_carlo_s": prediction.mc,
        "real_calibration_s": [r.makespan_s for r in fid.split_halves(list(runs))[0]], "real_forecast_s": real,
        "errors": errors.tolist(), "error": fid.error_summary(errors),
        "mc_p50_error": fid.error_summary(fid.relative_errors(prediction.mc["p50"], real) if real else []),
        "mc_coverage": fid.coverage(real, {q: prediction.mc[f"p{round(q * 100)}"] for q in fid.COVERAGE_LEVELS}),
        "load1_forecast": [r.load1 for r in forecast],
        "load1_median": float(np.median([r.load1 for r in runs])) if runs else float("nan"),
        "real_processes_median": float(np.median([r.processes for r in forecast])) if forecast else float("nan"),
        "simulated_cold_starts": int(sim.cold_starts),
        "critical_path_s": {"real": fid.median_breakdown(real_phases),
                            "simulated": fid.phase_breakdown(sim.tasks, fid.critical_path(sim.tasks, parents),
                                                             sim.makespan_s)},
        "predict_s": prediction.seconds, "real_runs_s": float(sum(r.makespan_s for r in runs)),
    }
