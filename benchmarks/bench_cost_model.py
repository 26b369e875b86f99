"""Cost-model speed and accuracy, recorded in ``benchmarks/results/cost_model.json``.

Run: ``python benchmarks/bench_cost_model.py [--quick]``.

Speed (targets on a 2-vCPU machine): fit on a 1M-row synthetic history (20 kinds
x 8 Lambda profiles x 5 input sizes) in <= 5 s; estimates for a 10k-task workflow
(about 20 kinds with history, a few without, hints on some) x 8 profiles in
<= 0.2 s.  Accuracy: MAPE of the mean and p95 estimates against the known truth
over every (kind, profile, input size) cell, at several samples per cell and
averaged over seeds; and the held-out (5-fold) MAPE that ``CostModel.validate``
reports on a smaller history, beside its sampling-noise floor.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from planning.costs.cost_model import CostModel
from planning.profiles import load_catalog
from planning.sources.synthetic import DEFAULT_INPUT_SIZES, random_truth, synthetic_history
from planning.tasks import Task
from planning.workflow import Workflow
from _timing import timed
import _revision      # the commit measured: taken when the run starts

TARGETS = {"fit_1m_s": 5.0, "predict_10k_x8_s": 0.2}
RESULTS = Path(__file__).resolve().parent / "results" / "cost_model.json"


def build_workflow(n_tasks: int, kinds: list[str], seed: int = 0) -> Workflow:
    """A layered random DAG: each task reads from 1-3 recent tasks, sizes 1 kB-100 MB;
    one task in 20 is of a kind without history (half of those with hints)."""
    rng = np.random.default_rng(seed)
    wf = Workflow(f"bench-{n_tasks}")
    for i in range(n_tasks):
        if i % 20 == 19:
            hinted = i % 40 == 39
            wf.add_task(Task(f"t{i}", f"unseen{i % 3}", runtime_s=5.0 if hinted else None,
                             cores=2.0 if hinted else None, output_bytes=10_000 if hinted else None))
        else:
            wf.add_task(Task(f"t{i}", kinds[int(rng.integers(len(kinds)))]))
    for i in range(1, n_tasks):
        for p in set(rng.integers(max(0, i - 200), i, size=int(rng.integers(1, 4))).tolist()):
            wf.add_edge(f"t{p}", f"t{i}", int(10 ** rng.uniform(3, 8)))
    return wf


def bench_speed(quick: bool) -> dict:
    spc = 125 if quick else 1250
    history, truth = synthetic_history(kinds=20, profiles="lambda", samples_per_cell=spc, seed=1)
    fit_s, fit_all, model = timed(lambda: CostModel().fit(history), 1 if quick else 3)
    catalog = load_catalog("lambda")
    wf = build_workflow(10_000, truth.kind_names)
    t0 = time.perf_counter()
    model.estimate_workflow(wf, catalog, "p95")           # first call also sorts the graph (cached after)
    cold = time.perf_counter() - t0
    pred_s, pred_all, we = timed(lambda: model.estimate_workflow(wf, catalog, "p95"), 5)
    rng = np.random.default_rng(0)
    sample_s, _, _ = timed(lambda: we.sample_exec(rng, np.zeros(len(wf), dtype=np.int64)), 5)
    pairs = [(t.kind, catalog.profiles[i % 8]) for i, t in enumerate(wf.tasks[:1000])]
    pair_s, _, _ = timed(lambda: [model.estimate(k, p, 1e6, "p95") for k, p in pairs], 3)
    return {
        "history_rows": len(history), "kinds": 20, "profiles": len(catalog),
        "fit_s": fit_s, "fit_runs_s": fit_all, "fit_rows_per_s": len(history) / fit_s,
        "workflow_tasks": len(wf), "workflow_edges": wf.graph.number_of_edges(),
        "predict_s": pred_s, "predict_runs_s": pred_all, "predict_first_call_s": cold,
        "sample_exec_10k_s": sample_s, "estimate_pair_us": pair_s / len(pairs) * 1e6,
        "sources": {k: int(v) for k, v in zip(*np.unique(we.source_by_profile, return_counts=True))},
    }


def bench_accuracy(quick: bool) -> list[dict]:
    catalog = load_catalog("lambda")
    seeds = range(2 if quick else 3)
    rows = []
    for spc in ((5, 20, 200) if quick else (5, 20, 200, 2000)):
        errs = {"mean": [], "p95": []}
        a_err = []
        for seed in seeds:
            truth = random_truth(5, seed)
            history, _ = synthetic_history(profiles=catalog, samples_per_cell=spc, seed=1000 + seed, truth=truth)
            model = CostModel().fit(history)
            fitted = model.describe().set_index("kind")
            for law in truth.kinds:
                a_err.append(abs(fitted.loc[law.name, "a"] - law.a))
                for p in catalog:
                    for x in DEFAULT_INPUT_SIZES:
                        for stat in errs:
                            est = model.estimate(law.name, p, x, stat).exec_s
                            errs[stat].append(abs(est / law.stat(p.cpus, x, stat) - 1.0))
        rows.append({"samples_per_cell": spc, "rows_per_kind": spc * len(catalog) * len(DEFAULT_INPUT_SIZES),
                     "seeds": len(seeds), "mape_mean": float(np.mean(errs["mean"])),
                     "mape_p95": float(np.mean(errs["p95"])), "max_ape_mean": float(np.max(errs["mean"])),
                     "max_ape_p95": float(np.max(errs["p95"])), "mean_abs_exponent_error": float(np.mean(a_err))})
    return rows


def bench_validation() -> dict:
    history, _ = synthetic_history(kinds=5, profiles="lambda", samples_per_cell=40, seed=7)
    t0 = time.perf_counter()
    table = CostModel().validate(history, folds=5)
    elapsed = time.perf_counter() - t0
    by_stat = table.groupby("statistic")[["mape", "floor"]].mean()
    return {"history_rows": len(history), "folds": 5, "seconds": elapsed,
            "mape": {s: float(by_stat.loc[s, "mape"]) for s in by_stat.index},
            "floor": {s: float(by_stat.loc[s, "floor"]) for s in by_stat.index},
            "per_kind": table.to_dict(orient="records")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller history and fewer repeats (not recorded)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"where to write the JSON (default {RESULTS})")
    args = parser.parse_args(argv)

    speed = bench_speed(args.quick)
    accuracy = bench_accuracy(args.quick)
    validation = bench_validation()
    checks = {"fit_1m_s": {"value": speed["fit_s"], "target": TARGETS["fit_1m_s"],
                           "pass": speed["fit_s"] <= TARGETS["fit_1m_s"] and speed["history_rows"] >= 1_000_000},
              "predict_10k_x8_s": {"value": speed["predict_s"], "target": TARGETS["predict_10k_x8_s"],
                                   "pass": speed["predict_s"] <= TARGETS["predict_10k_x8_s"]}}
    result = {
        "benchmark": "cost_model", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": _revision.short(), "quick": args.quick,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": __import__("os").cpu_count(), "numpy": np.__version__, "pandas": pd.__version__,
                    "load_average_end": list(__import__("os").getloadavg())},
        "targets": checks, "all_pass": all(c["pass"] for c in checks.values()),
        "speed": speed, "accuracy_vs_truth": accuracy, "held_out": validation,
    }
    if not args.quick or args.out != RESULTS:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")

    print(f"fit {speed['history_rows']:,} rows: {speed['fit_s']:.2f} s (target <= {TARGETS['fit_1m_s']} s) "
          f"{'PASS' if checks['fit_1m_s']['pass'] else 'FAIL'}")
    print(f"estimate_workflow {speed['workflow_tasks']:,} tasks x {speed['profiles']} profiles: "
          f"{speed['predict_s'] * 1e3:.1f} ms (first call {speed['predict_first_call_s'] * 1e3:.1f} ms; "
          f"target <= {TARGETS['predict_10k_x8_s'] * 1e3:.0f} ms) {'PASS' if checks['predict_10k_x8_s']['pass'] else 'FAIL'}")
    print(f"sample_exec 10k tasks: {speed['sample_exec_10k_s'] * 1e3:.2f} ms; one estimate(): "
          f"{speed['estimate_pair_us']:.0f} us")
    print("accuracy vs truth (MAPE over kind x profile x size cells, averaged over seeds):")
    print(f"  {'samples/cell':>12} {'rows/kind':>9} {'mean':>7} {'p95':>7} {'max mean':>9} {'max p95':>8} {'|a err|':>8}")
    for r in accuracy:
        print(f"  {r['samples_per_cell']:>12} {r['rows_per_kind']:>9} {r['mape_mean']:>7.2%} {r['mape_p95']:>7.2%} "
              f"{r['max_ape_mean']:>9.2%} {r['max_ape_p95']:>8.2%} {r['mean_abs_exponent_error']:>8.4f}")
    print(f"held-out 5-fold MAPE on {validation['history_rows']:,} rows (40/cell): "
          + ", ".join(f"{s} {validation['mape'][s]:.2%} (floor {validation['floor'][s]:.2%})" for s in validation["mape"])
          + f"; {validation['seconds']:.2f} s")
    if not args.quick:
        print(f"wrote {args.out}")
    return 0 if result["all_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
