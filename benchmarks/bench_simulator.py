"""Simulator speed, Monte Carlo time and calibration error, recorded in ``benchmarks/results/simulator.json``.

Run: ``python benchmarks/bench_simulator.py [--quick]`` (``--quick`` skips the 100k-task workflow and
the per-application calibration).

Speed (targets on a 2-vCPU machine): >= 30k simulated tasks/s, deterministic, on layered random
workflows of 1k, 10k and 100k tasks planned by ``uniform`` at p95 with the cost model's priors, and
>= 100k tasks/s at 10k tasks on the default platform (issue 18: ``pass["tasks_per_s_10k_default"]``);
1000 Monte Carlo replications of a 100-task workflow (HEFT plan) in <= 10 s.  Two platforms:
``default`` (the cost model's: storage bandwidth shared by concurrent transfers, latencies,
keep-alive) and ``free_storage`` (the same with unlimited bandwidth: transfers cost their latency
only, no contention to step through).  Each figure is ``simulate()`` end to end (compiling the plan,
the run, the Trace DataFrames); ``engine`` is the run alone, ``engine_general`` the run alone by the
general loop (``Run(fast=False)``): where ``fast_path`` is true, the default platform's specialised loop
(:mod:`simulator.fast_loop`) ran ``simulate()`` and ``engine``, and the two engine figures show its gain.
``machine.fast_loop_build`` says which build of that loop ran (:mod:`simulator.compiled`: its compiled
twin, or the Python module and why); where the twin ran, ``engine_python`` is the Python module alone, in
the same rounds, and ``compiled_speedup`` the ratio.  ``vs_plain_simpy``: ``simulate()`` against the plain
SimPy model of the same DAG timed in the same rounds, a figure that does not depend on the host's speed.
The cases are timed in interleaved rounds, one repeat of each per round, with a host probe (a fixed
pure-Python loop) before each round.
Wall time is recorded as the median and the best of the repeats, CPU time of this process as the median.  The target is checked on the
median (``pass``) and, beside it, on the best (``pass_best``, timeit's convention): on this shared VM
the same pure-Python loop takes up to 1.7x longer from one run to the next with the machine otherwise
idle, so the best of several repeats is what measures the code and the median what a user may see.

Calibration: the shipped real executions (experiments/data) replayed by the ``recorded``
planner; median relative makespan error before fitting (no overheads), after fitting the
workflow-system terms, and held out (each execution predicted from the other executions of its
application), over all files and per application.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from experiments.calibration import calibrate
from experiments.calibration.executions import application_of
import _revision      # the commit measured: taken when the run starts
from planning.costs.cost_model import CostModel
from planning.planners import get_planner
from planning.profiles import load_catalog
from planning.sources.generators import generate
from simulator import Platform, monte_carlo, simulate
from simulator import compiled, fast_loop
from simulator.engine import Run
from simulator.simulate import compile_plan, run_once
from _peers import plain_simpy_s
from _timing import timed

TARGETS = {"tasks_per_s": 30_000.0, "monte_carlo_1000x100_s": 10.0, "tasks_per_s_10k_default": 100_000.0}
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "simulator.json"
DATA = ROOT / "experiments" / "data"


def host_probe() -> float:
    """Seconds a fixed pure-Python loop takes now: how fast this shared machine is at the moment."""
    t0 = time.perf_counter()
    x = 0
    for k in range(300_000):
        x += k & 7
    return time.perf_counter() - t0


def _plain_model(workflow, trace) -> tuple[dict[str, list[str]], dict[str, float]]:
    """A workflow's parents and the execution seconds a simulation gave its tasks: what a plain SimPy model needs."""
    tasks = trace.tasks
    durations = dict(zip(tasks["task_id"], (tasks["exec_end_s"] - tasks["exec_start_s"]).clip(lower=0.0)))
    return {t: list(workflow.graph.predecessors(t)) for t in workflow.task_ids}, durations


