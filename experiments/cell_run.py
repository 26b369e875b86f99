"""One cell of an experiment, run in full: the matrix's cells, the engines, and plan -> simulate -> execute of one.

The runner (:mod:`experiments.runner`) drives the matrix - the store, the profile
phase, the host calibration, resume, the report - and hands each cell to
:func:`run_cell`, locally or on Ray (:mod:`experiments.ray_campaign`).  The engines
(:class:`Engines`) are the simulator's and the executor's entry points, passed in so
the live view can watch them and tests can replace them.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager

import pandas as pd

from executor import Executor, ExecutorSettings
from experiments import provenance as prov
from experiments.config import ExperimentConfig
from experiments.host_calibration import WarmPool
from experiments.pipeline import PlannedCell, monte_carlo_cell, plan_cell, relative_errors, simulate_cell
from experiments.profiling import limits_text, measured_history, threads_text
from experiments.saved_runs import save_run, workflow_reference
from planning.costs.cost_model import CostModel
from planning.sla import SLA
from planning.trace import Trace
from planning.workflow import Workflow
from simulator import Platform, monte_carlo, simulate

__all__ = ["Cell", "Engines", "cells_of", "default_platform", "run_cell"]


# ====================================================================== cells
@dataclass(frozen=True)
class Cell:
    """One point of the matrix."""

    workflow: str
    planner: str
    sla: SLA
    repetition: int
    seed: int

    @property
    def id(self) -> str:
        raw = f"{self.workflow}.{self.planner}.{self.sla.name}.r{self.repetition}"
        return re.sub(r"[^A-Za-z0-9_.+-]", "_", raw)

    def tags(self) -> dict[str, Any]:
        return {"cell_id": self.id, "workflow": self.workflow, "planner": self.planner, "sla": self.sla.name,
                "repetition": self.repetition}


def cells_of(config: ExperimentConfig) -> list[Cell]:
    """The matrix in run order: workflow, planner, SLA, repetition (cell r is seeded ``seed + r``)."""
    return [Cell(w.label, p.label, sla, r, config.seed + r)
            for w in config.workflows for p in config.planners for sla in config.slas
            for r in range(config.repetitions)]


# ====================================================================== engines
@dataclass
class Engines:
    """The simulator's and the executor's entry points (see :meth:`Engines.for_config`)."""

    simulate: Callable[..., Trace] | None = None
    monte_carlo: Callable[..., Any] | None = None
    platform: Callable[[CostModel, Any, SLA, bool], Any] | None = None
    executor: Callable[[Any], ContextManager[Any]] | None = None

    @classmethod
    def for_config(cls, config: ExperimentConfig) -> "Engines":
        """The simulator's and the executor's functions, for the phases the config asks for."""
        engines = cls()
        if config.has("simulate"):
            engines.simulate, engines.monte_carlo = simulate, monte_carlo
            engines.platform = default_platform
        if config.has("execute") or config.has("profile"):
            engines.executor = lambda settings: Executor(
                redis_url=settings.redis_url, settings=ExecutorSettings(**dict(settings.settings)))
        return engines


def default_platform(cost_model: CostModel, settings: Any, sla: SLA, sample: bool, host: Any = None) -> Any:
    """The simulator's platform: a calibrated TOML if given, else this run's host calibration, else the cost
    model's, with the config's overrides.

    None when the config sets none of them, so the simulator picks its own default: the
    cost model's platform at the plan's SLA (at the mean when sampling durations).
    """
    if settings.platform:
        return Platform.from_toml(settings.platform).with_(**dict(settings.params))
    if host is not None:
        return host.with_(**dict(settings.params))
    if settings.params:
        return Platform.from_cost_model(cost_model, "mean" if sample else sla, **dict(settings.params))
    return None


# ====================================================================== one cell
def run_cell(cell: Cell, config: ExperimentConfig, workflow: Workflow, cost_model: CostModel, engines: Engines,
             executor: Any, *, host: Any = None, pool: WarmPool | None = None,
             save_run_dir: Path | None = None, cost_model_history: pd.DataFrame | None = None,
             ) -> tuple[dict[str, pd.DataFrame], dict[str, Any], dict[str, str]]:
    """Plan, simulate and execute one cell; return its tables, its summary row and extra files.

    ``host``: the platform calibrated on this machine (:func:`_host_platform`), if any;
    ``pool``: the worker processes the executor holds warm, for the prediction (and
    updated by the real run); ``save_run_dir``: where the real run is saved for
    calibration (with the history ``cost_model`` was fitted on, so the loader rebuilds it exactly).
    """
    started = time.perf_counter()
    spec = next(p for p in config.planners if p.label == cell.planner)
    planned = plan_cell(spec.make(), workflow, config.catalog, cost_model, cell.sla, spec.protocol,
                        spec.optimizations, host.host_cores if host is not None else math.inf)
    plan = planned.plan
    tables, row = _plan_tables(cell, config, spec.name, planned, host)
    if config.has("simulate"):
        sim_tables, sim_row = _simulate(cell, config, planned, engines, host, pool)
        tables.update(sim_tables)
        row.update(sim_row)
    if config.has("execute"):
        real_tables, real_row = _run_for_real(cell, config, planned, executor, pool, save_run_dir,
                                              cost_model_history)
        tables.update(real_tables)
        row.update(real_row)
    row.update(relative_errors(row))
    row["wall_s"] = time.perf_counter() - started
    row["finished_utc"] = prov.utc_now()
    return tables, row, {"plan.json": plan.to_json()}


def _plan_tables(cell: Cell, config: ExperimentConfig, planner_name: str, planned: PlannedCell,
                 host: Any) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The planned schedule as a Trace's tables (``engine="plan"``) and the cell's summary row so far."""
    plan, workflow = planned.plan, planned.workflow
    trace = Trace.from_plan(plan, run_id=cell.id)
    tables: dict[str, pd.DataFrame] = {"plans": _tag(trace.tasks, cell), "plan_workers": _tag(trace.workers, cell)}
    row: dict[str, Any] = {"experiment": config.name, **cell.tags(), "planner_name": planner_name, "seed": cell.seed,
                           "tasks": len(workflow), "workers": int(len(plan.workers)), "feasible": bool(plan.feasible),
                           "dynamic": bool(plan.dynamic), "prior_tasks": int(plan.cost_model.get("prior_tasks", 0)),
                           "planned_makespan_s": plan.makespan_s, "planned_cost": plan.cost,
                           "lower_bound_s": max(plan.lower_bounds.values(), default=0.0), "slr": plan.slr,
                           "peak_cpus": plan.peak_cpus}
    if host is not None:   # a plan for this machine that asks for more CPUs at once than it has says so
        row["capacity_note"] = plan.capacity_note(host.host_cores)
    row.update(dict.fromkeys(("simulated_makespan_s", "simulated_cost", "sim_trace_makespan_s", "sim_mean_s",
                              "sim_p50_s", "sim_p95_s", "sim_forecast_s", "real_makespan_s", "real_cost",
                              "real_cold_starts"),
                             float("nan")))
    row["limits_enforced"] = None   # the host and thread columns exist only when the cell runs for real
    return tables, row


