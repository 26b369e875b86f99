"""Multi-node fidelity: a forecast of a run on a Ray cluster's nodes against the real RayExecutor run.

Run as ``python benchmarks/bench_multinode.py`` (the ``ray`` extra); writes the ``multi_node``
section of ``benchmarks/results/ray.json`` (the rest of the file - ``bench_ray.py``'s - is kept).

Why a separate bench and not a cell of ``bench_fidelity.py``: the cell needs a Ray test cluster
(a CPU-less head and two worker nodes of one logical CPU each on this machine: two CPUs in all,
this machine's cores), a node marked for one profile, and the Ray launcher; the fidelity
benchmark drives the local executor and its calibration, which this bench does not need.

The simulator gets exactly what Ray had: ``Platform(nodes=cluster_nodes())`` - the live nodes'
logical CPUs and memory and their ``planlab_profile_*`` marks, in the order the launcher's
placement rule reads them.  Execution times are measured alone (every task of the workflow on
one worker, one at a time, on the same cluster and profile; median of ``--calibration`` runs)
and given to the simulator as durations; its cold start is the calibration runs' median.

Cells (fork-join of CPU-bound branches, ``--units`` of work each):

* ``spread``: two 1-CPU branches -> one per node (first fit), in parallel;
* ``marked``: two 0.5-CPU branches, the profile marked on the second node only -> both there,
  each at its 0.5-CPU quota;
* ``marked-over``: four 0.5-CPU branches on that one 1-CPU node -> two fit; the model runs the
  other two at once sharing the node's core (documented in planning/schedule/nodes.py), Ray
  queues them until room frees: the known divergence, measured.

Each cell also gets the one-host forecast (``host_cores`` = the cluster's CPUs, no nodes) for
comparison, and the placement agreement (workers on the node the forecast put them on).
Real runs per cell: ``--repeats``, interleaved over the cells; medians.  Host load is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from executor import ExecutorSettings  # noqa: E402
from executor.plans import assigned_plan  # noqa: E402
from experiments.hostload import cpu_probe_s  # noqa: E402
import _revision  # noqa: E402  (the commit measured: taken when the run starts)
from planning.costs.cost_model import CostModel  # noqa: E402
from planning.sources.generators import generate  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "ray.json"
#: cell -> (branches, profile)
CELLS = {"spread": (2, "medium"), "marked": (2, "small"), "marked-over": (4, "small")}
MARKED = "small"
#: Keep-alive of the runs' idle actors, and the pause before each real run (they have left by then).
KEEP_ALIVE_S = 0.5
IDLE_GONE_S = 2.0


def start_cluster() -> Any:
    import ray
    from ray.cluster_utils import Cluster

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    cluster.add_node(num_cpus=1)
    cluster.add_node(num_cpus=1, resources={f"planlab_profile_{MARKED}": 1})
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    cluster.wait_for_nodes()
    return cluster


def workflow(branches: int, units: int) -> Any:
    return generate("fork_join", width=branches, depth=1, units=units)


def spread_plan(wf: Any, profile: str) -> Any:
    """One worker per branch (the fork and the join on the first)."""
    branches = [t for t in wf.topological_order() if "-w" in t and not t.endswith("join")]
    worker_of = {t: "w0" for t in wf.task_ids} | {t: f"w{k}" for k, t in enumerate(branches)}
    return assigned_plan(wf, worker_of, profile)


def alone(ex: Any, wf: Any, profile: str, runs: int) -> tuple[dict[str, float], float, list[str]]:
    """Per task its execution seconds alone on ``profile`` (all tasks on one worker), the median cold start, and
    which CPU limits the calibration runs' workers had (the trace's ``cpu_enforced``)."""
    plan = assigned_plan(wf, {t: "solo" for t in wf.task_ids}, profile)
    per_task: dict[str, list[float]] = {t: [] for t in wf.task_ids}
    starts, enforced = [], set()
    for _ in range(runs):
        trace = ex.run(wf, plan).trace
        enforced |= set(trace.workers.get("cpu_enforced", []))
        tasks = trace.tasks.set_index("task_id")
        for t in wf.task_ids:
            per_task[t].append(float(tasks.at[t, "exec_end_s"] - tasks.at[t, "exec_start_s"]))
        cold = trace.workers[trace.workers["cold_start"]]
        starts += (cold["ready_s"] - cold["start_s"]).tolist()
    return {t: statistics.median(v) for t, v in per_task.items()}, statistics.median(starts or [0.25]), sorted(enforced)


def forecast(wf: Any, plan: Any, durations: dict[str, float], cold_start_s: float, nodes: Any) -> dict[str, Any]:
    from simulator import Platform, simulate

    free = CostModel()
    base = Platform(cold_start_s=cold_start_s)
    on_nodes = simulate(wf, plan, free, platform=base.with_(nodes=nodes), durations=durations)
    one_host = simulate(wf, plan, free, platform=base.with_(host_cores=sum(n.cores for n in nodes)),
                        durations=durations)
    return {"nodes_s": on_nodes.makespan_s, "one_host_s": one_host.makespan_s,
            "worker_nodes": on_nodes.meta["worker_nodes"]}


def real_nodes(trace: Any, nodes: Any) -> dict[str, str]:
    by_prefix = {n.name[:8]: n.name for n in nodes}
    return {w: by_prefix.get(h.rsplit("-", 1)[-1], h) for w, h in zip(trace.workers["worker"], trace.workers["host"])}


def bench(args: argparse.Namespace) -> dict[str, Any]:
    from executor.launcher.ray_cluster import cluster_nodes
    from executor.launcher.ray_launcher import RayExecutor

    nodes = cluster_nodes()
    cells: dict[str, Any] = {}
    with RayExecutor(settings=ExecutorSettings(keep_alive_s=KEEP_ALIVE_S, start_timeout_s=120.0)) as ex:
        for name, (branches, profile) in CELLS.items():
            wf = workflow(branches, args.units)
            durations, cold, enforced = alone(ex, wf, profile, args.calibration)
            plan = spread_plan(wf, profile)
            cells[name] = {"branches": branches, "profile": profile, "alone_branch_s": max(durations.values()),
                           "cold_start_s": cold, **forecast(wf, plan, durations, cold, nodes), "real_s": [],
                           "placement_agreement": [], "load_1m": [], "cpu_enforced": [],
                           "calibration_cpu_enforced": enforced, "_wf": wf, "_plan": plan}
        for _ in range(args.repeats):      # interleaved over the cells
            for name, cell in cells.items():
                time.sleep(IDLE_GONE_S)      # the last run's idle actors have left: every start is cold, as forecast
                result = ex.run(cell["_wf"], cell["_plan"])
                where = real_nodes(result.trace, nodes)
                agree = sum(where.get(w) == n for w, n in cell["worker_nodes"].items()) / len(where)
                cell["real_s"].append(result.makespan_s)
                cell["placement_agreement"].append(agree)
                cell["load_1m"].append(os.getloadavg()[0])
                cell["cpu_enforced"].append(sorted(set(result.trace.workers.get("cpu_enforced", []))))
                print(f"{name:>12}: real {result.makespan_s:.2f} s, forecast {cell['nodes_s']:.2f} s "
                      f"(one host {cell['one_host_s']:.2f} s), placement {agree:.0%}, load {cell['load_1m'][-1]:.1f}",
                      flush=True)
    for cell in cells.values():
        del cell["_wf"], cell["_plan"]
        real = statistics.median(cell["real_s"])
        cell["real_median_s"] = real
        cell["error_nodes"] = cell["nodes_s"] / real - 1.0
        cell["error_one_host"] = cell["one_host_s"] / real - 1.0
    return {"nodes": [n.to_dict() for n in nodes], "units": args.units, "repeats": args.repeats, "cells": cells}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=8_000_000, help="work per branch (spin units; ~1.2 s at 1 CPU)")
    parser.add_argument("--repeats", type=int, default=3, help="real runs per cell (default 3)")
    parser.add_argument("--calibration", type=int, default=2, help="runs measuring execution alone (default 2)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import ray

    before = {"load_average": list(os.getloadavg()), "cpu_probe_s": cpu_probe_s()}
    cluster = start_cluster()
    try:
        result = bench(args)
    finally:
        ray.shutdown()
        cluster.shutdown()
    revision = _revision.AT_START
    result.update({"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "git": revision["revision"],
                   "git_dirty": revision["dirty"], "ray": ray.__version__,
                   "host": {"before": before, "after": {"load_average": list(os.getloadavg())}}})
    record = json.loads(args.out.read_text()) if args.out.is_file() else {"benchmark": "ray"}
    record["multi_node"] = result
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({k: {m: round(v, 3) if isinstance(v, float) else v for m, v in c.items()
                          if m in ("real_median_s", "nodes_s", "one_host_s", "error_nodes", "error_one_host")}
                      for k, c in result["cells"].items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
