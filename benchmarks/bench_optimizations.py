"""Optimizations benchmark: each optimization alone and all together, planned, simulated and real.

For five workflows (a skewed fan-out/fan-in of large partial results, :func:`fan_large`;
a deep chain; a deep chain
with side branches the planners spread over two workers (:func:`ladder`: the plain
chain stays on one worker, where pre-load and delayed I/O have nothing to overlap), the
Epigenomics replay, a ``@task`` matrix pipeline) and two planners (``heft``,
``critical-path``), each variant - the plan as the planner made it (``base``), each
optimization alone, pre-load with delayed I/O (the issue's target), and all of them -
is measured three ways:

* **planned**: the re-timed plan's makespan, cost and GB-seconds;
* **simulated**: one deterministic simulation on this host's platform (its cores,
  the executor's keep-alive), with the variant's protocol;  both predictions move
  data at the executor's link and start workers at its cold start as probed before
  the cells (:func:`probe_host`; its launcher's serial part, :func:`probe_launcher`,
  is the simulated launcher's);
* **real**: ``--repetitions`` runs on the executor (more for a short workflow, whose
  cold starts' jitter is a larger share of each run: :func:`repetitions_for`), variants
  interleaved in an order rotated per repetition after one unrecorded warm-up run
  (:func:`run_order`); medians; the host's load average before each run.

Bytes moved (stored outputs plus fetched inputs) follow from the protocol's
decision tables, the same in every engine; the server's peak memory
(:func:`planning.protocol.optimizations.server_memory`) is taken on each trace.
Per cell the table gives the predicted (planned, simulated) and the real change
in makespan against ``base``, the real change's paired bootstrap 95 % interval
(:func:`change_ci`), and whether the prediction got its sign (:func:`sign_agrees`:
judged where the interval excludes 0; a change inside the run-to-run noise has none;
a cell checked null on its plan and its real traces, :mod:`_null_cells`, against its
base's run spread; a cell judged wrong is confirmed on fresh pairs with a corrected
interval before the verdict stands, :mod:`_confirm`)
and size (within 10 percentage points of the medians' change) right.  Between real runs the warm pool drains
(keep-alive 1 s, a 1.2 s pause), so every run starts cold, as the plan assumes.

A full record also runs fan-large's base and pre-load with delayed I/O (heft) at other
partial sizes (:data:`SWEEP_PARTIAL_MB`) and tabulates the cut by size beside the
record's own (``partial_size_sweep``): what the transfer optimizations buy grows with the
data a gather moves, and the table says whether the prediction follows.

Writes ``benchmarks/results/optimizations.json``; ``--quick`` (one repetition, fan-large
and the ladder with heft) checks that it works - pass ``--out`` elsewhere: not a record
(nor is a run of some ``--workflows`` / ``--planners``: its ``partial_run`` says so).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform as pyplatform
import random
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from executor import Executor, ExecutorSettings
from executor.server.urls import redacted_url
from experiments.config import scaled_workflow
import _revision      # the commit measured: taken when the run starts
from _remote_link import RemoteLinkError, remote_store
from _null_cells import is_null, plan_decisions, run_spread, trace_decisions
from _confirm import CONFIRM_REPETITIONS, confirmed_sign, shadow_cells
from _background_probe import one_cpu_profile, probe_background
from _opt_prediction import PREDICTIONS, prediction_note, runner_prediction
from planning.costs.cost_model import CostModel
from planning.plan import Plan
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.protocol import WorkerProtocol
from planning.protocol.optimizations import optimize, preload_memory, server_memory
from planning.sources.generators import generate
from planning.sources.loading import load_workflow
from planning.tasks import Task
from planning.trace import Trace
from planning.workflow import Workflow
from simulator import simulate
from simulator.platform import Platform

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "optimizations.json"
VARIANTS: dict[str, tuple[str, ...]] = {"base": (), "retention": ("retention",), "clustering": ("clustering",),
                                        "prewarm": ("prewarm",), "preload": ("preload",),
                                        "delayed_io": ("delayed_io",), "preload+delayed_io": ("preload", "delayed_io"),
                                        "all": ("clustering", "prewarm", "retention", "preload", "delayed_io")}
#: optimizations some engine does not follow yet (none: every one is built in the three engines)
NOT_BUILT: tuple[str, ...] = ()
PLANNERS = ("heft", "critical-path")
KEEP_ALIVE_S = 1.0
#: the host probe's small transfer (between warm workers): the link's own rate, below LARGE_TRANSFER_BYTES
SMALL_PROBE_BYTES = 10_000_000
#: bytes one transfer moves before its pages are new to the process (glibc's largest reused buffer: its mmap
#: threshold's ceiling, 32 MiB on 64-bit); the simulated platform's large_transfer_bytes
LARGE_TRANSFER_BYTES = 32 * 1024 * 1024
#: the workflows of a ``--quick`` check (one repetition, heft): it works, not a record
QUICK_WORKFLOWS = ("fan-large", "ladder")
MB = 1_000_000


#: fan-large's branches: (chunks, seconds per chunk); the first is the largest partition
FAN_BRANCHES: tuple[tuple[int, float], ...] = ((2, 0.6), (4, 0.15), (2, 0.15), (1, 0.15))
#: MB of each of fan-large's partials (7 x 32 MB reach the gather's worker from the others).  What pre-load with
#: delayed I/O can cut is the gather's download: since the worker receives several large inputs one by one into
#: buffers of their size (``executor.worker_data._fetch_large``; before, redis-py threads moved them 3x slower)
#: that is ~0.12 s of a ~2.2 s run on this host, whose cores the four branches share.  The size stays the one the
#: workflow was designed with; :data:`SWEEP_PARTIAL_MB` records the cut at other sizes (``partial_size_sweep``).
FAN_PARTIAL_MB = 32
#: the other partial sizes of fan-large whose base and pre-load with delayed I/O a full record also runs (heft):
#: the cut as the data grows, and whether the prediction follows it (64 MB: the gather's worker, 1 GB on the
#: medium profile, holds 576 MB of partials)
SWEEP_PARTIAL_MB: tuple[int, ...] = (16, 48, 64)
SWEEP_PLANNER = "heft"
SWEEP_VARIANTS = ("base", "preload+delayed_io")


def fan_large(branches: tuple[tuple[int, float], ...] = FAN_BRANCHES, partial_mb: int = FAN_PARTIAL_MB) -> Workflow:
    """A scatter/gather over partitions of unequal size, each branch emitting a large partial result per chunk.

    ``split`` (0.05 s) hands each branch its partition; branch ``b`` scans its chunks in
    order (``b{b}c{j}``; ``branches[b]`` = (chunks, seconds each), a 1 MB running state
    passed along), and every chunk writes a ``partial_mb`` MB partial result (a
    per-chunk histogram, feature block or spill) that the single ``gather`` (0.1 s)
    merges.  Skewed partitions are the common case of a fan-out/fan-in (files of
    different sizes, keys of different frequency): here one large partition (two 0.6 s
    chunks) and three small ones (4, 2 and 1 chunks of 0.15 s), so seven partials come
    from other workers.

    Both planners keep each branch on one worker (its state stays local) and the
    gather on the large partition's worker, whose own partials are then local.  The
    gather's worker fetches the other partials only once its own branch is done
    (pre-load: while it scans its last chunk, each partial as soon as it is stored).  A
    small partition's worker uploads each partial before it may scan its next chunk;
    delayed I/O leaves those uploads eager, as they hold no worker on the critical path
    (the small branches end long before the large one: moving on sooner would only
    share the cores with it; :func:`planning.protocol.optimizations.delayed_io.lazy_outputs`).
    The shape before this one (six equal 0.3 s tasks of one 30 MB output each) left
    them nothing to overlap: every output was stored only after the gather's worker
    had finished its own task.
    """
    wf = Workflow("fan-large")
    wf.add_task(Task("split", "split", runtime_s=0.05, output_bytes=MB))
    wf.add_task(Task("gather", "gather", runtime_s=0.1, output_bytes=MB))
    for b, (chunks, seconds) in enumerate(branches):
        for j in range(chunks):
            wf.add_task(Task(f"b{b}c{j}", "scan", runtime_s=seconds, output_bytes=partial_mb * MB))
            wf.add_edge(f"b{b}c{j - 1}" if j else "split", f"b{b}c{j}", MB)
            wf.add_edge(f"b{b}c{j}", "gather", partial_mb * MB)
    wf.validate()
    return wf


def ladder(steps: int = 10) -> Workflow:
    """A deep chain the planners spread: a spine ``c0 -> ... -> c9`` with a side task per step.

    ``generate("chain")`` stays on one worker (nothing runs beside it), so pre-load and
    delayed I/O have nothing to overlap.  Here each spine task ``c_i`` also feeds a side
    task ``s_i`` (10 MB), whose output ``c_{i+2}`` needs too: ``s_i`` can run beside
    ``c_{i+1}``, so HEFT and critical-path spread the ladder over two workers (both
    zig-zag: each worker alternates spine and side tasks, e.g. critical-path's ``c0 s0 c2
    s2 ...`` and ``c1 s1 c3 s3 ...``).  Every step then has 10 MB outputs that the other
    worker needs (delayed I/O uploads them while the worker runs its next task) and
    inputs from the other worker that arrive while a task runs (pre-load fetches them
    then), on the critical path: what these two optimizations exist for.  HEFT's
    placement leaves such transfers to overlap; critical-path's strict alternation does
    not (each input from the other worker is stored only after the task before it ends,
    and each upload is on the critical path): its cells measure that pre-load and delayed
    I/O then change nothing.
    """
    wf = Workflow("ladder")
    for i in range(steps):
        wf.add_task(Task(f"c{i}", "spine", runtime_s=0.3, output_bytes=10 * MB))
        wf.add_task(Task(f"s{i}", "side", runtime_s=0.25, output_bytes=10 * MB))
    for i in range(steps):
        wf.add_edge(f"c{i}", f"s{i}", 10 * MB)
        if i + 1 < steps:
            wf.add_edge(f"c{i}", f"c{i + 1}", MB)
        if i + 2 < steps:
            wf.add_edge(f"s{i}", f"c{i + 2}", 10 * MB)
    wf.validate()
    return wf


def _pair_plan(model: CostModel, catalog: Any, nbytes: int) -> tuple[Workflow, Plan]:
    """``a`` (on w1) stores ``nbytes`` that ``b`` (on w2) downloads: the host probe's transfer pair."""
    wf = Workflow("host-probe")
    wf.add_task(Task("a", "probe", runtime_s=0.01, output_bytes=nbytes))
    wf.add_task(Task("b", "probe", runtime_s=0.01, output_bytes=1))
    wf.add_edge("a", "b", nbytes)
    wf.validate()
    estimates = model.estimate_workflow(wf, catalog, "mean")
    profile = catalog.names[0]
    return wf, Plan.from_assignment(wf, catalog, estimates, model, "mean", {"a": "w1", "b": "w2"},
                                    {"w1": profile, "w2": profile}, planner="probe")


