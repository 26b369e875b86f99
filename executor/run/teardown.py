"""The end of a run: stopping the processes still serving it, and deleting its keys.

A failed or interrupted run drops its liveness key (workers of a cancelled run
stop when it is gone) and asks each launcher holding one of its workers to kill
it, waiting up to 3 s for their acknowledgements, so no late write leaves keys
behind.  Cleanup deletes every key of the run except, on request, the metrics
(kept ``metrics_ttl_s`` for whoever reads them later).
"""

from __future__ import annotations

import time

from executor import keys
from executor.run.context import RunContext

__all__ = ["cancel", "cleanup"]


def cancel(ctx: RunContext) -> None:
    """Stop every process still serving this run: drop liveness, ask their launchers to kill them."""
    r, k = ctx.r, ctx.k
    r.delete(k.live)
    running = r.hgetall(k.running)
    by_launcher: dict[str, list[int]] = {}
    for holder in running.values():
        lid, pid, _ = (holder.decode().split(":", 2) + ["0", ""])[:3]
        if pid.isdigit():
            by_launcher.setdefault(lid, []).append(int(pid))
    for lid, pids in by_launcher.items():
        ctx.ex.control(lid, {"type": "cancel", "run": ctx.run_id, "pids": pids})
    deadline = time.monotonic() + 3.0
    acked = 0
    while acked < len(by_launcher) and time.monotonic() < deadline:
        if r.blpop([k.acks], timeout=max(0.05, deadline - time.monotonic())) is not None:
            acked += 1


def cleanup(ctx: RunContext, keep_metrics: bool) -> None:
    """Unregister the run from its pool and delete its keys (the metrics too unless ``keep_metrics``)."""
    r, k, s = ctx.r, ctx.k, ctx.s
    r.srem(keys.pool_runs(s.pool), ctx.run_id)
    if s.keep_keys:
        return
    victims = [key for key in r.scan_iter(match=f"{k.prefix}*", count=1000)
               if key.decode() != k.metrics or not keep_metrics]
    for i in range(0, len(victims), 1000):
        r.unlink(*victims[i:i + 1000])
    if keep_metrics and s.metrics_ttl_s:
        r.expire(k.metrics, int(s.metrics_ttl_s))
