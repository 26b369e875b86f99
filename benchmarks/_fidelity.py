"""The arithmetic of the fidelity benchmark: errors, where a critical path spent its time, coverage, targets.

Pure functions over numbers and trace tables, so ``tests/test_bench_fidelity.py``
checks them on hand-made examples; ``bench_fidelity.py`` (run as a script, so this
imports as ``_fidelity``) does the real runs and the predictions.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

#: Where a critical path spends its time (seconds, summing to the run's makespan).
PHASES = ("waiting", "startup", "download", "execution", "upload", "coordination")

#: The issue's targets (quiet machine, 1-minute load below 2).
TARGETS = {"median_abs_error": 0.10, "p90_abs_error": 0.25, "size_trend_ratio": 2.0, "coverage_points": 0.05}
QUIET_LOAD = 2.0
COVERAGE_LEVELS = (0.50, 0.90, 0.95)


# ---------------------------------------------------------------- errors
def relative_errors(predicted_s: float | Sequence[float], real_s: Sequence[float]) -> np.ndarray:
    """``(predicted - real) / real`` for each real makespan (one prediction for all, or one per run):
    positive = the prediction was too slow."""
    real = np.asarray(real_s, dtype=float)
    if (real <= 0).any() or not np.isfinite(real).all():
        raise ValueError(f"real makespans must be positive and finite, got {real.tolist()}")
    return (np.asarray(predicted_s, dtype=float) - real) / real


def error_summary(errors: Iterable[float]) -> dict[str, Any]:
    """Median and p90 of |error|, the bias (median signed error) and the count; NaN when empty."""
    e = np.asarray(list(errors), dtype=float)
    e = e[np.isfinite(e)]
    if not len(e):
        return {"n": 0, "median_abs": math.nan, "p90_abs": math.nan, "bias": math.nan, "max_abs": math.nan}
    a = np.abs(e)
    return {"n": int(len(e)), "median_abs": float(np.median(a)), "p90_abs": float(np.quantile(a, 0.9)),
            "bias": float(np.median(e)), "max_abs": float(a.max())}


def split_halves(values: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """Calibration = repetitions 0, 2, 4...; forecast = 1, 3, 5...: interleaved, so a drift of the host's
    load during a cell's runs falls on both halves alike."""
    return list(values[0::2]), list(values[1::2])


# ---------------------------------------------------------------- where the time went
def critical_path(tasks: pd.DataFrame, parents: Mapping[str, Sequence[str]]) -> list[str]:
    """The chain of tasks that ended the run, source first.

    From the task done last, repeatedly step to the parent done last (the one whose
    output made the task ready).  O(path length x parents).
    """
    done = dict(zip(tasks["task_id"], tasks["done_s"].astype(float)))
    if not done:
        return []
    current = max(done, key=lambda t: (done[t], t))
    path = [current]
    while parents.get(current):
        current = max(parents[current], key=lambda p: (done.get(p, -math.inf), p))
        path.append(current)
    return path[::-1]


def phase_breakdown(tasks: pd.DataFrame, path: Sequence[str], makespan_s: float) -> dict[str, float]:
    """Seconds of ``path`` in each of :data:`PHASES`; they sum to ``makespan_s``.

    Per task: ``startup`` = its ``startup_s`` (a new worker's start, first task only);
    ``waiting`` = ready -> inputs start, minus that start-up (waiting for a worker to be
    free or to be launched; the executor stamps ``worker_start_s`` after the start-up,
    the simulator before it, so ready -> download start is the span both agree on);
    ``download``, ``execution`` and ``upload`` their phases.  ``coordination`` is the rest
    of the makespan: submission -> first ready, parent done -> child ready (notifications,
    counters), the gaps between phases, and fetching the sink's result.
    """
    t = tasks.set_index("task_id").loc[list(path)]

    def span(start: str, end: str) -> np.ndarray:
        return np.nan_to_num((t[end] - t[start]).to_numpy(float))

    startup = np.nan_to_num(t["startup_s"].to_numpy(float))
    out = {"waiting": float(np.clip(span("ready_s", "download_start_s") - startup, 0.0, None).sum()),
           "startup": float(startup.sum()),
           "download": float(span("download_start_s", "download_end_s").sum()),
           "execution": float(span("exec_start_s", "exec_end_s").sum()),
           "upload": float(span("upload_start_s", "upload_end_s").sum())}
    out["coordination"] = float(makespan_s) - sum(out.values())
    return out


