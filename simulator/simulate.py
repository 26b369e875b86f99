"""``simulate``: one run of a plan in simulated time, returned as a :class:`planning.trace.Trace`.

Durations come from the cost model at the plan's SLA (deterministic) or drawn
from its distributions (``sample=True``, seeded); the platform adds start-ups,
keep-alive, latencies, shared storage bandwidth and workflow-system overheads.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from planning.protocol import WorkerProtocol
from planning.sla import SLA
from planning.trace import Trace
from planning.workflow import Workflow
from simulator.engine import Run, RunResult, draw, paused_gc
from simulator.model import CompiledModel
from simulator.platform import Platform

Durations = Mapping[str, float] | Sequence[float] | np.ndarray


def default_platform(cost_model: Any, plan: Any, sample: bool) -> Platform:
    """The platform when none is given: the cost model's, at the plan's SLA (or its mean when sampling)."""
    return Platform.from_cost_model(cost_model, "mean" if sample else plan.sla)


def compile_plan(workflow: Workflow, plan: Any, cost_model: Any, *, protocol: WorkerProtocol | None = None,
                 durations: Durations | None = None) -> CompiledModel:
    """Compile once for many runs (Monte Carlo, calibration).  A ``recorded`` plan replays recorded runtimes."""
    if durations is None and getattr(plan, "planner", None) == "recorded":
        from planning.planners.recorded import recorded_durations

        durations = recorded_durations(workflow)
    return CompiledModel(workflow, plan, cost_model, protocol=protocol, durations=durations)


def run_once(model: CompiledModel, platform: Platform, *, sample: bool = False, seed: int | None = None,
             record: bool = True) -> RunResult:
    """One run of a compiled plan: raw columns, no DataFrames."""
    draws = draw(model, np.random.default_rng(seed)) if sample else None
    return Run(model, platform, draws, record=record).run()


def simulate(workflow: Workflow, plan: Any, cost_model: Any, *, platform: Platform | None = None,
             sample: bool = False, seed: int | None = None, run_id: str | None = None,
             durations: Durations | None = None, protocol: WorkerProtocol | None = None) -> Trace:
    """Simulate ``plan`` once and return its trace (``engine="simulate"``).

    ``platform`` defaults to :meth:`Platform.from_cost_model` at the plan's SLA
    (at the mean when ``sample``), so a deterministic run agrees with the plan
    except for contention, keep-alive and the latencies the plan does not model.
    ``sample=True`` draws execution times from the cost model (and mean-one noise
    for transfers and start-ups) with ``seed``.  ``durations`` overrides execution
    times (a ``recorded`` plan replays its recorded runtimes by default);
    ``protocol`` is a :class:`WorkerProtocol` (subclass) to interpret instead of
    the plan's default one.
    """
    with paused_gc():
        model = compile_plan(workflow, plan, cost_model, protocol=protocol, durations=durations)
        platform = platform if platform is not None else default_platform(cost_model, plan, sample)
        result = run_once(model, platform, sample=sample, seed=seed)
    run_id = run_id if run_id is not None else f"sim-{plan.planner}-{SLA.parse(plan.sla).name}" + (f"-s{seed}" if sample else "")
    meta = {"run_id": run_id, "engine": "simulate", "workflow": workflow.name, "planner": plan.planner,
            "sla": SLA.parse(plan.sla).name, "sample": bool(sample), "seed": seed, "platform": platform.to_dict()}
    with paused_gc():
        return to_trace(model, result, run_id, meta)


def to_trace(model: CompiledModel, result: RunResult, run_id: str, meta: dict[str, Any]) -> Trace:
    """Build the Trace DataFrames once, at the end."""
    t = result.tasks
    n = model.n
    cpus, memory = model.cpus, model.memory_mb
    profiles = t["profile"]
    tasks = pd.DataFrame({
        "run_id": run_id, "engine": "simulate", "task_id": model.ids, "kind": model.kinds, "worker": t["worker"],
        "profile": profiles, "cpus": [cpus[p] for p in profiles], "memory_mb": [memory[p] for p in profiles],
        "cold_start": t["cold_start"], "startup_s": t["startup_s"], "attempt": np.zeros(n, np.int64),
        "ready_s": t["ready_s"], "worker_start_s": t["worker_start_s"], "download_start_s": t["download_start_s"],
        "download_end_s": t["download_end_s"], "exec_start_s": t["exec_start_s"], "exec_end_s": t["exec_end_s"],
        "upload_start_s": t["exec_end_s"], "upload_end_s": t["upload_end_s"], "done_s": t["done_s"],
        "input_bytes": model.in_bytes, "output_bytes": t["output_bytes"],
    })
    w = result.workers
    lifetime = np.asarray(w["stop_s"], float) - np.asarray(w["start_s"], float)
    workers = pd.DataFrame({
        "run_id": run_id, "engine": "simulate", "worker": w["worker"], "profile": w["profile"],
        "cpus": [cpus[p] for p in w["profile"]], "memory_mb": [memory[p] for p in w["profile"]],
        "cold_start": w["cold_start"], "start_s": w["start_s"], "ready_s": w["ready_s"], "stop_s": w["stop_s"],
        "busy_s": w["busy_s"], "tasks": w["tasks"],
        "gb_s": lifetime * np.array([memory[p] / 1024.0 for p in w["profile"]]),
        "cost": lifetime * np.array([model.price[p] for p in w["profile"]]),
    })
    return Trace(tasks, workers, result.makespan_s, meta)
