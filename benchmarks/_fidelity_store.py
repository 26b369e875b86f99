"""The fidelity benchmark's real runs on disk: save them once, forecast them again with another model.

``bench_fidelity.py --save-runs DIR`` writes what the forecasts need; ``--from-runs DIR`` reads it back
instead of running anything, so two versions of the simulator or of its calibration are judged on the
very same real runs (minutes of forecasting instead of a quarter of an hour of real runs).  Layout::

    DIR/manifest.json                    format, settings, workflows, cells, runs (load, processes), coverage
    DIR/<workflow>/profile.parquet       the profile phase's history (the cost model is refitted from it as the runner fits)
    DIR/<workflow>/plans/<plan>.json     each distinct plan (Plan.to_json)
    DIR/<workflow>/runs/<plan>/r<k>/     each real run's trace (Trace.save)
    DIR/<workflow>/coverage/r<k>/        the coverage study's runs

Workflows are rebuilt from their names and sizes and checked against the saved structure hash.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from _fidelity_runs import Cell, RealRun, WorkflowRuns, bench_workflows
from experiments.profiling import fit_profile_model
from planning.errors import ConfigError
from planning.plan import Plan
from planning.sla import SLA
from planning.trace import Trace

MANIFEST = "manifest.json"
FORMAT = "planlab-fidelity-runs/1"
Coverage = tuple[Cell, list[RealRun]]


def _folder(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", label)


def _save_run(run: RealRun, root: Path, directory: Path) -> dict[str, Any]:
    run.trace.save(directory)
    return {"repetition": run.repetition, "load1": run.load1, "processes": run.processes,
            "trace": directory.relative_to(root).as_posix()}


def save_runs(directory: str | Path, results: Sequence[WorkflowRuns], coverage: Coverage | None,
              failures: dict[str, str], settings: dict[str, Any]) -> Path:
    """Write every workflow's profile history, distinct plans and real runs under ``directory``."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    workflows = []
    for wr in results:
        base = root / _folder(wr.bench.label)
        (base / "plans").mkdir(parents=True, exist_ok=True)
        wr.history.to_parquet(base / "profile.parquet", index=False)
        for cell in wr.cells:
            if cell.same_plan_as is None:
                cell.plan.to_json(base / "plans" / f"{cell.plan_key}.json")
        runs = {key: [_save_run(run, root, base / "runs" / key / f"r{run.repetition}") for run in plan_runs]
                for key, plan_runs in wr.runs.items()}
        workflows.append({"name": wr.bench.name, "size": wr.bench.size, "label": wr.bench.label,
                          "structure_hash": wr.bench.workflow.structure_hash(), "profile": wr.profile,
                          "seconds": wr.seconds, "runs": runs,
                          "cells": [{"planner": c.planner, "sla": c.sla.name, "plan": c.plan_key,
                                     "same_plan_as": c.same_plan_as} for c in wr.cells]})
    saved_coverage = None
    if coverage is not None:
        cell, runs = coverage
        base = root / _folder(cell.bench.label) / "coverage"
        saved_coverage = {"workflow": cell.bench.label, "cell": cell.id,
                          "runs": [_save_run(run, root, base / f"r{run.repetition}") for run in runs]}
    manifest = {"format": FORMAT, "settings": settings, "workflows": workflows, "coverage": saved_coverage,
                "failures": failures}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str) + "\n")
    return root


def load_runs(directory: str | Path) -> tuple[list[WorkflowRuns], Coverage | None, dict[str, str], dict[str, Any]]:
    """``(results, coverage, failures, settings)`` as :func:`save_runs` wrote them."""
    root = Path(directory)
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--from-runs {str(root)!r} holds no readable {MANIFEST} ({exc})",
                          "give a folder written by bench_fidelity.py --save-runs") from None
    if manifest.get("format") != FORMAT:
        raise ConfigError(f"--from-runs {str(root)!r} is not in format {FORMAT} (got {manifest.get('format')!r})",
                          "record the runs again with this version's --save-runs")
    results = [_load_workflow(root, entry) for entry in manifest["workflows"]]
    coverage = None
    if manifest.get("coverage"):
        saved = manifest["coverage"]
        wr = next(w for w in results if w.bench.label == saved["workflow"])
        cell = next(c for c in wr.cells if c.id == saved["cell"])
        coverage = (cell, [_load_run(root, r) for r in saved["runs"]])
    return results, coverage, dict(manifest.get("failures", {})), dict(manifest.get("settings", {}))


def load_many(directories: Sequence[str | Path]) -> tuple[list[WorkflowRuns], Coverage | None, dict[str, str],
                                                          dict[str, Any]]:
    """:func:`load_runs` of several folders combined: a workflow saved in a later folder replaces the same
    workflow of an earlier one (its cells, runs and failures), the coverage study is the last folder's that has
    one, and the settings are the first folder's with ``sources`` saying what came from where.

    So a study can add or redo a part (e.g. more coverage runs of one workflow) without running the rest
    again; the executor settings must agree, since every forecast assumes the same executor.
    """
    results: dict[str, WorkflowRuns] = {}
    coverage, failures, settings, sources = None, {}, {}, []
    for directory in directories:
        loaded, saved_coverage, saved_failures, saved_settings = load_runs(directory)
        if settings and saved_settings.get("executor") != settings.get("executor"):
            raise ConfigError(f"--from-runs {str(directory)!r} ran with other executor settings than "
                              f"{str(directories[0])!r}", "combine runs made with the same executor settings")
        settings = settings or saved_settings
        for wr in loaded:
            results[wr.bench.label] = wr
            failures = {cell: why for cell, why in failures.items() if not cell.startswith(f"{wr.bench.label}.")}
        failures.update(saved_failures)
        coverage = saved_coverage or coverage
        sources.append({"from": str(directory), "workflows": [wr.bench.label for wr in loaded],
                        "coverage": saved_coverage[0].id if saved_coverage else None,
                        **{k: saved_settings.get(k) for k in ("when", "git", "load_average_before", "finished",
                                                               "load_average_after", "coverage_runs")}})
    return list(results.values()), coverage, failures, {**settings, "sources": sources}


def _load_run(root: Path, saved: dict[str, Any]) -> RealRun:
    return RealRun(int(saved["repetition"]), Trace.load(root / saved["trace"]), float(saved["load1"]),
                   int(saved["processes"]))


def _load_workflow(root: Path, entry: dict[str, Any]) -> WorkflowRuns:
    base = root / _folder(entry["label"])
    try:
        bench = bench_workflows([entry["name"]], [int(entry["size"])])[0]
        if bench.workflow.structure_hash() != entry["structure_hash"]:
            raise ConfigError(f"workflow {entry['label']!r} is no longer the one the saved runs ran",
                              "record the runs again (bench_fidelity.py --save-runs DIR)")
        history = pd.read_parquet(base / "profile.parquet")
        plans = {key: Plan.from_json(base / "plans" / f"{key}.json") for key in entry["runs"]}
        cells = [Cell(bench, c["planner"], SLA.parse(c["sla"]), plans[c["plan"]], c["plan"], c["same_plan_as"])
                 for c in entry["cells"]]
        runs = {key: [_load_run(root, r) for r in saved] for key, saved in entry["runs"].items()}
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(f"--from-runs: the saved runs of {entry.get('label')!r} are incomplete ({exc})",
                          "record the runs again (bench_fidelity.py --save-runs DIR)") from None
    return WorkflowRuns(bench, fit_profile_model(history), history, entry["profile"], cells, runs,
                        float(entry["seconds"]))
