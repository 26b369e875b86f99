"""The real side of the fidelity benchmark: its workflows, the profile phase, plans and repeated real runs.

Used by ``bench_fidelity.py`` (run as a script, so this imports as ``_fidelity_runs``).  Every real
run starts with an empty warm pool (:func:`drain_warm_pool`), the condition the simulator assumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd

from executor import Executor
from executor import keys as executor_keys
from experiments.config import scaled_workflow
from experiments.profiling import fit_profile_model
from planning.costs.cost_model import CostModel
from planning.errors import PlanError, PlanlabError
from planning.planners import get_planner
from planning.sla import SLA
from planning.sources.generators import generate
from planning.sources.loading import load_from_python, load_workflow
from planning.trace import Trace
from planning.workflow import Workflow

ROOT = Path(__file__).resolve().parents[1]
EPIGENOMICS = ROOT / "experiments" / "data" / "epigenomics-chameleon-hep-1seq-100k-001.json"
RANDOM_DURATIONS = ROOT / "examples" / "random_durations.py"
WORKFLOWS = ("five_branches", "epigenomics", "fork_join", "random_layered", "random_durations")
SIZED = ("fork_join", "random_layered")
PLANNERS = ("uniform", "critical-path", "heft", "wukong")
#: Planners that need a profile to be named get the 1-CPU one.
PLANNER_PARAMS = {"uniform": {"profile": "medium"}, "wukong": {"profile": "medium"}}
Say = Callable[[str], None]


# ---------------------------------------------------------------- workflows
@dataclass(frozen=True)
class BenchWorkflow:
    """One workflow of the benchmark at one size (``size`` = its task count for unsized workflows)."""

    name: str
    size: int
    workflow: Workflow

    @property
    def label(self) -> str:
        return f"{self.name}-{self.size}"


def bench_workflows(names: Sequence[str], sizes: Sequence[int]) -> list[BenchWorkflow]:
    """The benchmark's workflows: sized ones at each size, the others once."""
    out = []
    for name in names:
        if name in SIZED:
            for size in sizes:
                wf = generate("fork_join", width=max(1, size - 2)) if name == "fork_join" \
                    else generate("random_layered", tasks=size)
                out.append(BenchWorkflow(name, size, wf))
            continue
        if name == "five_branches":
            wf = generate("five_branches")
        elif name == "epigenomics":
            wf = scaled_workflow(load_workflow(EPIGENOMICS), 0.004, 0.01)   # the quickstart's replay
        elif name == "random_durations":
            wf = load_from_python(RANDOM_DURATIONS, "workflow")
        else:
            wf = load_workflow(name)   # any other spec (gen:..., file.py:name, JSON) as one workflow
        out.append(BenchWorkflow(name, len(wf), wf))
    return out


# ---------------------------------------------------------------- real runs
@dataclass
class RealRun:
    """One real run: its trace and the host's 1-minute load just before it."""

    repetition: int
    trace: Trace
    load1: float
    processes: int

    @property
    def makespan_s(self) -> float:
        return float(self.trace.makespan_s)


def load1() -> float:
    """The 1-minute load average (``/proc/loadavg``)."""
    return float(os.getloadavg()[0])


def drain_warm_pool(executor: Executor, expected_pids: set[int], timeout_s: float = 3.0) -> int:
    """Stop the executor launcher's idle (warm) worker processes, so the next run starts with none.

    The last workers of a run put themselves on the idle lists just after the run returns, so this
    first waits (up to ``timeout_s``) for ``expected_pids``; a process is stopped only after it was
    taken off its idle list here (nothing else can hand it work then).  Returns how many it stopped.
    """
    client, pattern = executor.client, executor_keys.idle_list(executor.launcher_id, "*")

    def idle() -> dict[bytes, list[bytes]]:
        return {key: client.lrange(key, 0, -1) for key in client.scan_iter(match=pattern, count=1000)}

    deadline = time.monotonic() + timeout_s
    lists = idle()
    while not expected_pids <= {int(p) for v in lists.values() for p in v} and time.monotonic() < deadline:
        time.sleep(0.005)
        lists = idle()
    stopped = 0
    for key, pids in lists.items():
        for raw in pids:
            if client.lrem(key, 0, raw):
                try:
                    os.kill(int(raw), signal.SIGKILL)
                    stopped += 1
                except ProcessLookupError:
                    pass
    return stopped


def run_repeatedly(executor: Executor, workflow: Workflow, plan: Any, repetitions: int, run_id: str,
                   say: Say, measure_contention: bool | None = None) -> list[RealRun]:
    """``repetitions`` real runs of ``plan``, each from an empty warm pool (``measure_contention``: as
    :meth:`executor.Executor.run`)."""
    options = {} if measure_contention is None else {"measure_contention": measure_contention}
    runs, pids = [], set()
    for r in range(repetitions):
        drain_warm_pool(executor, pids)
        load = load1()
        trace = executor.run(workflow, plan, run_id=f"{run_id}.r{r}.{os.getpid()}.{time.time_ns()}", **options).trace
        pids = {int(p) for p in trace.workers.get("pid", []) if str(p).isdigit()}
        runs.append(RealRun(r, trace, load, len(pids)))
        say(f"    r{r}: real {trace.makespan_s:.3f} s, {len(pids)} processes, load {load:.2f}")
    drain_warm_pool(executor, pids)
    return runs


