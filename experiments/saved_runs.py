"""Real runs saved with everything calibration needs, and the loader that reads them back.

A saved run is one folder::

    saved_run.json        manifest: format, run id, phase, workflow reference, SLA, catalog,
                          executor settings, host conditions before/after, file names
    plan.json             the plan that was executed (:meth:`planning.plan.Plan.to_json`)
    trace/                the real Trace (:meth:`planning.trace.Trace.save`; its meta holds the host too)
    workflow.json         the workflow as run, in planlab's JSON (absent when its code cannot be referenced)
    cost_model.json       the cost model the plan was made with (:meth:`CostModel.to_dict`, for reading)
    cost_model_history.parquet   the history it was fitted on (absent for priors): the model is rebuilt
                          exactly by ``CostModel(**params).fit(history)``

Who writes them: ``planlab execute ... --save-run DIR`` (phase ``"execute"``), and
``planlab run`` for every execute cell (``RESULTS/runs/CELL_ID``, phase ``"cell"``)
and every profiling run (``RESULTS/runs/profile.*``, phase ``"profile"``).

Who reads them: calibration (``planlab calibrate --traces PATH...``) and anyone who
wants to replay or re-simulate a real run::

    from experiments.saved_runs import find_saved_runs, load_saved_run
    for path in find_saved_runs(["results/quickstart"]):
        run = load_saved_run(path)
        run.plan, run.trace, run.workflow, run.cost_model, run.settings, run.host
        # e.g. experiments.calibration.executions.Observation.from_trace(run.workflow, run.plan, run.trace,
        #                                                   cost_model=run.cost_model)

``phase`` tells the runs apart: profiling runs measure one worker per profile, so a
calibration that forecasts execution cells may want to fit on ``"profile"`` runs
and hold out ``"cell"`` runs.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd

from experiments.hostload import RunHost
from planning.costs.cost_model import CostModel
from planning.errors import PlanlabError
from planning.plan import Plan
from planning.profiles import Catalog
from planning.sla import SLA
from planning.trace import Trace
from planning.workflow import Workflow

__all__ = ["SAVED_RUN_FORMAT", "MANIFEST", "SavedRunError", "WorkflowRef", "SavedRun", "save_run", "load_saved_run",
           "load_saved_runs", "find_saved_runs", "check_new_run_dir", "workflow_reference", "cli_workflow_reference"]

SAVED_RUN_FORMAT = "planlab.saved_run/1"
#: The manifest's name (not ``run.json``: that marks a ``planlab run`` results folder, which holds saved runs).
MANIFEST = "saved_run.json"
_HISTORY_FILE = "cost_model_history.parquet"


class SavedRunError(PlanlabError):
    """A saved run cannot be written or read back."""


@dataclass(frozen=True)
class WorkflowRef:
    """How to load the workflow again: a spec (``gen:...``, an absolute file path or ``file.py:name``) and scales."""

    spec: str
    scale: float = 1.0
    data_scale: float = 1.0

    def load(self) -> Workflow:
        """The workflow the spec names, with replay tasks scaled as they were run."""
        from experiments.config import scaled_workflow
        from planning.sources.loading import load_workflow

        return scaled_workflow(load_workflow(self.spec), self.scale, self.data_scale)


def workflow_reference(config: Any, label: str) -> WorkflowRef:
    """The reference of workflow ``label`` of an experiment config (its paths are already absolute)."""
    spec = next(w for w in config.workflows if w.label == label)
    return WorkflowRef(spec.spec, spec.scale, spec.data_scale)


def cli_workflow_reference(spec: str) -> WorkflowRef:
    """A command line's workflow spec with its file made absolute, so the reference outlives the directory."""
    text = str(spec).strip()
    if text.startswith("gen:"):
        return WorkflowRef(text)
    file_part, sep, attr = text.rpartition(":")
    if sep and file_part.endswith(".py"):
        return WorkflowRef(f"{Path(file_part).resolve()}:{attr}")
    return WorkflowRef(str(Path(text).resolve()))


