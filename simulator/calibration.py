"""Calibration: fit the platform's overhead terms so simulated makespans match observed ones.

Observations are real runs: WfFormat executions (replayed by the ``recorded``
pseudo-planner: recorded machines and runtimes, so what the simulator misses is
the workflow system's overhead) or executor traces (a plan, its trace, and the
trace's measured execution times as durations).  The fit minimises the median
relative makespan error ``|simulated - real| / real`` over the observations:

1. a linear start: each fitted parameter's effect on every makespan is measured
   at one unit, and the least-absolute-relative-deviation fit of that linear model
   (non-negative parameters) is a linear programme (``scipy.optimize.linprog``);
2. Nelder-Mead (``scipy.optimize.minimize``) on the simulator itself from there,
   with parameters squared so they stay non-negative.

The fitted terms default to the ones FACTS.md found to matter in real executions:
a workflow start-up, a serial per-task dispatch, a per-level delay and serial
staging per GB (:data:`WORKFLOW_SYSTEM_TERMS`); for executor traces the
serverless terms (:data:`EXECUTOR_TERMS`).  A calibrated platform is only worth
what it predicts: ``held_out`` refits on the *other* executions of each
observation's group (by default its application) and predicts it.
"""

from __future__ import annotations

import gzip
import math
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import linprog, minimize

from planning.errors import ConfigError, PlanlabError
from planning.workflow import Workflow
from simulator.calibration_baselines import Features
from simulator.model import CompiledModel
from simulator.platform import Platform
from simulator.simulate import compile_plan, run_once

#: Overheads of workflow systems (Pegasus, Makeflow...) that FACTS.md found to matter.
WORKFLOW_SYSTEM_TERMS = ("workflow_start_s", "dispatch_s", "level_delay_s", "staging_s_per_GB")
#: Terms of planlab's executor (serverless-style workers).
EXECUTOR_TERMS = ("cold_start_s", "invoke_s", "coordination_s", "task_overhead_s", "storage_latency_s")
_NOT_FITTABLE = {"keep_alive_s", "warm_start_s"}


@dataclass
class Observation:
    """One observed run: what to simulate and the makespan it really took."""

    name: str
    workflow: Workflow
    plan: Any
    real_makespan_s: float
    durations: Mapping[str, float] | None = None
    group: str = ""
    system: str = ""
    cost_model: Any = None
    _model: CompiledModel | None = field(default=None, repr=False)

    @property
    def model(self) -> CompiledModel:
        if self._model is None:
            from planning.cost_model import CostModel

            self._model = compile_plan(self.workflow, self.plan, self.cost_model or CostModel(),
                                       durations=self.durations)
        return self._model

    def simulate(self, platform: Platform) -> float:
        """The simulated makespan on ``platform`` (deterministic)."""
        return run_once(self.model, platform, record=False).makespan_s

    @classmethod
    def from_trace(cls, workflow: Workflow, plan: Any, trace: Any, *, cost_model: Any = None, name: str | None = None,
                   group: str | None = None) -> "Observation":
        """An executor (or any engine's) trace: its measured execution times replayed on the plan."""
        t = trace.tasks
        durations = dict(zip(t["task_id"], (t["exec_end_s"] - t["exec_start_s"]).clip(lower=0.0)))
        return cls(name or trace.run_id, workflow, plan, float(trace.makespan_s), durations,
                   group or workflow.name, str(trace.engine), cost_model)

    @classmethod
    def from_execution(cls, source: "str | Path | Workflow", *, planner: str = "recorded", catalog: Any = "local",
                       sla: str = "mean", cost_model: Any = None) -> "Observation":
        """A real WfFormat execution (a file or an imported workflow) with its recorded makespan."""
        from planning.cost_model import CostModel
        from planning.planners import get_planner
        from planning.planners.recorded import recorded_makespan
        from planning.profiles import load_catalog

        if isinstance(source, Workflow):
            workflow, name = source, str(source.metadata.get("source_file") or source.name)
        else:
            workflow, name = read_execution(source), str(source)
        cost_model = cost_model or CostModel()
        plan = get_planner(planner).plan(workflow, load_catalog(catalog), cost_model, sla)
        stem = execution_name(name)
        return cls(stem, workflow, plan, recorded_makespan(workflow), None, application_of(stem),
                   str(workflow.metadata.get("workflow_system") or ""), cost_model)


    def features(self) -> Features:
        """What the analytic baselines (:mod:`simulator.calibration_baselines`) know about this run."""
        from planning.planners.recorded import staged_bytes

        wf = self.workflow
        stage_in, stage_out = staged_bytes(wf)
        staged = float(stage_in.sum() + stage_out.sum() + wf.topology().edge_bytes.sum())
        return Features(self.simulate(Platform.zero()), float(wf.critical_path()[0]), wf.depth, len(wf), staged / 1e9)


