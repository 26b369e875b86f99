"""A run's results: the sinks' values as they arrive, then the metrics, the real Trace and the run's meta."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from executor import codec
from executor.messages import decode_batch, output_label
from executor.run.context import RunContext
from executor.run.first_starts import SUPERSEDED
from executor.run.restarts import WorkerRestarts
from executor.server import redacted_url
from executor.tracing import build_trace
from planning.errors import ExecutionError
from planning.trace import Trace

__all__ = ["collect", "fetch_sink"]


def fetch_sink(ctx: RunContext, task_id: str, coded: set[str]) -> Any:
    """A sink's value (raw bytes for a task without code), as soon as it reported done."""
    data = ctx.r.get(ctx.k.out(task_id))
    if data is None:
        raise ExecutionError(f"sink {task_id!r} reported done but its result is not on the server",
                             "report this as an executor bug")
    if task_id not in coded:
        return data
    return codec.loads_value(ctx.sealer.open(output_label(task_id), data))


def collect(ctx: RunContext, restarts: WorkerRestarts, t0: float, makespan: float, prepare_s: float,
            seen: dict[str, float]) -> tuple[Trace, dict[str, Any]]:
    """The real Trace and the run's meta, from the metrics every worker uploaded."""
    ex, plan = ctx.ex, ctx.plan
    raw = ctx.r.lrange(ctx.k.metrics, 0, -1)
    meta = {"run_id": ctx.run_id, "redis": "embedded" if ex.embedded else redacted_url(ex.url),
            "settings": asdict(ctx.s), "prepare_s": prepare_s, "planner": getattr(plan, "planner", ""),
            "planned_makespan_s": float(getattr(plan, "makespan_s", float("nan"))),
            "dynamic": ctx.protocol.dynamic, "started_workers": started_workers(ctx),
            "restarts": sum(restarts.generation.values()), "task_kills": dict(restarts.kills),
            "deaths": restarts.deaths, "deaths_after_results": restarts.deaths_after_results}
    trace = build_trace(ctx.workflow, ctx.protocol, plan.catalog, raw, t0, makespan, meta, seen,
                        decode=lambda blob: decode_batch(ctx.sealer, blob))
    meta["cold_starts"] = trace.cold_starts
    meta["warm_starts"] = int((~trace.workers["cold_start"]).sum()) if len(trace.workers) else 0
    # warm starts a completion handed straight to an idle process (executor.scripts' H op), not the launcher
    meta["handed_starts"] = int((trace.workers["start_via"] == "completion").sum()) if len(trace.workers) else 0
    return trace, meta


def started_workers(ctx: RunContext) -> int:
    """Logical worker generations a process claimed (a start the watchdog superseded was claimed by none)."""
    return sum(holder != SUPERSEDED.encode() for holder in ctx.r.hvals(ctx.k.claims))
