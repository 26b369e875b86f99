"""The report's figures, each drawn from saved result tables alone (never from live objects).

Every function takes DataFrames as :class:`experiments.results.Results` loads them
and returns a matplotlib Figure (or None when the tables hold nothing to draw, e.g.
no percentile SLA), so a notebook can call them one by one and the report can
redraw them all from a results directory.
"""

from __future__ import annotations

import math
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from matplotlib.lines import Line2D  # noqa: E402

from experiments.report_gantt import gantt_cells, gantt_pair  # noqa: E402,F401  (the report's figures, one import)
from experiments.report_tables import bootstrap_ci  # noqa: E402

#: Engine -> (summary column, colour, label).
ENGINES = (("planned_makespan_s", "#4C72B0", "planned"), ("simulated_makespan_s", "#DD8452", "simulated"),
           ("real_makespan_s", "#55A868", "real"))


def _grid(n: int, ncols: int = 3, size: tuple[float, float] = (4.6, 3.4)) -> tuple[Figure, list]:
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False,
                             layout="constrained")   # makes room for the suptitle too
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _available(summary: pd.DataFrame) -> list[tuple[str, str, str]]:
    return [e for e in ENGINES if e[0] in summary and summary[e[0]].notna().any()]


# ====================================================================== makespans
def makespan_bars(summary: pd.DataFrame, level: float = 0.95) -> Figure | None:
    """Planned vs simulated vs real makespan per planner and SLA: bars are means, whiskers bootstrap CIs of the mean.

    A whisker needs two repetitions; with one, the bar stands alone (no invented spread).
    """
    if summary.empty:
        return None
    engines = _available(summary)
    workflows = list(dict.fromkeys(summary["workflow"]))
    fig, axes = _grid(len(workflows), ncols=2, size=(6.5, 3.8))
    for ax, wf in zip(axes, workflows):
        part = summary[summary["workflow"] == wf]
        groups = list(dict.fromkeys(zip(part["planner"], part["sla"])))
        x = np.arange(len(groups))
        width = 0.8 / max(1, len(engines))
        for j, (col, colour, label) in enumerate(engines):
            means, lows, highs = [], [], []
            for planner, sla in groups:
                values = part.loc[(part["planner"] == planner) & (part["sla"] == sla), col]
                mean = float(values.mean())
                lo, hi = bootstrap_ci(values, level)
                means.append(mean)
                lows.append(0.0 if lo != lo else mean - lo)
                highs.append(0.0 if hi != hi else hi - mean)
            err = np.clip(np.vstack([lows, highs]), 0.0, None)   # rounding (mean of equal floats) never goes below 0
            ax.bar(x + (j - (len(engines) - 1) / 2) * width, means, width, yerr=err, capsize=3,
                   color=colour, label=label)
        crowded = len(groups) > 6
        ax.set_xticks(x, [f"{p}\n{s}" for p, s in groups], fontsize=7 if crowded else 8,
                      rotation=30 if crowded else 0, ha="right" if crowded else "center")
        ax.set_ylabel("makespan (s)")
        reps = int(part["repetition"].nunique()) if "repetition" in part else 1
        whiskers = f"whiskers: {level:.0%} bootstrap CI of the mean" if reps > 1 else "one run: no CI"
        ax.set_title(f"{wf} ({reps} repetition{'s' if reps != 1 else ''}; bars: mean, {whiskers})", fontsize=9)
        ax.legend(fontsize=8)
    fig.suptitle("Makespan: planned vs simulated vs real, per planner and SLA")
    return fig


