"""Fidelity: how close the simulator's forecasts are to planlab's own executor, in ``benchmarks/results/fidelity.json``.

Run: ``python benchmarks/bench_fidelity.py [--quick] [--calibration none|host-defaults|host]
[--repetitions N] [--sizes 20,100,500] [--planners uniform,critical-path,heft,wukong] [--workflows ...]
[--out FILE]``.  The real runs take about 10 minutes on a 2-core machine, the forecasts as long again
with ``--calibration host`` (its fit on the 500-task workflows above all); ``--quick`` (one planner,
20-task sizes, 2 + 2 repetitions, 6 coverage runs) a few minutes and is not recorded unless ``--out``
is given.  Progress goes to stderr, the summary table to stdout; exit 0 when every target passes.

Cells: five_branches, the Epigenomics replay (scale 0.004, data_scale 0.01, as in the quickstart),
``fork_join`` and ``random_layered`` at each ``--sizes``, and ``examples/random_durations.py``
(a ``@task`` workflow whose tasks burn CPU or sleep for seeded random times); each planned by every
planner at each SLA (``mean``, ``p95``) on the ``local`` catalog.  Per workflow:

1. **Cost model**: a profile phase like ``planlab run``'s (the ``uniform`` planner, every task on one
   worker, on each catalog profile, ``--profile-repetitions`` times: 3 by default, interleaved, as
   ``planlab run`` does), fitted per workflow, so every plan uses measured costs and kinds of different
   workflows never mix.
2. **Real runs**: each distinct plan (cells whose plans are identical share their runs) runs
   ``--repetitions`` times on one :class:`executor.Executor` (embedded server, default settings).
   **Every repetition starts with an empty warm pool**: the idle worker processes the launcher keeps
   warm are stopped before each run (``_fidelity_runs.drain_warm_pool``), and every prediction and
   calibration is given the same empty pool (:data:`WARM_POOL`); within a run processes are reused as
   the executor does (its keep-alive, ``ExecutorSettings.keep_alive_s``, is the platform's too).
3. **Calibration / forecast**: repetitions 0, 2, 4... are the calibration half, 1, 3, 5... the forecast
   half.  :func:`platform_for` turns the calibration halves of all the workflow's plans into one
   platform (``--calibration-scope cell``: each plan's own): ``none`` the cost model's default platform
   (every worker its own CPUs), ``host-defaults`` the same on this machine's cores (the host model, no
   fit), ``host`` the host model fitted by ``experiments.calibration.trace_calibration.calibrate_on_runs``.
   Other work on the host (``host_background``): ``--background fit`` (default) fits it with the host
   terms, as ``planlab run``'s host calibration does; ``none`` assumes none; ``load`` gives the model the
   1-minute load before the runs (it counts this benchmark's own earlier runs too).
4. **Prediction**: each plan, retargeted to the mean (same workers, profiles and order), is simulated
   once deterministically (the forecast compared with each real run) and by Monte Carlo (p50, p90,
   p95).  Errors are ``(simulated - real) / real`` over the forecast half; pooled figures count each
   distinct plan once.

Also: where the critical path spent its time (``_fidelity.phase_breakdown``), real (median over the
forecast runs) beside simulated; SLA coverage over ``--coverage-runs`` (default 200, about two
minutes) more real runs of one plan, forecast in two cross-fitted folds (:func:`coverage_result`: each
fold by a calibration on the workflow's calibration halves and the other fold, so every run is forecast
out of sample, by a fit that saw enough runs of the plan to place its median) - 200, not the issue's
minimum of 20, because with 20 even an exact p50 meets the +-5 points target only half the time (a
binomial count: ``_fidelity.coverage`` reports that chance and an exact test beside each fraction); the
1-minute load beside every figure, the load before and after, the commit and the targets' pass flags
(they are meant for a quiet machine: load below 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import platform as _platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import _fidelity as fid
import _fidelity_args
from _fidelity_predict import (CALIBRATIONS, WARM_POOL, CalibrationRun, Prediction, base_platform,  # noqa: F401
                               evaluate_cell, host_calibration, platform_for, predict)
from _fidelity_store import Coverage, load_many, save_runs
from _fidelity_runs import (SIZED, BenchWorkflow, Cell, RealRun, Say, WorkflowRuns, bench_workflows, load1,
                            make_cells, profile_cost_model, run_repeatedly)
from executor import Executor, ExecutorSettings
import _revision      # the commit measured: taken when the run starts
from planning.errors import PlanlabError
from planning.profiles import load_catalog
from simulator import Platform

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "fidelity.json"


# calibration and prediction: _fidelity_predict.py; the command line: _fidelity_args.py


# ---------------------------------------------------------------- the whole benchmark
def run_workflow(executor: Executor, bw: BenchWorkflow, args: argparse.Namespace, catalog: Any,
                 failures: dict[str, str], say: Say) -> WorkflowRuns:
    """Profile, plan every planner x SLA, run each distinct plan ``args.repetitions`` times.

    A plan that fails to run (a task raising, a worker killed) is noted in ``failures`` and its cells dropped.
    """
    started = time.perf_counter()
    say(f"{bw.label} ({len(bw.workflow)} tasks): profile phase")
    cost_model, history, profile = profile_cost_model(executor, bw, catalog, args.profile_repetitions, say)
    cells = make_cells(bw, args.planners, args.slas, cost_model, catalog, failures)
    runs: dict[str, list[RealRun]] = {}
    for cell in cells:
        if cell.same_plan_as is not None:
            say(f"  {cell.id}: same plan as {cell.same_plan_as}")
            continue
        say(f"  {cell.id}: {len(cell.plan.workers)} workers, planned {cell.plan.makespan_s:.3f} s")
        try:
            runs[cell.plan_key] = run_repeatedly(executor, bw.workflow, cell.plan, args.repetitions, cell.id, say)
        except PlanlabError as exc:
            failures[cell.id] = f"real run failed: {exc.one_line()}"
            say(f"  {cell.id}: {failures[cell.id]}")
    kept = [c for c in cells if c.plan_key in runs]
    return WorkflowRuns(bw, cost_model, history, profile, kept, runs, time.perf_counter() - started)


def background_of(run: RealRun, args: argparse.Namespace) -> float | None:
    """Other work on the host during ``run`` as ``--background`` says: its load, none, or None (fitted)."""
    return {"load": run.load1, "none": 0.0}.get(args.background)


def calibration_runs(wr: WorkflowRuns, cells: Sequence[Cell], args: argparse.Namespace,
                     runs_of: Any = None) -> list[CalibrationRun]:
    """The calibration halves of ``cells``' real runs (one cell per distinct plan: cells share their runs);
    ``runs_of(cell)`` picks other runs of a cell instead (e.g. one fold of the coverage study)."""
    pick = runs_of or (lambda c: fid.split_halves(wr.runs[c.plan_key])[0])
    distinct = {c.plan_key: c for c in reversed(cells)}
    return [CalibrationRun(wr.bench.workflow, c.plan, wr.cost_model, run.trace, background_of(run, args))
            for c in distinct.values() for run in pick(c)]


def forecast_workflow(wr: WorkflowRuns, args: argparse.Namespace, settings: ExecutorSettings,
                      say: Say) -> tuple[list[dict[str, Any]], Platform, dict[str, Any]]:
    """Calibrate on the calibration halves (all cells', or each cell's own), forecast every cell.

    Returns the cell rows, the workflow's platform and its calibration summary.
    """
    base = base_platform(wr.cost_model, settings)
    report: dict[str, Any] = {}
    shared = platform_for(calibration_runs(wr, wr.cells, args), base, args.calibration, report)
    rows, done = [], {}        # cells with identical plans share their runs: forecast each plan once
    for cell in wr.cells:
        if cell.plan_key not in done:
            cell_report: dict[str, Any] = {}
            platform = shared if args.calibration_scope == "workflow" else \
                platform_for(calibration_runs(wr, [cell], args), base, args.calibration, cell_report)
            forecast = fid.split_halves(wr.runs[cell.plan_key])[1]
            if args.background == "load":   # the load seen just before the forecast runs: known before they start
                platform = platform.with_(host_background=float(np.median([r.load1 for r in forecast])))
            done[cell.plan_key] = (platform, cell_report, predict(wr.bench.workflow, cell.plan, wr.cost_model,
                                                                  platform, args.replications, args.seed + len(done)))
        platform, cell_report, prediction = done[cell.plan_key]
        row = evaluate_cell(cell, prediction, wr.runs[cell.plan_key])
        if args.calibration_scope == "cell" or args.background == "load":
            row["platform"] = platform.to_dict()
            row["calibration"] = cell_report or None
        rows.append(row)
        e = row["error"]
        say(f"  {cell.id}: simulated {row['simulated_s']:.3f} s vs real median "
            f"{statistics.median(row['real_forecast_s']):.3f} s: |error| median {e['median_abs']:.1%}, "
            f"bias {e['bias']:+.1%} (load {row['load1_median']:.2f})")
    return rows, shared, report


def group_rows(cell_rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per workflow and size: errors pooled over the forecast runs of its distinct plans, load, time."""
    out = []
    for key in dict.fromkeys((r["workflow"], r["size"]) for r in cell_rows):
        rows = [r for r in cell_rows if (r["workflow"], r["size"]) == key and r["same_plan_as"] is None]
        errors = [e for r in rows for e in r["errors"]]
        out.append({"workflow": key[0], "size": key[1], "plans": len(rows), **fid.error_summary(errors),
                    "load1_median": float(np.median([x for r in rows for x in r["load1_forecast"]] or [np.nan])),
                    "real_runs_s": float(sum(r["real_runs_s"] for r in rows)),
                    "predict_s": float(sum(r["predict_s"] for r in rows))})
    return out


