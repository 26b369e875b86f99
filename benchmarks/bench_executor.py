"""Real-executor overheads, recorded in ``benchmarks/results/executor.json``.

Run: ``python benchmarks/bench_executor.py [--quick] [--no-dask] [--dask-max-tasks N] [--live-view] [--out FILE]``
(``--live-view-only``: only the live view's entry, see ``benchmarks/_live_view.py``).
The full run takes a few minutes; ``--dask-max-tasks`` (default 1000) runs the
dask side-by-side only on DAGs of at most N tasks, since dask.distributed takes
~3-6 ms per task here (~25 minutes for the 10k-task DAGs: pass
``--dask-max-tasks 10000`` to include them).

Per-task overhead on no-op DAGs (``deep_chain`` and ``fan_out`` of 1k and 10k
tasks): the run's makespan minus the time the same tasks take in one process
(``run_locally``), over the task count, on warm worker processes of an
:class:`executor.Executor` (embedded server).  Three placements:

* ``chain/1 worker`` - the whole chain on one worker (the locality planners' choice):
  no counter to update and nothing to store, so no round trip per task;
* ``chain/2 workers alternating`` - every edge crosses workers (the worst case):
  each task stores its output and notifies the other worker, which fetches it;
* ``fan-out/2 workers`` - source and sink on one worker, the middle tasks
  alternating: every middle task stores its output and runs the sink's counter
  script, the sink fetches all outputs.

The same DAGs (up to ``--dask-max-tasks``) run on ``dask.distributed``'s
``LocalCluster`` (2 worker processes, 1 thread each) in the same run, after the
executor's measurements (an idle cluster's heartbeats would load them), for the
ratio.  Target: <= 0.5 ms overhead per task (<= 0.15 ms on the alternating chain).
Where workers wait for each other's notifications, the same runs without the
workers' short spin (``ExecutorSettings.spin_wait_s = 0``), interleaved, are
recorded beside (``overhead_ms_per_task_no_spin``): the spin runs only while the
host has an idle CPU, so on a loaded host both figures measure the same code.  The
alternating chain also runs with direct same-host notes (``ExecutorSettings.direct_notes``,
off by default, :mod:`executor.direct_notes`), interleaved: ``overhead_ms_per_task_direct``, and
the share of hops that ran on a direct note in the last such run, ``direct_runs_share`` (0 on a
loaded host: they are taken only while the workers spin).  After each of its runs, the floor of a
hop through the same server (``benchmarks/_hop_floor.py``: two processes passing a token, each hop
one write of the executor's commit script - or a plain push - and the next pop, with the workers'
spin rule): ``hop_floor_commit_us`` and ``hop_floor_plain_us``, medians in microseconds per hop,
beside the chain's overhead per task (every task is a hop) - what is left of a hop without the
executor's work per task.
Each row's figure is the median of its runs (``repeats``: 3, the alternating chain
``--alternating-repeats``, 9: its target is within what host drift moves) against
the median of five local runs.

Data: bytes per second moved between two workers (``a -> b`` on different workers)
for 1 MiB and 10 MiB outputs - the upload phase of ``a`` plus the download phase of
``b`` from the trace - against raw redis-py ``SET`` + ``GET`` of the same bytes on
the same server.  Replay tasks move raw bytes (``GETRANGE``); DSL tasks returning
``bytes`` add pickling.  Both sides get one warm-up and the same number of
repeats, interleaved (raw, then one executor run, per repeat) so they share the
machine's load, and both report medians.  Target: >= half of raw throughput.

Hand-off and worker start (``handoff``, ``start``; ``--handoff-only`` updates only
them): a's execution end to b's execution start at 8 B - 10 MiB against raw
SET+GET, and submission to task start on warm and cold processes against a bare
fork and ``python -c pass`` - see ``benchmarks/_handoff_start.py``.
redis-py's ``SET`` copies the value into one buffer (hiredis packing: ~1.5 ms per
MiB here); the same pair through :class:`executor.wire.Wire` (which the workers
use, sending large values uncopied) is recorded beside as ``ratio_vs_raw_wire``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from executor import Executor, ExecutorSettings
from executor.plans import assigned_plan
from executor.wire import Wire, spin_budget
import _revision      # the commit measured: taken when the run starts
from _hop_floor import MODES as FLOOR_MODES, hop_floor_us   # (beside this script)
from planning.sources import kernels
from planning.sources.dsl import build_workflow, task
from planning.sources.generators import generate
from planning.tasks import Task
from planning.workflow import Workflow, run_locally

TARGETS = {"overhead_ms_per_task": 0.5, "throughput_vs_raw": 0.5, "alternating_chain_overhead_ms_per_task": 0.15}
RESULTS = Path(__file__).resolve().parent / "results" / "executor.json"
#: hops each way of a hop-floor measurement (benchmarks/_hop_floor.py), one after each alternating chain's run
FLOOR_HOPS = 1000


# ---------------------------------------------------------------- per-task overhead
def _placements(kind: str, n: int) -> dict[str, tuple[Workflow, dict[str, str]]]:
    if kind == "chain":
        wf = generate("deep_chain", length=n)
        ids = wf.task_ids
        return {"1 worker": (wf, {t: "w0" for t in ids}),
                "2 workers alternating": (wf, {t: f"w{i % 2}" for i, t in enumerate(ids)})}
    wf = generate("fan_out", width=n - 2)
    worker = {"src": "w0", "sink": "w0", **{f"w{i}": f"w{i % 2}" for i in range(n - 2)}}
    return {"2 workers": (wf, worker)}


def _dask_graph(wf: Workflow) -> dict:
    graph = {}
    for t in wf.tasks:
        graph[t.id] = (kernels.noop, *[a if not hasattr(a, "task_id") else a.task_id for a in t.args])
    return graph


def _with_settings(ex: Executor, settings: ExecutorSettings, wf: Workflow, plan):
    """One run under other settings (the executor's own restored after it)."""
    own = ex.settings
    ex.settings = settings
    try:
        return ex.run(wf, plan)
    finally:
        ex.settings = own


#: Local runs whose median is the in-process reference (one sample of a ~2 ms run is at the host's mercy).
LOCAL_REPEATS = 5


def _local_s(wf: Workflow) -> float:
    """The tasks' time in one process (``run_locally``): the median of :data:`LOCAL_REPEATS` runs."""
    times = []
    for _ in range(LOCAL_REPEATS):
        t = time.perf_counter()
        run_locally(wf)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_overhead(ex: Executor, sizes: list[int], repeats: int,
                   alternating_repeats: int | None = None) -> tuple[list[dict], list[Workflow]]:
    """Executor rows (and each row's workflow, for the dask side-by-side run afterwards).

    ``alternating_repeats`` (default ``repeats``): runs of the alternating chain, whose target (0.15 ms)
    is close to what host drift moves (0.12-0.19 ms within 40 quiet minutes): its median takes more
    samples than the others', each interleaved with its no-spin reference as theirs are."""
    rows, workflows = [], []
    for kind in ("chain", "fan-out"):
        for n in sizes:
            for placement, (wf, worker_of) in _placements("chain" if kind == "chain" else "fan_out", n).items():
                plan = assigned_plan(wf, worker_of, "large")
                local_s = _local_s(wf)
                runs = (alternating_repeats or repeats) if placement == "2 workers alternating" else repeats
                first = ex.run(wf, plan)  # warm-up: processes warm, caches primed (this plan's spec and code too)
                # where workers wait for each other, the same runs without the spin, interleaved (the reference)
                unspun = dataclasses.replace(ex.settings, spin_wait_s=0.0) if placement != "1 worker" else None
                if unspun is not None:
                    _with_settings(ex, unspun, wf, plan)
                # on the alternating chain, the same runs with direct notes (off by default), interleaved too
                direct = (dataclasses.replace(ex.settings, direct_notes=True)
                          if placement == "2 workers alternating" else None)
                spans, prep, spans_unspun, spans_direct = [], [], [], []
                floors: dict[str, list[float]] = ({mode: [] for mode in FLOOR_MODES}
                                                  if placement == "2 workers alternating" else {})
                for _ in range(runs):
                    result = ex.run(wf, plan)
                    spans.append(result.makespan_s)
                    prep.append(result.meta["prepare_s"])
                    if unspun is not None:
                        spans_unspun.append(_with_settings(ex, unspun, wf, plan).makespan_s)
                    if direct is not None:
                        directed = _with_settings(ex, direct, wf, plan)
                        spans_direct.append(directed.makespan_s)
                    for mode, got in floors.items():   # the hop's floor through the same server (benchmarks/_hop_floor.py)
                        got.append(hop_floor_us(ex.url, FLOOR_HOPS, spin_budget(ex.settings.spin_wait_s), mode))
                makespan = statistics.median(spans)
                row = {"dag": kind, "tasks": len(wf), "placement": placement, "workers": len(plan.workers),
                       "makespan_s": makespan, "local_s": local_s, "prepare_s": statistics.median(prep),
                       "overhead_ms_per_task": (makespan - local_s) / len(wf) * 1e3,
                       "overhead_ms_per_task_runs": [(s - local_s) / len(wf) * 1e3 for s in spans],
                       "repeats": runs, "local_repeats": LOCAL_REPEATS,
                       "warm_starts": result.meta["warm_starts"],
                       # the plan's first run: its processes read and load its spec and code (later runs reuse them)
                       "first_run_overhead_ms_per_task": (first.makespan_s - local_s) / len(wf) * 1e3}
                if spans_unspun:   # ExecutorSettings.spin_wait_s = 0 (no poll before a worker sleeps)
                    row["overhead_ms_per_task_no_spin"] = (statistics.median(spans_unspun) - local_s) / len(wf) * 1e3
                if spans_direct:   # ExecutorSettings.direct_notes on (executor.direct_notes)
                    row["overhead_ms_per_task_direct"] = (statistics.median(spans_direct) - local_s) / len(wf) * 1e3
                    row["direct_runs_share"] = float(directed.trace.workers["direct_runs"].sum()) / max(1, len(wf) - 1)
                for mode, got in floors.items():   # us per hop; "commit": the executor's commit script, "plain": RPUSH
                    row[f"hop_floor_{mode}_us"] = statistics.median(got)
                    row[f"hop_floor_{mode}_us_runs"] = got
                rows.append(row)
                workflows.append(wf)
                unspun_text = (f"  (no spin {row['overhead_ms_per_task_no_spin']:.3f})"
                               if "overhead_ms_per_task_no_spin" in row else "")
                if floors:
                    unspun_text += (f"  (hop floor: commit script {row['hop_floor_commit_us'] / 1e3:.3f}, "
                                    f"plain push {row['hop_floor_plain_us'] / 1e3:.3f})")
                if "overhead_ms_per_task_direct" in row:
                    unspun_text += (f"  (direct notes {row['overhead_ms_per_task_direct']:.3f}, "
                                    f"{row['direct_runs_share']:.0%} of hops direct)")
                print(f"{kind:>7} {len(wf):>6} tasks {placement:<22} makespan {makespan * 1e3:8.1f} ms  "
                      f"overhead {row['overhead_ms_per_task']:.3f} ms/task{unspun_text}", flush=True)
    return rows, workflows


def bench_dask(rows: list[dict], workflows: list[Workflow], dask_client, repeats: int, max_tasks: int) -> None:
    """The same DAGs on dask.distributed, after the executor's runs (its idle cluster would load theirs)."""
    done: dict[int, float] = {}   # placements of one DAG share its dask time
    for row, wf in zip(rows, workflows):
        if len(wf) > max_tasks:
            continue
        if id(wf) not in done:
            graph = _dask_graph(wf)
            sink = wf.sinks()[0]
            dask_repeats = repeats if len(wf) <= 2000 else 1  # ~3-6 ms/task here: 10k take minutes
            if dask_repeats > 1:
                dask_client.get(graph, sink)
            ds = []
            for _ in range(dask_repeats):
                t = time.perf_counter()
                dask_client.get(graph, sink)
                ds.append(time.perf_counter() - t)
            done[id(wf)] = statistics.median(ds)
        row["dask_s"] = done[id(wf)]
        row["dask_ms_per_task"] = row["dask_s"] / len(wf) * 1e3
        row["dask_over_executor"] = row["dask_s"] / row["makespan_s"]
        print(f"{row['dag']:>7} {len(wf):>6} tasks {row['placement']:<22} dask {row['dask_ms_per_task']:.3f} ms/task "
              f"(x{row['dask_over_executor']:.1f} the executor)", flush=True)


# ---------------------------------------------------------------- data throughput
@task
def produce(nbytes):
    return bytes(nbytes)


@task
def consume(data):
    return len(data)


def _replay_pair(nbytes: int) -> Workflow:
    return Workflow.from_tasks([Task("a", "produce", runtime_s=0.0, output_bytes=nbytes),
                                Task("b", "consume", runtime_s=0.0, output_bytes=8)],
                               {"b": ["a"]}, edge_bytes={("a", "b"): nbytes}, name=f"pair-{nbytes}")


def bench_throughput(ex: Executor, sizes_mib: list[int], repeats: int) -> list[dict]:
    """Executor transfers against raw SET+GET, interleaved: each repeat times one raw pair, then one run."""
    rows = []
    r = ex.client
    wire = Wire(r)
    for mib in sizes_mib:
        nbytes = mib * 2**20
        blob = bytes(nbytes)

        def raw_pair() -> float:
            t = time.perf_counter()
            r.set("bench:raw", blob)
            r.get("bench:raw")
            return time.perf_counter() - t

        def raw_wire_pair() -> float:  # the same through the workers' connection class (large values uncopied)
            t = time.perf_counter()
            wire.call([("SET", "bench:raw", blob)])
            wire.call([("GET", "bench:raw")])
            return time.perf_counter() - t

        for flavour, wf in (("replay (raw bytes)", _replay_pair(nbytes)),
                            ("dsl (pickled bytes)", build_workflow(consume.named("b")(produce.named("a")(nbytes)),
                                                                    name="dsl-pair"))):
            plan = assigned_plan(wf, {"a": "wa", "b": "wb"}, "large")

            def moved_s() -> float:
                tasks = ex.run(wf, plan).trace.tasks.set_index("task_id")
                up = tasks.at["a", "upload_end_s"] - tasks.at["a", "upload_start_s"]
                down = tasks.at["b", "download_end_s"] - tasks.at["b", "download_start_s"]
                return float(up + down)

            raw_pair()      # warm-up, every side
            raw_wire_pair()
            moved_s()
            raw, raw_wire, moved = [], [], []
            for _ in range(repeats):
                raw.append(raw_pair())
                raw_wire.append(raw_wire_pair())
                moved.append(moved_s())
            r.delete("bench:raw")
            raw_s, s = statistics.median(raw), statistics.median(moved)
            row = {"mib": mib, "flavour": flavour, "executor_s": s, "raw_set_get_s": raw_s,
                   "executor_mib_per_s": mib / s, "raw_mib_per_s": mib / raw_s, "ratio_vs_raw": raw_s / s,
                   "raw_wire_set_get_s": statistics.median(raw_wire),
                   "ratio_vs_raw_wire": statistics.median(raw_wire) / s,
                   "repeats": repeats, "executor_runs_s": moved, "raw_runs_s": raw, "raw_wire_runs_s": raw_wire}
            rows.append(row)
            print(f"{mib:>3} MiB {flavour:<20} executor {mib / s:8.1f} MiB/s  raw SET+GET {mib / raw_s:8.1f} "
                  f"MiB/s  ratio {row['ratio_vs_raw']:.2f} (vs uncopied raw {row['ratio_vs_raw_wire']:.2f})", flush=True)
    return rows


def _json_default(value):
    """numpy scalars (bools, floats) as Python values."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _dask_cluster():
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        return None, None
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    return cluster, Client(cluster)


def _live_view(ex: Executor, repeats: int) -> dict:
    """The live view's entry (on/off per-task overhead on the 1k-task DAGs), with the commit it measured."""
    from _live_view import bench_live_view   # (beside this script, as _fidelity is for bench_fidelity)

    cases = []
    for kind, generator in (("chain", "chain"), ("fan-out", "fan_out")):
        for placement, (wf, worker_of) in _placements(generator, 1000).items():
            local = []
            for _ in range(5):   # the overhead is small: a median of the local time, not one sample
                t = time.perf_counter()
                run_locally(wf)
                local.append(time.perf_counter() - t)
            cases.append((kind, placement, wf, assigned_plan(wf, worker_of, "large"), statistics.median(local)))
    entry = bench_live_view(ex, cases, repeats)
    return {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "git": _revision.short(), **entry}


def live_view_only(out: Path, repeats: int) -> int:
    """Measure only the live view and update its entry in ``out`` (the other entries are kept)."""
    result = json.loads(out.read_text()) if out.is_file() else {"benchmark": "executor"}
    with Executor(settings=ExecutorSettings(keep_alive_s=600.0)) as ex:
        result["live_view"] = _live_view(ex, repeats)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=_json_default) + "\n")
    entry = result["live_view"]
    print(f"live view: worst rise {entry['worst_rise']:+.1%} (target <= {entry['target_rise']:.0%}) "
          f"{'PASS' if entry['pass'] else 'FAIL'}; one poll of a finished 1k-task run "
          f"{entry['poll']['poll_ms_median']:.1f} ms")
    return 0 if entry["pass"] else 1


