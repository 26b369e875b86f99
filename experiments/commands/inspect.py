"""``planlab inspect WORKFLOW``: the shape of a workflow at a glance.

WORKFLOW is a WfFormat JSON file, a planlab workflow JSON, ``file.py:name``,
``gen:NAME[:key=value,...]`` or ``gen:wfcommons:RECIPE[:tasks=N,seed=S]``.  The
critical path is measured under the tasks' runtime hints (seconds on their reference
cores), so for a real WfFormat execution it is the recorded runtimes' critical path,
without the workflow system's overheads.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from experiments.cli import print_json
from experiments.commands.plan import WORKFLOW_HELP

if TYPE_CHECKING:
    from planning.workflow import Workflow


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="print a workflow's shape: tasks, edges, depth, critical path",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workflow", help=WORKFLOW_HELP)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(handler=run)


def summarize(wf: Workflow) -> dict[str, Any]:
    """The numbers ``inspect`` prints, as a dict (JSON keys)."""
    length, path = wf.critical_path()
    recorded = wf.metadata.get("recorded_makespan_s")
    return {
        "name": wf.name,
        "tasks": len(wf),
        "edges": wf.graph.number_of_edges(),
        "roots": len(wf.roots()),
        "sinks": len(wf.sinks()),
        "depth": wf.depth,
        "max_width": wf.max_width,
        "kinds": len({t.kind for t in wf.tasks}),
        "executable": all(t.executable for t in wf.tasks),
        "total_edge_bytes": wf.total_edge_bytes(),
        "critical_path_s": round(length, 6),
        "critical_path_tasks": len(path),
        "recorded_makespan_s": None if recorded is None else float(recorded),
        "structure_hash": wf.structure_hash(),
    }


def run(args: argparse.Namespace) -> int:
    from planning.sources.loading import load_workflow

    info = summarize(load_workflow(args.workflow))
    if args.json:
        print_json(info)
        return 0
    width = max(len(k) for k in info)
    for key, value in info.items():
        print(f"{key:<{width}}  {value}")
    return 0
