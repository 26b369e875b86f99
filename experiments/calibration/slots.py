"""How many tasks each recorded core ran at once: a structural choice calibration makes from the makespans.

A replay (the ``recorded`` planner) runs as many tasks on a machine at once as the
execution recorded cores.  Some workflow systems ran more: WfInstances' Makeflow
executions record 24 cores for Chameleon nodes with 48 hardware threads (the
Pegasus executions on the same nodes record 48), and Makeflow's Work Queue workers
take a task per logical CPU.  Replayed on 24 slots, blast's large runs need two
waves of 30-minute tasks that really ran in one, and no setting of the overhead
terms fits small, medium and large together (in-sample error 22 %; 11 % on 48 slots).

So :func:`choose_slots_per_core` fits the overhead terms on the replays at each
candidate of :data:`SLOTS_PER_CORE` (a quick fit: the all-terms linear programme
measured on the simulator, :mod:`experiments.calibration.fit`) and keeps more slots
than recorded only when they fit clearly better (:data:`CLEARLY_BETTER`): the
recorded count stays the default, and the data must argue against it.  On the
Pegasus applications the recorded count fits as well or better; on blast the doubled
one halves the error.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from experiments.calibration.fit import coordinates, effects, lad, refine
from simulator.platform import Platform

#: Candidate task slots per recorded core: as recorded, or one per hardware thread of a 2-way SMT core.
SLOTS_PER_CORE = (1.0, 2.0)
#: Another count replaces the recorded one only when its fitted mean relative error is lower by this fraction
#: (and by :data:`CLEARLY_BETTER_ABSOLUTE`): measured on WfInstances, blast 0.225 -> 0.113; every Pegasus
#: application within 2 % of its recorded count's error or worse.
CLEARLY_BETTER = 0.2
CLEARLY_BETTER_ABSOLUTE = 0.01


def replays(observations: Sequence[Any], slots_per_core: float) -> list[Any]:
    """The observations replayed with ``slots_per_core`` (those that are not replays stay as they are)."""
    return [o.with_slots_per_core(slots_per_core) if hasattr(o, "with_slots_per_core") else o
            for o in observations]


def quick_error(observations: Sequence[Any], base: Platform, names: Sequence[str], start: Platform | None = None) -> float:
    """Mean relative makespan error after fitting every term of ``names`` on the linear stand-in measured at
    ``start`` (default ``base``), re-measured once at that fit: ``2 len(names) + 4`` simulations of each
    observation."""
    real = np.array([o.real_makespan_s for o in observations], float)

    def simulate(platform: Platform) -> np.ndarray:
        return np.array([o.simulate(platform) for o in observations])

    theta0 = coordinates(start if start is not None else base, names)
    every = np.ones(len(names), bool)
    sim0, slopes = effects(simulate, base, names, theta0)
    theta = lad(sim0, slopes, theta0, real, every, theta0)
    # a makespan is convex in a serial term, so the first secants can overshoot: re-linearise once there
    return refine(simulate, base, names, theta, real, every, None, 0.0, rounds=1)[1]


def choose_slots_per_core(observations: Sequence[Any], base: Platform, names: Sequence[str],
                          start: Platform | None = None) -> tuple[float, dict[float, float]]:
    """The slots per recorded core to replay these executions with, and each candidate's quick error.

    The recorded count (1) unless another candidate's error is clearly lower; without
    replays (executor traces) nothing to choose."""
    if not any(getattr(getattr(o, "plan", None), "planner", "") == "recorded" for o in observations):
        return 1.0, {}
    errors = {k: quick_error(replays(observations, k), base, names, start) for k in SLOTS_PER_CORE}
    recorded = errors[1.0]
    best = min(errors, key=lambda k: (errors[k], k))
    clearly = errors[best] < recorded * (1 - CLEARLY_BETTER) and recorded - errors[best] > CLEARLY_BETTER_ABSOLUTE
    return (best if clearly else 1.0), errors