def bench_speed(sizes: list[int]) -> tuple[list[dict], list[float]]:
    """Each case's figures, and the host probe of each round.

    The cases are timed in interleaved rounds (one repeat of every case per round) rather
    than one case after the other: this host has slow phases lasting tens of seconds, and
    interleaving spreads one over every case's repeats instead of putting all of one case's
    repeats into it.  The probe before each round records how fast the host was.
    """
    model = CostModel()
    catalog = load_catalog("local")
    cases = []
    for n in sizes:
        wf = generate("random_layered", tasks=n, seed=1)
        t0 = time.perf_counter()
        plan = get_planner("uniform", profile="medium").plan(wf, catalog, model, "p95")
        plan_s = time.perf_counter() - t0
        for name, plat in (("default", Platform.from_cost_model(model, "p95")),
                           ("free_storage", Platform.from_cost_model(model, "p95", storage_bandwidth_Bps=float("inf")))):
            cases.append({"n": n, "workflow": wf, "plan": plan, "plan_s": plan_s, "name": name, "platform": plat,
                          "compiled": compile_plan(wf, plan, model), "repeats": 9 if n <= 10_000 else 5,
                          "walls": [], "cpus": [], "engine": [], "trace": None})
    for c in cases:    # whether the fast loop's compiled twin runs this case (then its Python module is timed too)
        c["twin"] = Run(c["compiled"], c["platform"], record=False).fast_module not in (None, fast_loop)
    probes = []
    for round_ in range(max(c["repeats"] for c in cases)):
        probes.append(host_probe())
        for c in cases:
            if round_ >= c["repeats"]:
                continue
            c["trace"] = None            # the previous result is freed outside the timed call
            w0, c0 = time.perf_counter(), time.process_time()
            c["trace"] = simulate(c["workflow"], c["plan"], model, platform=c["platform"])
            c["walls"].append(time.perf_counter() - w0)
            c["cpus"].append(time.process_time() - c0)
            e0 = time.perf_counter()
            run_once(c["compiled"], c["platform"], record=False)
            c["engine"].append(time.perf_counter() - e0)
            e0 = time.perf_counter()      # the general loop, same round (run_once's work: the Run and its run)
            Run(c["compiled"], c["platform"], record=False, fast=False).run()
            c.setdefault("general", []).append(time.perf_counter() - e0)
            if c["twin"]:
                e0 = time.perf_counter()  # the fast loop's Python module, where its compiled twin ran the above
                Run(c["compiled"], c["platform"], record=False, compiled_loop=False).run()
                c.setdefault("python", []).append(time.perf_counter() - e0)
            if c["name"] == "default":     # the peer: a plain SimPy model of the same DAG, same round
                c.setdefault("simpy", []).append(plain_simpy_s(*_plain_model(c["workflow"], c["trace"]), repeats=1)[0])
        print(f"round {round_ + 1}: host probe {probes[-1] * 1e3:.1f} ms", flush=True)
    rows = []
    for c in cases:
        n, wall, best, cpu = c["n"], statistics.median(c["walls"]), min(c["walls"]), statistics.median(c["cpus"])
        e_wall, e_best = statistics.median(c["engine"]), min(c["engine"])
        rows.append({"tasks": n, "edges": c["workflow"].graph.number_of_edges(), "workers": int(len(c["plan"].workers)),
                     "platform": c["name"], "plan_s": c["plan_s"], "repeats": c["repeats"], "simulate_s": wall,
                     "simulate_best_s": best, "simulate_cpu_s": cpu, "simulate_all_s": c["walls"],
                     "tasks_per_s": n / wall, "tasks_per_s_best": n / best, "tasks_per_cpu_s": n / cpu,
                     "engine_s": e_wall, "engine_tasks_per_s": n / e_wall, "engine_tasks_per_s_best": n / e_best,
                     "fast_path": Run(c["compiled"], c["platform"], record=False).fast,
                     "engine_general_s": statistics.median(c["general"]),
                     "engine_general_best_s": min(c["general"]),
                     **({"engine_python_s": statistics.median(c["python"]), "engine_python_best_s": min(c["python"]),
                         "compiled_speedup": statistics.median(c["python"]) / e_wall} if c.get("python") else {}),
                     "makespan_s": c["trace"].makespan_s, "planned_makespan_s": c["plan"].makespan_s,
                     "pass": n / wall >= TARGETS["tasks_per_s"],
                     "pass_best": n / best >= TARGETS["tasks_per_s"],
                     "pass_cpu": n / cpu >= TARGETS["tasks_per_s"],
                     **({"simpy_tasks_per_s": n / statistics.median(c["simpy"]),
                         "vs_plain_simpy": statistics.median(c["simpy"]) / wall} if c.get("simpy") else {})})
        print(f"{n:>7} tasks {c['name']:<13} simulate {n / best:,.0f} tasks/s best, {n / wall:,.0f} median "
              f"({wall:.3f} s; cpu {n / cpu:,.0f}/s)  engine {n / e_best:,.0f} best, {n / e_wall:,.0f} median",
              flush=True)
    return rows, probes


def bench_monte_carlo() -> dict:
    model = CostModel()
    wf = generate("random_layered", tasks=100, seed=1)
    plan = get_planner("heft").plan(wf, load_catalog("local"), model, "p95")
    c0 = time.process_time()
    wall, _, result = timed(lambda: monte_carlo(wf, plan, model, replications=1000, seed=0), 3)
    cpu = (time.process_time() - c0) / 3      # this (parent) process's share: the replications run in workers
    single, _, _ = timed(lambda: monte_carlo(wf, plan, model, replications=1000, seed=0, processes=1), 1)
    summary = result.summary()
    print(f"Monte Carlo 1000 x 100 tasks: {wall:.2f} s (one process {single:.2f} s)", flush=True)
    return {"replications": 1000, "tasks": 100, "seconds": wall, "cpu_s_parent": cpu, "one_process_s": single,
            "planned_makespan_s": plan.makespan_s, "summary": summary,
            "pass": wall <= TARGETS["monte_carlo_1000x100_s"]}


