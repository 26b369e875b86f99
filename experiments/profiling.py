"""The runner's profile phase: measure every workflow on every profile for real, several times, and fit robustly.

Why it is built this way (issue 13, "honest profiling"):

* **The executor of the execution cells.**  Profiling runs go through the very
  :class:`executor.Executor` the execute cells use (one server, one launcher, one
  :class:`executor.ExecutorSettings` built from ``[execute] settings``), so CPU
  quotas, memory limits, the thread rule and the metrics policy are the same.
  What still differs is what a *plan* decides: each task is measured alone on one
  worker (``[profile] workers = "single"``), so the executor's ``threads = "fair"``
  rule gives a worker all its profile's CPUs as BLAS threads, while a cell whose
  plan runs more CPUs at once than the host has gets fewer.  Both counts are
  recorded (column ``threads`` of ``profile/runs.parquet``, of the cell summary and of
  every history row) and :func:`thread_mismatch_notes` says when they differ.
* **Repetitions, interleaved.**  ``[profile] repetitions`` (default 3) runs of every
  (workflow, profile), in the order repetition, workflow, profile: a burst of other
  work on the host then hits one repetition of many jobs rather than every
  repetition of one job.
* **A robust fit.**  :func:`median_history` collapses the repetitions of each task on
  each profile to their median (separately for cold and warm starts) before
  :meth:`planning.costs.cost_model.CostModel.fit`: one slow repetition (a load spike) no
  longer moves the law.  The raw rows stay in ``profile/history.parquet``.
* **Disagreement is flagged.**  :func:`kind_spread` compares a kind's median time of
  each repetition on each profile; a ratio max/min above :data:`MAX_RATIO` or a
  coefficient of variation above :data:`MAX_CV` (and a spread above
  :data:`MIN_SPREAD_S`, so millisecond jitter is not news) flags it: in the run's
  notes, in the ``unstable_kinds`` column of the profile runs table and in
  ``profile/kind_spread.parquet``.
* **Inverted scaling is flagged and left out.**  :func:`slower_with_more_cpus` notes kinds
  that ran slower on a profile with more CPUs (BLAS threads spinning on a busy host);
  :func:`profile_fit_history` leaves those measurements out of the fit.
* **Host conditions.**  Every run records the host's load and a CPU-speed probe
  before and after (:mod:`experiments.hostload`), in its trace, history rows and row
  of the runs table.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments.hostload import add_host_columns
from experiments.pipeline import execute_plan
from experiments.saved_runs import save_run, workflow_reference
from planning.costs.cost_model import CostModel
from planning.costs.history import REQUIRED_COLUMNS
from planning.errors import PlanlabError
from planning.planners import get_planner
from planning.protocol import WorkerProtocol
from planning.sla import SLA

#: A kind whose per-repetition medians on one profile differ by more than this factor is flagged.
MAX_RATIO = 1.5
#: ... or whose per-repetition medians have a coefficient of variation above this.
MAX_CV = 0.3
#: ... but only when the medians also differ by more than this many seconds (timer and scheduler jitter).
MIN_SPREAD_S = 0.005

@dataclass(frozen=True)
class ProfileJob:
    """One real profiling run: a workflow, all on one profile, repetition ``repetition``."""

    workflow: str
    profile: str
    repetition: int

    @property
    def run_id(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.+-]", "_", f"profile.{self.workflow}.{self.profile}.r{self.repetition}")


def profile_jobs(config: Any) -> list[ProfileJob]:
    """Every (workflow, profile) ``config.profile_repetitions`` times, repetitions outermost (interleaved)."""
    return [ProfileJob(w.label, p.name, r) for r in range(config.profile_repetitions)
            for w in config.workflows for p in config.catalog]


def profile_workflows(config: Any, executor: Any, jobs: list[ProfileJob], bar: Any, limits: set[str],
                      notes: list[str], *, save_runs: Path | None = None,
                      pool: Any = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run each job for real; return (history rows, one row per run) with host conditions and stability flags.

    ``save_runs``: a folder in which every run is saved for calibration
    (:func:`experiments.saved_runs.save_run`, one sub-folder per run id); ``pool``
    (:class:`experiments.host_calibration.WarmPool`) learns the worker processes each
    run leaves warm on the executor.
    """
    histories, runs = [], []
    for job in jobs:
        bar.set_postfix_str(job.run_id, refresh=True)
        row, history = _profile_one(config, executor, job, notes, save_runs, pool)
        if row is not None:
            limits.update(filter(None, (row["limits_enforced"] or "").split("; ")))
            histories.append(history)
            runs.append(row)
        bar.update(1)
    history = pd.concat(histories, ignore_index=True) if histories else pd.DataFrame()
    runs_frame = pd.DataFrame(runs)
    spread = kind_spread(history)
    notes.extend(spread_notes(spread) + slower_notes(slower_with_more_cpus(history)))
    return history, _with_unstable_kinds(runs_frame, spread, history)


