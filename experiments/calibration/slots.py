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
keeps another count than the workflow system's default (:func:`default_slots`) only
when it fits clearly better (:data:`CLEARLY_BETTER`): the data must argue against the
default.  On the Pegasus applications the recorded count fits as well or better; on
blast the doubled one halves the error.

**The default is the workflow system's** (:data:`SLOTS_BY_SYSTEM`): one slot per
recorded core, except for Makeflow, whose Work Queue workers take a task per
logical CPU while its WfInstances traces record physical cores - two per recorded
core.  Why a default matters: the fit can choose only what its training executions
tell apart.  In the leave-one-size-out fold that holds out blast's large runs (the
only ones whose half-hour tasks outlast the dispatch of the others), the small and
medium runs move by less than :data:`SCREEN` whatever the count; with the recorded
count as the default the large runs were replayed in two waves of 24 tasks per node
where they ran in one (+22-49 %, blast 26 % leave-one-size-out against 12 % on two
slots per core).  bwa, the other Makeflow application, can never tell the counts
apart (its largest move is 0.74 %).
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
#: Task slots per recorded core a workflow system's replays default to (others: 1, the recorded count).  Makeflow's
#: Work Queue workers advertise every logical CPU and run a task on each, while WfInstances' Makeflow traces record
#: the physical cores of their Chameleon nodes (24, where the Pegasus traces of Chameleon's 48-thread nodes record 48).
SLOTS_BY_SYSTEM = {"Makeflow": 2.0}


def default_slots(observations: Sequence[Any]) -> float:
    """The slots per recorded core the replays default to: their workflow system's (:data:`SLOTS_BY_SYSTEM`) when
    they all share one, else the recorded count (1)."""
    systems = {getattr(o, "system", "") for o in observations}
    return SLOTS_BY_SYSTEM.get(systems.pop(), 1.0) if len(systems) == 1 else 1.0


def replays(observations: Sequence[Any], slots_per_core: float) -> list[Any]:
    """The observations replayed with ``slots_per_core`` (those that are not replays stay as they are)."""
    return [o.with_slots_per_core(slots_per_core) if hasattr(o, "with_slots_per_core") else o
            for o in observations]


def fit_with_slots(observations: Sequence[Any], fit: Callable[[list[Any]], Any]) -> Any:
    """``fit`` (observations -> :class:`~experiments.calibration.fit.Fitted`) on the replays at each candidate
    of :data:`SLOTS_PER_CORE`; the default count's fit (:func:`default_slots`) unless another's training error is
    clearly lower.

    The whole fit, not a quicker stand-in, is what is compared: a linearised fit of a serial
    term can saturate its queue far from the optimum, and a comparison of two such fits
    picked the wrong count on bwa.  Costs one fit per candidate that :func:`can_matter`; without
    replays (executor traces) there is nothing to choose."""
    if not any(getattr(getattr(o, "plan", None), "planner", "") == "recorded" for o in observations):
        return fit(list(observations))
    real = np.array([o.real_makespan_s for o in observations], float)
    default = default_slots(observations)
    fits, errors = {}, {}
    for k in (k for k in SLOTS_PER_CORE if k == default or can_matter(observations, k, default)):
        at_k = replays(observations, k)
        fits[k] = fit(at_k)
        predicted = np.array([o.simulate(fits[k].platform_for(getattr(o, "family", ""))) for o in at_k])
        errors[k] = objective(predicted, real)
    chosen = choose(errors, default)
    fits[chosen].slots_per_core = chosen
    fits[chosen].slots_errors = errors
    return fits[chosen]


def can_matter(observations: Sequence[Any], slots_per_core: float, default: float | None = None) -> bool:
    """Whether replaying with ``slots_per_core`` moves some execution's overhead-free makespan, from its replay with
    ``default`` slots per core (None: its own), by at least :data:`SCREEN` of its real makespan.

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
        base = o.slots_per_core if default is None else default
        if getattr(getattr(o, "plan", None), "planner", "") == "recorded":
            moved = abs(schedule(o, slots_per_core) - schedule(o, base))
        else:
            at = (lambda k: o.with_slots_per_core(k)) if hasattr(o, "with_slots_per_core") else (lambda k: o)
            moved = abs(at(slots_per_core).simulate(zero) - at(base).simulate(zero))
        if moved >= SCREEN * o.real_makespan_s:
            return True
    return False


def choose(errors: dict[float, float], default: float = 1.0) -> float:
    """The ``default`` count unless another candidate's error is clearly lower (:data:`CLEARLY_BETTER`)."""
    reference = errors[default]
    best = min(errors, key=lambda k: (errors[k], k))
    clearly = errors[best] < reference * (1 - CLEARLY_BETTER) and reference - errors[best] > CLEARLY_BETTER_ABSOLUTE
    return best if clearly else default