def bench_calibration(per_application: bool) -> dict:
    files = sorted(DATA.glob("*.json"))
    t0 = time.perf_counter()
    overall = calibrate(files)
    out = {"files": len(files), "seconds": time.perf_counter() - t0, "all": _result(overall)}
    print(f"calibration on all {len(files)}: before {overall.error_before:.3f} after {overall.error_after:.3f} "
          f"held out {overall.held_out_error:.3f}", flush=True)
    if per_application:
        apps: dict[str, list[Path]] = {}
        for f in files:
            apps.setdefault(application_of(f.name), []).append(f)
        out["per_application"] = {}
        for app, group in sorted(apps.items()):
            result = calibrate(group)
            out["per_application"][app] = _result(result)
            print(f"  {app:<12} n={len(group)} before {result.error_before:.3f} after {result.error_after:.3f} "
                  f"held out {result.held_out_error:.3f}", flush=True)
    return out


def _result(result) -> dict:
    table = result.table
    return {"error_before": result.error_before, "error_after": result.error_after,
            "held_out_error": None if np.isnan(result.held_out_error) else result.held_out_error,
            "fitted": {k: getattr(result.platform, k) for k in result.fitted},
            "runs": table[["name", "group", "system", "tasks", "real_s", "before_s", "after_s", "held_out_s",
                           "error_before", "error_after", "error_held_out"]]
            .astype(object).where(table.notna(), None).to_dict(orient="records")}


def _issue18(speed: list[dict]) -> dict[str, bool]:
    """Whether ``simulate()`` reaches :data:`TARGETS` ``tasks_per_s_10k_default`` at 10k tasks on the default
    platform, on the median and on the best; nothing when 10k tasks were not run."""
    rows = [r for r in speed if r["tasks"] == 10_000 and r["platform"] == "default"]
    target = TARGETS["tasks_per_s_10k_default"]
    if not rows:
        return {}
    return {"tasks_per_s_10k_default": all(r["tasks_per_s"] >= target for r in rows),
            "tasks_per_s_best_10k_default": all(r["tasks_per_s_best"] >= target for r in rows)}


def _previous(path: Path) -> dict | None:
    """The speed figures of the results file about to be overwritten (git revision, load, tasks/s)."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return {"git": old.get("git"), "date": old.get("date"),
            "load_average": old.get("machine", {}).get("load_average"),
            "tasks_per_s": {f"{r['tasks']}/{r['platform']}": round(r["tasks_per_s"]) for r in old.get("speed", [])},
            "tasks_per_cpu_s": {f"{r['tasks']}/{r['platform']}": round(r["tasks_per_cpu_s"])
                                for r in old.get("speed", [])},
            "monte_carlo_s": old.get("monte_carlo", {}).get("seconds")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip 100k tasks and per-application calibration")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sizes = [1000, 10_000] if args.quick else [1000, 10_000, 100_000]
    load_start = list(__import__("os").getloadavg())
    previous = _previous(args.out)
    speed, probes = bench_speed(sizes)
    mc = bench_monte_carlo()
    cal = bench_calibration(per_application=not args.quick)
    result = {
        "benchmark": "simulator", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": _revision.short(), "quick": args.quick,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": __import__("os").cpu_count(), "load_average_start": load_start,
                    "load_average": list(__import__("os").getloadavg()),
                    # seconds of a fixed pure-Python loop before each round of the speed cases: the
                    # host's speed at the time (the spread is this shared machine's, not the code's)
                    "host_probe_s": probes,
                    # which build of the fast loop ran (simulator.compiled): "compiled" or why the Python module
                    "fast_loop_build": compiled.status()},
        # the run this one replaced, for before/after ratios (compare within one machine state only)
        "previous": previous,
        "targets": TARGETS, "speed": speed, "monte_carlo": mc, "calibration": cal,
        "pass": {"tasks_per_s_default": all(r["pass"] for r in speed if r["platform"] == "default"),
                 "tasks_per_s_free_storage": all(r["pass"] for r in speed if r["platform"] == "free_storage"),
                 "tasks_per_s_best_default": all(r["pass_best"] for r in speed if r["platform"] == "default"),
                 "tasks_per_s_best_free_storage": all(r["pass_best"] for r in speed
                                                      if r["platform"] == "free_storage"),
                 "monte_carlo": mc["pass"],
                 # issue 18's target, on the median and (timeit's convention) on the best of the repeats
                 **_issue18(speed),
                 # CPU time of this process: less sensitive to other users of the shared machine
                 "tasks_per_cpu_s_default": all(r["pass_cpu"] for r in speed if r["platform"] == "default"),
                 "tasks_per_cpu_s_free_storage": all(r["pass_cpu"] for r in speed
                                                     if r["platform"] == "free_storage")},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(json.dumps(result["pass"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