def handoff_and_start(repeats: int) -> tuple[list[dict], dict, dict]:
    """The hand-off and worker-start entries (``benchmarks/_handoff_start.py``) and their target checks."""
    from _handoff_start import bench_handoff, bench_start, checks, cold_executor

    with Executor(settings=ExecutorSettings(keep_alive_s=600.0, max_replay_bytes=64 * 2**20)) as ex:
        handoff = bench_handoff(ex, repeats)
        with cold_executor() as cold:
            start = bench_start(ex, cold, repeats)
    return handoff, start, checks(handoff, start)


def handoff_only(out: Path, repeats: int) -> int:
    """Measure only the hand-off and start entries and update them in ``out`` (the other entries are kept)."""
    result = json.loads(out.read_text()) if out.is_file() else {"benchmark": "executor", "targets": {}}
    load_start = os.getloadavg()
    handoff, start, checks = handoff_and_start(repeats)
    meta = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "git": _revision.short(),
            "load_average_start": load_start, "load_average": os.getloadavg()}
    result["handoff"] = {**meta, "rows": handoff}
    result["start"] = {**meta, **start}
    result.setdefault("targets", {}).update(checks)
    result["all_pass"] = all(c["pass"] for c in result["targets"].values())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=_json_default) + "\n")
    for name, c in checks.items():
        print(f"{name}: {c['value']:.3f} (target {c['target']}) {'PASS' if c['pass'] else 'FAIL'}")
    return 0 if all(c["pass"] for c in checks.values()) else 1


