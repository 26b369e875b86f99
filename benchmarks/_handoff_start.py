"""The hand-off and worker-start entries of ``benchmarks/results/executor.json`` (issue 18).

``python benchmarks/bench_executor.py`` records both (``--handoff-only`` updates only
these entries, keeping the file's others).

*Hand-off*: task ``a``'s execution end to task ``b``'s execution start, ``b`` on
another logical worker that ``a``'s completion starts (a warm process), at 8 B,
64 KiB, 1 MiB and 10 MiB, raw bytes (replay tasks: ``GETRANGE``) and pickled bytes
(DSL tasks returning ``bytes``: pickling and the payload's authentication on both
sides).  Beside it the phases from the trace - ``a``'s upload, ``b``'s ready to its
worker's start (the launcher's hand-off to a warm process), the worker's start to its
download's end (its first round trip: input, code, spec, claim), the download itself - and
a raw redis-py ``SET`` + ``GET`` of the same bytes on the same server, interleaved
with the runs (raw, then one run, per repeat) so both share the machine's load.
Beside it, interleaved too, the same hand-off with b's start through the launch
queue (``handoff_via_launch_queue_s``: ``ExecutorSettings.handoff_to_idle`` off, the
launcher waking to hand it on) instead of straight to the idle process.
Targets: 1 MiB raw ``<= 1.5x`` raw SET+GET, 10 MiB raw ``<= 1.0x``.

*Worker start*: submission to the first task's execution start of a one-task run,
on a warm process (the executor's ``keep_alive_s`` keeps it) and on a cold one (an
executor whose processes leave at once: every run forks), against a bare ``fork``
from a process of the same imports (to the child's first instruction) and
``python -c pass``.  Interleaved: warm, cold, fork, python per repeat.  Targets:
warm ``<= 5 ms``, cold ``<= 50 ms``.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from executor import Executor, ExecutorSettings
from executor.plans import assigned_plan
from planning.sources.dsl import build_workflow, task
from planning.tasks import Task
from planning.workflow import Workflow

__all__ = ["HANDOFF_SIZES", "TARGETS", "bench_handoff", "bench_start", "checks"]

HANDOFF_SIZES = (8, 64 * 1024, 2**20, 10 * 2**20)
TARGETS = {"handoff_1mib_vs_raw": 1.5, "handoff_10mib_vs_raw": 1.0, "warm_start_ms": 5.0, "cold_start_ms": 50.0}


@task
def emit(nbytes):
    return bytes(nbytes)


@task
def take(data):
    return len(data)


def _replay_pair(nbytes: int) -> Workflow:
    return Workflow.from_tasks([Task("a", "produce", runtime_s=0.0, output_bytes=nbytes),
                                Task("b", "consume", runtime_s=0.0, output_bytes=8)],
                               {"b": ["a"]}, edge_bytes={("a", "b"): nbytes}, name=f"handoff-{nbytes}")


def _phases(ex: Executor, wf: Workflow, plan: Any, settings: ExecutorSettings | None = None) -> dict[str, float]:
    """The hand-off's phases in one run (under ``settings`` instead of the executor's, when given)."""
    own = ex.settings
    ex.settings = settings or own
    try:
        t = ex.run(wf, plan).trace.tasks.set_index("task_id")
    finally:
        ex.settings = own
    a, b = t.loc["a"], t.loc["b"]
    return {"handoff_s": float(b["exec_start_s"] - a["exec_end_s"]),
            "a_upload_s": float(a["upload_end_s"] - a["upload_start_s"]),
            "b_ready_to_worker_s": float(b["worker_start_s"] - b["ready_s"]),
            "b_worker_to_input_s": float(b["download_end_s"] - b["worker_start_s"]),
            "b_download_s": float(b["download_end_s"] - b["download_start_s"]),
            "b_warm": not bool(b["cold_start"])}


def bench_handoff(ex: Executor, repeats: int, sizes: tuple[int, ...] = HANDOFF_SIZES) -> list[dict]:
    """Hand-off a -> b against raw SET+GET, per size and flavour (medians of interleaved repeats)."""
    r = ex.client
    rows = []
    # the reference: b's start through the launch queue, its launcher waking to hand it on (two wake-ups)
    queued = dataclasses.replace(ex.settings, handoff_to_idle=False)
    for nbytes in sizes:
        blob = bytes(nbytes)

        def raw_pair() -> float:
            t0 = time.perf_counter()
            r.set("bench:handoff", blob)
            r.get("bench:handoff")
            return time.perf_counter() - t0

        for flavour, wf in (("raw", _replay_pair(nbytes)),
                            ("pickled", build_workflow(take.named("b")(emit.named("a")(nbytes)), name="handoff-dsl"))):
            plan = assigned_plan(wf, {"a": "wa", "b": "wb"}, "large")
            raw_pair()
            _phases(ex, wf, plan)   # warm-up: both processes warm
            _phases(ex, wf, plan, queued)
            raws, runs, via_queue = [], [], []
            for _ in range(repeats):
                raws.append(raw_pair())
                runs.append(_phases(ex, wf, plan))
                via_queue.append(_phases(ex, wf, plan, queued))
            raw_s = statistics.median(raws)
            med = {k: statistics.median(run[k] for run in runs) for k in runs[0] if k != "b_warm"}
            row = {"bytes": nbytes, "flavour": flavour, **med, "raw_set_get_s": raw_s,
                   "handoff_via_launch_queue_s": statistics.median(run["handoff_s"] for run in via_queue),
                   "handoff_vs_raw": med["handoff_s"] / raw_s, "warm_starts": sum(run["b_warm"] for run in runs),
                   "repeats": repeats, "handoff_runs_s": [run["handoff_s"] for run in runs], "raw_runs_s": raws}
            rows.append(row)
            print(f"hand-off {nbytes:>9} B {flavour:<8} {med['handoff_s'] * 1e3:7.2f} ms  raw SET+GET "
                  f"{raw_s * 1e3:6.2f} ms  x{row['handoff_vs_raw']:.2f}  (upload {med['a_upload_s'] * 1e3:.2f}, "
                  f"to b's worker {med['b_ready_to_worker_s'] * 1e3:.2f}, its first round trip "
                  f"{med['b_worker_to_input_s'] * 1e3:.2f} ms; via the launch queue "
                  f"{row['handoff_via_launch_queue_s'] * 1e3:.2f} ms)", flush=True)
        r.delete("bench:handoff")
    return rows


def _one_task() -> tuple[Workflow, Any]:
    wf = Workflow.from_tasks([Task("only", "noop", runtime_s=0.0, output_bytes=8)], {}, name="start")
    return wf, assigned_plan(wf, {"only": "w"}, "large")


def _task_start(ex: Executor, wf: Workflow, plan: Any) -> tuple[float, float, bool]:
    """(submission -> task start, submission -> the process has its start, cold?) of one run."""
    t = ex.run(wf, plan).trace.tasks.iloc[0]
    return float(t["exec_start_s"]), float(t["worker_start_s"]), bool(t["cold_start"])


def _bare_fork() -> float:
    """Seconds from ``fork()`` to the child's first instruction (it reports its clock through a pipe)."""
    rd, wr = os.pipe()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.write(wr, repr(time.perf_counter()).encode())
        os._exit(0)
    os.close(wr)
    started = float(os.read(rd, 64))
    os.close(rd)
    os.waitpid(pid, 0)
    return started - t0


