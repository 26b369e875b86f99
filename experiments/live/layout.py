"""A layered drawing of a workflow's DAG, computed once per run on the server.

The page draws hundreds (or thousands) of tasks; a force layout in the browser
would be slow and jittery, so the positions are computed here in O((n + e) x
sweeps): a task's column is its level (:meth:`planning.workflow.Workflow.levels`,
the longest path from a root), and within a column tasks are ordered by the mean
row of their parents (the barycenter heuristic: sweeps down by parents and up by children, ending down), which keeps
most edges short and uncrossed for the layered shapes workflows have.
"""

from __future__ import annotations

from dataclasses import dataclass

from planning.workflow import Workflow

__all__ = ["Layout", "layered_layout"]

#: Barycenter sweeps (odd: the last one goes down); more rarely changes a workflow's picture.
SWEEPS = 3


@dataclass(frozen=True)
class Layout:
    """Column and row of every task (topological order), the edges as index pairs, and the grid's size."""

    ids: tuple[str, ...]
    column: tuple[int, ...]
    row: tuple[float, ...]
    edges: tuple[tuple[int, int], ...]
    columns: int
    rows: int

    def to_dict(self) -> dict:
        return {"column": list(self.column), "row": list(self.row), "edges": [list(e) for e in self.edges],
                "columns": self.columns, "rows": self.rows}


def layered_layout(workflow: Workflow, sweeps: int = SWEEPS) -> Layout:
    """Columns by level, rows by the parents' barycenter; every column centred on the widest one."""
    topology = workflow.topology()
    ids = topology.ids
    levels = workflow.levels()
    column = [levels[t] for t in ids]
    by_column: dict[int, list[int]] = {}
    for i, c in enumerate(column):
        by_column.setdefault(c, []).append(i)
    widest = max((len(m) for m in by_column.values()), default=0)
    row = [0.0] * len(ids)
    for c in sorted(by_column):
        _place(by_column[c], row, widest)
    for sweep in range(sweeps):   # down (by parents), up (by children), down, ...
        down = sweep % 2 == 0
        neighbours = topology.parents if down else topology.children
        for c in sorted(by_column, reverse=not down):
            by_column[c].sort(key=lambda i: (_barycenter(neighbours[i], row, i), i))
            _place(by_column[c], row, widest)
    edges = tuple((p, child) for child, parents in enumerate(topology.parents) for p in parents)
    return Layout(tuple(ids), tuple(column), tuple(row), edges, (max(column) + 1) if column else 0, widest)


def _place(members: list[int], row: list[float], widest: int) -> None:
    """Rows of one column's tasks in their order, the column centred on the widest."""
    offset = (widest - len(members)) / 2.0
    for r, i in enumerate(members):
        row[i] = r + offset


def _barycenter(neighbours: list[int], row: list[float], own: int) -> float:
    """Mean row of a task's parents or children (its own row when it has none)."""
    if not neighbours:
        return row[own]
    return sum(row[p] for p in neighbours) / len(neighbours)
