"""Thread pools sized to a CPU quota.

BLAS/OpenMP pools sized to the machine, not to the quota, spin and burn quota
(measured ×4.5 slower instead of ×4 on a quarter of a CPU, ``FACTS.md``).
"""

from __future__ import annotations

import math
import os

__all__ = ["THREAD_ENV_VARS", "apply_thread_limits", "thread_env"]

THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


def thread_env(cpus: float) -> dict[str, str]:
    """Environment that sizes BLAS/OpenMP thread pools to a CPU quota.

    ``max(1, floor(cpus))`` threads: pools sized to the machine spin on a
    fraction of a CPU and burn the quota (measured ×4.5 slower instead of ×4).
    Must be in the environment before numpy/BLAS is imported.
    """
    n = str(max(1, math.floor(cpus)))
    return {var: n for var in THREAD_ENV_VARS}


def apply_thread_limits(cpus: float) -> str:
    """Size this process's thread pools to ``cpus``; returns ``"threadpoolctl"`` or ``"env"``.

    Sets :func:`thread_env` in ``os.environ`` (libraries loaded later and child
    processes read it) and, if threadpoolctl is installed, also resizes pools of
    libraries already loaded.  threadpoolctl is optional: not a dependency.
    """
    env = thread_env(cpus)
    os.environ.update(env)
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-not-found]
    except ImportError:
        return "env"
    threadpool_limits(limits=int(env["OMP_NUM_THREADS"]))
    return "threadpoolctl"