def _checks(overhead: list[dict], throughput: list[dict]) -> dict[str, dict]:
    """The per-task overhead and throughput targets' checks."""
    worst_overhead = float(max(r["overhead_ms_per_task"] for r in overhead))
    worst_ratio = float(min(r["ratio_vs_raw"] for r in throughput if r["flavour"].startswith("replay")))
    checks = {"overhead_ms_per_task": {"value": worst_overhead, "target": TARGETS["overhead_ms_per_task"],
                                       "pass": worst_overhead <= TARGETS["overhead_ms_per_task"],
                                       "note": "worst placement of every DAG and size"},
              "throughput_vs_raw": {"value": worst_ratio, "target": TARGETS["throughput_vs_raw"],
                                    "pass": worst_ratio >= TARGETS["throughput_vs_raw"],
                                    "note": "raw-bytes (replay) transfers; pickled DSL bytes are reported beside"}}
    alternating = float(max(r["overhead_ms_per_task"] for r in overhead if r["placement"] == "2 workers alternating"))
    checks["alternating_chain_overhead_ms_per_task"] = {
        "value": alternating, "target": TARGETS["alternating_chain_overhead_ms_per_task"],
        "pass": alternating <= TARGETS["alternating_chain_overhead_ms_per_task"],
        "note": "issue 18: every edge crosses workers (one completion and one notification per task); repeats of "
                "one plan on warm processes, which reuse its spec and code (its first run: "
                "first_run_overhead_ms_per_task)"}
    return checks