@dataclass(frozen=True)
class SavedRun:
    """One real run read back: what was run (workflow, plan, settings, cost model) and what happened (trace, host)."""

    path: Path
    run_id: str
    phase: str                       # "execute" (planlab execute), "cell" or "profile" (planlab run)
    workflow: Workflow
    workflow_ref: WorkflowRef
    plan: Plan
    trace: Trace
    cost_model: CostModel
    settings: Any                    # executor.ExecutorSettings
    sla: SLA
    catalog_spec: str
    host: RunHost | None
    manifest: dict[str, Any]

    @property
    def catalog(self) -> Catalog:
        return self.plan.catalog


# ====================================================================== writing
def check_new_run_dir(directory: str | Path) -> Path:
    """``directory`` as a Path if a run can be saved there (absent or empty); else a one-line error."""
    path = Path(directory)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise SavedRunError(f"--save-run {str(path)!r} already exists and is not an empty folder",
                            "give a new folder per run (e.g. runs/$(date +%s))")
    return path


def save_run(directory: str | Path, *, workflow: Workflow, workflow_ref: WorkflowRef, plan: Plan, trace: Trace,
             cost_model: CostModel, settings: Any, sla: SLA, catalog_spec: str, phase: str,
             cost_model_history: pd.DataFrame | None = None) -> Path:
    """Write one run's folder (replacing an older one at the same place, atomically); return its path.

    ``settings`` is an ``ExecutorSettings`` or its ``dataclasses.asdict``; the host
    conditions are read from ``trace.meta["host"]`` (:func:`experiments.hostload.record_host`).
    """
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        plan.to_json(tmp / "plan.json")
        trace.save(tmp / "trace")
        has_json = _write_workflow_json(workflow, tmp / "workflow.json")
        (tmp / "cost_model.json").write_text(json.dumps(cost_model.to_dict(), indent=1, default=str))
        if cost_model_history is not None and cost_model.fitted and len(cost_model_history):
            cost_model_history.to_parquet(tmp / _HISTORY_FILE, index=False)
        manifest = {
            "format": SAVED_RUN_FORMAT, "run_id": str(trace.meta.get("run_id", target.name)), "phase": phase,
            "workflow": {**dataclasses.asdict(workflow_ref), "name": workflow.name,
                         "structure_hash": workflow.structure_hash(), "file": "workflow.json" if has_json else None},
            "plan": "plan.json", "trace": "trace", "sla": sla.name,
            "catalog": {"name": plan.catalog.name, "spec": catalog_spec},
            "executor_settings": _settings_dict(settings),
            "cost_model": {"file": "cost_model.json", "params": _jsonable_params(cost_model.params),
                           "history": _HISTORY_FILE if (tmp / _HISTORY_FILE).is_file() else None},
            "host": trace.meta.get("host"),
            "real_makespan_s": float(trace.makespan_s), "planned_makespan_s": float(plan.makespan_s)}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str))
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _write_workflow_json(workflow: Workflow, path: Path) -> bool:
    """planlab's JSON of the workflow; False when its code cannot be written as a reference."""
    try:
        path.write_text(workflow.to_json())
    except (PlanlabError, TypeError, ValueError):
        return False
    return True