def _profile_one(config: Any, executor: Any, job: ProfileJob, notes: list[str], save_runs: Path | None,
                 pool: Any) -> tuple[dict[str, Any] | None, Any]:
    """One profiling run: its row of the runs table and its history rows (None, None when it cannot be planned)."""
    workflow = config.workflow(job.workflow)
    sla, model = SLA.parse("mean"), CostModel()
    try:
        # One worker by default: each task is measured on the profile without its siblings competing for
        # the machine (a 2-core host cannot give five 2-CPU workers their CPUs at once), which is what the
        # cost model's per-task law is about.  ``[profile] workers = "locality"`` measures the real layout.
        plan = get_planner("uniform", profile=job.profile, workers=config.profile_workers).plan(
            workflow, config.catalog, model, sla)
    except PlanlabError as exc:  # e.g. a task needs more memory than this profile has
        if job.repetition == 0:
            notes.append(f"profile phase: {job.workflow} not run on {job.profile}: {exc.what}")
        return None, None
    result, host, history = measured_history(executor, workflow, plan, job.run_id, "profile", pool)
    trace = result.trace
    history["repetition"] = job.repetition
    meta = getattr(result, "meta", {}) or {}
    if save_runs is not None:
        save_run(save_runs / job.run_id, workflow=workflow, workflow_ref=workflow_reference(config, job.workflow),
                 plan=plan, trace=trace, cost_model=model, settings=trace.meta.get("settings", {}), sla=sla,
                 catalog_spec=config.catalog_spec, phase="profile")
    row = {"workflow": job.workflow, "profile": job.profile, "repetition": job.repetition, "run_id": job.run_id,
           "tasks": len(trace.tasks), "planned_makespan_s": plan.makespan_s, "real_makespan_s": trace.makespan_s,
           "real_cost": trace.cost, "limits_enforced": limits_text(meta), "threads": threads_text(meta),
           **host.columns()}
    return row, history


# ====================================================================== the robust fit
def median_history(history: pd.DataFrame) -> pd.DataFrame:
    """One row per (workflow, task, profile, cold/warm start): the median of each timed column over repetitions.

    Sizes and resources are constant across repetitions of a task (their median is
    that constant); ``repetitions`` counts the rows each median is of.
    """
    if not len(history):
        return history
    keys = ["workflow", "structure_hash", "task_id", "kind", "profile", "cold_start"]
    numeric = [c for c in REQUIRED_COLUMNS if REQUIRED_COLUMNS[c] == "float"]
    grouped = history.groupby(keys, sort=True, dropna=False)
    out = grouped[numeric].median().reset_index()
    out["repetitions"] = grouped.size().to_numpy()
    out["run_id"] = "profile-median"
    return out[[*REQUIRED_COLUMNS, "repetitions"]]