def _header(args: argparse.Namespace, load_start: tuple[float, float, float]) -> dict:
    """What the results were taken on: when, the commit, the machine and its load before and after."""
    return {"benchmark": "executor", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "git": _revision.short(), "quick": args.quick,
            "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                        "numpy": np.__version__, "load_average": os.getloadavg(), "load_average_start": load_start},
            "dask_max_tasks": None if args.no_dask else args.dask_max_tasks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k tasks only, fewer repeats (not recorded)")
    parser.add_argument("--no-dask", action="store_true", help="skip the dask.distributed side-by-side")
    parser.add_argument("--dask-max-tasks", type=int, default=1000, metavar="N",
                        help="run the dask side-by-side only on DAGs of at most N tasks (default 1000; "
                             "10000 adds ~25 minutes)")
    parser.add_argument("--no-peers", action="store_true", help="skip dask's threaded scheduler and Ray tasks")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"where to write the JSON (default {RESULTS})")
    parser.add_argument("--alternating-repeats", type=int, default=9, metavar="N",
                        help="runs of the alternating chain (its median; default 9, --quick 3; the others take 3)")
    parser.add_argument("--live-view", action="store_true",
                        help="also measure the live view's overhead on the 1k-task DAGs (the live_view entry)")
    parser.add_argument("--live-view-only", action="store_true",
                        help="only the live view's entry: update it in --out, keep the others")
    parser.add_argument("--live-view-repeats", type=int, default=15, metavar="N", help="interleaved on/off pairs")
    parser.add_argument("--handoff-only", action="store_true",
                        help="only the hand-off and worker-start entries: update them in --out, keep the others")
    parser.add_argument("--handoff-repeats", type=int, default=15, metavar="N",
                        help="interleaved repeats of each hand-off size and start kind (default 15)")
    args = parser.parse_args(argv)
    if args.live_view_only:
        return live_view_only(args.out, args.live_view_repeats)
    if args.handoff_only:
        return handoff_only(args.out, args.handoff_repeats)
    sizes = [1000] if args.quick else [1000, 10_000]
    repeats = 1 if args.quick else 3
    load_start = os.getloadavg()

    # The executor's launcher forks first: forking after dask started its threads is unsafe.
    # Each side runs alone: dask's cluster starts after the executor's measurements.
    with Executor(settings=ExecutorSettings(keep_alive_s=600.0, max_replay_bytes=64 * 2**20)) as ex:
        overhead, workflows = bench_overhead(ex, sizes, repeats, 3 if args.quick else args.alternating_repeats)
        throughput = bench_throughput(ex, [1, 10], 5 if args.quick else 15)  # cheap runs: medians of many
        live_view = _live_view(ex, args.live_view_repeats) if args.live_view else None
        if not args.no_dask and any(len(wf) <= args.dask_max_tasks for wf in workflows):
            cluster, dask_client = _dask_cluster()
            if dask_client is not None:
                try:
                    bench_dask(overhead, workflows, dask_client, repeats, args.dask_max_tasks)
                finally:
                    dask_client.close()
                    cluster.close()

    handoff, start, handoff_checks = handoff_and_start(7 if args.quick else args.handoff_repeats)
    if not args.no_peers:   # last: dask's thread pool and Ray's threads must not precede any fork
        from _peers import bench_other_peers   # (beside this script)

        bench_other_peers(overhead, workflows, [_dask_graph(wf) for wf in workflows], repeats, args.dask_max_tasks)
    checks = _checks(overhead, throughput)
    checks.update(handoff_checks)
    result = {
        **_header(args, load_start), "targets": checks, "all_pass": all(c["pass"] for c in checks.values()),
        "overhead": overhead, "throughput": throughput, "handoff": {"rows": handoff}, "start": start,
    }
    if live_view is not None:
        result["live_view"] = live_view
    if not args.quick or args.out != RESULTS:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, default=_json_default) + "\n")
    for name, c in checks.items():
        print(f"{name}: {c['value']:.3f} (target {c['target']}) {'PASS' if c['pass'] else 'FAIL'}")
    return 0 if result["all_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
