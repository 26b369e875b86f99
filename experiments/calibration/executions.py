"""Calibration: fit the platform's overhead terms so simulated makespans match observed ones.

Observations are real runs: WfFormat executions (replayed by the ``recorded``
pseudo-planner: recorded machines and runtimes, so what the simulator misses is
the workflow system's overhead; plain ``.json`` or WfInstances' ``.json.gz``) or
executor traces (a plan, its trace, and the trace's measured execution times as
durations).  The fit (:mod:`experiments.calibration.fit`) minimises the relative
makespan error ``|simulated - real| / real``; for real executions it chooses which
of the workflow-system terms FACTS.md found to matter (:data:`WORKFLOW_SYSTEM_TERMS`:
a start-up, a serial per-task dispatch, a per-level delay, serial staging per GB,
and on request a serial per-task start on each machine, and the staging's extra
rates for external inputs and written outputs)
to keep by inner cross-validation, starts from the cross-application prior of
:mod:`experiments.calibration.prior` when few sizes are known, and fits one platform
per machine family.  Replays run as many tasks per recorded core as the makespans
say the machines ran (:mod:`experiments.calibration.slots`: the recorded count unless
another fits clearly better).  The simpler four-term formula of
:mod:`experiments.calibration.baselines` predicts instead unless the simulator's inner held-out
predictions are significantly better (:mod:`experiments.calibration.model_choice`; ``model`` says
which): it is where the overheads add to the execution instead of overlapping it.  Executor traces fit the serverless terms
(:data:`EXECUTOR_TERMS`), all of them.

A calibrated platform is only worth what it predicts: ``held_out`` predicts each
size of an application by a calibration on its *other* sizes (leave one size out:
what a user asks of it), beside the analytic baselines of
:mod:`experiments.calibration.baselines` held out the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from experiments.calibration.baselines import BASELINES, Features, fit_baselines
from experiments.calibration.fit import Fitted, fit_platform, folds_by
from experiments.calibration.model_choice import FORMULA, SIMULATOR, choose_model, richer_if_better
from experiments.calibration.naming import application_of, execution_name, read_execution, size_of
from experiments.calibration.parallel_folds import default_workers, map_folds, map_halves
from experiments.calibration.prior import resolve_prior
from experiments.calibration.slots import fit_with_slots
from planning.errors import ConfigError, PlanlabError
from planning.workflow import Workflow
from simulator.model import CompiledModel
from simulator.platform import Platform
from simulator.makespan_replay import makespan
from simulator.simulate import compile_plan

#: Overheads of workflow systems (Pegasus, Makeflow...) that FACTS.md found to matter.
WORKFLOW_SYSTEM_TERMS = ("workflow_start_s", "dispatch_s", "level_delay_s", "staging_s_per_GB")
#: Candidates on request (``staging_split=True``): the serial stager's extra rates per kind of bytes
#: (:mod:`simulator.staging`: external inputs in, written outputs out).  Not a default: in place of the one rate,
#: leave-one-size-out (load 6) kept the in-rate for 1000genome (6.7 -> 5.8 %) and the out-rate for epigenomics
#: (10.0 -> 6.2 %), but srasearch (no external inputs) went 27 -> 35-39 %, bwa 9 -> 28 %, and blast picked the
#: in-rate on its database that some repeats record as 5 GB and others as 0 (12 -> 29 %); beside the one rate
#: (six candidates) srasearch's 50a size was predicted +460 % by an out-rate queue that saturates.  Chosen per fit
#: (``staging_split="auto"``: kept only when significantly better held out), blast 26.4 -> 27.2 %, bwa 7.3 -> 7.4 %,
#: srasearch 14.5 % unchanged, at twice the fit time (calibration.json, label ``staging-split-auto``).
STAGING_SPLIT_TERMS = ("stage_in_s_per_GB", "stage_out_s_per_GB")
#: A fifth candidate on request (``machine_starter=True``): each machine's serial starter (:mod:`simulator.dispatch`).
#: Not a default: on WfInstances it moved blast's leave-one-size-out error from 41 % to about 37 % but, nearly
#: collinear with ``dispatch_s`` where tasks spread evenly over machines, mispredicted a single-machine cycles run
#: (benchmarks/results/calibration.json, label ``machine-starter``).
MACHINE_STARTER_TERM = "machine_dispatch_s"
#: A candidate on request (``background_runs=True``): what each other run of the workflow system already running at
#: a run's submission adds to the serial dispatch of its tasks (``Platform.background_dispatch_s``; the count is each
#: run's ``Platform.background_runs``, :func:`experiments.calibration.concurrency.running_at_start`).  Offered
#: always, it brought seismology from 17.7 to 10.0 % leave-one-size-out but 1000genome from 5.5 to 6.5 %
#: (benchmarks/results/calibration.json, label ``background-runs``).  The default (``"auto"``) counts the runs but
#: gives only the four-term formula its fifth term, where its inner cross-validation keeps it: the simulator's
#: candidate changed no application the simulator predicts (it was kept only where the formula predicted) and its
#: slope cost one more simulation per execution in every fit.  Measured leave-one-size-out (label ``auto-full`` of
#: the benchmark, load 5-9): seismology 17.7 -> 13.5 % (the fifth term kept in 6 of 10 fits), soykb 7.7 -> 7.6 %
#: (4 of 9), every other application unchanged (never kept); about 35 ms of linear programmes per fit.  A user
#: predicting a run says how many others will run beside it (``Observation.background_runs``; 0 otherwise).
BACKGROUND_TERM = "background_dispatch_s"
#: Terms of planlab's executor (serverless-style workers).
EXECUTOR_TERMS = ("cold_start_s", "invoke_s", "coordination_s", "task_overhead_s", "storage_latency_s")
_NOT_FITTABLE = {"keep_alive_s", "warm_start_s", "background_runs"}


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
    family: str = ""
    #: other runs of its workflow system already running when it was submitted (``Platform.background_runs``:
    #: they matter only on a platform with ``background_dispatch_s``)
    background_runs: float = 0.0
    _model: CompiledModel | None = field(default=None, repr=False)
    _replays: dict[float, "Observation"] = field(default_factory=dict, repr=False)
    _features: Features | None = field(default=None, repr=False)
    _makespans: dict[Platform, float] = field(default_factory=dict, repr=False)
    _schedules: dict[float, float] = field(default_factory=dict, repr=False)

    @property
    def slots_per_core(self) -> float:
        """Task slots per recorded core of its replay (the ``recorded`` plan's parameter; 1 otherwise)."""
        return float((getattr(self.plan, "params", None) or {}).get("slots_per_core", 1.0))

    def with_slots_per_core(self, slots_per_core: float) -> "Observation":
        """The same execution replayed with ``slots_per_core`` slots per recorded core (re-planned by the
        ``recorded`` planner, kept for the next call); itself when that is its own, or not a replay."""
        if slots_per_core == self.slots_per_core or getattr(self.plan, "planner", "") != "recorded":
            return self
        if slots_per_core not in self._replays:
            from planning.planners import get_planner

            plan = get_planner("recorded", slots_per_core=slots_per_core).replay(
                self.workflow, self.plan.catalog, self.cost_model, self.plan.sla)
            self._replays[slots_per_core] = Observation(self.name, self.workflow, plan, self.real_makespan_s,
                                                        self.durations, self.group, self.system, self.cost_model,
                                                        self.family)
        replay = self._replays[slots_per_core]
        # what may change after reading (a regrouping, a real makespan set later) follows the execution
        replay.name, replay.real_makespan_s, replay.group, replay.family = (self.name, self.real_makespan_s,
                                                                            self.group, self.family)
        replay.background_runs = self.background_runs
        return replay

    def replay_makespan(self, slots_per_core: float) -> float:
        """The overhead-free makespan of its replay with ``slots_per_core`` (the ``recorded`` list schedule,
        :func:`planning.planners.recorded.replay_makespan`), remembered per count.

        Why: the slots screen (:func:`experiments.calibration.slots.can_matter`) asks it of every training
        execution in every fit of a command - epigenomics: 384 list schedules for 24 executions, a sixth of the
        command's CPU - and the answer depends only on the execution and the count."""
        if slots_per_core not in self._schedules:
            from planning.planners.recorded import replay_makespan

            self._schedules[slots_per_core] = replay_makespan(self.workflow, slots_per_core)
        return self._schedules[slots_per_core]

    def forget_simulations(self) -> None:
        """Drop the remembered makespans (its replays' too): what a benchmark does to time each calibration as
        a user's first one."""
        self._makespans.clear()
        for replay in self._replays.values():
            replay._makespans.clear()

    @property
    def model(self) -> CompiledModel:
        if self._model is None:
            from planning.costs.cost_model import CostModel

            self._model = compile_plan(self.workflow, self.plan, self.cost_model or CostModel(),
                                       durations=self.durations)
        return self._model

    def simulate(self, platform: Platform) -> float:
        """The simulated makespan on ``platform`` (deterministic, so remembered per platform: a calibration
        asks for the same point many times - every fold's fit starts from the same platform and its steps, the
        slots screen and the held-out folds refit the same executions; about a third of srasearch's
        simulations were repeats).  Only the makespan is computed (:func:`simulator.makespan_replay.makespan`: a
        replay on a workflow-system platform without the general loop's trace, its makespan bit for bit).

        A replay's start-up delay (``workflow_start_s``) shifts the whole run: every task, transfer and
        overhead happens that much later and nothing in a replay depends on the clock's origin.  So a replay
        is simulated with no start-up and the delay added (:func:`start_free`): the fit's step of the start-up
        term, and every point that differs from a remembered one only by it, costs no simulation (epigenomics'
        command: 7 % of its simulations).  Equal to simulating the delay up to rounding (measured on a sixth of
        the corpus at three delays: within 5e-14 of the makespan)."""
        if platform.background_dispatch_s and platform.background_runs != self.background_runs:
            platform = platform.with_(background_runs=self.background_runs)   # its own count, not the fit's
        key, shift = start_free(platform) if self._shifts_exactly else (platform, 0.0)
        if key not in self._makespans:
            self._makespans[key] = makespan(self.model, key)
        return self._makespans[key] + shift

    @property
    def _shifts_exactly(self) -> bool:
        """Whether a start-up delay only shifts its simulation: a ``recorded`` replay (recorded machines, no
        keep-alive pool or cold starts whose timing could meet a delay differently)."""
        return getattr(self.plan, "planner", "") == "recorded"

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
        from planning.costs.cost_model import CostModel
        from planning.planners import get_planner
        from planning.recordings import machine_family, recorded_makespan
        from planning.profiles import load_catalog

        if isinstance(source, Workflow):
            workflow, name = source, str(source.metadata.get("source_file") or source.name)
        else:
            workflow, name = read_execution(source), str(source)
        cost_model = cost_model or CostModel()
        chosen = get_planner(planner)   # the recorded planner's replay: what the simulator reads, timed only if asked
        plan = (chosen.replay if hasattr(chosen, "replay") else chosen.plan)(workflow, load_catalog(catalog),
                                                                            cost_model, sla)
        stem = execution_name(name)
        return cls(stem, workflow, plan, recorded_makespan(workflow), None, application_of(stem),
                   str(workflow.metadata.get("workflow_system") or ""), cost_model, machine_family(workflow))


    def features(self) -> Features:
        """What the analytic baselines (:mod:`experiments.calibration.baselines`) know about this run (computed
        once: a replay with no overheads)."""
        from planning.recordings import staged_bytes

        if self._features is None:
            wf = self.workflow
            stage_in, stage_out = staged_bytes(wf)
            staged = float(stage_in.sum() + stage_out.sum() + wf.topology().edge_bytes.sum())
            self._features = Features(self.simulate(Platform.zero()), float(wf.critical_path()[0]), wf.depth,
                                      len(wf), staged / 1e9)
        if self.background_runs:   # set per fold, so not remembered
            return replace(self._features, background_task_runs=self.background_runs * len(self.workflow))
        return self._features


@dataclass
class CalibrationResult:
    """The fitted platform(s), errors before / after / held out, the baselines, one row per observation."""

    platform: Platform
    base: Platform
    fitted: tuple[str, ...]
    error_before: float
    error_after: float
    held_out_error: float
    table: pd.DataFrame
    kept: tuple[str, ...] = ()
    families: dict[str, Platform] = field(default_factory=dict)
    prior: Platform | None = None
    baselines_held_out: dict[str, float] = field(default_factory=dict)
    #: task slots per recorded core the replays use (:mod:`experiments.calibration.slots`)
    slots_per_core: float = 1.0
    #: the four-term formula when the inner cross-validation preferred it to the simulator, else None
    formula: Any = None
    #: each model's inner cross-validated error (:mod:`experiments.calibration.model_choice`)
    model_scores: dict[str, float] = field(default_factory=dict)

    @property
    def model(self) -> str:
        """Which model predicts: ``"simulator"`` or ``"four_term"`` (the formula)."""
        return SIMULATOR if self.formula is None else FORMULA

    def predict(self, observation: "Observation") -> float:
        """The makespan predicted for an execution: by the formula when the fit chose it, else replayed with
        the fit's slots per core, on its machine family's platform, else the application's."""
        if self.formula is not None:
            return float(self.formula.predict([observation.features()])[0])
        replay = observation.with_slots_per_core(self.slots_per_core)
        return replay.simulate(self.families.get(observation.family, self.platform))

    def summary(self) -> dict[str, Any]:
        """JSON-able: the errors (median relative makespan errors, fractions), the kept terms and fitted values."""
        by_group = (self.table.groupby("group")[["error_before", "error_after", "error_held_out"]].median()
                    .to_dict(orient="index"))
        return {"error_before": self.error_before, "error_after": self.error_after,
                "held_out_error": self.held_out_error, "observations": int(len(self.table)),
                "kept": list(self.kept), "slots_per_core": self.slots_per_core, "model": self.model,
                "model_scores": self.model_scores,
                "formula": None if self.formula is None else dict(self.formula.coefficients_),
                "fitted": {k: getattr(self.platform, k) for k in self.fitted},
                "platform": self.platform.to_dict(),
                "families": {f: {k: getattr(p, k) for k in self.fitted} for f, p in self.families.items()},
                "prior": None if self.prior is None else {k: getattr(self.prior, k) for k in self.fitted},
                "baselines_held_out": self.baselines_held_out, "by_group": by_group,
                "runs": self.table.to_dict(orient="records")}


def calibrate(workflows_or_files: Iterable[Any], *, planner: str = "recorded", fit: Sequence[str] | None = None,
              base: Platform | None = None, held_out: bool = True,
              group: Callable[[Observation], str] | Mapping[str, str] | None = None,
              catalog: Any = "local", sla: str = "mean", cost_model: Any = None,
              max_evaluations: int | None = None, prior: Any = "default", families: bool = True,
              machine_starter: bool = False, staging_split: bool | str = False,
              choose: bool = True, workers: int | None = None,
              background_runs: bool | str | Mapping[str, float] = "auto") -> CalibrationResult:
    """Fit platform terms to observed makespans; see :mod:`experiments.calibration.fit`.

    ``workflows_or_files``: WfFormat paths (``.json`` or ``.json.gz``), imported
    :class:`Workflow` values with a recorded makespan, or :class:`Observation` values
    (e.g. :meth:`Observation.from_trace` for executor traces).  ``base`` is the
    platform before fitting (default :meth:`Platform.zero`): its error is ``error_before``.

    With ``fit`` unset, real executions are fitted on the workflow-system terms, which
    ones chosen by inner cross-validation, starting from ``prior`` (``"default"``: the
    cross-application prior shipped for their workflow system; ``None``: none; or a
    :class:`Platform`); with ``families``, one platform per machine family.  With
    ``fit`` given (or executor traces), exactly those terms are fitted.  ``machine_starter``
    adds each machine's serial starter (``machine_dispatch_s``) to the candidates, when some
    execution used several machines (:func:`unidentifiable`); ``staging_split`` adds the
    stager's extra rates for external inputs and written outputs (:data:`STAGING_SPLIT_TERMS`); ``"auto"`` fits
    with and without them and keeps them only when their inner held-out predictions are significantly better
    (:func:`~experiments.calibration.model_choice.richer_if_better`; twice the fits).
    ``background_runs``: ``True`` gives each execution the number of the others already running when it was
    submitted (from their recorded starts and makespans, :func:`~experiments.calibration.concurrency.running_at_start`),
    a mapping gives it by execution name (missing: 0); either adds :data:`BACKGROUND_TERM`, the cost per task of
    each such run, to the candidate terms (and a fifth term to the four-term formula).  ``"auto"`` (the default)
    counts them as ``True`` does but gives the four-term formula its fifth term only where the inner
    cross-validation keeps it (:func:`~experiments.calibration.model_choice.keeps_background`), and adds nothing to
    the simulator's terms (see :data:`BACKGROUND_TERM`); ``False``: no counts.  Counted from the recorded starts, the
    held-out report's training runs do not count the held-out ones (whose ends they would reveal).
    ``choose`` (with the terms chosen): predict with the four-term formula instead of the simulator unless the
    inner cross-validation finds the simulator significantly better (:mod:`experiments.calibration.model_choice`;
    ``model`` says which).

    ``held_out``: each observation predicted by a calibration on the *other sizes* of
    its group (default group: its application; one execution out when the group has a
    single size); the analytic baselines are held out the same way.  ``workers``: processes the held-out
    folds' calibrations run on (default: the CPUs, or ``PLANLAB_CALIBRATE_WORKERS``; the same result on any).
    """
    workers = default_workers() if workers is None and held_out else workers   # a bad setting fails before the fit
    observations = _observations(workflows_or_files, group, workers, planner=planner, catalog=catalog, sla=sla,
                                 cost_model=cost_model)
    traces = any(o.durations is not None for o in observations)
    auto_split = isinstance(staging_split, str) and staging_split.lower() == "auto"
    if isinstance(staging_split, str) and not auto_split:
        raise ConfigError(f"unknown staging split {staging_split!r}", "give True, False or 'auto'")
    counted = _set_background(observations, background_runs)
    background = "auto" if _is_auto(background_runs) else "always"
    offered = counted and background == "always"   # the simulator's candidate term
    names = _terms_to_fit(fit, traces, machine_starter, bool(staging_split) and not auto_split, offered)
    select = fit is None and not traces
    split_names = _terms_to_fit(fit, traces, machine_starter, True, offered) if auto_split and select else names
    base = base if base is not None else Platform.zero()
    prior_platform = resolve_prior(prior, observations, base) if select else (
        resolve_prior(prior, observations, base) if prior not in ("default", None) else None)
    if any(not (o.real_makespan_s > 0) for o in observations):
        raise PlanlabError("an observation has no positive real makespan", "calibrate on runs that finished")

    def fit_once(subset: Sequence[Observation], names: Sequence[str] = names) -> Fitted:
        return fit_platform(subset, base, names, select=select, prior=prior_platform,
                            max_evaluations=max_evaluations, families=families and select,
                            sizes=[size_of(o.name) for o in subset],
                            held=unidentifiable(subset) if select and machine_starter else ())

    def fit_on(subset: Sequence[Observation]) -> Fitted:
        if not select:
            return fit_once(subset)
        fitted = fit_with_slots(subset, fit_once)
        if split_names != names:
            split = fit_with_slots(subset, lambda s: fit_once(s, split_names))
            fitted = richer_if_better(fitted, split, subset, [size_of(o.name) for o in subset])
        return choose_model(fitted, subset, [size_of(o.name) for o in subset], background) if choose else fitted

    if held_out:   # the fit on every execution runs beside the held-out folds, as one more job
        if select:
            _warm(observations, base, names, prior_platform is not None, workers)
        table = _before_after_table(observations, base, None)
        fitted, table["after_s"] = _held_out(observations, table, fit_on, with_baselines=not traces, workers=workers,
                                             recount=background_runs is True or _is_auto(background_runs),
                                             background=background == "always")
    else:
        fitted = fit_on(observations)
        table = _before_after_table(observations, base, fitted)
    real = table["real_s"].to_numpy()
    for col in ("before", "after", "held_out"):
        table[f"error_{col}"] = np.abs(table[f"{col}_s"] - real) / real
    held_errors = table["error_held_out"].dropna()
    baselines = {b: float(table[f"error_{b}"].dropna().median()) for b in BASELINES if f"error_{b}" in table
                 and table[f"error_{b}"].notna().any()}
    names = split_names if any(t in fitted.kept for t in STAGING_SPLIT_TERMS) else names
    return CalibrationResult(fitted.platform, base, names, float(table["error_before"].median()),
                             float(table["error_after"].median()),
                             float(held_errors.median()) if len(held_errors) else float("nan"), table,
                             fitted.kept, fitted.families, prior_platform, baselines, fitted.slots_per_core,
                             fitted.formula, fitted.model_scores or {})


def start_free(platform: Platform) -> tuple[Platform, float]:
    """``platform`` without its start-up delay, and that delay (see :meth:`Observation.simulate`)."""
    start = platform.workflow_start_s
    return (platform.with_(workflow_start_s=0.0), start) if start else (platform, 0.0)


def predicted(observation: Observation, fitted: Fitted) -> float:
    """An execution's makespan on a fit: the four-term formula when the fit chose it, else replayed with its
    slots per core on its machine family's platform."""
    if fitted.formula is not None:
        return float(fitted.formula.predict([observation.features()])[0])
    return observation.with_slots_per_core(fitted.slots_per_core).simulate(fitted.platform_for(observation.family))


def _terms_to_fit(fit: Sequence[str] | None, traces: bool, machine_starter: bool,
                  staging_split: bool, background: bool = False) -> tuple[str, ...]:
    """The terms named by ``fit``, else the executor's (traces) or the workflow system's with the opt-in ones."""
    system_terms = (WORKFLOW_SYSTEM_TERMS + ((MACHINE_STARTER_TERM,) if machine_starter else ())
                    + (STAGING_SPLIT_TERMS if staging_split else ()) + ((BACKGROUND_TERM,) if background else ()))
    names = tuple(fit) if fit is not None else (EXECUTOR_TERMS if traces else system_terms)
    _check_terms(names)
    return names


def _is_auto(background_runs: Any) -> bool:
    return isinstance(background_runs, str) and background_runs.lower() == "auto"


def _set_background(observations: Sequence[Observation], background_runs: bool | str | Mapping[str, float]) -> bool:
    """Give each observation its count of runs already running at its submission (see :func:`calibrate`); whether
    counts are in use.  Off (``False``): every count stays as it was (0 as read)."""
    from experiments.calibration.concurrency import background_runs as counts_of

    if background_runs is False or background_runs is None:
        return False
    if background_runs is True or _is_auto(background_runs):
        counts = counts_of(observations)
    elif isinstance(background_runs, Mapping):
        counts = {name: float(v) for name, v in background_runs.items()}
        bad = [n for n, v in counts.items() if not (v >= 0 and np.isfinite(v))]
        if bad:
            raise ConfigError(f"background runs of {bad[0]!r} must be a non-negative number, got {counts[bad[0]]!r}",
                              "give how many other runs were already running when it was submitted")
    else:
        raise ConfigError(f"background_runs must be True, False, 'auto' or a mapping of execution names to counts, "
                          f"got {background_runs!r}", "pass True or 'auto' to count them from the recorded starts")
    for o in observations:
        o.background_runs = counts.get(o.name, 0.0)
    return any(o.background_runs > 0 for o in observations)   # no run beside another: nothing to fit


def _before_after_table(observations: Sequence[Observation], base: Platform, fitted: Fitted | None) -> pd.DataFrame:
    """One row per observation: its real makespan and the simulated ones before (``base``) and after fitting
    (its family's platform, its slots per core; NaN without ``fitted``, to be filled); ``held_out_s`` is NaN until
    the held-out calibrations fill it."""
    real = np.array([o.real_makespan_s for o in observations])
    before = np.array([o.simulate(base) for o in observations])
    after = (np.array([predicted(o, fitted) for o in observations]) if fitted is not None
             else np.full(len(observations), np.nan))
    table = pd.DataFrame({
        "name": [o.name for o in observations], "group": [o.group for o in observations],
        "size": [size_of(o.name) for o in observations], "family": [o.family for o in observations],
        "system": [o.system for o in observations], "tasks": [len(o.workflow) for o in observations],
        "real_s": real, "before_s": before, "after_s": after,
    })
    table["held_out_s"] = np.nan
    return table


def unidentifiable(observations: Sequence[Observation]) -> tuple[str, ...]:
    """Workflow-system terms these executions cannot tell apart from another: a machine's serial starter acts
    exactly like the one serial dispatcher when every execution ran on a single machine."""
    from planning.recordings import machine_of

    several = any(len(set(machine_of(o.workflow).values())) > 1 for o in observations)
    return () if several else (MACHINE_STARTER_TERM,)


def _observations(workflows_or_files: Iterable[Any], group: Callable[[Observation], str] | Mapping[str, str] | None,
                  workers: int | None = None, **execution: Any) -> list[Observation]:
    """Observations from files, workflows or observations, regrouped by ``group`` when given.  Files are read
    on two processes when ``workers`` allows (:func:`~experiments.calibration.parallel_folds.map_halves`)."""
    def load(o: Any) -> Observation:
        return o if isinstance(o, Observation) else Observation.from_execution(o, **execution)

    def weight(o: Any) -> float:   # a file's bytes, to split the reading evenly
        return float(Path(o).stat().st_size) if isinstance(o, (str, Path)) and Path(o).is_file() else 0.0

    sources = list(workflows_or_files)
    files = all(isinstance(o, (str, Path)) for o in sources)
    observations = map_halves(load, sources, workers, weight) if files else [load(o) for o in sources]
    if not observations:
        raise ConfigError("nothing to calibrate on", "give at least one execution file or observation")
    if group is not None:
        for o in observations:
            o.group = group(o) if callable(group) else group.get(o.name, o.group)
    return observations


def _warm(observations: Sequence[Observation], base: Platform, names: Sequence[str], prior: bool,
          workers: int | None) -> None:
    """Simulate, on two processes, the points every fit of the command starts from: ``base`` and the stand-in
    measured there (:func:`~experiments.calibration.fit.stand_in_platforms`), for the replays of each group whose
    every fit starts at ``base`` (no prior, or at least :data:`~experiments.calibration.fit.PRIOR_BELOW_SIZES`
    sizes left in each fold); and :meth:`Platform.zero`, which the baselines replay.

    Why: the fit on every execution and the held-out folds run on forked processes that remember nothing of each
    other's simulations, so each process simulated these same points for every execution (epigenomics: 96 of
    its 2,500 simulations twice).  Simulated before the fork, half on each process, the forks inherit them.  The
    answers are those of the fits' own simulations (deterministic).

    The same holds for the slots screen's list schedules (:meth:`Observation.replay_makespan` at each count of
    :data:`~experiments.calibration.slots.SLOTS_PER_CORE`): every fit asks them of its training executions, so each
    fold worker computed all of them again (epigenomics: 48 schedules, about 0.5 s of CPU per worker, load 5);
    computed here, half on each process, they cost one half once."""
    from experiments.calibration.fit import MAX_FOLDS, PRIOR_BELOW_SIZES, coordinates, stand_in_platforms
    from experiments.calibration.slots import SLOTS_PER_CORE

    sizes: dict[str, set] = {}
    for o in observations:
        sizes.setdefault(o.group, set()).add(size_of(o.name))

    def starts_at_base(group: str) -> bool:
        n = len(sizes[group])
        return not prior or n - -(-n // MAX_FOLDS) >= PRIOR_BELOW_SIZES

    points = list(dict.fromkeys(start_free(p)[0] for p in
                                [Platform.zero(), *stand_in_platforms(base, names, coordinates(base, names))]))
    replays = [o for o in observations if o._shifts_exactly]
    work = [(o, points if starts_at_base(o.group) else points[:1]) for o in replays]

    def warm(job: tuple[Observation, list[Platform]]) -> tuple[list[float], list[float]]:
        o, asked = job
        return [o.simulate(p) for p in asked], [o.replay_makespan(k) for k in SLOTS_PER_CORE]

    values = map_halves(warm, work, workers, lambda job: float(len(job[0].workflow) * (len(job[1]) + len(SLOTS_PER_CORE))))
    for (o, asked), (made, schedules) in zip(work, values):   # the forked half's answers, remembered here
        o._makespans.update(zip(asked, made))
        o._schedules.update(zip(SLOTS_PER_CORE, schedules))


def _held_out(observations: Sequence[Observation], table: pd.DataFrame, fit_on: Callable[[Sequence[Observation]], Fitted],
              with_baselines: bool, workers: int | None = None, recount: bool = False,
              background: bool = True) -> tuple[Fitted, list[float]]:
    """Fill ``held_out_s`` (and the baselines' ``{name}_s``): each fold predicted from the rest of its group; and
    return the fit on every observation with its predictions (``background``: whether the four-term baseline takes
    the counts as its fifth term, :class:`~experiments.calibration.baselines.AnalyticBaseline`).

    The whole fit is one more job beside the folds' calibrations, on up to ``workers`` processes
    (:mod:`experiments.calibration.parallel_folds`): run before the folds, it left the second process idle for a
    third of the command (1000genome: the fit 420 simulations, its eight folds 1,211), and the folds gained little
    from the simulations it remembered.  On one process it runs first, as before; the answers are the same."""
    features = [o.features() for o in observations] if with_baselines else []
    for b in BASELINES if with_baselines else ():
        table[f"{b}_s"] = np.nan

    def train_of(fold: Sequence[int]) -> list[int]:
        held = set(fold)
        return [i for i, o in enumerate(observations) if i not in held and o.group == observations[fold[0]].group]

    def recounted(fold: Sequence[int]) -> None:
        """With counts from the recorded starts: the fold's held-out runs in nobody's background (a training run
        still running beside one would tell its end), their own counts from every other run."""
        if recount:
            from experiments.calibration.concurrency import background_runs

            counts = background_runs(observations, [observations[i] for i in fold])
            for o in observations:
                o.background_runs = counts[o.name]

    def predict_fold(fold: Sequence[int]) -> Any:
        recounted(fold)   # each job sets every count: a worker runs several folds one after another
        if not fold:   # the job of the fit on every observation
            whole = fit_on(list(observations))
            return whole, [predicted(o, whole) for o in observations]
        fitted = fit_on([observations[i] for i in train_of(fold)])
        return [predicted(observations[i], fitted) for i in fold]

    folds = [fold for fold in _folds(observations) if train_of(fold)]
    results = map_folds(predict_fold, [[], *folds], workers)
    whole, after = results.pop(0)
    for fold, values in zip(folds, results):
        table.loc[fold, "held_out_s"] = values
        train = train_of(fold)
        if with_baselines:
            if recount:
                recounted(fold)
                features = [o.features() for o in observations]
            fits = fit_baselines([features[i] for i in train], [observations[i].real_makespan_s for i in train],
                                 background)
            for b, model in fits.items():
                table.loc[fold, f"{b}_s"] = model.predict([features[i] for i in fold])
    for b in BASELINES if with_baselines else ():
        table[f"error_{b}"] = np.abs(table[f"{b}_s"] - table["real_s"]) / table["real_s"]
    recounted([])
    return whole, after


def _folds(observations: Sequence[Observation]) -> list[list[int]]:
    """Leave one size out within each group (sizes dealt into at most MAX_FOLDS folds); one execution out in
    a group of one size."""
    by_group: dict[str, list[int]] = {}
    for i, o in enumerate(observations):
        by_group.setdefault(o.group, []).append(i)
    folds = []
    for members in by_group.values():
        for fold in folds_by([size_of(observations[i].name) for i in members]):
            folds.append([members[j] for j in fold.tolist()])
    return folds


def _check_terms(names: Sequence[str]) -> None:
    bad = [n for n in names if n not in Platform.__dataclass_fields__ or n in _NOT_FITTABLE]
    if bad or not names:
        raise ConfigError(f"cannot fit platform term {bad[0] if bad else '(none)'}",
                          f"fit some of {', '.join(sorted(set(Platform.__dataclass_fields__) - _NOT_FITTABLE))}")
