"""The experiment runner: the matrix workflows x planners x SLAs x repetitions, resumable.

Phases, in order (each optional but ``plan``):

``profile``
    run every workflow on every catalog profile for real, ``[profile] repetitions`` times
    (default 3, interleaved), through the executor the execute cells use (the ``uniform``
    planner with that profile, all tasks on one worker unless ``[profile] workers`` says
    otherwise); fit the cost model on the median of each task's repetitions and flag
    kinds whose repetitions disagree (:mod:`experiments.profiling`), so plans use
    measured costs instead of priors;
``plan``
    plan every cell; its analytical schedule is kept as a Trace (``engine="plan"``);
``simulate``
    simulate the plan at the SLA; for a percentile SLA the makespan at the SLA comes
    from Monte Carlo (the workflow's distribution, not summed task percentiles), and
    the replication table is kept;
``execute``
    run the plan for real with the executor (embedded server unless a URL is given).

Every real run (profile and execute) records the host's load and a CPU-speed probe
before and after it (:mod:`experiments.hostload`: trace meta, history rows, the
``host_load_1m`` / ``cpu_probe_s`` columns of the summary and of ``profile/runs``),
and is saved for calibration in ``DIR/runs/RUN_ID`` (:mod:`experiments.saved_runs`).

Every cell is persisted as soon as it finishes (:class:`experiments.results.ResultsStore`),
so an interrupted run resumes where it stopped: finished cells are skipped.  A cell
goes through the same pipeline as the single-shot commands (:mod:`experiments.pipeline`);
the engines are the simulator's and the executor's own functions, set only for the
phases a config asks for, and can be passed in (:class:`Engines`) to run the same
logic on other engines.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pandas as pd

from experiments import provenance as prov
from experiments.cell_run import Cell, Engines, cells_of, default_platform, run_cell  # noqa: F401 - re-exported
from experiments.config import ExperimentConfig
from experiments.host_calibration import WarmPool, calibrate_host
from experiments.phases import save_edges
from experiments.pipeline import relative_errors  # noqa: F401 - re-exported
from experiments.profiling import (ProfileJob, kind_spread, profile_fit_history, profile_jobs, profile_workflows,
                                   thread_mismatch_notes)
from experiments.results import Results, ResultsStore
from planning.costs.cost_model import CostModel
from planning.errors import PlanlabError
from simulator import Platform


# ====================================================================== outcome
@dataclass
class RunOutcome:
    """What a run did: where the results are and how many cells it ran or skipped."""

    root: Path
    cells_total: int
    cells_run: int
    cells_skipped: int
    wall_s: float
    results: Results
    notes: list[str] = field(default_factory=list)


# ====================================================================== the runner
def run_experiment(config: ExperimentConfig, out_dir: str | Path, *, fresh: bool = False, progress: bool = True,
                   engines: Engines | None = None, log: Callable[[str], None] | None = None,
                   ray: Any = None) -> RunOutcome:
    """Run (or resume) ``config`` into ``out_dir``; return the outcome with the consolidated tables.

    ``ray``: an :class:`experiments.ray_campaign.RayCampaign` to run the cells on Ray (``[run] backend =
    "ray"`` makes one from the config); None runs them here, one after the other.
    """
    start = time.perf_counter()
    campaign = ray if ray is not None else _campaign_of(config)
    say = log or (lambda msg: print(msg, file=sys.stderr))
    engines = engines if engines is not None else Engines.for_config(config)
    store = ResultsStore.create(out_dir, config.text, config.hash, fresh=fresh)
    provenance, session = _open_session(config, store)
    cells = cells_of(config)
    todo = [c for c in cells if not store.is_done(c.id)]
    skipped = len(cells) - len(todo)
    if skipped:
        say(f"resuming {config.name}: {skipped} of {len(cells)} cells already done in {store.root}")
    profile_runs = profile_jobs(config) if config.has("profile") and not store.profile_done() else []
    notes: list[str] = []
    limits: set[str] = set(provenance.get("limits_enforced", []))
    bar = _progress(len(cells) + len(profile_runs), skipped, progress)
    needs_executor = bool(profile_runs) or (config.has("execute") and bool(todo))
    try:
        with _maybe_executor(engines, config, needs_executor) as executor:
            pool = WarmPool(keep_alive_s=_keep_alive_s(executor))
            cost_model, fit_history = _cost_model(config, store, executor, profile_runs, bar, limits, notes, pool)
            store.write_json("cost_model.json", cost_model.to_dict())
            host = _host_platform(config, store, executor, cost_model, pool, bar) if todo else None

            def record(cell: Cell, result: tuple[dict[str, pd.DataFrame], dict[str, Any], dict[str, str]]) -> None:
                tables, summary, files = result
                limits.update(filter(None, (summary.get("limits_enforced") or "").split("; ")))
                store.write_cell(cell.id, tables, summary, files)
                session["cells_run"] += 1
                bar.update(1)

            if campaign is not None:   # the cells as Ray tasks (experiments.ray_campaign); the rest is as here
                _run_cells_on_ray(campaign, todo, config, cost_model, engines, host, fit_history, store, record)
            else:
                _run_cells_here(todo, config, cost_model, engines, executor, host, pool, fit_history, store, record,
                                bar)
    except BaseException as exc:   # interrupted or failed: what finished stays saved and readable
        bar.close()
        if isinstance(exc, KeyboardInterrupt):
            say(f"interrupted: {len(store.done_cells())} of {len(cells)} cells are saved in {store.root}; "
                "run the same command again to resume")
        _finish(store, provenance, session, limits, cells, notes)
        raise
    bar.close()
    if config.has("profile") and config.has("execute"):
        executed = pd.DataFrame([store.cell_summary(c) for c in store.done_cells()])
        notes.extend(thread_mismatch_notes(store.profile_runs(), executed))
    results = _finish(store, provenance, session, limits, cells, notes)
    return RunOutcome(store.root, len(cells), session["cells_run"], skipped, time.perf_counter() - start, results, notes)


def _open_session(config: ExperimentConfig, store: ResultsStore) -> tuple[dict[str, Any], dict[str, Any]]:
    """This session's entry in the run's provenance (appended and saved now, so an interrupted session shows),
    and the workflows' edges the report draws phases from; returns (provenance, session)."""
    provenance = store.read_json("provenance.json") or prov.collect(config.hash, config.name)
    session: dict[str, Any] = {"started_utc": prov.utc_now(), "cells_run": 0}
    provenance.setdefault("sessions", []).append(session)
    store.write_json("provenance.json", provenance)
    save_edges(store.root, {w.label: config.workflow(w.label) for w in config.workflows})   # for the report's phases
    return provenance, session