def _pair_seconds(ex: Executor, wf: Workflow, plan: Plan) -> tuple[float, float]:
    """(``a``'s upload, ``b``'s download) in seconds, from one real run of a probe pair."""
    t = ex.run(wf, plan).trace.tasks.set_index("task_id")
    return (float(t.loc["a", "upload_end_s"] - t.loc["a", "exec_end_s"]),
            float(t.loc["b", "download_end_s"] - t.loc["b", "download_start_s"]))


#: warm 10 MB pairs per round of :func:`probe_host` (the link's rate below LARGE_TRANSFER_BYTES): one a round moved the
#: warm 10 MB download 15.4 -> 21.3 ms between two records on a busy host, and with it fan-large's simulated pre-load
#: cut -16.4 -> -10.6 % (issue 17)
WARM_SMALL_PAIRS = 3


def probe_host(ex: Executor, model: CostModel, catalog: Any, nbytes: int = 64 * MB,
               repetitions: int = 5, sharing_repetitions: int | None = None) -> dict[str, float]:
    """The executor's storage link and cold start on this host, measured before the cells: one ``nbytes``
    output moved between two new workers (``a`` on w1 uploads, ``b`` on w2 downloads), ``repetitions`` times,
    each after the warm pool drained.

    The predictions (the plans' cost model and the simulator's platform) use its median
    seconds per byte and seconds from a task's readiness to its new worker's start,
    instead of the priors' 200 MB/s and 0.25 s, which are a cloud object store's and a
    fresh interpreter's: here the "storage" is a local server, several times faster,
    and the executor starts a worker by forking a warm parent.  The optimizations'
    effects are sizes of transfers and start-ups.  The probe shares nothing with the
    cells' runs.

    The cold start is :func:`probe_cold_start`'s (a run's non-root workers', from their start message to
    their first task's start), not ``b``'s: a new worker whose parent just stored 64 MB took 0.16-0.58 s to
    start where one after a 1-byte parent took 0.02-0.07 s (load 6, 4 pairs; issue 17: with ``b`` in the
    median, 0.20 s probed at load 8, the simulated epigenomics root started 0.20 s late where its real worker
    was ready at 0.046 s, and the core idle meanwhile was the pre-warm gain the simulation predicted and the
    runs never showed).
    """
    wf, plan = _pair_plan(model, catalog, nbytes)
    up, down = [], []
    warm: dict[str, list[float]] = {"small_up": [], "small_down": [], "large_up": [], "large_down": []}
    small = _pair_plan(model, catalog, SMALL_PROBE_BYTES)
    for _ in range(repetitions):
        time.sleep(KEEP_ALIVE_S * 1.2)            # the warm pool drains: both workers start cold
        a_up, b_down = _pair_seconds(ex, wf, plan)
        up.append(a_up)
        down.append(b_down)
        # the same processes again, warm and in their steady state (a first small pair lets their allocator reuse
        # such buffers, as a run's workers do after their first transfers): the link's rate below
        # LARGE_TRANSFER_BYTES, then the full size's, whose extra over that rate is the large-transfer cost
        _pair_seconds(ex, *small)
        for kind, (pair_wf, pair_plan) in [("small", small)] * WARM_SMALL_PAIRS + [("large", (wf, plan))]:
            a_up, b_down = _pair_seconds(ex, pair_wf, pair_plan)
            warm[f"{kind}_up"].append(a_up)
            warm[f"{kind}_down"].append(b_down)
    seconds = statistics.median([(u + d) / 2 for u, d in zip(up, down)])
    cold = max(probe_cold_start(ex, model, catalog, repetitions=repetitions), 0.001)
    serial = min(probe_launcher(ex, model, catalog, repetitions=repetitions), cold)
    return {"bytes": float(nbytes), "upload_s_median": statistics.median(up),
            "download_s_median": statistics.median(down), "bandwidth_Bps": nbytes / seconds,
            "small_bytes": float(SMALL_PROBE_BYTES), **{f"warm_{k}_s_median": statistics.median(v) for k, v in warm.items()},
            "cold_start_s": cold, "launcher_serial_s": serial,
            # (a short check's few repetitions keep the sharing probe as short)
            **probe_sharing(ex, model, catalog, repetitions=sharing_repetitions
                            or (SHARING_REPETITIONS if repetitions >= 5 else repetitions))}


def cold_start_probe_workflow(catalog: Any) -> tuple[Workflow, dict[str, str], dict[str, str]]:
    """A spine ``p0 -> p1 -> p2`` (0.05 s each, 1-byte outputs) on one worker; ``k0`` (child of ``p0``) and ``k1``
    (child of ``p1``), 0.01 s each, on new workers of the catalog's profiles of at least one CPU, one profile each.

    Every ``k`` is a non-root worker started by its parent's commit, as a run's workers
    are, after a 1-byte parent (:func:`probe_host`'s docstring: a parent that stored 64 MB
    slows its child's start-up several times).  Each ``k`` has a profile of its own and the
    spine's worker is busy, so no ``k`` finds an idle process to reuse: both start cold.
    Profiles of one CPU or more run a start-up at one core's speed, as the simulated
    platform's ``cold_start_s`` is counted (a 0.5-CPU worker takes twice as long).
    """
    whole = [p.name for p in catalog if float(p.cpus) >= 1.0] or list(catalog.names)
    readers = [whole[k % len(whole)] for k in range(2)]
    spine = next((p for p in catalog.names if p not in readers), readers[0])
    wf = Workflow("cold-start-probe")
    worker_of, profile_of = {}, {"w0": spine}
    for i in range(3):
        wf.add_task(Task(f"p{i}", "probe", runtime_s=0.05, output_bytes=1))
        worker_of[f"p{i}"] = "w0"
        if i:
            wf.add_edge(f"p{i - 1}", f"p{i}", 1)
    for k, profile in enumerate(readers):
        wf.add_task(Task(f"k{k}", "probe", runtime_s=0.01, output_bytes=1))
        wf.add_edge(f"p{k}", f"k{k}", 1)
        worker_of[f"k{k}"] = f"w{k + 1}"
        profile_of[f"w{k + 1}"] = profile
    wf.validate()
    return wf, worker_of, profile_of


def cold_start_seconds(tasks: Any, task: str) -> float:
    """Seconds from ``task``'s start message (its ``ready_s``: its parent's commit) to its execution's start, less
    its inputs' download: what a run's worker waits for a cold start (``tasks`` indexed by task).

    >>> import pandas as pd
    >>> t = pd.DataFrame({"ready_s": [1.0], "download_start_s": [1.02], "download_end_s": [1.025],
    ...                   "exec_start_s": [1.05]}, index=["k0"])
    >>> round(cold_start_seconds(t, "k0"), 12)
    0.045
    """
    row = tasks.loc[task]
    download = float(row["download_end_s"] - row["download_start_s"])
    return float(row["exec_start_s"] - row["ready_s"]) - download


def probe_cold_start(ex: Executor, model: CostModel, catalog: Any, repetitions: int = 5) -> float:
    """A cold start as a run's worker meets it: the median over ``repetitions`` runs of
    :func:`cold_start_probe_workflow` of its non-root workers' :func:`cold_start_seconds`.

    From the start message to the first task's start, not to the new process's first
    line (the trace's ``worker_start_s``): after that the process still reads the run's
    specification and its code, claims its worker and waits for its cgroups
    (:func:`executor.worker.run_logical_worker`).  The probe before this one stopped at
    ``worker_start_s`` of the probe root's worker: 12 ms quiet, all of it the launcher's
    serial part, so the simulated start-up was ~0 where the executor benchmark's cold
    start (submission to task start) is 27-36 ms quiet and epigenomics' non-root workers
    were ready 46-48 ms after their invocation (issue 17: gemm's base, eight cold
    starts and little else, simulated 0.13 s against 0.32 s real).
    """
    wf, worker_of, profile_of = cold_start_probe_workflow(catalog)
    plan = Plan.from_assignment(wf, catalog, model.estimate_workflow(wf, catalog, "mean"), model, "mean",
                                worker_of, profile_of, planner="probe")
    starts = []
    for _ in range(repetitions):
        time.sleep(KEEP_ALIVE_S * 1.2)            # the warm pool drains: every worker starts cold
        t = ex.run(wf, plan).trace.tasks.set_index("task_id")
        starts += [cold_start_seconds(t, k) for k in ("k0", "k1")]
    return statistics.median(starts)


#: bytes each download of :func:`probe_sharing` moves (the ladder's transfers: 10 MB)
SHARING_BYTES = 10 * MB


def sharing_probe_workflow(readers: int, nbytes: int = SHARING_BYTES) -> tuple[Workflow, dict[str, str]]:
    """``a`` (0.2 s, ``nbytes`` out, worker w0) read by ``readers`` tasks ``b{k}``, each on its own worker ``w{k+1}``
    started by a short root ``p{k}`` of its own, so every reader's worker is up and waiting when ``a`` ends and
    the readers' downloads start together (``a``'s commit notifies them all at once)."""
    wf = Workflow(f"sharing-probe-{readers}")
    wf.add_task(Task("a", "probe", runtime_s=0.2, output_bytes=nbytes))
    worker_of = {"a": "w0"}
    for k in range(readers):
        wf.add_task(Task(f"p{k}", "probe", runtime_s=0.01, output_bytes=1))
        wf.add_task(Task(f"b{k}", "probe", runtime_s=0.01, output_bytes=1))
        wf.add_edge("a", f"b{k}", nbytes)
        wf.add_edge(f"p{k}", f"b{k}", 1)
        worker_of[f"p{k}"] = worker_of[f"b{k}"] = f"w{k + 1}"
    wf.validate()
    return wf, worker_of


def download_span(tasks: Any, readers: list[str]) -> float:
    """Seconds from the first of ``readers``' downloads starting to the last ending (``tasks`` indexed by task).

    >>> import pandas as pd
    >>> t = pd.DataFrame({"download_start_s": [1.0, 1.01], "download_end_s": [1.05, 1.04]}, index=["b0", "b1"])
    >>> round(download_span(t, ["b0", "b1"]), 12)
    0.05
    """
    return float(tasks.loc[readers, "download_end_s"].max() - tasks.loc[readers, "download_start_s"].min())


#: the sharing probe's interleaved (lone, pair) rounds: its terms' spread over repeated probes on a busy host was
#: ~0.25 with 5 (issue 17; :func:`probe_sharing`)
SHARING_REPETITIONS = 12