def _python_pass() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - t0


def bench_start(warm_ex: Executor, cold_ex: Executor, repeats: int) -> dict[str, Any]:
    """Submission -> task start, warm and cold, beside a bare fork and ``python -c pass`` (medians, ms)."""
    wf, plan = _one_task()
    _task_start(warm_ex, wf, plan)   # warm-up: a warm process waits
    warm, warm_ready, cold, cold_ready, forks, pythons, misses = [], [], [], [], [], [], 0
    for _ in range(repeats):
        start, ready, was_cold = _task_start(warm_ex, wf, plan)
        (cold if was_cold else warm).append(start)
        (cold_ready if was_cold else warm_ready).append(ready)
        time.sleep(0.05)   # the cold executor's last process has left
        start, ready, was_cold = _task_start(cold_ex, wf, plan)
        misses += not was_cold
        (cold if was_cold else warm).append(start)
        (cold_ready if was_cold else warm_ready).append(ready)
        forks.append(_bare_fork())
        pythons.append(_python_pass())
    ms = lambda xs: statistics.median(xs) * 1e3 if xs else None   # noqa: E731
    entry = {"warm_task_start_ms": ms(warm), "warm_process_has_start_ms": ms(warm_ready), "warm_n": len(warm),
             "cold_task_start_ms": ms(cold), "cold_process_has_start_ms": ms(cold_ready), "cold_n": len(cold),
             "cold_runs_started_warm": misses, "bare_fork_ms": ms(forks), "python_c_pass_ms": ms(pythons),
             "repeats": repeats, "warm_runs_ms": [x * 1e3 for x in warm], "cold_runs_ms": [x * 1e3 for x in cold]}
    print(f"start: warm {entry['warm_task_start_ms']:.2f} ms (process has it at {entry['warm_process_has_start_ms']:.2f})"
          f", cold {entry['cold_task_start_ms']:.2f} ms (at {entry['cold_process_has_start_ms']:.2f}); bare fork "
          f"{entry['bare_fork_ms']:.2f} ms, python -c pass {entry['python_c_pass_ms']:.1f} ms", flush=True)
    return entry


def cold_executor() -> Executor:
    """An executor whose processes leave as soon as their logical worker is done: every run forks."""
    return Executor(settings=ExecutorSettings(keep_alive_s=0.0))


def checks(handoff: list[dict], start: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The issue-18 targets over the raw-bytes hand-offs and the starts."""
    by = {(r["bytes"], r["flavour"]): r for r in handoff}
    out = {}
    for name, nbytes in (("handoff_1mib_vs_raw", 2**20), ("handoff_10mib_vs_raw", 10 * 2**20)):
        row = by.get((nbytes, "raw"))
        if row is not None:
            out[name] = {"value": row["handoff_vs_raw"], "target": TARGETS[name],
                         "pass": row["handoff_vs_raw"] <= TARGETS[name],
                         "note": "a's execution end -> b's execution start over raw redis-py SET+GET (raw bytes)"}
    for name, key in (("warm_start_ms", "warm_task_start_ms"), ("cold_start_ms", "cold_task_start_ms")):
        if start.get(key) is not None:
            out[name] = {"value": start[key], "target": TARGETS[name], "pass": start[key] <= TARGETS[name],
                         "note": "submission -> the task's execution start (one-task run)"}
    return out
