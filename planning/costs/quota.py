"""The knee of the CPU law at one CPU: below it a quota throttles, above it threads help.

A single power law ``T = c0 * cpus^-a`` cannot bend at one CPU, and real tasks do.
Below one CPU a cgroup quota throttles the task's one thread: a CPU-bound task takes
``T(1) / cpus`` (measured x1.9-2.0 at 0.5 CPU, FACTS.md).  Above one CPU only threads
help: a single-threaded task gains nothing, a BLAS task some.  Fitted through 0.5, 1
and 2 CPUs, one exponent is a compromise that is wrong at every point: the quickstart's
single-threaded ``map`` (0.45 / 0.225 / 0.225 s measured) got ``a = 0.5`` and a 1-CPU
estimate of 0.283 s, 26 % long, and 11 % short on 2 CPUs; the wukong cells planned on
1 CPU were forecast +22 %, the 2-CPU ones -11 to -15 %.

So the law has two exponents meeting at one CPU::

    T(cpus) = (c0 + c1 x) * max(cpus, 1)^-a * min(cpus, 1)^-a_low

``a`` is fitted by :func:`planning.costs.laws.fit_law` as before, on the measurements
moved to their one-CPU equivalents (``t * cpus^a_low``, ``cpus = 1``, below one CPU);
``a_low`` per kind is the median of ``log(T(c) / T(1)) / log(1 / c)`` over the kind's
measurements below one CPU against its median at exactly one CPU, clipped to
``[0, 1.5]`` (an I/O-bound kind barely slows under a quota: its ``a_low`` is small).
Without both a measurement below one CPU and one at one CPU, ``a_low`` is
:data:`DEFAULT_LOW_EXPONENT`: a quota throttles CPU work in proportion.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from planning.costs.laws import LawFit

__all__ = ["DEFAULT_LOW_EXPONENT", "low_cpu_exponents", "quota_factor", "to_one_cpu", "with_measured_range"]

#: ``a_low`` of a kind never measured on both sides of one CPU: a quota of ``c`` takes ``1 / c`` as long.
DEFAULT_LOW_EXPONENT = 1.0
_ONE = 1e-9
_BOUNDS = (0.0, 1.5)


def low_cpu_exponents(codes: np.ndarray, n_groups: int, t: np.ndarray, cpus: np.ndarray) -> np.ndarray:
    """Each group's ``a_low`` (see the module docstring); :data:`DEFAULT_LOW_EXPONENT` where it cannot be told."""
    out = np.full(n_groups, DEFAULT_LOW_EXPONENT)
    at_one = np.abs(cpus - 1.0) <= _ONE
    below = cpus < 1.0 - _ONE
    if not below.any() or not at_one.any():
        return out
    t1 = pd.Series(t[at_one]).groupby(codes[at_one]).median()      # each group's median time on one CPU
    ref = t1.reindex(codes[below]).to_numpy()
    ok = np.isfinite(ref) & (ref > 0)
    slopes = np.log(np.maximum(t[below][ok], 1e-12) / ref[ok]) / np.log(1.0 / cpus[below][ok])
    medians = pd.Series(slopes).groupby(codes[below][ok]).median()
    out[medians.index.to_numpy()] = np.clip(medians.to_numpy(), *_BOUNDS)
    return out


def to_one_cpu(codes: np.ndarray, t: np.ndarray, cpus: np.ndarray, a_low: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Measurements below one CPU moved to their one-CPU equivalents (times, CPUs); others unchanged."""
    low = cpus < 1.0
    return np.where(low, t * cpus ** a_low[codes], t), np.maximum(cpus, 1.0)


def quota_factor(cpus: np.ndarray, a_low: np.ndarray) -> np.ndarray:
    """How much longer than on one CPU a quota below one CPU makes a task: ``min(cpus, 1)^-a_low`` (1 above)."""
    return np.minimum(cpus, 1.0) ** -a_low


def with_measured_range(law: "LawFit", codes: np.ndarray, cpus: np.ndarray) -> "LawFit":
    """``law`` with each group's measured CPU range and count of CPU values from the raw measurements
    (the fit saw one-CPU equivalents; what was measured decides what counts as extrapolated)."""
    import dataclasses

    n = len(law.a)
    lo, hi = np.full(n, np.inf), np.full(n, -np.inf)
    np.minimum.at(lo, codes, cpus)
    np.maximum.at(hi, codes, cpus)
    distinct = pd.DataFrame({"group": codes, "cpus": cpus}).drop_duplicates()["group"].to_numpy(np.int64)
    count = np.bincount(distinct, minlength=n)
    seen = np.isfinite(lo)
    return dataclasses.replace(law, cpus_min=np.where(seen, lo, np.nan), cpus_max=np.where(seen, hi, np.nan),
                               n_cpus=count.astype(np.int64))