def probe_sharing(ex: Executor, model: CostModel, catalog: Any,
                  repetitions: int = SHARING_REPETITIONS) -> dict[str, float]:
    """How two concurrent downloads from the server share it: how many times as long they take together as one alone
    (the simulated link's ``storage_sharing``) and how much of it the one that started first gets
    (``storage_first_come``), from two workers' downloads of one output started together
    (:func:`sharing_probe_workflow`, their natural offset 0-5 ms) and one worker's lone download of it, lone and pair
    runs interleaved over ``repetitions`` rounds; both read off the pairs' shapes (:func:`link_sharing_terms`) against
    the lone downloads' median (``sharing_lone_download_s``: a warm worker's fetch of :data:`SHARING_BYTES`, for
    comparison with the link :func:`probe_host` derives from a new worker's first 64 MB).

    The simulator's link shared its bandwidth equally (2); on this host two concurrent 10 MiB GETs from the
    one Redis take ~1.7x one alone (the server's work for one client overlaps the other client's copying on
    the other core), so a simulation in which two inline fetches overlap over-charged them (issue 17: the
    ladder's heft base, whose zig-zag overlaps them, simulated ~5 % slower than its pre-loaded variants
    that the real runs found equal).  The factor is read off each pair's overlap, not off its span over the lone
    download: the span ratio is ``f`` only for downloads that start together, and grows with their offset (a
    reader's worker woken late).  The first's lead is a small part of unequal sharing: measured apart, two
    foreground downloads shared about equally at 0-5 ms offsets, while a background fetch beside a CPU-bound task
    got the smaller share whichever started first (issue 17).
    """
    runs = {}
    for readers in (1, 2):
        wf, worker_of = sharing_probe_workflow(readers)
        profile = catalog.names[0]
        plan = Plan.from_assignment(wf, catalog, model.estimate_workflow(wf, catalog, "mean"), model, "mean",
                                    worker_of, {w: profile for w in set(worker_of.values())}, planner="probe")
        runs[readers] = (wf, plan, [f"b{k}" for k in range(readers)])
    shapes, lone = [], []
    for rep in range(repetitions):
        traces = {}
        for readers in ((1, 2) if rep % 2 == 0 else (2, 1)):
            wf, plan, names = runs[readers]
            time.sleep(KEEP_ALIVE_S * 1.2)
            traces[readers] = ex.run(wf, plan).trace.tasks.set_index("task_id")
        lone.append(download_span(traces[1], ["b0"]))
        shape = pair_shape(traces[2], ["b0", "b1"])
        if shape is not None:
            shapes.append(shape)
    lone_s = statistics.median(lone)
    return {**link_sharing_terms(shapes, lone_s), "sharing_lone_download_s": lone_s,
            "sharing_bytes": float(SHARING_BYTES), "sharing_pairs_overlapping": float(len(shapes))}


def pair_shape(tasks: Any, readers: list[str]) -> tuple[float, float, float] | None:
    """Two downloads' (``readers``, ``tasks`` indexed by task) start gap, overlap and end gap, in seconds, the one
    that started first first (its end gap negative when it ended last); None when they did not overlap.

    >>> import pandas as pd
    >>> t = pd.DataFrame({"download_start_s": [0.002, 0.0], "download_end_s": [0.04, 0.02]}, index=["b0", "b1"])
    >>> [round(x, 12) for x in pair_shape(t, ["b0", "b1"])]
    [0.002, 0.018, 0.02]
    """
    (s1, e1), (s2, e2) = sorted((float(tasks.loc[r, "download_start_s"]), float(tasks.loc[r, "download_end_s"]))
                                for r in readers)
    overlap = min(e1, e2) - s2
    if overlap <= 0:
        return None
    return s2 - s1, overlap, e2 - e1


def link_sharing_terms(shapes: list[tuple[float, float, float]], lone_s: float) -> dict[str, float]:
    """The simulated link's ``storage_sharing`` ``f`` and ``storage_first_come`` ``p`` that explain pairs of
    downloads of one size, each taking ``lone_s`` alone, of these shapes (:func:`pair_shape`: start gap ``d``,
    overlap ``o``, end gap ``a``); each kept in its range (2 and 0 with no pair: equal shares).

    The link (:class:`simulator.storage.RankedLink`) moves a download alone at rate 1 (a lone download's work per
    second) and two at ``2 / f`` together, ``(1 + p) / f`` to the first and ``(1 - p) / f`` to the second.  Over a
    pair's span it does two lone downloads' work: ``d + 2 o / f + a = 2 lone_s``, so ``f = 2 o / (2 lone_s - d - a)``
    (:func:`sharing_factor`); the first's bytes, ``lone_s``, are ``d`` alone and ``o (1 + p) / f`` shared, so
    ``p = (a - d) / (2 lone_s - d - a)``: equal shares end the two as far apart as they started, first come first
    served a lone download apart.  A pair whose first ended last (``a < 0``) ran alone ``|a|`` at its end: the
    link's work is then ``2 lone_s - d - |a|``, and the same ``a - d`` over it is its (negative) ``p``.  Each is the ratio of the pairs' sums (a pair that barely overlapped weighs
    little, where its own ratio is the noisiest).

    Started together with ``f = 1.6``, ``p = 0.5``: the first moves at ``1.5 / 1.6`` and ends after ``1.6 / 1.5``
    lone downloads; the second got ``0.5 / 1.5`` of its bytes by then and moves the rest alone:

    >>> lone = 0.01
    >>> first = 1.6 / 1.5 * lone
    >>> second_alone = (1 - 0.5 / 1.5) * lone
    >>> terms = link_sharing_terms([(0.0, first, second_alone)], lone)
    >>> round(terms["storage_sharing"], 9), round(terms["storage_first_come"], 9)
    (1.6, 0.5)
    >>> link_sharing_terms([], lone)
    {'storage_sharing': 2.0, 'storage_first_come': 0.0}
    """
    if not shapes:
        return {"storage_sharing": 2.0, "storage_first_come": 0.0}
    # a pair whose first ended last (a < 0: the second got the larger share, p < 0) ran alone |a| at its end
    work = sum(2 * lone_s - d - abs(a) for d, o, a in shapes)
    if work <= 0:
        return {"storage_sharing": 2.0, "storage_first_come": 0.0}
    f = 2 * sum(o for d, o, a in shapes) / work
    p = sum(a - d for d, o, a in shapes) / work
    return {"storage_sharing": min(max(f, 1.0), 2.0), "storage_first_come": min(max(p, 0.0), 1.0)}


def sharing_factor(tasks: Any, readers: list[str], lone_s: float) -> float | None:
    """The link's sharing factor ``f`` that explains two downloads of one output (``readers``, ``tasks`` indexed by
    task) each taking ``lone_s`` alone, whatever their offset; None when they did not overlap.

    The simulated link (:class:`simulator.storage.SharedLink`) moves one download alone at
    rate 1 and two at once at ``2 / f`` together.  Over the pair's span the link did the
    two downloads' work, ``2 * lone_s``: at rate 1 while one ran (``single`` seconds), at
    ``2 / f`` while both did (``overlap`` seconds), so ``f = 2 * overlap / (2 * lone_s -
    single)``.  Downloads that start together (no ``single``) give ``f`` = their common
    duration over ``lone_s``, as the span ratio did; downloads apart no longer read as 2.

    >>> import pandas as pd
    >>> together = pd.DataFrame({"download_start_s": [0.0, 0.0], "download_end_s": [0.017, 0.017]}, index=["b0", "b1"])
    >>> round(sharing_factor(together, ["b0", "b1"], 0.01), 12)
    1.7
    >>> apart = pd.DataFrame({"download_start_s": [0.0, 0.004], "download_end_s": [0.016, 0.02]}, index=["b0", "b1"])
    >>> round(sharing_factor(apart, ["b0", "b1"], 0.01), 12)     # f = 2 with a 4 ms offset: span 2x, as before
    2.0
    >>> sharing_factor(pd.DataFrame({"download_start_s": [0.0, 0.02], "download_end_s": [0.01, 0.03]},
    ...                             index=["b0", "b1"]), ["b0", "b1"], 0.01) is None
    True
    """
    shape = pair_shape(tasks, readers)
    if shape is None:
        return None
    start_gap, overlap, end_gap = shape
    single = start_gap + abs(end_gap)
    if 2 * lone_s - single <= 0:
        return None
    return 2 * overlap / (2 * lone_s - single)


#: seconds the pre-load lag probe's remote parent runs (its output is stored while the reader's worker runs the task
#: before, whose pre-load thread waits for it) and the task before's
LAG_PARENT_S, LAG_BEFORE_S = 0.1, 0.3


def preload_lag_workflow(nbytes: int = SHARING_BYTES) -> tuple[Workflow, dict[str, str], dict[str, list[str]]]:
    """``a`` (:data:`LAG_PARENT_S`, ``nbytes`` out) on w0; ``x`` (:data:`LAG_BEFORE_S`) then ``y`` (reads ``a``'s
    and ``x``'s outputs) on w1: pre-loaded, ``y``'s fetch of ``a``'s output waits, in the thread ``x`` started,
    for ``a``'s commit - as the ladder's spine tasks wait for the other worker's side outputs."""
    wf = Workflow("preload-lag-probe")
    wf.add_task(Task("a", "probe", runtime_s=LAG_PARENT_S, output_bytes=nbytes))
    wf.add_task(Task("x", "probe", runtime_s=LAG_BEFORE_S, output_bytes=1))
    wf.add_task(Task("y", "probe", runtime_s=0.01, output_bytes=1))
    wf.add_edge("a", "y", nbytes)
    wf.add_edge("x", "y", 1)
    wf.validate()
    return wf, {"a": "w0", "x": "w1", "y": "w1"}, {"w0": ["a"], "w1": ["x", "y"]}


def preload_lag(tasks: Any, parent: str = "a", before: str = "x", reader: str = "y") -> float | None:
    """Seconds from ``parent``'s output stored (its upload's end), or from ``before``'s execution start (the
    pre-load thread's start) if later, to ``reader``'s pre-loaded fetch's start (``tasks`` indexed by task); None
    when the fetch was not the pre-load's (it did not end within ``before``'s execution: the worker fetched).

    >>> import pandas as pd
    >>> t = pd.DataFrame({"upload_end_s": [0.15, 0.0, 0.0], "exec_start_s": [0.0, 0.05, 0.36],
    ...                   "exec_end_s": [0.14, 0.35, 0.37], "download_start_s": [0.0, 0.0, 0.154],
    ...                   "download_end_s": [0.0, 0.0, 0.16]}, index=["a", "x", "y"])
    >>> round(preload_lag(t), 12)
    0.004
    >>> t.loc["y", "download_end_s"] = 0.355                     # fetched after x ended: the worker's own fetch
    >>> preload_lag(t) is None
    True
    """
    start, end = float(tasks.loc[reader, "download_start_s"]), float(tasks.loc[reader, "download_end_s"])
    if end > float(tasks.loc[before, "exec_end_s"]):
        return None
    ref = max(float(tasks.loc[parent, "upload_end_s"]), float(tasks.loc[before, "exec_start_s"]))
    return max(start - ref, 0.0)


