"""Which optimization cells are null by construction, checked on the plans and on the real traces.

An optimization that finds nothing to do (clustering with no fan-out worth merging,
pre-load or delayed I/O whose transfers are all under the 4 MiB threshold) leaves a
variant that runs exactly what its base runs.  Its "real change" is then run-to-run
noise, and with ~70 cells judged at 95 % a few such cells exclude 0 by chance
(issue 17: deep-chain critical-path clustering, epigenomics heft delayed I/O).

A cell counts as null only when both hold, each checked here rather than assumed:

* **the plan and the protocol decide the same** (:func:`plan_decisions`): the same
  assignment (each worker's sequence and profile), the same warm starts, and per
  task the same protocol decisions - what is stored and fetched, who reads a stored
  output, whether leftovers are removed, whether a task's inputs are pre-loaded,
  whether its output is uploaded lazily (and then whether that upload yields);
* **every real run did the same** (:func:`trace_decisions`): per task its worker,
  cold start, input and output bytes, whether it uploaded, whether its download
  started before it was ready (a pre-load) and whether its worker's next task started
  before its upload ended (a lazy upload) - the set of run signatures equal to the
  base's.

:func:`run_spread` then gives a null cell the measured spread of its base's own runs
(identical runs of one configuration): the benchmark judges a null cell's sign against
it where the cell's own 5-pair interval excludes 0 (with ~70 cells at 95 %, a few null
cells do so by chance).
"""

from __future__ import annotations

import hashlib
import statistics
from typing import Any

from planning.protocol import WorkerProtocol
from planning.workflow import Workflow


def _digest(value: Any) -> str:
    return hashlib.sha1(repr(value).encode()).hexdigest()[:16]


def plan_decisions(workflow: Workflow, plan: Any, protocol: WorkerProtocol) -> str:
    """A digest of what ``plan`` run under ``protocol`` decides (see the module docstring)."""
    a = plan.assignment
    worker_of = a.worker_of
    tables = protocol.compile()
    per_task = []
    for t in protocol.topology.ids:
        w = worker_of[t]
        lazy = bool(protocol.lazy_upload(t, w))
        per_task.append((t, w, tuple(protocol.stored_readers(t)), bool(protocol.preloads() and protocol.preloads_inputs(t)),
                         lazy, lazy and bool(protocol.lazy_upload_yields(w))))
    return _digest((sorted((w, tuple(s)) for w, s in a.sequence.items()), sorted(a.worker_profile.items()),
                    sorted((w, round(float(s), 9)) for w, s in (a.warm_starts or {}).items()),
                    list(tables.out_bytes), list(tables.store), [list(f) for f in tables.fetch],
                    bool(protocol.removes_leftovers()), per_task))


def trace_decisions(tasks: Any) -> str:
    """A digest of what a real run did, from its trace's task rows (see the module docstring).

    Per task: its worker, cold start, input and output bytes, whether it uploaded,
    whether its download started before it was ready (a pre-load) and whether the next
    task of its worker started before its upload ended (a lazy upload).
    """
    t = tasks.sort_values(["worker", "exec_start_s"])
    next_start = t.groupby("worker")["exec_start_s"].shift(-1)
    rows = []
    for r, nxt in zip(t.itertuples(index=False), next_start):
        rows.append((r.task_id, r.worker, bool(r.cold_start), float(r.input_bytes), float(r.output_bytes),
                     bool(r.upload_end_s > r.upload_start_s), bool(r.download_start_s < r.ready_s),
                     bool(nxt == nxt and nxt < r.upload_end_s)))
    return _digest(sorted(rows))


def is_null(cell: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Whether ``cell`` is null against ``base``: its plan decisions and its real runs' decisions the same."""
    plan_same = cell.get("plan_decisions") is not None and cell.get("plan_decisions") == base.get("plan_decisions")
    runs, base_runs = cell.get("trace_decisions") or [], base.get("trace_decisions") or []
    runs_same = bool(runs) and bool(base_runs) and set(runs) == set(base_runs)
    return {"plan_same": plan_same, "real_runs_same": runs_same, "null": plan_same and runs_same}


def run_spread(runs: list[float]) -> float | None:
    """The spread of one configuration's identical runs: ``(max - min) / median`` (None under three runs).

    Two medians of runs of the same configuration differ by noise of about this size:
    a null cell's real change within its base's spread is noise the base showed itself.
    """
    if len(runs) < 3:
        return None
    mid = statistics.median(runs)
    return (max(runs) - min(runs)) / mid if mid > 0 else None
