"""The results directory: every table an experiment produces, as Parquet, with its config and provenance.

Layout::

    DIR/config.toml          the config as written (copied verbatim)
    DIR/provenance.json      config hash, git revision, packages, machine, limits, timings
    DIR/cost_model.json      the cost model the plans were made with
    DIR/profile/             the profile phase's history (written once it finished)
    DIR/cells/CELL/          one finished cell: its tables and summary.json (written last)
    DIR/summary.parquet      one row per cell (planned / simulated / real makespan, cost, errors)
    DIR/plans.parquet, plan_workers.parquet, sim_tasks.parquet, sim_workers.parquet,
    DIR/real_tasks.parquet, real_workers.parquet, montecarlo.parquet, history.parquet

Each cell is persisted as it finishes, ``summary.json`` last and by an atomic rename,
so a cell directory with a summary is complete: an interrupted run resumes by skipping
exactly those.  The top-level tables are the cells concatenated
(:meth:`ResultsStore.consolidate`); figures are drawn from them alone.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from planning.errors import ConfigError, PlanlabError

#: Per-cell tables, concatenated into ``DIR/NAME.parquet``.
CELL_TABLES = ("plans", "plan_workers", "sim_tasks", "sim_workers", "real_tasks", "real_workers", "montecarlo",
               "history")
SUMMARY_FILE = "summary.json"
RUN_FILE = "run.json"


class ResultsError(PlanlabError):
    """A results directory is missing, incomplete or from another config."""


class ResultsStore:
    """Reads and writes one experiment's results directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(cls, root: str | Path, config_text: str, config_hash: str, *, fresh: bool = False) -> "ResultsStore":
        """Open ``root`` for a run of the config with ``config_hash``: new, or resuming the same config.

        A directory holding results of a *different* config is refused (mixing them
        would make every table lie) unless ``fresh``, which deletes it first.
        """
        store = cls(root)
        run_file = store.root / RUN_FILE
        if fresh and store.root.exists():
            if not run_file.exists() and any(store.root.iterdir()):
                raise ResultsError(f"{store.root} is not empty and is not a planlab results directory",
                                   "give --out a new or empty directory")
            shutil.rmtree(store.root)
        if run_file.exists():
            previous = json.loads(run_file.read_text()).get("config_hash")
            if previous != config_hash:
                raise ConfigError(f"{store.root} holds results of a different config (hash {str(previous)[:12]}, "
                                  f"this config {config_hash[:12]})",
                                  "give another --out directory, or add --fresh to delete the old results")
        elif store.root.exists() and any(store.root.iterdir()):
            raise ResultsError(f"{store.root} is not empty and is not a planlab results directory",
                               "give --out a new or empty directory")
        (store.root / "cells").mkdir(parents=True, exist_ok=True)
        (store.root / "config.toml").write_text(config_text)
        _atomic_write(run_file, json.dumps({"config_hash": config_hash}))
        return store

    @classmethod
    def open(cls, root: str | Path) -> "ResultsStore":
        store = cls(root)
        if not (store.root / RUN_FILE).is_file():
            raise ResultsError(f"{store.root} is not a planlab results directory (no {RUN_FILE})",
                               "give the directory 'planlab run' wrote (its --out)")
        return store

    # ------------------------------------------------------------------ cells
    def cell_dir(self, cell_id: str) -> Path:
        return self.root / "cells" / cell_id

    def is_done(self, cell_id: str) -> bool:
        return (self.cell_dir(cell_id) / SUMMARY_FILE).is_file()

    def done_cells(self) -> list[str]:
        cells = self.root / "cells"
        return sorted(p.name for p in cells.iterdir() if (p / SUMMARY_FILE).is_file()) if cells.is_dir() else []

    def write_cell(self, cell_id: str, tables: Mapping[str, pd.DataFrame | None], summary: Mapping[str, Any],
                   files: Mapping[str, str] | None = None) -> Path:
        """Persist one finished cell: tables and ``files`` (name -> text) first, the summary (the completion mark)
        last and atomically."""
        directory = self.cell_dir(cell_id)
        if directory.exists():
            shutil.rmtree(directory)  # a half-written cell from an interrupted run
        directory.mkdir(parents=True)
        for name, frame in tables.items():
            if name not in CELL_TABLES:
                raise ValueError(f"unknown cell table {name!r}")
            if frame is not None and len(frame):
                frame.to_parquet(directory / f"{name}.parquet", index=False)
        for name, text in (files or {}).items():
            (directory / name).write_text(text)
        _atomic_write(directory / SUMMARY_FILE, json.dumps(_jsonable(dict(summary)), indent=1))
        return directory

    def cell_summary(self, cell_id: str) -> dict[str, Any]:
        return json.loads((self.cell_dir(cell_id) / SUMMARY_FILE).read_text())

    # ------------------------------------------------------------------ phase-level files
    def write_json(self, name: str, data: Mapping[str, Any]) -> Path:
        path = self.root / name
        _atomic_write(path, json.dumps(_jsonable(dict(data)), indent=1))
        return path

    def read_json(self, name: str, default: Any = None) -> Any:
        path = self.root / name
        return json.loads(path.read_text()) if path.is_file() else default

    def profile_done(self) -> bool:
        return (self.root / "profile" / "done.json").is_file()

    def write_profile(self, history: pd.DataFrame, runs: pd.DataFrame) -> None:
        directory = self.root / "profile"
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        history.to_parquet(directory / "history.parquet", index=False)
        runs.to_parquet(directory / "runs.parquet", index=False)
        _atomic_write(directory / "done.json", json.dumps({"rows": len(history), "runs": len(runs)}))

    def profile_history(self) -> pd.DataFrame:
        path = self.root / "profile" / "history.parquet"
        return pd.read_parquet(path) if path.is_file() else pd.DataFrame()

    def profile_runs(self) -> pd.DataFrame:
        path = self.root / "profile" / "runs.parquet"
        return pd.read_parquet(path) if path.is_file() else pd.DataFrame()

    # ------------------------------------------------------------------ consolidation
    def consolidate(self, order: Iterable[str] | None = None) -> "Results":
        """Concatenate every finished cell into the top-level tables; return them loaded."""
        cells = list(order) if order is not None else self.done_cells()
        cells = [c for c in cells if self.is_done(c)]
        rows = [self.cell_summary(c) for c in cells]
        summary = _numeric(pd.DataFrame(rows))
        summary.to_parquet(self.root / "summary.parquet", index=False)
        for name in CELL_TABLES:
            parts = [pd.read_parquet(p) for c in cells if (p := self.cell_dir(c) / f"{name}.parquet").is_file()]
            if name == "history":
                profile = self.profile_history()
                if len(profile):
                    parts.insert(0, profile)
            frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
            frame.to_parquet(self.root / f"{name}.parquet", index=False)
        return self.load()

    def load(self) -> "Results":
        """The top-level tables (consolidating first if a run left none)."""
        if not (self.root / "summary.parquet").is_file():
            return self.consolidate()
        tables = {name: _read(self.root / f"{name}.parquet") for name in ("summary",) + CELL_TABLES}
        return Results(root=self.root, provenance=self.read_json("provenance.json", {}),
                       config_text=(self.root / "config.toml").read_text() if (self.root / "config.toml").is_file()
                       else "", profile_runs=self.profile_runs(), **tables)


@dataclass
class Results:
    """Every table of a results directory, loaded (see the module docstring)."""

    root: Path
    summary: pd.DataFrame
    plans: pd.DataFrame
    plan_workers: pd.DataFrame
    sim_tasks: pd.DataFrame
    sim_workers: pd.DataFrame
    real_tasks: pd.DataFrame
    real_workers: pd.DataFrame
    montecarlo: pd.DataFrame
    history: pd.DataFrame
    provenance: dict[str, Any] = field(default_factory=dict)
    config_text: str = ""
    profile_runs: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def has_real(self) -> bool:
        return len(self.real_tasks) > 0 and "real_makespan_s" in self.summary and \
            self.summary["real_makespan_s"].notna().any()


def load_results(root: str | Path) -> Results:
    """The tables of the results directory ``root``."""
    return ResultsStore.open(root).load()


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns whose values are all numbers (JSON null for NaN) as floats, not objects."""
    for col in frame.columns:
        values = frame[col].dropna()
        if len(values) == 0 or all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            if frame[col].dtype == object:
                frame[col] = pd.to_numeric(frame[col]).astype("float64")
    return frame


def _read(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.is_file() else pd.DataFrame()


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