def profile_fit_history(history: pd.DataFrame) -> pd.DataFrame:
    """What the cost model is fitted on: :func:`median_history` of the profile runs, without the (kind, profile)
    measurements :func:`slower_with_more_cpus` flags.

    The law assumes more CPUs never slow a task (its exponent is >= 0); a kind slower
    on a bigger profile measured spinning threads, not the law, and would only blow up
    its noise (a x12 inversion gave a sigma of 1.2 and p95 plans 10x the real makespan).
    Its other profiles still fit the law, which then predicts the flagged profile.
    """
    if not len(history):
        return history
    history = alone_history(history)
    slower = slower_with_more_cpus(history)
    if len(slower):
        bad = set(zip(slower["workflow"], slower["kind"], slower["profile"]))
        keep = [key not in bad for key in zip(history["workflow"], history["kind"], history["profile"])]
        history = history[keep]
    return median_history(history)


def alone_history(history: pd.DataFrame) -> pd.DataFrame:
    """Each measured task's time *alone* (``exec_s``) where its run measured contention; the raw time in ``exec_wall_s``.

    A profiling run on a busy host waits for cores other work holds; the kernel says
    how long (:mod:`executor.contention`), and the law is about the task alone (the
    simulator's host model adds the sharing of a run back): ``max(exec_s -
    cpu_wait_s, exec_cpu_s / cpus)``, the second term because a task kept below its
    quota by contention would be throttled to it alone.  Rows without the
    measurement keep their time.
    """
    if "cpu_wait_s" not in history or "exec_cpu_s" not in history:
        return history
    wait, cpu = history["cpu_wait_s"], history["exec_cpu_s"]
    measured = wait.notna() & cpu.notna()
    if not measured.any():
        return history
    out = history.copy()
    out["exec_wall_s"] = out["exec_s"]
    alone = np.maximum(out["exec_s"] - wait.fillna(0.0), cpu.fillna(0.0) / out["cpus"].where(out["cpus"] > 0))
    out.loc[measured, "exec_s"] = alone[measured].clip(lower=0.0)
    return out


def fit_profile_model(history: pd.DataFrame) -> CostModel:
    """The cost model the runner plans with: fitted on :func:`profile_fit_history` (priors if there is none)."""
    fit_input = profile_fit_history(history)
    return CostModel().fit(fit_input) if len(fit_input) else CostModel()


# ====================================================================== disagreement
def kind_spread(history: pd.DataFrame) -> pd.DataFrame:
    """Per (workflow, kind, profile): the kind's median ``exec_s`` in each repetition, their ratio and CV, a flag."""
    columns = ["workflow", "kind", "profile", "repetitions", "median_min_s", "median_max_s", "ratio", "cv", "unstable"]
    if not len(history) or "repetition" not in history:
        return pd.DataFrame(columns=columns)
    per_run = history.groupby(["workflow", "kind", "profile", "repetition"])["exec_s"].median()
    rows = []
    for (workflow, kind, profile), medians in per_run.groupby(level=[0, 1, 2]):
        values = medians.to_numpy(float)
        lo, hi, mean = float(values.min()), float(values.max()), float(values.mean())
        ratio = hi / lo if lo > 0 else (1.0 if hi == 0 else np.inf)
        cv = float(values.std(ddof=1)) / mean if len(values) > 1 and mean > 0 else 0.0
        unstable = bool(len(values) > 1 and hi - lo > MIN_SPREAD_S and (ratio > MAX_RATIO or cv > MAX_CV))
        rows.append([workflow, kind, profile, len(values), lo, hi, ratio, cv, unstable])
    return pd.DataFrame(rows, columns=columns)