def probe_preload_lag(ex: Executor, model: CostModel, catalog: Any, repetitions: int = 5) -> dict[str, float]:
    """The executor's pre-load start lag (the simulated ``Platform.preload_lag_s``): the median over
    ``repetitions`` runs of :func:`preload_lag_workflow` of :func:`preload_lag`, and how many runs pre-loaded.

    The pre-load thread blocks until the commit storing its input pushes a wake-up, then needs the GIL beside the
    CPU-bound task its worker runs (``executor.worker_preload``); the simulator's pre-load started its fetch the
    instant the input was stored.  The workers are the 1-CPU profile the ladder's plans use."""
    wf, places, seq = preload_lag_workflow()
    profile = one_cpu_profile(catalog)
    base = Plan.from_assignment(wf, catalog, model.estimate_workflow(wf, catalog, "mean"), model, "mean",
                                places, {w: profile for w in seq}, planner="probe", sequence=seq)
    plan, cls = optimize(base, wf, model, ("preload",))
    lags = []
    for _ in range(repetitions):
        time.sleep(KEEP_ALIVE_S * 1.2)
        lag = preload_lag(ex.run(wf, plan, protocol=cls.for_plan(wf, plan)).trace.tasks.set_index("task_id"))
        if lag is not None:
            lags.append(lag)
    return {"preload_lag_s": statistics.median(lags) if lags else 0.0, "preload_lag_runs": float(len(lags))}


#: workers started at once by :func:`probe_launcher` (epigenomics' heft plans start 6-9 at once)
BURST = 6


def probe_launcher(ex: Executor, model: CostModel, catalog: Any, burst: int = BURST, repetitions: int = 5) -> float:
    """The serial part of the executor's cold start: seconds between the starts of ``burst`` workers asked for at
    once (one root's ``burst`` children, each on a new worker), the median over ``repetitions`` bursts.

    The executor's launcher starts workers one after another (one loop forks them); the
    rest of a cold start runs in the new process, beside the others.  A lone cold start
    (:func:`probe_host`) cannot tell the two apart; a burst can: its workers start
    :func:`start_spacing` apart.  The simulator's launcher takes that part serially
    (``Platform.process_start_s``) and the rest as start-up CPU shared by the host's
    cores (issue 17: with every start-up parallel, the simulation had epigenomics'
    pre-warmed run start its root 0.28 s late behind eight warm start-ups, the real
    runs' roots started on time and their workers ~50 ms apart at load 8).
    """
    wf = Workflow("launch-probe")
    wf.add_task(Task("r", "probe", runtime_s=0.01, output_bytes=1))
    for k in range(burst):
        wf.add_task(Task(f"k{k}", "probe", runtime_s=0.01, output_bytes=1))
        wf.add_edge("r", f"k{k}", 1)
    wf.validate()
    estimates = model.estimate_workflow(wf, catalog, "mean")
    profile = catalog.names[0]
    worker_of = {t: f"w{t}" for t in wf.task_ids}
    plan = Plan.from_assignment(wf, catalog, estimates, model, "mean", worker_of,
                                {w: profile for w in worker_of.values()}, planner="probe")
    spacings = []
    for _ in range(repetitions):
        time.sleep(KEEP_ALIVE_S * 1.2)            # the warm pool drains: every worker starts cold
        t = ex.run(wf, plan).trace.tasks.set_index("task_id")
        spacings.append(start_spacing([float(t.loc[f"k{k}", "worker_start_s"]) for k in range(burst)]))
    return statistics.median(spacings)


def start_spacing(starts: list[float]) -> float:
    """The median gap between consecutive worker starts of a burst (0 for fewer than two).

    >>> start_spacing([0.30, 0.10, 0.15, 0.22])
    0.07
    """
    ordered = sorted(starts)
    gaps = [b - a for a, b in zip(ordered, ordered[1:])]
    return round(statistics.median(gaps), 12) if gaps else 0.0


def simulated_platform(probe: dict[str, float]) -> Platform:
    """This host's platform for the simulations: the probed link, the launcher's serial part of a cold start
    (``process_start_s``) and the rest as start-up (``cold_start_s``), so a lone cold start takes the probed
    total and a burst's starts are as far apart as probed (:func:`probe_launcher`); a fetch's CPU per byte, the worker
    thread's (in its quota) and the server's (on the cores), as probed (:func:`_background_probe.probe_background`);
    a pre-load's fetch starting as long after its input is stored as probed (:func:`probe_preload_lag`).

    The link moves uploads at the probed upload's rate and downloads at the probed download's
    (``download_bandwidth_Bps``), not both at their mean (the plans' cost model keeps the mean): a
    64 MB download took 2.5x its upload (quiet, 286 against 723 MB/s), and fan-large's critical path
    downloads 7 x 32 MB into the gather's worker and uploads nothing (its branch's outputs stay local),
    so at the mean the simulated base downloaded 1.4x too fast (issue 17)."""
    serial = probe.get("launcher_serial_s", 0.0)
    fetch_cpu = {k: probe[k] for k in ("fetch_thread_s_per_byte", "fetch_server_s_per_byte") if k in probe}
    rates = {"storage_bandwidth_Bps": probe["bandwidth_Bps"]}
    if probe.get("upload_s_median", 0) > 0 and probe.get("download_s_median", 0) > 0:
        rates = {"storage_bandwidth_Bps": probe["bytes"] / probe["upload_s_median"],
                 "download_bandwidth_Bps": probe["bytes"] / probe["download_s_median"]}
    if all(probe.get(f"warm_{k}_s_median", 0) > 0 for k in ("small_up", "small_down", "large_up", "large_down")):
        rates = two_regime_link(probe)
    return Platform.for_local_host(keep_alive_s=KEEP_ALIVE_S, **rates,
                                   cold_start_s=max(probe["cold_start_s"] - serial, 0.001), process_start_s=serial,
                                   storage_sharing=probe.get("storage_sharing", 2.0),
                                   storage_first_come=probe.get("storage_first_come", 0.0),
                                   preload_lag_s=probe.get("preload_lag_s", 0.0), **fetch_cpu)


def two_regime_link(probe: dict[str, float]) -> dict[str, float]:
    """The simulated link's terms from the warm probe pairs: each direction's rate from the small pair
    (``SMALL_PROBE_BYTES``), and the large pair's time beyond that rate spread over its bytes past
    ``LARGE_TRANSFER_BYTES`` (``Platform.large_*_s_per_byte``; 0 when the large pair kept the small rate).

    Quiet, issue 17: warm workers moved 10-32 MB at 1.2-2.4 GB/s and 64 MB at 0.66-1.15 GB/s, a gather's
    7 x 32 MB at 0.45 GB/s; one rate (the 64 MB pair's) made the ladder's 10 MB hand-offs 3x too slow in
    the simulation, so pre-loading them looked to save 2-4 % where the runs saved nothing.

    >>> t = two_regime_link({"bytes": 64e6, "small_bytes": 10e6, "warm_small_up_s_median": 0.005,
    ...                      "warm_small_down_s_median": 0.008, "warm_large_up_s_median": 0.032 + 0.01,
    ...                      "warm_large_down_s_median": 0.0512 + 0.04})
    >>> round(t["storage_bandwidth_Bps"]), round(t["download_bandwidth_Bps"])
    (2000000000, 1250000000)
    >>> beyond = 64e6 - LARGE_TRANSFER_BYTES
    >>> round(t["large_upload_s_per_byte"] * beyond, 9), round(t["large_download_s_per_byte"] * beyond, 9)
    (0.01, 0.04)
    """
    small, large = probe["small_bytes"], probe["bytes"]
    up = small / probe["warm_small_up_s_median"]
    down = small / probe["warm_small_down_s_median"]
    beyond = large - LARGE_TRANSFER_BYTES
    if beyond <= 0:
        return {"storage_bandwidth_Bps": up, "download_bandwidth_Bps": down}
    return {"storage_bandwidth_Bps": up, "download_bandwidth_Bps": down,
            "large_transfer_bytes": float(LARGE_TRANSFER_BYTES),
            "large_upload_s_per_byte": max(probe["warm_large_up_s_median"] - large / up, 0.0) / beyond,
            "large_download_s_per_byte": max(probe["warm_large_down_s_median"] - large / down, 0.0) / beyond}


def workflows() -> dict[str, Workflow]:
    epigenomics = load_workflow(str(REPO / "experiments" / "data" / "epigenomics-chameleon-hep-1seq-100k-001.json"))
    return {"fan-large": fan_large(), "deep-chain": generate("chain", length=12, units=20_000), "ladder": ladder(),
            "epigenomics": scaled_workflow(epigenomics, 0.004, 0.01),
            "gemm": generate("gemm", blocks=2, block_size=256)}


def bytes_moved(workflow: Workflow, protocol: WorkerProtocol) -> float:
    """Stored outputs plus fetched inputs, from the protocol's decision tables."""
    tables = protocol.compile()
    stored = sum(b for b, s in zip(tables.out_bytes, tables.store) if s)
    return float(stored + sum(sum(f) for f in tables.fetch))


def measures(tasks: Any, workers: Any, makespan: float, protocol: WorkerProtocol) -> dict[str, float]:
    return {"makespan_s": float(makespan), "cost": float(workers["cost"].sum()), "gb_s": float(workers["gb_s"].sum()),
            "server_peak_bytes": server_memory(tasks, protocol)["peak_bytes"],
            "preload_peak_bytes": preload_memory(tasks, protocol)["peak_bytes"] if protocol.preloads() else 0.0}


def cold_on_path_any_host(base: Plan, workflow: Workflow, model: CostModel, names: list[str]) -> int:
    """:func:`prewarm_cold_on_path` of the variant planned without the host's cores (0 without pre-warm).

    On the host, pre-warm holds back a worker whose start-up does not fit in idle cores, so
    the cells' own count covers only the workers it warmed; planned for a host with a core
    per worker it warms every worker the plan starts cold, and this count says whether each
    of them is then ready on time - the target's check that the mechanism itself removes
    every cold start from the planned path.
    """
    if "prewarm" not in names:
        return 0
    plan, _ = optimize(base, workflow, model, names)
    return prewarm_cold_on_path(plan, workflow)


def prewarm_cold_on_path(plan: Any, workflow: Workflow) -> int:
    """Warmed workers whose first task still waits for a start-up in the plan (the target: 0)."""
    roots, late = set(workflow.roots()), 0
    for w, seq in plan.assignment.sequence.items():
        if seq and seq[0] not in roots and w in plan.assignment.warm_starts:
            first = plan.tasks.loc[seq[0]]
            late += bool(first["download_start_s"] > first["ready_s"] + 1e-9)
    return late


#: The cost model's prior exponent for a workflow of replay tasks (no code): a replay task burns one thread's CPU for
#: its runtime (``executor.replay.burn_cpu``), so a profile with more CPUs than one does not speed it up.  The
#: default exponent (0.5, for code of unknown parallelism) predicted the "large" (2-CPU) profile's replay tasks
#: 0.71x as long as they ran (the ladder's 0.3 s spine tasks: 212 ms simulated, 300-310 ms real), which made every
#: transfer, and so every transfer-hiding optimization, look larger beside the executions than it is.
REPLAY_PRIOR_EXPONENT = 0.0


