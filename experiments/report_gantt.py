"""The report's Gantt charts: for every planner x SLA, the plan beside one chosen run, on one time axis.

One repetition per planner and SLA is shown - the one whose makespan is the median of
its repetitions, so the picture is typical rather than lucky - and its label says which
one and why.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from experiments.plan_figures import draw_gantt, profile_colours  # noqa: E402


def gantt_cells(summary: pd.DataFrame, workflow: str, max_cells: int | None = None,
                measured: str = "real_makespan_s") -> list[str]:
    """One cell per planner x SLA of ``workflow``: the repetition with the median ``measured`` makespan.

    With an even number of repetitions the lower of the two middle ones is taken; without
    a measured makespan, the first repetition.
    """
    part = summary[summary["workflow"] == workflow]
    cells = []
    for _, g in part.groupby(["planner", "sla"], sort=False):
        if measured in g and g[measured].notna().any():
            ordered = g.dropna(subset=[measured]).sort_values([measured, "repetition"])
            cells.append(ordered["cell_id"].iloc[(len(ordered) - 1) // 2])
        else:
            cells.append(g.sort_values("repetition")["cell_id"].iloc[0])
    return cells[:max_cells] if max_cells is not None else cells


def choice_label(summary: pd.DataFrame, cell_id: str, measured: str = "real_makespan_s") -> str:
    """How a Gantt row's repetition was chosen, e.g. ``rep 1 (median of 3)``."""
    row = summary[summary["cell_id"] == cell_id]
    if row.empty:
        return cell_id
    r = row.iloc[0]
    reps = summary[(summary["workflow"] == r["workflow"]) & (summary["planner"] == r["planner"])
                   & (summary["sla"] == r["sla"])]
    how = f"median of {len(reps)}" if len(reps) > 1 and measured in reps and reps[measured].notna().any() else \
        "the only one" if len(reps) == 1 else "first"
    return f"{r['planner']} {r['sla']}, rep {r['repetition']} ({how})"


def gantt_pair(plans: pd.DataFrame, other: pd.DataFrame, cell_ids: Sequence[str], other_name: str = "real",
               summary: pd.DataFrame | None = None) -> Figure | None:
    """For each cell, the planned and the ``other`` (real or simulated) Gantt side by side on one time axis."""
    if plans.empty or other.empty:
        return None
    cell_ids = [c for c in cell_ids if (plans["cell_id"] == c).any() and (other["cell_id"] == c).any()]
    if not cell_ids:
        return None
    rows = [max(plans.loc[plans["cell_id"] == c, "worker"].nunique(), other.loc[other["cell_id"] == c, "worker"].nunique())
            for c in cell_ids]
    heights = [max(2.4, 1.3 + 0.22 * n) for n in rows]
    fig, axes = plt.subplots(len(cell_ids), 2, figsize=(14, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    colours = profile_colours(pd.concat([plans["profile"], other["profile"]]))
    measured = "real_makespan_s" if other_name == "real" else "sim_trace_makespan_s"
    for row, cell in zip(axes, cell_ids):
        planned = _short_workers(plans[plans["cell_id"] == cell])
        actual = _short_workers(other[other["cell_id"] == cell])
        spans = [planned["done_s"].max(), actual["done_s"].max()]
        label = cell
        if summary is not None and (summary["cell_id"] == cell).any():
            s = summary[summary["cell_id"] == cell].iloc[0]
            spans += [s.get("planned_makespan_s", np.nan), s.get(measured, np.nan)]
            label = choice_label(summary, cell, measured)
        xmax = 1.05 * np.nanmax(spans)
        draw_gantt(planned, row[0], f"{label}: planned", xmax=xmax, colours=colours)
        draw_gantt(actual, row[1], f"{label}: {other_name}", xmax=xmax, colours=colours)
    fig.tight_layout()
    return fig


def _short_workers(tasks: pd.DataFrame, width: int = 18) -> pd.DataFrame:
    """Long worker ids (dynamic plans name workers after a task) cut in the middle, so the chart keeps its width."""
    names = tasks["worker"].astype(str)
    if names.str.len().max() <= width:
        return tasks
    keep = (width - 1) // 2
    out = tasks.copy()
    out["worker"] = [n if len(n) <= width else f"{n[:keep]}~{n[-keep:]}" for n in names]
    return out
