"""``simulate``: one run of a plan in simulated time, returned as a :class:`planning.trace.Trace`.

Durations come from the cost model at the plan's SLA (deterministic) or drawn
from its distributions (``sample=True``, seeded); the platform adds start-ups,
keep-alive, latencies, shared storage bandwidth and workflow-system overheads.
"""

from __future__ import annotations

import weakref
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from planning.billing import bill, resources
from planning.protocol import WorkerProtocol
from planning.sla import SLA
from planning.trace import TASK_COLUMNS, WORKER_COLUMNS, Trace
from planning.workflow import Workflow
from planning.gcpause import paused_gc
from simulator.draws import draw
from simulator.engine import Run, RunResult
from simulator.model import CompiledModel
from simulator.platform import Platform

Durations = Mapping[str, float] | Sequence[float] | np.ndarray


def default_platform(cost_model: Any, plan: Any, sample: bool) -> Platform:
    """The platform when none is given: the cost model's, at the plan's SLA (or its mean when sampling)."""
    return Platform.from_cost_model(cost_model, "mean" if sample else plan.sla)


def compile_plan(workflow: Workflow, plan: Any, cost_model: Any, *, protocol: WorkerProtocol | None = None,
                 durations: Durations | None = None) -> CompiledModel:
    """Compile once for many runs (Monte Carlo, calibration).

    A ``recorded`` plan replays recorded runtimes and stages what a workflow system
    stages (:func:`planning.planners.recorded.staged_bytes`: each task's external inputs
    before it, its outputs after it) through the platform's serial stager.
    """
    recorded = getattr(plan, "planner", None) == "recorded"
    if durations is None and recorded:
        from planning.recordings import recorded_durations

        durations = recorded_durations(workflow)
    model = CompiledModel(workflow, plan, cost_model, protocol=protocol, durations=durations)
    if recorded and protocol is None:   # a replay stages the workflow's inputs and every task's outputs
        from planning.recordings import staged_bytes

        model.stage_around(*staged_bytes(workflow))
    return model


def run_once(model: CompiledModel, platform: Platform, *, sample: bool = False, seed: int | None = None,
             record: bool = True, warm_pool: Mapping[str, int] | None = None) -> RunResult:
    """One run of a compiled plan: raw columns, no DataFrames.

    ``warm_pool``: idle worker processes per profile when the run starts (e.g. left
    warm by the run before on the same executor); their first users start warm.
    """
    draws = draw(model, np.random.default_rng(seed), platform.run_noise, platform.noise_scale,
                 platform.run_center) if sample else None
    return Run(model, platform, draws, record=record, warm_pool=dict(warm_pool or {})).run()


def simulate(workflow: Workflow, plan: Any, cost_model: Any, *, platform: Platform | None = None,
             sample: bool = False, seed: int | None = None, run_id: str | None = None,
             durations: Durations | None = None, protocol: WorkerProtocol | None = None,
             warm_pool: Mapping[str, int] | None = None) -> Trace:
    """Simulate ``plan`` once and return its trace (``engine="simulate"``).

    ``platform`` defaults to :meth:`Platform.from_cost_model` at the plan's SLA
    (at the mean when ``sample``), so a deterministic run agrees with the plan
    except for contention, keep-alive and the latencies the plan does not model.
    ``sample=True`` draws execution times from the cost model (and mean-one noise
    for transfers and start-ups) with ``seed``.  ``durations`` overrides execution
    times (a ``recorded`` plan replays its recorded runtimes by default);
    ``protocol`` is a :class:`WorkerProtocol` (subclass) to interpret instead of
    the plan's default one.  ``warm_pool`` (idle processes per profile at the start,
    see :func:`run_once`) matters with keep-alive.
    """
    run_id = run_id if run_id is not None else f"sim-{plan.planner}-{SLA.parse(plan.sla).name}" + (f"-s{seed}" if sample else "")
    # One pause of the collector for the whole call, and the compiled plan and the raw run freed before
    # it resumes: its first collection then only meets the trace, not the run's hundred thousand objects.
    with paused_gc():
        model = compile_plan(workflow, plan, cost_model, protocol=protocol, durations=durations)
        platform = platform if platform is not None else default_platform(cost_model, plan, sample)
        result = run_once(model, platform, sample=sample, seed=seed, warm_pool=warm_pool)
        meta = {"run_id": run_id, "engine": "simulate", "workflow": workflow.name, "planner": plan.planner,
                "sla": SLA.parse(plan.sla).name, "sample": bool(sample), "seed": seed, "platform": platform.to_dict(),
                "warm_pool": dict(warm_pool or {})}
        if result.worker_nodes:   # a cluster: where each worker ran (simulator.host.NodeCpus)
            meta["worker_nodes"] = result.worker_nodes
        trace = to_trace(model, result, run_id, meta)
        del model, result
    return trace


_DTYPES = {"float": np.dtype(np.float64), "int": np.dtype(np.int64), "bool": np.dtype(bool),
           "str": pd.Series(["x"], dtype=object).astype(str).dtype}


def _arrow_strings():
    """pyarrow when pandas keeps ``str`` columns in pyarrow (pandas >= 3 with pyarrow installed), else None."""
    if getattr(_DTYPES["str"], "storage", None) != "pyarrow":
        return None
    import pyarrow

    return pyarrow


_PA = _arrow_strings()


