"""Pictures of a plan: the workflow coloured by profile, and a Gantt chart per worker.

Both draw from tidy tables (a plan's or a trace's task rows), so the same Gantt
function draws the planned, simulated and real timelines on a shared axis.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from planning.workflow import Workflow  # noqa: E402

PHASES = (("download_start_s", "download_end_s", 0.35), ("exec_start_s", "exec_end_s", 1.0),
          ("upload_start_s", "upload_end_s", 0.35))


def profile_colours(profiles: Sequence[str]) -> dict[str, tuple]:
    """A stable colour per profile name (sorted), from the tab10 palette."""
    palette = plt.get_cmap("tab10")
    return {p: palette(i % 10) for i, p in enumerate(sorted(set(profiles)))}


def layered_positions(workflow: Workflow) -> dict[str, tuple[float, float]]:
    """Left-to-right by level, spread vertically within a level. O(n)."""
    by_level: dict[int, list[str]] = {}
    for t, level in workflow.levels().items():
        by_level.setdefault(level, []).append(t)
    pos = {}
    for level, tasks in by_level.items():
        for i, t in enumerate(tasks):
            pos[t] = (float(level), (i - (len(tasks) - 1) / 2.0))
    return pos


def draw_workflow(workflow: Workflow, tasks: pd.DataFrame, ax=None, labels: bool | None = None):
    """The DAG with each task coloured by its profile and labelled by its worker.

    ``tasks`` is indexed by task id (or has a ``task_id`` column) with ``worker`` and ``profile``.
    """
    tasks = tasks.set_index("task_id") if "task_id" in tasks.columns else tasks
    ax = ax or plt.subplots(figsize=(8, 5))[1]
    colours = profile_colours(tasks["profile"])
    pos = layered_positions(workflow)
    order = list(workflow.task_ids)
    nx.draw_networkx_edges(workflow.graph, pos, ax=ax, alpha=0.4, arrows=len(order) <= 300, node_size=120)
    nx.draw_networkx_nodes(workflow.graph, pos, nodelist=order, ax=ax, node_size=120 if len(order) <= 300 else 20,
                           node_color=[colours[tasks.at[t, "profile"]] for t in order])
    if labels if labels is not None else len(order) <= 60:
        nx.draw_networkx_labels(workflow.graph, {t: (x, y + 0.25) for t, (x, y) in pos.items()},
                                labels={t: tasks.at[t, "worker"] for t in order}, font_size=7, ax=ax)
    ax.legend(handles=[Patch(color=c, label=p) for p, c in colours.items()], title="profile", fontsize=8)
    ax.set_title(f"{workflow.name}: tasks by profile (labels: worker)")
    ax.set_axis_off()
    return ax


def draw_gantt(tasks: pd.DataFrame, ax=None, title: str = "plan", xmax: float | None = None,
               colours: dict[str, tuple] | None = None):
    """One row per worker; download, execute and upload bars coloured by profile, cold start-ups dotted.

    ``colours`` (profile -> colour) keeps colours the same across several charts.
    """
    ax = ax or plt.subplots(figsize=(9, 4))[1]
    colours = colours or profile_colours(tasks["profile"])
    workers = sorted(tasks["worker"].unique(), key=lambda w: (len(w), w))
    row = {w: i for i, w in enumerate(workers)}
    startups = _startups(tasks)
    if len(startups):   # a line, not a bar: the bars stay one colour per profile
        ax.hlines([row[w] for w in startups["worker"]], startups["worker_start_s"],
                  startups["worker_start_s"] + startups["startup_s"], colors="0.45", linewidth=2.5, linestyles=":")
    for _, task in tasks.iterrows():
        for start, end, alpha in PHASES:
            width = task[end] - task[start]
            if width > 0:
                ax.barh(row[task["worker"]], width, left=task[start], color=colours[task["profile"]], alpha=alpha,
                        edgecolor="black", linewidth=0.3)
    ax.set_yticks(range(len(workers)), workers, fontsize=7 if len(workers) > 20 else 9)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since submission")
    ax.set_title(f"{title}: one row per worker")
    ax.set_xlim(0, xmax if xmax is not None else max(ax.get_xlim()[1], 1e-9))  # from submission: start-ups show
    handles = [Patch(color=c, label=p) for p, c in colours.items()]
    if len(startups):
        handles.append(Line2D([], [], color="0.45", linewidth=2.5, linestyle=":", label="worker start-up"))
    ax.legend(handles=handles, title="profile", fontsize=8)
    return ax


def _startups(tasks: pd.DataFrame) -> pd.DataFrame:
    """Each worker's cold start (worker start -> start-up done): why a plan's first task starts after 0."""
    if not {"cold_start", "startup_s", "worker_start_s"} <= set(tasks.columns):
        return tasks.iloc[0:0]
    cold = tasks[tasks["cold_start"].astype(bool) & (tasks["startup_s"] > 0)]
    return cold.sort_values("worker_start_s").drop_duplicates("worker")


def save_plan_figures(plan, workflow: Workflow, prefix: str) -> list[str]:
    """Write ``PREFIX-workflow.png`` and ``PREFIX-gantt.png``; return the paths."""
    paths = []
    for name, draw in (("workflow", lambda ax: draw_workflow(workflow, plan.tasks, ax)),
                       ("gantt", lambda ax: draw_gantt(plan.tasks.reset_index(), ax, f"{plan.planner} plan"))):
        fig, ax = plt.subplots(figsize=(9, 5))
        draw(ax)
        fig.tight_layout()
        path = f"{prefix}-{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