def coverage_study(executor: Executor, wr: WorkflowRuns, args: argparse.Namespace,
                   say: Say) -> tuple[Cell, list[RealRun]]:
    """``args.coverage_runs`` more real runs of the first cell's plan of the coverage workflow."""
    cell = wr.cells[0]
    say(f"coverage: {args.coverage_runs} real runs of {cell.id}")
    return cell, run_repeatedly(executor, wr.bench.workflow, cell.plan, args.coverage_runs, f"coverage.{cell.id}", say)


def coverage_result(wr: WorkflowRuns, cell: Cell, runs: Sequence[RealRun], platform: Platform,
                    args: argparse.Namespace, settings: ExecutorSettings) -> dict[str, Any]:
    """The fraction of the coverage runs at or below the Monte Carlo p50 / p90 / p95, each run forecast by a
    calibration that did not see it.

    Without a fit (``--calibration none`` / ``host-defaults``) every run is forecast on ``platform``.  With
    ``host`` the study is a two-fold cross-fit: the runs split into interleaved folds (0, 2, 4... and 1, 3,
    5...), and each fold is forecast by a platform calibrated on the workflow's calibration halves *and the
    other fold* - many runs of this very plan, so the fit can pin its median and its spread
    (``run_center``, ``run_noise``, ``noise_scale``).  A p50 within +-5 points needs the forecast median
    within a small fraction of the runs' own spread, which no fit on two runs per plan can promise; every
    run is still forecast out of sample.
    """
    folds = fid.split_halves(list(runs)) if args.calibration == "host" and len(runs) >= 4 else [list(runs), []]
    real, bounds, fold_rows = [], {q: [] for q in fid.COVERAGE_LEVELS}, []
    for k, forecast in enumerate(folds):
        if not forecast:
            continue
        fitted, report = platform, {}
        if args.calibration == "host" and folds[1 - k]:
            other = folds[1 - k]
            training = calibration_runs(wr, wr.cells, args) + calibration_runs(wr, [cell], args, lambda c: other)
            fitted = platform_for(training, base_platform(wr.cost_model, settings), "host",
                                  report)
        if args.background == "load":
            fitted = fitted.with_(host_background=float(np.median([r.load1 for r in forecast])))
        prediction = predict(wr.bench.workflow, cell.plan, wr.cost_model, fitted, args.coverage_replications,
                             args.seed + k)
        real += [r.makespan_s for r in forecast]
        for q in fid.COVERAGE_LEVELS:
            bounds[q] += [prediction.mc[f"p{round(q * 100)}"]] * len(forecast)
        fold_rows.append({"runs": len(forecast), "monte_carlo_s": prediction.mc,
                          "simulated_s": prediction.deterministic_s, "run_noise": fitted.run_noise,
                          "noise_scale": fitted.noise_scale, "run_center": fitted.run_center,
                          "calibration": report or None})
    loads = [r.load1 for fold in folds for r in fold]
    return {"cell": cell.id, "runs": len(real), "real_s": real, "load1": loads,
            "load1_median": float(np.median(loads)), "monte_carlo_s": fold_rows[0]["monte_carlo_s"],
            "simulated_s": fold_rows[0]["simulated_s"], "folds": fold_rows,
            "levels": fid.coverage(real, bounds),
            "note": ("two-fold cross-fit: each fold forecast by the workflow's calibration halves plus the other "
                     "fold" if len(fold_rows) == 2 else "one platform for every run (no fit)")}


