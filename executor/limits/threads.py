"""Thread pools sized to a CPU quota.

BLAS/OpenMP pools sized to the machine, not to the quota, spin and burn quota
(measured ×4.5 slower instead of ×4 on a quarter of a CPU, ``FACTS.md``).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["THREAD_ENV_VARS", "apply_thread_limits", "prepare_thread_controller", "thread_env", "thread_limits"]

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
    controller = _controller()
    if controller is None:
        return "env"
    controller.limit(limits=int(env["OMP_NUM_THREADS"]))
    return "threadpoolctl"


@contextmanager
def thread_limits(threads: int) -> Iterator[str]:
    """Size this process's thread pools to ``threads`` for a block, then restore them; yields how (``"env:N"``...).

    For one task run under another profile than its worker's: the pools of
    libraries already loaded are resized (threadpoolctl) and :data:`THREAD_ENV_VARS`
    set for what the block loads or starts; both are restored afterwards.
    """
    n = max(1, int(threads))
    saved = {var: os.environ.get(var) for var in THREAD_ENV_VARS}
    os.environ.update({var: str(n) for var in THREAD_ENV_VARS})
    try:
        controller = _controller()
        if controller is None:
            yield f"env:{n}"
        else:
            with controller.limit(limits=n):
                yield f"threadpoolctl:{n}"
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


_controllers: dict[int, Any] = {}


def _controller() -> Any:
    """A threadpoolctl controller of this process's loaded libraries, or None without threadpoolctl.

    Finding the libraries costs ~1.5 ms (10-12 ms in a just-forked worker at load 5,
    whose every first touch of a page copies it), so the controller is kept while no
    module was imported since (a new module may have loaded a new BLAS).  A forked
    child inherits its parent's: the same libraries are mapped at the same addresses,
    so the library handles stay valid (the launcher finds them once:
    :func:`prepare_thread_controller`).
    """
    key = len(sys.modules)
    controller = _controllers.get(key)
    if controller is None:
        try:
            from threadpoolctl import ThreadpoolController  # type: ignore[import-not-found]
        except ImportError:
            return None
        _controllers.clear()
        controller = _controllers[len(sys.modules)] = ThreadpoolController()
    return controller


def prepare_thread_controller() -> None:
    """Find the loaded thread pools now (in a launcher, before it forks) so that its workers inherit them."""
    _controller()