def read_execution(source: str | Path) -> Workflow:
    """A WfFormat execution file, plain (``.json``) or gzip-compressed (``.json.gz``, as WfInstances ships them)."""
    from planning.wfformat import read_wfformat

    path = Path(source)
    if not path.exists():
        raise ConfigError(f"execution file {str(path)!r} does not exist", "give WfFormat JSON files (.json or .json.gz)")
    if path.suffix != ".gz":
        return read_wfformat(path)
    with tempfile.TemporaryDirectory(prefix="planlab-execution-") as tmp:
        plain = Path(tmp) / path.name[:-3]
        try:
            with gzip.open(path, "rb") as packed, open(plain, "wb") as out:
                shutil.copyfileobj(packed, out)
        except (OSError, EOFError) as exc:
            raise ConfigError(f"{path}: not a readable gzip file ({exc})", "give .json.gz files written by gzip") from None
        workflow = read_wfformat(plain)
    workflow.metadata["source_file"] = str(path)
    return workflow


def execution_name(path: str | Path) -> str:
    """A file's execution name: its name without ``.json`` / ``.json.gz``."""
    name = Path(path).name
    for suffix in (".gz", ".json"):
        name = name[: -len(suffix)] if name.endswith(suffix) else name
    return name


def application_of(name: str) -> str:
    """The application of an execution named like WfInstances files: ``srasearch-chameleon-10a-001`` -> ``srasearch``."""
    return execution_name(name).split("-")[0].lower()


def size_of(name: str) -> str:
    """The problem size of a WfInstances execution: its name without the application, the site and the run number.

    ``srasearch-chameleon-10a-003`` -> ``10a``; ``epigenomics-chameleon-hep-1seq-50k-001`` ->
    ``hep-1seq-50k``; ``helloworld-chain-5-chameleon`` -> ``chain-5``.  Executions of one size
    are repeats of one configuration (their spread is the noise floor).
    """
    parts = execution_name(name).split("-")[1:]
    if parts and re.fullmatch(r"\d{3}", parts[-1]):
        parts = parts[:-1]
    return "-".join(p for p in parts if p.lower() != "chameleon").lower() or execution_name(name).lower()


@dataclass
class CalibrationResult:
    """The fitted platform, errors before / after / held out, and one row per observation."""

    platform: Platform
    base: Platform
    fitted: tuple[str, ...]
    error_before: float
    error_after: float
    held_out_error: float
    table: pd.DataFrame

    def summary(self) -> dict[str, Any]:
        """JSON-able: the errors (median relative makespan errors, fractions) and the fitted values."""
        by_group = (self.table.groupby("group")[["error_before", "error_after", "error_held_out"]].median()
                    .to_dict(orient="index"))
        return {"error_before": self.error_before, "error_after": self.error_after,
                "held_out_error": self.held_out_error, "observations": int(len(self.table)),
                "fitted": {k: getattr(self.platform, k) for k in self.fitted},
                "platform": self.platform.to_dict(), "by_group": by_group,
                "runs": self.table.to_dict(orient="records")}


def calibrate(workflows_or_files: Iterable[Any], *, planner: str = "recorded", fit: Sequence[str] | None = None,
              base: Platform | None = None, held_out: bool = True,
              group: Callable[[Observation], str] | Mapping[str, str] | None = None,
              catalog: Any = "local", sla: str = "mean", cost_model: Any = None,
              max_evaluations: int | None = None) -> CalibrationResult:
    """Fit ``fit`` platform terms to observed makespans; see the module docstring.

    ``workflows_or_files``: WfFormat paths, imported :class:`Workflow` values with a
    recorded makespan, or :class:`Observation` values (e.g.
    :meth:`Observation.from_trace` for executor traces).  ``base`` is the platform
    before fitting (default :meth:`Platform.zero`): its error is ``error_before``.
    ``group`` names each observation's group for the held-out error (default: its
    application); the held-out error is the median over observations whose group
    has another one.
    """
    observations = [o if isinstance(o, Observation) else
                    Observation.from_execution(o, planner=planner, catalog=catalog, sla=sla, cost_model=cost_model)
                    for o in workflows_or_files]
    if not observations:
        raise ConfigError("nothing to calibrate on", "give at least one execution file or observation")
    if group is not None:
        for o in observations:
            o.group = group(o) if callable(group) else group.get(o.name, o.group)
    traces = any(o.durations is not None for o in observations)
    names = tuple(fit) if fit is not None else (EXECUTOR_TERMS if traces else WORKFLOW_SYSTEM_TERMS)
    bad = [n for n in names if n not in Platform.__dataclass_fields__ or n in _NOT_FITTABLE]
    if bad or not names:
        raise ConfigError(f"cannot fit platform term {bad[0] if bad else '(none)'}",
                          f"fit some of {', '.join(sorted(set(Platform.__dataclass_fields__) - _NOT_FITTABLE))}")
    base = base if base is not None else Platform.zero()
    real = np.array([o.real_makespan_s for o in observations])
    before = np.array([o.simulate(base) for o in observations])
    platform = fit_platform(observations, base, names, max_evaluations=max_evaluations)
    after = np.array([o.simulate(platform) for o in observations])
    held = np.full(len(observations), np.nan)
    if held_out:
        for i, o in enumerate(observations):
            siblings = [s for s in observations if s is not o and s.group == o.group]
            if siblings:
                held[i] = o.simulate(fit_platform(siblings, base, names, max_evaluations=max_evaluations))
    table = pd.DataFrame({
        "name": [o.name for o in observations], "group": [o.group for o in observations],
        "system": [o.system for o in observations], "tasks": [len(o.workflow) for o in observations],
        "real_s": real, "before_s": before, "after_s": after, "held_out_s": held,
        "error_before": np.abs(before - real) / real, "error_after": np.abs(after - real) / real,
        "error_held_out": np.abs(held - real) / real,
    })
    held_errors = table["error_held_out"].dropna()
    return CalibrationResult(platform, base, names, float(table["error_before"].median()),
                             float(table["error_after"].median()),
                             float(held_errors.median()) if len(held_errors) else float("nan"), table)


