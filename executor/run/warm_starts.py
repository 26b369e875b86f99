"""Pre-warmed workers: the client starts them at the plan's times, before their first task is ready.

A plan with warm starts (:attr:`planning.assignment.Assignment.warm_starts`, set by
the ``prewarm`` optimization) names workers the engines start without a task,
seconds after the run's start; their first task then only notifies them.  The
client pushes each one's start message to the run's launch queue at its time,
from a daemon thread (the run's wait for its events goes on meanwhile), flagged
``warm`` so the worker waits for its first task's notification instead of
running it.  Once the run is over (its liveness key gone) nothing more is pushed.
"""

from __future__ import annotations

import threading
import time

from executor.messages import encode_start
from executor.run.context import RunContext
from planning.protocol import Invocation

__all__ = ["start_warm_workers"]


def start_warm_workers(ctx: RunContext, spec, t0: float) -> threading.Thread | None:
    """Push each pre-warmed worker's start at ``t0`` + its time, those due at once in the plan's order (a thread;
    None when the plan warms none)."""
    warm = {} if ctx.protocol.dynamic else ctx.protocol.warm_starts()
    # by time, ties in the plan's order (the soonest-needed first: planning.protocol.optimizations.prewarm.warm_order)
    due = sorted(((float(at), w) for w, at in warm.items() if ctx.protocol.sequence.get(w)), key=lambda d: d[0])
    if not due:
        return None
    thread = threading.Thread(target=_push_when_due, args=(ctx, spec, t0, due), name=f"warm-{ctx.run_id}",
                              daemon=True)
    thread.start()
    return thread


def _push_when_due(ctx: RunContext, spec, t0: float, due: list[tuple[float, str]]) -> None:
    """Sleep until each warm start is due, then push its start message (while the run is live)."""
    ttl_ms = int(ctx.s.key_ttl_s * 1000)
    for at, worker in due:
        wait = t0 + at - time.time()
        if wait > 0:
            time.sleep(wait)
        first = ctx.protocol.sequence[worker][0]
        msg = encode_start(ctx.sealer, Invocation(worker, first, True), spec, time.time(), warm=True)
        if not ctx.r.exists(ctx.k.live):
            return
        pipe = ctx.r.pipeline(transaction=False)
        pipe.rpush(ctx.k.launch, msg)
        pipe.pexpire(ctx.k.launch, ttl_ms)
        pipe.execute()