def median_breakdown(breakdowns: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Phase by phase median over runs (each run has its own critical path)."""
    if not breakdowns:
        return {p: math.nan for p in PHASES}
    return {p: float(np.median([b[p] for b in breakdowns])) for p in PHASES}


# ---------------------------------------------------------------- SLA coverage
def coverage(real_s: Sequence[float], predicted: Mapping[float, float | Sequence[float]]) -> dict[str, Any]:
    """For each level q: the fraction of real makespans at or below the predicted q-quantile, and what chance says.

    A level's prediction is one number, or one per run (runs forecast by different
    calibrations, e.g. the two folds of a cross-fit); ``predicted_s`` is then their median.

    With ``n`` runs the fraction is a binomial count: even a model whose quantile is
    exactly right lands within the +-5 points target only with ``perfect_pass_chance``
    (about 0.5 at p50 with 20 runs), so each level also gets ``p_value``, the two-sided
    exact binomial test of "the runs fall below the prediction with probability q"
    (small: the prediction is really off, not unlucky).
    """
    real = np.asarray(real_s, dtype=float)
    n = len(real)
    rows = {}
    for level, given in sorted(predicted.items()):
        bound = np.broadcast_to(np.asarray(given, dtype=float), real.shape)
        below = int(np.sum(real <= bound))
        fraction = below / n if n else math.nan
        rows[f"p{round(level * 100)}"] = {"level": level, "predicted_s": float(np.median(bound)) if n else math.nan,
                                          "fraction": fraction,
                                          "points_off": fraction - level, "below": below, "runs": n,
                                          "p_value": _binomial_p(below, n, level),
                                          "perfect_pass_chance": _pass_chance(n, level, TARGETS["coverage_points"])}
    return rows


def _binomial_p(k: int, n: int, q: float) -> float:
    """Two-sided exact binomial test of ``k`` successes in ``n`` at probability ``q`` (NaN without runs)."""
    if not n:
        return math.nan
    from scipy.stats import binomtest

    return float(binomtest(k, n, q).pvalue)


def _pass_chance(n: int, q: float, points: float) -> float:
    """The chance that a perfectly calibrated quantile lands within ``points`` of ``q`` over ``n`` runs."""
    if not n:
        return math.nan
    from scipy.stats import binom

    lo, hi = math.ceil((q - points) * n - 1e-9), math.floor((q + points) * n + 1e-9)
    return float(binom.cdf(hi, n, q) - binom.cdf(lo - 1, n, q))


# ---------------------------------------------------------------- targets
def target_checks(all_errors: Sequence[float], size_errors: Mapping[str, Mapping[int, float]],
                  coverage_rows: Mapping[str, Mapping[str, float]] | None) -> dict[str, dict[str, Any]]:
    """Pass flags per target.  ``size_errors``: workflow -> size -> median |error| (sizes 20 and 500 compared)."""
    summary = error_summary(all_errors)
    checks: dict[str, dict[str, Any]] = {
        "median_abs_error": _check(summary["median_abs"], TARGETS["median_abs_error"], "<=",
                                   "median |simulated - real| / real over every forecast run of every distinct plan"),
        "p90_abs_error": _check(summary["p90_abs"], TARGETS["p90_abs_error"], "<=", "p90 of the same errors"),
    }
    for workflow, by_size in sorted(size_errors.items()):
        small, large = by_size.get(min(by_size)), by_size.get(max(by_size))
        if len(by_size) < 2 or not small or not np.isfinite(small):
            continue
        checks[f"size_trend_{workflow}"] = _check(
            large / small, TARGETS["size_trend_ratio"], "<=",
            f"median |error| at {max(by_size)} tasks over that at {min(by_size)} tasks")
    for name, row in (coverage_rows or {}).items():
        checks[f"coverage_{name}"] = _check(abs(row["points_off"]), TARGETS["coverage_points"], "<=",
                                            f"|fraction of real makespans <= predicted {name} - {row['level']:g}|")
    return checks


def _check(value: float, target: float, op: str, note: str) -> dict[str, Any]:
    slack = 1e-9 * max(1.0, abs(target))      # 0.95 - 1.0 is 0.05000000000000004: exactly on the target passes
    ok = bool(np.isfinite(value) and (value <= target + slack if op == "<=" else value >= target - slack))
    return {"value": float(value), "target": target, "pass": ok, "note": note}