_JOBS: tuple[Sequence[WorkflowRuns], argparse.Namespace, ExecutorSettings, Say] | None = None  # for forked jobs


def _forecast_one(k: int) -> tuple[list[dict[str, Any]], Platform, dict[str, Any]]:
    assert _JOBS is not None
    results, args, settings, say = _JOBS
    return forecast_workflow(results[k], args, settings, say)


def _forecast_all(results: Sequence[WorkflowRuns], args: argparse.Namespace, settings: ExecutorSettings,
                  say: Say) -> list[tuple[list[dict[str, Any]], Platform, dict[str, Any]]]:
    """:func:`forecast_workflow` of every workflow, in ``args.jobs`` forked processes (largest first).

    Workflows are independent and the real runs are over, so forecasting (the host calibration's hundreds
    of simulations above all) may use every core without disturbing a measurement.
    """
    global _JOBS
    order = sorted(range(len(results)), key=lambda k: -len(results[k].bench.workflow))
    if args.jobs <= 1 or len(results) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [forecast_workflow(wr, args, settings, say) for wr in results]
    _JOBS = (results, args, settings, say)
    try:
        with multiprocessing.get_context("fork").Pool(min(args.jobs, len(results))) as pool:
            done = dict(zip(order, pool.map(_forecast_one, order, chunksize=1)))
    finally:
        _JOBS = None
    return [done[k] for k in range(len(results))]


