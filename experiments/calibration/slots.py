"""How many tasks each recorded core ran at once: a structural choice calibration makes from the makespans.

A replay (the ``recorded`` planner) runs as many tasks on a machine at once as the
execution recorded cores.  Some workflow systems ran more: WfInstances' Makeflow
executions record 24 cores for Chameleon nodes with 48 hardware threads (the
Pegasus executions on the same nodes record 48), and Makeflow's Work Queue workers
take a task per logical CPU.  Replayed on 24 slots, blast's large runs need two
waves of 30-minute tasks that really ran in one, and no setting of the overhead
terms fits small, medium and large together (in-sample error 22 %; 11 % on 48 slots).

So :func:`fit_with_slots` fits the overhead terms on the replays at each candidate
of :data:`SLOTS_PER_CORE` (the whole fit of :mod:`experiments.calibration.fit`) and
keeps more slots than recorded only when they fit clearly better
(:data:`CLEARLY_BETTER`): the recorded count stays the default, and the data must
argue against it.  On the
Pegasus applications the recorded count fits as well or better; on blast the doubled
one halves the error.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from experiments.calibration.fit import objective

#: Candidate task slots per recorded core: as recorded, or one per hardware thread of a 2-way SMT core.
SLOTS_PER_CORE = (1.0, 2.0)
#: Another count replaces the recorded one only when its fitted mean relative error is lower by this fraction
#: (and by :data:`CLEARLY_BETTER_ABSOLUTE`).  Measured on WfInstances with the whole selected fit on every
#: size: blast 0.225 -> 0.113 on 48 slots; each Pegasus application within 2 % of its recorded count's error,
#: or worse (cycles 0.072 -> 0.084, soykb 0.049 -> 0.106).
CLEARLY_BETTER = 0.2
CLEARLY_BETTER_ABSOLUTE = 0.01
#: A count is a candidate only when it moves some execution's overhead-free replay by at least this fraction of
#: its real makespan.  Set from WfInstances, the largest move per application: blast 47 % (where the doubled count
#: halves the error); 1000genome 4.8 %, cycles 3.1 %, epigenomics 2.5 %, montage 0.95 %, bwa 0.74 %, soykb 0.16 %,
#: seismology 0.06 %, srasearch and helloworld 0 - and every fit of each of these kept the recorded count in the
#: leave-one-size-out recording before this screen (montage in 10 of 11; its held-out errors unchanged without the
#: other count).  So the screen sits between the two groups, and on them it only saves the second fit.
SCREEN = 0.1


def replays(observations: Sequence[Any], slots_per_core: float) -> list[Any]:
    """The observations replayed with ``slots_per_core`` (those that are not replays stay as they are)."""
    return [o.with_slots_per_core(slots_per_core) if hasattr(o, "with_slots_per_core") else o
            for o in observations]


def fit_with_slots(observations: Sequence[Any], fit: Callable[[list[Any]], Any]) -> Any:
    """``fit`` (observations -> :class:`~experiments.calibration.fit.Fitted`) on the replays at each candidate
    of :data:`SLOTS_PER_CORE`; the recorded count's fit unless another's training error is clearly lower.

    The whole fit, not a quicker stand-in, is what is compared: a linearised fit of a serial
    term can saturate its queue far from the optimum, and a comparison of two such fits
    picked the wrong count on bwa.  Costs one fit per candidate that :func:`can_matter`; without
    replays (executor traces) there is nothing to choose."""
    if not any(getattr(getattr(o, "plan", None), "planner", "") == "recorded" for o in observations):
        return fit(list(observations))
    real = np.array([o.real_makespan_s for o in observations], float)
    fits, errors = {}, {}
    for k in (k for k in SLOTS_PER_CORE if k == 1.0 or can_matter(observations, k)):
        at_k = replays(observations, k)
        fits[k] = fit(at_k)
        predicted = np.array([o.simulate(fits[k].platform_for(getattr(o, "family", ""))) for o in at_k])
        errors[k] = objective(predicted, real)
    chosen = choose(errors)
    fits[chosen].slots_per_core = chosen
    fits[chosen].slots_errors = errors
    return fits[chosen]


def can_matter(observations: Sequence[Any], slots_per_core: float) -> bool:
    """Whether replaying with ``slots_per_core`` moves some execution's overhead-free makespan by at least
    :data:`SCREEN` of its real makespan.

    A replay's overhead-free makespan is its list schedule's
    (:func:`planning.planners.recorded.replay_makespan`, what the simulator gives it on ``Platform.zero()``: equal on
    every execution of the shipped corpus, a test checks it), so the screen builds no plan and runs no simulation for
    a count it then drops (1000genome: 21 re-plans, compilations and simulations, a sixth of its fit); an
    :class:`~experiments.calibration.executions.Observation` remembers it per count across a command's fits.  Observations
    that are not replays are simulated as before."""
    from planning.planners.recorded import replay_makespan
    from simulator.platform import Platform

    def schedule(o: Any, k: float) -> float:   # remembered by an Observation, computed otherwise
        return o.replay_makespan(k) if hasattr(o, "replay_makespan") else replay_makespan(o.workflow, k)

    zero = Platform.zero()
    for o in observations:
        if getattr(getattr(o, "plan", None), "planner", "") == "recorded":
            moved = abs(schedule(o, slots_per_core) - schedule(o, o.slots_per_core))
        else:
            replay = o.with_slots_per_core(slots_per_core) if hasattr(o, "with_slots_per_core") else o
            moved = abs(replay.simulate(zero) - o.simulate(zero))
        if moved >= SCREEN * o.real_makespan_s:
            return True
    return False


def choose(errors: dict[float, float]) -> float:
    """The recorded count (1) unless another candidate's error is clearly lower (:data:`CLEARLY_BETTER`)."""
    recorded = errors[1.0]
    best = min(errors, key=lambda k: (errors[k], k))
    clearly = errors[best] < recorded * (1 - CLEARLY_BETTER) and recorded - errors[best] > CLEARLY_BETTER_ABSOLUTE
    return best if clearly else 1.0