def spread_notes(spread: pd.DataFrame, shown: int = 5) -> list[str]:
    """One note naming the flagged kinds (worst first), or none."""
    flagged = spread[spread["unstable"]].sort_values("ratio", ascending=False) if len(spread) else spread
    if not len(flagged):
        return []
    named = ", ".join(f"{r.workflow}/{r.kind} on {r.profile} x{r.ratio:.1f} (cv {r.cv:.2f})"
                      for r in flagged.head(shown).itertuples())
    more = f" and {len(flagged) - shown} more" if len(flagged) > shown else ""
    return [f"profile phase: {len(flagged)} kind(s) measured inconsistently across repetitions (per-repetition "
            f"medians differ > x{MAX_RATIO:g} or cv > {MAX_CV:g}): {named}{more}; the fit uses their medians, "
            "see host_load_1m in profile/runs.parquet"]


def slower_with_more_cpus(history: pd.DataFrame) -> pd.DataFrame:
    """Kinds whose median ``exec_s`` on a profile is > :data:`MAX_RATIO` x that on a profile with fewer CPUs.

    More CPUs never make a task slower by themselves: this is the signature of
    BLAS/OpenMP threads spinning on a shared host (a 2-CPU worker with 2 threads
    measured 12x slower than a 1-CPU worker with 1 on a 2-core host at load 11).
    """
    columns = ["workflow", "kind", "profile", "cpus", "threads", "median_s", "faster_profile", "faster_median_s",
               "ratio"]
    if not len(history):
        return pd.DataFrame(columns=columns)
    frame = history.assign(threads=history["threads"] if "threads" in history else np.nan)
    medians = frame.groupby(["workflow", "kind", "profile"]).agg(
        cpus=("cpus", "median"), threads=("threads", "median"), median_s=("exec_s", "median")).reset_index()
    rows = []
    for (workflow, kind), g in medians.groupby(["workflow", "kind"]):
        for r in g.itertuples():
            fewer = g[g["cpus"] < r.cpus]
            if not len(fewer):
                continue
            best = fewer.loc[fewer["median_s"].idxmin()]
            if r.median_s > MAX_RATIO * best["median_s"] and r.median_s - best["median_s"] > MIN_SPREAD_S:
                rows.append([workflow, kind, r.profile, r.cpus, r.threads, r.median_s, best["profile"],
                             best["median_s"], r.median_s / best["median_s"]])
    return pd.DataFrame(rows, columns=columns)


def slower_notes(slower: pd.DataFrame, shown: int = 3) -> list[str]:
    """One note naming the kinds :func:`slower_with_more_cpus` found (worst first), or none."""
    if not len(slower):
        return []
    worst = slower.sort_values("ratio", ascending=False)
    named = ", ".join(f"{r.workflow}/{r.kind} x{r.ratio:.1f} slower on {r.profile} ({r.cpus:g} CPU"
                      f"{f', {r.threads:g} thread(s)' if r.threads == r.threads else ''}) than on {r.faster_profile}"
                      for r in worst.head(shown).itertuples())
    more = f" and {len(worst) - shown} more" if len(worst) > shown else ""
    return [f"profile phase: {len(worst)} kind(s) ran slower with more CPUs (BLAS threads spinning on a busy "
            f"host?), left out of the fit on those profiles: {named}{more}"]


def _with_unstable_kinds(runs: pd.DataFrame, spread: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """The runs table with ``unstable_kinds``: the flagged kinds of the run's workflow on the run's profile."""
    if not len(runs):
        return runs
    flagged = spread[spread["unstable"]] if len(spread) else spread
    names = {key: "; ".join(sorted(g["kind"])) for key, g in flagged.groupby(["workflow", "profile"])} \
        if len(flagged) else {}
    workflow_of = dict(zip(history["cell_id"], history["workflow"]))   # run id -> the workflow's own name
    out = runs.copy()
    out["unstable_kinds"] = [names.get((workflow_of.get(r), p), "") for r, p in zip(out["run_id"], out["profile"])]
    return out


# ====================================================================== limits and threads
def limits_text(meta: dict[str, Any]) -> str | None:
    """What the executor enforced in one run, one ``profile: ...`` clause per profile (None if it did not say)."""
    value = meta.get("limits_enforced")
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("by_profile"), dict):
        clauses = []
        for profile, v in sorted(value["by_profile"].items()):
            quota = (f" quota {int(v['cpu_quota_us']) / int(v['cpu_period_us']):g} CPU"
                     if str(v.get("cpu_quota_us", "")).isdigit() and str(v.get("cpu_period_us", "")).isdigit() else "")
            clauses.append(f"{profile}: cpu {v.get('cpu')}{quota}, memory {v.get('memory')}, threads {v.get('threads')}")
        return "; ".join(clauses)
    return json.dumps(value, sort_keys=True, default=str)