def model_for(wf: Workflow, model: CostModel) -> CostModel:
    """``model`` for ``wf``'s predictions: with :data:`REPLAY_PRIOR_EXPONENT` when every task is a replay task
    (a model fitted on history, ``--prediction runner``, as it is)."""
    if not model.fitted and all(t.func is None for t in wf.tasks):
        return CostModel(bandwidth_Bps=model.bandwidth_Bps, cold_start_s=model.cold_start_s,
                         prior_exponent=REPLAY_PRIOR_EXPONENT)
    return model


def prepare(model: CostModel, catalog: Any, sim_platform: Platform, quick: bool = False,
            only: tuple[str, ...] = (), planners: tuple[str, ...] = PLANNERS,
            chosen: dict[str, Workflow] | None = None, variants: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Every (workflow, planner, variant): its plan, protocol, planned and simulated measures
    (``quick``: the ladder and fan-large, heft only; ``only``: these workflows; ``chosen``: these workflows instead
    of :func:`workflows`; ``variants``: only these); the model is :func:`model_for` each workflow."""
    cells = []
    for wname, wf in (workflows() if chosen is None else chosen).items():
        if (quick and wname not in QUICK_WORKFLOWS) or (only and wname not in only):
            continue
        model_of_wf = model_for(wf, model)
        for pname in PLANNERS[:1] if quick else planners:
            base = get_planner(pname).plan(wf, catalog, model_of_wf, "mean")
            for vname, names in VARIANTS.items():
                if variants and vname not in variants:
                    continue
                # pre-warm weighs its start-ups against the host's cores, as the simulation and the real runs share them
                plan, cls = optimize(base, wf, model_of_wf, names, host_cores=sim_platform.host_cores)
                protocol = cls.for_plan(wf, plan)
                trace = simulate(wf, plan, model_of_wf, protocol=cls.for_plan(wf, plan), platform=sim_platform)
                cells.append({"workflow": wname, "planner": pname, "variant": vname, "wf": wf, "plan": plan,
                              "cls": cls, "bytes_moved": bytes_moved(wf, protocol),
                              "planned": measures(Trace.from_plan(plan).tasks, plan.workers, plan.makespan_s,
                                                  protocol),
                              "simulated": measures(trace.tasks, trace.workers, trace.makespan_s, protocol),
                              "cold_on_path": prewarm_cold_on_path(plan, wf),
                              "cold_on_path_any_host": cold_on_path_any_host(base, wf, model_of_wf, names),
                              "prewarm_held_back": plan.annotations.get("prewarm", {}).get("held_back", []),
                              "real_runs": [],
                              "plan_decisions": plan_decisions(wf, plan, protocol), "trace_decisions": []})
    return cells


def run_order(n: int, rep: int) -> list[int]:
    """The order of a cell's ``n`` variants in repetition ``rep``: from variant ``rep % n``, onwards in even
    repetitions and backwards in odd ones.

    Plain ABBA put ``base`` first in every other repetition, right after the previous
    cell's last run: whatever the first run after a switch of workflow pays (its
    plan's code and data not yet in the warm pool's caches) fell on ``base`` half the
    time and on no other variant as often (deep-chain heft's base was 17-22 % slower
    than identical variants, 07ccb77).  Moving the start gives each variant the first
    place in turn; going backwards every other repetition keeps a drift within a
    repetition from favouring the variants after the start.
    """
    step = 1 if rep % 2 == 0 else -1
    return [(rep + step * k) % n for k in range(n)]


#: a (workflow, planner) whose base is predicted to take less than this many seconds gets more repetitions
#: (:func:`repetitions_for`)
MIN_REAL_SECONDS = 3.0
#: at most this many times ``--repetitions``
MAX_REPETITIONS_FACTOR = 4


def repetitions_for(predicted_s: float, minimum: int, min_real_s: float = MIN_REAL_SECONDS) -> int:
    """How many repetitions a (workflow, planner) gets: ``minimum``, or enough for its runs to add up to
    ``min_real_s`` seconds by its base's simulated makespan, at most :data:`MAX_REPETITIONS_FACTOR` x ``minimum``.

    A run's noise does not shrink with its length: every run starts cold, and a cold start's
    jitter is tens of ms (the probe's spread) whatever follows it.  On a 60 ms deep chain or a
    0.3 s matrix pipeline that is 10-30 % per run, so five runs' medians moved by +-15 points
    between two recordings of the same code (gemm critical-path on 855b68f and 8de1590, with
    the executor unchanged between them) and the sign and 10-point checks judged the noise.
    More runs of the short cells cost little (their pause between runs dominates).
    """
    if min_real_s <= 0 or not predicted_s > 0:
        return minimum
    return max(minimum, min(minimum * MAX_REPETITIONS_FACTOR, math.ceil(min_real_s / predicted_s)))


def _base_simulated_s(group: list[dict[str, Any]]) -> float:
    """The simulated makespan of a (workflow, planner)'s base (0 when it has none)."""
    return next((c["simulated"]["makespan_s"] for c in group if c["variant"] == "base"), 0.0)


def run_real(ex: Executor, cells: list[dict[str, Any]], repetitions: int, warm_up: bool = True,
             min_real_s: float = 0.0) -> None:
    """Real runs, the variants of each (workflow, planner) interleaved in a rotating order (:func:`run_order`).

    With ``warm_up``, each (workflow, planner) starts every repetition with one unrecorded
    run of its first variant of that repetition, so no recorded run is the first after a
    switch of workflow.  Each (workflow, planner) runs ``repetitions`` times, or more when its
    base is short (:func:`repetitions_for` with ``min_real_s``; 0: exactly ``repetitions``).
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for c in cells:
        groups.setdefault((c["workflow"], c["planner"]), []).append(c)
    wanted = {key: repetitions_for(_base_simulated_s(group), repetitions, min_real_s) if min_real_s > 0
              else repetitions for key, group in groups.items()}
    for rep in range(max(wanted.values(), default=0)):
        for key, group in groups.items():
            if rep >= wanted[key]:
                continue
            order = [group[k] for k in run_order(len(group), rep)]
            runs = ([(order[0], False)] if warm_up else []) + [(c, True) for c in order]
            for c, recorded in runs:
                time.sleep(KEEP_ALIVE_S * 1.2)            # the warm pool drains: the run starts cold
                load = os.getloadavg()[0]
                protocol = c["cls"].for_plan(c["wf"], c["plan"])
                result = ex.run(c["wf"], c["plan"], protocol=protocol)
                t = result.trace
                if recorded:
                    c["real_runs"].append({**measures(t.tasks, t.workers, t.makespan_s, protocol), "load": load})
                    c.setdefault("trace_decisions", []).append(trace_decisions(t.tasks))
            print(f"rep {rep + 1}/{wanted[key]} {key[0]}/{key[1]} done (load {os.getloadavg()[0]:.1f})",
                  flush=True)


def change(value: float, base: float) -> float:
    return value / base - 1.0 if base > 0 else float("nan")


def summarise(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per cell: medians of the real runs, changes against base, whether the prediction was right."""
    base = {(c["workflow"], c["planner"]): c for c in cells if c["variant"] == "base"}
    rows = []
    for c in cells:
        runs = c["real_runs"]
        real = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "load"} if runs else {}
        row = {k: c[k] for k in ("workflow", "planner", "variant", "bytes_moved", "planned", "simulated",
                                 "cold_on_path", "cold_on_path_any_host", "prewarm_held_back", "plan_decisions",
                                 "trace_decisions", "confirm_makespans_s") if k in c}
        row.update(real=real, repetitions=len(runs), real_makespans_s=[r["makespan_s"] for r in runs],
                   load_median=statistics.median(r["load"] for r in runs) if runs else None)
        rows.append(row)
    return judge(rows)