def forecasts(results: Sequence[WorkflowRuns], coverage_runs: tuple[Cell, list[RealRun]] | None, mode: str,
              args: argparse.Namespace, settings: ExecutorSettings, failures: dict[str, str],
              say: Say) -> dict[str, Any]:
    """Every cell's forecast with calibration ``mode``, pooled per workflow and size and overall, and the targets."""
    run_args = argparse.Namespace(**{**vars(args), "calibration": mode})
    cell_rows, platforms, coverage = [], {}, None
    for wr, (rows, platform, report) in zip(results, _forecast_all(results, run_args, settings, say)):
        cell_rows += rows
        platforms[wr.bench.label] = {"platform": platform.to_dict(), "calibration": report or None}
        if coverage_runs is not None and any(c is coverage_runs[0] for c in wr.cells):
            coverage = coverage_result(wr, *coverage_runs, platform, run_args, settings)
    groups = group_rows(cell_rows)
    sizes: dict[str, dict[int, float]] = {}
    for g in groups:
        if g["workflow"] in SIZED:
            sizes.setdefault(g["workflow"], {})[g["size"]] = g["median_abs"]
    all_errors = [e for r in cell_rows if r["same_plan_as"] is None for e in r["errors"]]
    checks = fid.target_checks(all_errors, sizes, coverage["levels"] if coverage else None)
    checks["failed_cells"] = {"value": float(len(failures)), "target": 0, "pass": not failures,
                              "note": "cells that could not be planned or run (see failures)"}
    distinct = [r for r in cell_rows if r["same_plan_as"] is None]
    pooled = {name: {"level": level, "fraction": float(np.mean(below)) if below else float("nan"), "runs": len(below)}
              for name, level in ((f"p{round(q * 100)}", q) for q in fid.COVERAGE_LEVELS)
              for below in [[x <= r["monte_carlo_s"][name] for r in distinct for x in r["real_forecast_s"]]]}
    return {"cells": cell_rows, "groups": groups, "overall": fid.error_summary(all_errors), "coverage": coverage,
            "pooled_coverage": pooled, "targets": checks, "platforms": platforms}