def _settings_dict(settings: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(settings):
        return dataclasses.asdict(settings)
    return dict(settings or {})


def _jsonable_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


# ====================================================================== reading
def load_saved_run(directory: str | Path) -> SavedRun:
    """Read a folder written by :func:`save_run`; a missing or foreign folder is one :class:`SavedRunError`."""
    path = Path(directory)
    manifest = _read_manifest(path)
    try:
        plan = Plan.from_json(path / manifest["plan"])
        trace = Trace.load(path / manifest["trace"])
        ref_data = manifest["workflow"]
        ref = WorkflowRef(ref_data["spec"], float(ref_data.get("scale", 1.0)), float(ref_data.get("data_scale", 1.0)))
        workflow = _load_workflow(path, ref_data.get("file"), ref, plan.structure_hash)
        model = _load_cost_model(path, manifest["cost_model"])
        settings = _executor_settings(manifest.get("executor_settings") or {})
        host = RunHost.from_dict(manifest["host"]) if manifest.get("host") else None
        return SavedRun(path, str(manifest["run_id"]), str(manifest.get("phase", "")), workflow, ref, plan, trace,
                        model, settings, SLA.parse(manifest["sla"]), str(manifest["catalog"].get("spec", "")), host,
                        manifest)
    except SavedRunError:
        raise
    except (KeyError, TypeError, ValueError, OSError) as exc:
        raise SavedRunError(f"saved run {str(path)!r} is incomplete or damaged ({type(exc).__name__}: {exc})",
                            "save the run again with planlab execute --save-run or planlab run") from None


def load_saved_runs(paths: str | Path | Iterable[str | Path]) -> list[SavedRun]:
    """:func:`load_saved_run` of every folder :func:`find_saved_runs` finds."""
    return [load_saved_run(p) for p in find_saved_runs(paths)]


def find_saved_runs(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """Saved-run folders under ``paths``: run folders, results folders of ``planlab run``, or a list of either.

    A folder holding ``saved_run.json`` is one run; any other folder is searched
    recursively.  Sorted and without duplicates; a path that does not exist or
    holds no saved run is one :class:`SavedRunError`.
    """
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    found: dict[Path, None] = {}
    for item in items:
        path = Path(item)
        if not path.exists():
            raise SavedRunError(f"no such saved run or results folder {str(path)!r}", "check the path")
        if path.is_file() and path.name == MANIFEST:
            path = path.parent
        if (path / MANIFEST).is_file():
            found[path.resolve()] = None
            continue
        runs = sorted(p.parent.resolve() for p in path.rglob(MANIFEST) if not p.parent.name.startswith("."))
        if not runs:
            raise SavedRunError(f"{str(path)!r} holds no saved run (no {MANIFEST})",
                                "save runs with planlab execute --save-run DIR, or run a config with the execute phase")
        found.update(dict.fromkeys(runs))
    return sorted(found)


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        raise SavedRunError(f"{str(path)!r} is not a saved run (no {MANIFEST})",
                            "give a folder written by planlab execute --save-run or planlab run") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise SavedRunError(f"cannot read {str(path / MANIFEST)!r}: {exc}", "save the run again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != SAVED_RUN_FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else None
        raise SavedRunError(f"{str(path / MANIFEST)!r} has format {got!r}, not {SAVED_RUN_FORMAT!r}",
                            "give a folder written by this planlab's --save-run or planlab run")
    return manifest


def _load_workflow(path: Path, file: str | None, ref: WorkflowRef, structure_hash: str) -> Workflow:
    """The saved JSON when it loads and matches the plan, else the reference; an error if neither matches."""
    candidates = []
    if file and (path / file).is_file():
        candidates.append(lambda: Workflow.from_json(path / file))
    candidates.append(ref.load)
    problems = []
    for load in candidates:
        try:
            workflow = load()
        except PlanlabError as exc:
            problems.append(exc.what)
            continue
        if workflow.structure_hash() == structure_hash:
            return workflow
        problems.append("the workflow differs from the one the plan was made for")
    raise SavedRunError(f"saved run {str(path)!r}: cannot rebuild its workflow ({'; '.join(problems)})",
                        f"make {ref.spec!r} loadable again (its file moved or changed?)")


def _load_cost_model(path: Path, entry: Mapping[str, Any]) -> CostModel:
    params = dict(entry.get("params") or {})
    if "exponent_bounds" in params:
        params["exponent_bounds"] = tuple(params["exponent_bounds"])
    model = CostModel(**params)
    history = entry.get("history")
    return model.fit(pd.read_parquet(path / history)) if history else model


def _executor_settings(data: Mapping[str, Any]) -> Any:
    """An ``ExecutorSettings`` from the saved fields (fields this planlab does not know are ignored)."""
    from executor.settings import ExecutorSettings

    known = {f.name for f in dataclasses.fields(ExecutorSettings)}
    return ExecutorSettings(**{k: v for k, v in data.items() if k in known})