def _simulate(cell: Cell, config: ExperimentConfig, planned: PlannedCell, engines: Engines, host: Any,
              pool: WarmPool | None) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The deterministic simulation at the SLA and, for a percentile SLA, the Monte Carlo's statistic."""
    cost_model = planned.cost_model
    platform = engines.platform(cost_model, config.simulate, cell.sla, False, host)
    warm = {"warm_pool": pool.now()} if host is not None and pool is not None else {}
    sim = simulate_cell(planned, simulate_fn=engines.simulate, platform=platform, sample=False, seed=cell.seed,
                        run_id=cell.id, **warm)
    tables = {"sim_tasks": _tag(sim.tasks, cell), "sim_workers": _tag(sim.workers, cell)}
    row: dict[str, Any] = {"sim_trace_makespan_s": sim.makespan_s, "simulated_makespan_s": sim.makespan_s,
                           "simulated_cost": sim.cost, "sim_forecast_s": sim.makespan_s}
    if cell.sla.kind == "quantile":
        # the forecast of one run is the same plan at the mean; its percentile is a margin, checked by coverage
        at_mean = dataclasses.replace(planned, plan=dataclasses.replace(planned.plan, sla=SLA.parse("mean")))
        row["sim_forecast_s"] = simulate_cell(
            at_mean, simulate_fn=engines.simulate, sample=False, seed=cell.seed, run_id=cell.id,
            platform=engines.platform(cost_model, config.simulate, at_mean.plan.sla, False, host), **warm).makespan_s
        base = config.simulate.seed if config.simulate.seed is not None else config.seed
        mc = monte_carlo_cell(planned, monte_carlo_fn=engines.monte_carlo, replications=config.simulate.replications,
                              seed=base + cell.repetition,
                              platform=engines.platform(cost_model, config.simulate, cell.sla, True, host),
                              processes=config.simulate.processes, **warm)
        stats = mc.summary(cell.sla)
        row.update(simulated_makespan_s=float(stats["makespan_s"]), simulated_cost=float(stats["cost"]),
                   sim_mean_s=float(stats["makespan_mean_s"]), sim_p50_s=float(stats["makespan_p50_s"]),
                   sim_p95_s=float(stats["makespan_p95_s"]))
        tables["montecarlo"] = _tag(pd.DataFrame(mc.frame), cell)
    return tables, row


def _run_for_real(cell: Cell, config: ExperimentConfig, planned: PlannedCell, executor: Any,
                  pool: WarmPool | None, save_run_dir: Path | None,
                  cost_model_history: pd.DataFrame | None) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Execute the cell's plan between two host snapshots; its tables, its summary columns, its saved run."""
    workflow, plan = planned.workflow, planned.plan
    result, run_host, history = measured_history(executor, workflow, plan, cell.id, "execute", pool,
                                                 protocol=planned.protocol)
    real = result.trace
    meta = getattr(result, "meta", {}) or {}
    if save_run_dir is not None:
        save_run(save_run_dir, workflow=workflow, workflow_ref=workflow_reference(config, cell.workflow),
                 plan=plan, trace=real, cost_model=planned.cost_model, settings=real.meta.get("settings", {}),
                 sla=cell.sla, catalog_spec=config.catalog_spec, phase="cell", cost_model_history=cost_model_history)
    tables = {"real_tasks": _tag(real.tasks, cell), "real_workers": _tag(real.workers, cell), "history": history}
    return tables, {"real_makespan_s": real.makespan_s, "real_cost": real.cost, "real_cold_starts": real.cold_starts,
                    "limits_enforced": limits_text(meta), "threads": threads_text(meta), **run_host.columns()}


def _tag(frame: pd.DataFrame, cell: Cell) -> pd.DataFrame:
    out = frame.copy()
    for i, (key, value) in enumerate(cell.tags().items()):
        if key in out.columns:
            out = out.drop(columns=key)
        out.insert(i, key, value)
    return out
