"""Plan pictures: coloured by profile, one Gantt row per worker, written as PNG."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.colors import to_rgba

from experiments.plan_figures import draw_gantt, draw_workflow, profile_colours, save_plan_figures
from planning import SLA, CostModel, generate, load_catalog
from planning.planners import get_planner


def five_branch_plan():
    wf = generate("five_branches")
    return wf, get_planner("critical-path").plan(wf, load_catalog("local"), CostModel(), SLA.parse("mean"))


def test_gantt_has_one_row_per_worker_and_profile_colours() -> None:
    _, plan = five_branch_plan()
    fig, ax = plt.subplots()
    draw_gantt(plan.tasks.reset_index(), ax)
    assert [t.get_text() for t in ax.get_yticklabels()] == sorted(plan.workers["worker"])
    colours = profile_colours(plan.tasks["profile"])
    bar_colours = {to_rgba(p.get_facecolor())[:3] for p in ax.patches}
    assert bar_colours == {to_rgba(c)[:3] for c in colours.values()}
    plt.close(fig)


def test_workflow_nodes_coloured_by_profile() -> None:
    wf, plan = five_branch_plan()
    fig, ax = plt.subplots()
    draw_workflow(wf, plan.tasks, ax)
    nodes = ax.collections[-1] if len(ax.collections) == 1 else [c for c in ax.collections if len(c.get_offsets()) == len(wf)][0]
    assert len({tuple(c) for c in nodes.get_facecolors()}) == len(set(plan.tasks["profile"]))
    plt.close(fig)


def test_save_plan_figures_writes_pngs(tmp_path) -> None:
    wf, plan = five_branch_plan()
    paths = save_plan_figures(plan, wf, str(tmp_path / "p"))
    assert len(paths) == 2
    for path in paths:
        assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
