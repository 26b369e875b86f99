""""What to look at": the report's few sentences naming the largest errors and their likely cause.

A page of figures hides its most important fact among twenty others; these findings
are computed from the same tables (never hand-written), each with a ``warning`` flag
when an error is large enough that a conclusion drawn from the cell would be unsafe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.phases import PHASES, phase_totals

#: A relative makespan error above this (25%) earns a warning line.
LARGE_ERROR = 0.25
#: A task kind whose real / predicted runtime ratio is beyond this factor is named.
LARGE_RATIO = 1.5
#: ... and whose mean execution differs by at least this much (a 40 us task 2x off matters to no one).
MIN_KIND_ERROR_S = 0.01


@dataclass(frozen=True)
class Finding:
    """One sentence of the "what to look at" section; ``warning`` marks a large error."""

    text: str
    warning: bool = False


def largest_errors(summary: pd.DataFrame, phases: pd.DataFrame, top: int = 3) -> list[Finding]:
    """The cells with the largest plan-vs-real makespan error, each with the phase that differs most."""
    if summary.empty or "plan_error" not in summary or summary["plan_error"].isna().all():
        return []
    worst = summary.dropna(subset=["plan_error"]).assign(size=lambda d: d["plan_error"].abs())
    worst = worst.sort_values("size", ascending=False).head(top)
    totals = phase_totals(phases).set_index(["cell_id", "engine"]) if phases is not None and len(phases) else None
    findings = []
    for _, row in worst.iterrows():
        text = (f"{row['cell_id']}: planned {row['planned_makespan_s']:.3g} s, real {row['real_makespan_s']:.3g} s "
                f"({100 * row['plan_error']:+.0f}%)")
        cause = _likely_cause(totals, row["cell_id"])
        findings.append(Finding(f"{text}; {cause}." if cause else f"{text}.", abs(row["plan_error"]) > LARGE_ERROR))
    return findings


def _likely_cause(totals: pd.DataFrame | None, cell_id: str) -> str:
    """The critical-path phase whose real seconds differ most from the plan's, as a clause."""
    if totals is None or (cell_id, "real") not in totals.index or (cell_id, "plan") not in totals.index:
        return ""
    cols = [p for p in PHASES if p in totals.columns]
    diff = (totals.loc[(cell_id, "real"), cols].fillna(0) - totals.loc[(cell_id, "plan"), cols].fillna(0))
    phase = str(diff.abs().idxmax())
    seconds = float(diff[phase])
    more = "longer" if seconds > 0 else "shorter"
    return (f"likely cause: {phase} on the critical path took {abs(seconds):.3g} s {more} than planned "
            f"({totals.at[(cell_id, 'plan'), phase]:.3g} s planned, {totals.at[(cell_id, 'real'), phase]:.3g} s real)")


def kind_findings(by_kind: pd.DataFrame) -> list[Finding]:
    """Task kinds whose real runtime is off from the plan's by more than :data:`LARGE_RATIO` (and 10 ms)."""
    if by_kind is None or by_kind.empty:
        return []
    plan = by_kind[by_kind["predictor"] == "plan"].dropna(subset=["median_ratio_real_to_predicted"])
    ratio = plan["median_ratio_real_to_predicted"]
    big = (plan["real_exec_mean_s"] - plan["predicted_exec_mean_s"]).abs() >= MIN_KIND_ERROR_S
    off = plan[((ratio > LARGE_RATIO) | (ratio < 1 / LARGE_RATIO)) & big]
    off = off.assign(size=np.abs(np.log(off["median_ratio_real_to_predicted"]))).sort_values("size", ascending=False)
    return [Finding(f"task kind {r['kind']!r}: real execution {r['median_ratio_real_to_predicted']:.2g}x the planned "
                    f"(median of {int(r['tasks'])} tasks, {r['real_exec_mean_s']:.3g} s vs {r['predicted_exec_mean_s']:.3g} s"
                    " mean) - the cost model's runtime for this kind is off", True)
            for _, r in off.head(3).iterrows()]


def sla_findings(met: pd.DataFrame) -> list[Finding]:
    """Planner x SLA pairs whose plans were met clearly less often than the SLA promises."""
    if met is None or met.empty:
        return []
    out = []
    for _, r in met.iterrows():
        if r["target"] == r["target"] and r["met_plan"] < r["target"] - 0.2:
            out.append(Finding(f"{r['planner']} at {r['sla']}: {100 * r['met_plan']:.0f}% of {int(r['runs'])} real runs "
                               f"finished within the plan, the SLA promises {100 * r['target']:.0f}%", True))
    return out


def capacity_findings(summary: pd.DataFrame) -> list[Finding]:
    """Plans that hold more CPUs at once than the host they ran on has (the runner's ``capacity_note``)."""
    if summary is None or summary.empty or "capacity_note" not in summary:
        return []
    over = summary.dropna(subset=["capacity_note"])
    over = over[over["capacity_note"].astype(str).str.len() > 0]
    if over.empty:
        return []
    worst = over.sort_values("peak_cpus", ascending=False).iloc[0] if "peak_cpus" in over else over.iloc[0]
    planners = ", ".join(sorted(set(over["planner"].astype(str)))) if "planner" in over else "some planners"
    return [Finding(f"{len(over)} cell(s) ({planners}) planned more CPUs at once than this host has, e.g. "
                    f"{worst['cell_id']}: {worst['capacity_note']}")]


def what_to_look_at(summary: pd.DataFrame, phases: pd.DataFrame, by_kind: pd.DataFrame, met: pd.DataFrame,
                    load_recorded: bool) -> list[Finding]:
    """Every finding, largest errors first; a closing note when the host load was not recorded."""
    findings = (largest_errors(summary, phases) + sla_findings(met) + kind_findings(by_kind)
                + capacity_findings(summary))
    if summary is not None and len(summary) and "real_makespan_s" in summary and \
            summary["real_makespan_s"].notna().any() and not load_recorded:
        findings.append(Finding("the host load was not recorded per cell: a large real makespan may be another "
                                "process's load, not the plan's fault"))
    if summary is not None and len(summary) and not any(f.warning for f in findings):
        findings.insert(0, Finding(f"no cell's makespan error exceeds {100 * LARGE_ERROR:.0f}%, no SLA was clearly "
                                   "missed and no task kind's runtime is far off; the largest errors follow"))
    return findings
