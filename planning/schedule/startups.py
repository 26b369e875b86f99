"""Worker start-ups, one model for the plan and the simulator: cold or warm, by the same pool rule.

A logical worker starts on a process of its profile.  When it starts, the
executor hands it the most recently freed idle process of that profile that is
still warm (stopped less than ``keep_alive_s`` ago): a warm start.  Otherwise it
forks one: a cold start.  The processes a run starts with (``warm_pool``, left by
an earlier run) count as freed at time 0.

:func:`take_idle` is that rule on one profile's idle processes.  The simulator
applies it event by event (:func:`simulator.lifecycle.take_warm`), and so does a
plan's final timing, which meets the same events in time order
(:meth:`planning.schedule.ScheduleEvaluator.run_pooled`,
:mod:`planning.schedule.pooled`): a plan's start-ups are the ones its simulation
will have, except where the simulator models contention the planner does not (the
launcher's queue and the host's cores on a shared host).

Planners search without the pool (a cold start per worker: faster, and a bound);
only the final plan's timing applies it.
"""

from __future__ import annotations

import heapq
from typing import Any, Sequence

#: Seconds an idle process stays warm after its worker stops: the executor's and the platform's default
#: (:class:`simulator.platform.Platform` ``keep_alive_s``).
KEEP_ALIVE_S = 600.0

__all__ = ["KEEP_ALIVE_S", "pooled_startup", "take_idle"]


def take_idle(stack: list[float], t: float, keep_alive_s: float) -> bool | None:
    """Take the most recently freed process off ``stack`` (stop times, in the order they stopped) if warm at ``t``.

    Returns True when one was taken (popped), False when none is idle or the most
    recent one stopped after ``t``, and None when the most recent one is already
    cold at ``t`` - then every older one is too, and the caller drops them all.
    """
    if not stack:
        return False
    stopped_at = stack[-1]
    if t - stopped_at < keep_alive_s and stopped_at <= t:
        stack.pop()
        return True
    if t - stopped_at >= keep_alive_s:
        return None
    return False


def pooled_startup(ev: Any, idle: dict[str, list[float]], stops: list[tuple[float, int]], profiles: Sequence[str],
                   w: int, t: float) -> tuple[float, bool]:
    """Worker ``w``'s start-up at ``t`` and whether it reused a process, for a timing that meets starts in time order.

    ``stops`` (a heap of (stop time, worker)) are freed into ``idle`` (stop times per
    profile) up to ``t``; then :func:`take_idle` on ``w``'s profile.  ``ev`` gives the
    keep-alive and the cold and warm start-ups (a :class:`~planning.schedule.ScheduleEvaluator`).
    """
    while stops and stops[0][0] <= t:
        stop, v = heapq.heappop(stops)
        idle.setdefault(profiles[v], []).append(stop)
    stack = idle.get(profiles[w])
    taken = take_idle(stack, t, ev.keep_alive_s) if stack is not None else False
    if taken is None:
        stack.clear()
    return (ev.warm_startup_of(profiles[w]) if taken else ev.startup_of(profiles[w])), bool(taken)
