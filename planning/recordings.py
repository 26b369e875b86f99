"""What a recorded execution says: its runtimes, machines, staged bytes and makespan.

A real execution read from WfFormat (:func:`planning.sources.wfformat.read_wfformat`)
records each task's runtime and the machine it ran on, the machines' cores and
memory, and the whole run's makespan, but not when tasks started.  These readers are
vocabulary: the ``recorded`` planner (:mod:`planning.planners.recorded`) rebuilds a
plan from them, the simulator replays recorded runtimes and stages what the workflow
system staged, and calibration compares with the recorded makespan.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from planning.errors import PlanError
from planning.workflow import Workflow

#: Name of the machine of tasks that do not say where they ran.
DEFAULT_MACHINE = "local"


def recorded_durations(workflow: Workflow) -> dict[str, float]:
    """Each task's recorded runtime in seconds (0 for a task without one)."""
    return {t.id: float(t.runtime_s or 0.0) for t in workflow.tasks}


def machine_of(workflow: Workflow) -> dict[str, str]:
    """The machine each task ran on (see the module docstring for the fallbacks)."""
    known = list((workflow.metadata.get("machines") or {}).keys())
    fallback = known[0] if len(known) == 1 else DEFAULT_MACHINE
    out = {}
    for t in workflow.tasks:
        machines = t.meta.get("machines") if t.meta else None
        out[t.id] = str(machines[0]) if machines else fallback
    return out


def machine_cores(workflow: Workflow, machines: dict[str, str]) -> dict[str, int]:
    """Cores per machine as recorded; unknown: one slot per task it ran."""
    recorded = workflow.metadata.get("machines") or {}
    count: dict[str, int] = {}
    for m in machines.values():
        count[m] = count.get(m, 0) + 1
    cores = {}
    for m, n in count.items():
        c = (recorded.get(m) or {}).get("cores")
        cores[m] = int(c) if isinstance(c, (int, float)) and c >= 1 else n
    return cores


def staged_bytes(workflow: Workflow) -> tuple[np.ndarray, np.ndarray]:
    """Bytes a workflow system stages around each task (topological order): (in before it, out after it).

    In: the task's external inputs (files no task writes, ``meta["external_input_bytes"]``
    as :func:`planning.sources.wfformat.read_wfformat` records them), once per task that reads them
    (each job gets its own copy).  Out: everything the task writes (its ``output_bytes``:
    final outputs and intermediate files alike), at least its largest out-edge.
    """
    topology = workflow.topology()
    tasks = [workflow.task(t) for t in topology.ids]
    stage_in = np.array([float(t.meta.get("external_input_bytes") or 0.0) for t in tasks])
    written = np.array([float(t.output_bytes or 0.0) for t in tasks])
    return stage_in, np.maximum(written, topology.out_bytes)


def machine_family(workflow: Workflow) -> str:
    """The kind of machines an execution ran on: their names without the trailing number, with their cores.

    ``worker-3`` and ``worker-4`` with 48 cores each are ``worker/48``; a run that used
    two kinds is ``cc-worker/48,compute/48``.  Clusters named alike are alike in their
    overheads far more often than not (WfInstances' montage runs: ``workflowhub/96``
    machines dispatch 2.5x faster than ``mem/48``), which calibration uses to fit one
    platform per family.  ``""`` when nothing is recorded.
    """
    recorded = workflow.metadata.get("machines") or {}
    used = set(machine_of(workflow).values()) & set(recorded) or set(recorded)
    kinds = set()
    for name in used:
        stem = re.sub(r"[-_.]?\d+$", "", str(name).split(".")[0]) or str(name)
        kinds.add(f"{stem}/{(recorded.get(name) or {}).get('cores') or '?'}")
    return ",".join(sorted(kinds))


def recorded_makespan(workflow: Workflow) -> float:
    """The execution's recorded makespan (seconds); raises when the file has none."""
    value: Any = workflow.metadata.get("recorded_makespan_s")
    if value is None or not (float(value) > 0):
        raise PlanError(f"workflow {workflow.name!r} has no recorded makespan",
                        "calibrate on real executions (WfFormat files with makespanInSeconds)")
    return float(value)