def profile_cost_model(executor: Executor, bw: BenchWorkflow, catalog: Any, repetitions: int,
                       say: Say) -> tuple[CostModel, pd.DataFrame, dict[str, Any]]:
    """The runner's profile phase for one workflow: every task on one worker, on each profile, each task's wait
    for a core measured; fit as the runner does (:func:`experiments.profiling.fit_profile_model`: the median of
    the repetitions of each task's time alone).

    Repetitions are outermost, as the runner's (:func:`experiments.profiling.profile_jobs`): every profile once,
    then every profile again, so a slow spell of the host lands on one run of each profile, not on all the runs
    of one (one run per profile let a single slow run of ``medium`` make five_branches' plans 18 % too slow).

    Returns the fitted cost model, the (raw) history rows and a summary of the runs.
    """
    plans = profile_plans(bw, catalog, say)
    histories, spans = [], {name: [] for name in plans}
    for r in range(repetitions):
        for name, plan in plans.items():
            (run,) = run_repeatedly(executor, bw.workflow, plan, 1, f"profile.{bw.label}.{name}.{r}",
                                    lambda _msg: None, measure_contention=True)
            histories.append(run.trace.to_history(bw.workflow.name, bw.workflow.structure_hash()))
            spans[name].append(run.makespan_s)
    for name, seconds in spans.items():
        say(f"  profile {name}: {', '.join(f'{s:.2f}' for s in seconds)} s")
    history = pd.concat(histories, ignore_index=True)
    info = {"runs_per_profile": repetitions, "makespans_s": spans, "rows": len(history)}
    return fit_profile_model(history), history, info


def profile_plans(bw: BenchWorkflow, catalog: Any, say: Say) -> dict[str, Any]:
    """Each profile's single-worker ``uniform`` plan of ``bw``; a profile the workflow does not fit is skipped."""
    plans = {}
    for profile in catalog:
        try:
            plans[profile.name] = get_planner("uniform", profile=profile.name, workers="single").plan(
                bw.workflow, catalog, CostModel(), SLA.parse("mean"))
        except PlanlabError as exc:   # e.g. a task needs more memory than this profile has
            say(f"  profile {profile.name}: skipped ({exc.what})")
    return plans


# ---------------------------------------------------------------- cells
@dataclass
class Cell:
    """One workflow x planner x SLA and its plan (real runs are kept per plan: identical plans share them)."""

    bench: BenchWorkflow
    planner: str
    sla: SLA
    plan: Any
    plan_key: str
    same_plan_as: str | None = None

    @property
    def id(self) -> str:
        return f"{self.bench.label}.{self.planner}.{self.sla.name}"


def plan_key(plan: Any) -> str:
    """Identical assignment, profiles and order -> identical key (so identical plans share real runs)."""
    content = {"workers": plan.worker_of, "profiles": plan.worker_profile, "sequence": plan.sequence(),
               "dynamic": bool(plan.dynamic)}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def planner_from_spec(spec: str) -> Any:
    """A planner from ``NAME`` or ``NAME:key=value;key=value`` (e.g. ``heft:host_cores=local``).

    Values that read as numbers are numbers; ``uniform`` and ``wukong`` default to the 1-CPU profile.
    """
    name, _, text = spec.partition(":")
    params: dict[str, Any] = dict(PLANNER_PARAMS.get(name, {}))
    for item in filter(None, (part.strip() for part in text.split(";"))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PlanError(f"planner spec {spec!r}: {item!r} is not key=value", "write NAME:key=value;key=value")
        params[key.strip()] = _number_or_text(value.strip())
    return get_planner(name, **params)


def _number_or_text(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def make_cells(bw: BenchWorkflow, planners: Sequence[str], slas: Sequence[SLA], cost_model: CostModel,
               catalog: Any, failures: dict[str, str]) -> list[Cell]:
    """Every planner x SLA of ``bw``; a planner that cannot plan it is noted in ``failures`` and skipped."""
    cells: list[Cell] = []
    first_of: dict[str, str] = {}
    for name in planners:
        for sla in slas:
            try:
                plan = planner_from_spec(name).plan(bw.workflow, catalog, cost_model, sla)
            except PlanlabError as exc:
                failures[f"{bw.label}.{name}.{sla.name}"] = f"planning failed: {exc.one_line()}"
                continue
            cell = Cell(bw, name, sla, plan, plan_key(plan))
            cell.same_plan_as = first_of.get(cell.plan_key)
            first_of.setdefault(cell.plan_key, cell.id)
            cells.append(cell)
    return cells


@dataclass
class WorkflowRuns:
    """One workflow's cost model (and the profile history it was fitted on), cells and real runs.

    ``runs`` is keyed by plan (:func:`plan_key`): cells with identical plans share their runs.
    """

    bench: BenchWorkflow
    cost_model: CostModel
    history: pd.DataFrame
    profile: dict[str, Any]
    cells: list[Cell]
    runs: dict[str, list[RealRun]]
    seconds: float
