"""How the optimizations benchmark predicts: from priors, or the way planlab's runner does (issue 17).

``bench_optimizations.py`` used to plan and simulate with the cost model's priors (the tasks'
hints, the probed link and cold start) on ``simulated_platform(probe)``: this machine's cores and
the probed link and start-up terms, nothing fitted.  planlab's runner (``experiments/``) predicts
its own executor differently, and within ~6 % median (``fidelity.json``): it **profiles** every
workflow on every profile for real (:mod:`experiments.profiling`: ``uniform`` plans, one worker,
repetitions interleaved, the robust median fit) and fits the cost model on that history, then
**calibrates the host** on a few real fan-out runs (:func:`experiments.host_calibration.calibrate_host`:
start-ups, the launcher's serial part, the spec load, other CPU on the host).

``--prediction runner`` does both before the cells: the cost model is fitted on the profile runs'
history (the probed link and cold start stay its priors, for whatever the history leaves out), and
the platform is the host calibration fitted from the bench's own probed platform, so the link terms
the calibration does not fit (bandwidths, the large-transfer regime, sharing, pre-load lag, fetch
CPU) stay as probed.  ``--prediction priors`` (the default) is the old way, kept to compare.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import pandas as pd

from experiments.config import DEFAULT_PROFILE_REPETITIONS
from experiments.host_calibration import FITTED_TERMS, WarmPool, calibrate_host
from experiments.profiling import ProfileJob, measured_history, profile_fit_history
from planning.costs.cost_model import CostModel
from planning.errors import ExecutionError, PlanlabError
from planning.planners import get_planner
from planning.sla import SLA
from planning.workflow import Workflow
from simulator.platform import Platform

__all__ = ["PREDICTIONS", "PROFILE_REPETITIONS", "RunnerPrediction", "profile_history", "fitted_model",
           "runner_prediction"]

#: ``--prediction``: the priors (the old way), the runner's profile phase and host calibration, or the profile
#: phase's fitted cost model on the probed platform (no host calibration)
PREDICTIONS = ("priors", "runner", "profiled")
#: profile runs of every (workflow, profile): the runner's ``[profile] repetitions`` default
PROFILE_REPETITIONS = DEFAULT_PROFILE_REPETITIONS


@dataclass
class RunnerPrediction:
    """What the runner's way predicts with, and how it got there (for the results' notes)."""

    cost_model: CostModel
    platform: Platform
    fit_history: pd.DataFrame
    calibration: dict[str, Any] = field(default_factory=dict)
    profile_runs: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """A JSON-able record: the profile runs, the rows fitted, the calibrated terms and their errors."""
        return {"profile_runs": self.profile_runs, "fit_rows": int(len(self.fit_history)),
                "fitted_kinds": list(self.cost_model.kinds), "calibration": self.calibration,
                "seconds": self.seconds}


def profile_history(executor: Any, workflows: Mapping[str, Workflow], catalog: Any,
                    repetitions: int = PROFILE_REPETITIONS, pool: WarmPool | None = None,
                    progress: Callable[[str], None] | None = None,
                    failed: list[str] | None = None) -> tuple[pd.DataFrame, int]:
    """The runner's profile phase on ``workflows``: (the history rows of every run, how many runs).

    Each (workflow, profile) runs ``repetitions`` times, repetitions outermost (a burst of other work
    then hits one repetition of many jobs), each a ``uniform`` plan on one worker of that profile
    planned from the priors, its rows with the run's measured contention (:func:`measured_history`, as
    ``experiments.profiling`` records them).  A workflow that cannot be planned on a profile (memory) is
    skipped; a run the executor fails (e.g. a worker over its memory limit) is skipped too, its run id
    appended to ``failed``, so one profile's failure leaves the others' history to fit.
    """
    frames, runs = [], 0
    for repetition in range(repetitions):
        for label, workflow in workflows.items():
            for profile in catalog:
                try:
                    plan = get_planner("uniform", profile=profile.name, workers="single").plan(
                        workflow, catalog, CostModel(), SLA.parse("mean"))
                except PlanlabError:
                    continue
                run_id = ProfileJob(label, profile.name, repetition).run_id
                if progress is not None:
                    progress(run_id)
                try:
                    _, _, history = measured_history(executor, workflow, plan, run_id, "profile", pool)
                except ExecutionError:
                    if failed is not None:
                        failed.append(run_id)
                    continue
                history["repetition"] = repetition
                frames.append(history)
                runs += 1
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), runs


def fitted_model(history: pd.DataFrame, prior: CostModel) -> tuple[CostModel, pd.DataFrame]:
    """The cost model the runner fits on ``history`` (:func:`profile_fit_history`: each task's median over
    repetitions, alone, inverted scaling left out), with ``prior``'s link and cold start as its priors;
    returns (model, the rows fitted)."""
    fit_input = profile_fit_history(history)
    if not len(fit_input):
        raise PlanlabError("the profile runs left no history to fit the cost model on",
                           "check that the workflows run on the catalog's profiles, or use --prediction priors")
    model = CostModel(bandwidth_Bps=prior.bandwidth_Bps, cold_start_s=prior.cold_start_s)
    return model.fit(fit_input), fit_input


def runner_prediction(executor: Any, workflows: Mapping[str, Workflow], catalog: Any, prior: CostModel,
                      probed: Platform, repetitions: int = PROFILE_REPETITIONS,
                      progress: Callable[[str], None] | None = None, calibrate: bool = True) -> RunnerPrediction:
    """Profile ``workflows``, fit the cost model, and calibrate the host from ``probed`` (the bench's platform).

    The calibration fits the runner's terms (:data:`experiments.host_calibration.FITTED_TERMS`) on
    two ``uniform`` runs per workflow and keeps every other term of ``probed`` - the probed link.
    ``calibrate=False`` (``--prediction profiled``) keeps ``probed`` as it is: the calibration's
    ``host_background`` is the other work on the host *while it runs*, which need not be the cells'.
    """
    started = time.perf_counter()
    pool = WarmPool(keep_alive_s=probed.keep_alive_s)
    failed: list[str] = []
    history, runs = profile_history(executor, workflows, catalog, repetitions, pool, progress, failed)
    model, fit_input = fitted_model(history, prior)
    if not calibrate:
        return RunnerPrediction(model, probed, fit_input, {"profile_runs_failed": failed}, runs,
                                time.perf_counter() - started)
    fit = calibrate_host(dict(workflows), catalog, model, executor, pool, progress=progress, base=probed)
    calibration = {**fit.summary(), "base_terms": {t: getattr(probed, t) for t in FITTED_TERMS},
                   "profile_runs_failed": failed}
    return RunnerPrediction(model, fit.platform, fit_input, calibration, runs, time.perf_counter() - started)


def prediction_note(prediction: str, runner: RunnerPrediction | None = None) -> str:
    """The results' note saying how the cells were predicted."""
    if prediction == "profiled" and runner is not None:
        return (f"Predictions: --prediction profiled (_opt_prediction): the cost model fitted on {runner.profile_runs} "
                f"profile runs ({len(runner.fit_history)} median history rows; uniform plans, one worker, every "
                f"profile, as the runner's profile phase) on simulated_platform(probe), no host calibration.")
    if prediction == "runner" and runner is not None:
        terms = runner.calibration.get("terms", {})
        fitted = ", ".join(f"{k} {v:.4g}" for k, v in terms.items())
        return (f"Predictions: --prediction runner (_opt_prediction): the cost model fitted on {runner.profile_runs} "
                f"profile runs ({len(runner.fit_history)} median history rows; uniform plans, one worker, every "
                f"profile, as the runner's profile phase) and the platform host-calibrated on two uniform runs per "
                f"workflow (calibrate_host) from the probed platform, whose link terms it keeps; fitted: {fitted}; "
                f"median makespan error on those runs {runner.calibration.get('median_error_before', float('nan')):.1%} "
                f"before, {runner.calibration.get('median_error_after', float('nan')):.1%} after.")
    return ("Predictions: --prediction priors: the cost model's priors (task hints; the probed link and cold start; "
            "prior exponent 0 for replay workflows, model_for) on simulated_platform(probe), nothing fitted on runs.")