def _strings(values: Any, n: int | None = None) -> Any:
    """A ``str`` column of ``values`` (a list of strings), or of the one string ``values`` repeated ``n`` times.

    Built as a pyarrow array and wrapped, which skips pandas' per-element scan for missing
    values (half the time for a list; a repeated scalar costs nothing instead of a ``take``
    of ``n`` rows); the column is the one pandas would build.  Without pyarrow-backed
    strings, or for values pyarrow refuses, pandas builds it as usual."""
    if _PA is None:
        return values
    try:
        strings = _PA.large_string()
        arr = _PA.repeat(_PA.scalar(values, strings), n) if n is not None else _PA.array(values, strings)
    except (_PA.ArrowException, TypeError, ValueError):
        return values
    return pd.array(arr, dtype=_DTYPES["str"])


def _strings_at(column: Any, values: list[str], codes: np.ndarray) -> Any:
    """A ``str`` column of ``values[codes]`` (each task's worker or profile, by its worker's row), given
    ``column = _strings(values)``: the workers' few thousand names are converted once and gathered in
    pyarrow instead of converted once per task."""
    if _PA is None or column is values:     # (no pyarrow strings, or values pyarrow refused)
        return np.asarray(values, dtype=object)[codes].tolist()
    return pd.array(column._pa_array.take(_PA.array(codes)).combine_chunks(), dtype=_DTYPES["str"])


#: a workflow's task_id and kind columns, built once per topology (the workflow's read-only integer view,
#: replaced when the workflow changes): every trace of the workflow has the same ones
_ID_COLUMNS: "weakref.WeakKeyDictionary[Any, tuple[Any, Any]]" = weakref.WeakKeyDictionary()


def _id_columns(model: CompiledModel) -> tuple[Any, Any]:
    """The ``task_id`` and ``kind`` columns of ``model``'s workflow (see :data:`_ID_COLUMNS`)."""
    columns = _ID_COLUMNS.get(model.topology)
    if columns is None or len(columns[0]) != model.n:
        columns = _ID_COLUMNS[model.topology] = (_strings(model.ids), _strings(model.kinds))
    return columns


def _trace(tasks: pd.DataFrame, workers: pd.DataFrame, makespan_s: float, meta: dict[str, Any]) -> Trace:
    """``Trace(tasks, workers, makespan_s, meta)``, without its column-by-column coercion when the frames
    are already exactly what it would produce (every schema column present with its dtype, a RangeIndex):
    that coercion is a fixed ~15 ms per trace, half the time of a 1000-task simulation."""
    for df, schema in ((tasks, TASK_COLUMNS), (workers, WORKER_COLUMNS)):
        if not isinstance(df.index, pd.RangeIndex) or df.index.start != 0 or df.index.step != 1:
            return Trace(tasks, workers, makespan_s, meta)
        dtypes = df.dtypes
        for col, kind in schema.items():
            if col not in dtypes.index or dtypes[col] != _DTYPES[kind]:
                return Trace(tasks, workers, makespan_s, meta)
    trace = Trace.__new__(Trace)
    trace.tasks, trace.workers, trace.makespan_s, trace.meta = tasks, workers, float(makespan_s), meta
    return trace


def _floats(values: list) -> np.ndarray:
    """A float64 column from a list of numbers (None, for a task that never ran, becomes NaN)."""
    try:
        return np.array(values, dtype=np.float64)
    except TypeError:
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def to_trace(model: CompiledModel, result: RunResult, run_id: str, meta: dict[str, Any]) -> Trace:
    """Build the Trace DataFrames once, at the end."""
    t = result.tasks
    n = model.n
    f = _floats
    w = result.workers
    code = t["worker_code"]
    w_names, w_profiles = _strings(w["worker"]), _strings(w["profile"])
    w_cpus, w_memory = resources(w["profile"], model.catalog)
    if t["profile"] is None:      # every task on its worker's profile (simulator.columns.task_columns)
        profile, cpus, memory = _strings_at(w_profiles, w["profile"], code), w_cpus[code], w_memory[code]
    else:
        profile = _strings(t["profile"])
        cpus, memory = resources(t["profile"], model.catalog)
    task_ids, kinds = _id_columns(model)
    # numeric columns go in as numpy arrays: pandas then skips inferring a dtype from 100k Python objects
    tasks = pd.DataFrame({
        "run_id": _strings(run_id, n), "engine": _strings("simulate", n), "task_id": task_ids,
        "kind": kinds, "worker": _strings_at(w_names, w["worker"], code), "profile": profile,
        "cpus": cpus, "memory_mb": memory,
        "cold_start": np.array(t["cold_start"], dtype=bool), "startup_s": f(t["startup_s"]),
        "attempt": np.zeros(n, np.int64), "ready_s": f(t["ready_s"]), "worker_start_s": f(t["worker_start_s"]),
        "download_start_s": f(t["download_start_s"]), "download_end_s": f(t["download_end_s"]),
        "exec_start_s": f(t["exec_start_s"]), "exec_end_s": (exec_end := f(t["exec_end_s"])),
        "upload_start_s": exec_end.copy(), "upload_end_s": f(t["upload_end_s"]), "done_s": f(t["done_s"]),
        "input_bytes": f(model.in_bytes), "output_bytes": f(t["output_bytes"]),
    })
    start_s, stop_s = f(w["start_s"]), f(w["stop_s"])
    gb_s, cost = bill(w["profile"], start_s, stop_s, model.catalog)
    nw = len(w["worker"])
    workers = pd.DataFrame({
        "run_id": _strings(run_id, nw), "engine": _strings("simulate", nw), "worker": w_names,
        "profile": w_profiles,
        "cpus": w_cpus, "memory_mb": w_memory,
        "cold_start": np.array(w["cold_start"], dtype=bool), "start_s": start_s, "ready_s": f(w["ready_s"]),
        "stop_s": stop_s, "busy_s": f(w["busy_s"]), "tasks": np.array(w["tasks"], dtype=np.int64),
        "gb_s": gb_s, "cost": cost,
    })
    return _trace(tasks, workers, result.makespan_s, meta)