def _run_cells_here(todo: list[Cell], config: ExperimentConfig, cost_model: CostModel, engines: Engines,
                    executor: Any, host: Any, pool: WarmPool, fit_history: pd.DataFrame | None,
                    store: ResultsStore, record: Callable[[Cell, Any], None], bar: Any) -> None:
    """Run the cells in this process, one after the other, each recorded as soon as it finishes.

    A cell's planlab error is raised again naming the cell; the cells finished before it stay
    saved, so running the same command again resumes after them.
    """
    for cell in todo:
        bar.set_postfix_str(cell.id, refresh=True)
        try:
            record(cell, run_cell(cell, config, config.workflow(cell.workflow), cost_model, engines,
                                  executor, host=host, pool=pool,
                                  save_run_dir=store.root / "runs" / cell.id,
                                  cost_model_history=fit_history))
        except PlanlabError as exc:   # name the cell; finished cells stay saved for a resume
            raise type(exc)(f"cell {cell.id}: {exc.what}", exc.fix) from exc


def _campaign_of(config: ExperimentConfig) -> Any:
    """The config's Ray campaign (``[run] backend = "ray"``), or None for the local runner."""
    if config.run.backend != "ray":
        return None
    from experiments.ray_campaign import RayCampaign

    return RayCampaign(config.run.address, config.run.host_resource, config.run.real_cells_per_host,
                       config.run.spread_real_cells)


