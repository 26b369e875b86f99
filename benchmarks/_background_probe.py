"""What a background fetch costs the tasks running beside it on this host: the probe behind the simulated
pre-load's CPU (``Platform.fetch_thread_s_per_byte``, ``fetch_server_s_per_byte``; :mod:`simulator.quota`).

A pre-load moves bytes on a thread of the worker process while its task runs: the
thread's CPU (its system calls, its share of the GIL's hand-overs) comes out of the
worker's own CPU quota, and the server's side (another process) out of the host's
cores.  Which of the two a task pays depends on the host: with a core idle the
server runs there and the task loses only its own thread's CPU; with every core
busy the tasks together lose the server's too.  So the probe runs the same fetch in
both settings (:func:`probe_workflow`) and reads the two terms off the tasks'
execution times, base (no pre-load) against pre-load, interleaved:

* other core idle: the pre-loading worker's task ``l`` runs longer by the thread's
  CPU alone (the simulator's model puts nothing else on it): ``thread = dl_idle / n``;
* other core busy (``q`` on the other worker, beside ``l`` all along): the cores did
  the same work plus the transfer's, every core busy throughout, so the two tasks
  together lose the thread's and the server's CPU: ``server = (dl_busy + dq_busy -
  dl_idle) / n``.

Each difference is the median of the repetitions' paired differences, kept >= 0, in CPU-seconds: divided by
its task's dilation (the base runs' median over :data:`TASK_S`), since on a host busy with other work (the
simulator's model has none) a task runs ``dilation`` times slower and so does the work added to it.
The probe's tasks are the replay's CPU-bound Python (``executor.replay.burn_cpu``), on
the 1-CPU profile HEFT plans the replay workflows on, like the cells' tasks.
"""

from __future__ import annotations

import statistics
from typing import Any

from planning.costs.cost_model import CostModel
from planning.plan import Plan
from planning.protocol.optimizations import optimize
from planning.tasks import Task
from planning.workflow import Workflow

MB = 1_000_000
#: bytes the probe pre-loads (the largest replayed payload, for the clearest signal)
PROBE_BYTES = 64 * MB
#: seconds of CPU of each long task the fetch runs beside
TASK_S = 0.5


def probe_workflow(busy: bool, nbytes: int = PROBE_BYTES) -> tuple[Workflow, dict[str, str], dict[str, list[str]]]:
    """``p`` (0.02 s, ``nbytes`` out) then, when ``busy``, ``q`` (:data:`TASK_S`) on w0; ``l`` (:data:`TASK_S`) then
    ``c`` (reads ``p``'s output and ``l``'s) on w1: pre-loaded, ``p``'s output moves while ``l`` runs."""
    wf = Workflow("background-probe-busy" if busy else "background-probe-idle")
    wf.add_task(Task("p", "probe", runtime_s=0.02, output_bytes=nbytes))
    wf.add_task(Task("l", "probe", runtime_s=TASK_S, output_bytes=1))
    wf.add_task(Task("c", "probe", runtime_s=0.01, output_bytes=1))
    wf.add_edge("p", "c", nbytes)
    wf.add_edge("l", "c", 1)
    places, seq = {"p": "w0", "l": "w1", "c": "w1"}, {"w0": ["p"], "w1": ["l", "c"]}
    if busy:
        wf.add_task(Task("q", "probe", runtime_s=TASK_S, output_bytes=1))
        wf.add_edge("p", "q", 1)
        places["q"] = "w0"
        seq["w0"].append("q")
    wf.validate()
    return wf, places, seq


def one_cpu_profile(catalog: Any) -> str:
    """The catalog's 1-CPU profile (the first if none has one CPU)."""
    return next((p.name for p in catalog if float(p.cpus) == 1.0), catalog.names[0])


def probe_background(ex: Any, model: CostModel, catalog: Any, repetitions: int = 5,
                     nbytes: int = PROBE_BYTES) -> dict[str, Any]:
    """The per-byte CPU of a pre-load, the worker thread's and the server's, on this host (module docstring)."""
    profile = one_cpu_profile(catalog)
    cells = {}
    for busy in (False, True):
        wf, places, seq = probe_workflow(busy, nbytes)
        base = Plan.from_assignment(wf, catalog, model.estimate_workflow(wf, catalog, "mean"), model, "mean",
                                    places, {w: profile for w in seq}, planner="probe", sequence=seq)
        cells[busy] = (wf, {"base": (base, None), "preload": optimize(base, wf, model, ("preload",))})
    diffs: dict[str, list[float]] = {"l_idle": [], "l_busy": [], "q_busy": []}
    bases: dict[str, list[float]] = {k: [] for k in diffs}
    for rep in range(repetitions + 1):           # the first is a warm-up, not recorded
        for busy, (wf, variants) in cells.items():
            seconds = {}
            for name in (("base", "preload") if rep % 2 == 0 else ("preload", "base")):
                plan, cls = variants[name]
                protocol = None if cls is None else cls.for_plan(wf, plan)
                t = ex.run(wf, plan, protocol=protocol).trace.tasks.set_index("task_id")
                seconds[name] = {x: float(t.loc[x, "exec_end_s"] - t.loc[x, "exec_start_s"])
                                 for x in ("l", "q") if x in t.index}
            if rep == 0:
                continue
            for task in ("l", "q") if busy else ("l",):
                key = f"{task}_{'busy' if busy else 'idle'}"
                diffs[key].append(seconds["preload"][task] - seconds["base"][task])
                bases[key].append(seconds["base"][task])
    return {**fetch_cpu(diffs, bases, nbytes), "background_probe_bytes": float(nbytes),
            "background_probe_profile": profile}


def fetch_cpu(diffs: dict[str, list[float]], bases: dict[str, list[float]], nbytes: float) -> dict[str, float]:
    """The per-byte terms from the probe's paired differences (pre-load minus base) and base seconds of ``l`` with
    the other core idle (``l_idle``), of ``l`` and ``q`` with it busy (``l_busy``, ``q_busy``); module docstring.

    >>> r = fetch_cpu({"l_idle": [0.02, 0.04, 0.03], "l_busy": [0.06], "q_busy": [0.02]},
    ...               {"l_idle": [1.0, 1.0, 1.0], "l_busy": [0.5], "q_busy": [0.5]}, 1e6)
    >>> round(r["fetch_thread_s_per_byte"] * 1e9, 6), round(r["fetch_server_s_per_byte"] * 1e9, 6)
    (15.0, 65.0)
    """
    dilation = {k: max(statistics.median(v) / TASK_S, 1.0) for k, v in bases.items()}
    lost = {k: statistics.median(v) / dilation[k] for k, v in diffs.items()}
    thread = max(lost["l_idle"], 0.0)
    server = max(lost["l_busy"] + lost["q_busy"] - thread, 0.0)
    return {"fetch_thread_s_per_byte": thread / nbytes, "fetch_server_s_per_byte": server / nbytes,
            **{f"background_lost_{k}_s": v for k, v in lost.items()},
            **{f"background_dilation_{k}": v for k, v in dilation.items()}}
