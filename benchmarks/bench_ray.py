"""Ray back end: campaign speed-up on a test cluster, and the Ray launcher's per-task overhead and 1 MiB hand-off.

Run as ``python benchmarks/bench_ray.py`` (the ``ray`` extra); writes ``benchmarks/results/ray.json``.

* **campaign**: the same planning + simulation campaign (percentile SLAs: Monte Carlo
  per cell) run by the local runner and by ``run_experiment(..., ray=RayCampaign())``
  on a Ray test cluster of a CPU-less head and ``--nodes`` nodes of one CPU each on
  this machine (ideal speed-up = the cluster's CPUs, capped by the machine's cores).
  Interleaved A B B A (``--rounds`` times), fresh results folders, after one
  unmeasured Ray warm-up (Ray's worker processes import planlab once); medians and
  their ratio.
* **executor**: per-task overhead (a deep chain on one worker, and on two alternating
  workers: makespan minus the tasks' own local time, per task) and a 1 MiB
  hand-off between two workers (upload + download phases of the trace, and the pair's
  makespan), the local launcher against the Ray launcher on the same cluster, each
  after a warm-up run, interleaved per repeat.

The host's load average is recorded before, after and during every round: on a shared
machine the figures are only comparable with it.  The file's ``multi_node`` section is
``bench_multinode.py``'s (kept when this bench rewrites the file).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_executor import _placements, _replay_pair  # noqa: E402

from executor import Executor, ExecutorSettings  # noqa: E402
from executor.plans import assigned_plan  # noqa: E402
from experiments.config import parse_config  # noqa: E402
from experiments.hostload import cpu_probe_s  # noqa: E402
import _revision  # noqa: E402  (the commit measured: taken when the run starts)
from experiments.runner import run_experiment  # noqa: E402
from planning.workflow import run_locally  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "ray.json"

CAMPAIGN = {"name": "bench-ray", "phases": ["plan", "simulate"], "slas": ["mean", "p95"], "repetitions": 2,
            "workflow": [{"spec": "gen:random_layered:tasks=40,seed=1", "name": "rl40"},
                         {"spec": "gen:fork_join:width=8", "name": "fj8"}],
            "planner": [{"name": "heft"}, {"name": "critical-path"}, {"name": "uniform", "label": "uniform-medium",
                                                                     "params": {"profile": "medium"}}],
            "simulate": {"replications": 1000}}


def host() -> dict[str, Any]:
    return {"load_average": list(os.getloadavg()), "cpu_probe_s": cpu_probe_s()}


def start_cluster(nodes: int) -> Any:
    import ray
    from ray.cluster_utils import Cluster

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(nodes):
        cluster.add_node(num_cpus=1, resources={"planlab_host": 1})
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    cluster.wait_for_nodes()
    return cluster


# ---------------------------------------------------------------- campaign
def bench_campaign(rounds: int) -> dict[str, Any]:
    from experiments.ray_campaign import RayCampaign

    config = parse_config(CAMPAIGN, name="bench-ray")
    scratch = Path(tempfile.mkdtemp(prefix="planlab-bench-ray-"))

    def campaign(ray: Any) -> Callable[[], float]:
        def once() -> float:
            out = scratch / f"run-{time.monotonic_ns()}"
            t = time.perf_counter()
            outcome = run_experiment(config, out, progress=False, log=lambda m: None, ray=ray)
            wall = time.perf_counter() - t
            assert outcome.cells_run == outcome.cells_total
            shutil.rmtree(out)
            return wall
        return once

    local, on_ray = campaign(None), campaign(RayCampaign())
    warm_up = on_ray()
    times: dict[str, list[float]] = {"local": [], "ray": []}
    loads = []
    try:
        for _ in range(rounds):   # A B B A
            for label, fn in (("local", local), ("ray", on_ray), ("ray", on_ray), ("local", local)):
                times[label].append(fn())
                loads.append(os.getloadavg()[0])
                print(f"campaign {label:>5}: {times[label][-1]:.2f} s (load {loads[-1]:.1f})", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"cells": len(config.workflows) * len(config.planners) * len(config.slas) * config.repetitions,
            "replications": config.simulate.replications, "ray_warm_up_s": warm_up,
            "local_s": times["local"], "ray_s": times["ray"], "local_median_s": med["local"],
            "ray_median_s": med["ray"], "speedup": med["local"] / med["ray"], "load_1m_during": loads}


# ---------------------------------------------------------------- executor
def bench_executor(repeats: int) -> dict[str, Any]:
    from executor.launcher.ray_launcher import RayExecutor

    settings = ExecutorSettings(keep_alive_s=60.0)
    rows: list[dict[str, Any]] = []
    with Executor(settings=settings) as local, RayExecutor(settings=settings) as on_ray:
        launchers = {"local": local, "ray": on_ray}
        for placement, (wf, worker_of) in _placements("chain", 100).items():
            plan = assigned_plan(wf, worker_of, "medium")
            t = time.perf_counter()
            run_locally(wf)
            own_s = time.perf_counter() - t
            spans = _interleaved(launchers, lambda ex: ex.run(wf, plan).makespan_s, repeats)
            rows.append({"what": f"overhead, deep chain of {len(wf)}, {placement}", **{
                f"{k}_ms_per_task": (statistics.median(v) - own_s) / len(wf) * 1e3 for k, v in spans.items()},
                "runs_s": spans})
        pair = _replay_pair(2**20)
        plan = assigned_plan(pair, {"a": "wa", "b": "wb"}, "medium")

        def handoff(ex: Executor) -> tuple[float, float]:
            result = ex.run(pair, plan)
            tasks = result.trace.tasks.set_index("task_id")
            moved = (tasks.at["a", "upload_end_s"] - tasks.at["a", "upload_start_s"]
                     + tasks.at["b", "download_end_s"] - tasks.at["b", "download_start_s"])
            return float(moved), result.makespan_s

        runs = _interleaved(launchers, handoff, repeats)
        rows.append({"what": "1 MiB hand-off between two workers",
                     **{f"{k}_moved_ms": statistics.median(m for m, _ in v) * 1e3 for k, v in runs.items()},
                     **{f"{k}_makespan_ms": statistics.median(s for _, s in v) * 1e3 for k, v in runs.items()},
                     "runs": runs})
    for row in rows:
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()
                          if not k.startswith("runs")}), flush=True)
    return {"repeats": repeats, "rows": rows}


def _interleaved(launchers: dict[str, Executor], measure: Callable[[Executor], Any], repeats: int) -> dict[str, list]:
    """One warm-up each, then A B B A pairs: every launcher measured under the same load."""
    for ex in launchers.values():
        measure(ex)
    out: dict[str, list] = {k: [] for k in launchers}
    names = list(launchers)
    for i in range(repeats):
        for name in (names if i % 2 == 0 else names[::-1]):
            out[name].append(measure(launchers[name]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=2, help="worker nodes of one CPU each (default 2)")
    parser.add_argument("--rounds", type=int, default=2, help="A B B A rounds of the campaign (default 2)")
    parser.add_argument("--repeats", type=int, default=10, help="executor runs per launcher (default 10)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import ray

    before = host()
    cluster = start_cluster(args.nodes)
    try:
        campaign = bench_campaign(args.rounds)
        executor = bench_executor(args.repeats)
    finally:
        ray.shutdown()
        cluster.shutdown()
    after = host()
    revision = _revision.AT_START
    record = {"benchmark": "ray", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "git": revision["revision"], "git_dirty": revision["dirty"], "ray": ray.__version__,
              "machine": {"python": platform.python_version(), "platform": platform.platform(),
                          "cpus": os.cpu_count()},
              "cluster": {"head_cpus": 0, "nodes": args.nodes, "cpus_per_node": 1,
                          "ideal_speedup": min(args.nodes, os.cpu_count() or 1)},
              "host": {"before": before, "after": after}, "campaign": campaign, "executor": executor}
    if args.out.is_file():   # bench_multinode.py's section stays
        record.update({k: v for k, v in json.loads(args.out.read_text()).items() if k == "multi_node"})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({"speedup": round(campaign["speedup"], 2), "local_median_s": round(campaign["local_median_s"], 2),
                      "ray_median_s": round(campaign["ray_median_s"], 2), "host": record["host"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