def _run_cells_on_ray(campaign: Any, todo: list[Cell], config: ExperimentConfig, cost_model: CostModel,
                      engines: Engines, host: Any, fit_history: pd.DataFrame | None, store: ResultsStore,
                      record: Callable[[Cell, Any], None]) -> None:
    """Hand the cells to Ray; each finished one is recorded here, its saved run written under ``runs/CELL``."""
    from experiments.ray_campaign import CellRunner, split_saved_run

    if not todo:   # every cell was done: no cluster to join
        return
    runner = CellRunner(config, cost_model, engines, host, fit_history, config.has("execute"), run_cell,
                        _keep_alive_s)
    campaign.run(todo, runner, lambda cell, result: record(
        cell, (result[0], result[1], split_saved_run(result[2], store.root / "runs" / cell.id))))


def _finish(store: ResultsStore, provenance: dict[str, Any], session: dict[str, Any], limits: set[str],
            cells: list[Cell], notes: list[str]) -> Results:
    session["finished_utc"] = prov.utc_now()
    provenance["limits_enforced"] = sorted(limits)
    provenance["notes"] = sorted(set(provenance.get("notes", [])) | set(notes))
    store.write_json("provenance.json", provenance)
    return store.consolidate([c.id for c in cells])


@contextlib.contextmanager
def _maybe_executor(engines: Engines, config: ExperimentConfig, needed: bool) -> Iterator[Any]:
    """The executor (its server started once for the whole run), only when something will run for real."""
    if engines.executor is None or not needed:
        yield None
        return
    with engines.executor(config.execute) as executor:
        yield executor


# ====================================================================== the host
def _keep_alive_s(executor: Any) -> float:
    """How long the executor keeps an idle worker process (its settings' ``keep_alive_s``)."""
    settings = getattr(executor, "settings", None)
    return float(getattr(settings, "keep_alive_s", 30.0))


def _host_platform(config: ExperimentConfig, store: ResultsStore, executor: Any, cost_model: CostModel,
                   pool: WarmPool, bar: Any) -> Any:
    """The platform of this machine, calibrated on real runs once per results folder (None: not needed).

    Only when the config both simulates and executes on this host and names no
    platform file: then predictions are forecasts of this executor's runs, and the
    host's shared cores and start-ups decide them (:mod:`experiments.host_calibration`).
    """
    if not (config.has("simulate") and config.has("execute")) or config.simulate.platform:
        return None
    saved = store.root / "platform.toml"
    if saved.is_file():
        return Platform.from_toml(saved)
    if executor is None:
        return None
    workflows = {w.label: config.workflow(w.label) for w in config.workflows}
    fit = calibrate_host(workflows, config.catalog, cost_model, executor, pool,
                         progress=lambda run_id: bar.set_postfix_str(run_id, refresh=True))
    summary = fit.summary() | {"per_run": fit.per_run}
    store.write_json("host_calibration.json", summary)
    fit.platform.to_toml(saved, comment=(f"calibrated on {len(fit.per_run)} real runs of this experiment "
                                         f"(median makespan error {fit.error_before:.1%} before, "
                                         f"{fit.error_after:.1%} after)"))
    return fit.platform


# ====================================================================== profile phase
def _cost_model(config: ExperimentConfig, store: ResultsStore, executor: Any, jobs: list[ProfileJob], bar: Any,
                limits: set[str], notes: list[str], pool: WarmPool | None = None,
                ) -> tuple[CostModel, pd.DataFrame | None]:
    """Priors without a profile phase; else the model fitted on the profile runs (run now or saved earlier).

    Returns the model and the history it was fitted on (the median of each task's
    repetitions, :func:`experiments.profiling.profile_fit_history`; None for priors).
    ``pool`` learns the worker processes each profiling run leaves warm on the executor.
    """
    if not config.has("profile"):
        return CostModel(), None
    if not store.profile_done():
        history, runs = profile_workflows(config, executor, jobs, bar, limits, notes, save_runs=store.root / "runs",
                                          pool=pool)
        store.write_profile(history, runs)
        kind_spread(history).to_parquet(store.root / "profile" / "kind_spread.parquet", index=False)
    fit_input = profile_fit_history(store.profile_history())
    return (CostModel().fit(fit_input), fit_input) if len(fit_input) else (CostModel(), None)


# ====================================================================== progress
def _progress(total: int, done: int, enabled: bool) -> Any:
    """A bar with the current cell and the time left (tqdm), or a silent stand-in."""
    from tqdm import tqdm

    return tqdm(total=total, initial=done, disable=not enabled, unit="cell", file=sys.stderr, dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}] {postfix}")
