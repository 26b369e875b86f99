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

Reading the executions comes before any fold and was a third of a command's time
(epigenomics: 24 files, parse and replay plan), so :func:`map_halves` reads half of
them on one forked process while this one reads the other half: only the forked
half's results cross back (pickled Observations, a quarter of their reading's cost).
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


#: Items below this many are read in this process: a fork and the pickles cost more than half of a few reads.
MIN_SPLIT = 4


def map_halves(job: Callable[[Any], Any], items: Sequence[Any], workers: int | None = None,
               weight: Callable[[Any], float] | None = None) -> list[Any]:
    """``[job(item) for item in items]``, the second half of the items (by ``weight``, e.g. file size) on one
    forked process while this process runs the first half.

    The results of the forked half must pickle.  Should anything go wrong there (an exception, which may not
    survive pickling as it was raised), this process runs that half itself, so a bad item fails exactly as it
    would serially."""
    workers = default_workers() if workers is None else max(1, workers)
    if workers <= 1 or len(items) < MIN_SPLIT or "fork" not in multiprocessing.get_all_start_methods():
        return [job(item) for item in items]
    weights = [float(weight(item)) if weight is not None else 1.0 for item in items]
    cut, total, acc = len(items) - 1, sum(weights), 0.0
    for i, w in enumerate(weights):   # the first index where the first half holds half the weight
        acc += w
        if acc >= total / 2:
            cut = max(1, min(i + 1, len(items) - 1))
            break
    mine, theirs = list(items[:cut]), list(items[cut:])

    def other_half(_: Any) -> Any:
        try:
            return True, [job(item) for item in theirs]
        except Exception:   # noqa: BLE001 - re-run here, where it raises as it would serially
            return False, None

    global _job
    _job = other_half
    try:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
            future = pool.submit(_run, [])
            first = [job(item) for item in mine]
            ok, second = future.result()
    finally:
        _job = None
    return first + (second if ok else [job(item) for item in theirs])
