"""The held-out report's calibrations, one per fold, run on several processes at once.

``planlab calibrate`` prints its own leave-one-size-out error: one whole calibration
per held-out size, each independent of the others, and together most of the command's
time (eight folds of an application against one fit on all its sizes).  So the folds
are dealt over worker processes (:func:`map_folds`).

The fit on every execution is one more job among them (the first: the largest).  The
workers are *forked*, so they inherit the observations as they are - their replays,
compiled models and the simulations already remembered
(:meth:`~experiments.calibration.executions.Observation.simulate`) - and nothing but
fold indices, predicted makespans and the whole fit's result crosses between processes
(no pickling of workflows or closures).  The simulator is deterministic, so the report is
the same on one process or many; where ``fork`` does not exist, or with one worker or
one fold, the folds run in this process.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Sequence

#: Environment variable capping the worker processes (``1``: the folds run in this process).
WORKERS_ENV = "PLANLAB_CALIBRATE_WORKERS"

# The job of the forked workers: set just before the pool forks them, cleared after.
_job: Callable[[Sequence[int]], Any] | None = None


def default_workers() -> int:
    """The worker processes to use: :data:`WORKERS_ENV` when set, else the machine's CPUs."""
    text = os.environ.get(WORKERS_ENV, "").strip()
    if text:
        try:
            return max(1, int(text))
        except ValueError:
            from planning.errors import ConfigError

            raise ConfigError(f"{WORKERS_ENV}={text!r} is not a number", "set it to a positive integer, or unset it")
    return os.cpu_count() or 1


def _run(fold: Sequence[int]) -> Any:
    assert _job is not None, "a fold worker ran without its job"
    return _job(fold)


def map_folds(job: Callable[[Sequence[int]], Any], folds: Sequence[Sequence[int]],
              workers: int | None = None) -> list[Any]:
    """``job(fold)`` for every fold, in the folds' order, on up to ``workers`` forked processes
    (default :func:`default_workers`)."""
    global _job
    workers = min(default_workers() if workers is None else max(1, workers), len(folds))
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [job(fold) for fold in folds]
    _job = job
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_run, [list(f) for f in folds]))
    finally:
        _job = None