def measured_history(executor: Any, workflow: Any, plan: Any, run_id: str, phase: str, pool: Any = None,
                     protocol: WorkerProtocol | None = None) -> tuple[Any, Any, pd.DataFrame]:
    """Run ``plan`` for real between two host snapshots: (its result, the host record, its history rows).

    The rows carry the host columns, ``phase``, ``cell_id`` and the BLAS threads each
    profile's workers had; ``pool`` (a :class:`~experiments.host_calibration.WarmPool`)
    learns the processes the run left warm.  The profile phase and the execute cells
    both record their real runs this way.
    """
    result, host = execute_plan(executor, workflow, plan, run_id=run_id, protocol=protocol,
                                measure_contention=phase == "profile" or None)
    if pool is not None:
        pool.after(result.trace)
    history = add_host_columns(result.trace.to_history(workflow.name, workflow.structure_hash()), host)
    history["phase"] = phase
    history["cell_id"] = run_id
    meta = getattr(result, "meta", {}) or {}
    history["threads"] = history["profile"].map(threads_by_profile(meta)).astype("float64")
    return result, host, history


def threads_by_profile(meta: dict[str, Any]) -> dict[str, int]:
    """BLAS/OpenMP threads the executor gave each profile's workers in one run (from its ``limits_enforced``)."""
    by_profile = ((meta or {}).get("limits_enforced") or {})
    by_profile = by_profile.get("by_profile") if isinstance(by_profile, dict) else None
    out: dict[str, int] = {}
    for profile, values in (by_profile or {}).items():
        counts = [int(v.rpartition(":")[2]) for v in str(values.get("threads", "")).split(",")
                  if v.rpartition(":")[2].isdigit()]
        if counts:
            out[str(profile)] = max(counts)
    return out


def threads_text(meta: dict[str, Any]) -> str | None:
    """``"large:2; medium:1"``: :func:`threads_by_profile` as a table cell (None when not enforced)."""
    counts = threads_by_profile(meta)
    return "; ".join(f"{p}:{n}" for p, n in sorted(counts.items())) or None


def thread_mismatch_notes(profile_runs: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
    """Notes for profiles measured with other thread counts than the execute cells ran them with."""
    def parse(cells: pd.Series) -> dict[str, list[int]]:
        seen: dict[str, list[int]] = {}
        for text in cells.dropna():
            for item in str(text).split("; "):
                profile, _, n = item.partition(":")
                if n.isdigit():
                    seen.setdefault(profile, []).append(int(n))
        return seen

    if "threads" not in profile_runs or "threads" not in summary:
        return []
    profiled, executed = parse(profile_runs["threads"]), parse(summary["threads"])
    notes = []
    for profile, counts in sorted(executed.items()):
        measured = sorted(set(profiled.get(profile, [])))
        other = [n for n in counts if n not in measured]
        if measured and other:
            notes.append(f"profile {profile!r} was profiled with {'/'.join(map(str, measured))} BLAS thread(s) but "
                         f"ran with {'/'.join(map(str, sorted(set(other))))} in {len(other)} of {len(counts)} execute "
                         "run(s) (the executor's threads='fair' rule sizes pools per plan): its fitted times assume "
                         "the profiled count")
    return notes