# ====================================================================== prediction error
def task_errors(predicted: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Per task of every cell: predicted minus reference start (``exec_start_s``) and finish (``done_s``)."""
    if predicted.empty or reference.empty:
        return pd.DataFrame(columns=["cell_id", "task_id", "start_error_s", "finish_error_s"])
    cols = ["cell_id", "task_id", "exec_start_s", "done_s"]
    joined = predicted[cols].merge(reference[cols], on=["cell_id", "task_id"], suffixes=("_pred", "_ref"))
    return pd.DataFrame({"cell_id": joined["cell_id"], "task_id": joined["task_id"],
                         "start_error_s": joined["exec_start_s_pred"] - joined["exec_start_s_ref"],
                         "finish_error_s": joined["done_s_pred"] - joined["done_s_ref"]})


def prediction_error(summary: pd.DataFrame, plans: pd.DataFrame, sim_tasks: pd.DataFrame,
                     real_tasks: pd.DataFrame) -> Figure | None:
    """Left: per-cell relative makespan error; right: CDF of per-task start and finish errors.

    Against the real runs when there are any, else the plan against the simulation.
    """
    if summary.empty:
        return None
    has_real = "real_makespan_s" in summary and summary["real_makespan_s"].notna().any()
    has_sim = "simulated_makespan_s" in summary and summary["simulated_makespan_s"].notna().any()
    if not has_real and not has_sim:
        return None  # a plan alone has nothing to be compared with
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, max(3.5, 0.22 * len(summary) + 1.5)))
    labels = summary["cell_id"].tolist()
    y = np.arange(len(labels))
    if has_real:
        series = [("plan_error", "#4C72B0", "plan vs real"), ("sim_error", "#DD8452", "simulation at the SLA vs real"),
                  ("forecast_error", "#55A868", "simulation at the mean vs real")]
    else:
        series = [("plan_vs_sim_error", "#4C72B0", "plan vs simulation")]
    series = [s for s in series if s[0] in summary and summary[s[0]].notna().any()]
    h = 0.8 / max(1, len(series))
    for j, (col, colour, label) in enumerate(series):
        left.barh(y + (j - (len(series) - 1) / 2) * h, 100 * summary[col], h, color=colour, label=label)
    left.axvline(0, color="black", linewidth=0.8)
    left.set_yticks(y, labels, fontsize=7)
    left.invert_yaxis()
    left.set_xlabel("relative makespan error (%): (predicted - reference) / reference")
    left.set_title("per-cell error")
    if series:
        left.legend(fontsize=8)
    reference = real_tasks if has_real else sim_tasks
    drawn = False
    for name, errors, colour in _cdf_series(plans, sim_tasks, reference, has_real):
        for col, style in (("start_error_s", "-"), ("finish_error_s", "--")):
            values = np.sort(errors[col].dropna().to_numpy())
            if len(values):
                right.step(values, np.arange(1, len(values) + 1) / len(values), style, where="post", color=colour,
                           label=f"{name}: {col.split('_')[0]} (n={len(values)})")
                drawn = True
    right.axvline(0, color="black", linewidth=0.8)
    right.set_xlabel(f"per-task error (s): predicted - {'real' if has_real else 'simulated'}")
    right.set_ylabel("fraction of tasks")
    right.set_title("CDF of per-task start and finish errors")
    if drawn:
        right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _cdf_series(plans: pd.DataFrame, sim_tasks: pd.DataFrame, reference: pd.DataFrame,
                has_real: bool) -> list[tuple[str, pd.DataFrame, str]]:
    """The CDF's predictors; plan and simulation merged into one named series when their task times coincide.

    The single (unsampled) simulation replays the plan's estimates, so its per-task
    times are the plan's to within milliseconds: two such curves would hide one another,
    so the figure draws one and says they coincide (and by how much at most).
    """
    plan_errors = task_errors(plans, reference)
    if not has_real:
        return [("plan", plan_errors, "#4C72B0")]
    sim_errors = task_errors(sim_tasks, reference)
    joined = plan_errors.merge(sim_errors, on=["cell_id", "task_id"], suffixes=("_p", "_s"))
    if len(joined) and len(joined) == len(plan_errors) == len(sim_errors):
        gap = max((joined[f"{c}_p"] - joined[f"{c}_s"]).abs().max() for c in ("start_error_s", "finish_error_s"))
        spread = np.nanmax(np.abs(plan_errors[["start_error_s", "finish_error_s"]].to_numpy()))
        if gap <= max(1e-3, 0.01 * spread):   # closer than a line's width on this axis
            return [(f"plan = simulation (within {1000 * gap:.1f} ms per task)", plan_errors, "#8172B3")]
    return [("plan", plan_errors, "#4C72B0")] + ([("simulation", sim_errors, "#DD8452")] if len(sim_errors) else [])


def plan_equals_simulation(plans: pd.DataFrame, sim_tasks: pd.DataFrame, real_tasks: pd.DataFrame) -> bool:
    """Whether the plan and the single simulation predict the same time for every task (see :func:`_cdf_series`)."""
    return len(_cdf_series(plans, sim_tasks, real_tasks, True)) == 1 and len(sim_tasks) > 0


# ====================================================================== cost vs makespan
def cost_vs_makespan(summary: pd.DataFrame) -> Figure | None:
    """Each cell's cost against its makespan: planned hollow, measured filled, a thin line joining the two.

    Colour is the planner, the marker the SLA; the legend names both and what a line means.
    """
    if summary.empty:
        return None
    workflows = list(dict.fromkeys(summary["workflow"]))
    planners = list(dict.fromkeys(summary["planner"]))
    slas = list(dict.fromkeys(summary["sla"]))
    colours = {p: plt.get_cmap("tab10")(i % 10) for i, p in enumerate(planners)}
    markers = dict(zip(slas, "osD^v<>px*"))
    has_real = "real_makespan_s" in summary and summary["real_makespan_s"].notna().any()
    has_sim = "simulated_makespan_s" in summary and summary["simulated_makespan_s"].notna().any()
    measured = ("real_makespan_s", "real_cost", "real") if has_real else \
        ("simulated_makespan_s", "simulated_cost", "simulated") if has_sim else None
    fig, axes = _grid(len(workflows), ncols=2, size=(6.5, 4.2))
    for ax, wf in zip(axes, workflows):
        part = summary[summary["workflow"] == wf]
        for (planner, sla), g in part.groupby(["planner", "sla"], sort=False):
            ax.scatter(g["planned_makespan_s"], g["planned_cost"], facecolors="none", edgecolors=[colours[planner]],
                       marker=markers[sla], s=50)
            if measured:
                ax.scatter(g[measured[0]], g[measured[1]], color=colours[planner], marker=markers[sla], s=50)
                segments = np.stack([g[["planned_makespan_s", "planned_cost"]].to_numpy(float),
                                     g[[measured[0], measured[1]]].to_numpy(float)], axis=1)
                ax.add_collection(LineCollection(segments, colors=[colours[planner]], linewidths=0.8, alpha=0.6))
        handles = [Line2D([], [], color=colours[p], marker="o", linestyle="", label=p) for p in planners]
        handles += [Line2D([], [], color="0.3", marker=markers[s], linestyle="", label=f"SLA {s}") for s in slas]
        handles.append(Line2D([], [], color="0.3", marker="o", markerfacecolor="none", linestyle="", label="planned"))
        if measured:
            handles.append(Line2D([], [], color="0.3", marker="o", linestyle="", label=measured[2]))
            handles.append(Line2D([], [], color="0.3", linewidth=0.8,
                                  label=f"one cell: planned -> {measured[2]}"))
        ax.set_xlabel("makespan (s)")
        ax.set_ylabel("cost ($)")
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        ax.set_title(f"{wf}: hollow planned, filled {measured[2] if measured else 'planned'}", fontsize=9)
        ax.legend(handles=handles, fontsize=7, ncol=2)
    fig.suptitle("Cost vs makespan per planner (lower left is better)")
    return fig


# ====================================================================== Monte Carlo
def makespan_distributions(montecarlo: pd.DataFrame, summary: pd.DataFrame) -> Figure | None:
    """For percentile SLAs: the simulated makespan distribution, its value at the SLA, the real repetitions."""
    if montecarlo.empty:
        return None
    groups = list(dict.fromkeys(zip(montecarlo["workflow"], montecarlo["planner"], montecarlo["sla"])))
    fig, axes = _grid(len(groups), ncols=3)
    for ax, (wf, planner, sla) in zip(axes, groups):
        mc = montecarlo[(montecarlo["workflow"] == wf) & (montecarlo["planner"] == planner)
                        & (montecarlo["sla"] == sla)]
        per_cell = mc.groupby("cell_id").size() if "cell_id" in mc else pd.Series([len(mc)])
        pooled = (f"{int(per_cell.iloc[0])} replications x {len(per_cell)} repetitions, pooled"
                  if len(per_cell) > 1 and per_cell.nunique() == 1 else f"{len(mc)} replications")
        ax.hist(mc["makespan_s"], bins=min(40, max(10, len(mc) // 10)), color="#DD8452", alpha=0.7,
                label=f"simulated ({pooled})")
        rows = summary[(summary["workflow"] == wf) & (summary["planner"] == planner) & (summary["sla"] == sla)]
        if len(rows) and rows["simulated_makespan_s"].notna().any():
            ax.axvline(rows["simulated_makespan_s"].mean(), color="#C44E52", linestyle="--",
                       label=f"simulated {sla}" + (" (mean over repetitions)" if len(rows) > 1 else ""))
        if len(rows) and rows["planned_makespan_s"].notna().any():
            ax.axvline(rows["planned_makespan_s"].mean(), color="#4C72B0", linestyle=":", label=f"planned ({sla})")
        if "real_makespan_s" in rows and rows["real_makespan_s"].notna().any():
            real = rows["real_makespan_s"].dropna()
            ax.plot(real, np.zeros(len(real)), "v", color="#55A868", markersize=10, clip_on=False,
                    label=f"real ({len(real)} repetition{'s' if len(real) != 1 else ''})")
        ax.set_xlabel("makespan (s)")
        ax.set_title(f"{wf} / {planner} / {sla}", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle("Simulated makespan distributions for percentile SLAs")
    return fig
