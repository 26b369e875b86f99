"""The cost model's parameters: their defaults, why each default, and their valid ranges.

:class:`~planning.costs.cost_model.CostModel` stores its constructor's
parameters as given (scikit-learn's convention); :func:`checked_params` checks
them and turns them into the plain numbers fitting and queries use (and
:meth:`CostModel.to_dict` records).

Defaults and why (FACTS.md is the measured evidence):

* ``prior_exponent = 0.5``: the truth lies between 0 (single-threaded code gains
  nothing above one CPU) and 1 (a CPU quota slows a loop x1.9-2.0 at 0.5 CPU, i.e. a
  close to 1 below one CPU); 0.5 minimises the worst-case log error over [0, 1].
* ``prior_sigma = 0.3``: repeats of whole runs differ by 12-14 % (sigma about 0.19 at
  workflow level); single tasks vary more than sums of tasks do.
* ``default_exec_s = 1.0`` s on one CPU: the order of a typical serverless function
  when nothing at all is known; flagged so reports can count such tasks.
* ``default_output_bytes = 1024``: a small pickled result; below about 1 KB bytes are
  nearly free (FACTS), so the guess barely matters but is not zero.
* transfers ``latency 0.5 ms``, ``200 MB/s``: a Redis round trip is 33-210 us plus
  (de)serialisation, and moving data costs 3-8 ms per MiB with serialisation.
* start-up ``cold 0.25 s``: a fresh interpreter importing redis + numpy + cloudpickle
  takes 220-300 ms; ``warm 2 ms``: a live worker only claims its next task, a few
  Redis round trips (145-450 us per task to coordinate) plus bookkeeping.
"""

from __future__ import annotations

from typing import Any

from planning.errors import PlanlabError

__all__ = ["PRIOR_EXPONENT", "PRIOR_SIGMA", "DEFAULT_EXEC_S", "DEFAULT_OUTPUT_BYTES", "DEFAULT_LATENCY_S",
           "DEFAULT_BANDWIDTH_BPS", "DEFAULT_COLD_START_S", "DEFAULT_WARM_START_S", "checked_params"]

PRIOR_EXPONENT = 0.5
PRIOR_SIGMA = 0.3
DEFAULT_EXEC_S = 1.0
DEFAULT_OUTPUT_BYTES = 1024.0
DEFAULT_LATENCY_S = 5e-4
DEFAULT_BANDWIDTH_BPS = 200e6
DEFAULT_COLD_START_S = 0.25
DEFAULT_WARM_START_S = 0.002


def checked_params(model: Any) -> dict[str, Any]:
    """``model``'s constructor parameters, checked and as plain numbers.

    Raises :class:`~planning.errors.PlanlabError` naming the first parameter out of its range.
    """
    lo, hi = model.exponent_bounds
    checks = {"prior_sigma": model.prior_sigma > 0, "default_exec_s": model.default_exec_s > 0,
              "default_output_bytes": model.default_output_bytes >= 0, "latency_s": model.latency_s >= 0,
              "bandwidth_Bps": model.bandwidth_Bps > 0, "cold_start_s": model.cold_start_s >= 0,
              "warm_start_s": model.warm_start_s >= 0, "exponent_bounds": 0 <= lo <= hi,
              "prior_exponent": lo <= model.prior_exponent <= hi, "exponent_prior_sd": model.exponent_prior_sd > 0,
              "prior_weight": model.prior_weight >= 0, "max_ratio_samples": model.max_ratio_samples >= 16,
              "max_search_cells": model.max_search_cells >= 1000, "min_time_s": model.min_time_s > 0}
    for name, ok in checks.items():
        if not ok:
            raise PlanlabError(f"CostModel: invalid {name}", "see the CostModel docstring for valid ranges")
    return dict(
        prior_exponent=float(model.prior_exponent), prior_sigma=float(model.prior_sigma),
        default_exec_s=float(model.default_exec_s), default_output_bytes=float(model.default_output_bytes),
        latency_s=float(model.latency_s), bandwidth_Bps=float(model.bandwidth_Bps),
        cold_start_s=float(model.cold_start_s), warm_start_s=float(model.warm_start_s),
        exponent_bounds=(float(lo), float(hi)), exponent_prior_sd=float(model.exponent_prior_sd),
        prior_weight=float(model.prior_weight), min_empirical_samples=int(model.min_empirical_samples),
        min_startup_samples=int(model.min_startup_samples), max_ratio_samples=int(model.max_ratio_samples),
        max_search_cells=int(model.max_search_cells), min_time_s=float(model.min_time_s))