# ---------------------------------------------------------------------- the fit
def _to_value(name: str, theta: float) -> float:
    """Fitted coordinate -> platform value (bandwidth is fitted as seconds per GB)."""
    if name == "storage_bandwidth_Bps":
        return math.inf if theta <= 0 else 1e9 / theta
    return theta


def _with(base: Platform, names: Sequence[str], theta: np.ndarray) -> Platform:
    return base.with_(**{n: _to_value(n, float(t)) for n, t in zip(names, theta)})


def _start(base: Platform, names: Sequence[str]) -> np.ndarray:
    out = []
    for n in names:
        value = getattr(base, n)
        out.append((0.0 if math.isinf(value) else 1e9 / value) if n == "storage_bandwidth_Bps" else value)
    return np.array(out, float)


def fit_platform(observations: Sequence[Observation], base: Platform, names: Sequence[str], *,
                 max_evaluations: int | None = None) -> Platform:
    """The platform (``base`` with ``names`` refitted) minimising the median relative makespan error."""
    real = np.array([o.real_makespan_s for o in observations])
    if np.any(~(real > 0)):
        raise PlanlabError("an observation has no positive real makespan", "calibrate on runs that finished")
    k = len(names)
    theta0 = _start(base, names)

    def makespans(theta: np.ndarray) -> np.ndarray:
        platform = _with(base, names, theta)
        return np.array([o.simulate(platform) for o in observations])

    sim0 = makespans(theta0)
    # 1. linear start: effect of one unit of each term, then least absolute relative deviation (an LP)
    unit = np.ones(k)
    effect = np.empty((len(real), k))
    for j in range(k):
        step = theta0.copy()
        step[j] += unit[j]
        effect[:, j] = (makespans(step) - sim0) / unit[j]
    n = len(real)
    a_eq = np.hstack([effect / real[:, None], -np.eye(n), np.eye(n)])
    b_eq = (real - sim0) / real
    lp = linprog(np.concatenate([np.zeros(k), np.ones(2 * n)]), A_eq=a_eq, b_eq=b_eq,
                 bounds=[(0, None)] * (k + 2 * n), method="highs")
    delta = lp.x[:k] if lp.success else np.zeros(k)
    start = theta0 + delta

    # 2. Nelder-Mead on the simulator; theta = theta0 + scale * x**2 keeps terms >= theta0 >= 0
    scale = np.where(delta > 0, delta, np.maximum(np.abs(theta0), 1.0))

    def objective(x: np.ndarray) -> float:
        rel = np.abs(makespans(theta0 + scale * x * x) - real) / real
        return float(np.median(rel) + 1e-3 * rel.mean())

    x0 = np.sqrt((start - theta0) / scale)
    budget = max_evaluations or 60 * k + 40
    best = minimize(objective, x0, method="Nelder-Mead",
                    options={"maxfev": budget, "xatol": 1e-4, "fatol": 1e-6,
                             "initial_simplex": _simplex(x0)})
    x = best.x if best.fun <= objective(x0) else x0
    return _with(base, names, theta0 + scale * x * x)


def _simplex(x0: np.ndarray) -> np.ndarray:
    """A simplex around ``x0`` that also reaches zero in each coordinate (a term may not matter)."""
    k = len(x0)
    simplex = np.tile(x0, (k + 1, 1)).astype(float)
    for j in range(k):
        simplex[j + 1, j] = x0[j] * 0.5 if x0[j] > 0 else 0.5
    return simplex
