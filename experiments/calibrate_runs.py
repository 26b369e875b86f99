"""Calibration from saved real runs of planlab's own executor (``planlab calibrate --traces PATH...``).

Reads runs saved by ``planlab execute --save-run DIR`` or by ``planlab run``
(:mod:`experiments.saved_runs`), fits the platform's host terms on a part of them
(:func:`experiments.calibration.trace_calibration.calibrate_on_runs`) and judges the fit the way
its users will use it: as a *forecast* of the other runs - simulated from their
plans and the cost model's estimates, never from their own measured task times.

The split is by time: runs sorted by when they started, every other one held out,
so both halves see the same mix of workflows, planners and host conditions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from planning.errors import ConfigError

__all__ = ["RunsCalibration", "calibrate_saved_runs"]


@dataclass
class RunsCalibration:
    """The fitted platform, and one row per run: fitted on or held out, real and forecast makespans."""

    platform: Any
    terms: tuple[str, ...]
    table: pd.DataFrame
    error_before: float        # median |forecast - real| / real of the held-out runs, on the base platform
    held_out_error: float      # the same on the fitted platform
    fit_error: float           # median on the runs it was fitted on

    def summary(self) -> dict[str, Any]:
        return {"terms": {t: getattr(self.platform, t) for t in self.terms}, "host_cores": self.platform.host_cores,
                "runs_fitted": int((self.table["role"] == "fit").sum()),
                "runs_held_out": int((self.table["role"] == "held out").sum()),
                "median_error_before": self.error_before, "median_error_held_out": self.held_out_error,
                "median_error_fit": self.fit_error}


def calibrate_saved_runs(paths: str | Path | Iterable[str | Path], *, terms: Sequence[str] | None = None,
                         hold_out: bool = True, base: Any = None, max_evaluations: int = 120) -> RunsCalibration:
    """Fit ``terms`` (default: the runner's, :data:`experiments.host_calibration.FITTED_TERMS`) on saved runs."""
    from experiments.host_calibration import FITTED_TERMS
    from experiments.saved_runs import find_saved_runs, load_saved_run
    from simulator.platform import Platform
    from experiments.calibration.trace_calibration import ObservedRun, calibrate_on_runs, forecast_errors

    found = find_saved_runs(paths)
    if not found:
        raise ConfigError("no saved runs found in the given paths",
                          "give folders written by 'planlab execute --save-run DIR' or a 'planlab run' results folder")
    saved = sorted((load_saved_run(p) for p in found), key=lambda r: float(r.trace.meta.get("t0_epoch", 0.0)))
    runs = [ObservedRun(r.workflow, r.plan, r.cost_model, r.trace, name=r.run_id) for r in saved]
    if hold_out and len(runs) < 2:
        raise ConfigError("a held-out forecast needs at least two saved runs",
                          "save more runs, or pass --no-held-out to fit on the one run")
    fit_runs = runs[0::2] if hold_out else runs
    held_runs = runs[1::2] if hold_out else []
    base = base if base is not None else Platform.for_local_host()
    result = calibrate_on_runs(fit_runs, base, terms=tuple(terms or FITTED_TERMS), max_evaluations=max_evaluations)
    before = forecast_errors(held_runs, base) if held_runs else []
    after_fit = forecast_errors(fit_runs, result.platform)
    after_held = forecast_errors(held_runs, result.platform) if held_runs else []
    rows = [{"run": r.name, "role": "fit", "real_makespan_s": float(r.trace.makespan_s), "error": e}
            for r, e in zip(fit_runs, after_fit)]
    rows += [{"run": r.name, "role": "held out", "real_makespan_s": float(r.trace.makespan_s), "error": e,
              "error_before": b} for r, e, b in zip(held_runs, after_held, before)]

    def median_abs(values: Sequence[float]) -> float:
        return float(np.median(np.abs(values))) if len(values) else float("nan")

    return RunsCalibration(result.platform, result.terms, pd.DataFrame(rows), median_abs(before),
                           median_abs(after_held), median_abs(after_fit))
