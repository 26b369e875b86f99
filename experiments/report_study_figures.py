"""The report's figures for comparing planners: was the SLA met, and where did each run's time go.

Like :mod:`experiments.report_figures`, each function draws from saved tables alone and
returns a Figure, or None when there is nothing to draw (e.g. no real runs).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from experiments.phases import PHASES, phase_totals  # noqa: E402

PHASE_COLOURS = dict(zip(PHASES, ("#8C8C8C", "#C44E52", "#CCB974", "#64B5CD", "#4C72B0", "#55A868")))
ENGINE_ORDER = ("plan", "simulation", "real")


def sla_met_figure(table: pd.DataFrame) -> Figure | None:
    """Per planner, per SLA: the share of real runs at or below the planned makespan, with the SLA's target.

    ``table`` is :func:`experiments.report_tables.sla_met`.  A bar reaching its target
    tick means the plan's promise held as often as the SLA says it should.
    """
    if table is None or table.empty:
        return None
    planners = list(dict.fromkeys(table["planner"]))
    slas = list(dict.fromkeys(table["sla"]))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(planners) * max(1, len(slas)) / 2 + 3), 3.8),
                           layout="constrained")
    width = 0.8 / len(slas)
    palette = plt.get_cmap("tab10")
    for j, sla in enumerate(slas):
        part = table[table["sla"] == sla].set_index("planner").reindex(planners)
        x = np.arange(len(planners)) + (j - (len(slas) - 1) / 2) * width
        ax.bar(x, 100 * part["met_plan"], width, color=palette(j), label=f"SLA {sla}")
        ax.hlines(100 * part["target"], x - width / 2, x + width / 2, colors="black", linewidth=2)
        for xi, share, runs in zip(x, part["met_plan"], part["runs"]):
            if share == share:
                ax.text(xi, 100 * share + 2, f"{100 * share:.0f}%\nn={int(runs)}", ha="center", fontsize=7)
    ax.set_xticks(np.arange(len(planners)), planners)
    ax.set_ylim(0, 118)
    ax.set_ylabel("real runs at or below plan (%)")
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], color="black", linewidth=2, label="target (the SLA's percentile)"))
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("SLA met: share of real runs that finished within the planned makespan", fontsize=10)
    return fig


def phases_figure(phases: pd.DataFrame, workflow: str, max_runs: int = 24) -> Figure | None:
    """For each real run of ``workflow``: its critical path's seconds per phase, plan / simulation / real stacked.

    The three bars of a run share its y position's group, so a phase the plan
    under-estimated shows as a longer segment in the real bar than in the plan's.
    Beyond ``max_runs`` runs, one per planner x SLA is drawn (the median real makespan).
    """
    if phases is None or phases.empty:
        return None
    totals = phase_totals(phases[phases["workflow"] == workflow])
    if totals.empty or "real" not in set(totals["engine"]):
        return None
    runs = list(dict.fromkeys(totals.loc[totals["engine"] == "real", "cell_id"]))
    if len(runs) > max_runs:
        runs = _median_runs(totals[totals["engine"] == "real"])
    engines = [e for e in ENGINE_ORDER if e in set(totals["engine"])]
    by_key = totals.set_index(["cell_id", "engine"])
    height = 0.8 / len(engines)
    fig, ax = plt.subplots(figsize=(12, max(3.0, 0.28 * len(runs) * len(engines) + 1.5)), layout="constrained")
    ticks, labels = [], []
    for i, cell in enumerate(runs):
        for j, engine in enumerate(engines):
            y = i + (j - (len(engines) - 1) / 2) * height
            left = 0.0
            if (cell, engine) in by_key.index:
                for phase in PHASES:
                    value = float(by_key.loc[(cell, engine)].get(phase, 0.0) or 0.0)
                    if value > 0:
                        ax.barh(y, value, height * 0.9, left=left, color=PHASE_COLOURS[phase], edgecolor="white",
                                linewidth=0.3)
                    left += value
            ticks.append(y)
            labels.append(f"{_cell_label(by_key, cell)}  {engine}" if j == 0 else engine)
    ax.set_yticks(ticks, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("seconds on the critical path (sums to the makespan)")
    edges = set(phases.get("edges", pd.Series(["saved"])))
    note = "" if edges == {"saved"} else " (parents inferred from timing: no edges.parquet)"
    ax.set_title(f"{workflow}: where the time went, per real run{note}", fontsize=10)
    ax.legend(handles=[Patch(color=c, label=p) for p, c in PHASE_COLOURS.items()], fontsize=8, ncol=len(PHASES),
              loc="lower center", bbox_to_anchor=(0.5, 1.04))
    return fig


def _median_runs(real: pd.DataFrame) -> list[str]:
    """Per planner x SLA, the run whose critical path (its makespan) is the median of its repetitions."""
    real = real.assign(total=real[[p for p in PHASES if p in real.columns]].sum(axis=1))
    return [g.sort_values("total")["cell_id"].iloc[(len(g) - 1) // 2]
            for _, g in real.groupby(["planner", "sla"], sort=False)]


def _cell_label(by_key: pd.DataFrame, cell: str) -> str:
    row = by_key.loc[cell].iloc[0]
    if {"planner", "sla", "repetition"} <= set(row.index):
        return f"{row['planner']} {row['sla']} r{row['repetition']}"
    return str(cell)