def judge(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each variant's ``change`` against its base: planned, simulated (the prediction) and real, the real
    change's bootstrap CI, and whether the prediction got its sign and size right (:func:`sign_agrees`)."""
    base = {(r["workflow"], r["planner"]): r for r in rows if r["variant"] == "base"}
    changes = {}
    for r in rows:
        b = base[(r["workflow"], r["planner"])]
        if r["variant"] == "base" or not r["real_makespans_s"]:
            continue
        real_change = change(statistics.median(r["real_makespans_s"]), statistics.median(b["real_makespans_s"]))
        changes[id(r)] = {"planned": change(r["planned"]["makespan_s"], b["planned"]["makespan_s"]),
                          "simulated": change(r["simulated"]["makespan_s"], b["simulated"]["makespan_s"]),
                          "real": real_change, "real_ci95": change_ci(r["real_makespans_s"], b["real_makespans_s"])}
    floor = _null_floor([{"change": c} for c in changes.values()])
    for r in rows:
        c = changes.get(id(r))
        if c is None:
            r.pop("change", None)
            continue
        r["change"] = c
        if "plan_decisions" in r:      # checked on the plans and the real traces (_null_cells), never assumed
            r["null_check"] = is_null(r, base[(r["workflow"], r["planner"])])
    for r in rows:
        c = r.get("change")
        if c is None:
            continue
        c["sign_right"] = sign_agrees(c["simulated"], c["real"], c["real_ci95"], floor)
        spread = run_spread(base[(r["workflow"], r["planner"])]["real_makespans_s"])
        if not c["sign_right"] and r.get("null_check", {}).get("null") and spread is not None:
            # a null cell runs what its base runs: its change is noise, judged against the spread of the base's
            # own identical runs (_null_cells.run_spread) instead of its own 5-pair interval; its prediction must
            # still be "no change"
            c["null_floor"] = spread
            c["sign_right"] = abs(c["real"]) <= spread and abs(c["simulated"]) < DEAD_BAND
        c["within_10pp"] = abs(c["simulated"] - c["real"]) <= 0.10
    confirm(rows, base, floor)
    return rows


def confirm(rows: list[dict[str, Any]], base: dict[tuple[str, str], dict[str, Any]], floor: float) -> None:
    """A cell judged wrong that has fresh runs (``confirm_makespans_s``, :func:`confirm_wrong_signs`) takes
    its verdict from them (:func:`_confirm.confirmed_sign`, Bonferroni over the cells confirmed); the first
    verdict is kept as ``first_sign_right``."""
    wrong = [r for r in rows if "change" in r and not r["change"]["sign_right"] and r.get("confirm_makespans_s")
             and base[(r["workflow"], r["planner"])].get("confirm_makespans_s")]
    for r in wrong:
        c = r["change"]
        c["first_sign_right"] = False
        c["confirmation"] = confirmed_sign(c["simulated"], r["confirm_makespans_s"],
                                           base[(r["workflow"], r["planner"])]["confirm_makespans_s"], len(wrong),
                                           lambda predicted, real, ci: sign_agrees(predicted, real, ci, floor))
        c["sign_right"] = c["confirmation"]["sign_right"]


def confirm_wrong_signs(ex: Executor, cells: list[dict[str, Any]], rows: list[dict[str, Any]],
                        repetitions: int) -> int:
    """Run each cell judged wrong, and its base, ``repetitions`` more times (interleaved, as the first runs),
    keeping those runs apart (``confirm_makespans_s``) for :func:`confirm`; how many cells were confirmed."""
    wrong = {(r["workflow"], r["planner"], r["variant"]) for r in rows
             if "change" in r and not r["change"]["sign_right"]}
    if not wrong or repetitions <= 0:
        return 0
    print(f"confirming {len(wrong)} cell(s) judged wrong with {repetitions} fresh pairs: "
          + ", ".join("/".join(k) for k in sorted(wrong)), flush=True)
    shadows = shadow_cells(cells, wrong)
    run_real(ex, shadows, repetitions)
    for s in shadows:
        s["original"]["confirm_makespans_s"] = [run["makespan_s"] for run in s["real_runs"]]
    return len(wrong)


def change_ci(runs: list[float], base_runs: list[float], resamples: int = 2000,
              seed: int = 17) -> list[float] | None:
    """A 95 % bootstrap interval of ``median(runs) / median(base_runs) - 1``.

    The repetitions were run interleaved (repetition ``k`` of every variant of a cell
    one after the other), so they are resampled in pairs: the host's drift over the
    run moves both sides of a pair alike.  None with fewer than three pairs.
    """
    n = min(len(runs), len(base_runs))
    if n < 3:
        return None
    rng = random.Random(seed)
    draws = []
    for _ in range(resamples):
        pick = [rng.randrange(n) for _ in range(n)]
        draws.append(change(statistics.median(runs[k] for k in pick), statistics.median(base_runs[k] for k in pick)))
    draws.sort()
    return [draws[int(0.025 * (resamples - 1))], draws[int(round(0.975 * (resamples - 1)))]]


def sign_agrees(predicted: float, real: float, ci: list[float] | None, floor: float) -> bool:
    """Whether the predicted change has the real one's sign.

    A real change whose 95 % interval excludes 0 is an effect: the rule is the
    medians' sign rule (:func:`_same_sign`: the same sign, changes under
    :data:`DEAD_BAND` counting as none) - so predicting "no change" for a real effect
    is wrong; a predicted change (beyond the dead band) of the interval's sign is right
    even when the real median is inside the dead band, since the interval is the
    runs' evidence of the sign.  A real change whose interval includes 0 has no sign the runs can tell:
    the prediction agrees by that rule, or when it is within the measured noise
    (inside that interval, or no larger than the noise floor, :func:`noise_floor`).
    Without an interval (fewer than three repetitions): the medians' rule alone.
    """
    if _same_sign(predicted, real) or ci is None:
        return _same_sign(predicted, real)
    lo, hi = ci
    if lo > 0 or hi < 0:     # the runs tell the effect's sign, however small its median: the prediction's must match
        return abs(predicted) >= DEAD_BAND and (predicted > 0) == (lo > 0)
    return lo <= predicted <= hi or abs(predicted) <= max(floor, DEAD_BAND)


#: a predicted change smaller than this is "no change"
DEAD_BAND = 0.01


def _same_sign(predicted: float, real: float, dead_band: float = DEAD_BAND) -> bool:
    """Same sign, counting changes under 1 % as no change (either side)."""
    def sign(x: float) -> int:
        return 0 if abs(x) < dead_band else (1 if x > 0 else -1)
    return sign(predicted) == sign(real) or 0 in (sign(predicted), sign(real)) and abs(predicted - real) < 0.02


def noise_floor(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The real changes of variants predicted to change nothing (planned and simulated exactly as base's).

    Their plans time exactly as the base plan (retention; an optimization that found
    nothing to do), so their real change is run-to-run noise at the recorded load: the
    size below which no real effect can be told apart.
    """
    null = _null_changes(rows)
    return {"cells": len(null), "median_abs_real_change": statistics.median(null) if null else None,
            "max_abs_real_change": max(null) if null else None}


def null_cell_names(rows: list[dict[str, Any]]) -> list[str]:
    """``workflow/planner/variant`` of each cell checked null on its plan and its real traces (_null_cells)."""
    return [f"{r['workflow']}/{r['planner']}/{r['variant']}" for r in rows if r.get("null_check", {}).get("null")]


def _null_changes(rows: list[dict[str, Any]]) -> list[float]:
    return [abs(r["change"]["real"]) for r in rows if "change" in r
            and r["change"]["planned"] == 0.0 and r["change"]["simulated"] == 0.0]


def _null_floor(rows: list[dict[str, Any]]) -> float:
    null = _null_changes(rows)
    return statistics.median(null) if null else 0.0


def targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    changed = [r for r in rows if "change" in r]
    within = sum(r["change"]["within_10pp"] for r in changed) / len(changed) if changed else 0.0
    sign = all(r["change"]["sign_right"] for r in changed)
    cold = sum(r["cold_on_path"] + r.get("cold_on_path_any_host", 0) for r in rows if r["variant"] in ("prewarm", "all"))
    return {"prediction_sign_every_cell": {"value": sign, "pass": sign},
            "prediction_within_10pp_share": {"value": within, "target": 0.8, "pass": within >= 0.8},
            "prewarm_cold_starts_on_planned_path": {"value": cold, "target": 0, "pass": cold == 0,
                                                    "note": "warmed workers whose first task still waits for its "
                                                            "start-up, in the plans for this host (a worker whose "
                                                            "start-up does not fit in the idle cores is not warmed: the "
                                                            "cells' prewarm_held_back) plus in the same plans made "
                                                            "without the host's cores, where every worker the plan "
                                                            "starts cold is warmed (cold_on_path_any_host); workers "
                                                            "whose first task is a root start with the run"},
            "preload_plus_delayed_io_real_cut": preload_cut(rows)}


def sweep_workflows(sizes: tuple[int, ...] = SWEEP_PARTIAL_MB) -> dict[str, Workflow]:
    """fan-large at each of ``sizes`` MB per partial, named ``fan-large@<MB>MB``."""
    return {f"fan-large@{mb}MB": fan_large(partial_mb=mb) for mb in sizes}


def partial_size_sweep(sweep_rows: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pre-load with delayed I/O on fan-large by partial size: the sweep's cells and the main record's fan-large
    (:data:`FAN_PARTIAL_MB`) for :data:`SWEEP_PLANNER`, in size order - the predicted (planned, simulated) and the
    real change, and the real base and optimized medians."""
    table = []
    for r in [*sweep_rows, *rows]:
        name = r.get("workflow", "")
        if (r["variant"] != "preload+delayed_io" or r["planner"] != SWEEP_PLANNER or "change" not in r
                or not (name == "fan-large" or name.startswith("fan-large@"))):
            continue
        mb = FAN_PARTIAL_MB if name == "fan-large" else int(name.split("@")[1].removesuffix("MB"))
        base = next(b for b in [*sweep_rows, *rows] if b.get("workflow") == name and b["planner"] == r["planner"]
                    and b["variant"] == "base")
        c = r["change"]
        table.append({"partial_mb": mb, "planner": r["planner"], "gather_input_mb": 7 * mb,
                      "base_real_s": statistics.median(base["real_makespans_s"]),
                      "optimized_real_s": statistics.median(r["real_makespans_s"]),
                      **{k: c[k] for k in ("planned", "simulated", "real", "real_ci95", "sign_right", "within_10pp")},
                      "repetitions": r["repetitions"], "load_median": r["load_median"]})
    return sorted(table, key=lambda row: row["partial_mb"])


def preload_cut(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The real makespan cut of pre-load plus delayed I/O on fan-large (the smallest over the planners)."""
    cuts = [-r["change"]["real"] for r in rows
            if r.get("workflow") == "fan-large" and r["variant"] == "preload+delayed_io" and "change" in r]
    value = min(cuts) if cuts else None
    return {"value": value, "target": 0.20, "pass": None if value is None else value >= 0.20,
            "note": f"fan-large: a skewed scatter/gather of {FAN_PARTIAL_MB} MB partials (bench_optimizations.fan_large, "
                    "FAN_PARTIAL_MB; the cut at other sizes: partial_size_sweep); the "
                    "gather's worker pre-loads the other branches' partials while it scans its last chunk; delayed I/O "
                    "keeps the small branches' uploads eager (none holds its worker on the critical path)"}


NOTES = [
    "The predictions of a workflow of replay tasks (fan-large, deep-chain, ladder, epigenomics) use the cost model's "
    "prior exponent 0 (model_for): a replay task burns one thread, so the 2-CPU large profile does not run it faster "
    "(the prior keeps a quota's 1/cpus slowdown below one CPU, so the 0.5-CPU small profile still runs it 2x as long); "
    "with the default 0.5 the simulated tasks ran 0.71x as long as the real ones and every transfer looked larger "
    "beside them (gemm, numpy code, keeps the default).",
    "fan-large (bench_optimizations.fan_large) is a skewed scatter/gather: one large partition (two 0.6 s chunks) "
    "and three small ones (4, 2, 1 chunks of 0.15 s), every chunk writing a 32 MB partial the gather merges; both "
    "planners keep each branch on one worker and the gather beside the large partition, so pre-load fetches the "
    "other partials while that worker scans its last chunk. Delayed I/O uploads lazily only what holds a worker on "
    "the plan's critical path (lazy_outputs), none of fan-large's uploads: with the small branches' partials lazy "
    "(their workers scanning on while they upload, 0.28-0.6 s before the gather needed them) pre-load with delayed "
    "I/O was 1.6-2.4 points slower than pre-load alone (real, ea83540; simulated 1.4): those workers took the cores "
    "from the large branch sooner. The shape before (six equal tasks) left them nothing to overlap.",
    "The predictions (plans and simulation) move data at the executor's link and start workers at its cold start "
    "as probed on this host before the cells (host_probe), not at the priors' 200 MB/s and 0.25 s.",
    "Start-ups in the simulation: the executor's launcher starts workers one after another, so a burst of six cold "
    "starts asked for at once comes launcher_serial_s apart (host_probe: probe_launcher; 27 ms of an 87 ms cold "
    "start at load 5-8); the simulated platform takes that part serially in its launcher (process_start_s) and "
    "the rest as start-up CPU shared by the cores (simulated_platform), and a warm start reaches the launcher "
    "behind the roots' starts sent at the same instant, as the client sends them. Before, every start-up ran in "
    "parallel and the warm starts went first: epigenomics heft pre-warm had its root start 0.30 s late behind "
    "eight warm start-ups (real traces: on time, 0.053 s against 0.052 s, the workers ~50 ms apart), simulated "
    "-3.2 % where the real runs gained nothing (the cells give the figures with this model).",
    "Each real change has a paired bootstrap 95 % interval over the interleaved repetitions (real_ci95). Sign: "
    "the medians' rule (same sign, |change| < 1 % counts as none, a 'none' within 2 points of the other agrees); "
    "where it fails, a real change whose interval includes 0 has no sign the runs can tell and agrees with a "
    "prediction inside that interval or under the noise floor; a real change whose interval excludes 0 is an "
    "effect and must be predicted with its sign. Within 10 points: on the medians, unchanged.",
    "A cell judged wrong is confirmed before the verdict stands (_confirm.py): it and its base run "
    "confirm_repetitions fresh interleaved pairs, and the verdict is the same rule on those runs alone with a "
    "Student-t interval of their log ratios at 1 - 0.05 / k (Bonferroni over the k cells confirmed); "
    "change.first_sign_right keeps the first verdict, change.confirmation the second. With ~70 cells at 95 % a few "
    "intervals exclude 0 by chance, and a percentile bootstrap of 5 pairs is overconfident (5 pairs of one sign give "
    "an interval that excludes 0 whatever their size; their exact sign test has p = 0.0625): on ea83540 the "
    "epigenomics heft retention and critical-path all cells failed so, 5/5 pairs slower by 0.2-7 %. The first runs "
    "chose the cells, so they cannot also test them; fresh runs can, and a real effect survives them.",
    "Repetitions: --repetitions per cell, more for a workflow whose base is predicted short, enough for its runs to "
    "add up to min_real_seconds, at most 4x (repetitions_for): every run starts cold and a cold start's jitter is "
    "tens of ms whatever the run's length, so five runs of a 0.3 s matrix pipeline moved its medians by +-15 points "
    "between two recordings of the same executor code (gemm critical-path, 855b68f and 8de1590).",
    "Run order: each (workflow, planner) starts every repetition with one unrecorded warm-up run, then runs its "
    "variants from the repetition's number onwards (even repetitions) or backwards (odd ones), so each variant is "
    "first in turn (run_order); plain ABBA had base first after every switch of workflow in every other repetition "
    "(deep-chain heft's base was 17-22 % slower than identical variants on 07ccb77).",
    "Background transfers (pre-load's fetches, delayed I/O's uploads) move each payload in one blocking call in the "
    "executor (one GIL hand-over per payload instead of ~150 per 32 MB); the simulation charges their CPU (the "
    "worker's thread and the server: 0.6 ns/B fetched, 0.35 ns/B uploaded, measured) to the host's cores beside "
    "the executions, as it charges a foreground transfer's (the other workers' tasks share the cores with it too; "
    "before, only the background ones were charged, so delayed I/O looked slower on fan-large than it ran).",
    "A background transfer's CPU in the simulation (simulator.quota): the worker's thread's inside its own worker's "
    "CPU quota (one cgroup per worker: on a 1-CPU worker it lengthens the task it runs beside by that CPU, however "
    "idle the other core), the server's on the host's cores (it slows the tasks only when the cores are all busy). "
    "The per-byte CPU of a pre-load is probed before the cells (host_probe: _background_probe.probe_background, "
    "64 MB pre-loaded beside a 0.5 s task on a 1-CPU worker, base and pre-load interleaved): with the other core "
    "idle the task's loss is the thread's term, with it busy the two tasks' losses are the thread's and the "
    "server's (work conservation), each divided by the task's dilation on the busy host; uploads keep the measured "
    "0.35 ns/B, half each side's. Before, a background transfer was one job on the host's cores beside its "
    "worker's task, which on an idle core cost that task nothing.",
    "Pre-load and delayed I/O leave out transfers under 4 MiB (a task's fetched inputs, a stored output) in every "
    "engine (the protocol's preloads_inputs / lazy_upload): a background thread cost 1-3 ms beside a CPU-bound "
    "task, more than the inline fetch it would hide; so epigenomics (inputs ~86 KB) and gemm (0.5-1.6 MB) run "
    "neither, and their cells measure that nothing changes. A worker whose every lazy upload has >= 0.1 s of slack "
    "in the plan (not the ladder's zig-zag: 23-70 ms) uploads on a "
    "thread niced by 10 (it yields the cores to the executions); the simulation weighs that CPU so (CFS's "
    "weight: 0.107 for the thread, the upload as one job at 0.21).",
    "Null cells (_null_cells): a variant whose plan and protocol decide exactly as its base's (assignment, warm "
    "starts, per task what is stored, fetched, removed, pre-loaded, uploaded lazily) and whose every real run did "
    "the same (per task: worker, cold start, bytes in and out, upload, pre-load, lazy upload, from the traces) runs "
    "what its base runs: its real change is noise. Each cell's null_check says so; null_cells lists them. With ~70 "
    "cells at 95 % a few null cells' 5-pair intervals exclude 0 by chance; where that happens the cell is judged "
    "against its base's own run-to-run spread ((max - min) / median of the base's runs, change.null_floor) "
    "instead, and its prediction must be no change. A cell not checked null keeps the interval rule.",
    "A pre-load's fetch starts Platform.preload_lag_s after its input is stored (or after its pre-load started, "
    "stored before), as probed (host_probe: probe_preload_lag, the median over 5 runs of a 10 MB input stored "
    "while the reader's worker runs a 0.3 s CPU-bound task). On the ladder's heft base at load 7 (scratch, 5 runs) "
    "the pre-loaded 10 MB fetches started 0.1-8 ms (per-task medians) after their inputs were stored; the "
    "simulated ladder heft's changes do not move for a lag up to 10 ms and by 0.6-1.8 points at 20 ms (its "
    "spine's pre-loaded inputs are stored 27-40 ms before the task before ends; sharing 1.9, the recorded probe), "
    "so the lag does not explain its wrong signs.",
    "Concurrent transfers in the simulation: two concurrent downloads of one output by two workers take "
    "storage_sharing times one alone (host_probe: probe_sharing, 10 MB; ~1.7 measured quietly by the coordinator, "
    "where the simulated link used to share its bandwidth equally, 2); the simulated platform's link moves "
    "2 / storage_sharing times its bandwidth while two or more transfers are in flight. The factor is read off "
    "each pair's overlap (sharing_factor: the link's work, two lone downloads, done at rate 1 while one runs and "
    "2 / f while both do), not off the pair's span over the lone download, which grows with the downloads' offset "
    "and reads downloads apart that never contended as 2 or more (clipped to 2.00).",
    "Unequal shares of the link (Platform.storage_first_come, simulator.storage.RankedLink): of two transfers in "
    "flight the one that started first gets (1 + p) / 2 of the link, the total rate unchanged; p is read off the "
    "sharing probe's pairs (link_sharing_terms: equal shares end two downloads as far apart as they started, first "
    "come first served a lone download apart), storage_sharing off the same pairs as the ratio of their sums (a pair "
    "that barely overlapped weighs little), over SHARING_REPETITIONS interleaved rounds. On the ladder's heft base "
    "(load 7) the spine's download, started first, took 13-24 ms and the side branch's 36-51 ms where equal shares "
    "gave both 29.8 ms. Measured in isolation (scratch, two reader processes in 1-CPU cgroups, 10 MB GETs at set "
    "offsets, quiet and with four CPU-bound processes beside): two foreground downloads shared about equally at 0-5 ms "
    "offsets; a pre-load's background download (a thread beside a CPU-bound task in its worker's quota) got the "
    "smaller share whichever started first. Re-simulated on the recorded probe, the ladder heft all cell moves "
    "-3.2 -> -2.9 % at p = 0.12 (the first probe's value), -2.1 % at 0.5.",
    "Uploads and downloads in the simulation move at their own probed rates (host_probe: upload_s_median, "
    "download_s_median of 64 MB; Platform.download_bandwidth_Bps), not both at their mean (bandwidth_Bps, which the "
    "plans' cost model keeps): a download took 2.5x its upload (286 against 723 MB/s, quiet) - it receives into a "
    "new buffer, every page zero-filled and faulted in (bytearray(64 MB) alone took 124 ms median at load 10) - and "
    "fan-large's critical path downloads 7 x 32 MB into the gather's worker and uploads nothing (its branch's "
    "partials stay local). At the mean its simulated base was 15-24 % short (2.05 s against 2.69 / 2.41 s real) and "
    "pre-load's cut a third of the real one; on the recorded probe the split gives base 2.23 s, pre-load -14.3 % "
    "(heft) / -15.7 % (critical-path) against -25.2 / -20.0 % real, within 10 points on 59 cells of 70 instead of 56.",
    "The simulated link has two regimes (two_regime_link; Platform.large_transfer_bytes and large_*_s_per_byte): "
    "each direction's rate is a warm 10 MB pair's, and a transfer's bytes past 32 MiB (a task's inputs fetched "
    "together count as one transfer) cost the warm 64 MB pair's time beyond that rate, per byte, as a delay of the "
    "worker's own. Measured quietly between warm workers: 10-32 MB moved at 1.2-2.4 GB/s, 64 MB at 0.66-1.15 GB/s, "
    "a gather's 4-7 x 32 MB at 0.45-0.64 GB/s - bytes past what a process's allocator reuses (glibc's mmap "
    "threshold, at most 32 MiB) are new pages, faulted in and zeroed. With one rate (the cold 64 MB pair's) the "
    "ladder's 10 MB hand-offs took 3x their real time in the simulation, so its pre-load and delayed I/O looked to "
    "save 2-4 % where the runs saved nothing (the ladder heft cells' signs, 67/70 on 855b68f).",
    "Retention: the last reader's commit sets an output aside (an O(1) RENAME) and its worker frees it right after "
    "the commit's reply (the sink's worker with its sweep of leftovers), not inside the commit: a 32 MB free takes "
    "the server 2.2 ms, and fan-large's gather freed seven partials in its commit (9.7 ms against 1.2 ms at load 9), "
    "+2.4 % real for critical-path on 30feb18 against 0 predicted; with the change 1.3 ms against 2.1 ms, makespan "
    "+0.4 % (load 6.5, 6 pairs, indicative).",
    "Pre-warm warms only the workers whose first task the plan starts cold: one the plan starts on an idle process "
    "(a warm hand-off) has no cold start to remove, and warming it added a start-up beside the others at the run's "
    "start (gemm critical-path warmed two: simulated +22 %, the ten start-ups sharing the two cores).",
    "Pre-warm sees the host (optimize(..., host_cores=the simulated platform's cores): prewarm_host): a worker is "
    "warmed only where its start-up (its p95, on one core) fits in the cores its plan leaves idle before its first "
    "task is ready, placed just in time, and only when the warmed plan is shorter (a warm-up off the critical path "
    "buys billed seconds; fan-large heft's two aligned their workers' 32 MB uploads: simulated +3.9 %, plan 0); "
    "the others start cold as planned (the plan's annotations: held_back). "
    "On two cores a start-up moved beside running tasks takes from them what it saves: epigenomics heft warmed all "
    "eight workers at the run's start, plan -21.9 % / simulated -4.1 % / real -0.7 % [-1.6, +3.8] (old plans); "
    "real traces at load 8 (new plans, 6 interleaved pairs): the warmed workers got ready one after another "
    "~70 ms apart as the cold ones did ~50 ms apart, the tasks' executions summed 12.7 s against 12.9 s, "
    "makespan 3.10 s against 3.06 s. The target 'no cold start on the critical path' counts warmed workers.",
    "The probed cold start is a run's non-root worker's as the run meets it (host_probe: probe_cold_start): from "
    "its start message (its parent's commit) to its first task's start, after a 1-byte parent, not to the new "
    "process's first line (the trace's worker_start_s): after that line the process still reads the run's spec "
    "and code, claims its worker and waits for its cgroups. The probe before stopped there (12 ms quiet, all of "
    "it the launcher's serial part, so the simulated start-up was ~0); its first task then started 45-86 ms "
    "after the message at load 5-10 (probe_cold_start; 16-24 ms of it the launcher's serial part), and gemm's "
    "base, eight cold starts and little else, simulated 0.13 s against 0.32 s real. Before that the probe took "
    "the 64 MB reader's worker, whose start after a parent that stored 64 MB took 0.16-0.58 s.",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=5, help="real runs per cell (default 5)")
    parser.add_argument("--min-real-seconds", type=float, default=MIN_REAL_SECONDS,
                        help="seconds of real runs each workflow and planner gets at least, by its base's simulated "
                             "makespan: a short one runs more often, up to 4x --repetitions "
                             f"(default {MIN_REAL_SECONDS:g}; 0: exactly --repetitions)")
    parser.add_argument("--confirm-repetitions", type=int, default=CONFIRM_REPETITIONS,
                        help="fresh paired runs a cell judged wrong gets before its verdict stands "
                             f"(default {CONFIRM_REPETITIONS}; 0: none; see benchmarks/_confirm.py)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--quick", action="store_true",
                        help="a check that it works: one repetition, fan-large and the ladder with heft (not a record)")
    parser.add_argument("--workflows", default="",
                        help="comma-separated workflows to run (default: all; a partial run is not a record)")
    parser.add_argument("--planners", default=",".join(PLANNERS), help="comma-separated planners (default: both)")
    parser.add_argument("--prediction", choices=PREDICTIONS, default="priors",
                        help="priors: the cost model's priors on the probed platform; runner: as planlab's runner, a "
                             "cost model fitted on profile runs and the host calibrated on real runs; profiled: that "
                             "fitted model on the probed platform (_opt_prediction)")
    parser.add_argument("--redis", default=None, metavar="URL",
                        help="run on this Redis server (redis://:PASSWORD@HOST:PORT) instead of the embedded one: "
                             "storage on another host or behind a real network link; the host probe measures it")
    parser.add_argument("--remote-link", default=None, metavar="RATE",
                        help="run on the embedded server's binary in its own network namespace, behind a veth pair "
                             "shaped to RATE each way (e.g. 1gbit: a serverless worker's link to its storage; "
                             "benchmarks/_remote_link.py; needs root, ip and tc)")
    parser.add_argument("--resummarise", action="store_true",
                        help="recompute the targets and the noise floor of --out from its cells (no runs)")
    args = parser.parse_args(argv)
    if args.resummarise:
        result = json.loads(args.out.read_text())
        result["cells"] = judge(result["cells"])
        result.update(targets=targets(result["cells"]), noise_floor=noise_floor(result["cells"]),
                      null_cells=null_cell_names(result["cells"]))
        args.out.write_text(json.dumps(result, indent=1, default=float) + "\n")
        print_table(result["cells"])
        return 0
    load_start = os.getloadavg()
    if args.quick:
        args.repetitions = 1
    min_real_s = 0.0 if args.quick else args.min_real_seconds   # a check that it works runs each cell once
    only = tuple(w for w in args.workflows.split(",") if w)
    planners = tuple(p for p in args.planners.split(",") if p)
    known = set(workflows())
    bad = [w for w in only if w not in known] + [p for p in planners if p not in PLANNERS]
    if bad:
        parser.error(f"unknown workflow or planner {bad[0]!r}: use workflows {', '.join(sorted(known))} "
                     f"and planners {', '.join(PLANNERS)}")
    started = time.perf_counter()
    settings = ExecutorSettings(keep_alive_s=KEEP_ALIVE_S, max_replay_bytes=64 * MB)
    if args.redis and args.remote_link:
        parser.error("give --redis or --remote-link, not both")
    stack = contextlib.ExitStack()
    try:
        redis_url = stack.enter_context(remote_store(args.remote_link)) if args.remote_link else args.redis
    except RemoteLinkError as exc:
        parser.error(str(exc))
    with stack, Executor(redis_url, settings=settings) as ex:
        catalog = load_catalog("local")
        link = probe_host(ex, CostModel(), catalog)
        # the predictions' storage and cold start: the probed ones, in the plans and the simulator
        model = CostModel(bandwidth_Bps=link["bandwidth_Bps"], cold_start_s=link["cold_start_s"])
        link.update(probe_background(ex, model, catalog))
        link.update(probe_preload_lag(ex, model, catalog))
        sim_platform = simulated_platform(link)
        if args.remote_link:     # one shaper per direction: an upload does not slow a download (Platform.storage_duplex)
            sim_platform = sim_platform.with_(storage_duplex=1.0)
        runner = None
        if args.prediction != "priors":   # profile phase (and host calibration: runner), the probed link kept
            chosen = {w: wf for w, wf in workflows().items() if (not only or w in only)
                      and (not args.quick or w in QUICK_WORKFLOWS)}
            runner = runner_prediction(ex, chosen, catalog, model, sim_platform, calibrate=args.prediction == "runner")
            model, sim_platform = runner.cost_model, runner.platform
        print(f"host probe: {link['bandwidth_Bps'] / 1e6:.0f} MB/s (64 MB up {link['upload_s_median'] * 1e3:.0f} ms, "
              f"down {link['download_s_median'] * 1e3:.0f} ms), cold start {link['cold_start_s'] * 1e3:.0f} ms "
              f"({link['launcher_serial_s'] * 1e3:.0f} ms serial in the launcher), two concurrent downloads "
              f"{link['storage_sharing']:.2f}x one alone ({link['sharing_lone_download_s'] * 1e3:.1f} ms for "
              f"{SHARING_BYTES / MB:.0f} MB), the first of two getting {(1 + link['storage_first_come']) / 2:.0%} "
              f"of the link; a background fetch's CPU {link['fetch_thread_s_per_byte'] * 1e9:.2f} ns/B "
              f"the worker thread's, {link['fetch_server_s_per_byte'] * 1e9:.2f} ns/B the server's; warm 10 MB up "
              f"{link['warm_small_up_s_median'] * 1e3:.1f} ms, down {link['warm_small_down_s_median'] * 1e3:.1f} ms, warm "
              f"64 MB up {link['warm_large_up_s_median'] * 1e3:.1f} ms, down {link['warm_large_down_s_median'] * 1e3:.1f} ms; "
              f"a pre-load starts {link['preload_lag_s'] * 1e3:.1f} ms after its input is stored", flush=True)
        cells = prepare(model, catalog, sim_platform, args.quick, only, planners)
        run_real(ex, cells, args.repetitions, min_real_s=min_real_s)
        confirmed = confirm_wrong_signs(ex, cells, summarise(cells), 0 if args.quick else args.confirm_repetitions)
        sweep: list[dict[str, Any]] = []
        if not args.quick and (not only or "fan-large" in only) and SWEEP_PLANNER in planners:   # the cut by size
            sweep = prepare(model, catalog, sim_platform, planners=(SWEEP_PLANNER,), chosen=sweep_workflows(),
                            variants=SWEEP_VARIANTS)
            run_real(ex, sweep, args.repetitions, min_real_s=min_real_s)
    rows = summarise(cells)
    checks = targets(rows)
    result = {"benchmark": "optimizations", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "server": (f"remote link {args.remote_link} (the embedded server's binary in a network namespace, "
                         "a veth pair shaped each way: _remote_link)" if args.remote_link else
                         "embedded" if args.redis is None else redacted_url(args.redis)),
              "git": _revision.short(), "repetitions": args.repetitions, "quick": args.quick,
              "confirm_repetitions": 0 if args.quick else args.confirm_repetitions, "cells_confirmed": confirmed,
              "min_real_seconds": min_real_s,
              "real_seconds": time.perf_counter() - started,
              "machine": {"python": pyplatform.python_version(), "cpus": os.cpu_count(),
                          "load_average_start": load_start, "load_average_end": os.getloadavg()},
              "platform": "Platform.for_local_host(keep_alive_s=1.0, storage_bandwidth_Bps and download_bandwidth_Bps "
                          "a warm 10 MB pair's upload and download rates, large_transfer_bytes 32 MiB and "
                          "large_*_s_per_byte a warm 64 MB pair's time beyond them (two_regime_link), process_start_s = the "
                          "launcher's serial part of a cold start probed, storage_sharing and storage_first_come off the sharing "
                          "probe's pairs (link_sharing_terms), cold_start_s = the rest of a cold start "
                          "from the start message to the first task's start (probe_cold_start); simulated_platform); "
                          "cost model: priors (task hints) with bandwidth_Bps and cold_start_s probed; prior_exponent 0 for "
                          "workflows of replay tasks (model_for); pre-warm planned for the platform's host_cores",
              "prediction": args.prediction, "runner_prediction": runner.summary() if runner else None,
              "notes": NOTES + [prediction_note(args.prediction, runner)], "host_probe": link, "partial_run": bool(only) or planners != PLANNERS,
              "not_built": list(NOT_BUILT), "targets": checks, "noise_floor": noise_floor(rows),
              "null_cells": null_cell_names(rows), "cells": rows,
              "partial_size_sweep": partial_size_sweep(summarise(sweep), rows) if sweep else []}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print_table(rows)
    for r in result["partial_size_sweep"]:
        print(f"fan-large {r['partial_mb']:3d} MB partials ({r['planner']}): pre-load + delayed I/O real {r['real']:+.1%} "
              f"(base {r['base_real_s']:.2f} s), planned {r['planned']:+.1%}, simulated {r['simulated']:+.1%}")
    return 0


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'workflow':12} {'planner':14} {'variant':18} {'plan':>7} {'sim':>7} {'real':>7} "
          f"{'dPlan':>7} {'dSim':>7} {'dReal':>7} ok")
    for r in rows:
        ch = r.get("change", {})
        print(f"{r['workflow']:12} {r['planner']:14} {r['variant']:18} {r['planned']['makespan_s']:7.2f} "
              f"{r['simulated']['makespan_s']:7.2f} {r['real'].get('makespan_s', float('nan')):7.2f} "
              + (f"{ch['planned']:+7.1%} {ch['simulated']:+7.1%} {ch['real']:+7.1%} "
                 f"{'Y' if ch['sign_right'] and ch['within_10pp'] else 'n'}" if ch else ""))


if __name__ == "__main__":
    sys.exit(main())