def real_runs(args: argparse.Namespace, say: Say) -> tuple[list[WorkflowRuns], Coverage | None, dict[str, str]]:
    """Every workflow's profile phase and real runs, and the coverage study, on one executor."""
    catalog = load_catalog("local")
    benches = bench_workflows(args.workflows, args.sizes)
    coverage_bench = next((b for b in benches if b.name == args.coverage_workflow), None)
    results: list[WorkflowRuns] = []
    coverage_runs = None
    failures: dict[str, str] = {}
    with Executor(settings=ExecutorSettings()) as executor:
        for bw in benches:
            results.append(run_workflow(executor, bw, args, catalog, failures, say))
            if bw is coverage_bench and args.coverage_runs and results[-1].cells:
                coverage_runs = coverage_study(executor, results[-1], args, say)
    return results, coverage_runs, failures


def real_settings(args: argparse.Namespace) -> dict[str, Any]:
    """How the real runs were made (saved with them by ``--save-runs``)."""
    return {"repetitions": args.repetitions, "sizes": args.sizes, "planners": args.planners,
            "slas": [s.name for s in args.slas], "workflows": args.workflows, "catalog": "local",
            "profile_repetitions": args.profile_repetitions, "coverage_workflow": args.coverage_workflow,
            "coverage_runs": args.coverage_runs, "executor": dataclasses.asdict(ExecutorSettings()),
            "warm_pool": "empty at the start of every repetition (idle processes stopped before each run)",
            "halves": "calibration = repetitions 0, 2, 4...; forecast = 1, 3, 5...",
            "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "git": _revision.short(), "load_average_before": os.getloadavg()}


def run_benchmark(args: argparse.Namespace, say: Say) -> dict[str, Any]:
    """Real runs (or saved ones), then forecasts with each of ``args.calibration`` (the first is the headline)."""
    if args.from_runs is not None:
        results, coverage_runs, failures, runs_settings = load_many(args.from_runs)
        for source in runs_settings["sources"]:
            say(f"real runs read from {source['from']} (made {source['when']}, git {source['git']}): "
                f"{', '.join(source['workflows'])}{'; coverage' if source['coverage'] else ''}")
    else:
        runs_settings = real_settings(args)          # the commit and the load when the runs start
        results, coverage_runs, failures = real_runs(args, say)
        runs_settings["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        runs_settings["load_average_after"] = os.getloadavg()
        if args.save_runs is not None:
            say(f"real runs saved in {save_runs(args.save_runs, results, coverage_runs, failures, runs_settings)}")
    settings = ExecutorSettings(**{k: v for k, v in runs_settings["executor"].items()
                                   if k in ExecutorSettings.__dataclass_fields__})
    by_mode = {}
    for mode in args.calibration:
        say(f"forecasts with calibration {mode}")
        by_mode[mode] = forecasts(results, coverage_runs, mode, args, settings, failures, say)
    alternatives = {mode: {**{k: out[k] for k in ("overall", "groups", "targets", "coverage", "pooled_coverage",
                                                  "platforms")},
                           "cells": [{k: r[k] for k in ("cell", "same_plan_as", "simulated_s", "monte_carlo_s",
                                                        "errors", "error")}
                                     | {"critical_path_simulated_s": r["critical_path_s"]["simulated"]}
                                     for r in out["cells"]]}
                    for mode, out in list(by_mode.items())[1:]}
    loads = [run.load1 for wr in results for plan_runs in wr.runs.values() for run in plan_runs]
    loads += [run.load1 for run in (coverage_runs[1] if coverage_runs else [])]
    run_load = {"median": float(np.median(loads)), "max": float(max(loads))} if loads else None
    return {"real_runs": {**runs_settings, "from": [str(d) for d in args.from_runs] if args.from_runs else None,
                          "load1_before_runs": run_load,
                          "quiet": bool(run_load and run_load["max"] < fid.QUIET_LOAD)},
            "calibration": args.calibration[0], **by_mode[args.calibration[0]], "other_calibrations": alternatives,
            "failures": failures, "profile": {wr.bench.label: wr.profile for wr in results},
            "workflow_seconds": {wr.bench.label: wr.seconds for wr in results}}


# ---------------------------------------------------------------- command line
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The benchmark's flags (:mod:`_fidelity_args`), completed and checked."""
    return _fidelity_args.parse_args(argv, __doc__.splitlines()[0], RESULTS)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()

    def say(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f} s, load {load1():.2f}] {msg}", file=sys.stderr, flush=True)

    load_start = os.getloadavg()
    revision = _revision.AT_START       # the code that runs: taken at the start, not when the results are written
    try:
        if "host" in args.calibration:
            host_calibration()          # fail before any real run, not after
        outcome = run_benchmark(args, say)
    except PlanlabError as exc:
        print(f"bench_fidelity: error: {exc.one_line()}", file=sys.stderr)
        return 2
    result = {
        "benchmark": "fidelity", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": (revision["revision"] or "")[:7] or None, "git_dirty": revision["dirty"], "quick": args.quick,
        "machine": {"python": _platform.python_version(), "platform": _platform.platform(), "cpus": os.cpu_count(),
                    "load_average_start": load_start, "load_average_end": os.getloadavg()},
        "forecast_settings": {"calibration": args.calibration, "calibration_scope": args.calibration_scope,
                              "background": args.background, "replications": args.replications,
                              "coverage_replications": args.coverage_replications, "seed": args.seed,
                              "jobs": args.jobs,
                              "warm_pool": WARM_POOL,
                              "prediction": "plan retargeted to the mean: deterministic simulate() vs each "
                                            "forecast run; monte_carlo() for p50/p90/p95"},
        "all_pass": all(c["pass"] for c in outcome["targets"].values()), **outcome,
        "wall_s": time.perf_counter() - t0,
    }
    if not args.quick or args.out != RESULTS:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, default=_json_default) + "\n")
        say(f"wrote {args.out}")
    print_summary(result)
    return 0 if result["all_pass"] else 1


def print_summary(result: dict[str, Any]) -> None:
    print(f"{'workflow':<18} {'size':>5} {'plans':>5} {'median':>8} {'p90':>8} {'bias':>8} {'load':>5}")
    for g in result["groups"]:
        print(f"{g['workflow']:<18} {g['size']:>5} {g['plans']:>5} {g['median_abs']:>8.1%} {g['p90_abs']:>8.1%} "
              f"{g['bias']:>+8.1%} {g['load1_median']:>5.2f}")
    o = result["overall"]
    print(f"{'all':<18} {'':>5} {'':>5} {o['median_abs']:>8.1%} {o['p90_abs']:>8.1%} {o['bias']:>+8.1%}"
          f"   (calibration {result['calibration']})")
    for mode, other in result["other_calibrations"].items():
        o = other["overall"]
        print(f"{'all':<18} {'':>5} {'':>5} {o['median_abs']:>8.1%} {o['p90_abs']:>8.1%} {o['bias']:>+8.1%}"
              f"   (calibration {mode})")
    for name, c in result["targets"].items():
        print(f"{name}: {c['value']:.3f} (target <= {c['target']}) {'PASS' if c['pass'] else 'FAIL'}")


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")


if __name__ == "__main__":
    sys.exit(main())
